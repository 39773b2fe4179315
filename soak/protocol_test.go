//go:build linux

package soak

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// --- abrupt: connections that vanish mid-transfer ----------------------

func runAbrupt(a *actor) {
	for a.pause(a.randDur(100*time.Millisecond, 500*time.Millisecond)) {
		switch a.rng.IntN(5) {
		case 0:
			a.abruptHost()
		case 1:
			const v = "reset in the middle of in-capsule data"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			sqe := writeSQE(0, scratchLBA(0), 32, true)
			a.sendPrefix(ioq, ioq.capsule(&sqe, make([]byte, 32*512)), tcp.HLenCapsuleCmd)
			ioq.close(true)
			admin.close(a.rng.IntN(2) == 0)
		case 2:
			const v = "reset in the middle of H2CData"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			if r := writeByR2T(ioq, mdts/4096); r != nil {
				h := &tcp.H2CData{CCCID: r.CCCID, TTAG: r.TTAG, DATAL: ioq.ICResp.MAXH2CDATA}
				a.sendPrefix(ioq, ioq.bytesOf(h, make([]byte, h.DATAL)), tcp.HLenData)
			}
			ioq.close(true)
			admin.close(a.rng.IntN(2) == 0)
		case 3:
			const v = "reset while C2HData flows"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			for range 8 {
				_, _ = ioq.send(readSQE(1, 0, mdts/4096), nil)
			}
			time.Sleep(a.randDur(0, 20*time.Millisecond))
			ioq.close(true)
			admin.close(a.rng.IntN(2) == 0)
		case 4:
			const v = "admin queue reset while its I/O queue transfers"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			for range 8 {
				_, _ = ioq.send(readSQE(1, 0, mdts/4096), nil)
			}
			admin.close(true)
			// Ending the admin queue ends the association: the I/O queue
			// must go too.
			a.expectEndedNow(ioq, whyAssocEnd, v)
		}
	}
}

// writeByR2T announces on ioq a write of nlb scratch blocks of namespace
// index 1, its data to move by R2T, and waits for the target's R2T for it
// (nil if none comes).
func writeByR2T(ioq *peer, nlb uint32) *tcp.R2T {
	cid, _ := ioq.send(writeSQE(1, scratchLBA(1), nlb, false), nil)
	var r2t *tcp.R2T
	_ = ioq.readUntil(time.Now().Add(peerWait), func(pdu tcp.PDU) bool {
		r, ok := pdu.(*tcp.R2T)
		if ok && r.CCCID == cid {
			r2t = r
		}
		return r2t == nil
	})
	return r2t
}

// h2cFor is the H2CData that answers all of r in one PDU.
func h2cFor(r *tcp.R2T) *tcp.H2CData {
	return &tcp.H2CData{CCCID: r.CCCID, TTAG: r.TTAG, DATAL: r.R2TL, Last: true}
}

// abruptHost runs a real host with large I/O in flight on its own region
// and closes one of its connections under it; the I/O fails, as it must.
func (a *actor) abruptHost() {
	const v = "host connection closed under large I/O"
	a.misbehave(v)
	s := a.s
	name := a.id() + "-host"
	opts := initiator.Options{HostNQN: hostNQN(name), HostID: hostID(name), KATO: hostKATO, NrIOQueues: 2, QueueSize: 32, Timeout: hostTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), connectWait)
	defer cancel()
	s.gate.RLock()
	c, err := initiator.Connect(ctx, s.addr[portAll], soakNQN, opts)
	s.gate.RUnlock()
	if err != nil {
		a.setupFailed(v, err)
		return
	}
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		seed := a.rng.Uint64()
		wg.Go(func() {
			i := g % len(namespaces)
			ns := namespaces[i]
			rb := ns.size / uint64(ns.bs) / regions
			nlb := uint32(mdts/ns.bs) >> (seed % 4)
			buf := make([]byte, int(nlb)*int(ns.bs))
			q := c.IOQueues()[g%len(c.IOQueues())]
			for k := uint64(0); time.Now().Before(stop); k++ {
				lba := uint64(regionAbrupt)*rb + (seed+k*uint64(nlb))%(rb-uint64(nlb))
				var err error
				if (seed+k)%2 == 0 {
					err = q.Write(ctx, ns.nsid, lba, nlb, buf)
				} else {
					err = q.Read(ctx, ns.nsid, lba, nlb, buf)
				}
				if err != nil {
					return
				}
			}
		})
	}
	time.Sleep(a.randDur(20*time.Millisecond, 400*time.Millisecond))
	qs := append([]*initiator.Queue{c.Admin()}, c.IOQueues()...)
	_ = qs[a.rng.IntN(len(qs))].Conn().NetConn().Close()
	wg.Wait()
	done := make(chan struct{})
	go func() { _ = c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		a.violate("close hung", fmt.Sprintf("%s: Close still running after %v", v, closeWait))
	}
}

