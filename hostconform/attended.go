package hostconform

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/suites"
)

// Attended is the host control of a run without one: it prints the
// command a person runs on the host under test (nvme-cli's) and waits
// until the test controller sees the host do it. It can connect and
// disconnect; checks that need more (I/O, rescan) are skipped, saying so.
type Attended struct {
	// Out receives the instructions.
	Out io.Writer
	r   *runner
}

func (a *Attended) attach(r *runner) { a.r = r }

// Do implements control.Control.
func (a *Attended) Do(ctx context.Context, act control.Action) error {
	if a.r == nil {
		return fmt.Errorf("%w: attended control outside a run", control.ErrUnsupported)
	}
	switch act.Verb {
	case VerbConnect:
		fmt.Fprintf(a.Out, "\n>>> on the host under test, run:\n    %s\n    (waiting for it to connect)\n", NVMeConnectLine(act.Args))
		ctrl := a.r.current()
		ok := ctrl.WaitFor(ctx, func() bool {
			conns := ctrl.Conns()
			return Live(conns, true) || len(conns) > 0 && allClosed(conns)
		})
		if !ok {
			return ctx.Err()
		}
		// Let the host finish its bring-up (Identify, AER, ...).
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		if !Live(ctrl.Conns(), true) {
			return fmt.Errorf("the host's connection ended before an I/O queue was connected")
		}
		return nil
	case VerbDisconnect:
		ctrl := a.r.current()
		if ctrl == nil || allClosed(ctrl.Conns()) {
			return nil
		}
		fmt.Fprintf(a.Out, "\n>>> on the host under test, run:\n    nvme disconnect -n %s\n", act.Args["nqn"])
		if !ctrl.WaitFor(ctx, func() bool { return allClosed(ctrl.Conns()) }) {
			return ctx.Err()
		}
		return nil
	}
	return fmt.Errorf("%w: %s needs a --host-control", control.ErrUnsupported, act.Verb)
}

func allClosed(conns []*Conn) bool {
	for _, c := range conns {
		if by, _ := c.CloseInfo(); by == "" {
			return false
		}
	}
	return true
}

// NVMeConnectLine is the nvme-cli command that does the connect verb's
// args.
func NVMeConnectLine(args map[string]string) string {
	b := []string{"nvme connect -t tcp", "-a " + args["addr"], "-s " + args["port"], "-n " + args["nqn"]}
	if v := args["hostnqn"]; v != "" {
		b = append(b, "-q "+v)
	}
	if v := args["hostid"]; v != "" {
		b = append(b, "-I "+v)
	}
	if args["hdr_digest"] == "true" {
		b = append(b, "-g")
	}
	if args["data_digest"] == "true" {
		b = append(b, "-G")
	}
	if v := args["nr_io_queues"]; v != "" {
		b = append(b, "-i "+v)
	}
	if v := args["queue_size"]; v != "" {
		b = append(b, "-Q "+v)
	}
	if v := args["kato"]; v != "" {
		b = append(b, "-k "+v)
	}
	if v := args["dhchap_secret"]; v != "" {
		b = append(b, "-S "+v)
	}
	if v := args["dhchap_ctrl_secret"]; v != "" {
		b = append(b, "-C "+v)
	}
	return strings.Join(b, " ")
}

// ListenHint is the connect line for the run's address, for the banner.
func ListenHint(listen, subnqn string) string {
	h, p, _ := net.SplitHostPort(listen)
	return NVMeConnectLine(map[string]string{"addr": h, "port": p, "nqn": subnqn})
}

// LoadProfile reads a profile of a host's known deviations (the format
// of suites.Profile, with host check IDs).
func LoadProfile(path string) (*suites.Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	var ids []string
	for _, c := range Checks() {
		ids = append(ids, c.ID)
	}
	return suites.ParseProfileFor(data, ids, "nvmftest conform-host --list")
}
