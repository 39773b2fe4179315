package suites

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Helpers shared by the transport and fabrics areas: raw PDU surgery,
// fatal-error observation, and raw controller bring-up (Connect, enable,
// I/O queue) that the checks build their deliberate mistakes on.

// plainIC is the ICReq a check sends when it does not care: PFV 0, no
// alignment, no digests, one outstanding R2T.
var plainIC = tcp.ICReq{}

// fatalWait is how long a check waits for a target's reaction to a fatal
// error before calling it "no reaction".
func (s *Spec) fatalWait() time.Duration {
	t := s.Target.Config.Timeout
	if t <= 0 {
		t = DefaultStepTimeout
	}
	return min(t/2, 3*time.Second)
}

// OneOf passes when observed is want or one of the alternatives the spec
// equally allows (recording which one it was); otherwise it is Conform.
func (s *Spec) OneOf(observed, want string, alts ...string) {
	GinkgoHelper()
	if observed != want && slices.Contains(alts, observed) {
		AddReportEntry("observed", fmt.Sprintf("%s: %s (the spec also allows %q)", s.Req.ID, observed, want))
		return
	}
	s.Conform(observed, want)
}

// termAnswer is one C2HTermReq the spec allows as the reaction to a
// fatal error: its FES and, unless anyFEI, its FEI.
type termAnswer struct {
	fes    uint16
	fei    uint32
	anyFEI bool
}

// fesFEI allows a C2HTermReq with exactly this FES and FEI.
func fesFEI(fes uint16, fei uint32) termAnswer { return termAnswer{fes: fes, fei: fei} }

// fesAny allows a C2HTermReq with this FES and any FEI: for FES 02h, 04h
// and 05h the FEI is reserved, for 03h it holds the received digest.
func fesAny(fes uint16) termAnswer { return termAnswer{fes: fes, anyFEI: true} }

func (a termAnswer) String() string {
	if a.anyFEI {
		return termReqFES(a.fes)
	}
	return termReq(a.fes, a.fei)
}

func (a termAnswer) matches(t *tcp.TermReq) bool {
	return t != nil && t.FES == a.fes && (a.anyFEI || t.FEI == a.fei)
}

// ExpectFatal waits for the target's reaction to a fatal transport error
// on r and judges it: a C2HTermReq matching want or one of alts (each
// the spec allows) passes, naming which was seen. NVMe/TCP 1.0 3.5.1 asks
// the controller for the C2HTermReq only; terminating the connection is
// the host's duty, so the harness closes it (FatalOutcome) and never
// waits for the target to. Then a new connection must still work: a
// fatal error ends one connection, never the target.
func (s *Spec) ExpectFatal(ctx context.Context, r *initiator.Raw, want termAnswer, alts ...termAnswer) {
	GinkgoHelper()
	s.expectFatal(ctx, r, false, want, alts...)
}

// ExpectFatalOrProcessed is ExpectFatal for a PDU that breaks a rule
// binding the host (a "shall" on the sender) but that the controller can
// still read unambiguously, such as a PDO that is not a multiple of the
// CPDA alignment: the text names no reaction for the controller, so
// processing the command normally (a CapsuleResp) is allowed too, and
// reported. A fatal reaction must still carry an allowed FES and FEI, and
// silence is still a failure.
func (s *Spec) ExpectFatalOrProcessed(ctx context.Context, r *initiator.Raw, want termAnswer, alts ...termAnswer) {
	GinkgoHelper()
	s.expectFatal(ctx, r, true, want, alts...)
}

