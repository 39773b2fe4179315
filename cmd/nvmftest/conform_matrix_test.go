package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestConformMatrix: --matrix needs no target and prints one line per
// statement and the coverage figures; -o json carries the same.
func TestConformMatrix(t *testing.T) {
	code, out, _ := runCLI(t, "", "conform", "--matrix")
	if code != 0 {
		t.Fatalf("conform --matrix: exit %d\n%s", code, out)
	}
	for _, want := range []string{"T-3.5.1-02 ", "B-6.3-16 ", "T-3.6.1.2-01 ", "not applicable", "Observable controller requirements"} {
		if !strings.Contains(out, want) {
			t.Errorf("conform --matrix lacks %q", want)
		}
	}
	code, out, _ = runCLI(t, "", "conform", "--matrix", "-o", "json")
	if code != 0 {
		t.Fatalf("conform --matrix -o json: exit %d\n%s", code, out)
	}
	var m struct {
		Summary struct {
			Statements int `json:"statements"`
			Observable struct {
				Statements, Covered int
			} `json:"observable"`
		} `json:"summary"`
		Statements []struct {
			ID       string   `json:"id"`
			Coverage string   `json:"coverage"`
			Checks   []string `json:"checks"`
		} `json:"statements"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("conform --matrix -o json: %v\n%.300s", err, out)
	}
	if m.Summary.Statements != len(m.Statements) || len(m.Statements) < 389 || m.Summary.Observable.Covered == 0 {
		t.Errorf("conform --matrix -o json: summary %+v for %d statements", m.Summary, len(m.Statements))
	}
	if code, _, errOut := runCLI(t, "", "conform", "--matrix", "-o", "yaml"); code != 2 {
		t.Errorf("conform --matrix -o yaml: exit %d, want 2 (%s)", code, errOut)
	}
}

func TestConformOutputFormatNeedsMatrix(t *testing.T) {
	if code, _, errOut := runCLI(t, "", "conform", "-o", "json"); code != 2 || !strings.Contains(errOut, "--matrix") {
		t.Errorf("conform -o json: exit %d, want 2 (%s)", code, errOut)
	}
}
