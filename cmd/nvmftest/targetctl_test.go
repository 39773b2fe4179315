package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

func TestTargetCtl(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	f := &targetFlags{listen: []string{"127.0.0.1:0", "127.0.0.1:0"}, ns: []string{"mem:4MiB"}, ctlSocket: sock}
	rt := startTarget(t, f)
	tg := rt.tg
	ctl := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"target", "ctl", "--socket", sock}, args...), nil, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := ctl("set-ana-state", "port=2", "group=1", "state=inaccessible"); code != 0 {
		t.Fatalf("set-ana-state: %d %s", code, out)
	}
	if st, _ := tg.ANAState(2, 1); st != nvme.ANAInaccessible {
		t.Fatalf("state %#x", st)
	}
	if code, out := ctl("port-down", "port=1"); code != 0 || !tg.PortIsDown(1) {
		t.Fatalf("port-down: %d %s", code, out)
	}
	if code, out := ctl("ports"); code != 0 || !strings.Contains(out, `"down":true`) || !strings.Contains(out, "inaccessible") {
		t.Fatalf("ports: %d %s", code, out)
	}
	if code, out := ctl("port-up", "port=1"); code != 0 || tg.PortIsDown(1) {
		t.Fatalf("port-up: %d %s", code, out)
	}
	if code, out := ctl("add-namespace", "subnqn="+target.DefaultSubsystemNQN, "nsid=5", "size=1MiB"); code != 0 {
		t.Fatalf("add-namespace: %d %s", code, out)
	}
	if code, out := ctl("resize-namespace", "subnqn="+target.DefaultSubsystemNQN, "nsid=5", "size=2MiB"); code != 0 {
		t.Fatalf("resize-namespace: %d %s", code, out)
	}
	if code, out := ctl("resize-namespace", "subnqn="+target.DefaultSubsystemNQN, "nsid=5", "size=lots"); code != 1 || !strings.Contains(out, "size=") {
		t.Fatalf("resize-namespace to a bad size: %d %s", code, out)
	}
	if code, _ := ctl("frobnicate"); code != 3 {
		t.Fatalf("unknown verb exit %d, want 3", code)
	}
	if code, out := ctl("set-ana-state", "port=9", "state=optimized"); code != 1 || !strings.Contains(out, "port_id 9") {
		t.Fatalf("bad port: %d %s", code, out)
	}
	if code, _ := ctl("port-down", "nokv"); code != 2 {
		t.Fatalf("bad argument exit %d, want 2", code)
	}
	if err := rt.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestTargetCtlFirstUse: what a first user of target ctl meets (review
// item 12): add-namespace without nsid picks the next free NSID, ctl with
// no verb lists the verbs, a socket that is not there says how to start
// the target with one, and the banner names the control socket.
func TestTargetCtlFirstUse(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	f := &targetFlags{listen: []string{"127.0.0.1:0"}, ns: []string{"mem:4MiB"}, ctlSocket: sock}
	rt := startTarget(t, f)
	tg, tout := rt.tg, rt.out
	if !strings.Contains(tout.String(), "control socket "+sock) {
		t.Errorf("banner does not name the control socket:\n%s", tout.String())
	}
	ctl := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"target", "ctl"}, args...), nil, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := ctl("--socket", sock, "add-namespace", "subnqn="+target.DefaultSubsystemNQN, "size=1MiB"); code != 0 {
		t.Fatalf("add-namespace without nsid: %d %s", code, out)
	}
	if code, out := ctl("--socket", sock, "add-namespace", "subnqn="+target.DefaultSubsystemNQN, "size=1MiB"); code != 0 {
		t.Fatalf("second add-namespace without nsid: %d %s", code, out)
	}
	var ids []uint32
	for _, ns := range tg.Namespaces(target.DefaultSubsystemNQN) {
		ids = append(ids, ns.NSID)
	}
	if fmt.Sprint(ids) != "[1 2 3]" {
		t.Errorf("namespaces %v after two add-namespace without nsid, want [1 2 3]", ids)
	}
	code, out := ctl("--socket", sock)
	if code != 2 || !strings.Contains(out, "set-ana-state") || !strings.Contains(out, "add-namespace") || strings.Contains(out, "requires at least") {
		t.Errorf("ctl with no verb: %d %q, want the verbs listed and exit 2", code, out)
	}
	missing := filepath.Join(t.TempDir(), "nonexist.sock")
	code, out = ctl("--socket", missing, "ports")
	want := "no target control socket at " + missing + ": start the target with --ctl-socket " + missing
	if code == 0 || !strings.Contains(out, want) || strings.Contains(out, "http://") {
		t.Errorf("missing socket: %d %q, want %q", code, out, want)
	}
	if err := rt.stop(); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer the target's goroutines may write while a
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runningTarget is `nvmftest target` with f, running inside the test.
type runningTarget struct {
	tg   *target.Target
	out  *syncBuffer // its console: banner, logs, shutdown summary
	stop func() error
}

// startTarget runs the target command with f until stop (or the test's
// end); stop returns what runTarget returned.
func startTarget(t *testing.T, f *targetFlags) *runningTarget {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan *target.Target, 1)
	f.readyCallback = func(tg *target.Target) { ready <- tg }
	rt := &runningTarget{out: &syncBuffer{}}
	go func() { done <- runTarget(ctx, rt.out, rt.out, f) }()
	var once sync.Once
	var err error
	rt.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = rt.stop() })
	select {
	case rt.tg = <-ready:
	case err := <-done:
		t.Fatalf("target did not start: %v\n%s", err, rt.out.String())
	}
	return rt
}
