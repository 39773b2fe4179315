package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/suites"
)

// writeRun writes a run directory with one job at iops and p99 latency,
// one mandatory check in state and one failover scenario.
func writeRun(t *testing.T, dir string, iops float64, p99 int64, state string) {
	t.Helper()
	r := reports.NewRun([]string{"nvmftest", "bench"})
	r.Started = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	r.Elapsed = 3 * time.Second
	s := suites.Summary{Target: "127.0.0.1:4420", SubNQN: "nqn.2024-01.io.nvmftest:ref",
		Results: []suites.Result{{Requirement: suites.Requirement{ID: "TCP-IC-001", Section: "NVMe/TCP 1.0 3.6.2.1", Level: suites.Mandatory, Title: "ICReq gets ICResp"},
			Area: "transport", State: state}}}
	if state == "passed" {
		s.Passed = 1
	} else {
		s.Failed, s.MandatoryFailed = 1, 1
	}
	r.AddConformance(s)
	r.Bench = []reports.BenchSummary{{Job: "randread", Dir: "read", Runtime: time.Second, IOs: int64(iops), IOPS: iops, BW: iops * 4096, LatencyKind: "clat",
		Latency: reports.Latency{Mean: 20000, Min: 9000, P50: 20000, P90: 25000, P99: p99, P999: p99 + 5000, P9999: p99 + 9000, Max: p99 + 20000}}}
	r.AddFailover(&failover.Report{Scenario: "path-down", Pass: true, LongestStall: 100 * time.Millisecond})
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
}

func TestReportCmd(t *testing.T) {
	tmp := t.TempDir()
	base, same, worse := filepath.Join(tmp, "base"), filepath.Join(tmp, "same"), filepath.Join(tmp, "worse")
	writeRun(t, base, 100000, 40000, "passed")
	writeRun(t, same, 97000, 42000, "passed")
	writeRun(t, worse, 80000, 60000, "failed")

	var out, errb bytes.Buffer
	if code := run([]string{"report", "compare", base, filepath.Join(same, "run.json")}, nil, &out, &errb); code != 0 {
		t.Fatalf("within thresholds: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "randread read IOPS") || strings.Contains(out.String(), "REGRESSION") {
		t.Errorf("within thresholds:\n%s", out.String())
	}

	out.Reset()
	errb.Reset()
	code := run([]string{"report", "compare", base, worse}, nil, &out, &errb)
	o := out.String()
	if code != 1 || !strings.Contains(o, "100k") || !strings.Contains(o, "80k") || !strings.Contains(o, "-20.0%") ||
		!strings.Contains(o, "REGRESSION") || !strings.Contains(o, "TCP-IC-001") || !strings.Contains(errb.String(), "regressed") {
		t.Fatalf("regressed: exit %d\n%s%s", code, o, errb.String())
	}

	// Looser thresholds, and conformance regressions allowed: passes.
	out.Reset()
	if code := run([]string{"report", "compare", "--iops-drop", "25%", "--latency-rise", "0.6", "--allow-conformance-regressions", base, worse}, nil, &out, &errb); code != 0 {
		t.Fatalf("loose thresholds: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "REGRESSION (allowed)") || !strings.Contains(out.String(), "IOPS drop 25%, latency rise 60%") {
		t.Errorf("loose thresholds:\n%s", out.String())
	}

	// A run without the baseline's scenario fails the gate unless
	// --allow-missing.
	partial := filepath.Join(tmp, "partial")
	writeRun(t, partial, 100000, 40000, "passed")
	r, err := reports.Load(partial)
	if err != nil {
		t.Fatal(err)
	}
	r.Failover = nil
	if err := r.Write(partial); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"report", "compare", base, partial}, nil, &out, &errb); code != 1 || !strings.Contains(out.String(), "path-down") || !strings.Contains(out.String(), "in base, not in the new run") {
		t.Errorf("missing scenario: exit %d, want 1\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"report", "compare", "--allow-missing", base, partial}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "missing results allowed") {
		t.Errorf("--allow-missing: exit %d, want 0\n%s", code, out.String())
	}

	// html re-renders from run.json.
	for _, f := range []string{"report.html", "summary.md"} {
		if err := os.Remove(filepath.Join(worse, f)); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if code := run([]string{"report", "html", worse}, nil, &out, &errb); code != 0 {
		t.Fatalf("html: exit %d\n%s", code, errb.String())
	}
	page, err := os.ReadFile(filepath.Join(worse, "report.html"))
	if err != nil || !strings.Contains(string(page), "NOT CONFORMANT") || !strings.Contains(string(page), "<svg") {
		t.Fatalf("re-rendered report.html: %v", err)
	}
	if md, err := os.ReadFile(filepath.Join(worse, "summary.md")); err != nil || !strings.Contains(string(md), "TCP-IC-001") {
		t.Fatalf("re-rendered summary.md: %v\n%s", err, md)
	}

	// Bad usage: one line, exit 2.
	for _, args := range [][]string{
		{"report"}, {"report", "nope"}, {"report", "compare", base}, {"report", "compare", base, tmp},
		{"report", "compare", "--iops-drop", "10", base, worse}, {"report", "compare", "--latency-rise", "x%", base, worse},
		{"report", "html"}, {"report", "html", filepath.Join(tmp, "missing")},
	} {
		errb.Reset()
		if code := run(args, nil, &out, &errb); code != 2 || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, want 2 with one line\n%s", args, code, errb.String())
		}
	}
}

func TestParseFraction(t *testing.T) {
	for in, want := range map[string]float64{"10%": 0.1, "0.1": 0.1, "2.5%": 0.025, "0": 0, "1": 1, "150%": 1.5} {
		if got, err := parseFraction(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"10", "-5%", "x", ""} {
		if _, err := parseFraction(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestBadReportDir: a --report-dir that cannot be written is refused with
// one line before any work starts (the target here is never reached).
func TestBadReportDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"bench", "-a", "127.0.0.1", "-s", "9", "-n", "nqn.2014-08.io.x:y", "--runtime", "1", "--report-dir", file},
		{"conform", "-a", "127.0.0.1", "-s", "9", "-n", "nqn.2014-08.io.x:y", "--report-dir", file},
		{"failover", "--scenario", "path-down", "--report-dir", file},
	} {
		code, _, errs := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(errs, "--report-dir "+file) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%s: exit %d, want 2 with one line: %q", args[0], code, errs)
		}
	}
}
