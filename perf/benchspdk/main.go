// Command benchspdk measures nvmftest's two halves against SPDK's the way
// users run them: target and load generator as separate processes, each
// on a core of its own, side by side in one run with SPDK's nvmf_tgt and
// spdk_nvme_perf (`make bench-spdk`). Every pair runs alone on the machine
// (a polling SPDK app holds its core at 100% even when idle), the pairs
// alternate over the rounds so a burst of outside load hits them all, and
// the table it prints goes into BENCHMARKS.md with the date and commit
// (-update). Where SPDK is not built it says so and exits 0 without
// measuring (-require makes that an error).
//
//	go run ./perf/benchspdk -rounds 2 -seconds 5 -update BENCHMARKS.md
//
// The workload is fixed so that the figures compare: 4 KiB random reads
// from a 1 GiB null namespace of 4 KiB blocks, one I/O queue, loopback,
// no digests, at queue depth 32 and 1. Targets (ours and SPDK's) run on
// CPU 0, hosts on CPU 1 (-target-cpus, -host-cpus).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nvmftest/nvmftest/fixtures/spdk"
	"github.com/nvmftest/nvmftest/internal/cpuset"
	"github.com/nvmftest/nvmftest/perf"
)

// ourNQN is the subsystem of nvmftest's target in these runs.
const ourNQN = "nqn.2014-08.io.nvmftest:bench"

// pinToken in a pair's flags stands for --cpus with the side's CPUs
// (-target-cpus, -host-cpus).
const pinToken = "@pin"

func main() {
	if len(os.Args) > 1 {
		// The ping-pong's two processes are this program again.
		switch os.Args[1] {
		case "pingpong-serve":
			os.Exit(pingpongServe(os.Args[2:]))
		case "pingpong-run":
			os.Exit(pingpongRun(os.Args[2:]))
		}
	}
	os.Exit(run())
}

type options struct {
	rounds   int
	seconds  int
	qds      []int
	pairs    []string
	nvmftest string
	update   string
	jsonOut  string
	require  bool
	queues   int
	// targetCPUs and hostCPUs place the two sides (Parse syntax).
	targetCPUs, hostCPUs string
}

