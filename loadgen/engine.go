package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Target is a job and the devices its clones drive: one per clone
// (numjobs), each its own queue.
type Target struct {
	Job     *Job
	Devices []Device
}

// Progress is what a run has done in the last interval, for a live line.
type Progress struct {
	Elapsed time.Duration
	Length  time.Duration // of the interval: normally RunOptions.Interval
	ETA     time.Duration // -1 when unknown (size-bound jobs)
	IOPS    float64
	BW      float64 // bytes per second
	P99     int64   // ns, lat over all jobs in the interval
	Ramp    bool
}

// RunOptions tune Run beyond the jobs.
type RunOptions struct {
	// Interval between samples of the series, progress calls and interval
	// log lines (default 1 s).
	Interval time.Duration
	// OnInterval, if set, is called after each interval from the
	// collecting goroutine; not for the last few ms of a phase after its
	// last whole interval (under 90% of Interval), where the load ends and
	// drains: a rate over them would show a dip that never happened.
	OnInterval func(Progress)
	// HistLog, if set, receives an HdrHistogram interval log of lat (ns),
	// one line per job and direction per interval, tagged JOB.read or
	// JOB.write.
	HistLog io.Writer
	// IOLogs, if set, are the jobs' fio logs (write_lat_log and the like),
	// from OpenIOLogs on the same targets; the caller closes them.
	IOLogs *IOLogs
}

// I/O slot states, for issuing without recursion when a device completes
// inside Submit.
const (
	stIdle uint32 = iota
	stSubmitting
	stAgain // completed and planned again while still inside Submit
)

type engine struct {
	epoch    time.Time
	abort    atomic.Bool
	abortErr error
	errOnce  sync.Once
	jobs     []*jobState
}

func (e *engine) now() int64 { return int64(time.Since(e.epoch)) }

func (e *engine) fail(err error) {
	e.errOnce.Do(func() { e.abortErr = err })
	e.abort.Store(true)
	for _, js := range e.jobs {
		js.requestStop()
	}
}

type jobState struct {
	job      *Job
	idx      int
	workers  []*worker
	stop     atomic.Bool
	stopCh   chan struct{}
	stopOnce sync.Once
	group    int   // fio's groupid
	start    int64 // when the job's phase started (engine clock)
	started  bool
	rampEnd  int64     // start + ramp_time
	agg      *interval // this interval, all clones, measured I/Os
	rampAgg  *interval // this interval, all clones, I/Os done during ramp_time
	total    *interval
	samples  [3][]float64 // by Op
	bwSamp   [3][]float64
	devices  []DeviceInfo
	cpu      CPUUsage // the process's, while the job's phase ran
}

func (js *jobState) requestStop() {
	js.stopOnce.Do(func() {
		js.stop.Store(true)
		close(js.stopCh)
	})
}

type worker struct {
	e   *engine
	js  *jobState
	job *Job
	dev Device
	inf DeviceInfo

	lbaSize      int
	regionStart  uint64 // LBA
	regionBlocks uint64
	unit         uint64 // LBAs per offset unit (the smallest block size)
	nunits       uint64
	// Block sizes per direction ([OpRead], [OpWrite]): NLBs, cumulative
	// weights and their total.
	bsNLB   [3][]uint32
	bsCum   [3][]int
	bsTotal [3]int
	// trimwrite: the block just trimmed, to be written next.
	twPending bool
	twLBA     uint64
	twNLB     uint32

	rng   *rand.Rand
	offs  offsetGen
	limit int64 // bytes to issue (0: no limit)
	// limitIOs is number_ios (0: no limit); nplanned counts I/Os planned.
	limitIOs, nplanned int64
	// rate: lat counts from each I/O's intended time (rate, rate_iops).
	// paced: a goroutine issues (rate, or thinktime), not completions.
	rate, paced bool
	// nextOp is the direction the pacer drew for the next I/O (its
	// schedule depends on it); forceOp says plan must use it.
	nextOp  Op
	forceOp bool
	ios     []*IO
	free    chan *IO
	ver     *verifier
	log     *ioLog // nil unless the job writes fio's I/O logs

	mu       sync.Mutex
	planned  int64
	inflight int
	// ref is 1 while closedLoop's own reference is in inflight (so the
	// depth counts leave it out); depth counts submissions by the queue
	// depth they made, in fio's iodepth_level buckets.
	ref        int
	depth      [7]int64
	cur, spare *interval
	// ramp and rampSpare collect I/Os that complete during ramp_time:
	// shown as progress, never in the results. Each I/O is classed by
	// its own completion time, so a late collector can neither count
	// ramp I/Os nor drop measured ones.
	ramp, rampSpare *interval
	done            chan struct{}
	end             atomic.Int64 // when the measured phase ended (0: running)
	verifyEnd       atomic.Int64 // when the read-back of a write verify job ended
	verifyPass      bool
	vcur            uint64
}

