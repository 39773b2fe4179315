package reports

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/suites"
)

// Thresholds say how much worse a new run may be before Compare calls it
// a regression.
type Thresholds struct {
	// IOPSDrop is the largest tolerated relative IOPS drop per job and
	// direction (0.10: 10%).
	IOPSDrop float64
	// LatencyRise is the largest tolerated relative rise of p50, p99 and
	// p99.9 latency per job and direction (0.20: 20%).
	LatencyRise float64
	// StallRise is the largest tolerated relative growth of a failover
	// scenario's longest stall, and StallSlack the absolute growth below
	// which no stall change counts (timer granularity, scheduling).
	StallRise  float64
	StallSlack time.Duration
	// AllowConformanceRegressions reports conformance regressions without
	// letting them make Regressed true.
	AllowConformanceRegressions bool
	// AllowMissing reports what the base has and the new run lacks (a
	// job, a conformance run, a check that passed and is now skipped or
	// not run, a failover scenario) without letting it make Regressed
	// true. Without it a gate cannot pass because a step quietly measured
	// less than its baseline.
	AllowMissing bool
}

// DefaultThresholds: 10% IOPS drop, 20% latency rise, 50% and at least
// 250 ms longer stalls; conformance regressions and anything missing from
// the new run count.
func DefaultThresholds() Thresholds {
	return Thresholds{IOPSDrop: 0.10, LatencyRise: 0.20, StallRise: 0.5, StallSlack: 250 * time.Millisecond}
}

// Comparison is a new run set against a base run.
type Comparison struct {
	Thresholds Thresholds `json:"thresholds"`
	Changes    []Change   `json:"changes"`
}

// Change is one compared metric or check.
type Change struct {
	// Area is "bench", "conformance" or "failover".
	Area string `json:"area"`
	// Name says what: "randread read IOPS", "TCP-IC-001", "path-down longest stall".
	Name string `json:"name"`
	// Base and New are the values as shown ("" when absent from that run).
	Base string `json:"base"`
	New  string `json:"new"`
	// Delta is the relative change (new-base)/base of a numeric metric, NaN
	// when there is none.
	Delta float64 `json:"-"`
	// Regression marks a change beyond the thresholds; Allowed marks one
	// the thresholds let pass (conformance with AllowConformanceRegressions,
	// Missing with AllowMissing).
	Regression bool `json:"regression"`
	Allowed    bool `json:"allowed,omitempty"`
	// Missing marks what the base has and the new run lacks.
	Missing bool   `json:"missing,omitempty"`
	Note    string `json:"note,omitempty"`
}

// missing is a regression for something base has and the new run lacks.
func (c *Comparison) missing(ch Change) {
	ch.Regression, ch.Missing, ch.Allowed = true, true, c.Thresholds.AllowMissing
	c.Changes = append(c.Changes, ch)
}

// Compare compares cur against base: IOPS per job and direction,
// latency percentiles (p50, p99, p99.9), conformance checks that passed in
// base and fail now and new mandatory failures, failover scenarios that
// passed and fail now or stall longer, and whatever base has that cur
// lacks.
func Compare(base, cur *Run, t Thresholds) *Comparison {
	c := &Comparison{Thresholds: t}
	c.compareBench(base, cur)
	c.compareConformance(base.Conformance, cur.Conformance)
	c.compareFailover(base.Failover, cur.Failover)
	return c
}