func run() int {
	var o options
	var qds, pairs string
	flag.IntVar(&o.rounds, "rounds", 2, "rounds; each runs every pair once, pairs alternating")
	flag.IntVar(&o.seconds, "seconds", 5, "measured seconds of each run (after 1s of warm-up)")
	flag.StringVar(&qds, "qd", "32,1", "queue depths, each its own run")
	flag.StringVar(&pairs, "pairs", "", "comma-separated pair IDs to run (default all; -list shows them)")
	flag.StringVar(&o.nvmftest, "nvmftest", "", "nvmftest binary (default: go build ./cmd/nvmftest)")
	flag.StringVar(&o.update, "update", "", "replace the bench-spdk section of this Markdown file (BENCHMARKS.md) with the results")
	flag.StringVar(&o.jsonOut, "json", "", "also write every measurement as JSON to this file")
	flag.IntVar(&o.queues, "queues", 1, "I/O queues (connections) per run: bench --numjobs, spdk_nvme_perf -P; more than one needs more CPUs to mean anything (the ping-pong stays at one)")
	flag.StringVar(&o.targetCPUs, "target-cpus", "0", "CPUs of the targets: nvmftest target --cpus, nvmf_tgt's core mask (a poll group per CPU), the ping-pong server")
	flag.StringVar(&o.hostCPUs, "host-cpus", "1", "CPUs of the hosts: nvmftest bench --cpus, spdk_nvme_perf's core mask, the ping-pong client")
	flag.BoolVar(&o.require, "require", false, "fail instead of skipping when SPDK is not built or this is not Linux as root")
	list := flag.Bool("list", false, "list the pairs and exit")
	flag.Parse()
	if *list {
		for _, p := range allPairs {
			fmt.Printf("%-18s %s\n", p.ID, p.Label)
		}
		return 0
	}
	for _, f := range strings.Split(qds, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 128 {
			fmt.Fprintf(os.Stderr, "benchspdk: -qd %q: want queue depths 1..128, e.g. 32,1\n", qds)
			return 2
		}
		o.qds = append(o.qds, n)
	}
	if o.rounds < 1 || o.seconds < 1 || o.queues < 1 {
		fmt.Fprintln(os.Stderr, "benchspdk: -rounds, -seconds and -queues must be at least 1")
		return 2
	}
	for _, l := range []string{o.targetCPUs, o.hostCPUs} {
		if _, err := cpuset.Parse(l); err != nil {
			fmt.Fprintln(os.Stderr, "benchspdk: -target-cpus/-host-cpus: "+err.Error())
			return 2
		}
	}
	if pairs != "" {
		for _, id := range strings.Split(pairs, ",") {
			if pairByID(id) == nil {
				fmt.Fprintf(os.Stderr, "benchspdk: -pairs: no pair %q (-list shows them)\n", id)
				return 2
			}
			o.pairs = append(o.pairs, id)
		}
	}
	dir, why := canRun()
	if why != "" {
		if o.require {
			fmt.Fprintln(os.Stderr, "benchspdk: "+why)
			return 1
		}
		fmt.Println("benchspdk: skipped: " + why)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(ctx, dir, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchspdk: "+err.Error())
		return 1
	}
	defer os.RemoveAll(b.work)
	ms, err := b.measure(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "benchspdk: interrupted; nothing written")
		return 130
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchspdk: "+err.Error())
		return 1
	}
	rep := report{When: time.Now().UTC(), Commit: commit(), Machine: machine(), Seconds: o.seconds, Rounds: o.rounds, QDs: o.qds,
		Queues: o.queues, TargetCPUs: o.targetCPUs, HostCPUs: o.hostCPUs, Runs: ms}
	md := rep.markdown()
	fmt.Print(md)
	if o.jsonOut != "" {
		j, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(j, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchspdk: "+err.Error())
			return 1
		}
	}
	if o.update != "" {
		if err := updateSection(o.update, md); err != nil {
			fmt.Fprintln(os.Stderr, "benchspdk: "+err.Error())
			return 1
		}
		fmt.Fprintf(os.Stderr, "benchspdk: %s updated\n", o.update)
	}
	return 0
}

// canRun finds SPDK's build, or says why the benchmark cannot run here.
func canRun() (dir, why string) {
	if runtime.GOOS != "linux" {
		return "", "SPDK runs on Linux only"
	}
	if runtime.NumCPU() < 2 {
		return "", "needs two CPUs: one for the target, one for the host"
	}
	dir, err := spdk.FindHost()
	if err != nil {
		return "", err.Error()
	}
	if os.Geteuid() != 0 {
		return "", "SPDK's apps need root here (they map memory for DPDK); run as root"
	}
	return dir, ""
}

// A pair is a target and a host, measured together.
type pair struct {
	ID, Label string
	Target    targetKind
	Host      hostKind
}

type targetKind struct {
	name  string   // spdk, nvmftest or pingpong
	flags []string // nvmftest target's
}

type hostKind struct {
	name  string // spdk_nvme_perf, nvmftest or pingpong
	flags []string
}

var (
	spdkTarget   = targetKind{name: "spdk"}
	pingpongSrv  = targetKind{name: "pingpong"}
	perfHost     = hostKind{name: "spdk_nvme_perf"}
	pingpongHost = hostKind{name: "pingpong"}
	pinT         = pinToken
	pinH         = pinToken
)

