package reports_test

import (
	"fmt"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/reports"
)

// Two shards of one load, merged: the I/Os add up and the p99 is that of
// all 200 I/Os, not the average of the shards' p99s (10 µs and 200 µs).
func ExampleMergeShards() {
	start := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	shard := func(i int, lat int64) *reports.ShardResult {
		h := hdrhistogram.New(1, int64(10*time.Minute), 3)
		for range 100 {
			_ = h.RecordValue(lat)
		}
		enc, _ := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		return &reports.ShardResult{Format: reports.ShardFormat, Shard: i, Shards: 2, StartAt: start, Started: start,
			Elapsed: time.Second, Interval: time.Second,
			Jobs: []reports.ShardJob{{Name: "randread", NumJobs: 1, Runtime: time.Second, Dirs: []reports.ShardDir{{
				Dir: "read", IOs: 100, Bytes: 100 * 4096, Clat: string(enc),
				Intervals: []reports.ShardInterval{{Start: start, End: start.Add(time.Second), IOs: 100, Bytes: 100 * 4096, Hist: string(enc)}}}}}}}
	}
	m, err := reports.MergeShards([]*reports.ShardResult{shard(0, 10000), shard(1, 200000)})
	if err != nil {
		panic(err)
	}
	d := m.Result.Jobs[0].Read
	fmt.Printf("%d I/Os, %.0f IOPS, p50 %d ns, p99 %d ns, %d warnings\n", d.IOs, m.IOPS["randread read"], d.Clat.ValueAtQuantile(50), d.Clat.ValueAtQuantile(99), len(m.Warnings))
	// Output:
	// 200 I/Os, 200 IOPS, p50 10007 ns, p99 200063 ns, 0 warnings
}
