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
	got := ConformanceMatrix([]NamedConformance{{"mine", a}, {"theirs", b}})
	for _, want := range []string{
		"| Check | Level | Section | mine | theirs |",
		"| TCP-A-001 | mandatory | NVMe/TCP 1.0 3.5.1 | PASS | SKIP |",
		"| TCP-B-001 | mandatory | NVMe/TCP 1.0 3.5.1 | FINDING | - |",
		"| TCP-C-001 | mandatory | NVMe/TCP 1.0 3.5.1 | FAIL | NOT RUN |",
		"| TCP-D-001 | mandatory | NVMe/TCP 1.0 3.5.1 | - | FAIL |",
		"| **failed** | | | **1** | **1** |",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("matrix lacks %q:\n%s", want, got)
		}
	}

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
