package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// stampDevice completes every I/O at once and remembers when it saw its
// first and last I/O, so a test can tell whether two jobs' I/O overlapped.
type stampDevice struct {
	NullDevice
	mu          sync.Mutex
	first, last time.Time
}

func (d *stampDevice) Submit(io *IO) error {
	now := time.Now()
	d.mu.Lock()
	if d.first.IsZero() {
		d.first = now
	}
	d.last = now
	d.mu.Unlock()
	return d.NullDevice.Submit(io)
}

// TestStonewallPhases: a job with stonewall starts only when every job
// before it has finished, and jobs of one phase run together; stonewall
// and new_group start new reporting groups, as in fio.
func TestStonewallPhases(t *testing.T) {
	jobs, err := ParseJobFile([]byte(`
[global]
bs=4k
iodepth=2
runtime=300ms
time_based
rate_iops=400
size=1m
[a]
rw=randread
[a2]
rw=read
[b]
stonewall
rw=randwrite
[c]
new_group
rw=read
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	var devs []*stampDevice
	for _, j := range jobs {
		d := &stampDevice{NullDevice: NullDevice{BlockSize: 512, Blocks: 1 << 16}}
		devs = append(devs, d)
		targets = append(targets, Target{Job: j, Devices: []Device{d}})
	}
	res, err := Run(context.Background(), targets, RunOptions{Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range devs {
		if d.first.IsZero() {
			t.Fatalf("job %s did no I/O", jobs[i].Name)
		}
	}
	// Phase 1 (a, a2) ended before phase 2 (b, c) began: seen by the
	// devices, not by a clock speed.
	for _, p1 := range devs[:2] {
		for _, p2 := range devs[2:] {
			if !p1.last.Before(p2.first) {
				t.Errorf("phases overlap: a phase-1 job's last I/O at %v, a phase-2 job's first at %v",
					p1.last.Sub(devs[0].first), p2.first.Sub(devs[0].first))
			}
		}
	}
	// Jobs of one phase run together.
	for _, pair := range [][2]int{{0, 1}, {2, 3}} {
		x, y := devs[pair[0]], devs[pair[1]]
		if !x.first.Before(y.last) || !y.first.Before(x.last) {
			t.Errorf("jobs %s and %s of one phase did not run together", jobs[pair[0]].Name, jobs[pair[1]].Name)
		}
	}
	// The engine's own record says the same, and gives fio's groupids:
	// stonewall and new_group each start a group.
	a, a2, b, c := res.Jobs[0], res.Jobs[1], res.Jobs[2], res.Jobs[3]
	for i, want := range []int{0, 0, 1, 2} {
		if g := res.Jobs[i].Group; g != want {
			t.Errorf("job %s: group %d, want %d", jobs[i].Name, g, want)
		}
	}
	if !a.Start.Equal(a2.Start) || !b.Start.Equal(c.Start) || b.Start.Before(a.End) || b.Start.Before(a2.End) {
		t.Errorf("start/end: a %v-%v a2 %v-%v b %v-%v c %v-%v", a.Start.Sub(a.Start), a.End.Sub(a.Start), a2.Start.Sub(a.Start), a2.End.Sub(a.Start),
			b.Start.Sub(a.Start), b.End.Sub(a.Start), c.Start.Sub(a.Start), c.End.Sub(a.Start))
	}
	var sum strings.Builder
	WriteSummary(&sum, res)
	for _, want := range []string{"b: (groupid=1,", "c: (groupid=2,", "Run status group 0 (all jobs):\n   READ: bw=",
		"Run status group 1 (all jobs):\n  WRITE: bw=", "Run status group 2 (all jobs):\n   READ: bw=", "4 job(s) in 3 group(s)"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	fj := FioJSON(res).Jobs
	if fj[2].GroupID != 1 || fj[3].GroupID != 2 || fj[2].JobStart < fj[0].JobStart || fj[2].JobStart != fj[3].JobStart {
		t.Errorf("JSON: groupids %d %d %d %d, job_start %d %d %d %d", fj[0].GroupID, fj[1].GroupID, fj[2].GroupID, fj[3].GroupID,
			fj[0].JobStart, fj[1].JobStart, fj[2].JobStart, fj[3].JobStart)
	}
	t.Log(sum.String())
}

// TestStonewallAfterError: an error in one phase ends the run; the jobs
// of later phases never start and say so.
func TestStonewallAfterError(t *testing.T) {
	first := mustJob(t, "bad", "rw", "read", "size", "64k")
	second := mustJob(t, "later", "rw", "read", "size", "64k", "stonewall", "1")
	res, err := Run(context.Background(), []Target{
		{Job: first, Devices: []Device{&failDevice{NullDevice{BlockSize: 512, Blocks: 1024}}}},
		nullTarget(t, second, 1024),
	}, RunOptions{})
	if err == nil || !res.Jobs[1].Skipped || res.Jobs[1].Err == nil || res.Jobs[1].Read.IOs != 0 {
		t.Fatalf("err %v; later job skipped %v err %v ios %d", err, res.Jobs[1].Skipped, res.Jobs[1].Err, res.Jobs[1].Read.IOs)
	}
}

type failDevice struct{ NullDevice }

func (d *failDevice) Submit(io *IO) error {
	io.Err = errors.New("injected")
	io.Complete()
	return nil
}
