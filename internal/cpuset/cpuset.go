// Package cpuset places a process on chosen CPUs, as SPDK's core mask and
// taskset do: `--cpus 0,2-3` or `--cpus 0x5` on target and bench.
//
// On a machine where a neighbour polls (an SPDK app spins on its core at
// 100% even when idle), a Go program left on every CPU with GOMAXPROCS
// equal to the CPU count puts a thread on the neighbour's core and loses
// most of its time there; the runtime's idle Ps spinning for work make it
// worse. Pinning to the free cores with GOMAXPROCS to match avoids both.
package cpuset

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Parse reads a CPU list: comma-separated CPUs and ranges ("0,2-3"), or
// a hexadecimal mask as SPDK's -m takes it ("0x5" is CPUs 0 and 2). The
// result is sorted and without duplicates.
func Parse(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty CPU list (give e.g. 0,2-3 or 0x5)")
	}
	set := map[int]bool{}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		m, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil || m == 0 {
			return nil, fmt.Errorf("CPU mask %q: want a non-zero hexadecimal mask such as 0x3", s)
		}
		for i := 0; i < 64; i++ {
			if m&(1<<i) != 0 {
				set[i] = true
			}
		}
	} else {
		for _, part := range strings.Split(s, ",") {
			lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
			a, err := strconv.Atoi(lo)
			if err != nil || a < 0 {
				return nil, fmt.Errorf("CPU list %q: %q is not a CPU number (give e.g. 0,2-3 or 0x5)", s, part)
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil || b < a {
					return nil, fmt.Errorf("CPU list %q: %q is not a range LO-HI", s, part)
				}
			}
			if b-a > 4096 {
				return nil, fmt.Errorf("CPU list %q: range %q is too large", s, part)
			}
			for i := a; i <= b; i++ {
				set[i] = true
			}
		}
	}
	cpus := make([]int, 0, len(set))
	for c := range set {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	return cpus, nil
}

// Format is the list in Parse's syntax, ranges folded ("0,2-3").
func Format(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// Pin restricts every thread of the process to cpus and sets GOMAXPROCS
// to their number. Threads the runtime makes later inherit the mask from
// the thread that makes them. It fails, changing nothing it can undo,
// when a CPU is not one this process may run on.
func Pin(cpus []int) error {
	if err := SetAffinity(cpus); err != nil {
		return err
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// SetAffinity is Pin without touching GOMAXPROCS.
func SetAffinity(cpus []int) error {
	if len(cpus) == 0 {
		return errors.New("no CPUs to pin to")
	}
	return pin(cpus)
}

// Busy is how busy each CPU was over a sampling window, 0 to 1, counting
// every process (the kernel's per-CPU times in /proc/stat).
type Busy map[int]float64

// AvoidBusy picks the CPUs of allowed to run on when some of them are
// kept busy by someone else: it returns those below half busy when at
// least one CPU of allowed was at 90% or more, and nil (no reason to
// move) otherwise or when all of them are busy. A polling neighbour (an
// SPDK app, spdk_nvme_perf) holds its core at 100% even when idle; a Go
// program that shares that core loses most of its time there.
func AvoidBusy(b Busy, allowed []int) []int {
	var free []int
	hot := false
	for _, c := range allowed {
		switch v := b[c]; {
		case v >= 0.9:
			hot = true
		case v < 0.5:
			free = append(free, c)
		}
	}
	if !hot || len(free) == 0 {
		return nil
	}
	return free
}
