package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/loadgen"
)

// TestNumbersAsPeopleReadThem: counts, IOPS and latencies read as fio
// prints them, in the tables and on the plot axes.
func TestNumbersAsPeopleReadThem(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 950: "950", 1234: "1234", 12345: "12.3k", 100000: "100k", 500000: "500k",
		1017299: "1.02M", 1.2e6: "1.2M", 2e9: "2G"} {
		if got := fmtCount(v); got != want {
			t.Errorf("fmtCount(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 500: "500", 50000: "50k", 500000: "500k", 1.5e6: "1.5M", 2e6: "2M", 0.5: "0.5"} {
		if got := fmtSI(v); got != want {
			t.Errorf("fmtSI(%v) = %q, want %q", v, got, want)
		}
	}
	for us, want := range map[float64]string{0: "0", 0.5: "500 ns", 25: "25 µs", 250: "250 µs", 1000: "1 ms", 1500: "1.5 ms", 12500: "12.5 ms", 2e6: "2 s"} {
		if got := fmtLatTick(us); got != want {
			t.Errorf("fmtLatTick(%v µs) = %q, want %q", us, got, want)
		}
	}
	// A 500k IOPS load: the IOPS axis says 500k, the latency axes µs.
	r := NewRun(nil)
	r.AddBench(sampleLoad(t, 5, 1))
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{">500k<", ">20 µs<", "1M I/Os in 2s</td>", "Latency is fio's clat"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, bad := range []string{">500000<", ">1000000<", "I/Os in 2s, clat", "I/Os in 2s, lat"} {
		if strings.Contains(page, bad) {
			t.Errorf("report.html has %q", bad)
		}
	}
}

// TestRateLimitedLatency: only a rate-limited job's latency is fio's lat,
// and the Notes column says so in words.
func TestRateLimitedLatency(t *testing.T) {
	res := sampleLoad(t, 1, 1)
	res.Jobs[0].RateLimited = true
	res.Jobs[0].Read.Lat = hist(t, 50000, 1000)
	r := NewRun(nil)
	r.AddBench(res)
	if r.Bench[0].LatencyKind != "lat" || r.Bench[1].LatencyKind != "clat" {
		t.Errorf("latency kinds %s, %s; want lat (rate-limited), clat", r.Bench[0].LatencyKind, r.Bench[1].LatencyKind)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "latency from when each I/O was due (rate limit)"); n != 1 {
		t.Errorf("%d rows say their latency is from when each I/O was due, want 1", n)
	}
}

// TestPartialLastInterval: the collection at the end of a load covers a
// few ms of I/Os draining; the series marks it partial and the plots
// leave it out rather than draw a dip.
func TestPartialLastInterval(t *testing.T) {
	res := sampleLoad(t, 1, 1)
	// As a real run ends: a last sample 2 ms long at a fraction of the rate.
	res.Series = append(res.Series, loadgen.Sample{Job: 0, Op: loadgen.OpRead, Elapsed: 2*time.Second + 2*time.Millisecond, Length: 2 * time.Millisecond,
		IOPS: 8550, BW: 8550 * 4096, P50: 20000, P99: 576000, P999: 600000, Max: 700000})
	r := NewRun(nil)
	r.AddBench(res)
	s := r.Bench[0].Series
	if len(s) != 9 || !s[8].Partial || s[7].Partial || s[8].Length != 2*time.Millisecond {
		t.Fatalf("series %+v", s)
	}
	if r.Bench[1].Series[7].Partial {
		t.Error("a whole last interval is marked partial")
	}
	if w := wholeIntervals(s); len(w) != 8 || w[7].Partial {
		t.Errorf("the plots draw %d intervals, want the 8 whole ones", len(w))
	}
	lp, err := latencyOverTimePlot(r.Bench)
	if err != nil {
		t.Fatal(err)
	}
	// Nor does the partial interval's p99 set the latency plot's scale.
	if lp.Y.Max > 100 {
		t.Errorf("latency plot reaches %v µs: the partial interval's p99 is drawn", lp.Y.Max)
	}
}
