package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

func TestTargetCtl(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	f := &targetFlags{listen: []string{"127.0.0.1:0", "127.0.0.1:0"}, ns: []string{"mem:4MiB"}, ctlSocket: sock}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	ready := make(chan *target.Target, 1)
	f.readyCallback = func(tg *target.Target) { ready <- tg }
	var tout bytes.Buffer
	go func() { done <- runTarget(ctx, &tout, &tout, f) }()
	tg := <-ready
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
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
