//go:build linux

package soak

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Tolerances of the settle oracle: what may remain above the baseline
// once every actor has stopped and the target is idle, and how long it
// may take to get there.
const (
	// tolGoroutines covers runtime and testing helpers that come and go;
	// every connection the target serves costs at least one goroutine.
	tolGoroutines = 4
	// tolFDs: every connection costs one descriptor on each side.
	tolFDs = 2
	// tolHeap is far below what a leaked association costs with any data
	// buffer (the review measured 32 MiB per idle I/O queue after a burst,
	// 46 KiB per idle association); the goroutine and descriptor counts
	// catch idle ones.
	tolHeap = 8 << 20
	// settleMax bounds the wait for all of the above.
	settleMax = 20 * time.Second
	// peakCeiling bounds the live heap (as of the latest collection)
	// above the baseline at any moment of the run: a remote amplification
	// that a time bound would hide (1 GiB per association in review #5)
	// still trips it. Measured on the base target, which keeps up to 8 MiB
	// of slot buffers per live I/O queue (review #19): about 300 MiB.
	peakCeiling = 512 << 20
)

// sample is one measurement of the process.
type sample struct {
	heap, stack uint64 // HeapAlloc and StackInuse
	goroutines  int
	fds         int   // -1 where /proc is absent
	ctrls       int64 // the target's live controllers, from its log
}

func (s sample) String() string {
	return fmt.Sprintf("heap %s, stacks %s, %d goroutines, %d fds, %d controllers",
		mib(s.heap), mib(s.stack), s.goroutines, s.fds, s.ctrls)
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// measure samples the process; gc first collects garbage twice (the second
// empties sync.Pool victims) so heap is what is live.
func (s *soak) measure(gc bool) sample {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return sample{heap: m.HeapAlloc, stack: m.StackInuse, goroutines: runtime.NumGoroutine(), fds: s.openFDs(), ctrls: s.logs.liveControllers()}
}

// openFDs counts this process's descriptors. Reading /proc opens one, so
// it waits for the descriptor gate like every other opener.
func (s *soak) openFDs() int {
	s.gate.RLock()
	defer s.gate.RUnlock()
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(d)
}

// fdKinds summarizes the open descriptors by what they point at.
func (s *soak) fdKinds() string {
	s.gate.RLock()
	defer s.gate.RUnlock()
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err.Error()
	}
	kinds := map[string]int{}
	for _, e := range d {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		if i := strings.IndexByte(l, '['); i > 0 {
			l = l[:i]
		}
		kinds[l]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, kinds[k]))
	}
	return strings.Join(parts, " ")
}

// excess lists what cur holds above base beyond the tolerances.
func excess(cur, base sample) []string {
	var l []string
	if cur.goroutines > base.goroutines+tolGoroutines {
		l = append(l, fmt.Sprintf("goroutines %d, baseline %d (+%d allowed)", cur.goroutines, base.goroutines, tolGoroutines))
	}
	if base.fds >= 0 && cur.fds > base.fds+tolFDs {
		l = append(l, fmt.Sprintf("open fds %d, baseline %d (+%d allowed)", cur.fds, base.fds, tolFDs))
	}
	if cur.heap > base.heap+tolHeap {
		l = append(l, fmt.Sprintf("heap in use %s, baseline %s (+%s allowed)", mib(cur.heap), mib(base.heap), mib(tolHeap)))
	}
	if cur.ctrls != base.ctrls {
		l = append(l, fmt.Sprintf("target controllers %d, baseline %d (from its log: %q less %q)", cur.ctrls, base.ctrls, msgCtrlCreated, msgCtrlEnded))
	}
	return l
}

// settle waits up to settleMax for the process to come back to the
// baseline; it returns the last sample, how long it took and what is
// still above the baseline (nil: settled).
func (s *soak) settle() (sample, time.Duration, []string) {
	start := time.Now()
	for {
		cur := s.measure(true)
		ex := excess(cur, s.base)
		if ex == nil || time.Since(start) > settleMax {
			return cur, time.Since(start), ex
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// peaks tracks the largest figures seen during the run.
type peaks struct {
	mu         sync.Mutex
	heap       uint64 // HeapAlloc: live objects and garbage not yet swept
	live       uint64 // heap marked live by the latest collection
	liveAt     time.Duration
	goroutines int
	fds        int
}

// liveHeap is the heap the latest garbage collection found live: unlike
// HeapAlloc it does not count garbage, and it costs no collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// meter samples the process every interval until stop is closed.
func (s *soak) meter(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	fdEvery := 0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		live := liveHeap()
		g := runtime.NumGoroutine()
		fds := -1
		if fdEvery++; fdEvery%4 == 0 {
			fds = s.openFDs()
		}
		s.peak.mu.Lock()
		s.peak.heap = max(s.peak.heap, m.HeapAlloc)
		if live > s.peak.live {
			s.peak.live, s.peak.liveAt = live, time.Since(s.rep.start)
		}
		s.peak.goroutines = max(s.peak.goroutines, g)
		s.peak.fds = max(s.peak.fds, fds)
		s.peak.mu.Unlock()
		if live > s.base.heap+peakCeiling {
			s.rep.violate("soak", "live heap above the ceiling",
				fmt.Sprintf("%s live at the last collection, baseline %s, ceiling +%s", mib(live), mib(s.base.heap), mib(peakCeiling)))
		}
	}
}

// goroutineDump is every goroutine's stack, grouped, cut to a readable
// size.
func goroutineDump() string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	const limit = 60 << 10
	if b.Len() > limit {
		return b.String()[:limit] + "\n... (cut)"
	}
	return b.String()
}

// raiseNOFILE lifts the soft descriptor limit to the hard one (floods
// hold both ends of hundreds of connections in this process) and returns
// the limit now in force.
func raiseNOFILE() (syscall.Rlimit, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return r, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return r, err
		}
	}
	return r, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
}
