package target

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// execFabrics runs Connect, Property Get/Set and Disconnect.
func (q *queue) execFabrics(c *command) {
	switch c.sqe.FCType() {
	case nvme.FabricsConnect:
		q.connect(c)
	case nvme.FabricsPropertyGet:
		q.propertyGet(c)
	case nvme.FabricsPropertySet:
		q.propertySet(c)
	case nvme.FabricsAuthSend:
		q.authSend(c)
	case nvme.FabricsAuthReceive:
		q.authReceive(c)
	case nvme.FabricsDisconnect:
		q.disconnect(c)
	default:
		q.complete(c, nvme.StatusInvalidOpcode)
	}
}

// disconnect deletes the queue. Its completion must be the last one on
// the queue and no command may be processed after it (NVMe Base 2.1 6.4):
// commands running on workers finish first and send their completions;
// those still waiting for data (an R2T sent, or waiting for budget) end
// with Command Aborted due to SQ Deletion; then the Disconnect completes
// and the connection closes.
func (q *queue) disconnect(c *command) {
	q.r2tMu.Lock()
	q.r2tStop = true
	var aborted []*command
	for _, l := range []*cmdList{&q.r2tWait, &q.r2tOut} {
		for l.head != nil {
			x := l.head
			l.remove(x)
			x.state = stateAbort
			aborted = append(aborted, x)
		}
	}
	q.r2tOutN.Store(0)
	q.r2tMu.Unlock()
	q.stopWorkers()
	if q.t.quirks.disconnectFirst {
		q.complete(c, nvme.StatusSuccess)
	}
	if q.t.quirks.disconnectDropsWaiting {
		// Ended as an abort ends them, but without their completions.
		for _, x := range aborted {
			q.outstanding.Add(-1)
			q.put(x)
		}
		aborted = nil
	}
	for _, x := range aborted {
		// The other half of a fused pair that has its data waits for
		// this one: it ends too.
		if p := x.peer; p != nil && p.state != stateAbort {
			p.peer, p.state = nil, stateAbort
			q.complete(p, nvme.StatusAbortSQDeleted)
		}
		x.peer = nil
		q.complete(x, nvme.StatusAbortSQDeleted)
	}
	if f := q.fuseFirst; f != nil {
		q.fuseFirst = nil
		q.orphan(f, nvme.StatusAbortSQDeleted)
	}
	if !q.t.quirks.disconnectFirst {
		q.complete(c, nvme.StatusSuccess)
	}
	if q.t.quirks.disconnectStrayResponse {
		stray := tcp.CapsuleResp{CQE: nvme.CQE{CID: 0xFFFF, SQID: q.qid}}
		_ = q.conn.Send(&stray, nil)
	}
	q.stopped = true
	// Closing the tcp.Conn (not q.nc) lets the responses go out.
	_ = q.conn.Uncork()
	_ = q.conn.Close()
	if q.qid == 0 {
		return
	}
	ctrl := q.ctrl
	ctrl.mu.Lock()
	indiv := ctrl.indivIOQDel
	ctrl.mu.Unlock()
	switch {
	case q.t.quirks.disconnectEndsAssoc:
		ctrl.kill("disconnect of an I/O queue (disconnect-ends-association)")
	case !indiv && !q.t.quirks.disconnectKeepsAssocHost:
		// NVMe Base 2.2 3.3.2.4: "If either the host or the controller
		// does not support deletion of an individual I/O Queue, then the
		// deletion of an individual I/O Queue ... causes the association
		// to be terminated." The host said so in its admin Connect.
		ctrl.kill("disconnect of an I/O queue; the admin Connect did not set CATTR.INDIVIOQDELS")
	}
}

// cattrIndivIOQDel is Connect CATTR bit 3, INDIVIOQDELS: the host supports
// deleting individual I/O queues (NVMe Base 2.2 Fig. 546).
const cattrIndivIOQDel = 1 << 3

// testHookConnectLookedUp, if set by a test, runs between a Connect's
// subsystem lookup and its controller's registration: the window a
// concurrent RemoveSubsystem must not slip through.
var testHookConnectLookedUp func()

