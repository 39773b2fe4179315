package suites

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Options returns initiator options for the target's host identity, with
// the check's timeout; callers adjust digests, queues and KATO.
func (s *Spec) Options() initiator.Options {
	c := s.Target.Config
	t := c.Timeout
	if t <= 0 {
		t = DefaultStepTimeout
	}
	o := initiator.Options{HostNQN: c.HostNQN, HostID: c.HostID, Timeout: t, NrIOQueues: 1, QueueSize: 32}
	if s.trace != nil {
		o.Capture = s.trace
	}
	return o
}

// Dial opens a raw connection to the I/O port with nothing sent yet; it is
// closed when the check ends.
func (s *Spec) Dial(ctx context.Context) *initiator.Raw {
	return s.dial(ctx, s.Target.Config.Address)
}

// DialDiscovery is Dial to the discovery address.
func (s *Spec) DialDiscovery(ctx context.Context) *initiator.Raw {
	return s.dial(ctx, s.discoveryAddress())
}

func (s *Spec) discoveryAddress() string {
	if a := s.Target.Config.DiscoveryAddress; a != "" {
		return a
	}
	return s.Target.Config.Address
}

func (s *Spec) dial(ctx context.Context, addr string) *initiator.Raw {
	GinkgoHelper()
	r, err := initiator.DialRaw(ctx, addr, s.Options())
	if err != nil {
		Fail(fmt.Sprintf("%s: dial %s: %v", s.Req.ID, addr, err))
	}
	s.Defer(func() { _ = r.Close() })
	return r
}

// Raw is Dial followed by a successful ICReq/ICResp exchange with req.
func (s *Spec) Raw(ctx context.Context, req tcp.ICReq) *initiator.Raw {
	GinkgoHelper()
	r := s.Dial(ctx)
	if _, err := r.Initialize(req); err != nil {
		s.skipIfICRespRefused(err)
		Fail(fmt.Sprintf("%s: connection initialization: %v", s.Req.ID, err))
	}
	return r
}

// skipIfICRespRefused skips the check when err says the host refused the
// target's ICResp (a PFV, CPDA, DGST or MAXH2CDATA a conforming host must
// treat as a fatal error, NVMe/TCP 1.0 3.1): no association can be made,
// so nothing but the ICResp can be judged, and the TCP-IC checks judge
// that once. Without it one bad ICResp field fails every check.
func (s *Spec) skipIfICRespRefused(err error) {
	GinkgoHelper()
	if refusedHeader(err, tcp.TypeICResp, 1) != nil {
		Skip(fmt.Sprintf("%s: a conforming host refuses the target's ICResp (%v), so no association can be made; the TCP-IC checks judge the ICResp", s.Req.ID, err))
	}
}

// RawAdmin is Raw plus a successful admin-queue Connect to SubNQN; it
// returns the controller ID.
func (s *Spec) RawAdmin(ctx context.Context, req tcp.ICReq) (*initiator.Raw, uint16) {
	GinkgoHelper()
	r := s.Raw(ctx, req)
	cqe, err := r.ConnectAdmin(s.Target.Config.SubNQN, s.hostNQN())
	if err != nil {
		Fail(fmt.Sprintf("%s: admin Connect: %v", s.Req.ID, err))
	}
	return r, uint16(cqe.DW0)
}

func (s *Spec) hostNQN() string {
	if s.Target.Config.HostNQN != "" {
		return s.Target.Config.HostNQN
	}
	return initiator.DefaultHostNQN()
}

// Connect brings up a full association with SubNQN (admin queue, enable,
// identify, I/O queues per opts); it is closed when the check ends.
func (s *Spec) Connect(ctx context.Context, opts initiator.Options) *initiator.Controller {
	GinkgoHelper()
	c, err := initiator.Connect(ctx, s.Target.Config.Address, s.Target.Config.SubNQN, opts)
	if err != nil {
		s.skipIfICRespRefused(err)
		s.skipIfPropertyRefused(err)
		Fail(fmt.Sprintf("%s: connect %s at %s: %v", s.Req.ID, s.Target.Config.SubNQN, s.Target.Config.Address, err))
	}
	s.Defer(func() { _ = c.Close() })
	return c
}

// ConnectDiscovery connects to the discovery controller.
func (s *Spec) ConnectDiscovery(ctx context.Context) *initiator.Controller {
	GinkgoHelper()
	c, err := initiator.Connect(ctx, s.discoveryAddress(), nvme.DiscoveryNQN, s.Options())
	if err != nil {
		s.skipIfICRespRefused(err)
		s.skipIfDiscoveryConnectRefused(err)
		s.skipIfPropertyRefused(err)
		Fail(fmt.Sprintf("%s: connect to the discovery controller at %s: %v", s.Req.ID, s.discoveryAddress(), err))
	}
	s.Defer(func() { _ = c.Close() })
	return c
}

// RequireWritable returns the namespace the user allowed writes to, or
// skips the check saying how to allow them.
func (s *Spec) RequireWritable() uint32 {
	if s.Target.Config.WritableNSID == 0 {
		s.SkipNeeds("--allow-writes NSID", fmt.Sprintf("%s writes data: allow it with --allow-writes NSID", s.Req.ID))
	}
	return s.Target.Config.WritableNSID
}

