// Package failover runs path-failover scenarios: verified I/O through
// fault-injecting proxies (package faults) while a target's paths fail and
// return, with a report of stall time, I/Os failed to the application,
// I/Os retried on another path, verify mismatches and a per-path IOPS
// timeline.
//
// Target-side actions (ANA state, port down/up, namespaces) go through a
// suites.Control: LocalControl for nvmftest's reference target in this
// process, suites.ExecControl for any other target (the same verbs as the
// conformance suites' --control command), or `nvmftest target ctl` for a
// reference target running as its own process.
package failover

import (
	"context"
	"fmt"

	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// LocalControl performs every control verb (set-ana-state, port-down,
// port-up, namespaces, subsystems) on a reference target in this process;
// it is suites.ReferenceControl.
type LocalControl struct {
	T *target.Target
}

// Do implements suites.Control.
func (c LocalControl) Do(ctx context.Context, a suites.Action) error {
	return suites.ReferenceControl{T: c.T}.Do(ctx, a)
}

// ParseAction reads "VERB key=value ..." as the exec control contract
// passes it.
func ParseAction(args []string) (suites.Action, error) {
	if len(args) == 0 {
		return suites.Action{}, fmt.Errorf("no verb (use e.g. set-ana-state port=1 group=1 state=inaccessible)")
	}
	a := suites.Action{Verb: args[0], Args: map[string]string{}}
	for _, kv := range args[1:] {
		k, v, ok := cutEq(kv)
		if !ok {
			return a, fmt.Errorf("%q is not key=value", kv)
		}
		a.Args[k] = v
	}
	return a, nil
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
