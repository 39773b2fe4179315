package fuzz

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// startTarget serves the reference target on loopback with the quirks
// given, and returns it with the fuzzing identity for it.
func startTarget(t *testing.T, quirks ...string) (*target.Target, Identity) {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{{NSID: 1, Backend: target.BackendMem, Size: "4MiB", BlockSize: 512}}
	cfg.Quirks = quirks
	tg := targettest.Start(t, cfg)
	return tg, Identity{SubNQN: cfg.Subsystems[0].NQN, HostNQN: "nqn.2014-08.org.nvmexpress:uuid:8d9f4a2c-5f1e-4b7a-9c3d-2e6f7a8b9c0d"}
}

// traceSeeds are the Linux captures under fixtures/traces: genuine
// traffic, none of it malformed.
func traceSeeds(t *testing.T, id Identity) []*Case {
	t.Helper()
	var out []*Case
	for _, name := range []string{"linux-6.12-host-to-nvmet-plain.pcap", "linux-6.12-host-to-nvmet-digests.pcap"} {
		cs, err := LoadSeeds(filepath.Join("..", "fixtures", "traces", name), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cs...)
	}
	return out
}

// TestFuzzReferenceClean: a bounded run against the reference target
// finds nothing, and the cases get every kind of answer a robust target
// gives (responses and C2HTermReqs at least).
func TestFuzzReferenceClean(t *testing.T) {
	tg, id := startTarget(t)
	n := 120
	if testing.Short() {
		n = 40
	}
	var progress strings.Builder
	f, err := New(Config{Addr: tg.Addrs()[0].String(), Identity: id, Seed: 1, Cases: n, Seeds: traceSeeds(t, id),
		ResponseTimeout: 50 * time.Millisecond, LiveTimeout: 10 * time.Second, RecoverTimeout: time.Second, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := f.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(f.ProgressLine())
	for _, fd := range sum.Findings {
		t.Errorf("finding against the reference target: %s: %s\n%s", fd.Signature, fd.Detail, fd.HexDump)
	}
	if sum.Cases != n {
		t.Errorf("ran %d cases, want %d", sum.Cases, n)
	}
	for _, r := range []Reaction{ReactResponse, ReactTermReq} {
		if sum.Reactions[r] == 0 {
			t.Errorf("no case got reaction %s: %v", r, sum.Reactions)
		}
	}
}

// TestFuzzFindsDyingTarget is the sensitivity test: the reference target
// with the connect-pdo-in-header-dies quirk (it stops listening when a
// Connect's PDO points inside its header, as SPDK v26.05 crashes) must be
// found from seeds that do not contain such a PDU, within a bounded
// number of cases, minimized, and confirmed by replaying the reproducer.
func TestFuzzFindsDyingTarget(t *testing.T) {
	tg, id := startTarget(t, "connect-pdo-in-header-dies")
	addr := tg.Addrs()[0].String()
	restart := func(context.Context) error { return tg.PortUp(1) }
	seeds := traceSeeds(t, id)
	for _, s := range seeds {
		for _, st := range s.Steps {
			if isAdminConnect(st.Bytes) && int(st.Bytes[3]) < 72 {
				t.Fatal("a seed already holds the crash")
			}
		}
	}
	dir := t.TempDir()
	var progress strings.Builder
	f, err := New(Config{Addr: addr, Identity: id, Seed: 1, Cases: 1500, Seeds: seeds,
		ResponseTimeout: 50 * time.Millisecond, LiveTimeout: 5 * time.Second, RecoverTimeout: 5 * time.Second,
		Restart: restart, ConfirmDelay: 100 * time.Millisecond, MaxFindings: 1, MinimizeBudget: 60, FindingsDir: dir, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := f.Run(context.Background())
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Findings) == 0 {
		t.Fatalf("no finding in %d cases", sum.Cases)
	}
	fd := sum.Findings[0]
	t.Logf("found after %d cases (%v): %s; minimized from %d steps/%d bytes to %d steps/%d bytes in %d runs",
		fd.AfterCases, fd.After, fd.Signature, fd.Steps, fd.Bytes, fd.MinSteps, fd.MinBytes, fd.MinimizeRuns)
	if !strings.Contains(fd.Signature, "PDO") && !strings.Contains(fd.Signature, "havoc") && !strings.Contains(fd.Signature, "resize") {
		t.Errorf("signature %q does not name what broke it", fd.Signature)
	}
	if !fd.Reproduced || fd.Flaky {
		t.Fatalf("minimal reproducer not confirmed (reproduced %v, flaky %v)", fd.Reproduced, fd.Flaky)
	}
	if !slices.Contains(fd.Anomalies, "CapsuleCmd(Connect).PDO inside the header") {
		t.Errorf("anomalies %q do not name the Connect's PDO", fd.Anomalies)
	}
	min := fd.Minimal()
	if len(min.Steps) != 2 || min.Steps[0].Type() != 0 || min.Steps[1].Type() != 4 {
		t.Errorf("minimal case is not ICReq + CapsuleCmd:\n%s", fd.HexDump)
	}
	// The minimal Connect keeps its header up to FCTYPE and a PDO below
	// 72; the bytes after what the target needs to decide are gone.
	if c := min.Steps[1].Bytes; len(c) < 13 || c[3] >= 72 {
		t.Errorf("minimal Connect %x has no PDO inside the header", c)
	}
	if fd.Replay == "" || fd.Trace == "" {
		t.Fatalf("finding not saved: replay %q trace %q", fd.Replay, fd.Trace)
	}
	if st, err := os.Stat(fd.Trace); err != nil || st.Size() == 0 {
		t.Errorf("trace %s: %v", fd.Trace, err)
	}
	// Replay confirms, after the target is back.
	rf, err := ReadReplay(fd.Replay)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rf.ToCase()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Replay(context.Background(), ReplayConfig{Addr: addr, Identity: id, ResponseTimeout: 200 * time.Millisecond, LiveTimeout: 3 * time.Second}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reproduced {
		t.Errorf("replay did not take the target down: %+v", res)
	}
	_ = tg.PortUp(1)
}

// TestFuzzInterrupted: a run whose context ends stops at once, says it
// was interrupted and keeps what it counted.
func TestFuzzInterrupted(t *testing.T) {
	tg, id := startTarget(t)
	ctx, cancel := context.WithCancel(context.Background())
	f, err := New(Config{Addr: tg.Addrs()[0].String(), Identity: id, Seed: 2, Duration: time.Hour,
		ResponseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(1500*time.Millisecond, cancel)
	done := make(chan *Summary)
	go func() {
		sum, _ := f.Run(ctx)
		done <- sum
	}()
	select {
	case sum := <-done:
		if !sum.Interrupted || sum.Cases == 0 {
			t.Errorf("interrupted %v after %d cases", sum.Interrupted, sum.Cases)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30 s after its context ended")
	}
}
