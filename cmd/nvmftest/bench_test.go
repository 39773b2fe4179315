package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/target"
)

func TestBenchFlags(t *testing.T) {
	h, p := startHostTestTarget(t)
	dir := t.TempDir()
	hist, series := filepath.Join(dir, "lat.hlog"), filepath.Join(dir, "series.csv")
	code, out, errs := runCLI(t, "", "bench", "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN,
		"--name", "rr", "--rw", "randrw", "--rwmixread", "70", "--bs", "4k", "--iodepth", "8", "--runtime", "500ms",
		"--time_based", "--ramp_time", "100ms", "--verify", "crc32c", "--size", "1m",
		"--write_hist_log", hist, "--write_series", series, "--status-interval", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"rr: (groupid=0, jobs=1): err= 0: rw=randrw, bs=4k, iodepth=8", "read: IOPS=", "write: IOPS=", "clat percentiles", "99.90th=", "verify:", "Run status"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	b, _ := os.ReadFile(hist)
	if !strings.Contains(string(b), "Tag=rr.read,") || !strings.Contains(string(b), "#[StartTime:") {
		t.Errorf("interval log:\n%.400s", b)
	}
	b, _ = os.ReadFile(series)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) < 5 || !strings.HasPrefix(lines[0], "time_s,job,dir,iops") {
		t.Errorf("series:\n%s", b)
	}
}

