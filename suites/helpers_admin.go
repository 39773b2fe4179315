package suites

// Helpers shared by the discovery, admin and io areas: verdict shortcuts,
// controller and namespace set-up, raw associations built by hand, and the
// discovery log reader.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Sections the admin and io checks cite: the text each check was held
// against (NVMe Base 2.1 page by page, Base 2.2 chapters 3 and 4, NVM
// Command Set 1.2 chapters 3 and 4, NVMe/TCP 1.0 in full). A figure
// name follows where the section holds many rules.
const (
	secASCII         = "NVMe Base 2.1 1.4.2"
	secCtrlModel     = "NVMe Base 2.2 3.1.2"
	secNSIDTypes     = "NVMe Base 2.2 3.2.1.5"
	secKeepAlive     = "NVMe Base 2.2 3.9"
	secKeepAliveCmd  = "NVMe Base 2.2 3.9.3.1"
	secKATOConfig    = "NVMe Base 2.2 3.9.1"
	secSGL           = "NVMe Base 2.2 4.3.2"
	secStatusGeneric = "NVMe Base 2.2 4.2.3"
	secFused         = "NVMe Base 2.1 3.4.2"
	secSQFlow        = "NVMe Base 2.1 3.3.2"
	secAbort         = "NVMe Base 2.1 5.1.1"
	secAER           = "NVMe Base 2.1 5.1.2"
	secGetFeatures   = "NVMe Base 2.1 5.1.11"
	secGetLog        = "NVMe Base 2.1 5.1.12"
	secLogError      = "NVMe Base 2.1 5.1.12.1.2"
	secLogSMART      = "NVMe Base 2.1 5.1.12.1.3"
	secLogFirmware   = "NVMe Base 2.1 5.1.12.1.4"
	secLogChangedNS  = "NVMe Base 2.1 5.1.12.1.5"
	secLogEffects    = "NVMe Base 2.1 5.1.12.1.6"
	secLogANA        = "NVMe Base 2.1 5.1.12.1.13"
	secIdentify      = "NVMe Base 2.1 5.1.13"
	secIDCtrl        = "NVMe Base 2.1 5.1.13.2.1"
	secActiveList    = "NVMe Base 2.1 5.1.13.2.2"
	secNSDesc        = "NVMe Base 2.1 5.1.13.2.3"
	secKeepAliveCmnd = "NVMe Base 2.1 5.1.14"
	secFeatures      = "NVMe Base 2.1 5.1.25.1"
	secFeatKATO      = "NVMe Base 2.1 5.1.25.1.8"
	secFlush         = "NVMe Base 2.2 7.2"
	secNVMStatus     = "NVM Command Set 1.2 3.1"
	secNVMCompare    = "NVM Command Set 1.2 3.3.1"
	secNVMDSM        = "NVM Command Set 1.2 3.3.3"
	secNVMRead       = "NVM Command Set 1.2 3.3.4"
	secNVMWrite      = "NVM Command Set 1.2 3.3.6"
	secNVMWZ         = "NVM Command Set 1.2 3.3.8"
	secNVMIDNS       = "NVM Command Set 1.2 4.1.5.1"
	secTCPCapsules   = "NVMe/TCP 1.0 3.3.1"
	secTCPSGL        = "NVMe/TCP 1.0 3.3.2"
	secTCPKeepAlive  = "NVMe/TCP 1.0 3.4"
	secTCPCapsuleCmd = "NVMe/TCP 1.0 3.6.2.6"
)

// failf fails the check with the requirement's ID and section in front.
func (s *Spec) checkFail(format string, args ...any) {
	GinkgoHelper()
	Fail(fmt.Sprintf("%s (%s): %s", s.Req.ID, s.Req.Section, fmt.Sprintf(format, args...)))
}

// must fails the check when err is not nil; what says what was being done.
func (s *Spec) mustOK(err error, what string) {
	GinkgoHelper()
	if err != nil {
		s.skipIfICRespRefused(err)
		s.checkFail("%s: %v", what, err)
	}
}

// readStep is mustOK for a Read a check uses as a step (to read back what
// it wrote, to count reads): a Read that fails with a status is
// IO-RW-006's and FAB-IOQ-010's to judge, once, so this check skips,
// saying so, instead of failing for what it does not exist to judge.
func (s *Spec) readStep(err error, what string) {
	GinkgoHelper()
	var st nvme.Status
	if errors.As(err, &st) {
		Skip(fmt.Sprintf("%s: the %s this check relies on failed (%v); IO-RW-006 and FAB-IOQ-010 judge reads", s.Req.ID, what, st))
	}
	s.mustOK(err, what)
}

