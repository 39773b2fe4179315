package perf

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// ReadJob is a closed-loop random-read load on one queue: Depth reads in
// flight, each completion issuing the next, as fio's iodepth does.
type ReadJob struct {
	Queue     *initiator.Queue
	NSID      uint32
	BlockSize int    // logical block size of the namespace
	Blocks    uint64 // namespace size in logical blocks
	IOSize    int    // bytes per read, a multiple of BlockSize
	Depth     int
	// Ops stops the job after this many reads; Duration after this long.
	// The first reached wins; at least one must be set.
	Ops      int
	Duration time.Duration
	Seed     uint64
}

// ReadResult is what a ReadJob measured. Latency is from submission to
// completion, in nanoseconds, in an HdrHistogram (1 ns .. 10 s, 3
// significant digits).
type ReadResult struct {
	Ops     int
	Elapsed time.Duration
	Latency *hdrhistogram.Histogram
}

// IOPS is completed reads per second.
func (r ReadResult) IOPS() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// slot is one in-flight read: the request, its buffer and when it was
// issued. Its Done closure is made once, so issuing allocates nothing.
type slot struct {
	req    initiator.Request
	issued time.Time
	rng    *rand.Rand // per slot: a slot is touched by one goroutine at a time
}

// Run runs the job. Completions run on the queue's reader goroutine, which
// records the latency and submits the next read from the same slot.
func (j ReadJob) Run(ctx context.Context) (ReadResult, error) {
	if j.Depth < 1 || j.IOSize < j.BlockSize || j.IOSize%j.BlockSize != 0 || j.Blocks < uint64(j.IOSize/j.BlockSize) {
		return ReadResult{}, errors.New("perf: ReadJob needs Depth >= 1 and an IOSize of whole blocks within the namespace")
	}
	if j.Ops <= 0 && j.Duration <= 0 {
		return ReadResult{}, errors.New("perf: ReadJob needs Ops or Duration")
	}
	hist := hdrhistogram.New(1, int64(10*time.Second), 3)
	nlb := uint32(j.IOSize / j.BlockSize)
	span := j.Blocks / uint64(nlb)
	// Completions normally arrive on the reader goroutine, but a failed
	// queue completes from whichever goroutine failed it: hence the lock,
	// which costs nothing while uncontended.
	var histMu sync.Mutex

	var (
		issued, completed atomic.Int64
		stop              atomic.Bool
		firstErr          error
		errOnce           sync.Once
		inflight          sync.WaitGroup
	)
	limit := int64(j.Ops)
	if limit <= 0 {
		limit = 1 << 62
	}
	slots := make([]*slot, j.Depth)
	issue := func(s *slot) bool {
		if stop.Load() || issued.Add(1) > limit {
			return false
		}
		lba := s.rng.Uint64N(span) * uint64(nlb)
		s.req.SQE = nvme.ReadCmd(j.NSID, lba, nlb)
		s.issued = time.Now()
		inflight.Add(1)
		if err := j.Queue.Submit(&s.req); err != nil {
			inflight.Done()
			errOnce.Do(func() { firstErr = err })
			stop.Store(true)
			return false
		}
		return true
	}
	for i := range slots {
		s := &slot{
			req: initiator.Request{Data: make([]byte, j.IOSize), Dir: initiator.FromController},
			rng: rand.New(rand.NewPCG(j.Seed, uint64(i))),
		}
		s.req.Done = func(r *initiator.Request) {
			lat := int64(time.Since(s.issued))
			histMu.Lock()
			_ = hist.RecordValue(lat)
			histMu.Unlock()
			if r.Err != nil {
				errOnce.Do(func() { firstErr = r.Err })
				stop.Store(true)
			} else {
				completed.Add(1)
			}
			issue(s)
			inflight.Done()
		}
		slots[i] = s
	}
	start := time.Now()
	var timer *time.Timer
	if j.Duration > 0 {
		timer = time.AfterFunc(j.Duration, func() { stop.Store(true) })
	}
	for _, s := range slots {
		if !issue(s) {
			break
		}
	}
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		stop.Store(true)
		<-done
	}
	if timer != nil {
		timer.Stop()
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return ReadResult{}, firstErr
	}
	return ReadResult{Ops: int(completed.Load()), Elapsed: elapsed, Latency: hist}, ctx.Err()
}
