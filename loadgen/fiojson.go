package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"strconv"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// FioPercentiles is fio's default percentile list (clat_percentiles).
var FioPercentiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99}

// FioVersion is what the "fio version" field says: fio 3.x's JSON layout.
const FioVersion = "nvmftest (fio-3.36 json)"

// FioOutput mirrors fio 3.x's --output-format=json, so fio's tooling
// (fio-plot, fio2gnuplot's JSON readers, fio_jsonplus_clat2csv-style
// scripts) reads it: same key names, units and nesting.
type FioOutput struct {
	FioVersion  string `json:"fio version"`
	Timestamp   int64  `json:"timestamp"`
	TimestampMs int64  `json:"timestamp_ms"`
	Time        string `json:"time"`
	// GlobalOptions are the job file's [global] options (and the flags
	// given with it), left out when there are none, as fio does.
	GlobalOptions map[string]string `json:"global options,omitempty"`
	Jobs          []FioJob          `json:"jobs"`
	DiskUtil      []any             `json:"disk_util"`
}

// FioJob is one entry of "jobs".
type FioJob struct {
	JobName    string            `json:"jobname"`
	GroupID    int               `json:"groupid"`
	JobStart   int64             `json:"job_start"` // ms since the epoch, as fio 3.35+
	Error      int               `json:"error"`
	ETA        int               `json:"eta"`
	Elapsed    int64             `json:"elapsed"`
	JobOptions map[string]string `json:"job options"`
	Read       FioDir            `json:"read"`
	Write      FioDir            `json:"write"`
	Trim       FioDir            `json:"trim"`
	Sync       FioSync           `json:"sync"`
	JobRuntime int64             `json:"job_runtime"`
	// UsrCPU, SysCPU, Ctx, Majf and Minf are the whole process's while
	// the job's phase ran (see CPUUsage), not one thread's as in fio.
	UsrCPU          float64            `json:"usr_cpu"`
	SysCPU          float64            `json:"sys_cpu"`
	Ctx             int64              `json:"ctx"`
	Majf            int64              `json:"majf"`
	Minf            int64              `json:"minf"`
	IODepthLvl      map[string]float64 `json:"iodepth_level"`
	IODepthSubmit   map[string]float64 `json:"iodepth_submit"`
	IODepthComplete map[string]float64 `json:"iodepth_complete"`
	LatencyNs       map[string]float64 `json:"latency_ns"`
	LatencyUs       map[string]float64 `json:"latency_us"`
	LatencyMs       map[string]float64 `json:"latency_ms"`
	// fio's latency_target options (not supported: no target, 100%).
	LatencyDepth      int     `json:"latency_depth"`
	LatencyTarget     int64   `json:"latency_target"`
	LatencyPercentile float64 `json:"latency_percentile"`
	LatencyWindow     int64   `json:"latency_window"`
	// Extensions (fio has none of these; consumers ignore unknown keys).
	Devices     []string `json:"nvmftest_devices,omitempty"`
	RateLimited bool     `json:"nvmftest_lat_from_intended_issue,omitempty"`
	// Verified and VerifyNoHeader are set for verify jobs only (zero too:
	// a verify job that checked 0 blocks must say so).
	Verified       *int64 `json:"nvmftest_verified_blocks,omitempty"`
	VerifyNoHeader *int64 `json:"nvmftest_verify_no_header_blocks,omitempty"`
	// Skipped: the run ended before this job's stonewalled phase started.
	Skipped      bool   `json:"nvmftest_not_started,omitempty"`
	ErrorMessage string `json:"nvmftest_error,omitempty"`
}

// FioSync is fio's "sync" object (always empty here).
type FioSync struct {
	TotalIOs int64      `json:"total_ios"`
	Lat      FioLatency `json:"lat_ns"`
}

// FioDir is one direction: fio's read/write/trim object.
type FioDir struct {
	IOBytes     int64      `json:"io_bytes"`
	IOKBytes    int64      `json:"io_kbytes"`
	BWBytes     int64      `json:"bw_bytes"`
	BW          int64      `json:"bw"` // KiB/s
	IOPS        float64    `json:"iops"`
	Runtime     int64      `json:"runtime"` // ms
	TotalIOs    int64      `json:"total_ios"`
	ShortIOs    int64      `json:"short_ios"`
	DropIOs     int64      `json:"drop_ios"`
	Slat        FioLatency `json:"slat_ns"`
	Clat        FioLatency `json:"clat_ns"`
	Lat         FioLatency `json:"lat_ns"`
	BWMin       int64      `json:"bw_min"`
	BWMax       int64      `json:"bw_max"`
	BWAgg       float64    `json:"bw_agg"`
	BWMean      float64    `json:"bw_mean"`
	BWDev       float64    `json:"bw_dev"`
	BWSamples   int        `json:"bw_samples"`
	IOPSMin     int64      `json:"iops_min"`
	IOPSMax     int64      `json:"iops_max"`
	IOPSMean    float64    `json:"iops_mean"`
	IOPSStddev  float64    `json:"iops_stddev"`
	IOPSSamples int        `json:"iops_samples"`
}

