package cpuset

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func pin(cpus []int) error {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("reading the CPU affinity: %v", err)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c >= len(set)*64 || !allowed.IsSet(c) {
			return fmt.Errorf("CPU %d is not available to this process (available: %s)", c, Format(setCPUs(&allowed)))
		}
		set.Set(c)
	}
	// sched_setaffinity is per thread: set it on every thread there is
	// now; later ones inherit it.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("listing the process's threads: %v", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pinning thread %d to CPUs %s: %v", tid, Format(cpus), err)
		}
	}
	return nil
}

func setCPUs(s *unix.CPUSet) []int {
	var out []int
	for i := 0; i < len(s)*64; i++ {
		if s.IsSet(i) {
			out = append(out, i)
		}
	}
	return out
}
