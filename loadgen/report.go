package loadgen

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// WriteSummary writes a human summary in fio's layout, a group_reporting
// group as one job (see Grouped).
func WriteSummary(w io.Writer, r *Result) {
	r = Grouped(r)
	for _, jr := range r.Jobs {
		errno := 0
		if jr.Err != nil {
			errno = 5
		}
		fmt.Fprintf(w, "%s: (groupid=%d, jobs=%d): err=%2d: rw=%s, bs=%s, iodepth=%d\n", jr.Job.Name, jr.Group, jr.NumJobs(), errno,
			jr.Job.RWString(), bsString(jr.Job), jr.Job.IODepth)
		for _, d := range jr.Devices {
			fmt.Fprintf(w, "  device: %s (%d x %d B blocks)\n", d.Name, d.Blocks, d.BlockSize)
		}
		if jr.Err != nil {
			fmt.Fprintf(w, "  error: %v\n", jr.Err)
		}
		if jr.Skipped {
			fmt.Fprintf(w, "  not started: the run ended before this job's stonewall phase\n")
		}
		for _, op := range []Op{OpRead, OpWrite, OpTrim} {
			d := jr.Dir(op)
			if d.IOs == 0 {
				continue
			}
			fmt.Fprintf(w, "  %5s: IOPS=%s, BW=%s/s (%s/s)(%s/%dmsec)\n", op, siCount(d.IOPS(jr.Runtime)),
				iec(d.BW(jr.Runtime)), si(d.BW(jr.Runtime)), iec(float64(d.Bytes)), jr.Runtime.Milliseconds())
			if jr.RateLimited {
				latLine(w, "slat", d.Slat)
			}
			latLine(w, "clat", d.Clat)
			latLine(w, " lat", d.Lat)
			pctLines(w, d.Lat, jr.RateLimited)
			if s := d.IOPSStats(); s.N > 0 {
				b := d.BWStats()
				fmt.Fprintf(w, "   bw (  KiB/s): min=%.0f, max=%.0f, avg=%.2f, stdev=%.2f, samples=%d\n", b.Min/1024, b.Max/1024, b.Mean/1024, b.Stddev/1024, b.N)
				fmt.Fprintf(w, "   iops        : min=%.0f, max=%.0f, avg=%.2f, stdev=%.2f, samples=%d\n", s.Min, s.Max, s.Mean, s.Stddev, s.N)
			}
		}
		if !jr.Skipped {
			cpuLines(w, jr)
		}
		if jr.verifies() {
			fmt.Fprintf(w, "  verify: %d blocks checked, %d without a verify header (crc32c, LBA, generation)\n", jr.Verified, jr.VerifyNoHeader)
			if jr.Verified == 0 {
				fmt.Fprintf(w, "  verify: WARNING: no block was verified; this job checked nothing\n")
			}
		}
		if jr.RateLimited {
			fmt.Fprintf(w, "  lat is measured from each I/O's intended issue time (rate_iops=%d): stalls show in the tail\n", jr.Job.RateIOPS)
		}
	}
	writeGroups(w, r)
}

// cpuLines writes fio's cpu and IO depths lines. The CPU numbers are the
// whole process's while the job's phase ran (see CPUUsage).
func cpuLines(w io.Writer, jr *JobResult) {
	c := jr.CPU
	fmt.Fprintf(w, "  cpu          : usr=%.2f%%, sys=%.2f%%, ctx=%d, majf=%d, minf=%d (whole process)\n", c.UsrPct(), c.SysPct(), c.Ctx, c.MajFlt, c.MinFlt)
	dist := func(m map[string]float64, keys ...string) string {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%.1f%%", k, m[k])
		}
		return strings.Join(parts, ", ")
	}
	ios := jr.Read.IOs + jr.Write.IOs
	fmt.Fprintf(w, "  IO depths    : %s\n", dist(depthLevel(jr.IODepths), depthKeys...))
	batch := []string{"0", "4", "8", "16", "32", "64", ">=64"}
	fmt.Fprintf(w, "     submit    : %s\n", dist(depthBatch(ios), batch...))
	fmt.Fprintf(w, "     complete  : %s\n", dist(depthBatch(ios), batch...))
	fmt.Fprintf(w, "     issued rwts: total=%d,%d,0,0 short=0,0,0,0 dropped=0,0,0,0\n", jr.Read.IOs, jr.Write.IOs)
}

// writeGroups writes fio's "Run status group N (all jobs)" lines: per
// group and direction, the aggregate bandwidth (all bytes over the
// longest runtime), the slowest and fastest job's, the bytes and the
// shortest and longest runtime.
func writeGroups(w io.Writer, r *Result) {
	var groups []int
	seen := map[int]bool{}
	for _, jr := range r.Jobs {
		if !seen[jr.Group] {
			seen[jr.Group] = true
			groups = append(groups, jr.Group)
		}
	}
	for _, g := range groups {
		fmt.Fprintf(w, "\nRun status group %d (all jobs):\n", g)
		for _, op := range []Op{OpRead, OpWrite, OpTrim} {
			var bytes int64
			var minRun, maxRun time.Duration
			minBW, maxBW := math.Inf(1), 0.0
			n := 0
			for _, jr := range r.Jobs {
				d := jr.Dir(op)
				if jr.Group != g || d.IOs == 0 || jr.Runtime <= 0 {
					continue
				}
				if n == 0 || jr.Runtime < minRun {
					minRun = jr.Runtime
				}
				maxRun = max(maxRun, jr.Runtime)
				bytes += d.Bytes
				minBW, maxBW = min(minBW, d.BW(jr.Runtime)), max(maxBW, d.BW(jr.Runtime))
				n++
			}
			if n == 0 {
				continue
			}
			agg := float64(bytes) / maxRun.Seconds()
			fmt.Fprintf(w, "  %5s: bw=%s/s (%s/s), %s/s-%s/s (%s/s-%s/s), io=%s (%s), run=%d-%dmsec\n", strings.ToUpper(op.String()),
				iec(agg), si(agg), iec(minBW), iec(maxBW), si(minBW), si(maxBW), iec(float64(bytes)), si(float64(bytes)),
				minRun.Milliseconds(), maxRun.Milliseconds())
		}
	}
	// Jobs as the job file has them: a group_reporting entry counts its
	// members.
	jobs := 0
	for _, jr := range r.Jobs {
		jobs += max(len(jr.Members), 1)
	}
	fmt.Fprintf(w, "\n%d job(s) in %d group(s), %s in all\n", jobs, len(groups), r.Elapsed.Round(time.Millisecond))
}