// --- termreq: the host terminates ------------------------------------

func runTermReq(a *actor) {
	for a.pause(a.randDur(50*time.Millisecond, 300*time.Millisecond)) {
		tr := &tcp.TermReq{H2C: true, FES: uint16(1 + a.rng.IntN(6)), FEI: a.rng.Uint32()}
		switch a.rng.IntN(5) {
		case 0:
			const v = "TermReq instead of ICReq"
			a.misbehave(v)
			p, err := a.dial(a.pickPort())
			if err != nil {
				continue
			}
			_ = p.SendPDU(tr, nil, tcp.EncodeOptions{})
			a.expectEndedNow(p, whyFatal, v)
		case 1:
			const v = "TermReq after ICReq"
			a.misbehave(v)
			p := a.initializedFor(v, a.pickPort(), 0)
			if p == nil {
				continue
			}
			_ = p.SendPDU(tr, nil, tcp.EncodeOptions{})
			a.expectEndedNow(p, whyFatal, v)
		case 2:
			const v = "TermReq after Connect"
			a.misbehave(v)
			p := a.adminFor(v, portAll, soakNQN, 0)
			if p == nil {
				continue
			}
			_ = p.SendPDU(tr, nil, tcp.EncodeOptions{})
			a.expectEndedNow(p, whyFatal, v)
		case 3:
			const v = "TermReq instead of H2CData"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			writeByR2T(ioq, 16)
			// Its data: the header of the last PDU received (the R2T, if
			// one came), as a TermReq carries the header it objects to.
			_ = ioq.SendPDU(tr, ioq.Conn.RawHeader(), tcp.EncodeOptions{})
			a.expectEndedNow(ioq, whyFatal, v, admin)
		case 4:
			const v = "TermReq claiming 1 MiB"
			a.misbehave(v)
			p := a.initializedFor(v, portAll, 0)
			if p == nil {
				continue
			}
			b := make([]byte, 24)
			ch := tcp.CommonHeader{Type: tcp.TypeH2CTermReq, HLEN: 24, PLEN: 1 << 20}
			ch.Put(b)
			_ = p.SendBytes(b)
			// Either the header is refused at once or the rest never
			// comes: ic_timeout bounds both.
			a.finish(p, true, p.born, icTimeout, whyIC, v)
		}
	}
}

// --- baddigest: digests that do not match ----------------------------

const bothDigests = tcp.DgstHeader | tcp.DgstData

// corrupt flips a bit of b at off.
func corrupt(b []byte, off int) []byte {
	b[off] ^= 0x10
	return b
}