// allPairs are the rows of the table, in the order the issue asks for
// them, then the variants that show what each option does.
var allPairs = []pair{
	{"spdk-spdk", "spdk_nvme_perf -> SPDK nvmf_tgt (the anchor)", spdkTarget, perfHost},
	{"bench-spdk", "nvmftest bench -> SPDK nvmf_tgt", spdkTarget, hostKind{"nvmftest", []string{pinH}}},
	{"hipri-spdk", "nvmftest bench --hipri -> SPDK nvmf_tgt", spdkTarget, hostKind{"nvmftest", []string{pinH, "--hipri"}}},
	{"perf-ours", "spdk_nvme_perf -> nvmftest target", targetKind{"nvmftest", []string{pinT}}, perfHost},
	{"perf-ours-poll", "spdk_nvme_perf -> nvmftest target --poll", targetKind{"nvmftest", []string{pinT, "--poll"}}, perfHost},
	{"perf-ours-default", "spdk_nvme_perf -> nvmftest target, no --cpus (a polling neighbour)", targetKind{"nvmftest", nil}, perfHost},
	{"bench-ours", "nvmftest bench -> nvmftest target (two processes, sleeping)", targetKind{"nvmftest", []string{pinT}}, hostKind{"nvmftest", []string{pinH}}},
	{"bench-ours-default", "nvmftest bench -> nvmftest target, no flags at all", targetKind{"nvmftest", nil}, hostKind{"nvmftest", nil}},
	{"bench-ours-poll", "nvmftest bench --hipri -> nvmftest target --poll", targetKind{"nvmftest", []string{pinT, "--poll"}}, hostKind{"nvmftest", []string{pinH, "--hipri"}}},
	{"pingpong", "Go TCP ping-pong, two processes, sleeping (same message shape)", pingpongSrv, pingpongHost},
}

func pairByID(id string) *pair {
	for i := range allPairs {
		if allPairs[i].ID == strings.TrimSpace(id) {
			return &allPairs[i]
		}
	}
	return nil
}

// Measurement is one run of one pair at one queue depth.
type Measurement struct {
	Pair  string  `json:"pair"`
	Round int     `json:"round"`
	QD    int     `json:"qd"`
	IOPS  float64 `json:"iops"`
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
}

type bench struct {
	o        options
	spdkDir  string
	work     string
	nvmftest string
	self     string
}

func newBench(ctx context.Context, dir string, o options) (*bench, error) {
	work, err := os.MkdirTemp("", "benchspdk-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, spdkDir: dir, work: work, nvmftest: o.nvmftest}
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	if b.nvmftest == "" {
		b.nvmftest = filepath.Join(work, "nvmftest")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.nvmftest, "./cmd/nvmftest")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("building nvmftest (run from the repository root, or give -nvmftest BIN): %v", err)
		}
	}
	cfg := fmt.Sprintf("listeners:\n  - address: 127.0.0.1:0\n    port_id: 1\nsubsystems:\n  - nqn: %s\n    allow_any_host: true\n    namespaces:\n      - nsid: 1\n        backend: null\n        size: 1GiB\n        block_size: 4096\n", ourNQN)
	return b, os.WriteFile(filepath.Join(work, "null4k.yaml"), []byte(cfg), 0o644)
}

func (b *bench) measure(ctx context.Context) ([]Measurement, error) {
	pairs := allPairs
	if len(b.o.pairs) > 0 {
		pairs = nil
		for _, id := range b.o.pairs {
			pairs = append(pairs, *pairByID(id))
		}
	}
	var out []Measurement
	for round := 1; round <= b.o.rounds; round++ {
		// Alternate the order: a slow stretch of the machine should not
		// always land on the same pair.
		order := slices.Clone(pairs)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, p := range order {
			ms, err := b.runPair(ctx, p, round)
			if err != nil {
				return out, fmt.Errorf("round %d, %s: %v", round, p.ID, err)
			}
			for _, m := range ms {
				fmt.Fprintf(os.Stderr, "round %d %-18s QD%-3d %9.0f IOPS  p50 %6.1f us  p99 %7.1f us\n", round, p.ID, m.QD, m.IOPS, m.P50us, m.P99us)
			}
			out = append(out, ms...)
		}
	}
	return out, nil
}

