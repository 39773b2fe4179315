package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
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
	FioVersion    string            `json:"fio version"`
	Timestamp     int64             `json:"timestamp"`
	TimestampMs   int64             `json:"timestamp_ms"`
	Time          string            `json:"time"`
	GlobalOptions map[string]string `json:"global options"`
	Jobs          []FioJob          `json:"jobs"`
	DiskUtil      []any             `json:"disk_util"`
}

// FioJob is one entry of "jobs".
type FioJob struct {
	JobName    string             `json:"jobname"`
	GroupID    int                `json:"groupid"`
	JobStart   int64              `json:"job_start"` // ms since the epoch, as fio 3.35+
	Error      int                `json:"error"`
	ETA        int                `json:"eta"`
	Elapsed    int64              `json:"elapsed"`
	JobOptions map[string]string  `json:"job options"`
	Read       FioDir             `json:"read"`
	Write      FioDir             `json:"write"`
	Trim       FioDir             `json:"trim"`
	Sync       FioSync            `json:"sync"`
	JobRuntime int64              `json:"job_runtime"`
	UsrCPU     float64            `json:"usr_cpu"`
	SysCPU     float64            `json:"sys_cpu"`
	Ctx        int64              `json:"ctx"`
	Majf       int64              `json:"majf"`
	Minf       int64              `json:"minf"`
	IODepthLvl map[string]float64 `json:"iodepth_level"`
	LatencyNs  map[string]float64 `json:"latency_ns"`
	LatencyUs  map[string]float64 `json:"latency_us"`
	LatencyMs  map[string]float64 `json:"latency_ms"`
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
}

// FioPercentileKey is how fio spells percentile p as a JSON key.
func FioPercentileKey(p float64) string { return strconv.FormatFloat(p, 'f', 6, 64) }

func fioLat(h *hdrhistogram.Histogram, pct bool) FioLatency {
	if h == nil || h.TotalCount() == 0 {
		return FioLatency{}
	}
	l := FioLatency{Min: h.Min(), Max: h.Max(), Mean: h.Mean(), Stddev: h.StdDev(), N: h.TotalCount()}
	if pct {
		l.Percentile = make(map[string]int64, len(FioPercentiles))
		for _, p := range FioPercentiles {
			l.Percentile[FioPercentileKey(p)] = h.ValueAtQuantile(p)
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

func fioDir(d *DirResult, runtime time.Duration, rate bool) FioDir {
	f := FioDir{IOBytes: d.Bytes, IOKBytes: d.Bytes >> 10, TotalIOs: d.IOs, Runtime: runtime.Milliseconds()}
	if d.IOs == 0 {
		// fio reports an unused direction with zeros (and runtime 0).
		f.Runtime = 0
		return f
	}
	f.BWBytes = int64(d.BW(runtime))
	f.BW = f.BWBytes >> 10
	f.IOPS = d.IOPS(runtime)
	f.Slat = fioLat(d.Slat, false)
	f.Clat = fioLat(d.Clat, true)
	f.Lat = fioLat(d.Lat, rate)
	lo, hi, mean, dev := meanDev(d.BWSamples)
	f.BWMin, f.BWMax, f.BWMean, f.BWDev, f.BWSamples = int64(lo/1024), int64(hi/1024), mean/1024, dev/1024, len(d.BWSamples)
	f.BWAgg = 100
	lo, hi, mean, dev = meanDev(d.IOPSSamples)
	f.IOPSMin, f.IOPSMax, f.IOPSMean, f.IOPSStddev, f.IOPSSamples = int64(lo), int64(hi), mean, dev, len(d.IOPSSamples)
	return f
}

// latBuckets computes fio's latency_ns, latency_us and latency_ms maps:
// each I/O counts once, in the finest map its latency fits (below 1 us,
// below 1 ms, else ms), under the first key at or above it; values are
// percentages of all I/Os.
var latKeys = []float64{2, 4, 10, 20, 50, 100, 250, 500, 750, 1000}

func latBuckets(h *hdrhistogram.Histogram) (ns, us, ms map[string]float64) {
	mk := func() map[string]float64 {
		m := make(map[string]float64, len(latKeys)+2)
		for _, k := range latKeys {
			m[strconv.Itoa(int(k))] = 0
		}
		return m
	}
	ns, us, ms = mk(), mk(), mk()
	ms["2000"], ms[">=2000"] = 0, 0
	if h == nil || h.TotalCount() == 0 {
		return
	}
	n := float64(h.TotalCount())
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		v := b.To
		m, x := ns, float64(v)
		switch {
		case v >= 1_000_000:
			m, x = ms, float64(v)/1e6
		case v >= 1000:
			m, x = us, float64(v)/1e3
		}
		key := ">=2000"
		for _, k := range latKeys {
			if x <= k {
				key = strconv.Itoa(int(k))
				break
			}
		}
		if key == ">=2000" && x <= 2000 {
			key = "2000"
		}
		m[key] += 100 * float64(b.Count) / n
	}
	return
}

// FioJSON converts a result to fio's JSON layout.
func FioJSON(r *Result) *FioOutput {
	out := &FioOutput{FioVersion: FioVersion, Timestamp: r.Start.Unix(), TimestampMs: r.Start.UnixMilli(),
		Time: r.Start.Format(time.ANSIC), GlobalOptions: map[string]string{}, DiskUtil: []any{}}
	for _, jr := range r.Jobs {
		// elapsed is the run's, in every job, as fio's; job_start tells
		// when each job (after a stonewall: each phase) began.
		j := FioJob{JobName: jr.Job.Name, GroupID: jr.Group, Elapsed: int64(math.Round(r.Elapsed.Seconds())),
			JobOptions: map[string]string{}, JobRuntime: jr.Runtime.Milliseconds(),
			RateLimited: jr.RateLimited, Skipped: jr.Skipped}
		if !jr.Skipped {
			j.JobStart = jr.Start.UnixMilli()
		}
		if jr.Job.Verify != "" {
			v, n := jr.Verified, jr.VerifyNoHeader
			j.Verified, j.VerifyNoHeader = &v, &n
		}
		for k, v := range jr.Job.Options {
			j.JobOptions[k] = v
		}
		for _, d := range jr.Devices {
			j.Devices = append(j.Devices, d.Name)
		}
		if jr.Err != nil {
			j.Error = 5 // EIO, as fio reports an I/O error
			j.ErrorMessage = jr.Err.Error()
		}
		j.Read = fioDir(&jr.Read, jr.Runtime, jr.RateLimited)
		j.Write = fioDir(&jr.Write, jr.Runtime, jr.RateLimited)
		j.Trim = fioDir(&jr.Trim, jr.Runtime, jr.RateLimited)
		j.IODepthLvl = map[string]float64{"1": 0, "2": 0, "4": 0, "8": 0, "16": 0, "32": 0, ">=64": 0}
		lvl := ">=64"
		for _, k := range []int{1, 2, 4, 8, 16, 32} {
			if jr.Job.IODepth <= k {
				lvl = strconv.Itoa(k)
				break
			}
		}
		j.IODepthLvl[lvl] = 100
		all := newHist()
		if jr.Read.Lat != nil {
			all.Merge(jr.Read.Lat)
		}
		if jr.Write.Lat != nil {
			all.Merge(jr.Write.Lat)
		}
		j.LatencyNs, j.LatencyUs, j.LatencyMs = latBuckets(all)
		out.Jobs = append(out.Jobs, j)
	}
	return out
}

// WriteFioJSON writes r as fio's JSON output.
func WriteFioJSON(w io.Writer, r *Result) error {
	b, err := json.MarshalIndent(FioJSON(r), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
