package reports

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// synthShard is shard i of n with the latencies lats (ns) spread over
// intervals of 1 s from start.
func synthShard(t *testing.T, i, n int, start time.Time, lats [][]int64) *ShardResult {
	t.Helper()
	total := newMergeHist()
	var ivs []ShardInterval
	var ios int64
	for k, l := range lats {
		h := newMergeHist()
		for _, v := range l {
			_ = h.RecordValue(v)
			_ = total.RecordValue(v)
		}
		enc, _ := encodeHist(h)
		s := start.Add(time.Duration(k) * time.Second)
		ivs = append(ivs, ShardInterval{Start: s, End: s.Add(time.Second), IOs: int64(len(l)), Bytes: 4096 * int64(len(l)), Hist: enc})
		ios += int64(len(l))
	}
	enc, _ := encodeHist(total)
	return &ShardResult{Format: ShardFormat, Shard: i, Shards: n, Split: "numjobs", Host: fmt.Sprintf("node-%d", i),
		StartAt: start, Started: start, Elapsed: time.Duration(len(lats)) * time.Second, Interval: time.Second,
		Jobs: []ShardJob{{Name: "j", NumJobs: 1, Runtime: time.Duration(len(lats)) * time.Second,
			Options: []string{"rw=randread", "numjobs=4"},
			Dirs:    []ShardDir{{Dir: "read", IOs: ios, Bytes: 4096 * ios, Clat: enc, Intervals: ivs}}}}}
}

// TestMergeExact: the merged percentiles, overall and per interval, are
// those of one histogram of every sample, for shards whose latencies
// differ (where averaging their percentiles would be wrong: checked).
func TestMergeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	const n, secs = 4, 3
	all := newMergeHist()
	perIv := make([]*hdrhistogram.Histogram, secs)
	for k := range perIv {
		perIv[k] = newMergeHist()
	}
	var shards []*ShardResult
	var avgP99 float64
	for i := range n {
		lats := make([][]int64, secs)
		one := newMergeHist()
		for k := range secs {
			// Shard i is slower by a factor, with a tail of its own.
			for range 1000 + 500*i {
				v := int64(20000*(i+1)) + int64(rng.ExpFloat64()*float64(5000*(i+1)))
				lats[k] = append(lats[k], v)
				_ = all.RecordValue(v)
				_ = perIv[k].RecordValue(v)
				_ = one.RecordValue(v)
			}
		}
		avgP99 += float64(one.ValueAtQuantile(99)) / n
		// Each shard's clock started a few ms off the others'.
		sh := synthShard(t, i, n, start.Add(time.Duration(i)*3*time.Millisecond), lats)
		sh.StartAt, sh.Late = start, time.Duration(i)*3*time.Millisecond
		shards = append(shards, sh)
	}
	m, err := MergeShards(shards)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Result.Jobs[0].Read
	if d.IOs != all.TotalCount() {
		t.Fatalf("merged %d I/Os, want %d", d.IOs, all.TotalCount())
	}
	if !reflect.DeepEqual(d.Clat.Export().Counts, all.Export().Counts) {
		t.Error("the merged histogram's buckets differ from one histogram of all samples")
	}
	for _, q := range []float64{0, 1, 50, 90, 99, 99.9, 99.99, 100} {
		if got, want := d.Clat.ValueAtQuantile(q), all.ValueAtQuantile(q); got != want {
			t.Errorf("p%v: merged %d, one histogram %d", q, got, want)
		}
	}
	if int64(avgP99) == all.ValueAtQuantile(99) {
		t.Error("test data too uniform: averaged p99s equal the true p99")
	}
	if len(m.Result.Series) != secs {
		t.Fatalf("%d merged intervals, want %d (aligned by absolute time): %+v", len(m.Result.Series), secs, m.Result.Series)
	}
	for k, s := range m.Result.Series {
		if s.P99 != perIv[k].ValueAtQuantile(99) || s.Max != perIv[k].Max() {
			t.Errorf("interval %d: p99 %d max %d, want %d %d", k, s.P99, s.Max, perIv[k].ValueAtQuantile(99), perIv[k].Max())
		}
		if want := float64(perIv[k].TotalCount()); s.IOPS != want {
			t.Errorf("interval %d: %.0f IOPS, want the sum %.0f", k, s.IOPS, want)
		}
	}
	if got, want := m.IOPS["j read"], float64(all.TotalCount())/secs; got != want {
		t.Errorf("merged IOPS %v, want %v", got, want)
	}
	if len(m.Rows) != n || m.Result.Jobs[0].Job.NumJobs != n {
		t.Errorf("%d rows, numjobs %d; want %d each", len(m.Rows), m.Result.Jobs[0].Job.NumJobs, n)
	}
	if len(m.Warnings) != 0 {
		t.Errorf("warnings for shards in step: %v", m.Warnings)
	}
}

