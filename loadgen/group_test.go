package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// groupRun runs x (2 clones) and y with group_reporting in group 0, and z
// without it in group 1.
func groupRun(t *testing.T) *Result {
	t.Helper()
	x := mustJob(t, "x", "rw", "read", "size", "1m", "numjobs", "2", "group_reporting", "1")
	y := mustJob(t, "y", "rw", "readwrite", "bs", "8k", "size", "1m", "group_reporting", "1")
	z := mustJob(t, "z", "rw", "read", "size", "512k", "new_group", "1")
	res, err := Run(context.Background(), []Target{nullTarget(t, x, 1<<16), nullTarget(t, y, 1<<16), nullTarget(t, z, 1<<16)}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func decodeFio(t *testing.T, b []byte) FioOutput {
	t.Helper()
	var o FioOutput
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("%v\n%.300s", err, b)
	}
	return o
}

// TestGroupReportingJSON: json and json+ give a group_reporting group one
// entry named after its first job, with the I/Os summed, the latency
// percentiles of the merged histograms, fio's runtimes and the groupid.
func TestGroupReportingJSON(t *testing.T) {
	res := groupRun(t)
	x, y := res.Jobs[0], res.Jobs[1]
	merged := newHist()
	merged.Merge(x.Read.Clat)
	merged.Merge(y.Read.Clat)
	for _, format := range []string{"json", "json+"} {
		var b bytes.Buffer
		f, _ := ParseOutputFormat(format)
		if err := WriteOutput(&b, res, f); err != nil {
			t.Fatal(err)
		}
		o := decodeFio(t, b.Bytes())
		var names []string
		for _, j := range o.Jobs {
			names = append(names, fmt.Sprintf("%s/g%d", j.JobName, j.GroupID))
		}
		if got := strings.Join(names, " "); got != "x/g0 z/g1" {
			t.Fatalf("%s: entries %s, want x/g0 z/g1", format, got)
		}
		g := o.Jobs[0]
		reads, rbytes := x.Read.IOs+y.Read.IOs, x.Read.Bytes+y.Read.Bytes
		if g.Read.TotalIOs != reads || g.Read.IOBytes != rbytes || g.Write.TotalIOs != y.Write.IOs {
			t.Errorf("%s: read %d I/Os %d B, write %d I/Os; want %d, %d B, %d", format, g.Read.TotalIOs, g.Read.IOBytes, g.Write.TotalIOs,
				reads, rbytes, y.Write.IOs)
		}
		if g.Read.Clat.N != reads {
			t.Errorf("%s: clat N %d, want %d", format, g.Read.Clat.N, reads)
		}
		for _, p := range []float64{50, 99, 99.99} {
			if got, want := g.Read.Clat.Percentile[FioPercentileKey(p)], merged.ValueAtQuantile(p); got != want {
				t.Errorf("%s: p%v %d, want %d (the merged histogram's)", format, p, got, want)
			}
		}
		if want := max(x.Runtime, y.Runtime).Milliseconds(); g.Read.Runtime != want {
			t.Errorf("%s: read runtime %d ms, want the longest member's %d", format, g.Read.Runtime, want)
		}
		if want := (x.clonesRuntime + y.clonesRuntime).Milliseconds(); g.JobRuntime != want {
			t.Errorf("%s: job_runtime %d ms, want the members' sum %d", format, g.JobRuntime, want)
		}
		if g.JobOptions["rw"] != "readwrite" {
			t.Errorf("%s: job options %v, want the last member's, as fio", format, g.JobOptions)
		}
		if format == "json+" {
			var n int64
			for _, c := range g.Read.Clat.Bins {
				n += c
			}
			if n != reads {
				t.Errorf("json+: read bins hold %d I/Os, want %d", n, reads)
			}
		}
	}
}

// TestGroupReportingNormal: one block per reporting group, jobs=N the
// jobs it holds (clones counted), and the run status from the entries.
func TestGroupReportingNormal(t *testing.T) {
	res := groupRun(t)
	var b bytes.Buffer
	WriteSummary(&b, res)
	out := b.String()
	x, y := res.Jobs[0], res.Jobs[1]
	rw := fmt.Sprintf("io=%s (", iec(float64(x.Read.Bytes+y.Read.Bytes)))
	for _, want := range []string{"x: (groupid=0, jobs=3): err= 0", "z: (groupid=1, jobs=1): err= 0", rw, "3 job(s) in 2 group(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "y: (") {
		t.Errorf("y is reported alone:\n%s", out)
	}
}

// TestGroupReportingTerse: one terse line per entry.
func TestGroupReportingTerse(t *testing.T) {
	res := groupRun(t)
	var b bytes.Buffer
	if err := WriteTerse(&b, res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), b.String())
	}
	f := strings.Split(lines[0], ";")
	x, y := res.Jobs[0], res.Jobs[1]
	rk, wk := fmt.Sprint((x.Read.Bytes+y.Read.Bytes)>>10), fmt.Sprint(y.Write.Bytes>>10)
	// Fields: 3 name, 4 groupid, 6 read KiB; 47 write KiB.
	if f[2] != "x" || f[3] != "0" || f[5] != rk || f[46] != wk {
		t.Errorf("first line: name %s group %s read %s KiB write %s KiB; want x 0 %s %s", f[2], f[3], f[5], f[46], rk, wk)
	}
}

