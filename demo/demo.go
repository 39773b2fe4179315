// Package demo runs the harness end to end with nothing but Go, and
// leaves a report directory behind: it starts the reference target on
// loopback, discovers it, connects with digests, identifies the controller
// and namespace, writes and verifies data through both in-capsule and R2T
// paths (those connections are captured as a pcapng trace), runs the
// conformance suites, a short benchmark and a failover scenario, and writes
// the run directory with its HTML report. It is what `nvmftest demo` (and
// `make demo`, the README's first command) runs.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// Options tune a demo run. The zero value is the documented default.
type Options struct {
	// Address is where the reference target listens (default
	// 127.0.0.1:0, a free port, so a target already on 4420 is no
	// obstacle).
	Address string
	// ReportDir receives the run directory (default
	// nvmftest-runs/demo-YYYYMMDD-HHMMSS).
	ReportDir string
	// LoadDuration is how long the benchmark measures, after a ramp of
	// a tenth of it (default 15 s).
	LoadDuration time.Duration
	// Depth is the benchmark's queue depth (default 32).
	Depth int
	// FailoverScale multiplies the failover scenario's phases (1 s of I/O
	// before the fault, 3 s of fault, 2 s after; default 1).
	FailoverScale float64
	// Command is recorded in the report (default "nvmftest demo").
	Command []string
}

// Steps is how many steps a demo run has.
const Steps = 9

