package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nvmftest/nvmftest/suites"
)

// NamedConformance is one target's conformance run, under the name a
// matrix gives its column.
type NamedConformance struct {
	Name    string
	Summary *suites.Summary
}

// LoadConformance reads a conformance run from a run directory or its
// run.json, a conformance report directory (with results.json) or a
// results.json itself.
func LoadConformance(path string) (*suites.Summary, error) {
	if r, err := Load(path); err == nil {
		if r.Conformance == nil {
			return nil, fmt.Errorf("%s: the run has no conformance run", path)
		}
		return r.Conformance, nil
	}
	file := path
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load conformance: %w", err)
	} else if fi.IsDir() {
		file = filepath.Join(path, "results.json")
		if _, err := os.Stat(file); err != nil {
			file = filepath.Join(path, "conformance", "results.json")
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load conformance: %s has neither run.json nor results.json: %w", path, err)
	}
	var s suites.Summary
	if err := json.Unmarshal(b, &s); err != nil || len(s.Results) == 0 {
		if err == nil {
			err = errors.New("no results")
		}
		return nil, fmt.Errorf("load conformance: %s is not a conformance results.json: %v", file, err)
	}
	s.Recount()
	return &s, nil
}

// ConformanceMatrix renders the verdict of every check on several targets
// side by side as a Markdown table: one row per check (ID, level, section),
// one column per run, each cell PASS, FINDING (a divergence the run's
// profile documents), FAIL, SKIP, NOT RUN, or "-" where the run did not
// include the check. The last row counts the failures per run.
//
// Runs that share a name share a column: a host or target graded in two
// runs (say, the wire checks and the behaviour checks, each run leaving
// the other's checks out) reads as one. Within a column a check's verdict
// comes from the last run that ran it; a run that skipped or did not run
// it does not hide another run's verdict.
func ConformanceMatrix(allRuns []NamedConformance) string {
	type row struct {
		req   suites.Requirement
		cells []string
		fail  []bool
	}
	var names []string
	column := map[string]int{}
	for _, r := range allRuns {
		if _, ok := column[r.Name]; !ok {
			column[r.Name] = len(names)
			names = append(names, r.Name)
		}
	}
	rows := map[string]*row{}
	for _, r := range allRuns {
		i := column[r.Name]
		for _, res := range r.Summary.Results {
			rw := rows[res.ID]
			if rw == nil {
				rw = &row{req: res.Requirement, cells: make([]string, len(names)), fail: make([]bool, len(names))}
				rows[res.ID] = rw
			}
			cell := matrixCell(res)
			if rw.cells[i] != "" && (cell == "SKIP" || cell == "NOT RUN") {
				continue
			}
			rw.cells[i] = cell
			rw.fail[i] = res.Failed() && res.State != suites.StateNotRun
		}
	}
	fails := make([]int, len(names))
	for _, rw := range rows {
		for i, f := range rw.fail {
			if f {
				fails[i]++
			}
		}
	}
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	b.WriteString("| Check | Level | Section |")
	for _, name := range names {
		fmt.Fprintf(&b, " %s |", mdCell(name))
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(names)) + "\n")
	for _, id := range ids {
		rw := rows[id]
		fmt.Fprintf(&b, "| %s | %s | %s |", id, rw.req.Level, mdCell(rw.req.Section))
		for _, c := range rw.cells {
			if c == "" {
				c = "-"
			}
			fmt.Fprintf(&b, " %s |", c)
		}
		b.WriteString("\n")
	}
	b.WriteString("| **failed** | | |")
	for _, f := range fails {
		fmt.Fprintf(&b, " **%d** |", f)
	}
	b.WriteString("\n")
	return b.String()
}

func matrixCell(r suites.Result) string {
	switch {
	case r.State == suites.StateNotRun:
		return "NOT RUN"
	case r.Failed():
		return "FAIL"
	case r.State == "skipped":
		return "SKIP"
	case len(r.Findings) > 0:
		return "FINDING"
	}
	return "PASS"
}
