package suites

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/onsi/ginkgo/v2/types"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// ProbeTimeout bounds one liveness probe, all its steps together.
const ProbeTimeout = 5 * time.Second

// probeKATO is the keep-alive timeout the probe's Connect asks for: small,
// so that a target which does not notice the probe's connection closing
// still ends the controller soon (it may round it up to its granularity).
const probeKATO = 2 * time.Second

// probeRetryPause is how long a failed probe waits before the one retry
// that rides out a target restarting its listener.
const probeRetryPause = time.Second

// Probe steps, as ProbeError names them.
const (
	StepDial     = "TCP connect"
	StepICReq    = "ICReq/ICResp"
	StepConnect  = "admin Connect"
	StepIdentify = "Identify Controller"
)

// ProbeError is why a target did not answer the liveness probe: the step
// that failed and what happened there.
type ProbeError struct {
	// Step is the step that failed (StepDial ... StepIdentify).
	Step string
	// What says what happened, in a few words ("connection refused",
	// "no answer within 5s", "connection closed by the target" ...).
	What string
	// Hint says what to check, for the one line a user reads; empty when
	// there is nothing more to say.
	Hint string
	// Err is the underlying error.
	Err error
}

func (e *ProbeError) Error() string {
	return e.Step + ": " + e.What
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe checks that the target cfg names is alive: a fresh TCP connection,
// ICReq/ICResp, an admin-queue Connect to cfg.SubNQN (with a small KATO)
// and an Identify Controller, all within bound (ProbeTimeout when 0). Any
// completion of the Identify counts, whatever its status: the controller
// is not enabled, and the probe asks only whether the target answers. It
// returns nil or a *ProbeError. The probe is not part of any check's
// trace, and it closes its connection at once.
func Probe(ctx context.Context, cfg Config, bound time.Duration) error {
	if bound <= 0 {
		bound = ProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	addr := cfg.Address
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return dialError(addr, bound, err)
	}
	peek := &firstBytes{Conn: nc}
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	// Cancellation (Ctrl-C) ends the probe at once, not at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	defer nc.Close()
	opts := initiator.Options{HostNQN: cfg.HostNQN, HostID: cfg.HostID, KATO: probeKATO, Timeout: bound}
	r := initiator.NewRaw(peek, tcp.Config{}, opts)
	req := tcp.ICReq{}
	resp, err := r.Conn.HostInitialize(req)
	if err != nil && resp != nil {
		// An ICResp with fields the host library refuses (a MAXH2CDATA
		// under 4096, say) is still an answer: the checks judge it.
		// Carry on with what it says.
		r.Conn.Negotiated(tcp.Digests{Header: resp.DGST&tcp.DgstHeader != 0, Data: resp.DGST&tcp.DgstData != 0}, req.HPDA, min(resp.CPDA, 31))
		err = nil
	}
	if err != nil {
		return icError(ctx, addr, bound, peek, err)
	}
	cqe, err := r.ConnectAdmin(cfg.SubNQN, hostNQNOf(cfg))
	if err != nil {
		return connectError(ctx, cfg, bound, err)
	}
	if cqe.DW0&(nvme.ConnectAuthReqATR|nvme.ConnectAuthReqASCR) != 0 {
		return nil // it wants authentication first: it answered, it is alive
	}
	if _, _, err := r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil); err != nil && connectionLost(err) {
		return stepError(ctx, StepIdentify, bound, err)
	}
	return nil
}

// connectionLost tells an error that means the connection is gone or
// silent (closed, reset, timed out) from an answer the probe did not
// expect: a status, a stray completion, even a C2HTermReq are answers.
func connectionLost(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ProbeTwice is Probe, and, when it fails, Probe once more after a short
// pause (a target restarting its listener answers the second). It returns
// the second failure.
func ProbeTwice(ctx context.Context, cfg Config, bound time.Duration) error {
	err := Probe(ctx, cfg, bound)
	if err == nil {
		return nil
	}
	select {
	case <-ctx.Done():
		return err
	case <-time.After(probeRetryPause):
	}
	return Probe(ctx, cfg, bound)
}

func hostNQNOf(cfg Config) string {
	if cfg.HostNQN != "" {
		return cfg.HostNQN
	}
	return initiator.DefaultHostNQN()
}

// whatHappened renders a connection-level error in a few words.
func whatHappened(ctx context.Context, bound time.Duration, err error) string {
	var ne net.Error
	switch {
	case ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded:
		return "interrupted (" + context.Cause(ctx).Error() + ")"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("no answer within %v", bound)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the target"
	case errors.Is(err, syscall.EPIPE):
		return "connection closed by the target (broken pipe)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the target"
	}
	return err.Error()
}

func dialError(addr string, bound time.Duration, err error) error {
	pe := &ProbeError{Step: StepDial, Err: err, What: whatHappened(context.Background(), bound, err)}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		pe.What = "connection refused"
		pe.Hint = fmt.Sprintf("nothing listens on %s: start the target, or check -a/-s", addr)
	case errors.Is(err, context.DeadlineExceeded):
		pe.What = fmt.Sprintf("no answer to the TCP connect within %v", bound)
		pe.Hint = fmt.Sprintf("is %s reachable from this host (address, route, firewall)?", addr)
	}
	return pe
}

