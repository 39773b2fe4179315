package hostconform

import (
	"testing"

	"github.com/nvmftest/nvmftest/suites"
)

// TestHostStatements holds the host checks to the statement inventory the
// target checks share (suites/statements.tsv): every statement a host
// check names exists and binds the host (alone or with the controller),
// and every check names at least one. suites' TestStatementMatrix keeps
// target checks off host statements.
func TestHostStatements(t *testing.T) {
	for _, c := range Checks() {
		if len(c.Statements) == 0 {
			t.Errorf("%s names no statement", c.ID)
		}
		if err := suites.CheckStatements(c.Binds, c.Statements); err != nil {
			t.Errorf("%s: %v", c.ID, err)
		}
	}
	if err := suites.CheckStatements(suites.Controller, []string{"T-3.5.1-06"}); err == nil {
		t.Error("a target check may name T-3.5.1-06, a host statement")
	}
}
