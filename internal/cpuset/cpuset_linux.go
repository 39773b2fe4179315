package cpuset

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

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

// Allowed is the CPUs this process may run on now.
func Allowed() ([]int, error) {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil {
		return nil, err
	}
	return setCPUs(&s), nil
}

// cpuTimes is one /proc/stat reading: per CPU, busy and total jiffies.
type cpuTimes map[int][2]uint64

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUTimes(b), nil
}

// parseCPUTimes reads the "cpuN user nice system idle iowait irq softirq
// steal ..." lines; idle and iowait are not busy.
func parseCPUTimes(b []byte) cpuTimes {
	t := cpuTimes{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var busy, total uint64
		for i, v := range f[1:] {
			x, _ := strconv.ParseUint(v, 10, 64)
			if i >= 8 { // guest, guest_nice: already in user
				break
			}
			total += x
			if i != 3 && i != 4 {
				busy += x
			}
		}
		t[n] = [2]uint64{busy, total}
	}
	return t
}

// busySince is how busy each CPU was between two readings.
func busySince(a, b cpuTimes) Busy {
	out := Busy{}
	for c, y := range b {
		x, ok := a[c]
		if !ok || y[1] <= x[1] {
			continue
		}
		out[c] = float64(y[0]-x[0]) / float64(y[1]-x[1])
	}
	return out
}

// SampleBusy measures how busy each CPU is over d.
func SampleBusy(d time.Duration) (Busy, error) {
	a, err := readCPUTimes()
	if err != nil {
		return nil, err
	}
	time.Sleep(d)
	b, err := readCPUTimes()
	if err != nil {
		return nil, err
	}
	return busySince(a, b), nil
}