func (s *Spec) expectFatal(ctx context.Context, r *initiator.Raw, processedOK bool, want termAnswer, alts ...termAnswer) {
	GinkgoHelper()
	t, obs := actAsHost(r, s.fatalWait())
	if obs == noTermReq && s.Req.ID != termReqOwner && s.closesWithoutTermReq(ctx) {
		// One root cause, one failing check: a target that never sends
		// a C2HTermReq fails termReqOwner, and this check, which exists
		// to judge the FES and FEI, has none to judge. It still saw the
		// malformation handled as fatal, and the target must live on.
		s.TargetAlive(ctx)
		Skip(fmt.Sprintf("%s: the target ends connections without a C2HTermReq on every fatal error, so there is no FES or FEI to judge (%s judges the missing C2HTermReq once)", s.Req.ID, termReqOwner))
	}
	if processedOK && obs == "PDU "+tcp.TypeCapsuleResp.String() {
		AddReportEntry("observed", "the controller processed the command (a CapsuleResp), as the text allows: the rule binds the host and names no controller reaction")
		s.TargetAlive(ctx)
		return
	}
	all := append([]termAnswer{want}, alts...)
	altNames := make([]string, len(alts))
	for i, a := range alts {
		altNames[i] = a.String()
	}
	for _, a := range all {
		if a.matches(t) {
			obs = a.String()
			break
		}
	}
	if t != nil && !slices.ContainsFunc(all, func(a termAnswer) bool { return a.matches(t) }) &&
		!slices.ContainsFunc(all, func(a termAnswer) bool { return !a.anyFEI }) {
		// Only FES matters to this check: report the FES it got, as the
		// profiles record it.
		obs = termReqFES(t.FES)
	}
	s.OneOf(obs, want.String(), altNames...)
	s.TargetAlive(ctx)
}

// termReqOwner is the check that judges whether the controller reports a
// fatal error with a C2HTermReq at all (NVMe/TCP 1.0 3.5.1); noTermReq is
// the observation of a target that closes without one.
const (
	termReqOwner = "TCP-FATAL-006"
	noTermReq    = "close without C2HTermReq"
)

// referenceFatal is the fatal error termReqOwner provokes: a PDU of the
// reserved type 0Ah on a connected admin queue (TCP-PDU-002).
var referenceFatal = header(0x0A, 0, 24, 24)

// closesWithoutTermReq reports whether the target ends a connection
// without a C2HTermReq on the reference fatal error as well, i.e. as its
// rule rather than for one malformation. It asks once per run.
func (s *Spec) closesWithoutTermReq(ctx context.Context) bool {
	t := s.Target
	t.termReqMu.Lock()
	defer t.termReqMu.Unlock()
	if t.termReqRule == "" {
		t.termReqRule = "unknown"
		r, err := initiator.DialRaw(ctx, t.Config.Address, s.Options())
		if err != nil {
			return false
		}
		defer r.Close()
		if _, err := r.Initialize(plainIC); err != nil {
			return false
		}
		if _, err := s.adminConnect(r); err != nil {
			return false
		}
		sendQuiet(r, referenceFatal)
		_, t.termReqRule = actAsHost(r, s.fatalWait())
	}
	return t.termReqRule == noTermReq
}

// TargetAlive fails the check unless a fresh connection can be initialized
// and Connect to the admin queue of SubNQN succeeds.
func (s *Spec) TargetAlive(ctx context.Context) {
	GinkgoHelper()
	r, err := initiator.DialRaw(ctx, s.Target.Config.Address, s.Options())
	if err != nil {
		Fail(fmt.Sprintf("%s: after the error the target no longer accepts connections: %v", s.Req.ID, err))
	}
	defer r.Close()
	if _, err := r.Initialize(plainIC); err != nil {
		s.skipIfICRespRefused(err)
		Fail(fmt.Sprintf("%s: after the error a new connection cannot be initialized: %v", s.Req.ID, err))
	}
	if _, err := r.ConnectAdmin(s.Target.Config.SubNQN, s.hostNQN()); err != nil {
		Fail(fmt.Sprintf("%s: after the error a new admin Connect fails: %v", s.Req.ID, err))
	}
}

// Must fails the check with what when err is not nil.
func (s *Spec) Must(err error, what string) {
	GinkgoHelper()
	if err != nil {
		Fail(fmt.Sprintf("%s: %s: %v", s.Req.ID, what, err))
	}
}

// Send sends b on r; a connection the target already closed is not an
// error here (the check looks at the reaction next).
func sendQuiet(r *initiator.Raw, b []byte) { _ = r.SendBytes(b) }