// Run runs the demo, writing progress for a person to out. It returns the
// run directory, and the first step that failed.
func Run(ctx context.Context, out io.Writer, o Options) (string, error) {
	if o.Address == "" {
		o.Address = "127.0.0.1:0"
	}
	if o.LoadDuration <= 0 {
		o.LoadDuration = 15 * time.Second
	}
	if o.Depth <= 0 {
		o.Depth = 32
	}
	if o.FailoverScale <= 0 {
		o.FailoverScale = 1
	}
	if o.ReportDir == "" {
		o.ReportDir = filepath.Join("nvmftest-runs", "demo-"+time.Now().Format("20060102-150405"))
	}
	if len(o.Command) == 0 {
		o.Command = []string{"nvmftest", "demo"}
	}
	start := time.Now()
	dir := o.ReportDir
	step := stepper{out: out, total: Steps}
	fmt.Fprintln(out, "nvmftest demo: the harness end to end against the embedded reference target")
	fmt.Fprintf(out, "      run directory %s\n", dir)
	if err := os.MkdirAll(filepath.Join(dir, "traces"), 0o755); err != nil {
		return dir, step.fail("run directory", err)
	}
	run := reports.NewRun(o.Command)

	// 1. Target.
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: o.Address, PortID: 1, Serve: target.ServeAll}}
	// A subsystem that authenticates one host (DH-HMAC-CHAP), so the
	// conformance run's FAB-AUTH checks have a gate to try.
	authKey := nvme.NewDHCHAPKey(nvme.HashSHA256).String()
	cfg.Subsystems = append(cfg.Subsystems, target.SubsystemConfig{NQN: demoAuthNQN, AllowAnyHost: true,
		Namespaces: []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "1GiB"}}})
	cfg.DHCHAP = append(cfg.DHCHAP, target.DHCHAPHost{HostNQN: demoAuthHost, Key: authKey})
	tgt, err := target.New(cfg)
	if err != nil {
		return dir, step.fail("start target", err)
	}
	if err := tgt.Start(); err != nil {
		return dir, step.fail("start target", err)
	}
	defer tgt.Close()
	addr := tgt.Addrs()[0].String()
	subnqn := cfg.Subsystems[0].NQN
	host, port, _ := net.SplitHostPort(addr)
	step.ok("reference target listening on %s (I/O and discovery), subsystem %s, namespace 1: %s %s",
		addr, subnqn, cfg.Subsystems[0].Namespaces[0].Backend, cfg.Subsystems[0].Namespaces[0].Size)
	fmt.Fprintf(out, "      the kernel would reach it with: nvme connect -t tcp -a %s -s %s -n %s\n", host, port, subnqn)

	// Steps 2 to 5 are recorded in one trace, for Wireshark.
	const smokeTrace = "traces/smoke.pcapng"
	trace, err := capture.CreateFile(filepath.Join(dir, smokeTrace), "nvmftest demo: discovery, connect with digests, identify, write and verify")
	if err != nil {
		return dir, step.fail("packet trace", err)
	}
	defer trace.Close()

	// 2. Discovery.
	dl, err := initiator.Discover(ctx, addr, initiator.Options{Capture: trace})
	if err != nil {
		return dir, step.fail("discover", err)
	}
	found := false
	for _, e := range dl.Entries {
		if e.SUBNQN == subnqn && e.TRTYPE == nvme.TRTypeTCP {
			found = true
		}
	}
	if !found {
		return dir, step.fail("discover", fmt.Errorf("the discovery log (%d records) does not list %s", len(dl.Entries), subnqn))
	}
	step.ok("discovery log: %d records, generation %d, %s listed at tcp %s:%s", len(dl.Entries), dl.GENCTR, subnqn, host, port)

	// 3. Connect.
	ctrl, err := initiator.Connect(ctx, addr, subnqn, initiator.Options{HeaderDigest: true, DataDigest: true, NrIOQueues: 1, Capture: trace})
	if err != nil {
		return dir, step.fail("connect", err)
	}
	defer ctrl.Close()
	q := ctrl.IOQueues()[0]
	d := q.Digests()
	step.ok("connected: controller %d, %d I/O queue of depth %d, header digest %v, data digest %v, MAXH2CDATA %d",
		ctrl.CNTLID(), len(ctrl.IOQueues()), q.Depth(), d.Header, d.Data, q.ICResp().MAXH2CDATA)

	// 4. Identify.
	id, err := ctrl.Identify(ctx)
	if err != nil {
		return dir, step.fail("identify controller", err)
	}
	ns, err := ctrl.IdentifyNamespace(ctx, 1)
	if err != nil {
		return dir, step.fail("identify namespace", err)
	}
	bs := int(ns.BlockSize())
	step.ok("identify: %q serial %q firmware %q, NVMe %s, MDTS %s; namespace 1: %d blocks of %d bytes",
		id.MN, id.SN, id.FR, nvme.VersionString(id.VER), mdts(ctrl), ns.NSZE, bs)

	// 5. Write, read back, verify.
	verified, err := writeAndVerify(ctx, q, bs, ns.NSZE, q.InlineDataSize(), ctrl.MaxTransferSize())
	if err != nil {
		return dir, step.fail("write and verify", err)
	}
	if err := ctrl.Close(); err != nil {
		return dir, step.fail("disconnect", err)
	}
	if err := trace.Close(); err != nil {
		return dir, step.fail("packet trace", err)
	}
	run.AddTraces(smokeTrace)
	step.ok("write and verify: %s", verified)
	fmt.Fprintf(out, "      packet trace of steps 2-5: %s (tshark -r FILE -d tcp.port==%s,nvme-tcp; in Wireshark, Decode As NVMe/TCP)\n", filepath.Join(dir, smokeTrace), port)

	// 6. Conformance.
	sum, err := conformance(ctx, out, tgt, addr, subnqn, authKey, filepath.Join(dir, "conformance"))
	if err != nil {
		return dir, step.fail("conformance", err)
	}
	run.AddConformance(sum)
	if sum.Interrupted != nil {
		return dir, step.fail("conformance", errors.New(sum.Interrupted.String()))
	}
	step.ok("conformance: %d checks, %d passed, %d failed (%d mandatory), %d skipped; JUnit in %s",
		len(sum.Results), sum.Passed, sum.Failed, sum.MandatoryFailed, sum.Skipped, filepath.Join(dir, "conformance", "junit.xml"))

	// 7. Benchmark.
	res, err := benchmark(ctx, out, addr, subnqn, o)
	if err != nil {
		return dir, step.fail("benchmark", err)
	}
	run.AddBench(res)
	r := res.Jobs[0]
	h := r.Read.Lat
	step.ok("benchmark: 4 KiB random reads at QD%d for %s: %.0f IOPS, latency p50 %s p99 %s p99.9 %s",
		o.Depth, o.LoadDuration, r.Read.IOPS(r.Runtime), us(h.ValueAtQuantile(50)), us(h.ValueAtQuantile(99)), us(h.ValueAtQuantile(99.9)))

	// 8. Failover.
	fmt.Fprintf(out, "      failover: verified random I/O over two paths while one goes down and comes back ...\n")
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * o.FailoverScale) }
	rep, err := failover.Run(ctx, failover.Config{Scenario: failover.PathDown, Before: scale(time.Second), Fault: scale(3 * time.Second), After: scale(2 * time.Second)})
	if err != nil {
		return dir, step.fail("failover", err)
	}
	run.AddFailover(rep)
	verdict := "passed"
	if !rep.Pass {
		verdict = "FAILED: " + rep.Reason
	}
	step.ok("failover %s %s: longest stall %s, %d I/Os, %d failed to the application, %d retried, %d verify mismatches",
		rep.Scenario, verdict, rep.LongestStall.Round(time.Millisecond), rep.IOs, rep.Failed, rep.Retried, rep.VerifyErrors)

	// 9. Report.
	run.Elapsed = time.Since(start)
	if err := run.Write(dir); err != nil {
		return dir, step.fail("report", err)
	}
	html, _ := filepath.Abs(filepath.Join(dir, "report.html"))
	step.ok("report: %s", html)
	fmt.Fprintf(out, "      also there: summary.md (for CI comments), run.json (for nvmftest report compare), conformance/junit.xml, bench/fio.json, traces/\n")
	var failed []string
	if sum.Failed > 0 {
		failed = append(failed, fmt.Sprintf("%d conformance checks failed", sum.Failed))
	}
	if !rep.Pass {
		failed = append(failed, "failover "+rep.Scenario+" failed")
	}
	if len(failed) > 0 {
		return dir, errors.New(strings.Join(failed, ", "))
	}
	fmt.Fprintf(out, "demo passed in %s\n", time.Since(start).Round(100*time.Millisecond))
	return dir, nil
}

