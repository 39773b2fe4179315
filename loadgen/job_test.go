package loadgen

import (
	"strings"
	"testing"
	"time"
)

func TestParseJobFile(t *testing.T) {
	base := NewJob("cli")
	if err := base.Set("iodepth", "8"); err != nil {
		t.Fatal(err)
	}
	jobs, err := ParseJobFile([]byte(`
; comment
# another
[global]
bs=4k
runtime=2m
time_based
ioengine=libaio

[a]
rw=randrw
rwmixread=70
bssplit=4k/10:64k:1m/40
random_distribution=zipf:0.8
norandommap

[b]
name=bee
rw=write
bs=128k
ramp_time=500ms
rate_iops=200
nsid=1-3
traddr=10.0.0.5
`), base)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("%d jobs", len(jobs))
	}
	a, b := jobs[0], jobs[1]
	if a.Name != "a" || !a.Read || !a.Write || !a.Random || a.RWMixRead != 70 || a.IODepth != 8 || a.Runtime != 2*time.Minute ||
		!a.TimeBased || !a.NoRandomMap || a.Zipf != 0.8 || len(a.BS) != 3 || a.BS[1].Size != 64<<10 || a.BS[1].Pct != 50 {
		t.Errorf("job a: %+v", a)
	}
	if b.Name != "bee" || b.Read || !b.Write || b.BS[0].Size != 128<<10 || b.RampTime != 500*time.Millisecond || b.RateIOPS != 200 ||
		b.Options["traddr"] != "10.0.0.5" || b.Options["nsid"] != "1-3" {
		t.Errorf("job b: %+v", b)
	}
	for _, bad := range []struct{ file, want string }{
		{"[global]\nbs=4k\n", "no jobs defined: only [global]"},
		{"bs=4k\n[x]\n", "job file:1: option \"bs=4k\" outside of a [section]"},
		{"[x]\nrw=trimread\n", "unknown rw mode"},
		{"[x]\niodepth=0\n", "iodepth"},
		{"[x]\nfoo=1\n", "unknown or unsupported fio option \"foo\""},
		{"[x]\nsize=150%\n", "percentage between 1 and 100"},
	} {
		if _, err := ParseJobFile([]byte(bad.file), nil); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.file, err, bad.want)
		}
	}
}

func TestParseUnits(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "4k": 4096, "4KiB": 4096, "4kb": 4096, "1m": 1 << 20, "2G": 2 << 30, "1t": 1 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	for in, want := range map[string]time.Duration{"10": 10 * time.Second, "500ms": 500 * time.Millisecond, "2m": 2 * time.Minute, "1d": 24 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseNSIDs("0"); err == nil {
		t.Error("nsid 0 accepted")
	}
	if p := ProgressLine(Progress{Elapsed: 3 * time.Second, ETA: 7 * time.Second, IOPS: 123456, BW: 512 << 20, P99: 2500000}); p != "[3s] IOPS=123k BW=512MiB/s p99=2.5ms ETA 7s" {
		t.Errorf("progress line %q", p)
	}
}

// A block size beyond the controller's MDTS is refused before the run
// (SPDK ends the queue with a fatal Data Transfer Limit Exceeded when a
// write is longer), and one within it is taken.
func TestRegionRefusesBlocksBeyondMDTS(t *testing.T) {
	info := DeviceInfo{Name: "nqn.test ns1", BlockSize: 4096, Blocks: 1 << 20, MaxTransfer: 128 << 10}
	for _, c := range []struct {
		bs string
		ok bool
	}{{"128k", true}, {"256k", false}} {
		j := NewJob("t")
		if err := j.Set("bs", c.bs); err != nil {
			t.Fatal(err)
		}
		_, _, err := j.region(info)
		if (err == nil) != c.ok {
			t.Errorf("bs %s with MDTS 128 KiB: err %v", c.bs, err)
		}
		if err != nil && !strings.Contains(err.Error(), "MDTS") {
			t.Errorf("bs %s: %q does not say MDTS", c.bs, err)
		}
	}
	info.MaxTransfer = 0 // no limit
	j := NewJob("t")
	_ = j.Set("bs", "1m")
	if _, _, err := j.region(info); err != nil {
		t.Errorf("no MDTS limit: %v", err)
	}
}

// TestJobFileDuplicateSections: fio runs a section name given twice as two
// jobs, in order, each with its own options; a [global] affects only the
// jobs after it.
func TestJobFileDuplicateSections(t *testing.T) {
	jobs, err := ParseJobFile([]byte(`
[global]
bs=4k
[job1]
rw=randread
iodepth=4
[global]
bs=8k
[job1]
rw=randwrite
[job2]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 3 {
		t.Fatalf("%d jobs, want 3 (job1 twice, job2)", len(jobs))
	}
	a, b, c := jobs[0], jobs[1], jobs[2]
	if a.Name != "job1" || a.RWString() != "randread" || a.BS[0].Size != 4096 || a.IODepth != 4 {
		t.Errorf("first job1: %s rw=%s bs=%d iodepth=%d", a.Name, a.RWString(), a.BS[0].Size, a.IODepth)
	}
	if b.Name != "job1" || b.RWString() != "randwrite" || b.BS[0].Size != 8192 || b.IODepth != 1 {
		t.Errorf("second job1: %s rw=%s bs=%d iodepth=%d", b.Name, b.RWString(), b.BS[0].Size, b.IODepth)
	}
	if c.Name != "job2" || c.RWString() != "read" || c.BS[0].Size != 8192 {
		t.Errorf("job2: %s rw=%s bs=%d", c.Name, c.RWString(), c.BS[0].Size)
	}
}