// refusedConnect logs a refused Connect with its reason at the default
// level ("why can't my host connect?" must have an answer on the target
// side) and counts it by reason.
func (q *queue) refusedConnect(reason string, args nvme.Connect, d *nvme.ConnectData, extra ...any) {
	q.t.countRefused(reason)
	l := []any{"reason", reason, "remote", q.nc.RemoteAddr().String(), "port_id", q.port.cfg.PortID,
		"qid", args.QID, "cntlid", d.CNTLID, "subnqn", d.SubNQN, "host", d.HostNQN}
	q.t.log.Warn("connect refused", append(l, extra...)...)
}

func (q *queue) connectInvalid(c *command, inData bool, off uint16) {
	c.dw0 = nvme.ConnectInvalidParam(inData, off)
	c.ploc = off
	q.complete(c, nvme.StatusConnectInvalidParameters)
}

func (q *queue) connect(c *command) {
	t := q.t
	args := nvme.DecodeConnect(&c.sqe)
	if t.quirks.connectCIDTruncated {
		c.sqe.CID &= 0xFF
	}
	if t.quirks.fatalStreakRefuses && t.fatalStreak.Load() >= fatalStreakLimit {
		// Judged at the Connect, not at accept: by then every earlier
		// connection's fatal error has been counted (the host waited for
		// its C2HTermReq), so the streak does not race the dial.
		t.fatalStreak.Store(0)
		q.refusedConnect("fatal-streak-refuses quirk", args, &nvme.ConnectData{})
		_ = q.nc.Close()
		return
	}
	if q.ctrl != nil { // connect-duplicate-accepted only (prepareFabrics)
		c.dw0 = uint32(q.ctrl.cntlid)
		q.complete(c, nvme.StatusSuccess)
		return
	}
	var d nvme.ConnectData
	if err := d.Decode(c.buf); err != nil {
		q.refusedConnect("malformed connect data", args, &d)
		q.complete(c, nvme.StatusSGLInvalidDataLength)
		return
	}
	if args.RECFMT != 0 && !t.quirks.connectRECFMTIgnored {
		q.refusedConnect("incompatible format (RECFMT)", args, &d, "recfmt", args.RECFMT)
		c.ploc = nvme.ConnectOffRECFMT
		q.complete(c, nvme.StatusConnectIncompatibleFormat)
		return
	}
	if hostField := c.buf[nvme.ConnectDataOffHOSTNQN : nvme.ConnectDataOffHOSTNQN+nqnFieldLen]; !t.quirks.hostNQNUnchecked && hostField[0] != 0 && !validNQNField(hostField) {
		// An empty Host NQN is let through (to the host check below): it
		// is what SPDK's host tools send unless given one, and refusing
		// it would lock spdk_nvme_perf out of every subsystem; the
		// conformance checks send malformed names, never an empty one.
		// NVMe Base 2.2 6.3: Connect Invalid Parameters if "there is a
		// syntax error in the Host NQN or NVM Subsystem NQN value (refer
		// to section 4.7)". A Subsystem NQN with a syntax error names no
		// subsystem either, and is refused at SUBNQN below.
		q.refusedConnect("host NQN syntax", args, &d)
		q.connectInvalid(c, true, nvme.ConnectDataOffHOSTNQN)
		return
	}
	disc := d.SubNQN == nvme.DiscoveryNQN || d.SubNQN == t.discoveryNQN()
	var sub *subsystem
	t.mu.Lock()
	if !disc {
		sub = t.findSubsystem(d.SubNQN)
	}
	t.mu.Unlock()
	if testHookConnectLookedUp != nil {
		testHookConnectLookedUp()
	}
	switch {
	case disc && !q.port.cfg.servesDiscovery(),
		!disc && (sub == nil || !sub.onPort(q.port)):
		switch {
		case disc:
			q.refusedConnect("discovery not served on this port", args, &d)
		case sub == nil:
			q.refusedConnect("unknown subsystem", args, &d)
		default:
			q.refusedConnect("subsystem not exported on this port", args, &d)
		}
		if !disc && sub == nil && t.quirks.unknownSubNQNInvalidHost {
			q.complete(c, nvme.StatusConnectInvalidHost)
			return
		}
		q.connectInvalid(c, true, nvme.ConnectDataOffSUBNQN)
		return
	}
	if sub != nil && d.HostNQN == d.SubNQN && !t.quirks.hostEqualsSubAccepted {
		// NVMe Base 2.2 6.3: with DH-HMAC-CHAP supported (it is, for
		// every subsystem here), a Host NQN identical to the Subsystem NQN
		// "shall abort the command with a status code of Connect Invalid
		// Host".
		q.refusedConnect("host NQN equals subsystem NQN", args, &d)
		c.dw0 = nvme.ConnectInvalidParam(true, nvme.ConnectDataOffHOSTNQN)
		c.ploc = nvme.ConnectDataOffHOSTNQN
		q.complete(c, nvme.StatusConnectInvalidHost)
		return
	}
	if sub != nil && !sub.hostAllowed(d.HostNQN) {
		q.refusedConnect("host not allowed", args, &d)
		c.dw0 = nvme.ConnectInvalidParam(true, nvme.ConnectDataOffHOSTNQN)
		c.ploc = nvme.ConnectDataOffHOSTNQN
		q.complete(c, nvme.StatusConnectInvalidHost)
		return
	}
	if args.SQSIZE == 0 && !t.quirks.connectSQSIZEZero || int(args.SQSIZE) >= t.cfg.QueueSize && !(args.QID != 0 && t.quirks.ioqSQSIZEUnchecked) && !(args.QID == 0 && t.quirks.adminSQSIZEUnbounded) {
		q.refusedConnect("queue size", args, &d, "sqsize", args.SQSIZE, "max", t.cfg.QueueSize-1)
		q.connectInvalid(c, false, nvme.ConnectOffSQSIZE)
		return
	}
	if args.QID == 0 && int(args.SQSIZE) >= adminASQSZ && !t.quirks.adminSQSIZEUnbounded && !t.quirks.adminSQSIZEAboveASQSZ {
		// NVMe Base 2.2 3.3.3.1: "For Message-based controllers, the
		// maximum size for the Admin Submission Queue is limited by the
		// value indicated in the ASQSZ field in the Discovery Log Page
		// Entry"; Fig. 546: a larger SQSIZE gets Connect Invalid
		// Parameters (suites FAB-CONN-037).
		q.refusedConnect("admin queue size above ASQSZ", args, &d, "sqsize", args.SQSIZE, "asqsz", adminASQSZ)
		q.connectInvalid(c, false, nvme.ConnectOffSQSIZE)
		return
	}
	if args.QID == 0 && uint16(c.sqe.CDW13) != 0 && t.quirks.adminNVMSETIDChecked {
		q.refusedConnect("NVMSETID on an admin queue (connect-admin-nvmsetid-checked)", args, &d)
		q.connectInvalid(c, false, connectOffNVMSETID)
		return
	}
	if args.CATTR&nvme.CATTRDisableSQFlow != 0 && t.quirks.dissqfcRefused {
		q.refusedConnect("SQ flow control cannot be disabled (dissqfc-connect-refused)", args, &d)
		q.connectInvalid(c, false, nvme.ConnectOffCATTR)
		return
	}
	if args.QID == 0 {
		var want uint16 // a specific controller, in the static model
		switch {
		case sub != nil && t.quirks.staticModel:
			// NVMe Base 2.2 6.3: FFFEh asks for any static controller,
			// another ID for that one, and FFFFh is refused.
			switch {
			case d.CNTLID == nvme.CNTLIDStatic:
			case d.CNTLID >= 1 && d.CNTLID <= maxCNTLID && t.quirks.staticCNTLIDOther:
				// want 0: any free controller, whatever was named.
			case d.CNTLID >= 1 && d.CNTLID <= maxCNTLID:
				want = d.CNTLID
			default:
				q.refusedConnect("bad CNTLID", args, &d)
				q.connectInvalid(c, true, nvme.ConnectDataOffCNTLID)
				return
			}
		case d.CNTLID >= 0xFFF0 && d.CNTLID <= 0xFFFD && t.quirks.cntlidFFF0Accepted:
		case d.CNTLID != nvme.CNTLIDDynamic && !t.quirks.connectCNTLIDIgnored:
			q.refusedConnect("bad CNTLID (want FFFFh, the dynamic model)", args, &d)
			q.connectInvalid(c, true, nvme.ConnectDataOffCNTLID)
			return
		}
		kato := time.Duration(args.KATO) * time.Millisecond
		// Below min_kato the controller raises it (katoFor); above
		// max_kato it refuses.
		if t.cfg.MaxKATO > 0 && kato > t.cfg.MaxKATO ||
			t.quirks.katoAbove60sRefused && kato > time.Minute || disc && kato == 0 && t.quirks.discKATO0Refused ||
			!disc && kato == 0 && t.quirks.connectKATO0Refused {
			q.refusedConnect("keep alive timeout", args, &d, "kato", kato, "max_kato", t.cfg.MaxKATO)
			q.connectInvalid(c, false, nvme.ConnectOffKATO)
			return
		}
		if disc && kato != 0 && t.quirks.discoveryNonPersist {
			// A Discovery controller without explicit persistent
			// connections supports no Asynchronous Events, so it "shall
			// return a status value of Connect Invalid Parameters" for a
			// non-zero KATO (NVMe Base 2.2 3.1.3.3).
			q.refusedConnect("keep alive timeout (no explicit persistent discovery connections)", args, &d, "kato", kato)
			q.connectInvalid(c, false, nvme.ConnectOffKATO)
			return
		}
		if disc && kato == 0 {
			// A discovery host that asks for no keep alive gets the
			// Discovery controller activity timeout (NVMe Base 2.1
			// 3.1.3.3; nvmet and SPDK give 2 minutes): an anonymous
			// peer does not hold an association for ever.
			kato = t.cfg.DiscoveryKATO
		}
		ctrl, why := t.newController(sub, q.port, d.HostNQN, d.HostID, kato, want, q.nc.RemoteAddr().String())
		switch why {
		case admitRemoved:
			q.refusedConnect("subsystem removed", args, &d)
			q.connectInvalid(c, true, nvme.ConnectDataOffSUBNQN)
			return
		case admitHostLimit, admitNoControllerID:
			// Controller Busy is the status NVMe Base 2.1 gives for
			// "there is no available controller" (Figure 105, 81h);
			// Invalid Parameters would blame the host's fields.
			reason := "max_associations_per_host"
			if why == admitNoControllerID {
				reason = "every controller ID in use"
			}
			q.refusedConnect("controller busy: "+reason, args, &d)
			q.complete(c, nvme.StatusConnectControllerBusy)
			return
		}
		ctrl.mu.Lock()
		if ctrl.ended.Load() {
			// Ended (RemoveSubsystem, PortDown) before its admin queue
			// was in place, so kill could not close it: fail here.
			ctrl.mu.Unlock()
			t.mu.Lock()
			removed := sub != nil && sub.removed
			t.mu.Unlock()
			if removed {
				q.refusedConnect("subsystem removed", args, &d)
				q.connectInvalid(c, true, nvme.ConnectDataOffSUBNQN)
			} else {
				q.refusedConnect("controller busy: association ended", args, &d)
				q.complete(c, nvme.StatusConnectControllerBusy)
			}
			return
		}
		if disc && args.KATO != 0 && !t.quirks.discKATONoAEN {
			// A non-zero KATO asks for an explicit persistent connection
			// and its notices: the Discovery controller "shall enable
			// Asynchronous Discovery Log Event Notifications" (NVMe Base
			// 2.2 3.1.3.3.1).
			ctrl.aec = nvme.AECDiscovery
		}
		ctrl.queues[0] = q
		ctrl.indivIOQDel = args.CATTR&cattrIndivIOQDel != 0
		ctrl.mu.Unlock()
		q.install(ctrl, 0, args)
		t.associations.Add(1)
		// I/O controllers' lifecycle is at the default level; discovery
		// controllers come and go with every nvme discover: debug.
		lvl := slog.LevelInfo
		if disc {
			lvl = slog.LevelDebug
		}
		t.log.Log(context.Background(), lvl, "controller created", "cntlid", ctrl.cntlid, "subnqn", d.SubNQN, "host", d.HostNQN,
			"remote", ctrl.remote, "port_id", q.port.cfg.PortID, "kato", kato, "sqsize", args.SQSIZE)
	} else {
		t.mu.Lock()
		ctrl := t.ctrls[d.CNTLID]
		t.mu.Unlock()
		// NVMe Base 2.2 Fig. 547: on an I/O queue Connect a HOSTID of 0h
		// "the controller shall ignore"; the discovery log entries say
		// so (TREQ.ZHIDS; suites FAB-IOQ-013).
		hostIDOK := ctrl != nil && (ctrl.hostid == d.HostID || d.HostID == [16]byte{} && !t.quirks.ioqHostID0Refused)
		hostOK := ctrl != nil && (ctrl.host == d.HostNQN && hostIDOK || t.quirks.ioqHostUnchecked)
		if ctrl == nil && t.quirks.ioqUnknownCNTLIDSeqErr {
			q.refusedConnect("bad CNTLID (no such controller)", args, &d)
			q.complete(c, nvme.StatusCommandSequenceError)
			return
		}
		discIOQ := ctrl != nil && ctrl.disc && t.quirks.discIOQAccepted
		otherSub := ctrl != nil && ctrl.sub != sub && !(t.quirks.ioqOtherSubsystem && sub != nil && !ctrl.disc)
		if ctrl == nil || otherSub || ctrl.disc && !discIOQ || !hostOK {
			why := "bad CNTLID (no such controller)"
			switch {
			case ctrl == nil:
			case otherSub:
				why = "bad CNTLID (a controller of another subsystem)"
			case ctrl.disc && !discIOQ:
				why = "bad CNTLID (an I/O queue for a discovery controller)"
			default:
				why = "bad CNTLID (host NQN or host ID differ from the admin queue's)"
			}
			q.refusedConnect(why, args, &d)
			q.connectInvalid(c, true, nvme.ConnectDataOffCNTLID)
			return
		}
		ctrl.mu.Lock()
		switch {
		case int(args.QID) >= len(ctrl.queues) && t.quirks.ioqQIDUnbounded:
			ctrl.queues = append(ctrl.queues, make([]*queue, int(args.QID)+1-len(ctrl.queues))...)
		case int(args.QID) >= len(ctrl.queues):
			ctrl.mu.Unlock()
			if t.quirks.connectFailLogged {
				ctrl.logError(args.QID, &c.sqe, nvme.StatusConnectInvalidParameters, nvme.ConnectOffQID)
			}
			q.refusedConnect("QID above the queues granted", args, &d, "queues", len(ctrl.queues)-1)
			q.connectInvalid(c, false, nvme.ConnectOffQID)
			return
		case ctrl.queues[args.QID] != nil && !t.quirks.connectDuplicateAccepted || ctrl.ended.Load():
			// nvmet: "qid already created" is a Command Sequence Error.
			ctrl.mu.Unlock()
			q.refusedConnect("QID in use or association ended", args, &d)
			c.ploc = nvme.ConnectOffQID
			st := nvme.StatusCommandSequenceError
			if t.quirks.qidDupInvalidQID && !ctrl.ended.Load() {
				st = nvme.StatusInvalidQID // Base 2.1 names 01/01h for a QID in use
			}
			q.complete(c, st)
			return
		case !ctrl.enabled.Load() && !t.quirks.ioqBeforeEnable && !discIOQ:
			// NVMe Base 2.2 6.3: the controller "shall abort the command
			// with a status code of Connect Invalid Parameters if ... to
			// create an I/O Queue while the controller is disabled"; no
			// field is at fault, so no IATTR/IPO (suites FAB-IOQ-002).
			ctrl.mu.Unlock()
			q.refusedConnect("I/O queue before the controller is enabled", args, &d)
			q.complete(c, nvme.StatusConnectInvalidParameters)
			return
		}
		ctrl.queues[args.QID] = q
		ctrl.mu.Unlock()
		q.install(ctrl, args.QID, args)
		t.log.Debug("I/O queue connected", "cntlid", ctrl.cntlid, "qid", args.QID, "subnqn", d.SubNQN, "host", d.HostNQN,
			"remote", q.nc.RemoteAddr().String(), "sqsize", args.SQSIZE)
	}
	c.dw0 = uint32(q.ctrl.cntlid) | q.authRequired(d.HostNQN, sub)
	if t.quirks.fatalStreakRefuses {
		t.fatalStreak.Store(0)
	}
	if args.QID != 0 && t.quirks.ioqConnectDW0Zero {
		c.dw0 &^= 0xFFFF
	}
	if t.quirks.connectSQHDUnasked && !q.flowOff {
		// The Connect response alone says FFFFh; flow control stays on.
		q.flowOff = true
		q.complete(c, nvme.StatusSuccess)
		q.flowOff = false
		return
	}
	q.complete(c, nvme.StatusSuccess)
	q.flowOffAnswered.Store(true)
}