// TestBenchJobFile: a fio job file with [global], two jobs (one on a
// second namespace), bare boolean keys and JSON output a fio consumer
// reads.
func TestBenchJobFile(t *testing.T) {
	jf := filepath.Join(t.TempDir(), "jobs.fio")
	os.WriteFile(jf, []byte(`; fio job file
[global]
ioengine=libaio
direct=1
bs=4k
runtime=300ms
time_based
iodepth=4

[seq-read]
rw=read

[rand-write]
rw=randwrite
bssplit=4k/50:16k/50
norandommap
random_distribution=zipf:1.2
`), 0o644)
	code, out, errs := runCLI(t, "", "bench", "--embedded", "mem:64MiB", "--output-format", "json", jf)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var fio struct {
		Jobs []struct {
			Name  string `json:"jobname"`
			Error int    `json:"error"`
			Read  struct {
				IOPS float64 `json:"iops"`
				Clat struct {
					Percentile map[string]int64 `json:"percentile"`
				} `json:"clat_ns"`
			} `json:"read"`
			Write struct {
				IOPS  float64 `json:"iops"`
				LatNs struct {
					Mean float64 `json:"mean"`
				} `json:"lat_ns"`
			} `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &fio); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(fio.Jobs) != 2 || fio.Jobs[0].Name != "seq-read" || fio.Jobs[1].Name != "rand-write" {
		t.Fatalf("jobs: %+v", fio.Jobs)
	}
	if fio.Jobs[0].Read.IOPS <= 0 || fio.Jobs[0].Read.Clat.Percentile["99.000000"] <= 0 || fio.Jobs[1].Write.IOPS <= 0 || fio.Jobs[1].Write.LatNs.Mean <= 0 {
		t.Errorf("jobs: %+v", fio.Jobs)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--embedded", "null:1GiB", "--rw", "sideways"}, "unknown rw mode"},
		{[]string{"bench", "--embedded", "null:1GiB", "--time_based"}, "time_based needs a runtime"},
		{[]string{"bench", "--rw", "read"}, "missing target address"},
		{[]string{"bench", "-a", "127.0.0.1", "--rw", "read"}, "missing subsystem NQN"},
		{[]string{"bench", "--embedded", "null:1GiB", "--bssplit", "4k/80:8k/80"}, "more than 100"},
		{[]string{"bench", "--embedded", "null:1GiB", "--random_distribution", "zipf:1"}, "zipf theta"},
		{[]string{"bench", "--embedded", "null:1GiB", "no-such-file.fio"}, "job file"},
		{[]string{"bench", "--embedded", "null:1GiB", "-a", "10.0.0.1", "--rw", "read"}, "--traddr has no effect"},
		{[]string{"bench", "--embedded", "null:1GiB", "-n", "nqn.x", "--rw", "read"}, "--nqn has no effect"},
	} {
		code, _, errs := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
	// A region the namespace cannot take is found before any I/O and
	// fixed in the options: a usage error, exit 2.
	code, _, errs := runCLI(t, "", "bench", "--embedded", "null:1MiB", "--bs", "4k", "--offset", "2m")
	if code != 2 || !strings.Contains(errs, "beyond the end") {
		t.Errorf("offset past the end: exit %d, %q", code, errs)
	}
}

// TestBenchStonewall: job files keep fio's phases (stonewall within a
// file, and between files) and groupids.
func TestBenchStonewall(t *testing.T) {
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one.fio"), filepath.Join(dir, "two.fio")
	os.WriteFile(one, []byte("[global]\nbs=4k\nruntime=200ms\ntime_based\nrate_iops=200\n[a]\nrw=randread\n[b]\nstonewall\nrw=randwrite\n"), 0o644)
	os.WriteFile(two, []byte("[c]\nrw=read\nsize=64k\n"), 0o644)
	code, out, errs := runCLI(t, "", "bench", "--embedded", "mem:16MiB", "--output-format", "json", one, two)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var fio struct {
		Jobs []struct {
			Name     string `json:"jobname"`
			Group    int    `json:"groupid"`
			JobStart int64  `json:"job_start"`
			Runtime  int64  `json:"job_runtime"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &fio); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(fio.Jobs) != 3 || fio.Jobs[0].Group != 0 || fio.Jobs[1].Group != 1 || fio.Jobs[2].Group != 2 {
		t.Fatalf("jobs: %+v", fio.Jobs)
	}
	// Each phase starts after the one before ended (job_start is in ms).
	if fio.Jobs[1].JobStart < fio.Jobs[0].JobStart+fio.Jobs[0].Runtime || fio.Jobs[2].JobStart < fio.Jobs[1].JobStart+fio.Jobs[1].Runtime {
		t.Errorf("phases overlap: %+v", fio.Jobs)
	}
}

// TestBenchVerifyUnwritten: a read verify job over data no verify job
// wrote fails and says how many blocks it checked.
func TestBenchVerifyUnwritten(t *testing.T) {
	code, out, errs := runCLI(t, "", "bench", "--embedded", "mem:16MiB", "--rw", "randread", "--verify", "crc32c", "--size", "64k")
	if code != 1 || !strings.Contains(out, "verify: 0 blocks checked, 1 without a verify header") || !strings.Contains(errs, "no verify header") {
		t.Errorf("read verify over unwritten data: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestBenchProgressSumsPhases: an interrupted load's "X of Y" plans the
// phases of a stonewalled job file one after another (the sum of each
// phase's longest job), not all at once.
func TestBenchProgressSumsPhases(t *testing.T) {
	jobs := []*loadgen.Job{
		{Name: "a", Runtime: 2 * time.Second},
		{Name: "b", Runtime: 3 * time.Second, RampTime: time.Second},
		{Name: "c", Runtime: 5 * time.Second, Stonewall: true},
		{Name: "d", Runtime: time.Second, Stonewall: true},
	}
	res := &loadgen.Result{Elapsed: 2500 * time.Millisecond}
	if got, want := benchProgress(res, jobs), "2.5s of 10s"; got != want {
		t.Errorf("benchProgress = %q, want %q", got, want)
	}
	jobs[3].Runtime = 0
	if got := benchProgress(res, jobs); !strings.Contains(got, "before the jobs' I/O was done") {
		t.Errorf("benchProgress with a job of no runtime = %q", got)
	}
}

// TestBenchHelpNamesValueTypes: numeric fio flags say what they take
// (review item 14: every fio flag showed "string").
func TestBenchHelpNamesValueTypes(t *testing.T) {
	_, out, _ := runCLI(t, "", "bench", "--help")
	for _, want := range []string{"--iodepth int", "--bs size", "--runtime time", "--time_based[=1]"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench --help lacks %q", want)
		}
	}
}