// FioLatency is fio's latency object, in ns. Percentile keys are fio's
// ("99.900000").
type FioLatency struct {
	Min        int64            `json:"min"`
	Max        int64            `json:"max"`
	Mean       float64          `json:"mean"`
	Stddev     float64          `json:"stddev"`
	N          int64            `json:"N"`
	Percentile map[string]int64 `json:"percentile,omitempty"`
	// Bins is json+'s histogram beside the percentiles: latency (ns, the
	// middle of each HdrHistogram bucket) -> I/Os, buckets with I/Os only,
	// as fio_jsonplus_clat2csv and fio-plot read it.
	Bins map[string]int64 `json:"bins,omitempty"`
}

// FioPercentileKey is how fio spells percentile p as a JSON key.
func FioPercentileKey(p float64) string { return strconv.FormatFloat(p, 'f', 6, 64) }

func fioLat(h *hdrhistogram.Histogram, pct, bins bool) FioLatency {
	if h == nil || h.TotalCount() == 0 {
		return FioLatency{}
	}
	l := FioLatency{Min: h.Min(), Max: h.Max(), Mean: h.Mean(), Stddev: h.StdDev(), N: h.TotalCount()}
	if pct {
		l.Percentile = make(map[string]int64, len(FioPercentiles))
		for _, p := range FioPercentiles {
			l.Percentile[FioPercentileKey(p)] = h.ValueAtQuantile(p)
		}
		if bins {
			l.Bins = map[string]int64{}
			for _, b := range h.Distribution() {
				if b.Count > 0 {
					l.Bins[strconv.FormatInt((b.From+b.To)/2, 10)] += b.Count
				}
			}
		}
	}
	return l
}

func meanDev(xs []float64) (lo, hi, mean, dev float64) {
	if len(xs) == 0 {
		return
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi, mean = min(lo, x), max(hi, x), mean+x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		dev += (x - mean) * (x - mean)
	}
	if len(xs) > 1 {
		dev = math.Sqrt(dev / float64(len(xs)-1))
	} else {
		dev = 0
	}
	return
}

func fioDir(d *DirResult, runtime time.Duration, rate, plus bool) FioDir {
	f := FioDir{IOBytes: d.Bytes, IOKBytes: d.Bytes >> 10, TotalIOs: d.IOs, Runtime: runtime.Milliseconds()}
	if d.IOs == 0 {
		// fio reports an unused direction with zeros (and runtime 0).
		f.Runtime = 0
		return f
	}
	f.BWBytes = int64(d.BW(runtime))
	f.BW = f.BWBytes >> 10
	f.IOPS = d.IOPS(runtime)
	f.Slat = fioLat(d.Slat, false, false)
	f.Clat = fioLat(d.Clat, true, plus)
	f.Lat = fioLat(d.Lat, rate, plus && rate)
	b := d.BWStats()
	f.BWMin, f.BWMax, f.BWMean, f.BWDev, f.BWSamples = int64(b.Min/1024), int64(b.Max/1024), b.Mean/1024, b.Stddev/1024, b.N
	f.BWAgg = 100
	s := d.IOPSStats()
	f.IOPSMin, f.IOPSMax, f.IOPSMean, f.IOPSStddev, f.IOPSSamples = int64(s.Min), int64(s.Max), s.Mean, s.Stddev, s.N
	return f
}

// latDist computes fio's latency distribution (latency_ns, latency_us,
// latency_ms in JSON, the lat_* fields of terse): each I/O counts once,
// in the finest scale its latency fits (below 1 us, below 1 ms, else ms),
// under the first bound at or above it; values are percentages of all
// I/Os. ms[10] is 2000 ms, ms[11] above.
var latKeys = []float64{2, 4, 10, 20, 50, 100, 250, 500, 750, 1000}

func latDist(h *hdrhistogram.Histogram) (ns, us [10]float64, ms [12]float64) {
	if h == nil || h.TotalCount() == 0 {
		return
	}
	n := float64(h.TotalCount())
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		v := b.To
		m, x := ns[:], float64(v)
		switch {
		case v >= 1_000_000:
			m, x = ms[:], float64(v)/1e6
		case v >= 1000:
			m, x = us[:], float64(v)/1e3
		}
		i := len(latKeys) + 1 // above 2000 ms
		for k, bound := range latKeys {
			if x <= bound {
				i = k
				break
			}
		}
		if i == len(latKeys)+1 && x <= 2000 {
			i = len(latKeys)
		}
		m[i] += 100 * float64(b.Count) / n
	}
	return
}

func latBuckets(h *hdrhistogram.Histogram) (ns, us, ms map[string]float64) {
	dns, dus, dms := latDist(h)
	mk := func(d []float64) map[string]float64 {
		m := make(map[string]float64, len(latKeys)+2)
		for i, k := range latKeys {
			m[strconv.Itoa(int(k))] = d[i]
		}
		return m
	}
	ns, us, ms = mk(dns[:]), mk(dus[:]), mk(dms[:])
	ms["2000"], ms[">=2000"] = dms[10], dms[11]
	return
}

