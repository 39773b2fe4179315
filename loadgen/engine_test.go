package loadgen

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func nullTarget(t testing.TB, j *Job, blocks uint64) Target {
	t.Helper()
	devs := make([]Device, j.NumJobs)
	for i := range devs {
		devs[i] = &NullDevice{BlockSize: 512, Blocks: blocks}
	}
	return Target{Job: j, Devices: devs}
}

func mustJob(t testing.TB, name string, opts ...string) *Job {
	t.Helper()
	j := NewJob(name)
	for i := 0; i+1 < len(opts); i += 2 {
		if err := j.Set(opts[i], opts[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

func TestNullSizeBound(t *testing.T) {
	j := mustJob(t, "r", "rw", "randread", "bs", "4k", "iodepth", "32", "size", "64m")
	res, err := Run(context.Background(), []Target{nullTarget(t, j, 1<<21)}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Jobs[0]
	if r.Read.IOs != 64<<20/4096 || r.Read.Bytes != 64<<20 || r.Read.Clat.TotalCount() != r.Read.IOs {
		t.Fatalf("ios %d bytes %d hist %d", r.Read.IOs, r.Read.Bytes, r.Read.Clat.TotalCount())
	}
	if r.Write.IOs != 0 {
		t.Fatalf("writes %d", r.Write.IOs)
	}
}

func TestNullTimeBased(t *testing.T) {
	j := mustJob(t, "m", "rw", "randrw", "rwmixread", "70", "bssplit", "4k/50:64k/50", "iodepth", "8",
		"numjobs", "2", "runtime", "300ms", "ramp_time", "100ms", "time_based", "1", "size", "16m")
	var calls int
	res, err := Run(context.Background(), []Target{nullTarget(t, j, 1<<20)}, RunOptions{Interval: 50 * time.Millisecond, OnInterval: func(Progress) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Jobs[0]
	// How many 50 ms ticks fit in the run depends on the machine's load,
	// so only ask that progress was reported at all.
	if r.Read.IOs == 0 || r.Write.IOs == 0 || calls < 1 {
		t.Fatalf("reads %d writes %d intervals %d", r.Read.IOs, r.Write.IOs, calls)
	}
	mix := float64(r.Read.IOs) / float64(r.Read.IOs+r.Write.IOs)
	if mix < 0.65 || mix > 0.75 {
		t.Errorf("read share %.3f, want ~0.70", mix)
	}
	if r.Runtime < 250*time.Millisecond || r.Runtime > 10*time.Second {
		t.Errorf("runtime %v, want ~300ms (ramp excluded)", r.Runtime)
	}
}

// TestRandomMapCoversOnce: without norandommap each block is read once per
// pass; zipf concentrates on few blocks.
func TestRandomMapCoversOnce(t *testing.T) {
	const n = 1000
	seen := make(map[uint64]int)
	dev := &recDevice{NullDevice: NullDevice{BlockSize: 4096, Blocks: n}, seen: seen}
	j := mustJob(t, "r", "rw", "randread", "iodepth", "4")
	if _, err := Run(context.Background(), []Target{{Job: j, Devices: []Device{dev}}}, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("%d distinct blocks of %d", len(seen), n)
	}
	for lba, c := range seen {
		if c != 1 {
			t.Fatalf("LBA %d read %d times", lba, c)
		}
	}
	clear(seen)
	j = mustJob(t, "z", "rw", "randread", "random_distribution", "zipf:1.2", "iodepth", "4", "size", "40000k")
	dev.Blocks = 100000
	if _, err := Run(context.Background(), []Target{{Job: j, Devices: []Device{dev}}}, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	top := 0
	for _, c := range seen {
		top = max(top, c)
	}
	if len(seen) > 5000 || top < 100 {
		t.Errorf("zipf:1.2 over 100000 blocks, 10000 reads: %d distinct, hottest %d", len(seen), top)
	}
}

type recDevice struct {
	NullDevice
	seen map[uint64]int
}

func (d *recDevice) Submit(io *IO) error {
	d.seen[io.LBA]++
	return d.NullDevice.Submit(io)
}

// TestNoAllocsPerIO: the engine allocates nothing per I/O.
func TestNoAllocsPerIO(t *testing.T) {
	run := func(n int) uint64 {
		j := mustJob(t, "r", "rw", "randrw", "bssplit", "4k/50:8k/50", "iodepth", "16", "size", "0")
		j.Size = int64(n) * 4096
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		if _, err := Run(context.Background(), []Target{nullTarget(t, j, uint64(n)*8)}, RunOptions{}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&m1)
		return m1.Mallocs - m0.Mallocs
	}
	run(1000)
	small, big := run(1000), run(200000)
	if big > small+100 {
		t.Fatalf("1000 I/Os: %d allocations, 200000 I/Os: %d", small, big)
	}
}

// BenchmarkEngineNullDevice: the engine alone on one core. One op is one
// I/O: 4 KiB random reads at QD32 against a device that completes inside
// Submit.
func BenchmarkEngineNullDevice(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	j := mustJob(b, "null", "rw", "randread", "bs", "4k", "iodepth", "32")
	n := max(b.N, 1000)
	j.Size = int64(n) * 4096
	tg := nullTarget(b, j, uint64(n)*8)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := Run(context.Background(), []Target{tg}, RunOptions{})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	r := res.Jobs[0]
	b.ReportMetric(float64(r.Read.IOs)/res.Elapsed.Seconds(), "IOPS")
}
