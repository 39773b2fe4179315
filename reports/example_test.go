package reports_test

import (
	"fmt"
	"os"

	"github.com/nvmftest/nvmftest/reports"
)

// A run records what was measured and writes the run directory; a later
// run is compared against it, as CI does with a stored baseline.
func Example() {
	base := reports.NewRun([]string{"nvmftest", "bench", "--job", "randread.fio"})
	base.Bench = []reports.BenchSummary{{Job: "randread", Dir: "read", IOPS: 100000,
		Latency: reports.Latency{P50: 20000, P99: 40000, P999: 60000}}}

	dir, err := os.MkdirTemp("", "nvmftest-run")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := base.Write(dir); err != nil { // run.json, summary.md, report.html
		panic(err)
	}
	baseline, err := reports.Load(dir)
	if err != nil {
		panic(err)
	}

	cur := reports.NewRun(base.Command)
	cur.Bench = []reports.BenchSummary{{Job: "randread", Dir: "read", IOPS: 85000,
		Latency: reports.Latency{P50: 21000, P99: 52000, P999: 63000}}}
	c := reports.Compare(baseline, cur, reports.DefaultThresholds())
	c.WriteText(os.Stdout)
	fmt.Println("regressed:", c.Regressed())
	// Output:
	// AREA   METRIC                       BASE         NEW      CHANGE
	// bench  randread read IOPS           100k     ->  85k      -15.0%  REGRESSION
	// bench  randread read p50 latency    20.0 µs  ->  21.0 µs  +5.0%
	// bench  randread read p99 latency    40.0 µs  ->  52.0 µs  +30.0%  REGRESSION
	// bench  randread read p99.9 latency  60.0 µs  ->  63.0 µs  +5.0%
	//
	// thresholds: IOPS drop 10%, latency rise 20%, stall growth 50% and 250ms
	// REGRESSED: 2 regressions
	// regressed: true
}
