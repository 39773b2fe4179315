package fuzz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// LivenessError is the liveness oracle's verdict on a target that did not
// get a fresh host through ICReq, Connect, enabling the controller and
// Identify Controller in time.
type LivenessError struct {
	// Kind is refused (nothing listens), reset (the connection was closed
	// or reset part way), timeout (the target held the connection silent
	// past the bound) or error (it answered, with a failure).
	Kind string
	// Stage is the step that failed: connect, icreq, connect-cmd,
	// enable, identify.
	Stage string
	Err   error
}

func (e *LivenessError) Error() string {
	return fmt.Sprintf("liveness: %s at %s: %v", e.Kind, e.Stage, e.Err)
}

func (e *LivenessError) Unwrap() error { return e.Err }

// Probe is the liveness oracle: a fresh connection must get through
// ICReq, an admin Connect, CC.EN = 1 and CSTS.RDY, and Identify
// Controller, all within bound. The connection is closed at the end
// (which ends the association).
func Probe(ctx context.Context, addr string, id Identity, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	stage := "connect"
	opts := initiator.Options{HostNQN: id.HostNQN, HostID: id.HostID, Timeout: bound, ConnectTimeout: bound, KATO: 30 * time.Second}
	r, err := initiator.DialRaw(ctx, addr, opts)
	if err != nil {
		return classify(ctx, stage, err)
	}
	var timedOut atomic.Bool
	stop := context.AfterFunc(ctx, func() { timedOut.Store(true); _ = r.Close() })
	defer stop()
	defer r.Close()
	fail := func(err error) error {
		if timedOut.Load() {
			return &LivenessError{Kind: "timeout", Stage: stage, Err: fmt.Errorf("no answer within %v", bound)}
		}
		return classify(ctx, stage, err)
	}
	stage = "icreq"
	if _, err := r.Initialize(tcp.ICReq{}); err != nil {
		return fail(err)
	}
	stage = "connect-cmd"
	if _, err := r.ConnectAdmin(id.SubNQN, id.HostNQN); err != nil {
		return fail(err)
	}
	stage = "enable"
	if _, _, err := r.Command(nvme.PropertySetCmd(0, 0x14, false, ccEnable), nil); err != nil {
		return fail(err)
	}
	for {
		cqe, _, err := r.Command(nvme.PropertyGetCmd(0, 0x1C, false), nil)
		if err != nil {
			return fail(err)
		}
		if nvme.PropertyValue(&cqe)&1 != 0 {
			break
		}
		if ctx.Err() != nil {
			return fail(errors.New("CSTS.RDY never set"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	stage = "identify"
	if _, data, err := r.Command(nvme.IdentifyCmd(1, 0, 0), nil); err != nil {
		return fail(err)
	} else if len(data) != 4096 {
		return fail(fmt.Errorf("identify controller returned %d bytes, want 4096", len(data)))
	}
	return nil
}

func classify(ctx context.Context, stage string, err error) error {
	kind := "error"
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		kind = "reset"
	case ctx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		kind = "timeout"
	}
	return &LivenessError{Kind: kind, Stage: stage, Err: err}
}

// CommandControl runs a target-side command in the control contract of
// conform's --control: "CMD VERB" with exit status 0 done, 3 unsupported,
// anything else failed (its stderr says why). fuzz asks two verbs:
// target-alive (exit 0: the target process lives) and target-restart
// (bring it back, exit 0 once it listens again).
type CommandControl struct {
	Argv []string
}

// ErrUnsupported is a control command's exit status 3.
var ErrUnsupported = control.ErrUnsupported

// Do runs the control command with verb, bounded by ctx, and returns what
// it printed.
func (c CommandControl) Do(ctx context.Context, verb string) (string, error) {
	return (&control.Exec{Argv: c.Argv}).Output(ctx, control.Action{Verb: verb})
}
