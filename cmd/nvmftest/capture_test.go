package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