// expectThat fails the check unless ok, with the formatted observation.
// It goes through Conform, so a profile that documents exactly this
// observation for the requirement turns it into a finding: a target's
// known divergence must never be excusable in one check and not another.
func (s *Spec) expectThat(ok bool, format string, args ...any) {
	GinkgoHelper()
	if !ok {
		s.Conform(fmt.Sprintf(format, args...), s.Req.Title)
	}
}

// conformOneOf passes (recording the observation) when observed is one of
// the outcomes the spec leaves open; otherwise it is Conform against the
// first of them.
func (s *Spec) conformOneOf(observed string, allowed ...string) {
	GinkgoHelper()
	if slices.Contains(allowed, observed) {
		AddReportEntry("observed", fmt.Sprintf("%s: %s", s.Req.ID, observed))
		return
	}
	s.Conform(observed, allowed[0])
}

// adminController connects to the subsystem under test with no I/O queues.
func (s *Spec) adminController(ctx context.Context) *initiator.Controller {
	GinkgoHelper()
	o := s.Options()
	o.NrIOQueues = -1
	return s.Connect(ctx, o)
}

// ioController connects with one I/O queue of 32 entries and returns it.
func (s *Spec) ioController(ctx context.Context) (*initiator.Controller, *initiator.Queue) {
	GinkgoHelper()
	c := s.Connect(ctx, s.Options())
	if len(c.IOQueues()) == 0 {
		s.checkFail("the controller granted no I/O queue")
	}
	return c, c.IOQueues()[0]
}

// nsInfo is an active namespace and its geometry.
type nsInfo struct {
	ID    uint32
	Ident *nvme.IdentifyNamespace
	BS    uint32 // bytes per logical block
	NLBA  uint64 // NSZE
}

func (s *Spec) nsGeometry(ctx context.Context, c *initiator.Controller, nsid uint32) nsInfo {
	GinkgoHelper()
	ns, err := c.IdentifyNamespace(ctx, nsid)
	s.mustOK(err, fmt.Sprintf("Identify Namespace %d", nsid))
	bs := ns.BlockSize()
	if bs < 512 || ns.NSZE == 0 {
		s.checkFail("namespace %d reports block size %d and NSZE %d", nsid, bs, ns.NSZE)
	}
	return nsInfo{ID: nsid, Ident: ns, BS: bs, NLBA: ns.NSZE}
}

// writableNS returns the namespace writes may go to, or skips.
func (s *Spec) writableNS(ctx context.Context, c *initiator.Controller) nsInfo {
	GinkgoHelper()
	return s.nsGeometry(ctx, c, s.RequireWritable())
}

// readableNS returns the writable namespace if there is one, else the
// first active namespace.
func (s *Spec) readableNS(ctx context.Context, c *initiator.Controller) nsInfo {
	GinkgoHelper()
	if id := s.Target.Config.WritableNSID; id != 0 {
		return s.nsGeometry(ctx, c, id)
	}
	ids, err := c.ActiveNamespaces(ctx)
	s.mustOK(err, "Identify Active Namespace ID list")
	if len(ids) == 0 {
		s.Lacks("an active namespace")
	}
	return s.nsGeometry(ctx, c, ids[0])
}

// inactiveNSID returns an NSID no greater than NN that is not active, or
// skips when every NSID is active.
func (s *Spec) inactiveNSID(ctx context.Context, c *initiator.Controller) uint32 {
	GinkgoHelper()
	ids, err := c.ActiveNamespaces(ctx)
	s.mustOK(err, "Identify Active Namespace ID list")
	nn := c.IdentifyData().NN
	var cand uint32 = 1
	if len(ids) > 0 {
		cand = ids[len(ids)-1] + 1
	}
	if cand > nn || cand == 0 {
		for cand = 1; cand <= nn && slices.Contains(ids, cand); cand++ {
		}
		if cand > nn {
			s.Lacks("an inactive NSID (all NN namespaces are active)")
		}
	}
	return cand
}

// randomLBA picks a random run of n blocks inside ns.
func randomLBA(ns nsInfo, n uint32) uint64 {
	if uint64(n) >= ns.NLBA {
		return 0
	}
	return rand.Uint64N(ns.NLBA - uint64(n) + 1)
}