// runPair starts the pair's target, warms it up and runs each queue depth.
func (b *bench) runPair(ctx context.Context, p pair, round int) ([]Measurement, error) {
	addr, nqn, stop, err := b.startTarget(ctx, p.Target)
	if err != nil {
		return nil, err
	}
	defer stop()
	if _, err := b.runHost(ctx, p.Host, addr, nqn, b.o.qds[0], 1); err != nil {
		return nil, fmt.Errorf("warm-up: %v", err)
	}
	var ms []Measurement
	for _, qd := range b.o.qds {
		m, err := b.runHost(ctx, p.Host, addr, nqn, qd, b.o.seconds)
		if err != nil {
			return nil, fmt.Errorf("QD%d: %v", qd, err)
		}
		m.Pair, m.Round, m.QD = p.ID, round, qd
		ms = append(ms, m)
	}
	return ms, nil
}

func (b *bench) startTarget(ctx context.Context, t targetKind) (addr, nqn string, stop func(), err error) {
	switch t.name {
	case "spdk":
		tg, err := spdk.StartMask(ctx, b.spdkDir, b.work, mask(b.o.targetCPUs))
		if err != nil {
			return "", "", nil, err
		}
		return tg.Addr, spdk.NullNQN, func() { _ = tg.Stop() }, nil
	case "pingpong":
		addr, stop, err := b.startProcess(ctx, []string{b.self, "pingpong-serve", b.o.targetCPUs}, "pingpong listening on ")
		return addr, "", stop, err
	}
	args := append([]string{b.nvmftest, "target", "--config", filepath.Join(b.work, "null4k.yaml")}, pinned(t.flags, b.o.targetCPUs)...)
	addr, stop, err = b.startProcess(ctx, args, "")
	return addr, ourNQN, stop, err
}

// startProcess starts a server and reads the address it listens on from
// its output: after prefix on a line, or (nvmftest target) the first
// 127.0.0.1:PORT it prints.
func (b *bench) startProcess(ctx context.Context, argv []string, prefix string) (string, func(), error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			l := sc.Text()
			if sent {
				continue
			}
			if a := listenAddr(l, prefix); a != "" {
				found <- a
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case a, ok := <-found:
		if ok {
			return a, stop, nil
		}
		stop()
		return "", nil, fmt.Errorf("%s exited before listening: %s", strings.Join(argv, " "), strings.TrimSpace(stderr.String()))
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, fmt.Errorf("%s did not say where it listens within 30s", strings.Join(argv, " "))
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
}

// listenAddr finds the listening address in a server's output line.
func listenAddr(line, prefix string) string {
	if prefix != "" {
		if a, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(a)
		}
		return ""
	}
	for _, f := range strings.Fields(line) {
		if h, p, err := net.SplitHostPort(strings.Trim(f, ",()")); err == nil && h == "127.0.0.1" && p != "0" {
			return net.JoinHostPort(h, p)
		}
	}
	return ""
}

func (b *bench) runHost(ctx context.Context, h hostKind, addr, nqn string, qd, secs int) (Measurement, error) {
	switch h.name {
	case "spdk_nvme_perf":
		r, err := spdk.Perf(ctx, b.spdkDir, spdk.PerfOptions{
			Targets: []spdk.TransportID{{Addr: addr, SubNQN: nqn}}, QueueDepth: qd, IOSize: 4096,
			Workload: "randread", Duration: time.Duration(secs) * time.Second, MemMB: 1024,
			CoreMask: mask(b.o.hostCPUs), Extra: []string{"-P", strconv.Itoa(b.o.queues)}})
		if err != nil {
			return Measurement{}, err
		}
		m := Measurement{IOPS: r.Total.IOPS}
		if len(r.Namespaces) > 0 {
			m.P50us, m.P99us = percentile(r.Namespaces[0].Percentiles, 50), percentile(r.Namespaces[0].Percentiles, 99)
		}
		return m, nil
	case "pingpong":
		out, err := exec.CommandContext(ctx, "taskset", "-c", b.o.hostCPUs, b.self, "pingpong-run", addr, strconv.Itoa(qd), strconv.Itoa(secs)).Output()
		if err != nil {
			return Measurement{}, fmt.Errorf("ping-pong: %v", exitErr(err))
		}
		var m Measurement
		return m, json.Unmarshal(out, &m)
	}
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"bench", "-a", host, "-s", port, "-n", nqn, "--rw", "randread", "--bs", "4k",
		"--iodepth", strconv.Itoa(qd), "--runtime", strconv.Itoa(secs), "--time_based", "-o", "json", "--progress", "never",
		"--numjobs", strconv.Itoa(b.o.queues), "--group_reporting"}, pinned(h.flags, b.o.hostCPUs)...)
	out, err := exec.CommandContext(ctx, b.nvmftest, args...).Output()
	if err != nil {
		return Measurement{}, fmt.Errorf("nvmftest %s: %v", strings.Join(args, " "), exitErr(err))
	}
	return parseFioJSON(out)
}