// adminASQSZ is the Admin Max SQ Size the discovery log entries report
// (entries): the largest admin queue an admin Connect may create.
const adminASQSZ = 32

// connectOffNVMSETID is the offset of the Connect SQE's NVMSETID (Fig. 546).
const connectOffNVMSETID = 52

// install makes q a queue of ctrl.
func (q *queue) install(ctrl *controller, qid uint16, args nvme.Connect) {
	q.ctrl = ctrl
	q.qid = qid
	if qid != 0 && !q.countedIO {
		q.countedIO = true
		q.t.ioQueuesChanged(1)
	}
	q.statQID.Store(uint32(qid))
	q.statCtrl.Store(ctrl)
	q.size = uint32(args.SQSIZE) + 1
	q.flowOff = args.CATTR&nvme.CATTRDisableSQFlow != 0 && !q.t.quirks.c2hSuccessKeepsFlow
	q.fetched.Store(1) // the Connect itself
	q.reported.Store(0)
	// The slots are made as commands come, up to MAXCMD or twice the
	// queue size, whichever is more (plus the AERs an admin queue holds).
	aers := 0
	if qid == 0 {
		aers = maxAER
	}
	q.slotMu.Lock()
	q.slotCap = min(0xFFFF, max(2*int(q.size), q.t.maxCmd())+aers)
	q.slotMu.Unlock()
	if qid == 0 {
		lim := uint32(adminCapsuleData)
		if q.t.quirks.adminInCapsule4K {
			lim = 4096
		}
		q.conn.SetLimits(lim, q.t.maxH2C)
	} else {
		q.conn.SetLimits(q.t.icd, q.t.maxH2C)
	}
}