// pattern returns n random bytes.
func randomData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// firstDiff describes where two buffers differ ("" if equal).
func firstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes instead of %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d (%#02x, want %#02x)", i, got[i], want[i])
		}
	}
	return ""
}

func allBytes(b []byte, v byte) bool {
	for _, x := range b {
		if x != v {
			return false
		}
	}
	return true
}

// identifyRaw reads an Identify data structure as bytes.
func identifyRaw(ctx context.Context, c *initiator.Controller, cns uint8, nsid uint32) ([]byte, error) {
	buf := make([]byte, nvme.IdentifyDataSize)
	_, err := c.Admin().Exec(ctx, nvme.IdentifyCmd(cns, nsid, 0), buf, initiator.FromController)
	return buf, err
}

// getLog reads one Get Log Page command's worth of a log page (no
// splitting), so the status of that one command is what is observed.
func getLogRaw(ctx context.Context, c *initiator.Controller, lid uint8, nsid uint32, offset uint64, n int) ([]byte, error) {
	buf := make([]byte, n)
	_, err := c.Admin().Exec(ctx, nvme.GetLogPageCmd(lid, nsid, 0, offset, uint32(n)), buf, initiator.FromController)
	return buf, err
}

// hostID is the Host Identifier raw associations send.
func (s *Spec) rawHostID() [16]byte {
	if id := s.Target.Config.HostID; id != ([16]byte{}) {
		return id
	}
	nqn := s.hostNQN()
	if i := strings.LastIndex(nqn, ":uuid:"); i >= 0 {
		if id, err := initiator.ParseHostID(nqn[i+6:]); err == nil {
			return id
		}
	}
	h := sha256.Sum256([]byte("nvmftest-hostid:" + nqn))
	var id [16]byte
	copy(id[:], h[:16])
	id[6] = id[6]&0x0F | 0x50
	id[8] = id[8]&0x3F | 0x80
	return id
}

// rawConnect sends a Fabrics Connect on r and returns the response.
func (s *Spec) connectRaw(r *initiator.Raw, subnqn string, qid, cntlid, sqsize uint16, cattr uint8, kato time.Duration) (nvme.CQE, error) {
	cd := nvme.ConnectData{HostID: s.rawHostID(), CNTLID: cntlid, SubNQN: subnqn, HostNQN: s.hostNQN()}
	cmd := nvme.Connect{QID: qid, SQSIZE: sqsize, CATTR: cattr, KATO: uint32(kato / time.Millisecond)}
	cqe, _, err := r.Command(cmd.SQE(0), cd.Append(nil))
	if qid == 0 && cntlid == cntlidAnyDynamic && nvme.ConnectRefusedAtCNTLID(cqe, err) {
		// A static-model subsystem: ask it for any static controller.
		cd.CNTLID = cntlidAnyStatic
		cqe, _, err = r.Command(cmd.SQE(0), cd.Append(nil))
	}
	return cqe, err
}

