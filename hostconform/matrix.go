package hostconform

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/nvmftest/nvmftest/suites"
)

// StatementRow is one statement of the inventory (suites/statements.tsv)
// that binds the host, alone or with the controller, with the host checks
// that name it.
type StatementRow struct {
	suites.Statement
	Checks []string `json:"checks"`
}

// Matrix joins the host's statements with the host checks: the host side
// of `conform --matrix`, which judges the controller's. Statements that
// bind only the host are the inventory's status "host"; those binding
// both sides are counted in conform's matrix too.
func Matrix() ([]StatementRow, error) {
	stmts, err := suites.Statements()
	if err != nil {
		return nil, err
	}
	by := map[string][]string{}
	for _, c := range Checks() {
		for _, s := range c.Statements {
			by[s] = append(by[s], c.ID)
		}
	}
	var rows []StatementRow
	for _, s := range stmts {
		if !s.MayName(suites.Host) {
			continue
		}
		cs := by[s.ID]
		sort.Strings(cs)
		rows = append(rows, StatementRow{Statement: s, Checks: cs})
	}
	return rows, nil
}

// WriteMatrix writes the host matrix as text: one line per statement
// (ID, whom it binds, keyword, the checks naming it or "-", the
// paraphrase), then how many are covered.
func WriteMatrix(w io.Writer) error {
	rows, err := Matrix()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-16s %-6s %-11s %-32s %s\n", "STATEMENT", "BINDS", "KEYWORD", "HOST CHECKS", "STATEMENT (paraphrase)")
	hostOnly, covered, coveredOnly := 0, 0, 0
	for _, r := range rows {
		checks := strings.Join(r.Checks, " ")
		if checks == "" {
			checks = "-"
		}
		fmt.Fprintf(w, "%-16s %-6s %-11s %-32s %s\n", r.ID, r.Binds, r.Keyword, checks, r.Text)
		if r.Binds == "host" {
			hostOnly++
		}
		if len(r.Checks) > 0 {
			covered++
			if r.Binds == "host" {
				coveredOnly++
			}
		}
	}
	fmt.Fprintf(w, "\n%d statements bind the host (%d only the host): host checks cover %d (%d of those binding only the host).\n", len(rows), hostOnly, covered, coveredOnly)
	return nil
}
