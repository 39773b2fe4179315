package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != 2 || !strings.HasPrefix(stderr, "nvmftest: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line", args, code, stderr)
		}
	}
}

func TestConformList(t *testing.T) {
	code, out, _ := runCLI(t, "", "conform", "--list")
	if code != 0 || !regexp.MustCompile(`TCP-IC-001 +mandatory +NVMe/TCP`).MatchString(out) || !strings.Contains(out, "FAB-CONN-001") || !strings.Contains(out, " requirements\n") {
		t.Errorf("conform --list: exit %d\n%s", code, out)
	}
}

// TestConformRun runs the fabrics area from the command line against the
// reference target (the whole suite runs under `go test ./suites/`).
func TestConformRun(t *testing.T) {
	h, p := startHostTestTarget(t)
	dir := t.TempDir()
	code, out, stderr := runCLI(t, "", "conform", "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN,
		"--allow-writes", "1", "--report-dir", dir, "--label-filter", "fabrics && !FAB-IOQ-002")
	if code != 0 || stderr != "" {
		t.Fatalf("conform: exit %d, stderr %q\n%s", code, stderr, out)
	}
	for _, want := range []string{"PASS    FAB-CONN-001", "SKIP    FAB-CONN-009", "CONFORMANT", "fabrics ", "reports: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TCP-IC-001") {
		t.Error("the label filter did not exclude the transport area")
	}
	var findings []any
	b, err := os.ReadFile(filepath.Join(dir, "findings.json"))
	if err != nil || json.Unmarshal(b, &findings) != nil {
		t.Errorf("findings.json: %v %q", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "junit.xml")); err != nil || !strings.Contains(string(b), "FAB-CONN-001") {
		t.Errorf("junit.xml: %v", err)
	}
}