func (q *queue) propertyGet(c *command) {
	off, size8, _ := nvme.DecodeProperty(&c.sqe)
	ctrl := q.ctrl
	if ctrl == nil { // pre-connect-commands-ok only (prepareFabrics)
		q.complete(c, nvme.StatusSuccess)
		return
	}
	if q.reservedPropertySize(c) {
		return
	}
	var v uint64
	anySize := q.t.quirks.propSizeUnchecked
	ctrl.mu.Lock()
	switch {
	case (size8 || anySize) && off == nvme.PropCAP && !q.t.quirks.capGetRefused:
		v = ctrl.capReg()
		if ctrl.capWritten != nil {
			v = *ctrl.capWritten
		}
	case (!size8 || anySize) && off == nvme.PropVS && !q.t.quirks.vsGetRefused:
		v = uint64(q.t.vs)
		if ctrl.vsWritten != nil {
			v = *ctrl.vsWritten
		}
		if q.t.quirks.vsUpperBytes && !size8 {
			v |= v << 32
		}
	case (!size8 || anySize) && off == nvme.PropCC:
		v = uint64(ctrl.cc)
		if q.t.quirks.ccReadbackNoEN {
			v &^= nvme.CCEnable
		}
		if q.t.quirks.ccReadbackENOnly {
			v &= nvme.CCEnable
		}
	case !size8 && off == nvme.PropCAP+4 && q.t.quirks.propertyMidOffset:
		v = ctrl.capReg() >> 32
	case (!size8 || anySize) && off == nvme.PropCSTS:
		v = uint64(ctrl.csts)
	case !size8 && off == propCRTO && !ctrl.disc && q.t.vs >= nvme.MakeVersion(2, 0, 0) && !q.t.quirks.crtoRefused:
		// CRTO, mandatory for I/O controllers since 2.0 (NVMe Base 2.2
		// Fig. 33): CRWMT is CAP.TO, which "shall be set to the value
		// in the CRTO.CRWMT field"; CRIMT is 0 (no CAP.CRMS.CRIMS).
		v = uint64(nvme.CAP(ctrl.capReg()).TO())
	case !size8 && off == 0x24 && q.t.quirks.reservedPropAQA:
		v = 0x001F001F // AQA as a PCIe controller holds it
	case q.t.quirks.reservedPropertyZero && reservedProperty(off):
		v = 0 // reserved properties read as 0
	default:
		ctrl.mu.Unlock()
		c.ploc = 44
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	ctrl.mu.Unlock()
	if anySize && !size8 {
		v = uint64(uint32(v))
	}
	c.dw0, c.dw1 = uint32(v), uint32(v>>32)
	q.complete(c, nvme.StatusSuccess)
}

// definedProperty reports whether off is the start of a property NVMe
// over Fabrics defines (CAP, VS, CC, CSTS, NSSR).
// reservedProperty reports whether off starts no defined property and lies
// inside none: a reserved property, which "returns 0h when read" (NVMe
// Base 2.2 3.1.4). Offsets inside a property (4h, the upper half of CAP)
// or off the dword grid are invalid offsets instead.
func reservedProperty(off uint32) bool {
	return !definedProperty(off) && off%4 == 0 && off != nvme.PropCAP+4
}

func definedProperty(off uint32) bool {
	switch off {
	case nvme.PropCAP, nvme.PropVS, nvme.PropCC, nvme.PropCSTS, 0x20:
		return true
	}
	return false
}

// reservedPropertySize fails a Property Get or Set whose ATTRIB size
// (PRS, PUS: bits 2:0) is a reserved value, 010b to 111b, and reports
// whether it did: "Receipt of reserved coded values in defined fields in
// commands shall be reported as an error" (NVMe Base 2.2 1.4.1.6, Figs.
// 552 and 554).
func (q *queue) reservedPropertySize(c *command) bool {
	if c.sqe.CDW10&7 <= nvme.PropertySize8 || q.t.quirks.propReservedSizeOK {
		return false
	}
	c.ploc = 40
	q.complete(c, nvme.StatusInvalidField)
	return true
}

func (q *queue) propertySet(c *command) {
	if q.reservedPropertySize(c) {
		return
	}
	off, size8, v := nvme.DecodeProperty(&c.sqe)
	if q.t.quirks.readOnlyPropWritable && (off == nvme.PropCAP && size8 || off == nvme.PropVS && !size8) {
		q.ctrl.mu.Lock()
		if off == nvme.PropCAP {
			q.ctrl.capWritten = &v
		} else {
			vs := uint64(uint32(v))
			q.ctrl.vsWritten = &vs
		}
		q.ctrl.mu.Unlock()
		q.complete(c, nvme.StatusSuccess)
		return
	}
	if off != nvme.PropCC && q.t.quirks.propSetReadOnlyOK && definedProperty(off) {
		q.complete(c, nvme.StatusSuccess) // and the value goes nowhere
		return
	}
	if size8 && !q.t.quirks.propSizeUnchecked {
		c.ploc = 40
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	if off != nvme.PropCC {
		// CAP, VS and CSTS are read-only; NSSR is not supported.
		c.ploc = 44
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	q.ctrl.setCC(uint32(v))
	q.complete(c, nvme.StatusSuccess)
}

// nqnFieldLen is the size of the Host NQN and Subsystem NQN fields of the
// Connect data (NVMe Base 2.2 Fig. 547).
const nqnFieldLen = 256

// validNQNField reports whether an NQN field of the Connect data holds a
// valid NQN (NVMe Base 2.2 4.7): NUL terminated within the field, at most
// 223 bytes, in the "nqn.yyyy-mm." form. The bytes after the NUL are not
// judged: 4.7 says nothing about them.
func validNQNField(b []byte) bool {
	n := bytes.IndexByte(b, 0)
	return n >= 0 && ValidNQN(string(b[:n]))
}
