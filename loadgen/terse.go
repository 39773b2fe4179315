package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// TerseVersion is the version of fio's terse format WriteTerse writes.
const TerseVersion = 3

// terseFioVersion is the terse line's fio version field.
const terseFioVersion = "nvmftest-fio-3"

// WriteTerse writes r as fio's terse (--minimal) output, version 3: one
// line of semicolon-separated fields per job, in the order fio's HOWTO
// lists them (terse version, fio version, job name, groupid, error; read
// and write status: KiB, KiB/s, IOPS, runtime ms, slat/clat min, max,
// mean, stdev in us, 20 clat percentiles as P%=us, lat, bw min, max,
// agg %, mean, stdev; CPU; I/O depths; latency distribution in us and ms),
// then fio's description when the job has one. There are no disk
// utilization fields: nvmftest drives no local disk. A group_reporting
// group is one line (see Grouped).
func WriteTerse(w io.Writer, r *Result) error {
	r = Grouped(r)
	var b bytes.Buffer
	for _, jr := range r.Jobs {
		errno := 0
		if jr.Err != nil {
			errno = 5
		}
		fmt.Fprintf(&b, "%d;%s;%s;%d;%d", TerseVersion, terseFioVersion, terseField(jr.Job.Name), jr.Group, errno)
		terseDir(&b, &jr.Read, jr.Runtime)
		terseDir(&b, &jr.Write, jr.Runtime)
		c := jr.CPU
		fmt.Fprintf(&b, ";%f%%;%f%%;%d;%d;%d", c.UsrPct(), c.SysPct(), c.Ctx, c.MajFlt, c.MinFlt)
		lvl := depthLevel(jr.IODepths)
		for _, k := range depthKeys {
			fmt.Fprintf(&b, ";%3.1f%%", lvl[k])
		}
		ns, us, ms := latDist(jobLat(jr))
		// As fio, the microsecond list's first bucket (<= 2 us) also
		// holds the latencies below 1 us.
		for _, v := range ns {
			us[0] += v
		}
		for _, v := range us {
			fmt.Fprintf(&b, ";%3.2f%%", v)
		}
		for _, v := range ms {
			fmt.Fprintf(&b, ";%3.2f%%", v)
		}
		if d := jr.Job.Options["description"]; d != "" {
			fmt.Fprintf(&b, ";%s", terseField(d))
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// terseField keeps a name from adding fields or lines.
func terseField(s string) string {
	return strings.NewReplacer(";", "_", "\n", " ", "\r", " ").Replace(s)
}

// terseDir writes one direction's 41 fields.
func terseDir(b *bytes.Buffer, d *DirResult, runtime time.Duration) {
	runt := runtime.Milliseconds()
	if d.IOs == 0 {
		runt = 0
	}
	var bw, iops int64
	if runt > 0 {
		bw = d.Bytes * 1000 / runt / 1024
		iops = d.IOs * 1000 / runt
	}
	fmt.Fprintf(b, ";%d;%d;%d;%d", d.Bytes>>10, bw, iops, runt)
	terseLat(b, d.Slat)
	terseLat(b, d.Clat)
	for i := range 20 {
		if i >= len(FioPercentiles) {
			b.WriteString(";0%=0")
			continue
		}
		var v int64
		if d.Clat != nil && d.Clat.TotalCount() > 0 {
			v = d.Clat.ValueAtQuantile(FioPercentiles[i]) / 1000
		}
		fmt.Fprintf(b, ";%f%%=%d", FioPercentiles[i], v)
	}
	terseLat(b, d.Lat)
	s := d.BWStats()
	agg := 0.0
	if s.N > 0 {
		agg = 100
	}
	fmt.Fprintf(b, ";%d;%d;%f%%;%f;%f", int64(s.Min/1024), int64(s.Max/1024), agg, s.Mean/1024, s.Stddev/1024)
}

// terseLat writes min, max (integer us), mean and stdev (us).
func terseLat(b *bytes.Buffer, h *hdrhistogram.Histogram) {
	if h == nil || h.TotalCount() == 0 {
		b.WriteString(";0;0;0.000000;0.000000")
		return
	}
	fmt.Fprintf(b, ";%d;%d;%f;%f", h.Min()/1000, h.Max()/1000, h.Mean()/1000, h.StdDev()/1000)
}
