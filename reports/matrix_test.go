package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/suites"
)

func TestConformanceMatrix(t *testing.T) {
	req := func(id string) suites.Requirement {
		return suites.Requirement{ID: id, Section: "NVMe/TCP 1.0 3.5.1", Level: suites.Mandatory, Title: "t"}
	}
	a := &suites.Summary{Results: []suites.Result{
		{Requirement: req("TCP-A-001"), State: "passed"},
		{Requirement: req("TCP-B-001"), State: "passed", Findings: []suites.Finding{{ID: "TCP-B-001"}}},
		{Requirement: req("TCP-C-001"), State: "failed"},
	}}
	b := &suites.Summary{Results: []suites.Result{
		{Requirement: req("TCP-A-001"), State: "skipped"},
		{Requirement: req("TCP-C-001"), State: suites.StateNotRun},
		{Requirement: req("TCP-D-001"), State: "failed"},
	}}
	wantRows(t, ConformanceMatrix([]NamedConformance{{"mine", a}, {"theirs", b}}),
		"| Check | Level | Section | mine | theirs |",
		"| TCP-A-001 | mandatory | NVMe/TCP 1.0 3.5.1 | PASS | SKIP |",
		"| TCP-B-001 | mandatory | NVMe/TCP 1.0 3.5.1 | FINDING | - |",
		"| TCP-C-001 | mandatory | NVMe/TCP 1.0 3.5.1 | FAIL | NOT RUN |",
		"| TCP-D-001 | mandatory | NVMe/TCP 1.0 3.5.1 | - | FAIL |",
		"| **failed** | | | **1** | **1** |")

	// Two runs under one name share a column: the behaviour run's verdict
	// fills the checks the wire run left out or skipped, and a skip never
	// hides a verdict.
	wire := &suites.Summary{Results: []suites.Result{
		{Requirement: req("HOST-IC-001"), State: "passed"},
		{Requirement: req("HOST-KA-001"), State: "skipped"},
	}}
	behaviour := &suites.Summary{Results: []suites.Result{
		{Requirement: req("HOST-IC-001"), State: "skipped"},
		{Requirement: req("HOST-KA-001"), State: "failed"},
		{Requirement: req("HOST-AEN-001"), State: "passed", Findings: []suites.Finding{{ID: "HOST-AEN-001"}}},
	}}
	wantRows(t, ConformanceMatrix([]NamedConformance{{"linux", wire}, {"self", a}, {"linux", behaviour}}),
		"| Check | Level | Section | linux | self |",
		"| HOST-AEN-001 | mandatory | NVMe/TCP 1.0 3.5.1 | FINDING | - |",
		"| HOST-IC-001 | mandatory | NVMe/TCP 1.0 3.5.1 | PASS | - |",
		"| HOST-KA-001 | mandatory | NVMe/TCP 1.0 3.5.1 | FAIL | - |",
		"| TCP-C-001 | mandatory | NVMe/TCP 1.0 3.5.1 | - | FAIL |",
		"| **failed** | | | **1** | **1** |")

	// A conformance report directory loads through its results.json.
	dir := t.TempDir()
	raw, _ := json.Marshal(a)
	if err := os.WriteFile(filepath.Join(dir, "results.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadConformance(dir)
	if err != nil || len(s.Results) != 3 {
		t.Fatalf("LoadConformance: %v, %v", s, err)
	}
	if _, err := LoadConformance(t.TempDir()); err == nil {
		t.Error("an empty directory loaded as a conformance run")
	}
}

// wantRows fails t unless the matrix holds each row as a whole line.
func wantRows(t *testing.T, matrix string, rows ...string) {
	t.Helper()
	for _, want := range rows {
		if !strings.Contains(matrix, want+"\n") {
			t.Errorf("matrix lacks %q:\n%s", want, matrix)
		}
	}
}
