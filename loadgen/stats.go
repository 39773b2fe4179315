package loadgen

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 ns to 10 minutes at 3 significant digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func record(h *hdrhistogram.Histogram, v int64) {
	if v < histMin {
		v = histMin
	} else if v > histMax {
		v = histMax
	}
	_ = h.RecordValue(v)
}

// dirStats is what one direction (read or write) did in an interval.
type dirStats struct {
	ios, bytes int64
	// clat: handed to the device -> completed. lat: intended issue time ->
	// completed (the coordinated-omission-safe latency). slat: intended ->
	// handed to the device. Without rate_iops the intended time is the
	// issue time, so only clat is recorded and lat equals it.
	clat, lat, slat *hdrhistogram.Histogram
}

// newDirStats makes the histograms a direction needs: none if the job
// does not do it, clat only without rate_iops (lat equals clat then).
func newDirStats(used, rate bool) dirStats {
	var d dirStats
	if used {
		d.clat = newHist()
		if rate {
			d.lat, d.slat = newHist(), newHist()
		}
	}
	return d
}

func resetHist(h *hdrhistogram.Histogram) {
	if h != nil {
		h.Reset()
	}
}

func mergeHist(into, from *hdrhistogram.Histogram) {
	if into != nil && from != nil {
		into.Merge(from)
	}
}

func (d *dirStats) reset() {
	d.ios, d.bytes = 0, 0
	resetHist(d.clat)
	resetHist(d.lat)
	resetHist(d.slat)
}

func (d *dirStats) merge(o *dirStats) {
	d.ios += o.ios
	d.bytes += o.bytes
	mergeHist(d.clat, o.clat)
	mergeHist(d.lat, o.lat)
	mergeHist(d.slat, o.slat)
}

// interval is what a worker did between two collections.
type interval struct {
	d [3]dirStats // by Op
}

func newInterval(j *Job) *interval {
	rate := j.Paced()
	return &interval{d: [3]dirStats{newDirStats(j.Read, rate), newDirStats(j.Write, rate), newDirStats(j.Trim, rate)}}
}

func (iv *interval) reset() {
	for i := range iv.d {
		iv.d[i].reset()
	}
}

func (iv *interval) merge(o *interval) {
	for i := range iv.d {
		iv.d[i].merge(&o.d[i])
	}
}

// DirResult is one direction of a job's results.
type DirResult struct {
	IOs, Bytes int64
	// Clat, Lat and Slat are merged over the job's clones; see dirStats.
	Clat, Lat, Slat *hdrhistogram.Histogram
	// Per-second samples of this direction, for fio's iops_*/bw_* fields.
	// A group_reporting entry (see Grouped) has none: its BWStats and
	// IOPSStats are its members' summed.
	IOPSSamples, BWSamples []float64
	grouped                *[2]SampleStats // bw, iops of a Grouped entry
}

// IOPS over runtime.
func (d *DirResult) IOPS(runtime time.Duration) float64 {
	if runtime <= 0 {
		return 0
	}
	return float64(d.IOs) / runtime.Seconds()
}

// BW in bytes per second over runtime.
func (d *DirResult) BW(runtime time.Duration) float64 {
	if runtime <= 0 {
		return 0
	}
	return float64(d.Bytes) / runtime.Seconds()
}

// JobResult is one job (all its clones merged, as fio's group_reporting),
// or in Grouped's result a reporting group's jobs (Members).
type JobResult struct {
	Job     *Job
	Devices []DeviceInfo
	Runtime time.Duration // measured time: after ramp_time, to the end
	Read    DirResult
	Write   DirResult
	Trim    DirResult // rw=trim, randtrim, trimwrite
	// RateLimited says lat is measured from the intended issue time.
	RateLimited bool
	// Verified counts blocks whose content verify checked; VerifyNoHeader
	// the blocks read that had no verify header (a read-only verify job
	// fails on the first, as fio does; a mixed job skips blocks it never
	// wrote).
	Verified, VerifyNoHeader int64
	// Group is fio's groupid: stonewall and new_group start a new one.
	Group int
	// Start and End are when the job's clones started and when the last
	// one finished (ramp and a write job's read-back included); zero if
	// Skipped. A job with stonewall starts after every job before it ended.
	Start, End time.Time
	// Skipped: the run ended (an error, Ctrl-C) before the job's phase
	// started, so it did no I/O.
	Skipped bool
	// IODepths counts submissions by the queue depth they made, in fio's
	// iodepth_level buckets (1, 2, 3-4, 5-8, 9-16, 17-32, more).
	IODepths [7]int64
	// CPU is the whole process's usage while the job's phase ran (see
	// CPUUsage: not the job's own, which goroutines cannot give).
	CPU CPUUsage
	Err error
	// Members are the jobs a Grouped entry reports (group_reporting), in
	// order; nil for a job's own result.
	Members []*JobResult
	// clonesRuntime is the sum of the clones' runtimes (fio's
	// job_runtime once group_reporting merges them).
	clonesRuntime time.Duration
}

// Dir returns the result of op.
func (r *JobResult) Dir(op Op) *DirResult {
	switch op {
	case OpWrite:
		return &r.Write
	case OpTrim:
		return &r.Trim
	}
	return &r.Read
}

// Sample is one point of the per-second series.
type Sample struct {
	Job     int           // index in Result.Jobs
	Op      Op            //
	Elapsed time.Duration // end of the interval since the start
	Length  time.Duration
	IOPS    float64
	BW      float64 // bytes per second
	P50     int64   // lat, ns
	P99     int64
	P999    int64
	Max     int64
	Ramp    bool // the interval was (partly) in ramp_time
	// Partial: the few ms a phase's load ended in, after its last whole
	// interval (under 90% of the interval; a phase shorter than one
	// interval has its own rate). Its I/Os are in the results;
	// as a rate it would be a dip that never happened, so the progress
	// line and the CSV series leave it out.
	Partial bool
}

// Result is a whole run.
type Result struct {
	Start   time.Time
	Elapsed time.Duration
	Jobs    []*JobResult
	Series  []Sample
}

// Err returns the first job error.
func (r *Result) Err() error {
	for _, j := range r.Jobs {
		if j.Err != nil {
			return j.Err
		}
	}
	return nil
}
