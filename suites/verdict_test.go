package suites

import (
	"strings"
	"testing"
)

// TestVerdictNamesUntested: a mandatory check skipped for lack of an
// option (FAB-CONN-009 without --restricted-nqn) is no failure, exit
// status 0, but the verdict never reads as an unqualified CONFORMANT: the
// console, summary.md and results.json say how many were not run and
// what would run them.
func TestVerdictNamesUntested(t *testing.T) {
	s := Summary{Target: "127.0.0.1:4420", SubNQN: "nqn.2014-08.io.nvmftest:target"}
	mk := func(id string, l Level, state, needs string) Result {
		return Result{Requirement: Requirement{ID: id, Section: "NVMe Base 2.1 6.3", Level: l, Title: id}, Area: "fabrics", State: state, Needs: needs}
	}
	s.add(mk("FAB-CONN-001", Mandatory, "passed", ""))
	s.add(mk("FAB-CONN-009", Mandatory, "skipped", "--restricted-nqn NQN"))
	s.add(mk("IO-RW-001", Mandatory, "skipped", "--allow-writes NSID"))
	s.add(mk("IO-RW-002", Mandatory, "skipped", "--allow-writes NSID"))
	s.add(mk("IO-WZ-001", Optional, "skipped", "--allow-writes NSID")) // optional: not counted
	s.add(mk("DISC-REF-001", Mandatory, "skipped", ""))                // target lacks the feature: not counted
	if c := s.ExitCode(false); c != ExitConformant {
		t.Errorf("exit status %d, want %d: a skip is no failure", c, ExitConformant)
	}
	v := s.Verdict()
	want := "CONFORMANT (3 mandatory checks not run: give --allow-writes NSID (2), --restricted-nqn NQN (1)): every check tried passed (1 passed, 5 skipped)"
	if v.Verdict != Conformant || v.Text != want {
		t.Errorf("verdict %q %q,\nwant %q", v.Verdict, v.Text, want)
	}
	if len(v.Untested) != 2 || strings.Join(v.Untested[0].IDs, ",") != "IO-RW-001,IO-RW-002" {
		t.Errorf("untested %+v", v.Untested)
	}
	var out strings.Builder
	s.WriteText(&out)
	if !strings.Contains(out.String(), "\n"+want+"\n") || !strings.Contains(out.String(), "not run for lack of --restricted-nqn NQN: FAB-CONN-009") {
		t.Errorf("console:\n%s", out.String())
	}
	md := s.Markdown()
	if !strings.Contains(md, "**"+want+"**") || !strings.Contains(md, "- give --restricted-nqn NQN: FAB-CONN-009") {
		t.Errorf("summary.md:\n%s", md)
	}
	// Nothing untested: the plain verdict.
	s = Summary{}
	s.add(mk("FAB-CONN-001", Mandatory, "passed", ""))
	s.add(mk("DISC-REF-001", Mandatory, "skipped", ""))
	if v := s.Verdict(); v.Text != "CONFORMANT: every check tried passed (1 passed, 1 skipped)" {
		t.Errorf("verdict %q", v.Text)
	}
	// --strict: a recommended failure is NOT CONFORMANT, as the exit
	// status says.
	s.Strict = true
	s.add(mk("FAB-CONN-002", Recommended, "failed", ""))
	if v := s.Verdict(); v.Verdict != NotConformant || !strings.HasPrefix(v.Text, "NOT CONFORMANT (--strict)") || s.ExitCode(true) != ExitNotConformant {
		t.Errorf("strict verdict %+v", v)
	}
}