// The demo target's subsystem that requires DH-HMAC-CHAP of one host.
const (
	demoAuthNQN  = "nqn.2014-08.io.nvmftest:auth"
	demoAuthHost = "nqn.2014-08.io.nvmftest:auth-host"
)

// conformance runs every check against the demo's target, with the
// reference control so the checks that change the target run too. Each
// check's line goes to conformance.txt; out gets a line per area.
func conformance(ctx context.Context, out io.Writer, tgt *target.Target, addr, subnqn, authKey, dir string) (suites.Summary, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return suites.Summary{}, err
	}
	log, err := os.Create(filepath.Join(dir, "conformance.txt"))
	if err != nil {
		return suites.Summary{}, err
	}
	defer log.Close()
	p := &progress{out: out, log: log}
	cfg := suites.Config{Address: addr, SubNQN: subnqn, WritableNSID: 1, Control: suites.ReferenceControl{T: tgt},
		AuthSubNQN: demoAuthNQN, AuthHostNQN: demoAuthHost, DHCHAPSecret: authKey}
	sum, err := suites.Run(&demoT{}, cfg, nil, suites.RunOptions{ReportDir: dir, Out: p, Quiet: true})
	p.flush()
	return sum, err
}

// demoT is the GinkgoTestingT of the demo's conformance run: the summary
// carries the verdict.
type demoT struct{}

func (demoT) Fail() {}

// progress turns the suites' per-check lines into one line per area for
// a person watching, and keeps every line in log.
type progress struct {
	out, log  io.Writer
	partial   []byte
	area      string
	n, failed int
	total     int
}

// areaNames are the suites' areas by check ID prefix.
var areaNames = map[string]string{"TCP": "transport", "FAB": "fabrics", "DISC": "discovery", "ADM": "admin", "IO": "io"}

