package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/syncbuf"
	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// signalChild runs a command line in a child process of the test binary
// (as runChild), sends it sig once ready says its output shows it got
// where the test wants it, and returns its exit status and output. Both
// waits are bounded: a child that never gets ready, or does not stop on
// the signal, fails the test.
func signalChild(t *testing.T, sig os.Signal, ready func(stdout, stderr string) bool, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := childCmd(args...)
	var out, errb syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	testbound.Eventually(t, 2*time.Minute, "the child to get ready for the signal", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the child ended before the signal: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
		default:
		}
		return ready(out.String(), errb.String())
	})
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	var err error
	testbound.Within(t, time.Minute, "the child to stop on the signal", func() { err = <-done })
	return childExit(t, args, err), out.String(), errb.String()
}

// TestConformInterrupted: Ctrl-C during conform stops the run at once;
// the check that was running is "interrupted" (never FAIL), the checks
// after it are "not run", every report says INTERRUPTED after N of M
// checks with no verdict, and the exit status is 130. Before, the running
// check became a mandatory FAIL ("Interrupted by User"), the run NOT
// CONFORMANT with exit status 1, and only results.json knew.
func TestConformInterrupted(t *testing.T) {
	h, p := startHostTestTarget(t)
	rd := filepath.Join(t.TempDir(), "rd")
	code, out, stderr := signalChild(t, os.Interrupt, func(stdout, _ string) bool {
		// After the first check's line: the run is under way.
		return strings.Contains(stdout, "\nPASS ") || strings.HasPrefix(stdout, "PASS ")
	}, "conform", "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "--report-dir", rd)
	if code != 130 {
		t.Fatalf("exit %d, want 130\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if strings.Contains(out+stderr, "CONFORMANT") || strings.Contains(out, "\nFAIL ") || strings.Contains(out+stderr, "Interrupted by User") {
		t.Errorf("a verdict, or a FAIL, for an interrupted run:\n%s\n%s", out, stderr)
	}
	if !strings.Contains(out, "NO VERDICT: INTERRUPTED after ") || !strings.Contains(stderr, "conform INTERRUPTED after ") {
		t.Errorf("the console does not say the run was interrupted:\nstdout:\n%s\nstderr:\n%s", out, stderr)
	}
	run, err := reports.Load(rd)
	if err != nil {
		t.Fatal(err)
	}
	s := run.Conformance
	if s == nil || s.Interrupted == nil {
		t.Fatalf("run.json has no interruption: %+v", s)
	}
	in := s.Interrupted
	if in.Signal != os.Interrupt.String() || in.SignalNumber != 2 || in.Total <= in.Ran || in.Total != len(s.Results) || s.NotRun != in.Total-in.Ran {
		t.Errorf("interruption %+v, %d results, %d not run", in, len(s.Results), s.NotRun)
	}
	if s.Failed != 0 || s.MandatoryFailed != 0 || s.ExitCode(false) != 130 {
		t.Errorf("failed %d (%d mandatory), exit %d: an interrupted check must not fail", s.Failed, s.MandatoryFailed, s.ExitCode(false))
	}
	if s.Passed == 0 {
		t.Errorf("the results gathered before the signal are lost: %+v", in)
	}
	states := map[string]int{}
	for _, r := range s.Results {
		states[r.State]++
		if r.State == suites.StateInterrupted && r.ID != in.During {
			t.Errorf("%s interrupted, but the summary says %q was", r.ID, in.During)
		}
	}
	if states[suites.StateNotRun] == 0 || states[suites.StateInterrupted] > 1 {
		t.Errorf("states %v", states)
	}
	head := in.String()
	if !strings.HasPrefix(head, "INTERRUPTED after ") {
		t.Fatalf("String() = %q", head)
	}
	for _, v := range run.Verdicts() {
		if v.Area == "conformance" && (v.Pass || !strings.Contains(v.Text, head)) {
			t.Errorf("verdict %+v", v)
		}
	}
	for _, file := range []string{"summary.md", "report.html", "conformance/summary.md", "conformance/junit.xml"} {
		b, err := os.ReadFile(filepath.Join(rd, file))
		if err != nil || !strings.Contains(string(b), head) {
			t.Errorf("%s does not say %q (%v)", file, head, err)
		}
		if strings.Contains(string(b), "NOT CONFORMANT") {
			t.Errorf("%s says NOT CONFORMANT", file)
		}
	}
	var rj struct {
		Interrupted *suites.Interrupted `json:"interrupted"`
	}
	if b, err := os.ReadFile(filepath.Join(rd, "conformance", "results.json")); err != nil || json.Unmarshal(b, &rj) != nil || rj.Interrupted == nil || *rj.Interrupted != *in {
		t.Errorf("conformance/results.json: %+v (%v)", rj.Interrupted, err)
	}

	// report compare against a complete run must say why checks are
	// missing. The base is this run with every check it did not run passed.
	base := *run
	bs := *s
	bs.Interrupted, bs.Results = nil, nil
	for _, r := range s.Results {
		if r.State == suites.StateNotRun || r.State == suites.StateInterrupted {
			r.State, r.Message = "passed", ""
		}
		bs.Results = append(bs.Results, r)
	}
	base.Conformance = &bs
	cmp := reports.Compare(&base, run, reports.DefaultThresholds())
	notes := 0
	for _, ch := range cmp.Changes {
		if ch.Area == "conformance" && ch.Regression {
			if !strings.Contains(ch.Note, "the run was INTERRUPTED after ") {
				t.Errorf("compare: %s %s -> %s: %q does not say the run was interrupted", ch.Name, ch.Base, ch.New, ch.Note)
			}
			notes++
		}
	}
	if notes != s.NotRun {
		t.Errorf("compare: %d conformance regressions for %d checks not run", notes, s.NotRun)
	}
}

// TestBenchInterrupted: Ctrl-C during bench ends the load as fio does:
// "terminating on signal", the partial results printed and kept, labelled
// INTERRUPTED after X of Y, no job error and no LOAD FAILED for it, and
// exit status 130. Before, the job showed err=5 "context canceled", the
// report a red LOAD FAILED, and the exit status was 0.
func TestBenchInterrupted(t *testing.T) {
	dir := t.TempDir()
	rd, series := filepath.Join(dir, "rd"), filepath.Join(dir, "series.csv")
	code, out, stderr := signalChild(t, os.Interrupt, func(_, stderr string) bool {
		return strings.Contains(stderr, "IOPS=") // the progress line: the load runs
	}, "bench", "--embedded", "null:64MiB", "--rw", "randread", "--iodepth", "4", "--runtime", "10m", "--time_based",
		"--progress", "always", "--status-interval", "50ms", "--report-dir", rd, "--write_series", series)
	if code != 130 {
		t.Fatalf("exit %d, want 130\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "terminating on signal 2") || !strings.Contains(out, "bench INTERRUPTED after ") || !strings.Contains(out, " of 10m0s (signal: interrupt): partial results") {
		t.Errorf("the console does not say the load was interrupted:\nstdout:\n%s\nstderr:\n%s", out, stderr)
	}
	if strings.Contains(out+stderr, "context canceled") || strings.Contains(out, "err= 5") || !strings.Contains(out, "IOPS=") {
		t.Errorf("the partial results are missing or show the interrupt as an error:\n%s", out)
	}
	run, err := reports.Load(rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Bench) == 0 || !strings.HasPrefix(run.BenchInterrupted, "INTERRUPTED after ") {
		t.Fatalf("run.json: %d bench results, interrupted %q", len(run.Bench), run.BenchInterrupted)
	}
	for _, b := range run.Bench {
		if b.Error != "" || b.IOs == 0 {
			t.Errorf("%s: error %q, %d I/Os", b.Name(), b.Error, b.IOs)
		}
	}
	for _, file := range []string{"summary.md", "report.html"} {
		b, err := os.ReadFile(filepath.Join(rd, file))
		if err != nil || !strings.Contains(string(b), run.BenchInterrupted) || strings.Contains(string(b), "LOAD FAILED") {
			t.Errorf("%s: want %q and no LOAD FAILED (%v):\n%s", file, run.BenchInterrupted, err, b)
		}
	}
	var fio struct {
		Jobs []struct {
			Error int `json:"error"`
		} `json:"jobs"`
	}
	if b, err := os.ReadFile(filepath.Join(rd, "bench", "fio.json")); err != nil || json.Unmarshal(b, &fio) != nil || len(fio.Jobs) == 0 || fio.Jobs[0].Error != 0 {
		t.Errorf("bench/fio.json: %+v (%v)", fio, err)
	}
	if b, err := os.ReadFile(series); err != nil || strings.Count(string(b), "\n") < 2 {
		t.Errorf("--write_series: %q (%v)", b, err)
	}
}

// TestHostCommandInterrupted: a host command waiting on a target that
// says nothing ends on Ctrl-C with exit status 130 (on SIGTERM 143), as
// other tools do, and says it was interrupted. Before, discover exited 1
// with "context canceled".
func TestHostCommandInterrupted(t *testing.T) {
	for _, tc := range []struct {
		sig  os.Signal
		code int
	}{{os.Interrupt, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			var mu sync.Mutex
			accepted := false
			h, p := listenFake(t, func(nc net.Conn) {
				mu.Lock()
				accepted = true
				mu.Unlock()
				_, _ = io.Copy(io.Discard, nc) // never answers the ICReq
			})
			code, out, stderr := signalChild(t, tc.sig, func(string, string) bool {
				mu.Lock()
				defer mu.Unlock()
				return accepted
			}, "discover", "-t", "tcp", "-a", h, "-s", p, "--timeout", "10m")
			if code != tc.code || !strings.Contains(stderr, "interrupted") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, out, stderr)
			}
		})
	}
}

