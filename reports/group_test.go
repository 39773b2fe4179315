package reports

import (
	"path/filepath"
	"testing"

	"github.com/nvmftest/nvmftest/loadgen"
)

// TestBenchFioJSONGroupsEachLoad: bench/fio.json reports a group_reporting
// group as one job, and two loads in one run, each with its group 0,
// stay two entries.
func TestBenchFioJSONGroupsEachLoad(t *testing.T) {
	load := func(names ...string) *loadgen.Result {
		res := sampleLoad(t, 1, 1)
		for i, jr := range res.Jobs {
			jr.Job.Name, jr.Job.GroupReporting = names[i], true
		}
		return res
	}
	r := &Run{}
	r.AddBench(load("a", "b"))
	r.AddBench(load("c", "d"))
	dir := filepath.Join(t.TempDir(), "run")
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	var fio loadgen.FioOutput
	mustJSON(t, filepath.Join(dir, "bench/fio.json"), &fio)
	var names []string
	for _, j := range fio.Jobs {
		names = append(names, j.JobName)
	}
	if len(names) != 2 || names[0] != "a" || names[1] != "c" {
		t.Errorf("fio.json jobs %v, want [a c]: each load's group as one job", names)
	}
	if len(r.Bench) != 6 {
		t.Errorf("run.json has %d job directions, want 6: it stays per job", len(r.Bench))
	}
}
