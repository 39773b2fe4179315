package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nvmftest/nvmftest/hostconform"
	"github.com/nvmftest/nvmftest/reports"
)

// TestConformHostSelf: conform-host grading our own initiator passes
// every check, and writes the run directory conform writes (report.html,
// run.json, conformance/ with results.json valid against its schema and a
// JUnit file whose counts agree), and --junit too.
func TestConformHostSelf(t *testing.T) {
	dir := t.TempDir()
	rd, junit := filepath.Join(dir, "rd"), filepath.Join(dir, "host.xml")
	// The keep alive checks wait on the clock, seconds each: hostconform's
	// TestSelfPassesAll runs them; here --skip is shown to work too.
	slow := []string{"HOST-KA-001", "HOST-KA-002", "HOST-KA-003"}
	code, out, stderr := runCLI(t, "", "conform-host", "--self", "--listen", "127.0.0.1:0", "--report-dir", rd, "--junit", junit, "--traces", "all", "--skip", strings.Join(slow, ","))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	n := len(hostconform.Checks()) - len(slow)
	if !strings.Contains(out, "CONFORMANT: every check tried passed") || strings.Count(out, "\nPASS ")+1 < n {
		t.Errorf("output:\n%s", out)
	}
	for _, f := range []string{"report.html", "run.json", "conformance/results.json", "conformance/junit.xml", "conformance/summary.md", "conformance/traces/HOST-FATAL-004.pcapng"} {
		if _, err := os.Stat(filepath.Join(rd, f)); err != nil {
			t.Errorf("run directory: %v", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(rd, "conformance", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	sch, err := jsonschema.UnmarshalJSON(bytes.NewReader(reports.ResultsSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("results.schema.json", sch); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("results.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("results.json does not match results.schema.json: %v", err)
	}
	var res struct {
		Verdict string `json:"verdict"`
		Results []struct {
			ID, Binds, Verdict string
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &res); err != nil || res.Verdict != "conformant" || len(res.Results) != n || res.Results[0].Binds != "host" {
		t.Errorf("results.json: %v %+v", err, res)
	}
	for _, path := range []string{junit, filepath.Join(rd, "conformance", "junit.xml")} {
		x, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			XMLName xml.Name `xml:"testsuites"`
			Tests   int      `xml:"tests,attr"`
			Suites  []struct {
				Tests int `xml:"tests,attr"`
				Cases []struct {
					Name string `xml:"name,attr"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(x, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cases := 0
		for _, s := range doc.Suites {
			if s.Tests != len(s.Cases) {
				t.Errorf("%s: a testsuite says %d tests and has %d", path, s.Tests, len(s.Cases))
			}
			cases += len(s.Cases)
		}
		if doc.Tests != n || cases != n {
			t.Errorf("%s: %d tests, %d testcases, want %d", path, doc.Tests, cases, n)
		}
	}
}

// TestConformHostDeviation: our initiator with a deviation fails the
// check that owns the rule (exit 1, NOT CONFORMANT); with a profile
// that documents exactly that observation it is a finding (exit 0).
func TestConformHostDeviation(t *testing.T) {
	args := []string{"conform-host", "--self", "--listen", "127.0.0.1:0", "--deviation", "termreq-ignored", "--only", "HOST-FATAL-001", "--close-wait", "1s"}
	code, out, stderr := runCLI(t, "", args...)
	if code != 1 || !strings.Contains(out, "NOT CONFORMANT") || !strings.Contains(stderr, "1 mandatory host checks failed") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	prof := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(prof, []byte("name: our-host-with-a-deviation\ndeviations:\n  HOST-FATAL-001:\n    observed: still open after 1s\n    note: the termreq-ignored deviation keeps the connection (initiator/deviations.go)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "", append(args, "--profile", prof)...)
	if code != 0 || !strings.Contains(out, "FINDING HOST-FATAL-001") {
		t.Errorf("with the profile: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

// TestConformHostBadFlags: each usage error is one line saying what is
// wrong, and exit status 2, before anything listens.
func TestConformHostBadFlags(t *testing.T) {
	badProf := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badProf, []byte("name: x\ndeviations:\n  TCP-IC-001:\n    observed: a\n    note: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing the address to listen on"},
		{[]string{"--listen", "nowhere"}, "invalid --listen"},
		{[]string{"--listen", "127.0.0.1:0", "-a", "127.0.0.1"}, "give the test controller's address once"},
		{[]string{"-a", "127.0.0.1", "-s", "http"}, "invalid -s/--trsvcid"},
		{[]string{"--listen", "127.0.0.1:0", "--self", "--host-control", "true"}, "give one"},
		{[]string{"--listen", "127.0.0.1:0", "--deviation", "kato-zero"}, "give --self too"},
		{[]string{"--listen", "127.0.0.1:0", "--self", "--deviation", "nope"}, "unknown --deviation"},
		{[]string{"--listen", "127.0.0.1:0", "--host-control", "/nonexistent/ctl"}, "invalid --host-control"},
		{[]string{"--listen", "127.0.0.1:0", "--self", "--only", "HOST-NOPE-001"}, "no host check or area"},
		{[]string{"--listen", "127.0.0.1:0", "--self", "--profile", badProf}, "no check has this ID"},
		{[]string{"--listen", "127.0.0.1:0", "--self", "--traces", "some"}, "--traces"},
		{[]string{"--listen", "127.0.0.1:0", "-n", "foo"}, "invalid -n/--nqn"},
		{[]string{"--listen", "127.0.0.1:0", "--bogus"}, "unknown flag"},
	} {
		code, out, stderr := runCLI(t, "", append([]string{"conform-host"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 || out != "" {
			t.Errorf("%v: exit %d, want 2 and one line saying %q\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.want, out, stderr)
		}
	}
}

// TestConformHostList lists every host check and the deviations, and
// --matrix the host statements with the checks covering them.
func TestConformHostList(t *testing.T) {
	code, out, _ := runCLI(t, "", "conform-host", "--list")
	if code != 0 || !strings.Contains(out, "HOST-IC-001") || !strings.Contains(out, "termreq-ignored") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "conform-host", "--matrix")
	if code != 0 || !strings.Contains(out, "T-3.5.1-06       host   shall       HOST-FATAL-001") || !strings.Contains(out, "statements bind the host") {
		t.Errorf("--matrix: exit %d:\n%s", code, out)
	}
}

// TestConformHostInterrupted: Ctrl-C while an attended run waits for the
// person at the host stops it at once: exit 130, the waiting check
// "interrupted", the rest not run, no verdict.
func TestConformHostInterrupted(t *testing.T) {
	rd := filepath.Join(t.TempDir(), "rd")
	code, out, stderr := signalChild(t, os.Interrupt, func(stdout, _ string) bool {
		return strings.Contains(stdout, ">>> on the host under test, run:")
	}, "conform-host", "--listen", "127.0.0.1:0", "--report-dir", rd)
	if code != 130 {
		t.Fatalf("exit %d, want 130\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "nvme connect -t tcp -a 127.0.0.1") || !strings.Contains(out, "NO VERDICT: INTERRUPTED after 0 of ") ||
		!strings.Contains(stderr, "conform-host INTERRUPTED") || strings.Contains(out, "\nFAIL ") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, stderr)
	}
	b, err := os.ReadFile(filepath.Join(rd, "conformance", "results.json"))
	if err != nil || !strings.Contains(string(b), `"verdict": "no_verdict"`) {
		t.Errorf("results.json: %v\n%s", err, b)
	}
}