func runBadDigest(a *actor) {
	for a.pause(a.randDur(50*time.Millisecond, 300*time.Millisecond)) {
		switch a.rng.IntN(6) {
		case 0:
			const v = "bad header digest on Connect"
			a.misbehave(v)
			p := a.initializedFor(v, portAll, bothDigests)
			if p == nil {
				continue
			}
			c := nvme.Connect{SQSIZE: 31}
			sqe := c.SQE(0)
			_ = p.SendBytes(corrupt(p.capsule(&sqe, p.connectData(soakNQN, nvme.CNTLIDDynamic)), tcp.HLenCapsuleCmd+1))
			a.expectEndedNow(p, whyFatal, v)
		case 1:
			const v = "bad header digest on an admin command"
			a.misbehave(v)
			p := a.adminFor(v, portAll, soakNQN, bothDigests)
			if p == nil {
				continue
			}
			sqe := nvme.KeepAliveCmd()
			_ = p.SendBytes(corrupt(p.capsule(&sqe, nil), tcp.HLenCapsuleCmd))
			a.expectEndedNow(p, whyFatal, v)
		case 2:
			const v = "bad data digest on in-capsule write data"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, bothDigests)
			if ioq == nil {
				continue
			}
			sqe := writeSQE(0, scratchLBA(0), 8, true)
			b := ioq.capsule(&sqe, make([]byte, 8*512))
			_ = ioq.SendBytes(corrupt(b, len(b)-1))
			a.observe(ioq, 500*time.Millisecond)
			ioq.close(true)
			admin.close(true)
		case 3:
			const v = "bad data digest on H2CData"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, bothDigests)
			if ioq == nil {
				continue
			}
			if r := writeByR2T(ioq, 16); r != nil {
				b := ioq.bytesOf(h2cFor(r), make([]byte, r.R2TL))
				_ = ioq.SendBytes(corrupt(b, len(b)-2))
				a.observe(ioq, 500*time.Millisecond)
			}
			ioq.close(true)
			admin.close(true)
		case 4:
			const v = "bad header digest on H2CData"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, bothDigests)
			if ioq == nil {
				continue
			}
			if r := writeByR2T(ioq, 16); r != nil {
				b := ioq.bytesOf(h2cFor(r), make([]byte, r.R2TL))
				_ = ioq.SendBytes(corrupt(b, tcp.HLenData+2))
			}
			a.expectEndedNow(ioq, whyFatal, v, admin)
		case 5:
			const v = "header digest sent but not negotiated"
			a.misbehave(v)
			p := a.adminFor(v, portAll, soakNQN, 0)
			if p == nil {
				continue
			}
			sqe := nvme.KeepAliveCmd()
			sqe.CID = p.NextCID()
			_ = p.SendPDU(&tcp.CapsuleCmd{SQE: sqe}, nil, tcp.EncodeOptions{Digests: tcp.Digests{Header: true}})
			a.expectEndedNow(p, whyFatal, v)
		}
	}
}

// --- outoforder: PDUs where they do not belong --------------------------

