package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With --host-control and no --hostnqn, the verbs still name a host NQN
// (the ready-made controls need one; SPDK's tools would send an empty
// one): nvme-cli's default, /etc/nvme/hostnqn or a generated one.
func TestConformHostControlGetsHostNQN(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "args")
	script := filepath.Join(dir, "ctl.sh")
	// Exit 3: this control can do nothing, so the check is skipped after
	// the first verb, which is all the test needs to see.
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+log+"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "", "conform-host", "--listen", "127.0.0.1:0", "--host-control", script, "--only", "HOST-IC-001", "--timeout", "20s")
	got, _ := os.ReadFile(log)
	first, _, _ := strings.Cut(string(got), "\n")
	if !strings.HasPrefix(first, "connect ") || !strings.Contains(first, " hostnqn=nqn.") {
		t.Errorf("the control saw %q, want a connect with hostnqn=nqn....", first)
	}
}