// encode lays p out as the connection negotiated.
func encode(r *initiator.Raw, p tcp.PDU, data []byte) []byte {
	return tcp.AppendPDU(nil, p, data, r.Encoding())
}

// rehash recomputes the header digest of PDU b after its header was
// edited, when the connection uses header digests.
func rehash(r *initiator.Raw, b []byte) []byte {
	t := tcp.PDUType(b[0])
	if !r.Encoding().Header || t == tcp.TypeICReq || t == tcp.TypeH2CTermReq {
		return b
	}
	hlen := int(b[2])
	if hlen <= 0 || hlen+tcp.DigestSize > len(b) || b[1]&tcp.FlagHDGST == 0 {
		return b
	}
	binary.LittleEndian.PutUint32(b[hlen:], tcp.Checksum(b[:hlen]))
	return b
}

// setPLEN sets the PLEN of PDU b.
func setPLEN(b []byte, plen uint32) { binary.LittleEndian.PutUint32(b[4:], plen) }

// repad moves the data of PDU b (header digest included in hdrLen) from
// its PDO to pdo, fixing PLEN; pdo may be anything, legal or not.
func repad(b []byte, pdo int) []byte {
	old := int(b[3])
	hdrLen := int(b[2])
	if b[1]&tcp.FlagHDGST != 0 {
		hdrLen += tcp.DigestSize
	}
	rest := b[old:]
	out := make([]byte, 0, max(pdo, hdrLen)+len(rest))
	out = append(out, b[:min(hdrLen, pdo, len(b))]...)
	if pdo < hdrLen {
		// The data starts inside the header: the target sees PLEN say
		// pdo+data, which is what an illegal PDO looks like on the wire.
		out = append(b[:hdrLen:hdrLen], rest...)
		out[3] = byte(pdo)
		setPLEN(out, uint32(len(out)))
		return out
	}
	out = append(out, make([]byte, pdo-len(out))...)
	out = append(out, rest...)
	out[3] = byte(pdo)
	setPLEN(out, uint32(len(out)))
	return out
}

// connectCapsule is an admin-queue Connect (dynamic controller) with its
// 1024 bytes of Connect data in the capsule, encoded as r negotiated: the
// first capsule of a connection, before any association exists.
func (s *Spec) connectCapsule(r *initiator.Raw) []byte {
	return s.connectCapsuleWith(r, r.Encoding())
}

// connectCapsuleWith is connectCapsule encoded with o, legal or not.
func (s *Spec) connectCapsuleWith(r *initiator.Raw, o tcp.EncodeOptions) []byte {
	cd := nvme.ConnectData{HostID: s.hostID(s.hostNQN()), CNTLID: nvme.CNTLIDDynamic, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
	cmd := nvme.Connect{SQSIZE: initiator.AdminQueueSize - 1}
	return tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: cmd.SQE(r.NextCID())}, cd.Append(nil), o)
}

// pdoBeyondPLEN cuts PDU b (a capsule with data, no digests) to plen
// bytes and sets its PDO to pdo > plen: data that starts after the PDU
// ends.
func pdoBeyondPLEN(b []byte, pdo uint8, plen uint32) []byte {
	out := append([]byte(nil), b[:plen]...)
	out[3] = pdo
	setPLEN(out, plen)
	return out
}

// processWait is how long TCP-FATAL-003 waits for a response that a
// controller which stopped processing never sends: ample for a command
// that needs no media access.
const processWait = time.Second

// hostTermGrace is how long NVMe/TCP 1.0 3.5.1 lets a controller take to
// terminate the connection after an H2CTermReq before the host "may
// terminate the connection" itself.
const hostTermGrace = 30 * time.Second

// awaitTermination waits up to grace for the target to end the
// connection: "connection terminated" (closed or reset), or "connection
// still open after ..." . PDUs that arrive first are noted, not judged.
func awaitTermination(r *initiator.Raw, grace time.Duration) string {
	deadline := time.Now().Add(grace)
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Sprintf("connection still open after %v", grace)
		}
		p, _, _, err := r.Recv(wait)
		if err == nil {
			AddReportEntry("observed", fmt.Sprintf("before terminating the connection the target sent a %v", p.Type()))
			continue
		}
		if fatalErrOutcome(err) == "no reaction" {
			return fmt.Sprintf("connection still open after %v", grace)
		}
		return "connection terminated"
	}
}

