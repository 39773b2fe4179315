package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

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