func stepError(ctx context.Context, step string, bound time.Duration, err error) error {
	return &ProbeError{Step: step, Err: err, What: whatHappened(ctx, bound, err)}
}

func icError(ctx context.Context, addr string, bound time.Duration, peek *firstBytes, err error) error {
	pe := stepError(ctx, StepICReq, bound, err).(*ProbeError)
	var pt *tcp.PeerTerminated
	if errors.As(err, &pt) {
		pe.What = fmt.Sprintf("the target answered ICReq with a C2HTermReq (FES %#x)", pt.FES)
		return pe
	}
	if b := peek.bytes(); len(b) > 0 && (len(b) < 8 || b[0] != byte(tcp.TypeICResp)) {
		pe.What = fmt.Sprintf("the answer is not an NVMe/TCP ICResp: it starts %s", quoteBytes(b))
		pe.Hint = fmt.Sprintf("%s is not an NVMe/TCP port (NVMe/TCP is usually 4420; discovery 8009)", addr)
		return pe
	}
	if strings.HasPrefix(pe.What, "no answer") {
		pe.What = fmt.Sprintf("the port accepted the connection but sent no ICResp within %v", bound)
		pe.Hint = fmt.Sprintf("is %s an NVMe/TCP port?", addr)
	}
	return pe
}

func connectError(ctx context.Context, cfg Config, bound time.Duration, err error) error {
	var st nvme.Status
	if !errors.As(err, &st) {
		return stepError(ctx, StepConnect, bound, err)
	}
	pe := &ProbeError{Step: StepConnect, Err: err, What: fmt.Sprintf("refused with status %#x/%#x (%v)", st.SCT(), st.SC(), st)}
	_, port, _ := net.SplitHostPort(cfg.Address)
	host, _, _ := net.SplitHostPort(cfg.Address)
	switch st.Code() {
	case nvme.StatusConnectInvalidHost:
		pe.Hint = fmt.Sprintf("%s does not allow host %s: add it to the subsystem's hosts, or give -q HOSTNQN", cfg.SubNQN, hostNQNOf(cfg))
	default:
		pe.Hint = fmt.Sprintf("no subsystem %s on this port, or this host (%s) may not connect to it; `nvmftest discover -t tcp -a %s -s %s` lists the subsystems", cfg.SubNQN, hostNQNOf(cfg), host, port)
		if subs := listSubsystems(ctx, cfg); len(subs) > 0 {
			pe.Hint = fmt.Sprintf("no subsystem %s on this port, or this host (%s) may not connect to it; the discovery log lists: %s", cfg.SubNQN, hostNQNOf(cfg), strings.Join(subs, ", "))
		}
	}
	return pe
}

// listSubsystems reads the NVM subsystems the discovery controller lists,
// for the error that names a wrong NQN; nil when it cannot.
func listSubsystems(ctx context.Context, cfg Config) []string {
	addr := cfg.DiscoveryAddress
	if addr == "" {
		addr = cfg.Address
	}
	if ctx.Err() != nil {
		return nil
	}
	log, err := initiator.Discover(ctx, addr, initiator.Options{HostNQN: cfg.HostNQN, HostID: cfg.HostID})
	if err != nil {
		return nil
	}
	var subs []string
	seen := map[string]bool{}
	for _, e := range log.Entries {
		n := strings.TrimSpace(strings.TrimRight(e.SUBNQN, "\x00"))
		if e.SUBTYPE == nvme.SubtypeNVM && n != "" && !seen[n] {
			seen[n] = true
			subs = append(subs, n)
		}
	}
	return subs
}

// quoteBytes renders the first bytes of a foreign answer: as text when
// they are printable (an HTTP server's "HTTP/1.1 400"), else in hex.
func quoteBytes(b []byte) string {
	if len(b) > 24 {
		b = b[:24]
	}
	printable := true
	for _, c := range b {
		if c < 0x20 && c != '\r' && c != '\n' || c > 0x7e {
			printable = false
			break
		}
	}
	if printable {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("% x", b)
}

// firstBytes keeps the first bytes read from a connection, to show what a
// port that is not NVMe/TCP said.
type firstBytes struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (f *firstBytes) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	f.mu.Lock()
	if room := 32 - len(f.buf); room > 0 && n > 0 {
		f.buf = append(f.buf, p[:min(n, room)]...)
	}
	f.mu.Unlock()
	return n, err
}