func TestMergeWarnsAndRefuses(t *testing.T) {
	start := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	lats := [][]int64{{1000, 2000}, {1500}}
	s0 := synthShard(t, 0, 3, start, lats)
	s2 := synthShard(t, 2, 3, start.Add(400*time.Millisecond), lats)
	s2.StartAt, s2.Late = start, 400*time.Millisecond
	s2.Jobs[0].Runtime = 5 * time.Second
	m, err := MergeShards([]*ShardResult{s2, s0})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"shards 1 of 3 are missing", "started 400ms after --start-at", "started 400ms apart", "the shards' windows differ"} {
		if !strings.Contains(strings.Join(m.Warnings, "\n"), want) {
			t.Errorf("no warning %q in %q", want, m.Warnings)
		}
	}
	if _, err := MergeShards([]*ShardResult{s0, synthShard(t, 0, 3, start, lats)}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("a shard given twice: %v", err)
	}
	if _, err := MergeShards([]*ShardResult{s0, synthShard(t, 1, 4, start, lats)}); err == nil || !strings.Contains(err.Error(), "different runs") {
		t.Errorf("shards of different N: %v", err)
	}
}

// TestShardLogRoundTrip: the framed result is found in a pod log with
// other output and kubectl's timestamps around it; a damaged or cut one
// is refused, never misread.
func TestShardLogRoundTrip(t *testing.T) {
	s := synthShard(t, 1, 2, time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC), [][]int64{{1000, 2000, 3000}})
	var b bytes.Buffer
	if err := PrintShard(&b, s); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	log.WriteString("2026-12-07T19:00:00.1Z bench: (groupid=0, jobs=1): err= 0\n")
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		log.WriteString("2026-12-07T19:00:03.123456789Z " + l + "\n")
	}
	got, err := ParseShardLog(strings.NewReader(log.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip changed the result:\n%+v\n%+v", got, s)
	}
	lines := strings.Split(b.String(), "\n")
	damaged := strings.Join(append(append([]string{}, lines[:2]...), lines[3:]...), "\n") // a line lost
	if _, err := ParseShardLog(strings.NewReader(damaged)); err == nil {
		t.Error("a result with a line lost was accepted")
	}
	if _, err := ParseShardLog(strings.NewReader(strings.Join(lines[:len(lines)-2], "\n"))); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("a cut result: %v", err)
	}
	if _, err := ParseShardLog(strings.NewReader("nvmftest: bench: connection refused\n")); err == nil || !strings.Contains(err.Error(), "no shard result") {
		t.Errorf("a log without a result: %v", err)
	}
}

// TestMergedRunSchema: a merged run's run.json, with its shard rows and
// warnings, matches run.schema.json, and its HTML shows the spread.
func TestMergedRunSchema(t *testing.T) {
	start := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	s0 := synthShard(t, 0, 2, start, [][]int64{{1000, 2000}, {3000}})
	s1 := synthShard(t, 1, 2, start.Add(300*time.Millisecond), [][]int64{{1500}, {2500}})
	s1.StartAt, s1.Late = start, 300*time.Millisecond
	m, err := MergeShards([]*ShardResult{s0, s1})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRun([]string{"nvmftest", "report", "merge"})
	r.AddMerged(m)
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		t.Fatal(err)
	}
	validate(t, "run.schema.json", "merged run.json", b)
	h, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IOPS spread", "Per shard", "node-1", "started 300ms after --start-at"} {
		if !strings.Contains(string(h), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Merged from shards", "| j | read | 2 |", "warning: shard 1/2 (node-1) started 300ms after --start-at"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
}

// TestMergeRampSplitInterval: an interval cut short at the end of
// ramp_time and the next one can round to one bucket; the shard's rate
// there is its I/Os over their time, not the two rates added.
func TestMergeRampSplitInterval(t *testing.T) {
	start := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	s := synthShard(t, 0, 1, start, [][]int64{make([]int64, 100), make([]int64, 100), make([]int64, 100)})
	ivs := s.Jobs[0].Dirs[0].Intervals
	// 0-1 s, 1-1.3 s (30 I/Os, ramp ends), 1.3-2.3 s (100 I/Os): 100 IOPS throughout.
	ivs[1].End, ivs[1].IOs, ivs[1].Bytes, ivs[1].Ramp = start.Add(1300*time.Millisecond), 30, 30*4096, true
	ivs[2].Start, ivs[2].End = start.Add(1300*time.Millisecond), start.Add(2300*time.Millisecond)
	for i := range ivs {
		h := newMergeHist()
		for range ivs[i].IOs {
			_ = h.RecordValue(1000)
		}
		ivs[i].Hist, _ = encodeHist(h)
	}
	m, err := MergeShards([]*ShardResult{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, smp := range m.Result.Series {
		if smp.IOPS < 99 || smp.IOPS > 101 {
			t.Errorf("interval ending %v: %.1f IOPS, want 100", smp.Elapsed, smp.IOPS)
		}
	}
}
