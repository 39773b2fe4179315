package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nvmftest/nvmftest/loadgen"
)

// BenchSummary is one job and direction of a load run.
type BenchSummary struct {
	Job string `json:"job"`
	// Dir is "read" or "write".
	Dir     string        `json:"dir"`
	Runtime time.Duration `json:"runtime_ns"`
	IOs     int64         `json:"ios"`
	IOPS    float64       `json:"iops"`
	// BW is bytes per second.
	BW float64 `json:"bw_bytes"`
	// LatencyKind says which latency the numbers are: "clat" (fio's
	// completion latency: from submission to completion) or, when the job
	// has a rate limit (rate, rate_iops), "lat" (from the time the I/O was
	// due, so the wait behind the limiter counts).
	LatencyKind string  `json:"latency_kind"`
	Latency     Latency `json:"latency"`
	// Distribution is the latency percentile distribution, HdrHistogram's
	// percentile output: points with ever finer steps towards 100%.
	Distribution []PercentilePoint `json:"distribution,omitempty"`
	// Series is the per-interval samples of this job and direction.
	Series   []SeriesPoint `json:"series,omitempty"`
	Verified int64         `json:"verified_blocks,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Name is "job read" or "job write".
func (b *BenchSummary) Name() string { return b.Job + " " + b.Dir }

// Latency is a latency summary in nanoseconds.
type Latency struct {
	Mean  float64 `json:"mean_ns"`
	Min   int64   `json:"min_ns"`
	P50   int64   `json:"p50_ns"`
	P90   int64   `json:"p90_ns"`
	P99   int64   `json:"p99_ns"`
	P999  int64   `json:"p99_9_ns"`
	P9999 int64   `json:"p99_99_ns"`
	Max   int64   `json:"max_ns"`
}

// PercentilePoint is one point of a latency distribution: Percentile
// (0..100) of the I/Os completed within Value ns.
type PercentilePoint struct {
	Percentile float64 `json:"percentile"`
	Value      int64   `json:"value_ns"`
}

// SeriesPoint is one interval of a job and direction over time.
type SeriesPoint struct {
	// Elapsed is the end of the interval since the start of the run.
	Elapsed time.Duration `json:"elapsed_ns"`
	IOPS    float64       `json:"iops"`
	BW      float64       `json:"bw_bytes"`
	P50     int64         `json:"p50_ns"`
	P99     int64         `json:"p99_ns"`
	P999    int64         `json:"p99_9_ns"`
	Max     int64         `json:"max_ns"`
	// Length is the interval's length, normally the sampling interval
	// (one second).
	Length time.Duration `json:"length_ns"`
	// Ramp marks an interval (partly) in ramp_time.
	Ramp bool `json:"ramp,omitempty"`
	// Partial marks the last interval of a job when it is a fraction of
	// the others (the last collection at the end of the load, over a few
	// ms of I/Os draining): its rate is no sample of the load, so the
	// plots leave it out, as the --write_series CSV does.
	Partial bool `json:"partial,omitempty"`
}

// latHist is the histogram a direction's latency numbers come from: lat
// (from when each I/O was due) under a rate limit, where it includes the
// wait behind the limiter that clat hides; clat (submission to
// completion) otherwise, where loadgen's lat is the same histogram.
func latHist(jr *loadgen.JobResult, op loadgen.Op) (*hdrhistogram.Histogram, string) {
	d := jr.Dir(op)
	if jr.RateLimited && d.Lat != nil && d.Lat.TotalCount() > 0 {
		return d.Lat, "lat"
	}
	return d.Clat, "clat"
}

func summariseBench(res *loadgen.Result) []BenchSummary {
	var out []BenchSummary
	for ji, jr := range res.Jobs {
		for _, op := range []loadgen.Op{loadgen.OpRead, loadgen.OpWrite} {
			d := jr.Dir(op)
			used := d.IOs > 0 || d.Clat != nil
			if !used {
				continue
			}
			b := BenchSummary{Job: jr.Job.Name, Dir: op.String(), Runtime: jr.Runtime, IOs: d.IOs,
				IOPS: d.IOPS(jr.Runtime), BW: d.BW(jr.Runtime), Verified: jr.Verified}
			if jr.Err != nil {
				b.Error = jr.Err.Error()
			}
			h, kind := latHist(jr, op)
			b.LatencyKind = kind
			if h != nil && h.TotalCount() > 0 {
				b.Latency = Latency{Mean: h.Mean(), Min: h.Min(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90),
					P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), P9999: h.ValueAtQuantile(99.99), Max: h.Max()}
				b.Distribution = distribution(h)
			}
			for _, s := range res.Series {
				if s.Job == ji && s.Op == op {
					b.Series = append(b.Series, SeriesPoint{Elapsed: s.Elapsed, Length: s.Length, IOPS: s.IOPS, BW: s.BW,
						P50: s.P50, P99: s.P99, P999: s.P999, Max: s.Max, Ramp: s.Ramp})
				}
			}
			markPartialTail(b.Series)
			out = append(out, b)
		}
	}
	return out
}

// markPartialTail marks the series' last interval Partial when it is
// shorter than 90% of the longest before it: the collection when the load
// ends takes whatever is left after the last whole interval. An interval
// cut short in the middle (at the end of ramp_time) is a real sample.
func markPartialTail(series []SeriesPoint) {
	n := len(series)
	if n < 2 || series[n-1].Length <= 0 {
		return
	}
	var full time.Duration
	for _, s := range series[:n-1] {
		full = max(full, s.Length)
	}
	if series[n-1].Length*10 < full*9 {
		series[n-1].Partial = true
	}
}

// distribution is HdrHistogram's percentile distribution with 5 ticks per
// half distance (its default output), without repeated points.
func distribution(h *hdrhistogram.Histogram) []PercentilePoint {
	var pts []PercentilePoint
	for _, br := range h.CumulativeDistributionWithTicks(5) {
		p := PercentilePoint{Percentile: br.Quantile, Value: br.ValueAt}
		if n := len(pts); n > 0 && pts[n-1].Percentile == p.Percentile {
			pts[n-1] = p
			continue
		}
		pts = append(pts, p)
	}
	return pts
}

// writeBenchFiles writes fio.json (every load run's jobs, as one fio
// output) and one HdrHistogram log per job. Files already in dir are
// kept: they hold the load of an earlier invocation that filled the same
// run directory (its summaries are in run.json), so this one's files get
// the next free name: fio-2.json, JOB-2.hlog ...
func writeBenchFiles(dir string, loads []*loadgen.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	all := loads[0]
	if len(loads) > 1 {
		merged := *loads[0]
		merged.Jobs = nil
		merged.Series = nil
		for _, l := range loads {
			// Each load's group_reporting groups are grouped apart: their
			// groupids restart at 0, and two loads are never one group.
			merged.Jobs = append(merged.Jobs, loadgen.Grouped(l).Jobs...)
			merged.Elapsed = max(merged.Elapsed, l.Start.Add(l.Elapsed).Sub(merged.Start))
		}
		all = &merged
	}
	names := map[string]int{}
	fio := freeName(dir, names, "fio", ".json")
	if err := writeFile(filepath.Join(dir, fio), func(f *os.File) error { return loadgen.WriteFioJSON(f, all) }); err != nil {
		return fmt.Errorf("bench/%s: %w", fio, err)
	}
	for _, l := range loads {
		for _, jr := range l.Jobs {
			name := freeName(dir, names, fileName(jr.Job.Name), ".hlog")
			if err := writeFile(filepath.Join(dir, name), func(f *os.File) error { return writeHlog(f, l, jr) }); err != nil {
				return fmt.Errorf("bench/%s: %w", name, err)
			}
		}
	}
	return nil
}

// freeName returns base+ext, or base-2+ext ..., the first name neither
// used in this Write nor already in dir.
func freeName(dir string, used map[string]int, base, ext string) string {
	for {
		name := uniqueName(used, base) + ext
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
			return name
		}
	}
}

// writeHlog writes the job's final latency histograms as an HdrHistogram
// log (format 1.3), one interval histogram per direction tagged "read" or
// "write", values in nanoseconds; HdrHistogram's HistogramLogProcessor and
// the Go reader read it.
func writeHlog(f *os.File, l *loadgen.Result, jr *loadgen.JobResult) error {
	w := hdrhistogram.NewHistogramLogWriter(f)
	start := l.Start.UnixMilli()
	if err := w.OutputComment(fmt.Sprintf("nvmftest job %s: final latency histograms per direction, values in ns", jr.Job.Name)); err != nil {
		return err
	}
	if err := w.OutputLogFormatVersion(); err != nil {
		return err
	}
	if err := w.OutputStartTime(start); err != nil {
		return err
	}
	// BaseTime is written in whole seconds: offsets from that second make
	// base plus offset the absolute time.
	w.SetBaseTime(l.Start.Unix() * 1000)
	if err := w.OutputBaseTime(l.Start.Unix() * 1000); err != nil {
		return err
	}
	if err := w.OutputLegend(); err != nil {
		return err
	}
	end := l.Start.Add(l.Elapsed).UnixMilli()
	for _, op := range []loadgen.Op{loadgen.OpRead, loadgen.OpWrite} {
		h, _ := latHist(jr, op)
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		c := hdrhistogram.Import(h.Export())
		c.SetTag(op.String())
		c.SetStartTimeMs(max(start, end-jr.Runtime.Milliseconds()))
		c.SetEndTimeMs(end)
		if err := w.OutputIntervalHistogram(c); err != nil {
			return err
		}
	}
	return nil
}