// rawEnable sets CC.EN on a raw admin queue and waits for CSTS.RDY.
func (s *Spec) enableRaw(ctx context.Context, r *initiator.Raw) {
	GinkgoHelper()
	cc := uint64(6<<16 | 4<<20 | nvme.CCEnable)
	_, _, err := r.Command(nvme.PropertySetCmd(0, nvme.PropCC, false, cc), nil)
	s.mustOK(err, "Property Set CC.EN")
	for {
		cqe, _, err := r.Command(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil)
		s.mustOK(err, "Property Get CSTS")
		if cqe.DW0&nvme.CSTSReady != 0 {
			return
		}
		if cqe.DW0&nvme.CSTSFatal != 0 {
			s.checkFail("CSTS.CFS set after enabling (CSTS %#x)", cqe.DW0)
		}
		select {
		case <-ctx.Done():
			s.checkFail("CSTS.RDY not set: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// rawAssociation is an association built by hand: an enabled admin queue
// and one I/O queue, both raw, so checks can send what the host library
// never would (wrong SGLs, chosen CIDs).
type rawAssociation struct {
	Admin, IO *initiator.Raw
	CNTLID    uint16
}

func (s *Spec) rawIOQueue(ctx context.Context, sqsize uint16) rawAssociation {
	GinkgoHelper()
	a := s.Raw(ctx, tcp.ICReq{})
	cqe, err := s.connectRaw(a, s.Target.Config.SubNQN, 0, nvme.CNTLIDDynamic, initiator.AdminQueueSize-1, 0, 30*time.Second)
	s.mustOK(err, "admin Connect")
	cntlid := uint16(cqe.DW0)
	s.enableRaw(ctx, a)
	io := s.Raw(ctx, tcp.ICReq{})
	_, err = s.connectRaw(io, s.Target.Config.SubNQN, 1, cntlid, sqsize, 0, 0)
	s.mustOK(err, "I/O queue Connect")
	return rawAssociation{Admin: a, IO: io, CNTLID: cntlid}
}

// readDiscoveryLog reads the whole discovery log page as bytes: the
// header, then header and entries at the size the header gives, again if
// GENCTR moved in between (as Linux's nvme_get_log does).
// genctrOwner is the check that judges a stable discovery log GENCTR.
const genctrOwner = "DISC-LOG-011"

func (s *Spec) readDiscoveryLog(ctx context.Context, c *initiator.Controller) ([]byte, *nvme.DiscoveryLog) {
	GinkgoHelper()
	for range 3 {
		hdr := make([]byte, nvme.DiscoveryLogHeaderSize)
		if err := c.GetLogPage(ctx, nvme.LogDiscovery, 0, 0, 0, hdr); isDiscoverRestart(err) {
			// "the controller may return a status code of Discover
			// Restart" when the log changed during a read sequence
			// (Base 2.1 5.1.12.3.1): start over.
			continue
		} else {
			s.mustOK(err, "Get Log Page 70h (header)")
		}
		gen, numrec, _, _ := nvme.DecodeDiscoveryLogHeader(hdr)
		if numrec > 4096 {
			s.checkFail("discovery log NUMREC %d is implausible", numrec)
		}
		full := make([]byte, nvme.DiscoveryLogHeaderSize+int(numrec)*nvme.DiscoveryLogEntrySize)
		if err := c.GetLogPage(ctx, nvme.LogDiscovery, 0, 0, 0, full); isDiscoverRestart(err) {
			continue
		} else {
			s.mustOK(err, "Get Log Page 70h")
		}
		gen2, numrec2, _, _ := nvme.DecodeDiscoveryLogHeader(full)
		if gen2 != gen || numrec2 != numrec {
			continue
		}
		l, err := nvme.DecodeDiscoveryLog(full)
		s.mustOK(err, "decode the discovery log")
		return full, l
	}
	if s.Req.ID == genctrOwner {
		s.checkFail("discovery log GENCTR kept changing over three reads")
	}
	// One root cause, one failing check: without a consistent log
	// nothing else about it can be judged.
	Skip(fmt.Sprintf("%s: the discovery log's GENCTR kept changing over three reads with nothing changed, so no consistent log could be read (%s judges that)", s.Req.ID, genctrOwner))
	return nil, nil
}

// isDiscoverRestart reports whether err is a Discover Restart status
// (01h/90h), whatever its DNR and More bits.
func isDiscoverRestart(err error) bool {
	var st nvme.Status
	return errors.As(err, &st) && st.Code() == nvme.StatusDiscoveryRestart
}

// waitEvent waits for an asynchronous event.
func waitEvent(ctx context.Context, ch <-chan uint32, d time.Duration) (uint32, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			return 0, errors.New("admin queue ended")
		}
		return v, nil
	case <-t.C:
		return 0, errors.New("no asynchronous event")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// control performs a target-side action, skipping the check if the
// control cannot; the undo action (if any) runs when the check ends.
func (s *Spec) act(ctx context.Context, what string, a Action, undo *Action) {
	GinkgoHelper()
	ctl := s.RequireControl(what)
	err := ctl.Do(ctx, a)
	if errors.Is(err, ErrUnsupported) {
		s.SkipNeeds("a --control that can "+a.Verb, fmt.Sprintf("%s: the target control cannot %s", s.Req.ID, a.Verb))
	}
	s.mustOK(err, "control "+a.Verb)
	if undo != nil {
		u := *undo
		s.Defer(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = ctl.Do(cctx, u)
		})
	}
}

// scratchNQN is a fresh subsystem NQN for add-subsystem.
func scratchNQN(tag string) string {
	return fmt.Sprintf("nqn.2014-08.io.nvmftest:conform-%s-%08x", tag, rand.Uint32())
}

// kasGranule is the Keep Alive Timer granularity Identify KAS reports:
// "the granularity of the KATO field in 100 millisecond units" (NVMe Base
// 2.1 Figure 312); 0 when the controller has no Keep Alive Timer feature.
func kasGranule(id *nvme.IdentifyController) time.Duration {
	return time.Duration(id.KAS) * 100 * time.Millisecond
}

// roundUpKATO is the Keep Alive Timeout a controller with granularity g
// uses for a requested one: "The controller rounds up the value specified
// to the granularity indicated in the KAS field" (NVMe Base 2.1
// 5.1.25.1.8).
func roundUpKATO(req, g time.Duration) time.Duration {
	if g <= 0 || req%g == 0 {
		return req
	}
	return (req/g + 1) * g
}

// expectedKATO judges a KATO the controller reports for a requested one:
// the request rounded up to the KAS granularity, or, above that, a
// larger multiple of the granularity the controller calls its minimum
// ("less than the minimum supported by the specific implementation, then
// the controller sets the Keep Alive Timeout value to that minimum
// value", NVMe Base 2.2 3.9.1). It returns the observation in the words
// the check compares and whether the text allows it.
func expectedKATO(got, req, g time.Duration) (obs string, ok bool) {
	want := roundUpKATO(req, g)
	switch {
	case got == want:
		return fmt.Sprintf("KATO %d ms: %d ms rounded up to the KAS granularity of %d ms", got.Milliseconds(), req.Milliseconds(), g.Milliseconds()), true
	case got > want && g > 0 && got%g == 0:
		return fmt.Sprintf("KATO %d ms: raised to the controller's minimum (a multiple of the KAS granularity of %d ms)", got.Milliseconds(), g.Milliseconds()), true
	}
	return fmt.Sprintf("KATO %d ms", got.Milliseconds()), false
}

// rawKATO reads the Keep Alive Timer feature on an enabled raw admin
// queue: the Keep Alive Timeout the controller uses (KATT).
func (s *Spec) rawKATO(r *initiator.Raw) time.Duration {
	GinkgoHelper()
	cqe, _, err := r.Command(nvme.GetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, nvme.SelCurrent), nil)
	s.mustOK(err, "Get Features Keep Alive Timer")
	return time.Duration(cqe.DW0) * time.Millisecond
}

// maxCheckWait bounds how long a check waits on a controller's timer
// (keep alive) beyond the check's own timeout; a timer that does not fit
// skips the check, saying so, rather than failing it.
const maxCheckWait = 3 * time.Minute

// commandOutcome renders how a target answered a command sent on a raw
// queue, in the words the checks compare: "success", "status SCT/SC",
// "C2HTermReq FES x FEI y" (the fatal-error path), "close" (the
// connection ended without one), "no reaction" (nothing within the
// wait), or the error itself.
func commandOutcome(err error) string {
	var st nvme.Status
	var term *tcp.PeerTerminated
	var ne net.Error
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &st):
		return StatusOutcome(st)
	case errors.As(err, &term):
		return fmt.Sprintf("C2HTermReq FES %#x FEI %#x", term.FES, term.FEI)
	case errors.As(err, &ne) && ne.Timeout():
		return "no reaction"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), isReset(err):
		return "close"
	}
	return "error " + err.Error()
}

// getKATO reads the Keep Alive Timer feature: the Keep Alive Timeout the
// controller uses.
func (s *Spec) getKATO(ctx context.Context, c *initiator.Controller) time.Duration {
	GinkgoHelper()
	dw0, err := c.GetFeatures(ctx, nvme.FeatKeepAliveTimer, 0, nvme.SelCurrent, 0, nil)
	s.mustOK(err, "Get Features Keep Alive Timer")
	return time.Duration(dw0) * time.Millisecond
}

// ctrattTBKAS is Identify Controller CTRATT bit 6, Traffic Based Keep
// Alive Support.
const ctrattTBKAS = 1 << 6

// rawIdentifyCtrl reads Identify Controller on an enabled raw admin queue.
func (s *Spec) rawIdentifyCtrl(r *initiator.Raw) *nvme.IdentifyController {
	GinkgoHelper()
	_, data, err := r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
	s.mustOK(err, "Identify Controller")
	var id nvme.IdentifyController
	s.mustOK(id.Decode(data), "decode Identify Controller")
	return &id
}

// sglsLongerThanData is Identify Controller SGLS bit 18: the controller
// accepts a data SGL longer than the requested data transfer length.
const sglsLongerThanData = 1 << 18
