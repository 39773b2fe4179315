package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/target"
)

func TestConformUsage(t *testing.T) {
	for _, args := range [][]string{
		{"conform", "-n", "nqn.x"},                          // no address
		{"conform", "-a", "127.0.0.1"},                      // no NQN
		{"conform", "-t", "rdma", "-a", "h", "-n", "nqn.x"}, // transport
		{"conform", "-a", "h", "-s", "0", "-n", "nqn.x"},    // port
		{"conform", "-a", "h", "-n", "nqn.x", "--profile", "/nonexistent.yaml"},
		{"conform", "-a", "h", "-n", "nqn.x", "--label-filter", "fabrics &&"},
		{"conform", "-a", "h", "-n", "nqn.x", "--bogus"},
		{"conform", "extra"},
		{"conform", "-a", "h", "-n", "nqn.x", "--traces", "some"},
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != 2 || !strings.HasPrefix(stderr, "nvmftest: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line", args, code, stderr)
		}
	}
}

func TestConformList(t *testing.T) {
	code, out, _ := runCLI(t, "", "conform", "--list")
	if code != 0 || !regexp.MustCompile(`TCP-IC-001 +mandatory +\S+ +\S+ +NVMe/TCP`).MatchString(out) || !strings.Contains(out, "FAB-CONN-001") || !strings.Contains(out, " requirements\n") {
		t.Errorf("conform --list: exit %d\n%s", code, out)
	}
}

// TestConformRun runs the fabrics area from the command line against the
// reference target (the whole suite runs under `go test ./suites/`).
func TestConformRun(t *testing.T) {
	h, p := startHostTestTarget(t)
	dir := t.TempDir()
	code, out, stderr := runCLI(t, "", "conform", "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN,
		"--allow-writes", "1", "--report-dir", dir, "--label-filter", "fabrics && !FAB-IOQ-002 && !fabrics-auth && !FAB-CONN-039")
	if code != 0 || !strings.HasPrefix(stderr, "report: "+filepath.Join(dir, "report.html")) {
		t.Fatalf("conform: exit %d, stderr %q\n%s", code, stderr, out)
	}
	// FAB-CONN-009 needs --restricted-nqn: skipped, no failure (exit 0),
	// (the FAB-AUTH checks and FAB-CONN-039, which need --auth-nqn, are
	// left out above),
	// but the verdict says it was not run and what would run it.
	for _, want := range []string{"PASS    FAB-CONN-001", "SKIP    FAB-CONN-009", "\nCONFORMANT (1 mandatory check not run: give --restricted-nqn NQN (1)): every check tried passed",
		"not run for lack of --restricted-nqn NQN: FAB-CONN-009", "fabrics ", "conformance reports: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TCP-IC-001") {
		t.Error("the label filter did not exclude the transport area")
	}
	var findings []any
	b, err := os.ReadFile(filepath.Join(dir, "conformance", "findings.json"))
	if err != nil || json.Unmarshal(b, &findings) != nil {
		t.Errorf("findings.json: %v %q", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "conformance", "junit.xml")); err != nil || !strings.Contains(string(b), "FAB-CONN-001") {
		t.Errorf("junit.xml: %v", err)
	}
	for _, file := range []string{"summary.md", "report.html", "conformance/summary.md"} {
		if b, err := os.ReadFile(filepath.Join(dir, file)); err != nil || !strings.Contains(string(b), "CONFORMANT (1 mandatory check not run: give --restricted-nqn NQN (1))") {
			t.Errorf("%s does not qualify the verdict: %v", file, err)
		}
	}
}

// TestConformKeepsFailedTrace makes a check fail for real: the control
// command `true` claims every action done and does nothing, so ADM-AER-002
// never sees the Namespace Attribute Changed event it waits for. The
// failed check's connections must be kept as a pcapng next to its JUnit
// entry, and the passing ones not.
func TestConformKeepsFailedTrace(t *testing.T) {
	h, p := startHostTestTarget(t)
	dir := t.TempDir()
	code, out, stderr := runChild(t, "conform", "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN,
		"--control", "true", "--timeout", "2s", "--report-dir", dir, "--label-filter", "ADM-AER-002 || ADM-KA-001")
	if code != 0 || !strings.Contains(out, "FAIL    ADM-AER-002") || !strings.Contains(out, "PASS    ADM-KA-001") {
		t.Fatalf("conform: exit %d (an optional failure is exit 0), stderr %q\n%s", code, stderr, out)
	}
	trace := filepath.Join(dir, "conformance", "traces", "ADM-AER-002.pcapng")
	if st, err := os.Stat(trace); err != nil || st.Size() < 1000 {
		t.Fatalf("the failed check's trace: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "conformance", "traces", "ADM-KA-001.pcapng")); !os.IsNotExist(err) {
		t.Errorf("a passing check's trace was kept (%v)", err)
	}
	junit, err := os.ReadFile(filepath.Join(dir, "conformance", "junit.xml"))
	if err != nil || !strings.Contains(string(junit), `name="trace" value="traces/ADM-AER-002.pcapng"`) ||
		!strings.Contains(string(junit), "[[ATTACHMENT|"+trace+"]]") {
		t.Errorf("junit.xml does not name the trace (%v):\n%s", err, junit)
	}
	run, err := reports.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range run.Conformance.Results {
		if r.ID == "ADM-AER-002" && (len(r.Traces) != 1 || r.Traces[0] != "conformance/traces/ADM-AER-002.pcapng") {
			t.Errorf("run.json: ADM-AER-002 traces %q", r.Traces)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "report.html")); err != nil || st.Size() == 0 {
		t.Errorf("report.html: %v", err)
	}
}

// TestConformCapture: --capture keeps every check's trace, without a
// report directory too, each connection labelled with the check's ID.
func TestConformCapture(t *testing.T) {
	h, p := startHostTestTarget(t)
	dir := filepath.Join(t.TempDir(), "traces")
	code, out, stderr := runChild(t, "conform", "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN,
		"--capture", dir, "--label-filter", "ADM-KA-001 || FAB-CONN-001")
	if code != 0 {
		t.Fatalf("conform: exit %d, stderr %q\n%s", code, stderr, out)
	}
	for _, id := range []string{"ADM-KA-001", "FAB-CONN-001"} {
		s, err := capture.Summarize(filepath.Join(dir, id+".pcapng"))
		if err != nil || s.Frames < 8 || len(s.Comments) == 0 || !strings.HasPrefix(s.Comments[0], id+": nvmftest host: ") {
			t.Errorf("%s: %d frames, comments %q, %v", id, s.Frames, s.Comments, err)
		}
	}
}
