package suites

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// The sensitivity test runs the whole suite once per quirk of the
// reference target. Ginkgo's RunSpecs runs once per process, so each run
// is a child: this test binary again, with only TestSensitivityChild
// selected and the quirk named in the environment. The child writes its
// verdicts to a file the parent names.
const (
	sensitivityQuirkEnv = "NVMFTEST_SENSITIVITY_QUIRK"
	sensitivityOutEnv   = "NVMFTEST_SENSITIVITY_OUT"
	// sensitivitySkipEnv lists (comma-separated) the checks a child
	// leaves out: see confinedChecks.
	sensitivitySkipEnv = "NVMFTEST_SENSITIVITY_SKIP"
)

// noQuirk names the baseline run: the reference target as it is.
const noQuirk = "none"

// quirkRun is what a child reports: every check's state, and the message
// of those that failed.
type quirkRun struct {
	Quirk  string            `json:"quirk"`
	States map[string]string `json:"states"`
	Failed map[string]string `json:"failed"` // ID -> message
	// Slow lists the checks that took more than slowCheck, with their
	// durations: where a quirk's run spends its time (and, in the
	// baseline run, which checks confinedChecks keeps to their owners).
	Slow    map[string]time.Duration `json:"slow"`
	Elapsed time.Duration            `json:"elapsed_ns"`
}

// quirkTarget starts the reference target as referenceTarget
// (suites_test.go) does, with the quirks named, and returns the suite's
// configuration for it. Keep the two in step: the sensitivity test holds
// the quirks against the suite as TestConformance runs it.
func quirkTarget(t *testing.T, quirks ...string) Config {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1, Serve: target.ServeAll}}
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{
		{NSID: 1, Backend: target.BackendMem, Size: "64MiB", BlockSize: 512},
		{NSID: 2, Backend: target.BackendNull, Size: "1GiB", BlockSize: 4096},
	}
	cfg.Subsystems = append(cfg.Subsystems, target.SubsystemConfig{
		NQN: restrictedNQN, Hosts: []string{otherHost},
		Namespaces: []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "1GiB"}},
	})
	key := addAuthSubsystem(&cfg)
	cfg.Quirks = quirks
	tg := targettest.Start(t, cfg)
	return Config{
		Address:          tg.Addrs()[0].String(),
		SubNQN:           target.DefaultSubsystemNQN,
		WritableNSID:     1,
		Control:          ReferenceControl{T: tg},
		RestrictedSubNQN: restrictedNQN,
		AuthSubNQN:       authNQN,
		AuthHostNQN:      authHost,
		DHCHAPSecret:     key,
	}
}

// TestSensitivityChild is the child side of TestSensitivity: it does
// nothing unless sensitivityQuirkEnv names a quirk.
func TestSensitivityChild(t *testing.T) {
	quirk, out := os.Getenv(sensitivityQuirkEnv), os.Getenv(sensitivityOutEnv)
	if quirk == "" || out == "" {
		t.Skip("run by TestSensitivity in a child process")
	}
	start := time.Now()
	var quirks []string
	if quirk != noQuirk {
		quirks = []string{quirk}
	}
	cfg := quirkTarget(t, quirks...)
	opts := RunOptions{Quiet: true, Traces: TracesNone}
	if skip := os.Getenv(sensitivitySkipEnv); skip != "" {
		opts.LabelFilter = "!" + strings.ReplaceAll(skip, ",", " && !")
	}
	sum, err := Run(t, cfg, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	run := quirkRun{Quirk: quirk, States: map[string]string{}, Failed: map[string]string{},
		Slow: map[string]time.Duration{}, Elapsed: time.Since(start)}
	for _, r := range sum.Results {
		run.States[r.ID] = r.State
		if r.Duration > slowCheck {
			run.Slow[r.ID] = r.Duration.Round(time.Millisecond)
		}
		if r.Failed() {
			run.Failed[r.ID] = firstLine(r.Message)
		}
	}
	b, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// slowCheck is the duration past which a child reports a check as slow.
// It is low because the baseline's slow checks are the ones
// confinedChecks keeps out of the other quirks' runs: a handful of
// checks that wait for a target's timers (keep alive, CQT windows,
// closes) take nine tenths of a suite run.
const slowCheck = 200 * time.Millisecond

// confinedChecks returns the checks a quirk's run leaves out: those slow
// in the baseline run that the quirk does not expect to fail. A slow
// check still runs in the baseline and under every quirk that names it,
// which is what proves it can fail; what is given up is noticing that
// an unrelated quirk also fails it (a check bug). NVMFTEST_SENSITIVITY_FULL=1
// runs every check under every quirk, as before.
func confinedChecks(base quirkRun, exp quirkExpectation) []string {
	if os.Getenv("NVMFTEST_SENSITIVITY_FULL") != "" {
		return nil
	}
	var skip []string
	for id := range base.Slow {
		if !slices.Contains(exp.fail, id) && !slices.Contains(exp.checkBugs, id) {
			skip = append(skip, id)
		}
	}
	sort.Strings(skip)
	return skip
}

// firstLine keeps a failure message to one line for the diff.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// runQuirkChild runs the suite against the reference target with quirk
// in a child process and returns what it reported.
func runQuirkChild(t *testing.T, quirk string, skip ...string) (quirkRun, error) {
	out := filepath.Join(t.TempDir(), "run-"+quirk+".json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSensitivityChild$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), sensitivityQuirkEnv+"="+quirk, sensitivityOutEnv+"="+out,
		sensitivitySkipEnv+"="+strings.Join(skip, ","))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	err := cmd.Run()
	var run quirkRun
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		// A child that failed before writing its verdicts (the suite
		// itself broke): its own output says why.
		return run, fmt.Errorf("child for quirk %s: %v, no verdicts (%v); its output:\n%s", quirk, err, rerr, tail(log.Bytes(), 40))
	}
	if err := json.Unmarshal(b, &run); err != nil {
		return run, fmt.Errorf("child for quirk %s: verdicts: %v", quirk, err)
	}
	// The child's `go test` fails when checks fail: that is expected
	// here, the verdicts are what counts.
	return run, nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// quirkDiff compares what failed against what the table expects: checks
// that failed unexpectedly (with their messages) and checks expected to
// fail that did not (with their state). Both come back sorted.
func quirkDiff(run quirkRun, want []string) (unexpected, missed []string) {
	for id, msg := range run.Failed {
		if !slices.Contains(want, id) {
			unexpected = append(unexpected, fmt.Sprintf("%s: %s", id, msg))
		}
	}
	for _, id := range want {
		if _, failed := run.Failed[id]; !failed {
			st := run.States[id]
			if st == "" {
				st = "not run (no such check?)"
			}
			missed = append(missed, fmt.Sprintf("%s: %s", id, st))
		}
	}
	sort.Strings(unexpected)
	sort.Strings(missed)
	return unexpected, missed
}

// ids splits a whitespace-separated list of check IDs, for the table.
func ids(s string) []string { return strings.Fields(s) }

// writeQuirkFailures prints, for calibrating quirkExpect, the IDs each
// quirk failed as table text.
func writeQuirkFailures(w io.Writer, runs []quirkRun) {
	for _, r := range runs {
		var l []string
		for id := range r.Failed {
			l = append(l, id)
		}
		sort.Strings(l)
		fmt.Fprintf(w, "%q: %s (%v", r.Quirk, strings.Join(l, " "), r.Elapsed.Round(time.Second))
		if len(r.Slow) > 0 {
			fmt.Fprintf(w, "; slow: %v", r.Slow)
		}
		fmt.Fprintln(w, ")")
	}
}