func relDelta(base, cur float64) float64 {
	if base == 0 {
		if cur == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return (cur - base) / base
}

func (c *Comparison) compareBench(base, cur *Run) {
	type key struct{ job, dir string }
	old := map[key]*BenchSummary{}
	for i := range base.Bench {
		b := &base.Bench[i]
		old[key{b.Job, b.Dir}] = b
	}
	seen := map[key]bool{}
	for i := range cur.Bench {
		n := &cur.Bench[i]
		k := key{n.Job, n.Dir}
		seen[k] = true
		b := old[k]
		if b == nil {
			c.Changes = append(c.Changes, Change{Area: "bench", Name: n.Name() + " IOPS", New: fmtCount(n.IOPS), Delta: math.NaN(), Note: "new job: not in base"})
			continue
		}
		d := relDelta(b.IOPS, n.IOPS)
		c.Changes = append(c.Changes, Change{Area: "bench", Name: n.Name() + " IOPS", Base: fmtCount(b.IOPS), New: fmtCount(n.IOPS),
			Delta: d, Regression: -d > c.Thresholds.IOPSDrop})
		for _, p := range []struct {
			name     string
			old, new int64
		}{{"p50", b.Latency.P50, n.Latency.P50}, {"p99", b.Latency.P99, n.Latency.P99}, {"p99.9", b.Latency.P999, n.Latency.P999}} {
			d := relDelta(float64(p.old), float64(p.new))
			c.Changes = append(c.Changes, Change{Area: "bench", Name: n.Name() + " " + p.name + " latency", Base: fmtNs(float64(p.old)), New: fmtNs(float64(p.new)),
				Delta: d, Regression: p.old > 0 && d > c.Thresholds.LatencyRise})
		}
		if n.Error != "" && b.Error == "" {
			c.Changes = append(c.Changes, Change{Area: "bench", Name: n.Name() + " error", Base: "none", New: firstLine(n.Error), Delta: math.NaN(), Regression: true})
		}
	}
	for i := range base.Bench {
		b := &base.Bench[i]
		if !seen[key{b.Job, b.Dir}] {
			c.missing(Change{Area: "bench", Name: b.Name() + " IOPS", Base: fmtCount(b.IOPS), Delta: math.NaN(), Note: "in base, not in the new run"})
		}
	}
}

func counts(s *suites.Summary) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%d pass %d fail (%d mandatory)", s.Passed, s.Failed, s.MandatoryFailed)
}

func (c *Comparison) compareConformance(base, cur *suites.Summary) {
	if cur == nil {
		if base != nil {
			c.missing(Change{Area: "conformance", Name: "conformance run", Base: counts(base), New: "not run", Delta: math.NaN(), Note: "the new run has no conformance results"})
		}
		return
	}
	c.Changes = append(c.Changes, Change{Area: "conformance", Name: "checks", Base: counts(base), New: counts(cur), Delta: math.NaN()})
	old := map[string]suites.Result{}
	if base != nil {
		for _, r := range base.Results {
			old[r.ID] = r
		}
	}
	ran := map[string]bool{}
	for _, n := range cur.Results {
		ran[n.ID] = true
		b, had := old[n.ID]
		ch := Change{Area: "conformance", Name: n.ID, New: verdictWord(n.State, len(n.Findings)), Delta: math.NaN()}
		if had {
			ch.Base = verdictWord(b.State, len(b.Findings))
		}
		switch {
		case had && b.State == "passed" && n.Failed():
			ch.Regression = true
			ch.Note = fmt.Sprintf("passed in base, fails now [%s, %s]: %s", n.Level, n.Section, firstLine(n.Message))
		case n.Failed() && n.Level == suites.Mandatory && (!had || !b.Failed()):
			ch.Regression = true
			ch.Note = fmt.Sprintf("new mandatory failure [%s]: %s", n.Section, firstLine(n.Message))
		case had && b.State == "passed" && (n.State == suites.StateNotRun || n.State == suites.StateInterrupted):
			ch.Note = "passed in base, not run now: " + firstLine(n.Message)
			if cur.Interrupted != nil {
				ch.Note = "passed in base, not run now: the run was " + cur.Interrupted.String()
			}
			c.missing(ch)
			continue
		case had && b.State == "passed" && n.State == "skipped":
			ch.Note = "passed in base, skipped now: " + firstLine(n.Message)
			c.missing(ch)
			continue
		case had && b.Failed() && n.State == "passed":
			ch.Note = "fixed"
		default:
			continue // unchanged, or a change that says nothing
		}
		ch.Allowed = ch.Regression && c.Thresholds.AllowConformanceRegressions
		c.Changes = append(c.Changes, ch)
	}
	if base == nil {
		return
	}
	for _, b := range base.Results {
		if b.State == "passed" && !ran[b.ID] {
			note := "passed in base, not run now"
			if cur.Interrupted != nil {
				note += ": the run was " + cur.Interrupted.String()
			}
			c.missing(Change{Area: "conformance", Name: b.ID, Base: verdictWord(b.State, len(b.Findings)), Delta: math.NaN(), Note: note})
		}
	}
}

