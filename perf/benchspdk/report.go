package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// report is one run of the benchmark: what BENCHMARKS.md shows.
type report struct {
	When    time.Time `json:"when"`
	Commit  string    `json:"commit"`
	Machine string    `json:"machine"`
	Seconds int       `json:"seconds"`
	Rounds  int       `json:"rounds"`
	QDs     []int     `json:"qds"`
	Queues  int       `json:"queues"`
	// TargetCPUs and HostCPUs are where the two sides ran.
	TargetCPUs string        `json:"target_cpus"`
	HostCPUs   string        `json:"host_cpus"`
	Runs       []Measurement `json:"runs"`
}

// get returns the measurement of pair at qd in round.
func (r *report) get(pair string, qd, round int) (Measurement, bool) {
	for _, m := range r.Runs {
		if m.Pair == pair && m.QD == qd && m.Round == round {
			return m, true
		}
	}
	return Measurement{}, false
}

// span is "lo - hi" of the values, or the one value.
func span(vals []float64, format func(float64) string) string {
	if len(vals) == 0 {
		return "-"
	}
	lo, hi := slices.Min(vals), slices.Max(vals)
	if format(lo) == format(hi) {
		return format(lo)
	}
	return format(lo) + " - " + format(hi)
}

func kIOPS(v float64) string {
	if v >= 1e6 {
		return fmt.Sprintf("%.2fM", v/1e6)
	}
	return fmt.Sprintf("%.0fK", v/1e3)
}

func us(v float64) string { return fmt.Sprintf("%.0f", v) }

func ratio(v float64) string { return fmt.Sprintf("%.2f", v) }

func plusUs(v float64) string { return fmt.Sprintf("%+.1f us", v) }

