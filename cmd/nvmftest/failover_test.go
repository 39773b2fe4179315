package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

func TestFailoverCmd(t *testing.T) {
	js := filepath.Join(t.TempDir(), "r.json")
	var out, errb bytes.Buffer
	// nvme-cli's forms: -k in seconds, -c with a unit, -I, and every path
	// connecting from -w.
	code := run([]string{"failover", "--scenario", "path-down", "--before", "300ms", "--fault", "1s", "--after", "2s", "-c", "50ms", "-k", "1",
		"-I", "11111111-2222-3333-4444-555555555555", "-w", "127.0.0.2", "--json", js}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "path1") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run([]string{"failover", "--scenario", "ana-transition", "--before", "300ms", "--fault", "1s", "--after", "1s", "-o", "json"}, nil, &out, &errb)
	var reps []map[string]any
	if code != 0 || json.Unmarshal(out.Bytes(), &reps) != nil || len(reps) != 1 || reps[0]["pass"] != true {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	for _, args := range [][]string{{"failover"}, {"failover", "--scenario", "nope"}, {"failover", "--scenario", "path-down", "--path", "x:1"},
		{"failover", "--scenario", "path-down", "-a", "127.0.0.1", "-n", "nqn.2014-08.io.x:y"}} {
		if code := run(args, nil, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestFailoverExternalWithControl drives a separately addressed target (a
// `nvmftest target --ctl-socket` in this process) through --control, as
// against a vendor array: the ANA transition goes through
// "nvmftest target ctl --socket PATH set-ana-state ...".
func TestFailoverExternalWithControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nvmftest")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "ctl.sock")
	f := &targetFlags{listen: []string{"127.0.0.1:0", "127.0.0.1:0"}, ns: []string{"mem:64MiB"}, ctlSocket: sock}
	rt := startTarget(t, f)
	tg := rt.tg
	a1, a2 := tg.Addrs()[0].(*net.TCPAddr), tg.Addrs()[1].String()
	var out, errb bytes.Buffer
	code := run([]string{"failover", "--scenario", "ana-transition", "-a", a1.IP.String(), "-s", strconv.Itoa(a1.Port),
		"--path", a2, "-n", target.DefaultSubsystemNQN, "--control", bin + " target ctl --socket " + sock,
		"--before", "300ms", "--fault", "1500ms", "--after", "1s"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "external") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if st, _ := tg.ANAState(2, 1); st != nvme.ANAOptimized {
		t.Errorf("port 2 left in ANA state %#x", st)
	}
	if err := rt.stop(); err != nil {
		t.Fatal(err)
	}
}

// An after phase shorter than the host's own reconnect backoff (up to 8 x
// --reconnect-delay) failed the reference target: "I/O did not move back
// to the path after it returned". It is lengthened now, saying so on
// stderr; a backoff no after phase can wait for is a usage error, before
// any scenario runs; and demo refuses the failover scales its message
// says it does not take.
func TestFailoverAfterPhaseAndBackoff(t *testing.T) {
	code, out, stderr := runCLI(t, "", "failover", "--scenario", "path-down", "--before", "500ms", "--fault", "1s", "--after", "500ms")
	if code != 0 || !strings.Contains(out, "PASS") || !strings.Contains(stderr, "after phase lengthened from 500ms to 1.8s") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "", "failover", "--scenario", "all", "--reconnect-delay", "2m")
	if code != 2 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "lower the reconnect delay") {
		t.Errorf("--reconnect-delay 2m: exit %d, stdout %q, stderr %q; want a one-line usage error before anything runs", code, out, stderr)
	}
	for _, s := range []string{"0", "0.05"} {
		if code, _, stderr := runCLI(t, "", "demo", "--failover-scale", s); code != 2 || !strings.Contains(stderr, "--failover-scale") {
			t.Errorf("demo --failover-scale %s: exit %d, %q; want a usage error", s, code, stderr)
		}
	}
}
