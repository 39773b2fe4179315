// Package control is the contract by which nvmftest asks someone else's
// software to act: a target's side (add a namespace, change an ANA state,
// take a port down) for conform, failover and fuzz, and a host's side
// (connect, run I/O, rescan) for conform-host. It follows blktests'
// NVME_TARGET_CONTROL: the user supplies a command, nvmftest runs it as
//
//	COMMAND... VERB key=value key=value ...
//
// with the arguments sorted by key. Exit status 0 means done; 3
// (ExitUnsupported) means the command cannot do this, and whatever needed
// it is skipped with the reason; anything else is an error, reported with
// the command's stderr. The verbs themselves belong to the packages that
// ask for them (suites for targets, hostconform for hosts).
package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Control performs actions: built in for nvmftest's own target and
// initiator, a user-supplied command (Exec) for anyone else's.
type Control interface {
	// Do performs a; it returns an error wrapping ErrUnsupported when it
	// cannot.
	Do(ctx context.Context, a Action) error
}

// Action is one action: a verb and its arguments, e.g.
// {"add-namespace", {"nsid": "7", "size": "64MiB"}}.
type Action struct {
	Verb string
	Args map[string]string
}

// ErrUnsupported is returned (wrapped) by a Control that cannot perform
// an action.
var ErrUnsupported = errors.New("action not supported by this control")

// ExitUnsupported is the exit status by which a control command says it
// cannot perform an action.
const ExitUnsupported = 3

// ArgList renders a as a control command's arguments: the verb, then
// key=value sorted by key.
func (a Action) ArgList() []string {
	keys := make([]string, 0, len(a.Args))
	for k := range a.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []string{a.Verb}
	for _, k := range keys {
		out = append(out, k+"="+a.Args[k])
	}
	return out
}

// ParseAction reads a control command's arguments, "VERB key=value ...",
// back into an Action: the inverse of ArgList. A key=value with no key or
// no "=" is an error.
func ParseAction(args []string) (Action, error) {
	if len(args) == 0 {
		return Action{}, fmt.Errorf("no verb (use e.g. set-ana-state port=1 group=1 state=inaccessible)")
	}
	a := Action{Verb: args[0], Args: map[string]string{}}
	for _, kv := range args[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return a, fmt.Errorf("%q is not key=value", kv)
		}
		a.Args[k] = v
	}
	return a, nil
}

// String is the action as the command line sees it.
func (a Action) String() string { return strings.Join(a.ArgList(), " ") }

// Exec runs a user-supplied command for each action (see the package
// comment for the contract). The command runs with the caller's deadline.
type Exec struct {
	// Argv is the command and its leading arguments.
	Argv []string
}

// NewExec splits a command line on spaces (no shell quoting: use a script
// for anything fancier).
func NewExec(cmdline string) (*Exec, error) {
	f := strings.Fields(cmdline)
	if len(f) == 0 {
		return nil, errors.New("control command is empty")
	}
	return &Exec{Argv: f}, nil
}

// Do implements Control.
func (c *Exec) Do(ctx context.Context, a Action) error {
	_, err := c.Output(ctx, a)
	return err
}

// Output performs a and returns what the command printed on stdout,
// trimmed: some verbs answer (a device name, "alive").
func (c *Exec) Output(ctx context.Context, a Action) (string, error) {
	if len(c.Argv) == 0 {
		return "", errors.New("control command is empty")
	}
	argv := append(append([]string(nil), c.Argv[1:]...), a.ArgList()...)
	cmd := exec.CommandContext(ctx, c.Argv[0], argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A command that leaves a child holding its pipes must not hang us
	// past its own end.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &ee) && ee.ExitCode() == ExitUnsupported:
		return out, fmt.Errorf("%w: %s %s", ErrUnsupported, c.Argv[0], a)
	default:
		return out, fmt.Errorf("control %s %s: %v: %s", c.Argv[0], a, err, strings.TrimSpace(stderr.String()))
	}
}
