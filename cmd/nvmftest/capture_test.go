package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/target"
)

func traces(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".pcapng") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestCLICapture(t *testing.T) {
	h, p := startHostTestTarget(t)
	nqn := target.DefaultSubsystemNQN
	dir := filepath.Join(t.TempDir(), "traces")
	code, _, errs := runCLI(t, "", "connect", "-a", h, "-s", p, "-n", nqn, "-i", "2", "--capture", dir)
	if code != 0 {
		t.Fatalf("connect: exit %d %q", code, errs)
	}
	if n := traces(t, dir); len(n) != 3 { // admin and 2 I/O queues
		t.Errorf("traces %v, want 3", n)
	}
	code, _, errs = runCLI(t, "", "discover", "-a", h, "-s", p, "--capture", dir)
	if code != 0 {
		t.Fatalf("discover: exit %d %q", code, errs)
	}
	if n := traces(t, dir); len(n) != 4 {
		t.Errorf("traces %v, want 4", n)
	}
	code, _, errs = runCLI(t, "", "id-ctrl", "-a", h, "-s", p, "-n", nqn, "--capture", "/dev/null/x")
	if code != 2 || !strings.Contains(errs, "invalid --capture") || strings.Count(errs, "\n") != 1 {
		t.Errorf("bad --capture: exit %d %q", code, errs)
	}
}

func TestTargetCmdCapture(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "traces")
	f := &targetFlags{listen: []string{"127.0.0.1:0"}, capture: dir}
	ctx, cancel := context.WithCancel(context.Background())
	f.readyCallback = func(tg *target.Target) {
		if tg.Config().Capture != dir {
			t.Errorf("capture %q", tg.Config().Capture)
		}
		c, err := net.Dial("tcp", tg.Addrs()[0].String())
		if err != nil {
			t.Error(err)
			cancel()
			return
		}
		// The trace is created when the target accepts, which may lag
		// the dial: stop only once it exists.
		for deadline := time.Now().Add(10 * time.Second); len(traces(t, dir)) == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		c.Close()
		cancel()
	}
	var out strings.Builder
	if err := runTarget(ctx, &out, &out, f); err != nil {
		t.Fatal(err)
	}
	if n := traces(t, dir); len(n) != 1 {
		t.Errorf("traces %v, want 1", n)
	}
}

// TestCaptureIntoRunDir: bench and failover with --capture and
// --report-dir link their traces from the report, relative to the run
// directory (inside it or not); a second bench into the same directory
// keeps the first's interval log.
func TestCaptureIntoRunDir(t *testing.T) {
	h, p := startHostTestTarget(t)
	tmp := t.TempDir()
	rdir := filepath.Join(tmp, "run")
	for i := range 2 {
		code, _, errs := runCLI(t, "", "bench", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "--name", "rr",
			"--rw", "randread", "--iodepth", "2", "--runtime", "200ms", "--time_based", "--progress", "never",
			"--capture", filepath.Join(rdir, "traces"), "--report-dir", rdir)
		if code != 0 {
			t.Fatalf("bench %d: exit %d %s", i, code, errs)
		}
	}
	code, _, errs := runCLI(t, "", "failover", "--scenario", "path-down", "--before", "200ms", "--fault", "500ms", "--after", "800ms",
		"--reconnect-delay", "50ms", "--capture", filepath.Join(tmp, "fo"), "--report-dir", rdir)
	if code != 0 {
		t.Fatalf("failover: exit %d %s", code, errs)
	}
	r, err := reports.Load(rdir)
	if err != nil {
		t.Fatal(err)
	}
	// Three steps; the failover step, opened before its scenario ran, lasts
	// at least as long as the scenario's timeline.
	if len(r.Steps) != 3 || len(r.Failover) != 1 || len(r.Failover[0].Events) == 0 {
		t.Fatalf("%d steps, %d scenarios", len(r.Steps), len(r.Failover))
	}
	if ev := r.Failover[0].Events; r.Steps[2].Elapsed < ev[len(ev)-1].At || r.Elapsed < r.Steps[2].Elapsed {
		t.Errorf("failover step took %v, its timeline %v; the run %v", r.Steps[2].Elapsed, ev[len(ev)-1].At, r.Elapsed)
	}
	var bench, fo int
	for _, tr := range r.Traces {
		if _, err := os.Stat(filepath.Join(rdir, filepath.FromSlash(tr))); err != nil {
			t.Errorf("listed trace %s: %v", tr, err)
		}
		switch {
		case strings.HasPrefix(tr, "traces/") && strings.HasSuffix(tr, ".pcapng"):
			bench++
		case strings.HasPrefix(tr, "../fo/path-down/") && strings.HasSuffix(tr, ".pcapng"):
			fo++
		default:
			t.Errorf("trace %q is neither bench's nor failover's", tr)
		}
	}
	// Each bench: the admin queue and one I/O queue; failover: two paths'
	// queues at least, and the reconnections.
	if bench != 4 || fo < 4 || bench+fo != len(traces(t, filepath.Join(rdir, "traces")))+len(traces(t, filepath.Join(tmp, "fo", "path-down"))) {
		t.Errorf("%d bench and %d failover traces listed: %v", bench, fo, r.Traces)
	}
	page, err := os.ReadFile(filepath.Join(rdir, "report.html"))
	if err != nil || !strings.Contains(string(page), `href="`+r.Traces[0]+`"`) || !strings.Contains(string(page), `href="`+r.Traces[len(r.Traces)-1]+`"`) {
		t.Errorf("report.html does not link the traces (%v)", err)
	}
	for _, f := range []string{"intervals.hlog", "intervals-2.hlog", "rr.hlog", "rr-2.hlog", "fio.json", "fio-2.json"} {
		if _, err := os.Stat(filepath.Join(rdir, "bench", f)); err != nil {
			t.Errorf("bench/%s: %v", f, err)
		}
	}
}