// SkipNeeds skips the check because the run lacks something only the
// user can give (need names it, the way the reports repeat it: an option
// such as "--allow-writes NSID"): unlike a feature the target does not
// claim, the requirement applies and was not tested, so a verdict counts
// such mandatory checks and says how to run them.
func (s *Spec) SkipNeeds(need, msg string) {
	AddReportEntry(needsEntry, need)
	Skip(msg)
}

// RequireControl returns the target control, or skips the check saying
// how to provide one.
func (s *Spec) RequireControl(what string) Control {
	if s.Target.Config.Control == nil {
		s.SkipNeeds("--control CMD", fmt.Sprintf("%s needs a target-side action (%s): give --control CMD", s.Req.ID, what))
	}
	return s.Target.Config.Control
}

// Outcome renders a command's result in the canonical words Conform
// compares: "success", "status SCT/SC" (e.g. "status 0x1/0x82"), or
// "transport error".
func Outcome(err error) string {
	var st nvme.Status
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &st):
		return StatusOutcome(st)
	default:
		return "transport error"
	}
}

// StatusOutcome renders a status as Outcome does.
func StatusOutcome(st nvme.Status) string {
	if st.Success() {
		return "success"
	}
	return fmt.Sprintf("status %#x/%#x", st.SCT(), st.SC())
}

// FatalOutcome waits up to wait for what a target does after a fatal
// transport error on r and renders it: "C2HTermReq FES 0xN FEI 0xM",
// "close without C2HTermReq", "no reaction" (the connection stays open
// and silent), or "PDU <type>" if something else arrived first.
//
// After a C2HTermReq it terminates the connection itself: NVMe/TCP 1.0
// 3.5.1 makes that the host's duty ("In response to a C2HTermReq PDU, the
// host shall terminate the connection") and lets the controller wait up
// to 30 seconds for it, so whether the target had already closed is
// recorded as information, never judged.
func FatalOutcome(r *initiator.Raw, wait time.Duration) string {
	_, obs := actAsHost(r, wait)
	return obs
}

// actAsHost is FatalOutcome that also returns the C2HTermReq, if any.
func actAsHost(r *initiator.Raw, wait time.Duration) (*tcp.TermReq, string) {
	t, obs := fatalReaction(r, wait)
	if t != nil {
		noteAfterTermReq(r)
		_ = r.Close()
	}
	return t, obs
}

// fatalReaction reads the target's first reaction to a fatal error: its
// C2HTermReq (returned, and rendered), or the rendering of anything else.
// The connection is left as it is.
func fatalReaction(r *initiator.Raw, wait time.Duration) (*tcp.TermReq, string) {
	deadline := time.Now().Add(wait)
	p, _, _, err := r.Recv(wait)
	for err == nil && p.Type() == tcp.TypeR2T && time.Until(deadline) > 0 {
		// An R2T is no reaction to anything these checks send: one the
		// target sent with another before the error (a controller may
		// have several outstanding) is passed over.
		p, _, _, err = r.Recv(time.Until(deadline))
	}
	if t := refusedTermReq(err); t != nil {
		// A C2HTermReq the host library refused for its lengths still
		// says what the error was; TCP-FATAL-001 judges the lengths.
		return t, termReq(t.FES, t.FEI)
	}
	if err != nil {
		obs := fatalErrOutcome(err)
		if obs == "close without C2HTermReq" {
			noteClose(err)
		}
		return nil, obs
	}
	t, ok := p.(*tcp.TermReq)
	if !ok {
		return nil, "PDU " + p.Type().String()
	}
	return t, termReq(t.FES, t.FEI)
}

// termPeek is how long FatalOutcome looks, after a C2HTermReq, for the
// end of the connection before closing it: enough to see a close the
// target sent right behind its C2HTermReq, too short to cost anything.
const termPeek = 10 * time.Millisecond

// noteAfterTermReq records whether the target had already closed the
// connection after its C2HTermReq, or kept it open for the host to
// terminate (both conform to NVMe/TCP 1.0 3.5.1).
func noteAfterTermReq(r *initiator.Raw) {
	p, _, _, err := r.Recv(termPeek)
	var ne net.Error
	switch {
	case err == nil && p != nil:
		AddReportEntry("observed", fmt.Sprintf("after its C2HTermReq the target sent a %v; the harness closed the connection", p.Type()))
	case errors.As(err, &ne) && ne.Timeout():
		AddReportEntry("observed", "after its C2HTermReq the target kept the connection open for the host to terminate (NVMe/TCP 1.0 3.5.1); the harness closed it")
	default:
		AddReportEntry("observed", "the target closed the connection right after its C2HTermReq")
	}
}

// noteClose records how a target ended a connection without a
// C2HTermReq. NVMe/TCP 1.0 3.5.1 has a controller that "is unable to send
// a C2HTermReq PDU" reset the connection; the harness cannot see whether
// it was unable, and a close with unread data in the receive buffer is
// sent as a reset too, so the difference is information, not a verdict:
// on a healthy connection the controller shall send the C2HTermReq.
func noteClose(err error) {
	if errors.Is(err, syscall.ECONNRESET) {
		AddReportEntry("observed", "the target reset the connection without a C2HTermReq (3.5.1 allows that only when it is unable to send one)")
		return
	}
	AddReportEntry("observed", "the target closed the connection without a C2HTermReq")
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}
