package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExecControl(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "ctl.sh")
	log := filepath.Join(dir, "log")
	body := "#!/bin/sh\necho \"$@\" >> " + log + "\ncase \"$3\" in\nadd-namespace) exit 0;;\nport-down) exit 3;;\n*) echo nope >&2; exit 1;;\nesac\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := NewExec(script + " --array a1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Do(ctx, Action{Verb: "add-namespace", Args: map[string]string{"subnqn": "nqn.x", "nsid": "7", "size": "64MiB"}}); err != nil {
		t.Errorf("add-namespace: %v", err)
	}
	if err := c.Do(ctx, Action{Verb: "port-down", Args: map[string]string{"port": "1"}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("port-down: %v, want ErrUnsupported", err)
	}
	if err := c.Do(ctx, Action{Verb: "remove-subsystem", Args: map[string]string{"nqn": "nqn.x"}}); err == nil || !strings.Contains(err.Error(), "nope") || errors.Is(err, ErrUnsupported) {
		t.Errorf("remove-subsystem: %v, want an error with the command's stderr", err)
	}
	got, _ := os.ReadFile(log)
	want := "--array a1 add-namespace nsid=7 size=64MiB subnqn=nqn.x\n--array a1 port-down port=1\n--array a1 remove-subsystem nqn=nqn.x\n"
	if string(got) != want {
		t.Errorf("control command saw:\n%s\nwant:\n%s", got, want)
	}
	if _, err := NewExec("  "); err == nil {
		t.Error("empty control command accepted")
	}
}

func TestParseAction(t *testing.T) {
	a, err := ParseAction([]string{"set-ana-state", "port=1", "state=inaccessible", "note=a=b"})
	if err != nil || a.Verb != "set-ana-state" || a.Args["port"] != "1" || a.Args["state"] != "inaccessible" || a.Args["note"] != "a=b" {
		t.Fatalf("%+v %v", a, err)
	}
	if back, err := ParseAction(a.ArgList()); err != nil || back.String() != a.String() {
		t.Errorf("ArgList then ParseAction: %v, %v", back, err)
	}
	for _, bad := range [][]string{{"x", "=1"}, {"x", "port"}, nil} {
		if _, err := ParseAction(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