// header builds a bare common header (and zero type-specific bytes) of
// hlen bytes with PLEN plen.
func header(t tcp.PDUType, flags, hlen uint8, plen uint32) []byte {
	b := make([]byte, max(int(hlen), tcp.CommonHeaderSize))
	ch := tcp.CommonHeader{Type: t, Flags: flags, HLEN: hlen, PLEN: plen}
	ch.Put(b)
	return b
}

// ConnectOutcome renders a Connect result: Outcome, and for Connect
// Invalid Parameters the IATTR and IPO the controller reported, e.g.
// "status 0x1/0x82 IATTR 1 IPO 256".
func ConnectOutcome(cqe nvme.CQE, err error) string {
	o := Outcome(err)
	var st nvme.Status
	if errors.As(err, &st) && st.Code() == nvme.StatusConnectInvalidParameters {
		in, off := nvme.DecodeConnectInvalidParam(cqe.DW0)
		iattr := 0
		if in {
			iattr = 1
		}
		o += fmt.Sprintf(" IATTR %d IPO %d", iattr, off)
	}
	return o
}

// connectArgs is one Connect command, as legal or not as a check needs.
type connectArgs struct {
	RECFMT, QID, SQSIZE uint16
	CATTR               uint8
	// KATO of an admin Connect; 0 sends rawAdminKATO unless KATOZero.
	KATO            uint32
	KATOZero        bool // send KATO 0 on an admin Connect, as asked
	CNTLID          uint16
	SubNQN, HostNQN string
	HostID          *[16]byte
	DataLen         int // 0: 1024
}

// rawAdminKATO is the KATO of the raw admin Connects to the subsystem
// under test: NVMe/TCP requires keep alive (NVMe/TCP 1.0 3.4) and a
// command that clears KATO to 0h there "shall" be aborted with Keep Alive
// Timeout Invalid (NVMe Base 2.2 3.9.1), Connect included, so a Connect
// with KATO 0 may be refused (FAB-CONN-031 judges how). The timer, which
// a Keep Alive restarts (and without Traffic Based Keep Alive nothing
// else), must outlast the check that keeps the raw admin queue enabled:
// twice the check's time bound, and at least 30 s. That stays below a
// minute for the default bound, so that a controller with a lower
// maximum KATO than the text allows fails FAB-CONN-013 alone.
func (s *Spec) rawAdminKATO() uint32 {
	t := s.Target.Config.Timeout
	if t <= 0 {
		t = DefaultStepTimeout
	}
	return uint32(max(2*t, 30*time.Second) / time.Millisecond)
}

// connect sends the Connect a describes on r; an admin Connect that names
// no KATO gets rawAdminKATO.
func (s *Spec) connect(r *initiator.Raw, a connectArgs) (nvme.CQE, error) {
	if a.SubNQN == "" {
		a.SubNQN = s.Target.Config.SubNQN
	}
	if a.HostNQN == "" {
		a.HostNQN = s.hostNQN()
	}
	hostID := s.hostID(s.hostNQN())
	if a.HostID != nil {
		hostID = *a.HostID
	}
	if a.QID == 0 && a.KATO == 0 && !a.KATOZero {
		a.KATO = s.rawAdminKATO()
	}
	cd := nvme.ConnectData{HostID: hostID, CNTLID: a.CNTLID, SubNQN: a.SubNQN, HostNQN: a.HostNQN}
	data := cd.Append(nil)
	cmd := nvme.Connect{RECFMT: a.RECFMT, QID: a.QID, SQSIZE: a.SQSIZE, CATTR: a.CATTR, KATO: a.KATO}
	sqe := cmd.SQE(0)
	if a.DataLen > 0 {
		data = data[:a.DataLen]
		sqe.DPTR.Length = uint32(a.DataLen)
	}
	cqe, _, err := r.Command(sqe, data)
	return cqe, err
}

