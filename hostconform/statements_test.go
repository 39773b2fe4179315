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

// TestMatrix: the host matrix lists every statement a host check names,
// with that check, and no statement that binds only the controller.
func TestMatrix(t *testing.T) {
	rows, err := Matrix()
	if err != nil {
		t.Fatal(err)
	}
	in := map[string][]string{}
	for _, r := range rows {
		if r.Binds != "host" && r.Binds != "both" {
			t.Errorf("%s binds %s", r.ID, r.Binds)
		}
		in[r.ID] = r.Checks
	}
	for _, c := range Checks() {
		for _, s := range c.Statements {
			found := false
			for _, id := range in[s] {
				found = found || id == c.ID
			}
			if !found {
				t.Errorf("%s names %s, which the matrix does not show it covering", c.ID, s)
			}
		}
	}
}
