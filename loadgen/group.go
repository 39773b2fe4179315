package loadgen

import (
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Grouped returns r as its outputs report it: the jobs of each reporting
// group that set group_reporting are one entry, as in fio. Every writer
// (normal, JSON, json+, terse) reports Grouped(r), so they agree.
//
// fio's rule: consecutive jobs that set group_reporting and share a
// groupid make one entry; a job without group_reporting is its own. The
// entry is named after its first job and keeps the groupid; I/Os and bytes
// are summed, latency histograms merged (percentiles come from the merged
// histogram, never averaged), each direction's runtime is the longest
// member's, job_runtime the members' sum, the error the first failing
// member's, and "job options" the last member's, as fio prints them. fio
// also folds a group_reporting job into a job without it just before it
// in the same group (and then prints a stray empty entry); here that job
// starts its own entry.
//
// An entry that merges jobs (or one job with group_reporting) has
// Members; Grouped leaves an entry with Members as it is, so grouping
// twice, or grouping loads separately and writing them together, never
// merges further. r.Series stays per job: the result has no Series.
func Grouped(r *Result) *Result {
	if r == nil {
		return nil
	}
	todo := false
	for _, jr := range r.Jobs {
		if jr.Job != nil && jr.Job.GroupReporting && jr.Members == nil {
			todo = true
			break
		}
	}
	if !todo {
		return r
	}
	out := *r
	out.Series = nil
	out.Jobs = nil
	for i := 0; i < len(r.Jobs); {
		jr := r.Jobs[i]
		if jr.Job == nil || !jr.Job.GroupReporting || jr.Members != nil {
			out.Jobs = append(out.Jobs, jr)
			i++
			continue
		}
		n := 1
		for i+n < len(r.Jobs) {
			m := r.Jobs[i+n]
			if m.Job == nil || !m.Job.GroupReporting || m.Members != nil || m.Group != jr.Group {
				break
			}
			n++
		}
		out.Jobs = append(out.Jobs, mergeJobs(r.Jobs[i:i+n]))
		i += n
	}
	return &out
}

// mergeJobs makes one entry of a reporting group's jobs.
func mergeJobs(ms []*JobResult) *JobResult {
	first := ms[0]
	g := &JobResult{Job: first.Job, Group: first.Group, Members: append([]*JobResult(nil), ms...), Skipped: true}
	seen := map[string]bool{}
	for _, m := range ms {
		for _, d := range m.Devices {
			if !seen[d.Name] {
				seen[d.Name] = true
				g.Devices = append(g.Devices, d)
			}
		}
		g.Runtime = max(g.Runtime, m.Runtime)
		g.RateLimited = g.RateLimited || m.RateLimited
		g.Verified += m.Verified
		g.VerifyNoHeader += m.VerifyNoHeader
		for i, n := range m.IODepths {
			g.IODepths[i] += n
		}
		if g.Err == nil {
			g.Err = m.Err
		}
		if !m.Skipped {
			if g.Skipped {
				// The members ran in one phase: the process's CPU use
				// while it ran is each member's; summing would count it
				// once per job.
				g.Start, g.End, g.CPU, g.Skipped = m.Start, m.End, m.CPU, false
			}
			if m.Start.Before(g.Start) {
				g.Start = m.Start
			}
			if m.End.After(g.End) {
				g.End = m.End
			}
		}
	}
	for op := range 3 {
		d := g.Dir(Op(op))
		for _, m := range ms {
			d.add(m.Dir(Op(op)))
		}
	}
	return g
}

// add merges o into d: sums and merged histograms (copies: the members'
// own are left as they are), and fio's group sums of the per-second
// samples.
func (d *DirResult) add(o *DirResult) {
	d.IOs += o.IOs
	d.Bytes += o.Bytes
	addHist := func(into **hdrhistogram.Histogram, from *hdrhistogram.Histogram) {
		if from == nil {
			return
		}
		if *into == nil {
			*into = newHist()
		}
		(*into).Merge(from)
	}
	addHist(&d.Clat, o.Clat)
	addHist(&d.Lat, o.Lat)
	addHist(&d.Slat, o.Slat)
	bw, iops := o.BWStats(), o.IOPSStats()
	if d.grouped == nil {
		d.grouped = &[2]SampleStats{}
	}
	d.grouped[0] = d.grouped[0].plus(bw)
	d.grouped[1] = d.grouped[1].plus(iops)
}

// SampleStats summarises a direction's per-second samples as fio's
// bw_* and iops_* fields do.
type SampleStats struct {
	Min, Max, Mean, Stddev float64
	N                      int
}

func sampleStats(xs []float64) SampleStats {
	lo, hi, mean, dev := meanDev(xs)
	return SampleStats{lo, hi, mean, dev, len(xs)}
}

// plus is fio's sum for group_reporting: the members' rates add up, so
// min, max and mean are summed (not averaged), samples counted together,
// and the squared deviations summed.
func (s SampleStats) plus(o SampleStats) SampleStats {
	if o.N == 0 {
		return s
	}
	if s.N == 0 {
		return o
	}
	sq := s.Stddev*s.Stddev*float64(s.N-1) + o.Stddev*o.Stddev*float64(o.N-1)
	n := s.N + o.N
	return SampleStats{Min: s.Min + o.Min, Max: s.Max + o.Max, Mean: s.Mean + o.Mean,
		Stddev: math.Sqrt(sq / float64(n-1)), N: n}
}

// BWStats summarises the bandwidth samples (bytes per second).
func (d *DirResult) BWStats() SampleStats {
	if d.grouped != nil {
		return d.grouped[0]
	}
	return sampleStats(d.BWSamples)
}

// IOPSStats summarises the IOPS samples.
func (d *DirResult) IOPSStats() SampleStats {
	if d.grouped != nil {
		return d.grouped[1]
	}
	return sampleStats(d.IOPSSamples)
}

// NumJobs is fio's "jobs=" for the entry: the job's numjobs, or the
// members' sum.
func (r *JobResult) NumJobs() int {
	if r.Members == nil {
		return r.Job.NumJobs
	}
	n := 0
	for _, m := range r.Members {
		n += m.NumJobs()
	}
	return n
}

// JobRuntime is fio's job_runtime: the runtime, and for a group_reporting
// entry the sum of every member's (each clone counted, as fio's threads).
func (r *JobResult) JobRuntime() time.Duration {
	if r.Members == nil {
		return r.Runtime
	}
	var t time.Duration
	for _, m := range r.Members {
		t += m.cloneRuntime()
	}
	return t
}

// cloneRuntime is the sum of the job's clones' runtimes.
func (r *JobResult) cloneRuntime() time.Duration {
	if r.clonesRuntime > 0 {
		return r.clonesRuntime
	}
	n := 1
	if r.Job != nil {
		n = max(r.Job.NumJobs, 1)
	}
	return r.Runtime * time.Duration(n)
}

// verifies says whether the job, or a member of the entry, verifies.
func (r *JobResult) verifies() bool {
	for _, m := range r.Members {
		if m.verifies() {
			return true
		}
	}
	return r.Job != nil && r.Job.Verify != ""
}

// options is what fio prints as the entry's "job options": the last
// member's.
func (r *JobResult) options() map[string]string {
	if len(r.Members) > 0 {
		return r.Members[len(r.Members)-1].Job.Options
	}
	return r.Job.Options
}