// Run runs the targets' jobs and returns their results. Jobs run
// together except where a job has stonewall: it and the jobs after it
// start only when every job before it has finished (fio's stonewall).
// stonewall and new_group start a new reporting group (JobResult.Group).
// The returned error is the first I/O or verify error (the result is
// still filled in; jobs of phases that never started are marked Skipped),
// or ctx's error if it ended the run.
func Run(ctx context.Context, targets []Target, o RunOptions) (*Result, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if len(targets) == 0 {
		return nil, errNoJobs
	}
	e := &engine{}
	// Every job's workers are made before any I/O, so a bad job in a late
	// phase is refused before the first phase runs.
	var phases [][]*jobState
	group, inGroup := 0, 0
	for ti, t := range targets {
		j := t.Job
		if len(t.Devices) != j.NumJobs {
			return nil, fmt.Errorf("job %s: numjobs=%d but %d devices", j.Name, j.NumJobs, len(t.Devices))
		}
		if j.TimeBased && j.Runtime <= 0 {
			return nil, fmt.Errorf("job %s: time_based needs a runtime", j.Name)
		}
		// fio's rule: stonewall or new_group after jobs of the current
		// group starts a new group; stonewall also waits for all before.
		if (j.Stonewall || j.NewGroup) && inGroup > 0 {
			group, inGroup = group+1, 0
		}
		inGroup++
		if len(phases) == 0 || j.Stonewall && len(phases[len(phases)-1]) > 0 {
			phases = append(phases, nil)
		}
		js := &jobState{job: j, idx: ti, group: group, stopCh: make(chan struct{}),
			agg: newInterval(j), rampAgg: newInterval(j), total: newInterval(j)}
		for ci, d := range t.Devices {
			w, err := newWorker(e, js, ci, d)
			if err != nil {
				return nil, fmt.Errorf("job %s: %w", j.Name, err)
			}
			w.log = o.IOLogs.worker(ti, ci)
			js.workers = append(js.workers, w)
			js.devices = append(js.devices, w.inf)
		}
		e.jobs = append(e.jobs, js)
		phases[len(phases)-1] = append(phases[len(phases)-1], js)
	}
	var hl *hdrhistogram.HistogramLogWriter
	e.epoch = time.Now()
	if o.HistLog != nil {
		hl = hdrhistogram.NewHistogramLogWriter(o.HistLog)
		_ = hl.OutputLogFormatVersion()
		_ = hl.OutputComment("nvmftest bench: lat (ns) per interval, tag JOB.read / JOB.write")
		_ = hl.OutputStartTime(e.epoch.UnixMilli())
		// The log's BaseTime line holds whole seconds only: the lines'
		// offsets count from that second, so base time plus offset is the
		// interval's absolute time (shards' logs merge on it).
		base := e.epoch.Unix() * 1000
		hl.SetBaseTime(base)
		_ = hl.OutputBaseTime(base)
		_ = hl.OutputLegend()
	}
	res := &Result{Start: e.epoch}
	c := collector{e: e, o: o, hl: hl, res: res, scratch: newHist()}
	for pi, phase := range phases {
		if ctx.Err() != nil && !e.abort.Load() {
			e.fail(ctx.Err())
		}
		if e.abort.Load() {
			break // an error or Ctrl-C ends the run: later phases never start
		}
		// What the later phases will take, for the ETA (when known).
		c.later = 0
		for _, p := range phases[pi+1:] {
			longest := time.Duration(0)
			for _, js := range p {
				longest = max(longest, js.job.StartDelay+js.job.RampTime+js.job.Runtime)
			}
			c.later += longest
		}
		cpu0 := takeCPU()
		e.runPhase(ctx, &c, phase)
		cpu := takeCPU().since(cpu0)
		for _, js := range phase {
			js.cpu = cpu
		}
	}
	res.Elapsed = time.Duration(e.now())
	var firstErr error
	for _, js := range e.jobs {
		jr := &JobResult{Job: js.job, Devices: js.devices, RateLimited: js.job.Paced(), Group: js.group, Skipped: !js.started, CPU: js.cpu}
		end := int64(0)
		for _, w := range js.workers {
			end = max(end, w.end.Load(), w.verifyEnd.Load())
			for i, n := range w.depth {
				jr.IODepths[i] += n
			}
			if w.ver != nil {
				jr.Verified += w.ver.checked
				jr.VerifyNoHeader += w.ver.noHeader
			}
		}
		if js.started {
			jr.Start, jr.End = e.epoch.Add(time.Duration(js.start)), e.epoch.Add(time.Duration(end))
			measured := int64(0)
			for _, w := range js.workers {
				measured = max(measured, w.end.Load())
				jr.clonesRuntime += time.Duration(max(w.end.Load()-js.rampEnd, 0))
			}
			jr.Runtime = time.Duration(max(measured-js.rampEnd, 0))
		}
		for op := range 3 {
			d := &js.total.d[op]
			dr := jr.Dir(Op(op))
			dr.IOs, dr.Bytes, dr.Clat, dr.Slat = d.ios, d.bytes, d.clat, d.slat
			dr.Lat = d.lat
			if !jr.RateLimited {
				dr.Lat = d.clat
			}
			dr.IOPSSamples, dr.BWSamples = js.samples[op], js.bwSamp[op]
		}
		switch {
		case e.abortErr != nil:
			jr.Err = e.abortErr
		case js.job.Verify != "" && jr.Verified == 0:
			// A verify job that checked no block verified nothing: saying
			// it passed would be a wrong result.
			jr.Err = fmt.Errorf("job %s: %w (%d blocks read had no verify header)", js.job.Name, ErrNothingVerified, jr.VerifyNoHeader)
		}
		if firstErr == nil {
			firstErr = jr.Err
		}
		res.Jobs = append(res.Jobs, jr)
	}
	return res, firstErr
}

