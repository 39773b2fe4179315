package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

func shardTestJob(t *testing.T, opts ...string) *Job {
	t.Helper()
	j := NewJob("j")
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if err := j.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

// TestShardNumJobs: the shards' clones add up to numjobs, spread as
// evenly as they go, and every shard has a seed of its own, the same on
// every run.
func TestShardNumJobs(t *testing.T) {
	j := shardTestJob(t, "numjobs=10", "rw=randread")
	seeds := map[uint64]int{}
	total := 0
	for i := range 4 {
		s := Shard{i, 4}
		got, err := ShardJobs([]*Job{j}, s, SplitNumJobs, []uint32{1})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := ShardJobs([]*Job{j}, s, SplitNumJobs, []uint32{1})
		c := got[0]
		want := 2
		if i < 2 {
			want = 3
		}
		if c.NumJobs != want || c.Slices != 0 {
			t.Errorf("shard %v: numjobs %d slices %d, want %d and the whole region", s, c.NumJobs, c.Slices, want)
		}
		if !c.SeedSet || again[0].Seed != c.Seed {
			t.Errorf("shard %v: seed %d then %d", s, c.Seed, again[0].Seed)
		}
		if prev, ok := seeds[c.Seed]; ok {
			t.Errorf("shards %d and %d share seed %d", prev, i, c.Seed)
		}
		seeds[c.Seed] = i
		total += c.NumJobs
	}
	if total != 10 || j.NumJobs != 10 || j.SeedSet {
		t.Errorf("clones add up to %d; the job was changed: %+v", total, j)
	}
	// N=1 is the job itself.
	if got, _ := ShardJobs([]*Job{j}, Shard{0, 1}, SplitNumJobs, nil); got[0] != j {
		t.Error("shard 0/1 is not the job unchanged")
	}
	// randseed given: the shards derive from it.
	a, _ := ShardJobs([]*Job{shardTestJob(t, "numjobs=2", "randseed=7")}, Shard{1, 2}, SplitNumJobs, nil)
	b, _ := ShardJobs([]*Job{shardTestJob(t, "numjobs=2", "randseed=8")}, Shard{1, 2}, SplitNumJobs, nil)
	if a[0].Seed == b[0].Seed || a[0].Seed != ShardSeed(7, Shard{1, 2}) {
		t.Errorf("randseed 7 and 8 gave shard seeds %d and %d", a[0].Seed, b[0].Seed)
	}
}

// TestShardRegion: region slices are disjoint, aligned to the block size
// and inside the job's region.
func TestShardRegion(t *testing.T) {
	j := shardTestJob(t, "numjobs=3", "rw=write", "bs=8k", "offset=1m", "size=10m")
	info := DeviceInfo{Name: "d", BlockSize: 512, Blocks: 1 << 20}
	var prevEnd uint64
	for i := range 3 {
		got, err := ShardJobs([]*Job{j}, Shard{i, 3}, SplitRegion, nil)
		if err != nil {
			t.Fatal(err)
		}
		start, blocks, err := got[0].region(info)
		if err != nil {
			t.Fatal(err)
		}
		if start < 2048 || start+blocks > 2048+20480 || start%16 != 0 || blocks%16 != 0 || blocks == 0 {
			t.Errorf("shard %d: LBAs %d+%d outside the region or not 8k-aligned", i, start, blocks)
		}
		if i > 0 && start < prevEnd {
			t.Errorf("shard %d starts at LBA %d, inside shard %d's slice (to %d)", i, start, i-1, prevEnd)
		}
		prevEnd = start + blocks
	}
	tiny := shardTestJob(t, "numjobs=4", "size=8k")
	got, _ := ShardJobs([]*Job{tiny}, Shard{1, 4}, SplitRegion, nil)
	if _, _, err := got[0].region(info); err == nil {
		t.Error("an 8k region cut into 4 slices of 4k I/O was accepted")
	}
}

func TestShardNSID(t *testing.T) {
	j := shardTestJob(t, "numjobs=2")
	var got []string
	for i := range 2 {
		js, err := ShardJobs([]*Job{j}, Shard{i, 2}, SplitNSID, []uint32{1, 2, 3, 4, 5})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, js[0].Options["nsid"]+fmt.Sprintf("x%d", js[0].NumJobs))
	}
	if want := []string{"1,3,5x2", "2,4x2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("namespaces per shard %v, want %v", got, want)
	}
	if _, err := ShardJobs([]*Job{shardTestJob(t, "nsid=1-2")}, Shard{0, 3}, SplitNSID, nil); err == nil {
		t.Error("2 namespaces over 3 shards accepted")
	}
}

func TestParseShard(t *testing.T) {
	for in, ok := range map[string]bool{"0/1": true, "7/8": true, " 2 / 4 ": true, "8/8": false, "-1/2": false, "1": false, "a/b": false, "0/0": false} {
		if _, err := ParseShard(in); (err == nil) != ok {
			t.Errorf("ParseShard(%q): %v", in, err)
		}
	}
}

// TestHistLogAbsoluteTimes: the interval log's lines, read back by
// HdrHistogram's reader, carry the absolute times of the intervals (base
// time plus offset), to the millisecond: shards' logs merge on them.
func TestHistLogAbsoluteTimes(t *testing.T) {
	j := mustJob(t, "j", "rw", "randread", "runtime", "250ms", "time_based", "1")
	var log bytes.Buffer
	res, err := Run(context.Background(), []Target{nullTarget(t, j, 1<<16)}, RunOptions{Interval: 100 * time.Millisecond, HistLog: &log})
	if err != nil {
		t.Fatal(err)
	}
	lr := hdrhistogram.NewHistogramLogReader(&log)
	h, err := lr.NextIntervalHistogram()
	if err != nil || h == nil {
		t.Fatalf("no interval in the log: %v", err)
	}
	first := res.Series[0]
	wantStart := res.Start.Add(first.Elapsed - first.Length).UnixMilli()
	wantEnd := res.Start.Add(first.Elapsed).UnixMilli()
	if d := h.StartTimeMs() - wantStart; d < -2 || d > 2 {
		t.Errorf("first interval starts at %d ms, want %d (off by %d ms)", h.StartTimeMs(), wantStart, d)
	}
	if d := h.EndTimeMs() - wantEnd; d < -2 || d > 2 {
		t.Errorf("first interval ends at %d ms, want %d (off by %d ms)", h.EndTimeMs(), wantEnd, d)
	}
}
