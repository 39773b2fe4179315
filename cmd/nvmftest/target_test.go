package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/target"
)

func TestTargetCmdBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ns", "mem:12XB", "--listen", "127.0.0.1:0"}, `"12XB" is not a size`},
		{[]string{"--ns", "file:1GiB"}, "needs a path"},
		{[]string{"--listen", "nope"}, `listeners[0].address: "nope" is not host:port`},
		{[]string{"--subnqn", "bad"}, `"bad" is not an NQN`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"--config", "/nonexistent.yaml"}, "no such file"},
		{[]string{"--quirk", "kas-10s", "--quirk", "frobnicate"}, `"frobnicate" is not a quirk (use one of no-termreq,`},
	} {
		cmd := newTargetCmd()
		cmd.SetArgs(tc.args)
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.Execute()
		var ec interface{ ExitCode() int }
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ec) || ec.ExitCode() != 2 {
			t.Errorf("%v: got %v, want %q with exit code 2", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: multi-line error %q", tc.args, err)
		}
	}
}

// TestTargetQuirkFlag: --quirk adds to the configured quirks, once each,
// and --help lists every quirk with its kind.
func TestTargetQuirkFlag(t *testing.T) {
	cfg, err := buildTargetConfig(&targetFlags{quirks: []string{"kas-10s", "no-termreq", "kas-10s"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Quirks, ",") != "kas-10s,no-termreq" {
		t.Errorf("quirks %v", cfg.Quirks)
	}
	cmd := newTargetCmd()
	cmd.SetArgs([]string{"--help"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, q := range target.Quirks() {
		if !strings.Contains(out.String(), q.Name) {
			t.Errorf("--help does not list quirk %s", q.Name)
		}
	}
}

func TestTargetCmdServes(t *testing.T) {
	f := &targetFlags{
		listen:     []string{"127.0.0.1:0"},
		discListen: []string{"127.0.0.1:0"},
		ns:         []string{"null:1GiB", "mem:64MiB"},
		allowHosts: []string{"nqn.2014-08.io.nvmftest:h"},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var addr net.Addr
	f.readyCallback = func(tg *target.Target) {
		addr = tg.Addrs()[0]
		cfg := tg.Config()
		if len(cfg.Subsystems[0].Namespaces) != 2 || cfg.Subsystems[0].AllowAnyHost {
			t.Errorf("config %+v", cfg.Subsystems[0])
		}
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Error(err)
		} else {
			c.Close()
		}
		cancel()
	}
	var out bytes.Buffer
	if err := runTarget(ctx, &out, &out, f); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr.String())
	want := "nvme connect -t tcp -a 127.0.0.1 -s " + port + " -n " + target.DefaultSubsystemNQN
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "nvme discover") {
		t.Fatalf("output %q lacks %q", out.String(), want)
	}
}

// TestTargetConfigTraps: review item 17. A subsystem's ports: restriction
// is not dropped silently under --listen, the banner shows the NSID a
// namespace gets and the -q a restricted subsystem needs, and a
// configuration that serves no subsystem is refused unless subsystems can
// be added through a control socket.
func TestTargetConfigTraps(t *testing.T) {
	dir := t.TempDir()
	restricted := filepath.Join(dir, "restricted.yaml")
	os.WriteFile(restricted, []byte(`listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
subsystems:
  - nqn: nqn.2014-08.io.nvmftest:restricted
    allow_any_host: true
    ports: [2]
`), 0o644)
	_, err := buildTargetConfig(&targetFlags{config: restricted, listen: []string{"127.0.0.1:0"}})
	if err == nil || !strings.Contains(err.Error(), "ports: [2]") || !strings.Contains(err.Error(), "--listen") || strings.Contains(err.Error(), "\n") {
		t.Errorf("--config with ports: and --listen: %v, want one line refusing the combination", err)
	}

	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, []byte("listeners:\n  - address: 127.0.0.1:0\n"), 0o644)
	bounded, stop := context.WithTimeout(context.Background(), 5*time.Second) // started: a failure, not a hang
	defer stop()
	err = runTarget(bounded, io.Discard, io.Discard, &targetFlags{config: empty})
	var ec interface{ ExitCode() int }
	if err == nil || !strings.Contains(err.Error(), "no subsystems") || !errors.As(err, &ec) || ec.ExitCode() != 2 {
		t.Errorf("config without subsystems: %v, want a usage error", err)
	}

	hosts := filepath.Join(dir, "hosts.yaml")
	os.WriteFile(hosts, []byte(`listeners:
  - address: 127.0.0.1:0
subsystems:
  - nqn: nqn.2014-08.io.nvmftest:locked
    hosts: [nqn.2014-08.io.nvmftest:h1]
    namespaces:
      - {backend: mem, size: 1MiB}
      - {nsid: 1, backend: mem, size: 1MiB}
`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	f := &targetFlags{config: hosts, readyCallback: func(*target.Target) { cancel() }}
	var out bytes.Buffer
	if err := runTarget(ctx, &out, &out, f); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"namespace 2: mem 1MiB", "namespace 1: mem 1MiB", "-n nqn.2014-08.io.nvmftest:locked -q nqn.2014-08.io.nvmftest:h1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "next free") {
		t.Errorf("banner does not say which NSID:\n%s", out.String())
	}
}
