package target

import (
	"time"

	"github.com/nvmftest/nvmftest/nvme"
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
		q.complete(c, nvme.StatusSuccess)
		// The receive loop sees the closed connection and cleans up.
		// Closing the tcp.Conn (not q.nc) lets the response go out.
		_ = q.conn.Uncork()
		_ = q.conn.Close()
	default:
		q.complete(c, nvme.StatusInvalidOpcode)
	}
}

func (q *queue) connectInvalid(c *command, inData bool, off uint16) {
	c.dw0 = nvme.ConnectInvalidParam(inData, off)
	c.ploc = off
	q.complete(c, nvme.StatusConnectInvalidParameters)
}

func (q *queue) connect(c *command) {
	t := q.t
	args := nvme.DecodeConnect(&c.sqe)
	var d nvme.ConnectData
	if err := d.Decode(c.buf); err != nil {
		q.complete(c, nvme.StatusSGLInvalidDataLength)
		return
	}
	if args.RECFMT != 0 {
		c.ploc = nvme.ConnectOffRECFMT
		q.complete(c, nvme.StatusConnectIncompatibleFormat)
		return
	}
	disc := d.SubNQN == nvme.DiscoveryNQN
	var sub *subsystem
	t.mu.Lock()
	if !disc {
		sub = t.findSubsystem(d.SubNQN)
	}
	t.mu.Unlock()
	switch {
	case disc && !q.port.cfg.servesDiscovery(),
		!disc && (sub == nil || !sub.onPort(q.port)):
		q.connectInvalid(c, true, nvme.ConnectDataOffSUBNQN)
		return
	}
	if sub != nil && !sub.hostAllowed(d.HostNQN) {
		c.dw0 = nvme.ConnectInvalidParam(true, nvme.ConnectDataOffHOSTNQN)
		c.ploc = nvme.ConnectDataOffHOSTNQN
		q.complete(c, nvme.StatusConnectInvalidHost)
		return
	}
	if args.SQSIZE == 0 || int(args.SQSIZE) >= t.cfg.QueueSize {
		q.connectInvalid(c, false, nvme.ConnectOffSQSIZE)
		return
	}
	if args.QID == 0 {
		if d.CNTLID != nvme.CNTLIDDynamic {
			q.connectInvalid(c, true, nvme.ConnectDataOffCNTLID)
			return
		}
		kato := time.Duration(args.KATO) * time.Millisecond
		if kato != 0 && (kato < t.cfg.MinKATO || (t.cfg.MaxKATO > 0 && kato > t.cfg.MaxKATO)) {
			q.connectInvalid(c, false, nvme.ConnectOffKATO)
			return
		}
		ctrl := t.newController(sub, q.port, d.HostNQN, d.HostID, kato)
		ctrl.mu.Lock()
		ctrl.queues[0] = q
		ctrl.mu.Unlock()
		q.install(ctrl, 0, args)
		t.log.Info("controller created", "cntlid", ctrl.cntlid, "subnqn", d.SubNQN, "host", d.HostNQN, "kato", kato)
	} else {
		t.mu.Lock()
		ctrl := t.ctrls[d.CNTLID]
		t.mu.Unlock()
		if ctrl == nil || ctrl.sub != sub || ctrl.disc || ctrl.host != d.HostNQN || ctrl.hostid != d.HostID {
			q.connectInvalid(c, true, nvme.ConnectDataOffCNTLID)
			return
		}
		ctrl.mu.Lock()
		switch {
		case int(args.QID) >= len(ctrl.queues):
			ctrl.mu.Unlock()
			q.connectInvalid(c, false, nvme.ConnectOffQID)
			return
		case ctrl.queues[args.QID] != nil || ctrl.dead:
			// nvmet: "qid already created" is a Command Sequence Error.
			ctrl.mu.Unlock()
			c.ploc = nvme.ConnectOffQID
			q.complete(c, nvme.StatusCommandSequenceError)
			return
		case !ctrl.enabled.Load():
			// I/O queues belong to an enabled controller (NVMe Base 2.0
			// 3.5.2: the host enables it, then creates them); nvmet does
			// not check this (suites FAB-IOQ-002).
			ctrl.mu.Unlock()
			q.complete(c, nvme.StatusCommandSequenceError)
			return
		}
		ctrl.queues[args.QID] = q
		ctrl.mu.Unlock()
		q.install(ctrl, args.QID, args)
	}
	c.dw0 = uint32(q.ctrl.cntlid) | q.authRequired(d.HostNQN, sub)
	q.complete(c, nvme.StatusSuccess)
}

// install makes q a queue of ctrl.
func (q *queue) install(ctrl *controller, qid uint16, args nvme.Connect) {
	q.ctrl = ctrl
	q.qid = qid
	q.size = uint32(args.SQSIZE) + 1
	q.flowOff = args.CATTR&nvme.CATTRDisableSQFlow != 0
	q.sqhd.Store(1 % q.size)
	q.limit = int32(q.size)
	if n := 2 * int(q.size); n > len(q.cmds) {
		q.grow(n)
	}
	// What a well-behaved host can have outstanding must fit in the
	// write backlog, so the receive loop never waits for the host to read.
	q.w.SetLimit(max(minBacklog, int(q.size)*(int(q.t.mdts)+64<<10)))
	if qid == 0 {
		q.conn.SetLimits(adminCapsuleData, q.t.maxH2C)
	} else {
		q.conn.SetLimits(q.t.icd, q.t.maxH2C)
	}
}

func (q *queue) propertyGet(c *command) {
	off, size8, _ := nvme.DecodeProperty(&c.sqe)
	ctrl := q.ctrl
	var v uint64
	ctrl.mu.Lock()
	switch {
	case size8 && off == nvme.PropCAP:
		v = ctrl.capReg()
	case !size8 && off == nvme.PropVS:
		v = uint64(q.t.vs)
	case !size8 && off == nvme.PropCC:
		v = uint64(ctrl.cc)
	case !size8 && off == nvme.PropCSTS:
		v = uint64(ctrl.csts)
	default:
		ctrl.mu.Unlock()
		c.ploc = 44
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	ctrl.mu.Unlock()
	c.dw0, c.dw1 = uint32(v), uint32(v>>32)
	q.complete(c, nvme.StatusSuccess)
}

func (q *queue) propertySet(c *command) {
	off, size8, v := nvme.DecodeProperty(&c.sqe)
	if size8 {
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