// ErrNothingVerified is a verify job's error when it checked no block:
// every block it read lacked a verify header, so nothing was verified.
var ErrNothingVerified = errors.New("verify checked no blocks")

// runPhase starts the jobs of one phase together and collects them until
// they have all finished (or the run is aborted).
func (e *engine) runPhase(ctx context.Context, c *collector, jobs []*jobState) {
	start := e.now()
	var wg sync.WaitGroup
	var timers []*time.Timer
	var ramps []int64
	for _, js := range jobs {
		// startdelay shifts the whole job: its ramp and runtime count
		// from when it starts, as in fio.
		js.start, js.started = start+int64(js.job.StartDelay), true
		js.rampEnd = js.start + int64(js.job.RampTime)
		if js.job.RampTime > 0 {
			ramps = append(ramps, js.rampEnd)
		}
	}
	for _, js := range jobs {
		if js.job.Runtime > 0 {
			timers = append(timers, time.AfterFunc(js.job.StartDelay+js.job.RampTime+js.job.Runtime, js.requestStop))
		}
		for _, w := range js.workers {
			wg.Go(w.run)
		}
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	c.jobs, c.last, c.phaseStart = jobs, start, start
	// Collection points: every interval from the phase's start, and
	// exactly at each ramp end.
	tick := time.NewTimer(c.o.Interval)
	nextTick := start + int64(c.o.Interval)
	ctxDone := ctx.Done()
	for running := true; running; {
		at := nextTick
		isRamp := false
		for _, r := range ramps {
			if r > c.last && r < at {
				at, isRamp = r, true
			}
		}
		tick.Reset(time.Duration(at - e.now()))
		select {
		case <-tick.C:
			c.collect(e.now(), false)
			if !isRamp {
				nextTick += int64(c.o.Interval)
			}
		case <-allDone:
			running = false
		case <-ctxDone:
			e.fail(ctx.Err())
			ctxDone = nil
		}
	}
	tick.Stop()
	for _, t := range timers {
		t.Stop()
	}
	c.collect(e.now(), true)
}

func newWorker(e *engine, js *jobState, clone int, d Device) (*worker, error) {
	j := js.job
	inf := d.Info()
	start, blocks, err := j.region(inf)
	if err != nil {
		return nil, err
	}
	lbaSize := inf.BlockSize
	unit := uint64(j.minBS() / lbaSize)
	if j.Verify != "" && j.NumJobs > 1 {
		// Verifying clones get disjoint slices, so none reads a block
		// another is writing.
		units := blocks / unit
		per := units / uint64(j.NumJobs)
		if per*unit < uint64(j.maxBS()/lbaSize) {
			return nil, fmt.Errorf("region too small to give %d verifying clones a slice each", j.NumJobs)
		}
		start += uint64(clone) * per * unit
		blocks = per * unit
	}
	if j.Trim && !inf.CanTrim {
		return nil, usageErrorf("rw=%s needs Dataset Management (deallocate), which %s's controller does not support (ONCS bit 2 clear)", j.RWString(), inf.Name)
	}
	if j.Trim && j.Verify != "" {
		return nil, usageErrorf("verify with rw=%s is not supported: trimmed blocks have no verify header", j.RWString())
	}
	depth := j.IODepth
	if inf.MaxDepth > 0 && depth*inf.parts(j.maxBS()) > inf.MaxDepth {
		// Refused rather than queued in the host: I/Os waiting in the
		// initiator would count host queueing as the target's latency,
		// and the load would not be the depth asked for on the wire.
		if p := inf.parts(j.maxBS()); p > 1 {
			return nil, usageErrorf("iodepth %d of %d-byte I/Os is %d commands (MDTS %d splits each into %d): %s's I/O queue takes %d: use an iodepth of at most %d, or numjobs clones",
				depth, j.maxBS(), depth*p, inf.MaxTransfer, p, inf.Name, inf.MaxDepth, inf.MaxDepth/p)
		}
		return nil, usageErrorf("iodepth %d is more than %s's I/O queue allows (%d, the controller's maximum queue entries less one): use an iodepth of at most %d, or numjobs clones for more I/Os in flight",
			depth, inf.Name, inf.MaxDepth, inf.MaxDepth)
	}
	w := &worker{
		e: e, js: js, job: j, dev: d, inf: inf, lbaSize: lbaSize,
		regionStart: start, regionBlocks: blocks, unit: unit, nunits: blocks / unit,
		cur: newInterval(j), spare: newInterval(j), ramp: newInterval(j), rampSpare: newInterval(j), done: make(chan struct{}),
		rate: j.Paced(), paced: j.Paced() || j.ThinkTime > 0, limitIOs: j.NumberIOs,
	}
	// Trims take the reads' sizes (fio's third bs value is not taken).
	for op, sizes := range [3][]BSSplit{j.BS, j.BSWrite, j.BS} {
		if sizes == nil {
			sizes = j.BS
		}
		for _, b := range sizes {
			w.bsTotal[op] += b.Pct
			w.bsCum[op] = append(w.bsCum[op], w.bsTotal[op])
			w.bsNLB[op] = append(w.bsNLB[op], uint32(b.Size/lbaSize))
		}
	}
	seed := defaultSeed // randrepeat (fio's default): a fixed seed
	switch {
	case j.SeedSet:
		seed = j.Seed
	case !j.RandRepeat:
		seed = rand.Uint64()
	}
	w.rng = rand.New(rand.NewPCG(seed, uint64(clone)+1))
	switch {
	case !j.Random:
		w.offs = &seqGen{n: w.nunits}
	case j.Zipf > 0 && w.nunits > 2:
		w.offs = newZipfGen(w.nunits, j.Zipf, w.rng)
	case j.NoRandomMap:
		w.offs = &uniformGen{n: w.nunits, rng: w.rng}
	default:
		w.offs = newPermGen(w.nunits, w.rng)
	}
	if !j.TimeBased {
		// fio: size (the region) or io_size bytes, loops times over.
		w.limit = int64(blocks) * int64(lbaSize)
		if j.IOSize > 0 {
			w.limit = j.IOSize
		}
		// Whole I/Os of the smallest size, as fio trims a size that is
		// not a multiple of bs.
		w.limit = w.limit / int64(j.minBS()) * int64(j.minBS()) * int64(max(j.Loops, 1))
	}
	if j.Verify != "" {
		w.ver = newVerifier(inf, seed+uint64(clone), start, blocks)
		if w.ver == nil {
			return nil, fmt.Errorf("verify needs logical blocks of at least 64 bytes")
		}
		w.ver.readOnly = !j.Write
	}
	maxBS := j.maxBS()
	w.ios = make([]*IO, depth)
	if w.paced {
		w.free = make(chan *IO, depth)
	}
	for i := range w.ios {
		io := &IO{w: w, buf: make([]byte, maxBS)}
		d.Init(io)
		w.ios[i] = io
		if w.paced {
			w.free <- io
		}
	}
	return w, nil
}

func (w *worker) stopped() bool {
	if w.verifyPass {
		return w.e.abort.Load()
	}
	return w.js.stop.Load()
}

// plan fills io with the next I/O; false when the worker is done.
// Called with w.mu held.
func (w *worker) plan(io *IO) bool {
	if w.stopped() {
		return false
	}
	if w.verifyPass {
		return w.planVerify(io)
	}
	if (w.limit > 0 && w.planned >= w.limit || w.limitIOs > 0 && w.nplanned >= w.limitIOs) && !w.twPending {
		return false
	}
	op := w.nextOp
	if !w.forceOp {
		op = w.drawOp()
	}
	if op == OpWrite && w.twPending {
		// trimwrite: write the block just trimmed. As in fio, the
		// trims make up size (the writes come on top).
		w.twPending = false
		io.Op, io.LBA, io.NLB = op, w.twLBA, w.twNLB
		io.Buf = io.buf[:int(io.NLB)*w.lbaSize]
		io.busy = true
		return true
	}
	nlb := w.bsNLB[op][0]
	if len(w.bsNLB[op]) > 1 {
		r := w.rng.IntN(w.bsTotal[op])
		for i, c := range w.bsCum[op] {
			if r < c {
				nlb = w.bsNLB[op][i]
				break
			}
		}
	}
	var lba uint64
	for try := 0; ; try++ {
		lba = w.offs.next() * w.unit
		if lba+uint64(nlb) > w.regionBlocks {
			lba = (w.regionBlocks - uint64(nlb)) / w.unit * w.unit
		}
		lba += w.regionStart
		if w.ver == nil || !overlaps(w.ios, io, lba, nlb) {
			break
		}
		if try == 64 {
			return false
		}
	}
	io.Op, io.LBA, io.NLB = op, lba, nlb
	io.Buf = io.buf[:int(nlb)*w.lbaSize]
	io.busy = true
	w.planned += int64(len(io.Buf))
	w.nplanned++
	if op == OpTrim && w.job.Write {
		w.twPending, w.twLBA, w.twNLB = true, lba, nlb
	}
	if op == OpWrite && w.ver != nil {
		w.ver.fill(io)
	}
	return true
}

// drawOp picks the direction of the next I/O by rwmixread.
func (w *worker) drawOp() Op {
	if w.job.Trim {
		if w.twPending {
			return OpWrite // trimwrite: the write of the block trimmed
		}
		return OpTrim
	}
	if w.job.Write && (!w.job.Read || w.rng.IntN(100) >= w.job.RWMixRead) {
		return OpWrite
	}
	return OpRead
}

// planVerify reads back, unit by unit, what a write-only verify job wrote.
func (w *worker) planVerify(io *IO) bool {
	for w.vcur < w.nunits {
		lba := w.regionStart + w.vcur*w.unit
		w.vcur++
		if w.ver.exp != nil && w.ver.expected(lba) == 0 {
			continue
		}
		io.Op, io.LBA, io.NLB = OpRead, lba, uint32(w.unit)
		io.Buf = io.buf[:int(w.unit)*w.lbaSize]
		io.busy = true
		return true
	}
	return false
}

// account records a completed I/O. Called with w.mu held.
func (w *worker) account(io *IO, now int64) {
	io.busy = false
	if io.Err != nil {
		w.e.fail(fmt.Errorf("%s: %s of %d blocks at LBA %d: %w", w.inf.Name, io.Op, io.NLB, io.LBA, io.Err))
		return
	}
	if w.ver != nil {
		if io.Op == OpWrite {
			w.ver.written(io)
		} else if err := w.ver.check(io); err != nil {
			w.e.fail(err)
			return
		}
	}
	if w.verifyPass {
		return
	}
	iv := w.cur
	if now < w.js.rampEnd {
		iv = w.ramp
	}
	d := &iv.d[io.Op]
	d.ios++
	d.bytes += int64(len(io.Buf))
	record(d.clat, now-io.issued)
	if w.rate {
		record(d.lat, now-io.intended)
		record(d.slat, io.issued-io.intended)
	}
	if w.log != nil && now >= w.js.rampEnd {
		w.log.add(now-w.js.rampEnd, io.Op, len(io.Buf), now-io.issued, now-io.intended, io.issued-io.intended)
	}
}

func (w *worker) complete(io *IO) {
	now := w.e.now()
	w.mu.Lock()
	w.account(io, now)
	if w.paced && !w.verifyPass {
		w.inflight--
		w.mu.Unlock()
		w.free <- io
		return
	}
	if !w.plan(io) {
		w.inflight--
		last := w.inflight == 0
		w.mu.Unlock()
		if last {
			close(w.done)
		}
		return
	}
	w.noteDepth()
	w.mu.Unlock()
	// The next I/O is issued now: this completion's timestamp serves as
	// its issue time (one clock read per I/O, not two).
	io.issued = now
	if io.state.CompareAndSwap(stSubmitting, stAgain) {
		return // the goroutine inside Submit issues it
	}
	w.kick(io)
}

// noteDepth counts one submission at the depth it makes (the I/Os in
// flight, itself included), for fio's iodepth_level. Called with w.mu
// held, after inflight counts the I/O.
func (w *worker) noteDepth() {
	if !w.verifyPass {
		w.depth[depthIndex(w.inflight-w.ref)]++
	}
}

// kick hands io to the device; if the device completes it (and the engine
// plans it again) before Submit returns, it goes round again here rather
// than recursing. The caller has set io.issued.
func (w *worker) kick(io *IO) {
	for {
		io.state.Store(stSubmitting)
		if !w.rate || w.verifyPass {
			io.intended = io.issued
		}
		if err := w.dev.Submit(io); err != nil {
			io.state.Store(stIdle)
			w.mu.Lock()
			io.busy = false
			w.e.fail(fmt.Errorf("%s: submit: %w", w.inf.Name, err))
			w.inflight--
			last := w.inflight == 0
			w.mu.Unlock()
			if w.paced && !w.verifyPass {
				w.free <- io
			} else if last {
				close(w.done)
			}
			return
		}
		if io.state.CompareAndSwap(stSubmitting, stIdle) {
			return
		}
	}
}

// closedLoop keeps every slot busy: each completion issues the next I/O
// from the completing goroutine, as fio's iodepth does.
func (w *worker) closedLoop() {
	w.done = make(chan struct{})
	w.mu.Lock()
	w.inflight, w.ref = 1, 1 // this goroutine's own reference
	w.mu.Unlock()
	for _, io := range w.ios {
		w.mu.Lock()
		ok := w.plan(io)
		if ok {
			w.inflight++
			w.noteDepth()
		}
		w.mu.Unlock()
		if !ok {
			break
		}
		io.issued = w.e.now()
		w.kick(io)
	}
	w.mu.Lock()
	w.inflight, w.ref = w.inflight-1, 0
	last := w.inflight == 0
	w.mu.Unlock()
	if last {
		close(w.done)
	}
	<-w.done
}

// pacedLoop issues from this goroutine rather than from completions: on
// the schedule of rate and rate_iops, and with thinktime's pauses.
//
// The schedule is per direction, as fio's "r,w" values: the I/O's
// direction is drawn first, and it is due when that direction's earlier
// I/Os and bytes, at its rate_iops and rate, allow (the later of the
// two). Its latency counts from then, however late a free slot or the
// device lets it go, so a stall is not hidden (coordinated omission).
//
// thinktime: after every thinktime_blocks I/Os, wait for every I/O in
// flight to complete, then pause (fio's default thinktime_blocks_type,
// complete).
func (w *worker) pacedLoop() {
	j := w.job
	var perIO, perByte [3]float64 // ns per I/O, ns per byte, by Op; 0: no cap
	for op, n := range [2]int{j.RateIOPS, j.RateIOPSW} {
		if n > 0 {
			perIO[op] = 1e9 / float64(n)
		}
		if j.RateBW[op] > 0 {
			perByte[op] = 1e9 / float64(j.RateBW[op])
		}
	}
	var nios, nbytes [3]int64
	think, thinkEvery := int64(j.ThinkTime), int64(max(j.ThinkBlocks, 1))
	held := make([]*IO, 0, len(w.ios))
	start := w.e.now()
	next := func(op Op) int64 {
		return start + int64(max(float64(nios[op])*perIO[op], float64(nbytes[op])*perByte[op]))
	}
	// mixed: the job does this direction too (rw/randrw with a share).
	mixed := [3]bool{j.Read && j.Write && j.RWMixRead > 0, j.Read && j.Write && j.RWMixRead < 100}
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	sleep := func(d int64) bool { // false when the job is stopped
		if d <= 0 {
			return true
		}
		t.Reset(time.Duration(d))
		select {
		case <-t.C:
			return true
		case <-w.js.stopCh:
			return false
		}
	}
loop:
	for k := int64(1); ; k++ {
		w.mu.Lock()
		op := w.drawOp()
		w.mu.Unlock()
		due := w.e.now()
		if w.rate {
			// fio's rate_ddir: a direction ahead of its rate gives way to
			// the other one if that one is due sooner, so each direction
			// keeps its own cap.
			due = next(op)
			if o := op ^ 1; op != OpTrim && due > w.e.now() && mixed[o] {
				if od := next(o); od < due {
					op, due = o, od
				}
			}
		}
		if !sleep(due - w.e.now()) {
			break
		}
		var io *IO
		select {
		case io = <-w.free:
		case <-w.js.stopCh:
			break loop
		}
		w.mu.Lock()
		w.nextOp, w.forceOp = op, true
		ok := w.plan(io)
		w.forceOp = false
		if ok {
			w.inflight++
			w.noteDepth()
		}
		w.mu.Unlock()
		if !ok {
			w.free <- io
			break
		}
		nios[op]++
		nbytes[op] += int64(len(io.Buf))
		io.intended = due
		io.issued = w.e.now()
		w.kick(io)
		if think > 0 && k%thinkEvery == 0 {
			held = held[:0]
			for range w.ios {
				held = append(held, <-w.free)
			}
			for _, h := range held {
				w.free <- h
			}
			if !sleep(think) {
				break
			}
		}
	}
	for range w.ios {
		<-w.free
	}
}

func (w *worker) run() {
	if w.js.job.StartDelay > 0 {
		t := time.NewTimer(w.js.job.StartDelay)
		select {
		case <-t.C:
		case <-w.js.stopCh:
		}
		t.Stop()
	}
	if w.paced {
		w.pacedLoop()
	} else {
		w.closedLoop()
	}
	end := max(w.e.now(), 1)
	w.end.Store(end)
	if w.log != nil {
		w.mu.Lock()
		w.log.finish(end - w.js.rampEnd)
		w.mu.Unlock()
	}
	if w.ver != nil && !w.job.Read && !w.e.abort.Load() {
		w.mu.Lock()
		w.verifyPass = true
		w.mu.Unlock()
		w.closedLoop()
		w.verifyEnd.Store(max(w.e.now(), 1))
	}
}

// collector gathers the workers' intervals.
type collector struct {
	e       *engine
	o       RunOptions
	hl      *hdrhistogram.HistogramLogWriter
	res     *Result
	last    int64
	scratch *hdrhistogram.Histogram
	jobs    []*jobState // the phase running now
	// phaseStart is when it started: a phase shorter than one interval
	// has only its final collection, and that is its rate.
	phaseStart int64
	later      time.Duration // what the phases after it will take, for the ETA
}

// collect takes the workers' intervals up to now; final is the phase's
// last collection, after its load ended.
func (c *collector) collect(now int64, final bool) {
	length := now - c.last
	if length <= 0 {
		return
	}
	// The same 90% rule as for the per-second samples and the reports'
	// partial point (which also needs a point before it).
	partial := final && length < int64(c.o.Interval)*9/10 && c.last > c.phaseStart
	c.scratch.Reset()
	var p Progress
	p.Elapsed, p.Length = time.Duration(now), time.Duration(length)
	p.ETA = -1
	for _, js := range c.jobs {
		js.agg.reset()
		js.rampAgg.reset()
		// A job that ended before this interval has nothing to report; one
		// that ended inside it gives no per-second sample.
		jobEnd := int64(0)
		for _, w := range js.workers {
			e := w.end.Load()
			if e == 0 {
				jobEnd = 0
				break
			}
			jobEnd = max(jobEnd, e)
		}
		if jobEnd != 0 && jobEnd <= c.last {
			continue
		}
		whole := jobEnd == 0 && length >= int64(c.o.Interval)*9/10
		for _, w := range js.workers {
			w.mu.Lock()
			iv, rv := w.cur, w.ramp
			w.cur, w.ramp = w.spare, w.rampSpare
			w.mu.Unlock()
			js.agg.merge(iv)
			js.rampAgg.merge(rv)
			iv.reset()
			rv.reset()
			w.spare, w.rampSpare = iv, rv
		}
		ramp := c.last < js.rampEnd
		if ramp {
			p.Ramp = true
		}
		if js.job.Runtime > 0 {
			eta := time.Duration(js.rampEnd + int64(js.job.Runtime) - now)
			p.ETA = max(p.ETA, eta, 0)
		}
		secs := float64(length) / 1e9
		for op := range 3 {
			if !js.job.does(Op(op)) {
				continue
			}
			// Measured I/Os go into the results whenever they arrive; an
			// interval that still holds ramp I/Os is shown from those.
			measured := &js.agg.d[op]
			js.total.d[op].merge(measured)
			d := measured
			if ramp {
				d = &js.rampAgg.d[op]
				d.merge(measured)
			}
			lat := d.lat
			if !js.job.Paced() {
				lat = d.clat
			}
			s := Sample{Job: js.idx, Op: Op(op), Elapsed: time.Duration(now), Length: time.Duration(length),
				IOPS: float64(d.ios) / secs, BW: float64(d.bytes) / secs, Ramp: ramp, Partial: partial,
				P50: lat.ValueAtQuantile(50), P99: lat.ValueAtQuantile(99), P999: lat.ValueAtQuantile(99.9), Max: lat.Max()}
			c.res.Series = append(c.res.Series, s)
			p.IOPS += s.IOPS
			p.BW += s.BW
			c.scratch.Merge(lat)
			if !ramp {
				// Per-second samples only for whole intervals.
				if whole {
					js.samples[op] = append(js.samples[op], s.IOPS)
					js.bwSamp[op] = append(js.bwSamp[op], s.BW)
				}
			}
			if c.hl != nil && d.ios > 0 {
				lat.SetTag(LogTag(js.job.Name) + "." + Op(op).String())
				lat.SetStartTimeMs(c.e.epoch.UnixMilli() + c.last/1e6)
				lat.SetEndTimeMs(c.e.epoch.UnixMilli() + now/1e6)
				_ = c.hl.OutputIntervalHistogram(lat)
			}
		}
	}
	if p.ETA >= 0 {
		p.ETA += c.later
	}
	p.P99 = c.scratch.ValueAtQuantile(99)
	c.last = now
	if c.o.OnInterval != nil && !partial {
		c.o.OnInterval(p)
	}
}

var errNoJobs = errors.New("loadgen: no jobs")

// LogTag makes a job name fit an interval log tag (no commas or spaces):
// the tag of the job's histograms in its interval logs is LogTag(name) +
// "." + the operation.
func LogTag(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "job"
	}
	return string(b)
}