// hostID is Config.HostID, or one derived from the host NQN (stable, so
// the admin and I/O Connects of a check agree).
func (s *Spec) hostID(hostnqn string) [16]byte {
	if id := s.Target.Config.HostID; id != ([16]byte{}) {
		return id
	}
	sum := sha256.Sum256([]byte("nvmftest-conform:" + hostnqn))
	var id [16]byte
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// rawAdmin is Raw plus a successful admin Connect (with the suite's host
// ID); it returns the CNTLID.
func (s *Spec) rawAdmin(ctx context.Context, req tcp.ICReq) (*initiator.Raw, uint16) {
	GinkgoHelper()
	r := s.Raw(ctx, req)
	cqe, err := s.adminConnect(r)
	s.Must(err, "admin Connect")
	return r, uint16(cqe.DW0)
}

// adminConnect is connect for the admin queue with legal values: any
// controller, CNTLID FFFFh, or FFFEh when a static-model subsystem
// refuses FFFFh at CNTLID (NVMe Base 2.2 6.3), so that checks judging
// something else work on either model.
func (s *Spec) adminConnect(r *initiator.Raw) (nvme.CQE, error) {
	return s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1})
}

// propGet is Property Get on r.
func propGet(r *initiator.Raw, off uint32, size8 bool) (uint64, error) {
	cqe, _, err := r.Command(nvme.PropertyGetCmd(0, off, size8), nil)
	return nvme.PropertyValue(&cqe), err
}

// propSet is Property Set on r.
func propSet(r *initiator.Raw, off uint32, size8 bool, v uint64) error {
	_, _, err := r.Command(nvme.PropertySetCmd(0, off, size8, v), nil)
	return err
}

// ccEnable is CC with EN and the entry sizes and command set every NVMe
// controller accepts (IOSQES 6, IOCQES 4, CSS NVM).
const ccEnable = 6<<16 | 4<<20 | nvme.CCEnable

// readyTimeout is CAP.TO as a duration (at least 500 ms).
func readyTimeout(cp nvme.CAP) time.Duration {
	return time.Duration(max(int(cp.TO()), 1)) * 500 * time.Millisecond
}