func (c *Comparison) compareFailover(base, cur []*failover.Report) {
	old := map[string]*failover.Report{}
	for _, r := range base {
		old[r.Scenario] = r
	}
	ran := map[string]bool{}
	for _, n := range cur {
		ran[n.Scenario] = true
		b := old[n.Scenario]
		if b == nil {
			c.Changes = append(c.Changes, Change{Area: "failover", Name: n.Scenario, New: verdict(n), Delta: math.NaN(), Note: "new scenario: not in base"})
			continue
		}
		ch := Change{Area: "failover", Name: n.Scenario, Base: verdict(b), New: verdict(n), Delta: math.NaN()}
		if b.Pass && !n.Pass {
			ch.Regression = true
			ch.Note = "passed in base, fails now: " + n.Reason
		}
		c.Changes = append(c.Changes, ch)
		d := relDelta(float64(b.LongestStall), float64(n.LongestStall))
		c.Changes = append(c.Changes, Change{Area: "failover", Name: n.Scenario + " longest stall", Base: fmtDur(b.LongestStall), New: fmtDur(n.LongestStall),
			Delta: d, Regression: n.LongestStall-b.LongestStall > c.Thresholds.StallSlack && d > c.Thresholds.StallRise})
	}
	for _, b := range base {
		if !ran[b.Scenario] {
			c.missing(Change{Area: "failover", Name: b.Scenario, Base: verdict(b), Delta: math.NaN(), Note: "in base, not in the new run"})
		}
	}
}

// Regressed reports whether any change is a regression the thresholds do
// not allow.
func (c *Comparison) Regressed() bool {
	for _, ch := range c.Changes {
		if ch.Regression && !ch.Allowed {
			return true
		}
	}
	return false
}

// WriteText writes a table of every compared metric, base -> new and the
// change, with REGRESSION markers, then the verdict.
func (c *Comparison) WriteText(w io.Writer) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AREA\tMETRIC\tBASE\t\tNEW\tCHANGE\t")
	n := 0
	for _, ch := range c.Changes {
		mark := ""
		switch {
		case ch.Regression && ch.Allowed:
			mark = "REGRESSION (allowed)"
			n++
		case ch.Regression:
			mark = "REGRESSION"
			n++
		}
		delta := ""
		if !math.IsNaN(ch.Delta) {
			delta = fmtPct(ch.Delta)
		}
		base, cur := ch.Base, ch.New
		if base == "" {
			base = "-"
		}
		if cur == "" {
			cur = "-"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t->\t%s\t%s\t%s", ch.Area, ch.Name, base, cur, delta, mark)
		if ch.Note != "" {
			line += "  " + ch.Note
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	for _, l := range strings.SplitAfter(table.String(), "\n") {
		fmt.Fprint(w, strings.TrimRight(l, " \n"))
		if strings.HasSuffix(l, "\n") {
			fmt.Fprintln(w)
		}
	}
	t := c.Thresholds
	fmt.Fprintf(w, "\nthresholds: IOPS drop %.0f%%, latency rise %.0f%%, stall growth %.0f%% and %v", 100*t.IOPSDrop, 100*t.LatencyRise, 100*t.StallRise, t.StallSlack)
	if t.AllowConformanceRegressions {
		fmt.Fprint(w, ", conformance regressions allowed")
	}
	if t.AllowMissing {
		fmt.Fprint(w, ", missing results allowed")
	}
	fmt.Fprintln(w)
	switch {
	case c.Regressed():
		fmt.Fprintf(w, "REGRESSED: %d regressions\n", n)
	case n > 0:
		fmt.Fprintf(w, "OK: no regression beyond the thresholds (%d allowed)\n", n)
	default:
		fmt.Fprintln(w, "OK: no regression beyond the thresholds")
	}
}