// TestOutputPathsCheckedFirst: an output file that cannot be made is a
// usage error (exit 2) naming its flag before any I/O, not a result lost
// at the end of the run. Before, bench ran its whole runtime and then
// exited 1 (--write_series without naming the flag), and read lost the
// data it had read.
func TestOutputPathsCheckedFirst(t *testing.T) {
	h, p := startHostTestTarget(t)
	bad := filepath.Join(t.TempDir(), "no-such-dir", "x")
	load := []string{"bench", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "--rw", "randread", "--runtime", "10m", "--time_based", "--progress", "never"}
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"--output", append(append([]string{}, load...), "--output", bad)},
		{"--write_series", append(append([]string{}, load...), "--write_series", bad)},
		{"--write_hist_log", append(append([]string{}, load...), "--write_hist_log", bad)},
		{"--data", []string{"read", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "--nsid", "1", "-c", "0", "-z", "512", "--data", bad}},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			var code int
			var out, stderr string
			// The bound turns a 10-minute load into a failure.
			testbound.Within(t, time.Minute, strings.Join(tc.args, " "), func() { code, out, stderr = runCLI(t, "", tc.args...) })
			if code != 2 || !strings.HasPrefix(stderr, "nvmftest: "+tc.flag+" "+bad+": ") || strings.Count(stderr, "\n") != 1 || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line naming %s", code, out, stderr, tc.flag)
			}
		})
	}
}