func (p *progress) Write(b []byte) (int, error) {
	_, _ = p.log.Write(b)
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.line(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

func (p *progress) line(l string) {
	f := strings.Fields(l)
	if len(f) < 2 {
		return
	}
	switch f[0] {
	case "PASS", "FAIL", "SKIP", "FINDING":
	default:
		return
	}
	area := areaNames[strings.SplitN(f[1], "-", 2)[0]]
	if area != p.area {
		p.flush()
		p.area = area
	}
	p.n++
	p.total++
	if f[0] == "FAIL" {
		p.failed++
		fmt.Fprintf(p.out, "      FAIL %s\n", strings.TrimSpace(strings.TrimPrefix(l, "FAIL")))
	}
}

func (p *progress) flush() {
	if p.n > 0 {
		fmt.Fprintf(p.out, "      conformance %-9s %3d checks done (%d in all, %d failed)\n", p.area, p.n, p.total, p.failed)
	}
	p.n = 0
}

// benchmark runs 4 KiB random reads at o.Depth on a controller of its own
// (not captured: a trace of millions of I/Os helps nobody), with a live
// line every second.
func benchmark(ctx context.Context, out io.Writer, addr, subnqn string, o Options) (*loadgen.Result, error) {
	ctrl, err := initiator.Connect(ctx, addr, subnqn, initiator.Options{NrIOQueues: 1, QueueSize: o.Depth + 1})
	if err != nil {
		return nil, err
	}
	defer ctrl.Close()
	dev, err := loadgen.OpenNVMe(ctx, ctrl, ctrl.IOQueues()[0], 1)
	if err != nil {
		return nil, err
	}
	job := loadgen.NewJob("randread-4k")
	for _, kv := range [][2]string{{"rw", "randread"}, {"bs", "4k"}, {"iodepth", strconv.Itoa(o.Depth)}, {"time_based", "1"}} {
		if err := job.Set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	job.Runtime, job.RampTime, job.Seed = o.LoadDuration, o.LoadDuration/10, uint64(time.Now().UnixNano())
	ro := loadgen.RunOptions{Interval: time.Second, OnInterval: func(p loadgen.Progress) {
		fmt.Fprintf(out, "      %s\n", loadgen.ProgressLine(p))
	}}
	res, err := loadgen.Run(ctx, []loadgen.Target{{Job: job, Devices: []loadgen.Device{dev}}}, ro)
	if err != nil {
		return nil, err
	}
	return res, ctrl.Close()
}

// writeAndVerify writes random data of sizes that take the in-capsule path
// and the R2T path (one PDU and many), reads each back and compares.
func writeAndVerify(ctx context.Context, q *initiator.Queue, bs int, nsze uint64, inline, mdts int) (string, error) {
	sizes := []int{bs, 4096, inline, inline + bs, 128 << 10}
	if mdts > 0 {
		sizes = append(sizes, mdts)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lba uint64
	total, crc := 0, uint32(0)
	for _, n := range sizes {
		n = n / bs * bs
		if n == 0 {
			continue
		}
		nlb := uint64(n / bs)
		if lba+nlb > nsze {
			return "", errors.New("namespace too small for the verify pattern")
		}
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if err := q.Write(ctx, 1, lba, uint32(nlb), data); err != nil {
			return "", fmt.Errorf("write %d bytes at LBA %d: %w", n, lba, err)
		}
		back := make([]byte, n)
		if err := q.Read(ctx, 1, lba, uint32(nlb), back); err != nil {
			return "", fmt.Errorf("read %d bytes at LBA %d: %w", n, lba, err)
		}
		if !bytes.Equal(back, data) {
			i := 0
			for back[i] == data[i] {
				i++
			}
			return "", fmt.Errorf("read back %d bytes at LBA %d: mismatch in LBA %d", n, lba, lba+uint64(i/bs))
		}
		crc = crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), data)
		total += n
		lba += nlb
	}
	return fmt.Sprintf("%d writes from %d B to %d KiB (in-capsule up to %d B, R2T beyond) read back identical, %d bytes, crc32c %08x",
		len(sizes), sizes[0], sizes[len(sizes)-1]>>10, inline, total, crc), nil
}

func mdts(c *initiator.Controller) string {
	if n := c.MaxTransferSize(); n > 0 {
		return strconv.Itoa(n>>10) + " KiB"
	}
	return "unlimited"
}

func us(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e3, 'f', 0, 64) + " us"
}

type stepper struct {
	out   io.Writer
	n     int
	total int
}

func (s *stepper) ok(format string, args ...any) {
	s.n++
	fmt.Fprintf(s.out, "[%d/%d] %s\n", s.n, s.total, fmt.Sprintf(format, args...))
}

func (s *stepper) fail(what string, err error) error {
	fmt.Fprintf(s.out, "[%d/%d] FAILED: %s: %v\n", s.n+1, s.total, what, err)
	return fmt.Errorf("%s: %w", what, err)
}
