package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/suites"
)

// interruptedSummary is sampleSummary's run stopped by Ctrl-C during
// TCP-PDU-005, with TCP-PDU-006 never started.
func interruptedSummary() suites.Summary {
	s := sampleSummary()
	s.Results = append(s.Results,
		suites.Result{Requirement: suites.Requirement{ID: "TCP-PDU-005", Section: "NVMe/TCP 1.0 3.5.1", Level: suites.Mandatory, Title: "the running check"},
			Area: "transport", State: suites.StateInterrupted, Message: "interrupted while running (signal: interrupt): no result"},
		suites.Result{Requirement: suites.Requirement{ID: "TCP-PDU-006", Section: "NVMe/TCP 1.0 3.5.1", Level: suites.Mandatory, Title: "a check after it"},
			Area: "transport", State: suites.StateNotRun, Message: "not run: the run was interrupted (signal: interrupt)"})
	s.NotRun = 2
	s.Interrupted = &suites.Interrupted{Signal: "interrupt", SignalNumber: 2, During: "TCP-PDU-005", Ran: len(s.Results) - 2, Total: len(s.Results)}
	return s
}

// TestInterruptedRun: a run a signal stopped says so first in every
// output (INTERRUPTED after N of M checks), gives no verdict, shows the
// interrupted check as neither FAIL nor passed, and a compare against it
// says why its checks are missing. A load a signal stopped is labelled
// INTERRUPTED, not LOAD FAILED.
func TestInterruptedRun(t *testing.T) {
	s := interruptedSummary()
	head := "INTERRUPTED after 4 of 6 checks; 2 not run (signal: interrupt, during TCP-PDU-005)"
	if got := s.Interrupted.String(); got != head {
		t.Fatalf("String() = %q", got)
	}
	r := NewRun([]string{"nvmftest", "conform"})
	r.AddConformance(s)
	r.Bench = []BenchSummary{{Job: "bench", Dir: "read", IOs: 1000, IOPS: 400}}
	r.BenchInterrupted = "INTERRUPTED after 2.5s of 30s (signal: interrupt)"
	v := r.Verdicts()
	if len(v) != 2 || v[0].Pass || !strings.HasPrefix(v[0].Text, "NO VERDICT: "+head) ||
		v[1].Pass || !strings.HasPrefix(v[1].Text, r.BenchInterrupted) || strings.Contains(v[1].Text, "LOAD") {
		t.Errorf("verdicts: %+v", v)
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for file, wants := range map[string][]string{
		"summary.md":             {head, r.BenchInterrupted},
		"report.html":            {head, r.BenchInterrupted},
		"conformance/summary.md": {head},
		"conformance/junit.xml":  {head, `type="interrupted"`, `type="notrun"`},
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", file, w)
			}
		}
		if strings.Contains(string(b), "CONFORMANT") || strings.Contains(string(b), "LOAD FAILED") {
			t.Errorf("%s gives a verdict", file)
		}
	}
	var buf bytes.Buffer
	s.WriteText(&buf)
	if out := buf.String(); !strings.Contains(out, "NO VERDICT: "+head) || strings.Contains(out, "TCP-PDU-005 [mandatory]") {
		t.Errorf("console summary:\n%s", out)
	}

	base := NewRun([]string{"nvmftest", "conform"})
	bs := sampleSummary()
	for _, id := range []string{"TCP-PDU-005", "TCP-PDU-006"} {
		bs.Results = append(bs.Results, suites.Result{Requirement: suites.Requirement{ID: id, Level: suites.Mandatory}, Area: "transport", State: "passed"})
		bs.Passed++
	}
	base.AddConformance(bs)
	missing := 0
	for _, ch := range Compare(base, r, DefaultThresholds()).Changes {
		if ch.Name == "TCP-PDU-005" || ch.Name == "TCP-PDU-006" {
			missing++
			if !strings.Contains(ch.Note, "the run was "+head) {
				t.Errorf("compare %s: %q does not say the run was interrupted", ch.Name, ch.Note)
			}
		}
	}
	if missing != 2 {
		t.Errorf("compare lists %d of the 2 checks not run", missing)
	}
}
