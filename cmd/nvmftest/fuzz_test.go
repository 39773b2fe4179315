package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/fuzz"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

func startFuzzTarget(t *testing.T, quirks ...string) (*target.Target, string, string) {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.Quirks = quirks
	tg := targettest.Start(t, cfg)
	h, p, _ := net.SplitHostPort(tg.Addrs()[0].String())
	return tg, h, p
}

// TestCLIFuzzUsage: bad flags are one line and exit 2; a target that is
// not there is one line and exit 3.
func TestCLIFuzzUsage(t *testing.T) {
	nqn := target.DefaultSubsystemNQN
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fuzz", "-a", "127.0.0.1", "-n", nqn}, 2, "give a bound"},
		{[]string{"fuzz", "-a", "127.0.0.1", "--cases", "5"}, 2, "missing subsystem NQN"},
		{[]string{"fuzz", "-a", "127.0.0.1", "-n", "bogus", "--cases", "5"}, 2, "invalid -n/--nqn"},
		{[]string{"fuzz", "-a", "127.0.0.1", "-n", nqn, "--cases", "5", "-t", "rdma"}, 2, "not supported"},
		{[]string{"fuzz", "-a", "127.0.0.1", "-n", nqn, "--cases", "5", "--corpus", t.TempDir()}, 2, "--corpus"},
		{[]string{"fuzz", "-a", "127.0.0.1", "-n", nqn, "--cases", "5", "--control", "/nonexistent/ctl"}, 2, "--control"},
		{[]string{"fuzz", "-a", "127.0.0.1", "-s", "1", "-n", nqn, "--cases", "5"}, 3, "cannot reach"},
		{[]string{"replay", "-a", "127.0.0.1"}, 2, "one replay file"},
		{[]string{"replay", "/nonexistent.json", "-a", "127.0.0.1"}, 2, "nonexistent"},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q in a line", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestCLIFuzzClean: a short run against the reference target finds
// nothing (exit 0) and fills the report directory.
func TestCLIFuzzClean(t *testing.T) {
	_, h, p := startFuzzTarget(t)
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, "", "fuzz", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "--cases", "25", "--seed", "3",
		"--response-timeout", "100ms", "--report-dir", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var sum fuzz.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	if sum.Cases != 25 || len(sum.Findings) != 0 || sum.Seed != 3 {
		t.Errorf("summary: %d cases, %d findings, seed %d", sum.Cases, len(sum.Findings), sum.Seed)
	}
	for _, f := range []string{"fuzz/fuzz.json", "fuzz/junit.xml", "fuzz/fuzz.html", "run.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stderr, "cases (") {
		t.Errorf("no progress line in stderr:\n%s", stderr)
	}
}

// TestCLIReplay: the SPDK-style reproducer (ICReq, then a Connect whose
// PDO 13 points inside its header) takes down a target with the quirk
// (exit 1, reproduced) and not the reference target (exit 0).
func TestCLIReplay(t *testing.T) {
	enc := tcp.EncodeOptions{}
	cd := nvme.ConnectData{CNTLID: 0xFFFF, SubNQN: target.DefaultSubsystemNQN, HostNQN: "nqn.2014-08.org.example:fuzzhost"}
	conn := nvme.Connect{SQSIZE: 31, KATO: 30000}
	sqe := conn.SQE(1)
	sqe.Flags |= nvme.PSDTSGL
	capsule := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, cd.Append(nil), enc)
	capsule[3] = 13
	c := &fuzz.Case{Origin: "test", Steps: []fuzz.Step{
		{Conn: 0, Bytes: tcp.AppendPDU(nil, &tcp.ICReq{}, nil, enc)},
		{Conn: 0, Bytes: capsule},
	}}
	rf := fuzz.NewReplayFile(c)
	rf.SubNQN = target.DefaultSubsystemNQN
	path := filepath.Join(t.TempDir(), "spdk.replay.json")
	if err := fuzz.WriteReplay(path, rf); err != nil {
		t.Fatal(err)
	}
	_, h, p := startFuzzTarget(t)
	if code, stdout, stderr := runCLI(t, "", "replay", path, "-a", h, "-s", p); code != 0 || !strings.Contains(stdout, "not reproduced") {
		t.Errorf("reference target: exit %d\n%s%s", code, stdout, stderr)
	}
	tg, h, p := startFuzzTarget(t, "connect-pdo-in-header-dies")
	code, stdout, stderr := runCLI(t, "", "replay", path, "-a", h, "-s", p)
	if code != 1 || !strings.Contains(stderr, "reproduced") {
		t.Errorf("dying target: exit %d\n%s%s", code, stdout, stderr)
	}
	// Dead now: a replay cannot start (exit 3) until the port is back.
	if code, _, stderr := runCLI(t, "", "replay", path, "-a", h, "-s", p); code != 3 || !strings.Contains(stderr, "not alive") {
		t.Errorf("dead target: exit %d\n%s", code, stderr)
	}
	_ = tg.PortUp(1)
}

// TestCLIFuzzInterrupted: Ctrl-C during fuzz says interrupted, exits 130
// and still writes what it found so far (the reports).
func TestCLIFuzzInterrupted(t *testing.T) {
	_, h, p := startFuzzTarget(t)
	dir := t.TempDir()
	code, stdout, stderr := signalChild(t, os.Interrupt, func(_, stderr string) bool { return strings.Contains(stderr, "cases (") },
		"fuzz", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "--duration", "10m", "--seed", "4",
		"--response-timeout", "50ms", "--progress-interval", "200ms", "--report-dir", dir)
	// A progress line: the child is fuzzing.
	if code != 130 || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "fuzz", "fuzz.json")); err != nil {
		t.Errorf("no report after the interruption: %v", err)
	}
}