// markdown is the section BENCHMARKS.md carries: the table, then each
// goal of issue 15 judged round by round (a ratio only means something
// within one round).
func (r *report) markdown() string {
	var b strings.Builder
	queues := "one I/O queue"
	if r.Queues > 1 {
		queues = fmt.Sprintf("%d I/O queues", r.Queues)
	}
	fmt.Fprintf(&b, "Measured %s at commit %s by `make bench-spdk` (%d rounds, %d s per run after 1 s of warm-up; %s). 4 KiB random reads, %s, null namespace, loopback; targets (nvmftest's and SPDK's) on CPU %s, hosts on CPU %s. Each cell is the range over the rounds: IOPS, and p50 latency in microseconds.\n\n",
		r.When.Format("2006-01-02 15:04 MST"), r.Commit, r.Rounds, r.Seconds, r.Machine, queues, r.TargetCPUs, r.HostCPUs)
	b.WriteString("| pair |")
	for _, qd := range r.QDs {
		fmt.Fprintf(&b, " QD%d |", qd)
	}
	b.WriteString("\n|---|")
	for range r.QDs {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, p := range allPairs {
		var row []string
		any := false
		for _, qd := range r.QDs {
			var iops, p50 []float64
			for round := 1; round <= r.Rounds; round++ {
				if m, ok := r.get(p.ID, qd, round); ok {
					iops, p50 = append(iops, m.IOPS), append(p50, m.P50us)
					any = true
				}
			}
			row = append(row, fmt.Sprintf("%s, p50 %s us", span(iops, kIOPS), span(p50, us)))
		}
		if any {
			fmt.Fprintf(&b, "| %s | %s |\n", p.Label, strings.Join(row, " | "))
		}
	}
	b.WriteString("\nGoals of issue 15, each ratio taken within one round (a round runs every pair once):\n\n")
	b.WriteString("| goal | per round | met |\n|---|---|---|\n")
	for _, g := range r.goals() {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", g.name, g.values, g.verdict)
	}
	return b.String()
}

type goalRow struct{ name, values, verdict string }

// goal is one comparison: value(round) against a bound.
type goal struct {
	name  string
	value func(r *report, round int) (float64, bool)
	ok    func(float64) bool
	unit  func(float64) string
}

func iopsRatio(a, b string, qd int) func(*report, int) (float64, bool) {
	return func(r *report, round int) (float64, bool) {
		x, ok1 := r.get(a, qd, round)
		y, ok2 := r.get(b, qd, round)
		return x.IOPS / y.IOPS, ok1 && ok2 && y.IOPS > 0
	}
}

func p50Ratio(a, b string, qd int) func(*report, int) (float64, bool) {
	return func(r *report, round int) (float64, bool) {
		x, ok1 := r.get(a, qd, round)
		y, ok2 := r.get(b, qd, round)
		return x.P50us / y.P50us, ok1 && ok2 && y.P50us > 0
	}
}

func p50Diff(a, b string, qd int) func(*report, int) (float64, bool) {
	return func(r *report, round int) (float64, bool) {
		x, ok1 := r.get(a, qd, round)
		y, ok2 := r.get(b, qd, round)
		return x.P50us - y.P50us, ok1 && ok2
	}
}

func atLeast(v float64) func(float64) bool { return func(x float64) bool { return x >= v } }
func atMost(v float64) func(float64) bool  { return func(x float64) bool { return x <= v } }

var goals = []goal{
	{"bench -> SPDK target, QD32 IOPS >= 1.0x spdk_nvme_perf's", iopsRatio("bench-spdk", "spdk-spdk", 32), atLeast(1), ratio},
	{"bench --hipri -> SPDK target, QD32 IOPS >= 1.0x spdk_nvme_perf's", iopsRatio("hipri-spdk", "spdk-spdk", 32), atLeast(1), ratio},
	{"bench -> SPDK target, QD1 p50 <= 1.1x spdk_nvme_perf's", p50Ratio("bench-spdk", "spdk-spdk", 1), atMost(1.1), ratio},
	{"bench --hipri -> SPDK target, QD1 p50 <= 1.1x spdk_nvme_perf's", p50Ratio("hipri-spdk", "spdk-spdk", 1), atMost(1.1), ratio},
	{"spdk_nvme_perf -> our target, QD32 IOPS >= 1.0x against SPDK's target", iopsRatio("perf-ours", "spdk-spdk", 32), atLeast(1), ratio},
	{"spdk_nvme_perf -> our target --poll, QD32 IOPS >= 1.0x against SPDK's target", iopsRatio("perf-ours-poll", "spdk-spdk", 32), atLeast(1), ratio},
	{"spdk_nvme_perf -> our target, QD1 p50 <= 1.0x against SPDK's target", p50Ratio("perf-ours", "spdk-spdk", 1), atMost(1), ratio},
	{"spdk_nvme_perf -> our target --poll, QD1 p50 <= 1.0x against SPDK's target", p50Ratio("perf-ours-poll", "spdk-spdk", 1), atMost(1), ratio},
	{"bench -> our target (sleeping), QD32 IOPS >= 0.9x the two-process ping-pong", iopsRatio("bench-ours", "pingpong", 32), atLeast(0.9), ratio},
	{"bench -> our target (sleeping), QD1 p50 <= ping-pong's + 3 us", p50Diff("bench-ours", "pingpong", 1), atMost(3), plusUs},
	{"bench -> our target (no flags), QD32 IOPS >= 0.9x the two-process ping-pong", iopsRatio("bench-ours-default", "pingpong", 32), atLeast(0.9), ratio},
	{"bench -> our target (no flags), QD1 p50 <= ping-pong's + 3 us", p50Diff("bench-ours-default", "pingpong", 1), atMost(3), plusUs},
	{"our target without --cpus beside a polling neighbour, QD32 IOPS >= 0.8x pinned", iopsRatio("perf-ours-default", "perf-ours", 32), atLeast(0.8), ratio},
	{"our target without --cpus beside a polling neighbour, QD1 IOPS >= 0.8x pinned", iopsRatio("perf-ours-default", "perf-ours", 1), atLeast(0.8), ratio},
}

func (r *report) goals() []goalRow {
	var out []goalRow
	for _, g := range goals {
		var vals []string
		met, n := 0, 0
		for round := 1; round <= r.Rounds; round++ {
			v, ok := g.value(r, round)
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			n++
			vals = append(vals, g.unit(v))
			if g.ok(v) {
				met++
			}
		}
		if n == 0 {
			continue // a pair it needs was not run
		}
		verdict := "yes"
		switch {
		case met == 0:
			verdict = "no"
		case met < n:
			verdict = fmt.Sprintf("in %d of %d rounds", met, n)
		}
		out = append(out, goalRow{g.name, strings.Join(vals, ", "), verdict})
	}
	return out
}

// Markers of the section -update replaces.
const (
	beginMarker = "<!-- bench-spdk:begin (make bench-spdk rewrites this section) -->"
	endMarker   = "<!-- bench-spdk:end -->"
)

// updateSection replaces what lies between the markers in the file with
// md; the markers must be there already, once each.
func updateSection(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := splice(string(old), md)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

func splice(doc, md string) (string, error) {
	i, j := strings.Index(doc, beginMarker), strings.Index(doc, endMarker)
	if i < 0 || j < i || strings.Count(doc, beginMarker) != 1 || strings.Count(doc, endMarker) != 1 {
		return "", errors.New("want the markers " + beginMarker + " and " + endMarker + " once each, in that order")
	}
	return doc[:i+len(beginMarker)] + "\n" + md + doc[j:], nil
}
