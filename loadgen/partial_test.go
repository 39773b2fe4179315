package loadgen

import (
	"bytes"
	"context"
	"encoding/csv"
	"strconv"
	"testing"
	"time"
)

// TestNoPartialTailAsRate: the collection when the load ends covers the
// few ms after the last whole interval; shown as a rate it is a dip that
// never happened. Neither the progress calls nor the CSV series show an
// interval shorter than 90% of --interval at the end. (A 500 ms load
// with 200 ms intervals ends 100 ms into its third.)
func TestNoPartialTailAsRate(t *testing.T) {
	const iv = 200 * time.Millisecond
	j := mustJob(t, "x", "rw", "randread", "runtime", "500ms", "time_based", "1")
	var calls []Progress
	res, err := Run(context.Background(), []Target{nullTarget(t, j, 1<<16)}, RunOptions{Interval: iv,
		OnInterval: func(p Progress) { calls = append(calls, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 {
		t.Fatal("no progress at all")
	}
	prev := time.Duration(0)
	for i, p := range calls {
		if p.Elapsed-prev < iv*9/10 {
			t.Errorf("progress %d covers %v (%v to %v) of a %v interval: %s", i, p.Elapsed-prev, prev, p.Elapsed, iv, ProgressLine(p))
		}
		prev = p.Elapsed
	}
	var b bytes.Buffer
	if err := WriteSeries(&b, res); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("series: %v, %d rows", err, len(rows))
	}
	prevS := 0.0
	for _, row := range rows[1:] {
		at, _ := strconv.ParseFloat(row[0], 64)
		if d := at - prevS; d < iv.Seconds()*0.9 {
			t.Errorf("series row at %ss covers %.3fs of a %v interval: %v", row[0], d, iv, row)
		}
		prevS = at
	}
	// The tail's I/Os still count in the results, and the series keeps
	// it for the reports, marked.
	last := res.Series[len(res.Series)-1]
	if !last.Partial || last.Length >= iv*9/10 {
		t.Errorf("last sample %+v: want it Partial (%v long)", last, last.Length)
	}
}

// TestShortRunHasItsRate: a load shorter than one interval has only the
// final collection; that is its rate, shown and in the series.
func TestShortRunHasItsRate(t *testing.T) {
	j := mustJob(t, "x", "rw", "randread", "size", "256k")
	calls := 0
	res, err := Run(context.Background(), []Target{nullTarget(t, j, 1<<16)}, RunOptions{Interval: time.Hour,
		OnInterval: func(Progress) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSeries(&b, res); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || bytes.Count(b.Bytes(), []byte("\n")) != 2 || res.Series[0].Partial {
		t.Errorf("%d progress calls, series %q, %+v; want 1 call and 1 row", calls, b.String(), res.Series)
	}
}
