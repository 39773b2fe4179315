package reports

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the run for a CI comment: the verdicts, the key
// numbers of the load and failover, and every failed conformance check
// with its spec section.
func (r *Run) Markdown() string {
	var b strings.Builder
	b.WriteString("# nvmftest run\n\n")
	code := func(cmd []string) string { return "`" + strings.ReplaceAll(strings.Join(cmd, " "), "`", "'") + "`" }
	if len(r.Steps) > 1 {
		var steps []string
		for _, s := range r.Steps {
			steps = append(steps, code(s.Command))
		}
		b.WriteString(strings.Join(steps, ", then "))
	} else if len(r.Command) > 0 {
		b.WriteString(code(r.Command))
	}
	if r.Target != "" {
		fmt.Fprintf(&b, " against `%s`", strings.ReplaceAll(r.Target, "`", "'"))
	}
	fmt.Fprintf(&b, ", started %s, took %s.\n\n", r.Started.UTC().Format(time.RFC3339), fmtDur(r.Elapsed))
	for _, v := range r.Verdicts() {
		mark := "✅"
		if !v.Pass {
			mark = "❌"
		}
		fmt.Fprintf(&b, "- %s **%s**: %s\n", mark, v.Area, mdCell(v.Text))
	}
	b.WriteString("\n")
	if s := r.Conformance; s != nil {
		b.WriteString("## Conformance\n\n")
		fmt.Fprintf(&b, "%d passed, %d failed (%d mandatory), %d skipped", s.Passed, s.Failed, s.MandatoryFailed, s.Skipped)
		if s.NotRun > 0 {
			fmt.Fprintf(&b, ", %d not run", s.NotRun)
		}
		fmt.Fprintf(&b, ", %d findings.\n\n", len(s.Findings))
		if i := s.Interrupted; i != nil {
			fmt.Fprintf(&b, "**%s**: the run was stopped by a signal and gives no verdict.\n\n", mdCell(i.String()))
		}
		if u := s.Verdict().Untested; len(u) > 0 {
			b.WriteString("**Mandatory checks not run** for lack of an option (skipped, not failed; the verdict does not cover them):\n\n")
			for _, x := range u {
				fmt.Fprintf(&b, "- give `%s`: %s\n", strings.ReplaceAll(x.Needs, "`", "'"), strings.Join(x.IDs, ", "))
			}
			b.WriteString("\n")
		}
		if u := s.Unreachable; u != nil {
			fmt.Fprintf(&b, "**The target stopped answering after %s** (%s). The %d checks after it were not run: the run gives no verdict.\n\n", u.After, mdCell(u.Reason), s.NotRun)
		}
		var failed []string
		for _, res := range s.Results {
			if res.Failed() {
				traces := ""
				if len(res.Traces) > 0 {
					traces = "`" + strings.Join(res.Traces, "`, `") + "`"
				}
				failed = append(failed, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", res.ID, mdCell(res.Section), res.Level, mdCell(res.Title), mdCell(firstLine(res.Message)), traces))
			}
		}
		if len(failed) > 0 {
			b.WriteString("### Failed checks\n\n| Check | Section | Level | Requirement | Message | Traces |\n|---|---|---|---|---|---|\n")
			b.WriteString(strings.Join(failed, "\n"))
			b.WriteString("\n\n")
		}
		if len(s.Findings) > 0 {
			b.WriteString("### Findings\n\n| Check | Section | Observed | Spec | Note |\n|---|---|---|---|---|\n")
			for _, f := range s.Findings {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.ID, mdCell(f.Section), mdCell(f.Observed), mdCell(f.Want), mdCell(f.Note))
			}
			b.WriteString("\n")
		}
	}
	if len(r.Bench) > 0 {
		b.WriteString("## Load\n\n")
		if r.BenchInterrupted != "" {
			fmt.Fprintf(&b, "**%s**: the load was stopped by a signal; the numbers are those of the time it ran.\n\n", mdCell(r.BenchInterrupted))
		}
		b.WriteString("| Job | Dir | IOPS | BW | mean | p50 | p99 | p99.9 | max | Error |\n|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, x := range r.Bench {
			l := x.Latency
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdCell(x.Job), x.Dir, fmtCount(x.IOPS), fmtBW(x.BW),
				fmtNs(l.Mean), fmtNs(float64(l.P50)), fmtNs(float64(l.P99)), fmtNs(float64(l.P999)), fmtNs(float64(l.Max)), mdCell(firstLine(x.Error)))
		}
		b.WriteString("\n")
		if sp := shardSpread(r.Shards); len(sp) > 0 {
			// A merged sharded load: the table above is all shards together.
			b.WriteString("Merged from shards (percentiles from merged HdrHistograms):\n\n| Job | Dir | Shards | IOPS min | IOPS max | spread | p99 min | p99 max |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
			for _, x := range sp {
				fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %.1f%% | %s | %s |\n", mdCell(x.Job), x.Dir, x.Shards, fmtCount(x.MinIOPS), fmtCount(x.MaxIOPS),
					x.SpreadPct, fmtNs(float64(x.MinP99)), fmtNs(float64(x.MaxP99)))
			}
			b.WriteString("\n")
			for _, w := range r.MergeWarnings {
				fmt.Fprintf(&b, "- warning: %s\n", mdCell(w))
			}
			if len(r.MergeWarnings) > 0 {
				b.WriteString("\n")
			}
		}
	}
	if len(r.Failover) > 0 {
		b.WriteString("## Failover\n\n| Scenario | Verdict | I/Os | failed | retried | verify mismatches | longest stall | total stall |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
		for _, f := range r.Failover {
			v := "PASS"
			if !f.Pass {
				v = "FAIL: " + mdCell(f.Reason)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %s |\n", mdCell(f.Scenario), v, f.IOs, f.Failed, f.Retried, f.VerifyErrors, fmtDur(f.LongestStall), fmtDur(f.StallTotal))
		}
		b.WriteString("\n")
	}
	switch groups := GroupTraces(r.Traces); {
	case len(r.Traces) > 4:
		var dirs []string
		for _, g := range groups {
			dirs = append(dirs, fmt.Sprintf("`%s` (%d)", g.Dir, len(g.Files)))
		}
		fmt.Fprintf(&b, "Packet traces: %d, in %s\n", len(r.Traces), strings.Join(dirs, ", "))
	case len(r.Traces) > 0:
		fmt.Fprintf(&b, "Packet traces: `%s`\n", strings.Join(r.Traces, "`, `"))
	}
	return b.String()
}
