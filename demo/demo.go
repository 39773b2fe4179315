// Package demo runs the harness end to end with nothing but Go: it starts
// the reference target on loopback, discovers it, connects with digests,
// identifies the controller and namespace, writes and verifies data through
// both in-capsule and R2T paths, and runs a short random-read load. It is
// what `nvmftest demo` (and `make demo`) runs, and the smoke test of the
// whole stack; later issues add conformance, failover and reports to it.
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
	"strconv"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

// Options tune a demo run. The zero value is the documented default.
type Options struct {
	// Address is where the reference target listens (default
	// 127.0.0.1:0, a free port, so a target already on 4420 is no
	// obstacle).
	Address string
	// LoadDuration is how long the random-read load runs (default 3 s).
	LoadDuration time.Duration
	// Depth is the load's queue depth (default 32).
	Depth int
}

// Run runs the demo, writing progress for a person to out. It returns the
// first step that failed.
func Run(ctx context.Context, out io.Writer, o Options) error {
	if o.Address == "" {
		o.Address = "127.0.0.1:0"
	}
	if o.LoadDuration <= 0 {
		o.LoadDuration = 3 * time.Second
	}
	if o.Depth <= 0 {
		o.Depth = 32
	}
	start := time.Now()
	step := stepper{out: out, total: 6}
	fmt.Fprintln(out, "nvmftest demo: the harness end to end against the embedded reference target")

	// 1. Target.
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: o.Address, PortID: 1, Serve: target.ServeAll}}
	tgt, err := target.New(cfg)
	if err != nil {
		return step.fail("start target", err)
	}
	if err := tgt.Start(); err != nil {
		return step.fail("start target", err)
	}
	defer tgt.Close()
	addr := tgt.Addrs()[0].String()
	subnqn := cfg.Subsystems[0].NQN
	host, port, _ := net.SplitHostPort(addr)
	step.ok("reference target listening on %s (I/O and discovery), subsystem %s, namespace 1: %s %s",
		addr, subnqn, cfg.Subsystems[0].Namespaces[0].Backend, cfg.Subsystems[0].Namespaces[0].Size)
	fmt.Fprintf(out, "      the kernel would reach it with: nvme connect -t tcp -a %s -s %s -n %s\n", host, port, subnqn)

	// 2. Discovery.
	dl, err := initiator.Discover(ctx, addr, initiator.Options{})
	if err != nil {
		return step.fail("discover", err)
	}
	found := false
	for _, e := range dl.Entries {
		if e.SUBNQN == subnqn && e.TRTYPE == nvme.TRTypeTCP {
			found = true
		}
	}
	if !found {
		return step.fail("discover", fmt.Errorf("the discovery log (%d records) does not list %s", len(dl.Entries), subnqn))
	}
	step.ok("discovery log: %d records, generation %d, %s listed at tcp %s:%s", len(dl.Entries), dl.GENCTR, subnqn, host, port)

	// 3. Connect.
	opts := initiator.Options{HeaderDigest: true, DataDigest: true, NrIOQueues: 2, QueueSize: o.Depth + 1}
	ctrl, err := initiator.Connect(ctx, addr, subnqn, opts)
	if err != nil {
		return step.fail("connect", err)
	}
	defer ctrl.Close()
	q := ctrl.IOQueues()[0]
	d := q.Digests()
	step.ok("connected: controller %d, %d I/O queues of depth %d, header digest %v, data digest %v, MAXH2CDATA %d",
		ctrl.CNTLID(), len(ctrl.IOQueues()), q.Depth(), d.Header, d.Data, q.ICResp().MAXH2CDATA)

	// 4. Identify.
	id, err := ctrl.Identify(ctx)
	if err != nil {
		return step.fail("identify controller", err)
	}
	ns, err := ctrl.IdentifyNamespace(ctx, 1)
	if err != nil {
		return step.fail("identify namespace", err)
	}
	bs := int(ns.BlockSize())
	step.ok("identify: %q serial %q firmware %q, NVMe %s, MDTS %s; namespace 1: %d blocks of %d bytes",
		id.MN, id.SN, id.FR, nvme.VersionString(id.VER), mdts(ctrl), ns.NSZE, bs)

	// 5. Write, read back, verify.
	verified, err := writeAndVerify(ctx, q, bs, ns.NSZE, q.InlineDataSize(), ctrl.MaxTransferSize())
	if err != nil {
		return step.fail("write and verify", err)
	}
	step.ok("write and verify: %s", verified)

	// 6. Load: the load generator behind nvmftest bench.
	dev, err := loadgen.OpenNVMe(ctx, ctrl, q, 1)
	if err != nil {
		return step.fail("random-read load", err)
	}
	depth := min(o.Depth, q.Depth())
	job := loadgen.NewJob("demo")
	for _, kv := range [][2]string{{"rw", "randread"}, {"bs", "4k"}, {"iodepth", strconv.Itoa(depth)}, {"time_based", "1"}} {
		if err := job.Set(kv[0], kv[1]); err != nil {
			return step.fail("random-read load", err)
		}
	}
	job.Runtime, job.Seed = o.LoadDuration, uint64(time.Now().UnixNano())
	res, err := loadgen.Run(ctx, []loadgen.Target{{Job: job, Devices: []loadgen.Device{dev}}}, loadgen.RunOptions{})
	if err != nil {
		return step.fail("random-read load", err)
	}
	r := res.Jobs[0]
	h := r.Read.Lat
	step.ok("load: 4 KiB random reads at QD%d for %s: %.0f IOPS, latency p50 %s p99 %s p99.9 %s",
		depth, o.LoadDuration, r.Read.IOPS(r.Runtime), us(h.ValueAtQuantile(50)), us(h.ValueAtQuantile(99)), us(h.ValueAtQuantile(99.9)))

	if err := ctrl.Close(); err != nil {
		return fmt.Errorf("disconnect: %w", err)
	}
	fmt.Fprintf(out, "demo passed in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
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