// TestGroupedMembers: the error is the first failing member's; a job
// without group_reporting stays alone and splits the runs around it;
// grouping twice changes nothing.
func TestGroupedMembers(t *testing.T) {
	job := func(name string, gr bool, n int) *Job {
		j := NewJob(name)
		j.GroupReporting, j.NumJobs = gr, n
		return j
	}
	e1, e2 := errors.New("first"), errors.New("second")
	r := &Result{Jobs: []*JobResult{
		{Job: job("a", true, 1), Runtime: time.Second, clonesRuntime: time.Second, Read: DirResult{IOPSSamples: []float64{10, 20}}},
		{Job: job("b", true, 2), Runtime: 2 * time.Second, clonesRuntime: 3 * time.Second, Err: e1, Read: DirResult{IOPSSamples: []float64{5}}},
		{Job: job("c", true, 1), Err: e2},
		{Job: job("d", false, 1)},
		{Job: job("e", true, 1)},
		{Job: job("f", true, 1), Group: 1},
	}, Series: []Sample{{Job: 5}}}
	g := Grouped(r)
	var names []string
	for _, jr := range g.Jobs {
		names = append(names, fmt.Sprintf("%s:%d", jr.Job.Name, jr.NumJobs()))
	}
	if got := strings.Join(names, " "); got != "a:4 d:1 e:1 f:1" {
		t.Fatalf("entries %s, want a:4 d:1 e:1 f:1", got)
	}
	if g.Jobs[0].Err != e1 || g.Jobs[0].Runtime != 2*time.Second || g.Jobs[0].JobRuntime() != 4*time.Second {
		t.Errorf("a: err %v runtime %v job_runtime %v; want first, 2s, 4s", g.Jobs[0].Err, g.Jobs[0].Runtime, g.Jobs[0].JobRuntime())
	}
	// fio sums the members' rates: min, max and mean add up, the samples
	// are counted together.
	if s := g.Jobs[0].Read.IOPSStats(); s.Min != 15 || s.Max != 25 || s.Mean != 20 || s.N != 3 {
		t.Errorf("a: iops samples %+v, want min 15 max 25 mean 20 N 3", s)
	}
	if g.Series != nil || len(r.Jobs) != 6 {
		t.Errorf("series %v kept, or r changed (%d jobs)", g.Series, len(r.Jobs))
	}
	if again := Grouped(g); len(again.Jobs) != len(g.Jobs) {
		t.Errorf("grouping twice: %d entries, want %d", len(again.Jobs), len(g.Jobs))
	}
	// Two loads grouped apart and written together stay apart.
	two := &Result{Jobs: append(append([]*JobResult(nil), g.Jobs...), g.Jobs...)}
	if n := len(Grouped(two).Jobs); n != 8 {
		t.Errorf("two grouped loads: %d entries, want 8", n)
	}
}

// TestGroupReportingLikeFio runs fio itself on a job file where only some
// jobs set group_reporting, across stonewall and new_group, and compares
// its JSON entries (names, groupids, I/Os) with ours. Skipped without
// fio, unless NVMFTEST_REQUIRE_TOOLS=1.
func TestGroupReportingLikeFio(t *testing.T) {
	fio := fioBinary(t)
	file, err := filepath.Abs("testdata/group_reporting.fio")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(fio, "--output-format=json", "--ioengine=null", file).Output()
	if err != nil {
		t.Fatalf("fio: %v\n%s", err, out)
	}
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	summary := func(o FioOutput) string {
		var s []string
		for _, j := range o.Jobs {
			s = append(s, fmt.Sprintf("%s g%d read %d write %d", j.JobName, j.GroupID, j.Read.TotalIOs, j.Write.TotalIOs))
		}
		return strings.Join(s, "\n  ")
	}
	want := summary(decodeFio(t, out))

	jobs, err := LoadJobFile(file, nil, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for _, j := range jobs {
		targets = append(targets, nullTarget(t, j, 1<<16))
	}
	res, err := Run(context.Background(), targets, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteFioJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	if got := summary(decodeFio(t, b.Bytes())); got != want {
		t.Errorf("fio:\n  %s\nnvmftest:\n  %s", want, got)
	}
}
