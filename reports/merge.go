package reports

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/loadgen"
)

// ShardRow is one shard's numbers for one job and direction, kept beside
// the merged result so the spread between hosts shows.
type ShardRow struct {
	Shard   int           `json:"shard"`
	Shards  int           `json:"shards"`
	Host    string        `json:"host,omitempty"`
	Job     string        `json:"job"`
	Dir     string        `json:"dir"`
	IOs     int64         `json:"ios"`
	IOPS    float64       `json:"iops"`
	BW      float64       `json:"bw_bytes"`
	Runtime time.Duration `json:"runtime_ns"`
	Latency Latency       `json:"latency"`
	Started time.Time     `json:"started"`
	Late    time.Duration `json:"late_ns,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// Merged is shards' results combined into one load.
type Merged struct {
	// Result is the merged load as loadgen reports one: per job and
	// direction the summed I/Os and bytes, the merged histograms and the
	// interval series summed by absolute time. Its jobs' Runtime is the
	// longest shard's (fio's aggregate convention in fio.json).
	Result *loadgen.Result
	// IOPS and BW are the exact totals per "job dir": the sum of every
	// shard's rate over its own runtime.
	IOPS, BW map[string]float64
	Rows     []ShardRow
	// Warnings say where shards' windows, intervals or clocks disagree, or
	// shards are missing or failed.
	Warnings []string
	Shards   []*ShardResult
}

// MergeShards combines shards (all of one sharded run) exactly: I/Os and
// bytes are summed, latency histograms merged bucket by bucket (so every
// percentile is the one a single histogram of all the I/Os would give,
// never an average of percentiles), and per-interval rates summed over
// intervals aligned by their absolute start.
func MergeShards(shards []*ShardResult) (*Merged, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("no shard results to merge")
	}
	m := &Merged{IOPS: map[string]float64{}, BW: map[string]float64{}, Shards: shards}
	n := shards[0].Shards
	seen := map[int]bool{}
	for _, s := range shards {
		if s.Shards != n {
			return nil, fmt.Errorf("shard %d/%d and shard %d/%d are of different runs (N differs)", shards[0].Shard, n, s.Shard, s.Shards)
		}
		if seen[s.Shard] {
			return nil, fmt.Errorf("shard %d/%d is given twice", s.Shard, n)
		}
		seen[s.Shard] = true
	}
	slices.SortFunc(shards, func(a, b *ShardResult) int { return a.Shard - b.Shard })
	var missing []string
	for i := range n {
		if !seen[i] {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	warn := func(f string, a ...any) { m.Warnings = append(m.Warnings, fmt.Sprintf(f, a...)) }
	if len(missing) > 0 {
		warn("shards %s of %d are missing: the merged load is %d of %d shards'", strings.Join(missing, ","), n, len(shards), n)
	}

	// Time base: the earliest start; the interval: the first shard's.
	iv := shards[0].Interval
	t0 := shards[0].Started
	first, last := shards[0], shards[0]
	noStartAt := 0
	for _, s := range shards {
		if s.Interval != iv {
			warn("shard %d/%d sampled every %v, shard %d/%d every %v: intervals are summed on a grid of %v", s.Shard, n, s.Interval, shards[0].Shard, n, iv, iv)
		}
		if s.Started.Before(t0) {
			t0 = s.Started
		}
		if s.Started.Before(first.Started) {
			first = s
		}
		if s.Started.After(last.Started) {
			last = s
		}
		if s.StartAt.IsZero() {
			noStartAt++
		} else if s.Late < 0 {
			warn("shard %d/%d (%s) started %v before --start-at by its own clock: its clock stepped, or it is not the clock the others keep", s.Shard, n, s.Host, -s.Late)
		} else if s.Late > max(iv/10, 100*time.Millisecond) {
			warn("shard %d/%d (%s) started %v after --start-at (scheduled or connected late): its intervals lag the others'", s.Shard, n, s.Host, s.Late.Round(time.Millisecond))
		}
		if s.Interrupted != "" {
			warn("shard %d/%d (%s) was %s: its results are partial", s.Shard, n, s.Host, s.Interrupted)
		}
		if !s.StartAt.Equal(shards[0].StartAt) {
			warn("shard %d/%d was told to start at %v, shard %d/%d at %v: they are not one run's shards", s.Shard, n, s.StartAt, shards[0].Shard, n, shards[0].StartAt)
		}
	}
	if iv <= 0 {
		iv = time.Second
	}
	if noStartAt > 0 && len(shards) > 1 {
		warn("%d shard(s) ran without --start-at: intervals line up only as far as the shards' starts do", noStartAt)
	}
	if spread := last.Started.Sub(first.Started); len(shards) > 1 && spread > iv/10 {
		warn("shards started %v apart (shard %d/%d first, %d/%d last): per-interval sums pair intervals that are up to that far apart", spread.Round(time.Millisecond), first.Shard, n, last.Shard, n)
	}

	res := &loadgen.Result{Start: t0}
	type key struct{ job, dir string }
	type bucket struct {
		ios, bytes int64
		// per shard: an interval cut short (at the end of ramp_time)
		// and the next can land in one bucket; the shard's rate there is
		// its I/Os over their summed length, and the shards' rates add.
		per     map[int]*[3]float64 // ios, bytes, seconds
		hist    *hdrhistogram.Histogram
		ramp    bool
		partial bool
		length  time.Duration
	}
	jobIdx := map[string]int{}
	buckets := map[key]map[int]*bucket{}
	dirHist := map[key][2]*hdrhistogram.Histogram{} // clat, lat
	runtimes := map[string][]time.Duration{}
	var end time.Time
	for _, s := range shards {
		if e := s.Started.Add(s.Elapsed); e.After(end) {
			end = e
		}
		for _, sj := range s.Jobs {
			ji, ok := jobIdx[sj.Name]
			if !ok {
				ji = len(res.Jobs)
				jobIdx[sj.Name] = ji
				job := loadgen.NewJob(sj.Name)
				for _, o := range sj.Options {
					k, v, _ := strings.Cut(o, "=")
					_ = job.Set(k, v) // they were a valid job's
				}
				job.NumJobs = 0
				res.Jobs = append(res.Jobs, &loadgen.JobResult{Job: job, RateLimited: sj.RateLimited, Start: sj.Start, End: sj.End})
			}
			jr := res.Jobs[ji]
			jr.Job.NumJobs += sj.NumJobs
			for i, d := range sj.IODepths {
				jr.IODepths[i] += d
			}
			jr.Verified += sj.Verified
			jr.VerifyNoHeader += sj.VerifyNoHeader
			c := &jr.CPU
			c.User, c.Sys, c.Ctx = c.User+sj.CPU.User, c.Sys+sj.CPU.Sys, c.Ctx+sj.CPU.Ctx
			c.MajFlt, c.MinFlt, c.Wall = c.MajFlt+sj.CPU.MajFlt, c.MinFlt+sj.CPU.MinFlt, max(c.Wall, sj.CPU.Wall)
			jr.Runtime = max(jr.Runtime, sj.Runtime)
			runtimes[sj.Name] = append(runtimes[sj.Name], sj.Runtime)
			if !sj.Start.IsZero() && (jr.Start.IsZero() || sj.Start.Before(jr.Start)) {
				jr.Start = sj.Start
			}
			if sj.End.After(jr.End) {
				jr.End = sj.End
			}
			if sj.Error != "" && jr.Err == nil {
				jr.Err = fmt.Errorf("shard %d/%d: %s", s.Shard, n, sj.Error)
				warn("shard %d/%d (%s) job %s failed: %s", s.Shard, n, s.Host, sj.Name, sj.Error)
			}
			for _, sd := range sj.Dirs {
				k := key{sj.Name, sd.Dir}
				op := opOf(sd.Dir)
				d := jr.Dir(op)
				d.IOs += sd.IOs
				d.Bytes += sd.Bytes
				clat, err := decodeHist(sd.Clat)
				if err != nil {
					return nil, fmt.Errorf("shard %d/%d job %s %s: clat histogram: %v", s.Shard, n, sj.Name, sd.Dir, err)
				}
				lat, err := decodeHist(sd.Lat)
				if err != nil {
					return nil, fmt.Errorf("shard %d/%d job %s %s: lat histogram: %v", s.Shard, n, sj.Name, sd.Dir, err)
				}
				hs := dirHist[k]
				for i, h := range []*hdrhistogram.Histogram{clat, lat} {
					if h == nil {
						continue
					}
					if hs[i] == nil {
						hs[i] = newMergeHist()
					}
					if dropped := hs[i].Merge(h); dropped > 0 {
						return nil, fmt.Errorf("shard %d/%d job %s %s: %d latencies outside the histogram's range", s.Shard, n, sj.Name, sd.Dir, dropped)
					}
				}
				dirHist[k] = hs
				iops, bw := 0.0, 0.0
				if sj.Runtime > 0 {
					iops, bw = float64(sd.IOs)/sj.Runtime.Seconds(), float64(sd.Bytes)/sj.Runtime.Seconds()
				}
				name := sj.Name + " " + sd.Dir
				m.IOPS[name] += iops
				m.BW[name] += bw
				row := ShardRow{Shard: s.Shard, Shards: n, Host: s.Host, Job: sj.Name, Dir: sd.Dir, IOs: sd.IOs, IOPS: iops, BW: bw,
					Runtime: sj.Runtime, Started: s.Started, Late: s.Late, Error: sj.Error}
				if h := lat; h != nil || clat != nil {
					if h == nil {
						h = clat
					}
					row.Latency = latencyOf(h)
				}
				m.Rows = append(m.Rows, row)
				if buckets[k] == nil {
					buckets[k] = map[int]*bucket{}
				}
				for _, in := range sd.Intervals {
					length := in.End.Sub(in.Start)
					if length <= 0 {
						continue
					}
					bi := int(math.Round(float64(in.Start.Sub(t0)) / float64(iv)))
					b := buckets[k][bi]
					if b == nil {
						b = &bucket{hist: newMergeHist(), per: map[int]*[3]float64{}}
						buckets[k][bi] = b
					}
					b.ios += in.IOs
					b.bytes += in.Bytes
					if b.per[s.Shard] == nil {
						b.per[s.Shard] = &[3]float64{}
					}
					ps := b.per[s.Shard]
					ps[0] += float64(in.IOs)
					ps[1] += float64(in.Bytes)
					ps[2] += length.Seconds()
					b.ramp = b.ramp || in.Ramp
					b.partial = b.partial || length*10 < iv*9
					b.length = max(b.length, length)
					h, err := decodeHist(in.Hist)
					if err != nil {
						return nil, fmt.Errorf("shard %d/%d job %s %s: interval histogram: %v", s.Shard, n, sj.Name, sd.Dir, err)
					}
					if h != nil {
						b.hist.Merge(h)
					}
				}
			}
		}
	}
	res.Elapsed = end.Sub(t0)
	for name, rts := range runtimes {
		lo, hi := slices.Min(rts), slices.Max(rts)
		if hi > 0 && float64(hi-lo) > 0.05*float64(hi) && hi-lo > iv/2 {
			warn("job %s ran %v on one shard and %v on another: the shards' windows differ, so the summed rate is not one moment's load", name, lo.Round(time.Millisecond), hi.Round(time.Millisecond))
		}
	}
	for ji, jr := range res.Jobs {
		for _, op := range []loadgen.Op{loadgen.OpRead, loadgen.OpWrite, loadgen.OpTrim} {
			k := key{jr.Job.Name, op.String()}
			hs, ok := dirHist[k]
			if !ok {
				continue
			}
			d := jr.Dir(op)
			d.Clat, d.Lat = hs[0], hs[1]
			if d.Clat == nil {
				d.Clat = newMergeHist()
			}
			if d.Lat == nil || !jr.RateLimited {
				d.Lat = d.Clat
			}
			var idx []int
			for bi := range buckets[k] {
				idx = append(idx, bi)
			}
			slices.Sort(idx)
			for _, bi := range idx {
				b := buckets[k][bi]
				var iops, bw float64
				for _, ps := range b.per {
					iops += ps[0] / ps[2]
					bw += ps[1] / ps[2]
				}
				smp := loadgen.Sample{Job: ji, Op: op, Elapsed: time.Duration(bi)*iv + b.length, Length: b.length,
					IOPS: iops, BW: bw, Ramp: b.ramp, Partial: b.partial}
				if b.hist.TotalCount() > 0 {
					smp.P50, smp.P99, smp.P999, smp.Max = b.hist.ValueAtQuantile(50), b.hist.ValueAtQuantile(99), b.hist.ValueAtQuantile(99.9), b.hist.Max()
				}
				res.Series = append(res.Series, smp)
				if !b.ramp && !b.partial {
					d.IOPSSamples = append(d.IOPSSamples, iops)
					d.BWSamples = append(d.BWSamples, bw)
				}
			}
		}
	}
	m.Result = res
	return m, nil
}

func opOf(dir string) loadgen.Op {
	switch dir {
	case "write":
		return loadgen.OpWrite
	case "trim":
		return loadgen.OpTrim
	}
	return loadgen.OpRead
}

// newMergeHist has loadgen's range (1 ns to 10 minutes, 3 digits), so a
// shard's histogram merges into it without a value dropped.
func newMergeHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Minute), 3)
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{Mean: h.Mean(), Min: h.Min(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), P9999: h.ValueAtQuantile(99.99), Max: h.Max()}
}

// AddMerged records a merged sharded load in r: its summaries (with the
// exact summed rates), bench/ files as for one load, the per-shard rows
// and the merge's warnings.
func (r *Run) AddMerged(m *Merged) {
	from := len(r.Bench)
	r.AddBench(m.Result)
	for i := from; i < len(r.Bench); i++ {
		b := &r.Bench[i]
		if v, ok := m.IOPS[b.Name()]; ok {
			b.IOPS, b.BW = v, m.BW[b.Name()]
		}
	}
	r.Shards = append(r.Shards, m.Rows...)
	r.MergeWarnings = append(r.MergeWarnings, m.Warnings...)
}

// SpreadRow is how far apart the shards of a merged load were for one
// job and direction.
type SpreadRow struct {
	Job, Dir         string
	Shards           int
	MinIOPS, MaxIOPS float64
	// SpreadPct is (max-min)/mean of the shards' IOPS, in percent.
	SpreadPct      float64
	MinP99, MaxP99 int64
}

func shardSpread(rows []ShardRow) []SpreadRow {
	var out []SpreadRow
	at := map[string]int{}
	sums := map[string]float64{}
	for _, r := range rows {
		k := r.Job + " " + r.Dir
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, SpreadRow{Job: r.Job, Dir: r.Dir, MinIOPS: r.IOPS, MaxIOPS: r.IOPS, MinP99: r.Latency.P99, MaxP99: r.Latency.P99})
		}
		s := &out[i]
		s.Shards++
		sums[k] += r.IOPS
		s.MinIOPS, s.MaxIOPS = min(s.MinIOPS, r.IOPS), max(s.MaxIOPS, r.IOPS)
		s.MinP99, s.MaxP99 = min(s.MinP99, r.Latency.P99), max(s.MaxP99, r.Latency.P99)
	}
	for i := range out {
		s := &out[i]
		if mean := sums[s.Job+" "+s.Dir] / float64(s.Shards); mean > 0 {
			s.SpreadPct = 100 * (s.MaxIOPS - s.MinIOPS) / mean
		}
	}
	return out
}
