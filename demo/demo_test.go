package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/fixtures/wireshark"
	"github.com/nvmftest/nvmftest/reports"
)

// TestDemoRunsEndToEnd runs what `make demo` runs, shortened, and checks
// the run directory it leaves.
func TestDemoRunsEndToEnd(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "run")
	got, err := Run(ctx, &out, Options{ReportDir: dir, LoadDuration: time.Second, Depth: 8, FailoverScale: 0.5})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if got != dir {
		t.Errorf("run directory %q, want %q", got, dir)
	}
	text := out.String()
	for _, want := range []string{"[1/9] reference target", "[2/9] discovery log", "[3/9] connected",
		"header digest true, data digest true", "[4/9] identify", "[5/9] write and verify", "read back identical",
		"packet trace of steps 2-5", "conformance transport  ", "[6/9] conformance: ", " 0 failed (0 mandatory)",
		"IOPS=", "[7/9] benchmark", "[8/9] failover path-down passed", "[9/9] report: ", "demo passed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, f := range []string{"report.html", "summary.md", "run.json", "conformance/junit.xml", "conformance/conformance.txt", "bench/fio.json", "traces/smoke.pcapng"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("run directory: %s: %v", f, err)
		}
	}
	checkSmokeTrace(t, filepath.Join(dir, "traces", "smoke.pcapng"), text)
	run, err := reports.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if run.Conformance == nil || len(run.Conformance.Results) < 200 || run.Conformance.Failed != 0 {
		t.Errorf("run.json conformance: %+v", run.Conformance)
	}
	if len(run.Bench) == 0 || len(run.Failover) != 1 || !run.Failover[0].Pass {
		t.Errorf("run.json: %d bench entries, failover %+v", len(run.Bench), run.Failover)
	}
}

// checkSmokeTrace has tshark decode the trace the demo points people to,
// on the port the demo's output names.
func checkSmokeTrace(t *testing.T, path, out string) {
	t.Helper()
	if !wireshark.Usable(t) {
		return
	}
	m := regexp.MustCompile(`tcp\.port==(\d+),nvme-tcp`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("the demo does not say how to decode its trace")
	}
	port, _ := strconv.Atoi(m[1])
	res, err := wireshark.Check(path, port)
	if err != nil {
		t.Fatal(err)
	}
	// Discovery, then admin and one I/O queue with digests.
	if !res.Clean() || res.PDUs < 50 || res.GoodDigests == 0 {
		t.Errorf("tshark on %s: %v", path, res)
	}
}
