package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// listenFake starts a loopback listener that hands each connection to
// handle; it is closed when the test ends.
func listenFake(t *testing.T, handle func(net.Conn)) (host, port string) {
	t.Helper()
	host, port, _ = net.SplitHostPort(testnet.Serve(t, handle))
	return host, port
}

// TestConformPreflight: a target that is not there gives one line saying
// what is wrong and how to fix it, exit status 3, and no verdict: nothing
// says CONFORMANT or NOT CONFORMANT, and no report is written. These runs
// stop before any check, so they run in this process.
func TestConformPreflight(t *testing.T) {
	h, p := startHostTestTarget(t)
	_, closedPort, _ := net.SplitHostPort(testnet.ClosedPort(t))
	httpHost, httpPort := listenFake(t, func(nc net.Conn) {
		_, _ = nc.Read(make([]byte, 512))
		_, _ = io.WriteString(nc, "HTTP/1.0 400 Bad Request\r\nServer: SimpleHTTP/0.6 Python/3.12\r\n\r\n")
	})
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the one line on stderr
	}{
		{"closed port", []string{"-a", "127.0.0.1", "-s", closedPort, "-n", "nqn.x"},
			[]string{"cannot reach nqn.x at 127.0.0.1:" + closedPort, "TCP connect: connection refused", "nothing listens on"}},
		{"HTTP server", []string{"-a", httpHost, "-s", httpPort, "-n", "nqn.x"},
			[]string{"ICReq/ICResp: the answer is not an NVMe/TCP ICResp: it starts \"HTTP/1.0 400 Bad Request", "is not an NVMe/TCP port"}},
		{"wrong NQN", []string{"-a", h, "-s", p, "-n", "nqn.2014-08.io.nvmftest:typo"},
			[]string{"admin Connect: refused with status", "the discovery log lists: " + target.DefaultSubsystemNQN}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rd")
			var code int
			var out, stderr string
			testbound.Within(t, time.Minute, "conform against "+tc.name, func() {
				code, out, stderr = runCLI(t, "", append(append([]string{"conform", "-t", "tcp"}, tc.args...), "--report-dir", dir)...)
			})
			if code != suites.ExitUnreachable || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nvmftest: ") {
				t.Fatalf("exit %d, stderr %q; want exit %d and one line", code, stderr, suites.ExitUnreachable)
			}
			for _, w := range append(tc.want, "(nothing was checked)") {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, stderr)
				}
			}
			if strings.Contains(out+stderr, "CONFORMANT") || strings.Contains(out, "FAIL") {
				t.Errorf("a verdict for a target that is not there:\n%s", out)
			}
			for _, f := range []string{"run.json", "report.html", "summary.md", "conformance"} {
				if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
					t.Errorf("%s written for a target that is not there (%v)", f, err)
				}
			}
		})
	}
}

// TestConformTargetDies kills the reference target from the first check
// that asks for a target-side action: the --control command touches a
// file, this test closes the target and answers with another. The run
// must end with exit status 3 (not 1: no verdict), name the check after
// which the target went, keep that check's trace, and count the rest as
// not run in every report. The bound is generous: it proves no hang.
func TestConformTargetDies(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	tg := targettest.Start(t, cfg)
	h, p, _ := net.SplitHostPort(tg.Addrs()[0].String())
	dir := t.TempDir()
	kill, dead := filepath.Join(dir, "kill"), filepath.Join(dir, "dead")
	script := filepath.Join(dir, "ctl.sh")
	body := "#!/bin/sh\ntouch " + kill + "\ni=0\nwhile [ ! -e " + dead + " ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := os.Stat(kill); err == nil {
				_ = tg.Close()
				_ = os.WriteFile(dead, nil, 0o644)
				return
			}
		}
	}()
	rd := filepath.Join(dir, "rd")
	var code int
	var out, stderr string
	testbound.Within(t, 3*time.Minute, "conform against a target that dies", func() {
		code, out, stderr = runChild(t, "conform", "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN,
			"--control", script, "--report-dir", rd, "--label-filter", "admin")
	})
	if code != suites.ExitUnreachable || !strings.Contains(stderr, "stopped answering after check ADM-") || strings.Count(stderr, "\n") != 2 {
		// Two lines: the report's path, then the error.
		t.Fatalf("exit %d, stderr %q\n%s", code, stderr, out)
	}
	if strings.Contains(out, "NOT CONFORMANT") || !strings.Contains(out, "NO VERDICT: target unreachable after ADM-") {
		t.Errorf("output:\n%s", out)
	}
	run, err := reports.Load(rd)
	if err != nil {
		t.Fatal(err)
	}
	s := run.Conformance
	if s == nil || s.Unreachable == nil || s.NotRun == 0 {
		t.Fatalf("run.json conformance: %+v", s)
	}
	killer := s.Unreachable.After
	for _, r := range s.Results {
		if r.ID == killer && (len(r.Traces) != 1 || r.Unreachable == "") {
			t.Errorf("the killer %s: traces %q, unreachable %q", r.ID, r.Traces, r.Unreachable)
		}
		if r.ID == killer && len(r.Traces) == 1 {
			if _, err := os.Stat(filepath.Join(rd, r.Traces[0])); err != nil {
				t.Errorf("the killer's trace: %v", err)
			}
		}
	}
	if v := run.Verdicts(); len(v) != 1 || v[0].Pass || !strings.HasPrefix(v[0].Text, "NO VERDICT: target unreachable after "+killer) {
		t.Errorf("verdicts %+v", v)
	}
	for file, want := range map[string]string{
		"summary.md":                               "NO VERDICT: target unreachable after " + killer,
		"report.html":                              "The target stopped answering after " + killer,
		"conformance/junit.xml":                    "not run: target unreachable after " + killer,
		"conformance/results.json":                 `"state": "notrun"`,
		"conformance/traces/" + killer + ".pcapng": "",
	} {
		b, err := os.ReadFile(filepath.Join(rd, file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q (%v)", file, want, err)
		}
	}
}