// depthLevel is fio's iodepth_level: the percent of submissions made at
// each queue depth (the I/Os in flight with it).
func depthLevel(counts [7]int64) map[string]float64 {
	m := make(map[string]float64, len(depthKeys))
	var n int64
	for _, c := range counts {
		n += c
	}
	for i, k := range depthKeys {
		m[k] = 0
		if n > 0 {
			m[k] = 100 * float64(counts[i]) / float64(n)
		}
	}
	return m
}

var depthKeys = []string{"1", "2", "4", "8", "16", "32", ">=64"}

// depthIndex is the iodepth_level bucket of depth d, as fio's.
func depthIndex(d int) int {
	for i, k := range []int{1, 2, 4, 8, 16, 32} {
		if d <= k {
			return i
		}
	}
	return 6
}

// depthBatch is fio's iodepth_submit and iodepth_complete: how many I/Os
// each submit (or reap) call handled. The engine submits and completes
// one I/O at a time, so all are in fio's "4" bucket (1 to 4).
func depthBatch(ios int64) map[string]float64 {
	m := map[string]float64{"0": 0, "4": 0, "8": 0, "16": 0, "32": 0, "64": 0, ">=64": 0}
	if ios > 0 {
		m["4"] = 100
	}
	return m
}

// FioJSON converts a result to fio's JSON layout (--output-format=json),
// a group_reporting group as one job (see Grouped).
func FioJSON(r *Result) *FioOutput { return fioJSON(r, false) }

// FioJSONPlus is fio's json+: FioJSON with the latency histogram ("bins")
// beside each set of percentiles.
func FioJSONPlus(r *Result) *FioOutput { return fioJSON(r, true) }

func fioJSON(r *Result, plus bool) *FioOutput {
	r = Grouped(r)
	out := &FioOutput{FioVersion: FioVersion, Timestamp: r.Start.Unix(), TimestampMs: r.Start.UnixMilli(),
		Time: r.Start.Format(time.ANSIC), DiskUtil: []any{}}
	for _, jr := range r.Jobs {
		if len(jr.Job.GlobalOptions) > 0 {
			out.GlobalOptions = maps.Clone(jr.Job.GlobalOptions)
			break
		}
	}
	for _, jr := range r.Jobs {
		// elapsed is the run's, in every job, as fio's; job_start tells
		// when each job (after a stonewall: each phase) began.
		j := FioJob{JobName: jr.Job.Name, GroupID: jr.Group, Elapsed: int64(math.Round(r.Elapsed.Seconds())),
			JobOptions: map[string]string{}, JobRuntime: jr.JobRuntime().Milliseconds(),
			RateLimited: jr.RateLimited, Skipped: jr.Skipped}
		if !jr.Skipped {
			j.JobStart = jr.Start.UnixMilli()
		}
		if jr.verifies() {
			v, n := jr.Verified, jr.VerifyNoHeader
			j.Verified, j.VerifyNoHeader = &v, &n
		}
		for k, v := range jr.options() {
			j.JobOptions[k] = v
		}
		for _, d := range jr.Devices {
			j.Devices = append(j.Devices, d.Name)
		}
		if jr.Err != nil {
			j.Error = 5 // EIO, as fio reports an I/O error
			j.ErrorMessage = jr.Err.Error()
		}
		j.Read = fioDir(&jr.Read, jr.Runtime, jr.RateLimited, plus)
		j.Write = fioDir(&jr.Write, jr.Runtime, jr.RateLimited, plus)
		j.Trim = fioDir(&jr.Trim, jr.Runtime, jr.RateLimited, plus)
		j.UsrCPU, j.SysCPU, j.Ctx = jr.CPU.UsrPct(), jr.CPU.SysPct(), jr.CPU.Ctx
		j.Majf, j.Minf = jr.CPU.MajFlt, jr.CPU.MinFlt
		j.IODepthLvl = depthLevel(jr.IODepths)
		ios := jr.Read.IOs + jr.Write.IOs + jr.Trim.IOs
		j.IODepthSubmit, j.IODepthComplete = depthBatch(ios), depthBatch(ios)
		j.LatencyNs, j.LatencyUs, j.LatencyMs = latBuckets(jobLat(jr))
		j.LatencyDepth, j.LatencyPercentile = jr.Job.IODepth, 100
		out.Jobs = append(out.Jobs, j)
	}
	return out
}

// jobLat is the job's lat over both directions.
func jobLat(jr *JobResult) *hdrhistogram.Histogram {
	all := newHist()
	if jr.Read.Lat != nil {
		all.Merge(jr.Read.Lat)
	}
	if jr.Write.Lat != nil {
		all.Merge(jr.Write.Lat)
	}
	if jr.Trim.Lat != nil {
		all.Merge(jr.Trim.Lat)
	}
	return all
}

// WriteFioJSON writes r as fio's JSON output.
func WriteFioJSON(w io.Writer, r *Result) error { return writeJSON(w, FioJSON(r)) }

// WriteFioJSONPlus writes r as fio's json+ output.
func WriteFioJSONPlus(w io.Writer, r *Result) error { return writeJSON(w, FioJSONPlus(r)) }

func writeJSON(w io.Writer, o *FioOutput) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
