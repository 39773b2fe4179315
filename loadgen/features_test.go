package loadgen

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// seqDevice records every I/O it is given, in order.
type seqDevice struct {
	NullDevice
	mu  sync.Mutex
	ios []rec
}

type rec struct {
	Op  Op
	LBA uint64
	NLB uint32
}

func (d *seqDevice) Submit(io *IO) error {
	d.mu.Lock()
	d.ios = append(d.ios, rec{Op: io.Op, LBA: io.LBA, NLB: io.NLB})
	d.mu.Unlock()
	return d.NullDevice.Submit(io)
}

func runSeq(t *testing.T, blocks uint64, opts ...string) (*Result, []rec) {
	t.Helper()
	d := &seqDevice{NullDevice: NullDevice{BlockSize: 512, Blocks: blocks}}
	res, err := Run(t.Context(), []Target{{Job: mustJob(t, "j", opts...), Devices: []Device{d}}}, RunOptions{Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return res, d.ios
}

// TestRandRepeatAndSeed: by default (randrepeat=1) and with a randseed
// the offsets are the same every run; randrepeat=0 draws new ones.
func TestRandRepeatAndSeed(t *testing.T) {
	opts := []string{"rw", "randrw", "size", "256k", "bs", "4k"}
	_, a := runSeq(t, 4096, opts...)
	_, b := runSeq(t, 4096, opts...)
	if len(a) != 64 || !slices.Equal(a, b) {
		t.Errorf("randrepeat=1: %d and %d I/Os, equal %v", len(a), len(b), slices.Equal(a, b))
	}
	_, s1 := runSeq(t, 4096, append(opts, "randseed", "42")...)
	_, s2 := runSeq(t, 4096, append(opts, "randseed", "42")...)
	if !slices.Equal(s1, s2) || slices.Equal(s1, a) {
		t.Errorf("randseed=42: runs equal %v, equal to the default seed %v", slices.Equal(s1, s2), slices.Equal(s1, a))
	}
	_, r1 := runSeq(t, 4096, append(opts, "randrepeat", "0")...)
	_, r2 := runSeq(t, 4096, append(opts, "randrepeat", "0")...)
	if slices.Equal(r1, r2) {
		t.Error("randrepeat=0 repeated the same offsets")
	}
}

// TestLoopsIOSizeNumberIOs: fio's amount of I/O: size times loops,
// io_size instead of size, number_ios as a cap.
func TestLoopsIOSizeNumberIOs(t *testing.T) {
	for _, c := range []struct {
		opts []string
		want int
	}{
		{[]string{"size", "64k", "loops", "3"}, 48},
		{[]string{"rw", "randread", "size", "64k", "loops", "2"}, 32},
		{[]string{"size", "64k", "io_size", "32k"}, 8},
		{[]string{"size", "64k", "io_size", "128k"}, 32},
		{[]string{"size", "64k", "number_ios", "5"}, 5},
	} {
		_, ios := runSeq(t, 4096, append(c.opts, "bs", "4k")...)
		if len(ios) != c.want {
			t.Errorf("%v: %d I/Os, want %d", c.opts, len(ios), c.want)
		}
		for _, io := range ios {
			if io.LBA+uint64(io.NLB) > 128 {
				t.Errorf("%v: I/O at LBA %d beyond the 64k region", c.opts, io.LBA)
				break
			}
		}
	}
}

// TestSeparateReadWriteBS: bs=4k,16k gives reads 4k and writes 16k.
func TestSeparateReadWriteBS(t *testing.T) {
	_, ios := runSeq(t, 4096, "rw", "randrw", "bs", "4k,16k", "size", "1m")
	var n [2]int
	for _, io := range ios {
		n[io.Op]++
		if want := [2]uint32{8, 32}[io.Op]; io.NLB != want {
			t.Fatalf("%v of %d blocks, want %d", io.Op, io.NLB, want)
		}
	}
	if n[0] == 0 || n[1] == 0 {
		t.Errorf("reads %d writes %d", n[0], n[1])
	}
}

// TestRatePerDirection: rate_iops=R,W caps each direction on its own, as
// fio does (a direction ahead of its rate lets the other go).
func TestRatePerDirection(t *testing.T) {
	res, _ := runSeq(t, 1<<16, "rw", "randrw", "rate_iops", "400,100", "runtime", "1", "time_based", "", "iodepth", "4")
	r, w := res.Jobs[0].Read.IOs, res.Jobs[0].Write.IOs
	// Caps are upper bounds (slowness cannot break them); the ratio
	// shows each direction has its own schedule.
	if w > 100*1.2+5 || r > 400*1.2+5 || r < 2*w || w == 0 {
		t.Errorf("rate_iops=400,100 for 1s: %d reads, %d writes", r, w)
	}
	res, _ = runSeq(t, 1<<16, "rw", "write", "rate", "200k", "bs", "4k", "runtime", "500ms", "time_based", "")
	if b := res.Jobs[0].Write.Bytes; b > 200<<10*6/10+8192 || b == 0 {
		t.Errorf("rate=200k for 500ms: %d bytes", b)
	}
	if !res.Jobs[0].RateLimited {
		t.Error("rate= is not marked rate limited (lat from intended times)")
	}
}

// TestThinkTime: after thinktime_blocks I/Os the job pauses thinktime.
func TestThinkTime(t *testing.T) {
	res, _ := runSeq(t, 1<<16, "rw", "randread", "iodepth", "8", "thinktime", "50ms", "thinktime_blocks", "2", "runtime", "300ms", "time_based", "")
	if n := res.Jobs[0].Read.IOs; n == 0 || n > (300/50+1)*2 {
		t.Errorf("thinktime 50ms every 2 I/Os for 300ms: %d I/Os", n)
	}
}

// TestStartDelay: startdelay holds a job's start within its phase.
func TestStartDelay(t *testing.T) {
	jobs, err := ParseJobFile([]byte("[global]\nsize=64k\n[a]\n[b]\nstartdelay=200ms\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var devs []*stampDevice
	var targets []Target
	for _, j := range jobs {
		d := &stampDevice{NullDevice: NullDevice{BlockSize: 512, Blocks: 1 << 12}}
		devs = append(devs, d)
		targets = append(targets, Target{Job: j, Devices: []Device{d}})
	}
	t0 := time.Now()
	res, err := Run(t.Context(), targets, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := devs[1].first.Sub(t0); d < 200*time.Millisecond {
		t.Errorf("b's first I/O %v after the start, want >= 200ms", d)
	}
	if s := res.Jobs[1].Start.Sub(res.Start); s < 200*time.Millisecond {
		t.Errorf("b's reported start %v", s)
	}
}
