package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// TestShardsMergeLikeOneRun is the local simulation of a load from many
// hosts: three shard processes (children of the test binary, each its own
// process and clock, as on three nodes) run --shard I/3 of one job
// against the reference target with one --start-at, while a fourth runs
// the same job unsharded. Rate-limited clones make the load the same
// whatever the machine's speed, so the comparison holds on two busy cores.
// Then 'report merge' must give: the I/O count of all shards, the rate of
// the unsharded run within noise, and latency percentiles exactly those
// of one HdrHistogram built from every I/O's latency in the shards' fio
// per-I/O logs (an independent record of all the samples).
func TestShardsMergeLikeOneRun(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "1GiB", BlockSize: 512}}
	tg := targettest.Start(t, cfg)
	host, port, _ := net.SplitHostPort(tg.Addrs()[0].String())
	dir := t.TempDir()
	const n, perClone, clones = 3, 150, 6 // 900 IOPS in all
	load := []string{"bench", "-a", host, "-s", port, "-n", target.DefaultSubsystemNQN, "--rw", "randread", "--bs", "4k",
		"--numjobs", strconv.Itoa(clones), "--rate_iops", strconv.Itoa(perClone), "--runtime", "2", "--time_based",
		"--status-interval", "500ms", "--progress", "never"}
	startAt := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	type res struct {
		code      int
		out, errs string
	}
	results := make([]res, n+1)
	var wg sync.WaitGroup
	for i := range n + 1 {
		args := append([]string(nil), load...)
		if i < n {
			args = append(args, "--shard", fmt.Sprintf("%d/%d", i, n), "--start-at", startAt,
				"--report-dir", filepath.Join(dir, fmt.Sprintf("shard-%d", i)),
				"--write_lat_log", filepath.Join(dir, fmt.Sprintf("lat-%d", i)))
			if i == 0 {
				args = append(args, "--print-shard-result") // as in a pod: the result in its log too
			}
		} else {
			args = append(args, "--report-dir", filepath.Join(dir, "single"))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errs := runChild(t, args...)
			results[i] = res{code, out, errs}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.code, r.errs)
		}
	}
	var shardDirs []string
	for i := range n {
		shardDirs = append(shardDirs, filepath.Join(dir, fmt.Sprintf("shard-%d", i)))
	}
	merged := filepath.Join(dir, "merged")
	code, _, errs := runCLI(t, "", append(append([]string{"report", "merge"}, shardDirs...), "--report-dir", merged)...)
	if code != 0 {
		t.Fatalf("report merge: exit %d: %s", code, errs)
	}
	run, err := reports.Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	single, err := reports.Load(filepath.Join(dir, "single"))
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Bench) != 1 || len(single.Bench) != 1 {
		t.Fatalf("merged %d and single %d summaries, want 1 each", len(run.Bench), len(single.Bench))
	}
	m, s := run.Bench[0], single.Bench[0]
	if len(run.Shards) != n {
		t.Errorf("%d per-shard rows, want %d", len(run.Shards), n)
	}
	// Every I/O of every shard, from the per-I/O logs.
	all := hdrhistogram.New(1, int64(10*time.Minute), 3)
	var ios, shardIOs int64
	logs, _ := filepath.Glob(filepath.Join(dir, "lat-*_lat.*.log"))
	if len(logs) != clones {
		t.Fatalf("%d per-I/O lat logs (%v), want one per clone: %d", len(logs), logs, clones)
	}
	for _, name := range logs {
		ios += readLatLog(t, name, all)
	}
	for _, r := range run.Shards {
		shardIOs += r.IOs
	}
	if m.IOs != ios || m.IOs != shardIOs {
		t.Errorf("merged %d I/Os; the per-I/O logs hold %d, the shards report %d", m.IOs, ios, shardIOs)
	}
	want := reports.Latency{Mean: all.Mean(), Min: all.Min(), P50: all.ValueAtQuantile(50), P90: all.ValueAtQuantile(90),
		P99: all.ValueAtQuantile(99), P999: all.ValueAtQuantile(99.9), P9999: all.ValueAtQuantile(99.99), Max: all.Max()}
	if m.Latency != want {
		t.Errorf("merged latency %+v\nis not that of one histogram of all samples %+v", m.Latency, want)
	}
	// The same load, whether sharded or not: rate-limited to 900 IOPS.
	total := float64(perClone * clones)
	for name, v := range map[string]float64{"merged": m.IOPS, "single": s.IOPS} {
		if v < 0.85*total || v > 1.1*total {
			t.Errorf("%s IOPS %.0f, want %.0f within noise", name, v, total)
		}
	}
	// The merged series sums the shards' intervals by absolute time: each
	// whole interval carries the whole load, not one shard's.
	var whole []float64
	for _, p := range m.Series {
		if !p.Partial && !p.Ramp {
			whole = append(whole, p.IOPS)
		}
	}
	if len(whole) < 2 {
		t.Fatalf("merged series has %d whole intervals: %+v", len(whole), m.Series)
	}
	sort.Float64s(whole)
	if med := whole[len(whole)/2]; med < 0.7*total || med > 1.3*total {
		t.Errorf("median merged interval %.0f IOPS, want about %.0f (intervals misaligned?): %v", med, total, whole)
	}
	for i := range n {
		sr, err := reports.ReadShard(shardDirs[i])
		if err != nil {
			t.Fatal(err)
		}
		if sr.Shard != i || sr.StartAt.IsZero() || sr.Jobs[0].NumJobs != clones/n {
			t.Errorf("shard %d: %+v", i, sr)
		}
		if i > 0 {
			s0, _ := reports.ReadShard(shardDirs[0])
			if sr.Jobs[0].Seed == s0.Jobs[0].Seed {
				t.Errorf("shards 0 and %d have the same seed %d", i, sr.Jobs[0].Seed)
			}
		}
	}
	// Shard 0's result taken from its output (a pod log) merges the same.
	podLog := filepath.Join(dir, "shard-0.log")
	if err := os.WriteFile(podLog, []byte(results[0].out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "", "report", "merge", podLog, shardDirs[1], shardDirs[2], "--report-dir", filepath.Join(dir, "merged-log"))
	if code != 0 {
		t.Fatalf("report merge of a log: exit %d: %s", code, errs)
	}
	fromLog, err := reports.Load(filepath.Join(dir, "merged-log"))
	if err != nil {
		t.Fatal(err)
	}
	if fl := fromLog.Bench[0]; fl.IOs != m.IOs || fl.Latency != m.Latency || fl.IOPS != m.IOPS {
		t.Errorf("merged with shard 0 from its log: %+v; from its directory: %+v", fl, m)
	}
	if b, err := os.ReadFile(filepath.Join(merged, "report.html")); err != nil || !strings.Contains(string(b), "Per shard") {
		t.Errorf("report.html lacks the shards' table (%v)", err)
	}
	var fio struct {
		Jobs []struct {
			Read struct {
				TotalIOs int64 `json:"total_ios"`
			} `json:"read"`
		} `json:"jobs"`
	}
	b, _ := os.ReadFile(filepath.Join(merged, "bench", "fio.json"))
	if err := json.Unmarshal(b, &fio); err != nil || len(fio.Jobs) != 1 || fio.Jobs[0].Read.TotalIOs != ios {
		t.Errorf("merged fio.json: %v %+v, want %d read I/Os", err, fio, ios)
	}
}