func bsString(j *Job) string {
	size := func(n int) string {
		switch {
		case n%(1<<20) == 0:
			return fmt.Sprintf("%dm", n>>20)
		case n%1024 == 0:
			return fmt.Sprintf("%dk", n>>10)
		}
		return fmt.Sprint(n)
	}
	if len(j.BS) == 1 {
		return size(j.BS[0].Size)
	}
	var parts []string
	for _, b := range j.BS {
		parts = append(parts, fmt.Sprintf("%s/%d", size(b.Size), b.Pct))
	}
	return strings.Join(parts, ":")
}

// latUnit picks fio's unit for a latency line.
func latUnit(maxNS float64) (string, float64) {
	switch {
	case maxNS >= 10e6:
		return "msec", 1e6
	case maxNS >= 10e3:
		return "usec", 1e3
	}
	return "nsec", 1
}

func latLine(w io.Writer, name string, h *hdrhistogram.Histogram) {
	if h == nil || h.TotalCount() == 0 {
		return
	}
	u, div := latUnit(h.Mean())
	fmt.Fprintf(w, "    %s (%s): min=%d, max=%d, avg=%.2f, stdev=%.2f\n", name, u,
		int64(float64(h.Min())/div), int64(float64(h.Max())/div), h.Mean()/div, h.StdDev()/div)
}

func pctLines(w io.Writer, h *hdrhistogram.Histogram, fromIntended bool) {
	if h == nil || h.TotalCount() == 0 {
		return
	}
	u, div := latUnit(float64(h.ValueAtQuantile(50)))
	name := "clat"
	if fromIntended {
		name = "lat"
	}
	fmt.Fprintf(w, "    %s percentiles (%s):\n", name, u)
	for i, p := range FioPercentiles {
		if i%4 == 0 {
			fmt.Fprint(w, "     |")
		}
		fmt.Fprintf(w, " %5.2fth=[%5d]", p, int64(math.Round(float64(h.ValueAtQuantile(p))/div)))
		if i%4 == 3 || i == len(FioPercentiles)-1 {
			fmt.Fprintln(w, ",")
		} else {
			fmt.Fprint(w, ",")
		}
	}
}

func scaled(v float64, base float64, units []string) string {
	i := 0
	for v >= base && i < len(units)-1 {
		v /= base
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f%s", v, units[0])
	}
	return fmt.Sprintf("%.*f%s", prec(v), v, units[i])
}

func prec(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	}
	return 2
}

func iec(v float64) string { return scaled(v, 1024, []string{"B", "KiB", "MiB", "GiB", "TiB"}) }
func si(v float64) string  { return scaled(v, 1000, []string{"B", "kB", "MB", "GB", "TB"}) }
func siCount(v float64) string {
	return scaled(v, 1000, []string{"", "k", "M", "G"})
}

// ProgressLine formats p as fio's status line.
func ProgressLine(p Progress) string {
	eta := "--"
	if p.ETA >= 0 {
		eta = p.ETA.Round(time.Second).String()
	}
	phase := ""
	if p.Ramp {
		phase = " (ramp)"
	}
	return fmt.Sprintf("[%s%s] IOPS=%s BW=%s/s p99=%s ETA %s", p.Elapsed.Round(time.Second), phase,
		siCount(p.IOPS), iec(p.BW), time.Duration(p.P99).Round(time.Microsecond), eta)
}

// WriteSeries writes the per-interval series as CSV for plots: one row
// per job, direction and interval; latencies (lat) in microseconds. The
// short interval a phase ends in (Sample.Partial) is left out.
func WriteSeries(w io.Writer, r *Result) error {
	if _, err := fmt.Fprintln(w, "time_s,job,dir,iops,bw_bytes_s,lat_p50_us,lat_p99_us,lat_p999_us,lat_max_us,ramp"); err != nil {
		return err
	}
	for _, s := range r.Series {
		if s.Partial {
			continue
		}
		ramp := 0
		if s.Ramp {
			ramp = 1
		}
		if _, err := fmt.Fprintf(w, "%.3f,%s,%s,%.1f,%.0f,%.1f,%.1f,%.1f,%.1f,%d\n", s.Elapsed.Seconds(), r.Jobs[s.Job].Job.Name, s.Op,
			s.IOPS, s.BW, float64(s.P50)/1e3, float64(s.P99)/1e3, float64(s.P999)/1e3, float64(s.Max)/1e3, ramp); err != nil {
			return err
		}
	}
	return nil
}