func exitErr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err.Error()
}

// parseFioJSON reads IOPS and clat percentiles of the first job's reads
// from fio's JSON, which nvmftest bench writes.
func parseFioJSON(b []byte) (Measurement, error) {
	var v struct {
		Jobs []struct {
			Read struct {
				IOPS float64 `json:"iops"`
				Clat struct {
					Percentile map[string]float64 `json:"percentile"`
				} `json:"clat_ns"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Measurement{}, fmt.Errorf("reading nvmftest bench's JSON: %v", err)
	}
	if len(v.Jobs) == 0 || v.Jobs[0].Read.IOPS <= 0 {
		return Measurement{}, errors.New("nvmftest bench's JSON has no reads")
	}
	r := v.Jobs[0].Read
	return Measurement{IOPS: r.IOPS, P50us: r.Clat.Percentile["50.000000"] / 1e3, P99us: r.Clat.Percentile["99.000000"] / 1e3}, nil
}

func percentile(ps []spdk.Percentile, pct float64) float64 {
	for _, p := range ps {
		if p.Percent >= pct {
			return p.Us
		}
	}
	return 0
}

// pinned replaces pinToken in flags by --cpus=cpus.
func pinned(flags []string, cpus string) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		if f == pinToken {
			f = "--cpus=" + cpus
		}
		out[i] = f
	}
	return out
}

// mask is a CPU list as a DPDK core mask (0x2).
func mask(list string) string {
	cpus, _ := cpuset.Parse(list) // checked in run
	var m uint64
	for _, c := range cpus {
		if c < 64 {
			m |= 1 << c
		}
	}
	return fmt.Sprintf("0x%x", m)
}

// pingpongServe serves the ping-pong on the CPUs args[0] until SIGINT.
func pingpongServe(args []string) int {
	cpus, err := cpuset.Parse(strings.Join(args, ""))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := cpuset.Pin(cpus); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := perf.StartPingPongServer("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("pingpong listening on " + s.Addr())
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	<-c
	_ = s.Close()
	return 0
}

// pingpongRun is the ping-pong's client: ADDR QD SECONDS; it prints a
// Measurement as JSON.
func pingpongRun(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: benchspdk pingpong-run ADDR QD SECONDS")
		return 2
	}
	qd, _ := strconv.Atoi(args[1])
	secs, _ := strconv.Atoi(args[2])
	r, err := perf.RunPingPongFor(args[0], qd, time.Duration(secs)*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lat := r.Latencies
	slices.Sort(lat)
	m := Measurement{IOPS: r.IOPS()}
	if n := len(lat); n > 0 {
		m.P50us = float64(lat[n/2]) / 1e3
		m.P99us = float64(lat[n*99/100]) / 1e3
	}
	_ = json.NewEncoder(os.Stdout).Encode(m)
	return 0
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(strings.TrimSpace(string(st))) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// machine describes the CPU and the load before the run.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			load = ", load average " + f[0] + " at the start"
		}
	}
	return fmt.Sprintf("%d CPUs, %s%s", runtime.NumCPU(), model, load)
}