// readLatLog adds the latencies (ns) of a fio per-I/O log to h and
// returns how many there were.
func readLatLog(t *testing.T, name string, h *hdrhistogram.Histogram) int64 {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(fields[1]), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", name, sc.Text(), err)
		}
		_ = h.RecordValue(max(v, 1))
		n++
	}
	return n
}

func TestShardFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "3/3", "--report-dir", "x"}, "I counts from 0 to N-1"},
		{[]string{"--shard", "1-3", "--report-dir", "x"}, "give shard I of N as I/N"},
		{[]string{"--shard", "0/2"}, "give --report-dir DIR"},
		{[]string{"--shard", "0/2", "--report-dir", "x", "--shard-split", "zones"}, "use numjobs, region or nsid"},
		{[]string{"--shard", "0/2", "--report-dir", "x", "--numjobs", "1"}, "numjobs=1 cannot be split over 2 shards"},
		{[]string{"--shard", "0/2", "--report-dir", "x", "--shard-split", "nsid", "--numjobs", "2"}, "1 namespace(s) cannot be split over 2 shards"},
		{[]string{"--start-at", "tomorrow"}, "RFC 3339"},
		{[]string{"--start-at", "2099-01-01T00:00:00Z"}, "more than a day away"},
		{[]string{"--print-shard-result"}, "needs --shard"},
	} {
		args := append([]string{"bench", "-a", "127.0.0.1", "-n", "nqn.x"}, tc.args...)
		code, _, errs := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line saying %q", tc.args, code, errs, tc.want)
		}
	}
}
