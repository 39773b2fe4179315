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
