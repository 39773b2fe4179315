package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/internal/cpuset"
)

// A bad --cpus is a usage error naming the flag, before anything runs;
// valid ones pin in a child process only (pinning the test binary would
// slow every other test), see internal/cpuset.
func TestCPUsFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"target", "--cpus", "x"}, "--cpus: CPU list \"x\""},
		{[]string{"target", "--cpus", "0x0"}, "--cpus: CPU mask"},
		{[]string{"target", "--cpus", "4000"}, "CPU 4000 is not available"},
		{[]string{"bench", "--embedded", "null:64MiB", "--cpus", "3-1", "--runtime", "1"}, "--cpus: CPU list \"3-1\""},
	} {
		code, _, errs := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, errs, tc.want)
		}
	}
}

// The target's placement without --cpus: one P per I/O queue; off a CPU a
// neighbour kept busy while no I/O ran, and back when the I/O ends; a
// window that saw our own I/O is not taken for a neighbour's.
func TestPlacement(t *testing.T) {
	var affinity []int
	procs := 0
	var logged []string
	p := &placement{all: []int{0, 1}, cpus: 2,
		setAffinity: func(c []int) error { affinity = c; return nil },
		setProcs:    func(n int) int { procs = n; return 0 },
		log:         func(msg string, _ ...any) { logged = append(logged, msg) }}

	p.busy = cpuset.Busy{0: 0.02, 1: 1.0} // spdk_nvme_perf polling CPU 1
	p.Hook(1)
	if !reflect.DeepEqual(affinity, []int{0}) || procs != 1 || len(logged) != 1 {
		t.Fatalf("first queue beside a poller: affinity %v, GOMAXPROCS %d, log %q", affinity, procs, logged)
	}
	p.Hook(2)
	if procs != 1 {
		t.Errorf("two queues on the one free CPU: GOMAXPROCS %d, want 1", procs)
	}
	p.Hook(0)
	if !reflect.DeepEqual(affinity, []int{0, 1}) || p.busy != nil {
		t.Errorf("no queues: affinity %v (want all back), busy %v (want dropped)", affinity, p.busy)
	}
	// Nobody busy: stay on every CPU, one P per queue.
	affinity = nil
	p.busy = cpuset.Busy{0: 0.1, 1: 0.2}
	p.Hook(1)
	p.Hook(2)
	if affinity != nil || procs != 2 {
		t.Errorf("quiet machine: affinity %v, GOMAXPROCS %d; want untouched and 2", affinity, procs)
	}
}