func (f *firstBytes) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.buf...)
}

// Unreachable records that the target stopped answering during a run: the
// check after which the liveness probe failed, and why.
type Unreachable struct {
	// After is the check after which the target no longer answered: the
	// check that (most likely) killed it.
	After string `json:"after"`
	// Reason is the probe's failure, e.g. "TCP connect: connection refused".
	Reason string `json:"reason"`
	// Previous is the check that ended before After, if any: when After
	// found the target already gone at its first connection, Previous is
	// the other suspect.
	Previous string `json:"previous,omitempty"`
}

// notRunMessage is the reason every check that did not run gives.
func (u *Unreachable) notRunMessage() string {
	return "not run: target unreachable after " + u.After
}

// String says it in one line.
func (u *Unreachable) String() string {
	s := fmt.Sprintf("target unreachable after %s (%s)", u.After, u.Reason)
	if u.Previous != "" {
		s += "; the check before it was " + u.Previous
	} else {
		s += "; it was the first check run"
	}
	return s
}

// Report entries that carry liveness through Ginkgo's spec reports.
const (
	notRunEntry      = "not-run"     // on a check skipped because the target is gone: the killer's ID
	unreachableEntry = "unreachable" // on the killer: the probe's failure
)

// Run state of the liveness watch (guarded by runMu).
var (
	runDead      *Unreachable // set once: the target is gone
	runLastCheck string       // the last check that ended
	// runInterrupted ends when the process is asked to stop (SIGINT,
	// SIGTERM) during Run: then no probe runs, or the one running ends.
	runInterrupted context.Context
	// runFilter is the run's label filter (nil: every check), to tell the
	// checks an interrupt kept from running from those it left out.
	runFilter types.LabelFilter
)

// unreachable returns the run's Unreachable once the target is gone.
func unreachable() *Unreachable {
	runMu.Lock()
	defer runMu.Unlock()
	return runDead
}

// probeAfter says whether a check's end calls for a liveness probe: it
// failed (a dead target fails every check that touches it), or its message
// says a connection was refused (a check may skip on that). Interrupted
// and timed-out runs are not probed: they end now anyway.
func probeAfter(sr SpecReport) bool {
	switch sr.State {
	case types.SpecStateFailed, types.SpecStatePanicked:
		return true
	case types.SpecStatePassed, types.SpecStateSkipped, types.SpecStateInvalid, types.SpecStatePending:
		return strings.Contains(sr.Failure.Message, "connection refused")
	}
	return false
}

// checkLiveness runs when a check ends, after its connections are closed:
// when the check failed it probes the target (twice, a short pause
// apart). A target that does not answer makes this check the one that
// killed it: its trace is kept, it fails if it had not, and every check
// after it is not run.
func (s *Spec) checkLiveness(ctx SpecContext) {
	runMu.Lock()
	previous := runLastCheck
	runLastCheck = s.Req.ID
	dead := runDead != nil
	runMu.Unlock()
	sr := CurrentSpecReport()
	if dead || s.Target == nil || !probeAfter(sr) {
		return
	}
	// Bounded like a check: a run with short check timeouts does not
	// wait longer for the probe.
	bound := ProbeTimeout
	if t := s.Target.Config.Timeout; t > 0 && t < bound {
		bound = t
	}
	// Ctrl-C, before or during the probe, ends it at once: an interrupted
	// run is not a dead target, and must not wait for the probe's bound.
	// (Ginkgo does not cancel a cleanup node's context on an interrupt
	// that arrived while an earlier node ran.)
	runMu.Lock()
	interrupted := runInterrupted
	runMu.Unlock()
	if interrupted == nil {
		interrupted = context.Background()
	}
	if interrupted.Err() != nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(interrupted, cancel)()
	err := ProbeTwice(pctx, s.Target.Config, bound)
	if err == nil || pctx.Err() != nil {
		return
	}
	u := &Unreachable{After: s.Req.ID, Reason: err.Error(), Previous: previous}
	runMu.Lock()
	if runDead == nil {
		runDead = u
	}
	runMu.Unlock()
	s.killed = true
	AddReportEntry(unreachableEntry, u.Reason)
	if sr.State != types.SpecStateFailed && sr.State != types.SpecStatePanicked {
		Fail(fmt.Sprintf("%s: the target no longer answers after this check: %s", s.Req.ID, u.Reason))
	}
}