// waitCSTS polls CSTS on r until CSTS&mask == want or timeout passes; it
// returns the last CSTS read.
func waitCSTS(ctx context.Context, r *initiator.Raw, mask, want uint32, timeout time.Duration) (uint32, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := propGet(r, nvme.PropCSTS, false)
		if err != nil {
			return 0, false, err
		}
		if uint32(v)&mask == want {
			return uint32(v), true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return uint32(v), false, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// EnabledAdmin is RawAdmin plus CC.EN=1 and CSTS.RDY=1: a controller ready
// for admin commands and I/O queue Connects. It returns the raw admin
// connection, the CNTLID and CAP.
func (s *Spec) EnabledAdmin(ctx context.Context, req tcp.ICReq) (*initiator.Raw, uint16, nvme.CAP) {
	GinkgoHelper()
	r, cntlid := s.rawAdmin(ctx, req)
	v, err := propGet(r, nvme.PropCAP, true)
	s.mustProperty(err, nvme.PropCAP)
	cp := nvme.CAP(v)
	s.Must(propSet(r, nvme.PropCC, false, ccEnable), "Property Set CC.EN=1")
	s.waitReady(ctx, r, cp)
	return r, cntlid, cp
}

// IOQueue opens a raw connection with req and connects it as I/O queue qid
// of controller cntlid, with queue size sqsize+1.
func (s *Spec) IOQueue(ctx context.Context, req tcp.ICReq, cntlid, qid, sqsize uint16) *initiator.Raw {
	GinkgoHelper()
	r := s.Raw(ctx, req)
	_, err := s.connect(r, connectArgs{QID: qid, SQSIZE: sqsize, CNTLID: cntlid})
	s.Must(err, fmt.Sprintf("Connect I/O queue %d", qid))
	return r
}

// firstNamespace returns the first active namespace of the controller
// behind an enabled raw admin queue, with its Identify Namespace; the
// check needs one (Lacks otherwise).
func (s *Spec) firstNamespace(admin *initiator.Raw) (uint32, *nvme.IdentifyNamespace) {
	GinkgoHelper()
	_, list, err := admin.Command(nvme.IdentifyCmd(nvme.CNSActiveNSList, 0, 0), nil)
	s.Must(err, "Identify active namespace list")
	ids := nvme.DecodeNSList(list)
	if len(ids) == 0 {
		s.Lacks("an active namespace")
	}
	_, data, err := admin.Command(nvme.IdentifyCmd(nvme.CNSNamespace, ids[0], 0), nil)
	s.Must(err, "Identify Namespace")
	var ns nvme.IdentifyNamespace
	s.Must(ns.Decode(data), "decode Identify Namespace")
	return ids[0], &ns
}

// identifyCtrl reads Identify Controller on an enabled raw admin queue.
func (s *Spec) identifyCtrl(r *initiator.Raw) *nvme.IdentifyController {
	GinkgoHelper()
	sqe := nvme.IdentifyCmd(nvme.CNSController, 0, 0)
	_, data, err := r.Command(sqe, nil)
	s.Must(err, "Identify Controller")
	var id nvme.IdentifyController
	s.Must(id.Decode(data), "decode Identify Controller")
	return &id
}

// ioSetup is what the checks that move write data need: an enabled
// controller, its Identify data, the writable namespace and its block
// size, and I/O queue 1 on a connection initialized with req.
type ioSetup struct {
	admin *initiator.Raw
	io    *initiator.Raw
	id    *nvme.IdentifyController
	cap   nvme.CAP
	nsid  uint32
	bs    uint32
}

// maxTransfer is the largest data transfer of one command (0: no limit).
func (io *ioSetup) maxTransfer() uint64 {
	if io.id.MDTS == 0 {
		return 0
	}
	return uint64(4096) << io.cap.MPSMIN() << io.id.MDTS
}

// inCapsule is the largest in-capsule data of an I/O command.
func (io *ioSetup) inCapsule() uint32 {
	if io.id.IOCCSZ <= 4 {
		return 0
	}
	return io.id.IOCCSZ*16 - nvme.SQESize
}

// SetupIO builds an ioSetup; it skips the check unless writes are allowed.
func (s *Spec) SetupIO(ctx context.Context, req tcp.ICReq) *ioSetup {
	GinkgoHelper()
	st, cntlid := s.ioAdmin(ctx)
	st.io = s.IOQueue(ctx, req, cntlid, 1, min(31, st.cap.MQES()))
	return st
}

// ioAdmin is the admin side of an ioSetup (its io left to the caller) and
// the controller's ID: an enabled admin queue, the controller identified,
// the writable namespace checked active. It skips the check unless writes
// are allowed, or when MQES leaves no room for an I/O queue.
func (s *Spec) ioAdmin(ctx context.Context) (*ioSetup, uint16) {
	GinkgoHelper()
	nsid := s.RequireWritable()
	admin, cntlid, cp := s.EnabledAdmin(ctx, plainIC)
	id := s.identifyCtrl(admin)
	_, data, err := admin.Command(nvme.IdentifyCmd(nvme.CNSNamespace, nsid, 0), nil)
	s.Must(err, fmt.Sprintf("Identify Namespace %d", nsid))
	var ns nvme.IdentifyNamespace
	s.Must(ns.Decode(data), "decode Identify Namespace")
	if ns.NSZE == 0 {
		Fail(fmt.Sprintf("%s: namespace %d (--allow-writes) is not active", s.Req.ID, nsid))
	}
	s.skipIfMQESZero(cp)
	return &ioSetup{admin: admin, id: id, cap: cp, nsid: nsid, bs: ns.BlockSize()}, cntlid
}

// r2tSize is the smallest write that a controller must move by R2T:
// more than its in-capsule limit, a whole number of blocks (at least
// min bytes).
func (io *ioSetup) r2tSize(min uint32) uint32 {
	n := (io.inCapsule()/io.bs + 1) * io.bs
	for n < min {
		n += io.bs
	}
	return n
}

// writeCmd is a Write of n bytes at LBA 0 whose data moves by R2T.
func (io *ioSetup) writeCmd(r *initiator.Raw, n uint32) nvme.SQE {
	sqe := nvme.WriteCmd(io.nsid, 0, n/io.bs)
	nvme.SetDataLength(&sqe, n)
	sqe.CID = r.NextCID()
	return sqe
}

// startWrite sends a Write of n bytes with no in-capsule data and waits
// for the controller's first R2T.
func (s *Spec) startWrite(io *ioSetup, n uint32) (nvme.SQE, *tcp.R2T) {
	GinkgoHelper()
	sqe := io.writeCmd(io.io, n)
	s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Write")
	p, _, _, err := io.io.Recv(0)
	s.Must(err, "waiting for the R2T of a Write without in-capsule data")
	r2t, ok := p.(*tcp.R2T)
	if !ok {
		Fail(fmt.Sprintf("%s: a Write without in-capsule data got %v, not an R2T", s.Req.ID, p.Type()))
	}
	return sqe, r2t
}

// h2cData encodes one H2CData PDU on r.
func h2cData(r *initiator.Raw, cccid, ttag uint16, datao uint32, data []byte, last bool) []byte {
	return encode(r, &tcp.H2CData{CCCID: cccid, TTAG: ttag, DATAO: datao, DATAL: uint32(len(data)), Last: last}, data)
}

// awaitResponse reads until the response to cid and renders its outcome;
// a fatal reaction renders as FatalOutcome would.
func awaitResponse(r *initiator.Raw, cid uint16, wait time.Duration) string {
	for {
		p, _, _, err := r.Recv(wait)
		if err != nil {
			if errors.Is(err, tcp.ErrDataDigest) {
				return "C2HData with a bad data digest"
			}
			return fatalErrOutcome(err)
		}
		switch v := p.(type) {
		case *tcp.CapsuleResp:
			if v.CQE.CID != cid {
				continue
			}
			return StatusOutcome(v.CQE.Status)
		case *tcp.C2HData:
			if v.Success && v.CCCID == cid {
				return "success"
			}
		case *tcp.TermReq:
			return fmt.Sprintf("C2HTermReq FES %#x FEI %#x", v.FES, v.FEI)
		}
	}
}

// fatalErrOutcome renders a receive error as FatalOutcome does: "no
// reaction" for a timeout, "close without C2HTermReq" for a connection
// the target closed or reset, "invalid PDU from the target: ..." for a
// PDU the host must treat as a fatal error, else "error ...".
func fatalErrOutcome(err error) string {
	var ne net.Error
	var fe *tcp.FatalError
	var pt *tcp.PeerTerminated
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &ne) && ne.Timeout():
		return "no reaction"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), isReset(err):
		return "close without C2HTermReq"
	case errors.As(err, &fe):
		return "invalid PDU from the target: " + fe.Reason
	case errors.As(err, &pt):
		return termReq(pt.FES, pt.FEI)
	}
	return "error " + err.Error()
}

// nextAnswersNext sends a Property Get after a C2HData with SUCCESS
// completed the command done, and judges that the next PDU on the queue
// is that Property Get's response: no Response Capsule for done may
// follow (NVMe/TCP 1.0 3.3.2.1).
func (s *Spec) nextAnswersNext(r *initiator.Raw, done uint16) {
	pg := nvme.PropertyGetCmd(r.NextCID(), nvme.PropVS, false)
	s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: pg}, nil), "send Property Get")
	p, _, _, err := r.Recv(0)
	s.Must(err, "receive the Property Get response")
	obs := "the next command's response"
	switch resp, ok := p.(*tcp.CapsuleResp); {
	case !ok:
		obs = "PDU " + p.Type().String()
	case resp.CQE.CID == done:
		obs = "a Response Capsule after C2HData SUCCESS"
	case resp.CQE.CID != pg.CID:
		obs = fmt.Sprintf("a response for CID %d", resp.CQE.CID)
	}
	s.Conform(obs, "the next command's response")
}
