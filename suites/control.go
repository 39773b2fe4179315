package suites

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/target"
)

// Control verbs and their arguments: the contract between the suites and
// whatever performs target-side actions. Checks ask only for these.
//
//	add-subsystem     nqn=NQN [allow_any_host=true|false] [hosts=NQN,NQN...]
//	remove-subsystem  nqn=NQN
//	add-namespace     subnqn=NQN [nsid=N] size=SIZE [block_size=512|4096] (no nsid: the lowest free one)
//	remove-namespace  subnqn=NQN nsid=N
//	resize-namespace  subnqn=NQN nsid=N size=SIZE
//	set-ana-state     port=PORTID group=GRPID state=optimized|non-optimized|inaccessible|persistent-loss|change
//	port-down         port=PORTID
//	port-up           port=PORTID
//
// SIZE is a byte count with an optional KiB/MiB/GiB suffix.
const (
	VerbAddSubsystem    = "add-subsystem"
	VerbRemoveSubsystem = "remove-subsystem"
	VerbAddNamespace    = "add-namespace"
	VerbRemoveNamespace = "remove-namespace"
	VerbResizeNamespace = "resize-namespace"
	VerbSetANAState     = "set-ana-state"
	VerbPortDown        = "port-down"
	VerbPortUp          = "port-up"
)

// ExitUnsupported is the exit status by which a control command says it
// cannot perform an action (the check is then skipped, with the reason).
const ExitUnsupported = control.ExitUnsupported

// ReferenceControl performs actions on nvmftest's embedded reference
// target directly: subsystems, namespaces, ANA state and port down/up.
type ReferenceControl struct {
	T *target.Target
}

// Do implements Control.
func (c ReferenceControl) Do(_ context.Context, a Action) error {
	switch a.Verb {
	case VerbAddSubsystem:
		sc := target.SubsystemConfig{NQN: a.Args["nqn"], AllowAnyHost: true}
		if v, ok := a.Args["allow_any_host"]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("add-subsystem: allow_any_host=%q: %v", v, err)
			}
			sc.AllowAnyHost = b
		}
		if h := a.Args["hosts"]; h != "" {
			sc.Hosts = strings.Split(h, ",")
			if _, ok := a.Args["allow_any_host"]; !ok {
				sc.AllowAnyHost = false
			}
		}
		return c.T.AddSubsystem(sc)
	case VerbRemoveSubsystem:
		return c.T.RemoveSubsystem(a.Args["nqn"])
	case VerbAddNamespace:
		var nsid uint32 // 0: the target picks the lowest free NSID
		if _, given := a.Args["nsid"]; given {
			n, err := nsidArg(a)
			if err != nil {
				return err
			}
			nsid = n
		}
		nc := target.NamespaceConfig{NSID: nsid, Backend: target.BackendMem, Size: target.Size(a.Args["size"]), BlockSize: 512}
		if nc.Size == "" {
			nc.Size = "64MiB"
		}
		if bs := a.Args["block_size"]; bs != "" {
			n, err := strconv.ParseUint(bs, 10, 32)
			if err != nil {
				return fmt.Errorf("add-namespace: block_size=%q: %v", bs, err)
			}
			nc.BlockSize = uint32(n)
		}
		return c.T.AddNamespace(subnqnArg(a), nc)
	case VerbRemoveNamespace:
		nsid, err := nsidArg(a)
		if err != nil {
			return err
		}
		return c.T.RemoveNamespace(subnqnArg(a), nsid)
	case VerbResizeNamespace:
		nsid, err := nsidArg(a)
		if err != nil {
			return err
		}
		size, err := target.Size(a.Args["size"]).Bytes()
		if err != nil || size == 0 {
			return fmt.Errorf("resize-namespace: size=%q is not a size (e.g. 128MiB)", a.Args["size"])
		}
		return c.T.ResizeNamespace(subnqnArg(a), nsid, int64(size))
	case VerbSetANAState:
		port, err := portArg(a)
		if err != nil {
			return err
		}
		grp := uint64(1)
		if g := a.Args["group"]; g != "" {
			if grp, err = strconv.ParseUint(g, 10, 32); err != nil {
				return fmt.Errorf("set-ana-state: group=%q is not a group ID", g)
			}
		}
		st, err := target.ParseANAState(a.Args["state"])
		if err != nil {
			return fmt.Errorf("set-ana-state: %v", err)
		}
		return c.T.SetANAState(port, uint32(grp), st)
	case VerbPortDown:
		port, err := portArg(a)
		if err != nil {
			return err
		}
		return c.T.PortDown(port)
	case VerbPortUp:
		port, err := portArg(a)
		if err != nil {
			return err
		}
		return c.T.PortUp(port)
	}
	return ErrUnsupported
}

func subnqnArg(a Action) string {
	if v := a.Args["subnqn"]; v != "" {
		return v
	}
	return a.Args["nqn"]
}

func portArg(a Action) (uint16, error) {
	n, err := strconv.ParseUint(a.Args["port"], 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s: port=%q is not a port ID", a.Verb, a.Args["port"])
	}
	return uint16(n), nil
}

func nsidArg(a Action) (uint32, error) {
	n, err := strconv.ParseUint(a.Args["nsid"], 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s: nsid=%q is not a namespace ID", a.Verb, a.Args["nsid"])
	}
	return uint32(n), nil
}

// ExecControl runs a user-supplied command for each action: see package
// control for the contract.
type ExecControl = control.Exec

// NewExecControl splits a command line on spaces (no shell quoting: use a
// script for anything fancier).
func NewExecControl(cmdline string) (*ExecControl, error) { return control.NewExec(cmdline) }
