package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/suites"
)

// unreachableSummary is sampleSummary's run cut short: the target stopped
// answering after TCP-PDU-004, and two checks were not run.
func unreachableSummary() suites.Summary {
	s := sampleSummary()
	s.Results[1].Unreachable = "TCP connect: connection refused"
	for _, id := range []string{"TCP-PDU-005", "TCP-PDU-006"} {
		s.Results = append(s.Results, suites.Result{Requirement: suites.Requirement{ID: id, Section: "NVMe/TCP 1.0 3.5.1", Level: suites.Mandatory, Title: "a check after the death"},
			Area: "transport", State: suites.StateNotRun, Message: "not run: target unreachable after TCP-PDU-004"})
		s.NotRun++
	}
	s.Unreachable = &suites.Unreachable{After: "TCP-PDU-004", Reason: "TCP connect: connection refused", Previous: "TCP-IC-001"}
	return s
}

// TestUnreachableRun: a run whose target died renders as no verdict, in
// every output, with the not-run checks counted apart from the failures,
// and the check after which the target went named.
func TestUnreachableRun(t *testing.T) {
	r := NewRun([]string{"nvmftest", "conform"})
	r.AddConformance(unreachableSummary())
	if v := r.Verdicts(); len(v) != 1 || v[0].Pass || !strings.HasPrefix(v[0].Text, "NO VERDICT: target unreachable after TCP-PDU-004 (TCP connect: connection refused)") ||
		!strings.Contains(v[0].Text, "2 checks not run") {
		t.Errorf("verdicts: %+v", v)
	}
	md := r.Markdown()
	for _, want := range []string{"NO VERDICT", "2 not run", "**The target stopped answering after TCP-PDU-004**"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "NOT CONFORMANT") || strings.Contains(md, "TCP-PDU-005") {
		t.Errorf("summary.md gives a verdict or lists a not-run check as failed:\n%s", md)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	checkSelfContainedHTML(t, page)
	for _, want := range []string{"NO VERDICT", "2 not run", "The target stopped answering after TCP-PDU-004", "the check before it was TCP-IC-001",
		`<th class="num">Not run</th>`, "The target no longer answered after this check: TCP connect: connection refused", ">NOT RUN<"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Count(page, `<div class="failure">`) != 1 {
		t.Error("not-run checks are shown as failures")
	}
	buf.Reset()
	s := unreachableSummary()
	if err := s.WriteJUnit(&buf, ""); err != nil {
		t.Fatal(err)
	}
	junit := buf.String()
	if !strings.Contains(junit, `failures="1" errors="0" skipped="3"`) || strings.Count(junit, `message="not run: target unreachable after TCP-PDU-004" type="notrun"`) != 2 ||
		!strings.Contains(junit, "target unreachable after this check: TCP connect: connection refused") {
		t.Errorf("junit.xml:\n%s", junit)
	}
	base := NewRun(nil)
	all := sampleSummary()
	all.Results = append(all.Results, suites.Result{Requirement: suites.Requirement{ID: "TCP-PDU-005", Level: suites.Mandatory}, Area: "transport", State: "passed"})
	base.AddConformance(all)
	c := Compare(base, r, DefaultThresholds())
	if ch := changeNamed(c, "TCP-PDU-005"); ch == nil || !ch.Regression || ch.New != "NOT RUN" || !strings.Contains(ch.Note, "not run now: not run: target unreachable") {
		t.Errorf("compare: %+v", ch)
	}
}