func runOutOfOrder(a *actor) {
	for a.pause(a.randDur(50*time.Millisecond, 300*time.Millisecond)) {
		switch a.rng.IntN(8) {
		case 0:
			const v = "command capsule before ICReq"
			a.misbehave(v)
			p, err := a.dial(a.pickPort())
			if err != nil {
				continue
			}
			sqe := nvme.KeepAliveCmd()
			_ = p.SendBytes(p.capsule(&sqe, nil))
			a.expectEndedNow(p, whyFatal, v)
		case 1:
			const v = "second ICReq"
			a.misbehave(v)
			p := a.initializedFor(v, a.pickPort(), 0)
			if p == nil {
				continue
			}
			_ = p.SendPDU(&tcp.ICReq{}, nil, tcp.EncodeOptions{})
			a.expectEndedNow(p, whyFatal, v)
		case 2:
			const v = "H2CData without an R2T"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			_ = ioq.SendPDU(&tcp.H2CData{CCCID: 7, TTAG: uint16(a.rng.IntN(64)), DATAL: 512, Last: true}, make([]byte, 512), ioq.Encoding())
			a.expectEndedNow(ioq, whyFatal, v, admin)
		case 3, 4:
			variants := []string{"H2CData with another TTAG", "H2CData beyond the R2T", "H2CData after the last one"}
			v := variants[a.rng.IntN(len(variants))]
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			if r := writeByR2T(ioq, 16); r != nil {
				h := h2cFor(r)
				switch v {
				case variants[0]:
					h.TTAG++
				case variants[1]:
					h.DATAO = r.R2TL
				case variants[2]:
					_ = ioq.SendPDU(h, make([]byte, h.DATAL), ioq.Encoding())
					time.Sleep(10 * time.Millisecond)
				}
				_ = ioq.SendPDU(h, make([]byte, h.DATAL), ioq.Encoding())
			}
			a.expectEndedNow(ioq, whyFatal, v, admin)
		case 5:
			pdus := []tcp.PDU{
				&tcp.C2HData{CCCID: 1, DATAL: 512, Last: true},
				&tcp.R2T{CCCID: 1, R2TL: 512},
				&tcp.CapsuleResp{CQE: nvme.CQE{CID: 1}},
				&tcp.ICResp{MAXH2CDATA: 4096},
				&tcp.TermReq{FES: tcp.FESInvalidHeaderField},
			}
			pdu := pdus[a.rng.IntN(len(pdus))]
			v := "controller PDU " + pdu.Type().String() + " from the host"
			a.misbehave(v)
			p := a.adminFor(v, portAll, soakNQN, 0)
			if p == nil {
				continue
			}
			var data []byte
			if pdu.Type() == tcp.TypeC2HData {
				data = make([]byte, 512)
			}
			_ = p.SendPDU(pdu, data, p.Encoding())
			a.expectEndedNow(p, whyFatal, v)
		case 6:
			typ := []byte{0x08, 0x0A, 0x0F, 0x7F, 0xFF}[a.rng.IntN(5)]
			v := fmt.Sprintf("unknown PDU type %#02x", typ)
			a.misbehave(v)
			p := a.adminFor(v, portAll, soakNQN, 0)
			if p == nil {
				continue
			}
			b := make([]byte, 24)
			ch := tcp.CommonHeader{Type: tcp.PDUType(typ), HLEN: 24, PLEN: 24}
			ch.Put(b)
			_ = p.SendBytes(b)
			a.expectEndedNow(p, whyFatal, v)
		case 7:
			// Not fatal: an error status, the queue goes on.
			admin, ioq := a.assocFor("commands on the wrong queue", 31, 0)
			if ioq == nil {
				continue
			}
			if a.rng.IntN(2) == 0 {
				a.misbehave("Identify on an I/O queue")
				_, _ = ioq.send(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
				a.observe(ioq, 300*time.Millisecond)
			} else {
				a.misbehave("Read on the admin queue")
				_, _ = admin.send(readSQE(0, 0, 1), nil)
				a.observe(admin, 300*time.Millisecond)
			}
			ioq.close(true)
			admin.close(true)
		}
	}
}

// --- badconnect: Connects that must be refused ------------------------

// connectTry is the outcome of one Connect: the connection it went on and
// the others its set-up opened.
type connectTry struct {
	p      *peer
	others []*peer
	cqe    nvme.CQE
	err    error
	ctrl   bool // p already has a controller: idle_timeout bounds it
}

type badConnect struct {
	name string
	try  func(a *actor) (connectTry, error) // error: set-up failed
	good bool                               // must succeed (a control)
}

func badConnects() []badConnect {
	// plain dials port, runs ICReq and sends Connect with the given
	// fields for hostnqn (the actor's NQN when empty).
	plain := func(port uint16, subnqn, hostnqn string, cid uint16, c nvme.Connect) func(a *actor) (connectTry, error) {
		return func(a *actor) (connectTry, error) {
			p, err := a.initialized(port, 0)
			if err != nil {
				return connectTry{}, err
			}
			if hostnqn != "" {
				p.nqn = hostnqn
			}
			cqe, err := p.connect(subnqn, cid, c)
			return connectTry{p: p, cqe: cqe, err: err}, nil
		}
	}
	// ioBeside connects I/O queue 1 of admin's controller on a connection
	// of its own, with what change does to the peer and the Connect first.
	// others are closed after the check, or at once if the set-up fails.
	ioBeside := func(a *actor, admin *peer, subnqn string, change func(*peer, *nvme.Connect), others ...*peer) (connectTry, error) {
		p, err := a.beside(admin, 0)
		if err != nil {
			for _, o := range others {
				o.close(true)
			}
			return connectTry{}, err
		}
		c := nvme.Connect{QID: 1, SQSIZE: 31}
		change(p, &c)
		cqe, err := p.connect(subnqn, admin.cntlid, c)
		return connectTry{p: p, others: others, cqe: cqe, err: err}, nil
	}
	// ioAfter sets up an admin queue (the controller enabled or not), then
	// connects I/O queue 1 beside it.
	ioAfter := func(port uint16, subnqn string, enable bool, change func(*peer, *nvme.Connect)) func(a *actor) (connectTry, error) {
		return func(a *actor) (connectTry, error) {
			setup := a.adminQueue
			if enable {
				setup = a.rawAdmin
			}
			admin, err := setup(port, subnqn, 0)
			if err != nil {
				return connectTry{}, err
			}
			return ioBeside(a, admin, subnqn, change, admin)
		}
	}
	nop := func(*peer, *nvme.Connect) {}
	l := []badConnect{
		{name: "unknown subsystem", try: plain(portAll, "nqn.2014-08.io.nvmftest:no-such-subsystem", "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 31})},
		{name: "subsystem NQN not an NQN", try: plain(portAll, "not-an-nqn", "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 31})},
		{name: "empty subsystem NQN", try: plain(portAll, "", "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 31})},
		{name: "admin Connect with CNTLID 0", try: plain(portAll, soakNQN, "", 0, nvme.Connect{SQSIZE: 31})},
		{name: "admin Connect with CNTLID 0x1234", try: plain(portAll, soakNQN, "", 0x1234, nvme.Connect{SQSIZE: 31})},
		{name: "I/O Connect to a controller that does not exist", try: plain(portAll, soakNQN, "", 0xFFEE, nvme.Connect{QID: 1, SQSIZE: 31})},
		{name: "I/O Connect with CNTLID FFFFh", try: plain(portAll, soakNQN, "", nvme.CNTLIDDynamic, nvme.Connect{QID: 1, SQSIZE: 31})},
		{name: "SQSIZE 0", try: plain(portAll, soakNQN, "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 0})},
		{name: "SQSIZE beyond MQES", try: plain(portAll, soakNQN, "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: queueSize})},
		{name: "SQSIZE FFFFh", try: plain(portAll, soakNQN, "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 0xFFFF})},
		{name: "RECFMT 1", try: plain(portAll, soakNQN, "", nvme.CNTLIDDynamic, nvme.Connect{RECFMT: 1, SQSIZE: 31})},
		{name: "discovery through the I/O-only port", try: plain(portIO, nvme.DiscoveryNQN, "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 31})},
		{name: "NVM subsystem through the discovery-only port", try: plain(portDiscovery, soakNQN, "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 31})},
		{name: "host not allowed", try: plain(portAll, restrictedNQN, "", nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 31})},
		{name: "allowed host (control)", good: true, try: plain(portAll, restrictedNQN, allowedHost, nvme.CNTLIDDynamic, nvme.Connect{SQSIZE: 31})},
		{name: "I/O queue under another host NQN", try: ioAfter(portAll, soakNQN, true, func(p *peer, _ *nvme.Connect) { p.nqn += "-other" })},
		{name: "I/O queue under another host ID", try: ioAfter(portAll, soakNQN, true, func(p *peer, _ *nvme.Connect) { p.hostid[0] ^= 0xFF })},
		{name: "QID beyond io_queues", try: ioAfter(portAll, soakNQN, true, func(_ *peer, c *nvme.Connect) { c.QID = ioQueues + 1 })},
		{name: "QID FFFFh", try: ioAfter(portAll, soakNQN, true, func(_ *peer, c *nvme.Connect) { c.QID = 0xFFFF })},
		{name: "I/O SQSIZE beyond MQES", try: ioAfter(portAll, soakNQN, true, func(_ *peer, c *nvme.Connect) { c.SQSIZE = queueSize })},
		{name: "I/O queue before the controller is enabled", try: ioAfter(portAll, soakNQN, false, nop)},
		{name: "I/O queue on a discovery controller", try: ioAfter(portDiscovery, nvme.DiscoveryNQN, true, nop)},
		{name: "I/O queue (control)", good: true, try: ioAfter(portAll, soakNQN, true, nop)},
		{name: "QID 1 twice", try: func(a *actor) (connectTry, error) {
			admin, ioq, err := a.rawAssoc(portAll, 31, 0)
			if err != nil {
				return connectTry{}, err
			}
			return ioBeside(a, admin, soakNQN, nop, ioq, admin)
		}},
		{name: "Connect twice on an admin queue", try: func(a *actor) (connectTry, error) {
			p, err := a.rawAdmin(portAll, soakNQN, 0)
			if err != nil {
				return connectTry{}, err
			}
			cqe, err := p.ConnectAdmin(soakNQN, p.nqn)
			return connectTry{p: p, cqe: cqe, err: err, ctrl: true}, nil
		}},
		{name: "Connect data of 512 bytes", try: func(a *actor) (connectTry, error) {
			p, err := a.initialized(portAll, 0)
			if err != nil {
				return connectTry{}, err
			}
			c := nvme.Connect{SQSIZE: 31}
			sqe := c.SQE(0)
			nvme.SetInCapsule(&sqe, 512)
			cqe, _, err := p.Command(sqe, p.connectData(soakNQN, nvme.CNTLIDDynamic)[:512])
			return connectTry{p: p, cqe: cqe, err: err}, nil
		}},
	}
	return l
}

func runBadConnect(a *actor) {
	variants := badConnects()
	for a.pause(a.randDur(20*time.Millisecond, 200*time.Millisecond)) {
		v := variants[a.rng.IntN(len(variants))]
		a.misbehave(v.name)
		r, err := v.try(a)
		if err != nil {
			a.setupFailed(v.name, err)
			continue
		}
		switch {
		case r.err == nil && !v.good:
			a.violate("bad Connect accepted", fmt.Sprintf("%s: success, CNTLID %d", v.name, uint16(r.cqe.DW0)))
		case r.err != nil && v.good:
			a.violate("good Connect refused", fmt.Sprintf("%s: %v", v.name, r.err))
		case r.err != nil && !isRefusal(r.err):
			// e.g. a completion for another CID: the target answered
			// something else than this Connect.
			a.violate("bad Connect answered out of protocol", fmt.Sprintf("%s: %v", v.name, r.err))
		case r.err != nil:
			a.note("refused: " + refusal(r.err))
		}
		// A connection without a controller is bounded by ic_timeout from
		// its start, one with a controller by idle_timeout from now.
		bound, why, since := icTimeout, whyIC, r.p.born
		if r.ctrl || (v.good && r.err == nil) {
			bound, why, since = idleTimeout, whyIdle, time.Now()
		}
		a.finish(r.p, a.rng.IntN(4) == 0, since, bound, why, v.name, r.others...)
	}
}

// isRefusal reports whether err is a way a target may refuse a Connect
// (a status, a C2HTermReq, a closed connection, no answer in time: the
// connection's bound then catches a target that holds it), rather than an
// answer to another command.
func isRefusal(err error) bool {
	var stray *initiator.StrayCompletionError
	return !errors.As(err, &stray)
}

// refusal names how a Connect was refused, for the counts.
func refusal(err error) string {
	var st nvme.Status
	var pt *tcp.PeerTerminated
	switch {
	case errors.As(err, &st):
		return fmt.Sprintf("status %#x", uint16(st.Code()))
	case errors.As(err, &pt):
		return fmt.Sprintf("C2HTermReq FES %d", pt.FES)
	case isEOF(err):
		return "closed"
	}
	return strings.SplitN(err.Error(), ":", 2)[0]
}

// --- afterdisconnect: commands after Disconnect ------------------------

func runAfterDisconnect(a *actor) {
	for a.pause(a.randDur(50*time.Millisecond, 300*time.Millisecond)) {
		switch a.rng.IntN(4) {
		case 0:
			const v = "commands after an I/O queue Disconnect"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			d, rd, wr := nvme.DisconnectCmd(0), readSQE(0, scratchLBA(0), 1), writeSQE(0, scratchLBA(0), 1, true)
			b := ioq.capsule(&d, nil)
			b = append(b, ioq.capsule(&rd, nil)...)
			b = append(b, ioq.capsule(&wr, make([]byte, 512))...)
			_ = ioq.SendBytes(b)
			a.countAnswers(ioq, d.CID)
			a.expectEndedNow(ioq, whyDisconnect, v, admin)
		case 1:
			const v = "commands after an admin Disconnect"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			d, ka, id := nvme.DisconnectCmd(0), nvme.KeepAliveCmd(), nvme.IdentifyCmd(nvme.CNSController, 0, 0)
			b := admin.capsule(&d, nil)
			b = append(b, admin.capsule(&ka, nil)...)
			b = append(b, admin.capsule(&id, nil)...)
			_ = admin.SendBytes(b)
			a.countAnswers(admin, d.CID)
			now := time.Now()
			a.holdAsync(func() {
				a.expectEnded(admin, now, fatalLinger, whyDisconnect, v)
				a.expectEnded(ioq, now, fatalLinger, whyAssocEnd, v)
			})
		case 2:
			const v = "Disconnect before Connect"
			a.misbehave(v)
			p := a.initializedFor(v, portAll, 0)
			if p == nil {
				continue
			}
			if _, _, err := p.Command(nvme.DisconnectCmd(0), nil); err == nil {
				a.violate("Disconnect before Connect succeeded", v)
			}
			a.finish(p, a.rng.IntN(3) == 0, p.born, icTimeout, whyIC, v)
		case 3:
			const v = "Disconnect twice"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			d1, d2 := nvme.DisconnectCmd(0), nvme.DisconnectCmd(0)
			_ = ioq.SendBytes(append(ioq.capsule(&d1, nil), ioq.capsule(&d2, nil)...))
			a.countAnswers(ioq, d1.CID)
			a.expectEndedNow(ioq, whyDisconnect, v, admin)
		}
	}
}

// countAnswers reads for a short while after a Disconnect (CID first)
// and counts the answers to commands sent after it.
func (a *actor) countAnswers(p *peer, first uint16) {
	_ = p.readUntil(time.Now().Add(300*time.Millisecond), func(pdu tcp.PDU) bool {
		if r, ok := pdu.(*tcp.CapsuleResp); ok {
			if r.CQE.CID == first {
				a.note("Disconnect answered")
			} else {
				a.note("answered after Disconnect")
			}
		}
		return true
	})
}
