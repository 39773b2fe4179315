//go:build linux

package soak

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Misbehaving peers. Each actor loops over small episodes, one raw
// connection (or a few) each. The target may answer a misbehaviour any way
// the spec allows (an error status, a C2HTermReq, closing); the soak
// checks only what must hold whatever the answer: the process lives, a
// peer the target must let go of is let go of within the configured bound
// (expectEnded), a bad Connect is never accepted, and at the end nothing
// is left behind (the settle oracle).

// Names of the bounds, as violations cite them.
const (
	whyIC    = "ic_timeout"
	whyIdle  = "idle_timeout"
	whyFatal = "a fatal error or TermReq ends the connection at once"
	whyStall = "write_timeout: a peer that takes none of its data"
	whyR2T   = "r2t_timeout: an R2T whose data never comes"

	whyDisconnect = "Disconnect ends the queue"
	whyAssocEnd   = "the association ends with its admin queue"
)

// pickPort is any of the three ports.
func (a *actor) pickPort() uint16 { return uint16(1 + a.rng.IntN(3)) }

// finish ends an episode: a held peer is checked to be ended within bound
// after since (on its own goroutine), others are closed at once. also are
// closed after the check.
func (a *actor) finish(p *peer, held bool, since time.Time, bound time.Duration, why, variant string, also ...*peer) {
	if !held {
		p.closeSoon()
		for _, o := range also {
			o.close(true)
		}
		return
	}
	a.holdAsync(func() {
		a.expectEnded(p, since, bound, why, variant)
		for _, o := range also {
			o.close(true)
		}
	})
}

// expectEndedNow holds p after what was just sent on it, which the
// target must end it for at once (fatalLinger); why names the rule. also
// are closed after the check.
func (a *actor) expectEndedNow(p *peer, why, variant string, also ...*peer) {
	a.finish(p, true, time.Now(), fatalLinger, why, variant, also...)
}

// sendPrefix sends a random prefix of b: at least least bytes, never all
// of them.
func (a *actor) sendPrefix(p *peer, b []byte, least int) {
	_ = p.SendBytes(b[:least+a.rng.IntN(len(b)-least)])
}

// setupFailed records that a legitimate set-up (ICReq, Connect, enable)
// failed: the target refused a peer it must serve.
func (a *actor) setupFailed(variant string, err error) {
	a.violate("peer set-up failed", fmt.Sprintf("%s: %v", variant, err))
}

// observe reads what the target sends for up to d and counts how it
// reacted to the misbehaviour.
func (a *actor) observe(p *peer, d time.Duration) {
	err := p.readUntil(time.Now().Add(d), func(pdu tcp.PDU) bool {
		switch v := pdu.(type) {
		case *tcp.TermReq:
			a.note(fmt.Sprintf("reaction: C2HTermReq FES %d", v.FES))
		case *tcp.CapsuleResp:
			if v.CQE.Status.Success() {
				a.note("reaction: success")
			} else {
				a.note(fmt.Sprintf("reaction: status %#x", uint16(v.CQE.Status.Code())))
			}
		}
		return true
	})
	var ne net.Error
	var fe *tcp.FatalError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
	case errors.As(err, &fe):
		a.violate("target sent an invalid PDU", fe.Error())
	default:
		a.note("reaction: closed")
	}
}

// --- halfpdu: half a PDU, then silence --------------------------------

func runHalfPDU(a *actor) {
	for a.pause(a.randDur(20*time.Millisecond, 200*time.Millisecond)) {
		held := a.rng.IntN(3) == 0
		switch a.rng.IntN(4) {
		case 0:
			const v = "half an ICReq"
			a.misbehave(v)
			p, err := a.dial(a.pickPort())
			if err != nil {
				continue
			}
			a.sendPrefix(p, tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{}), 1)
			a.finish(p, held, p.born, icTimeout, whyIC, v)
		case 1:
			const v = "half a Connect"
			a.misbehave(v)
			p := a.initializedFor(v, portAll, 0)
			if p == nil {
				continue
			}
			c := nvme.Connect{SQSIZE: 31}
			sqe := c.SQE(0)
			a.sendPrefix(p, p.capsule(&sqe, p.connectData(soakNQN, nvme.CNTLIDDynamic)), 1)
			a.finish(p, held, p.born, icTimeout, whyIC, v)
		case 2:
			const v = "half an admin capsule"
			a.misbehave(v)
			p := a.adminFor(v, portAll, soakNQN, 0)
			if p == nil {
				continue
			}
			sqe := nvme.KeepAliveCmd()
			a.sendPrefix(p, p.capsule(&sqe, nil), 1)
			a.finish(p, held, time.Now(), idleTimeout, whyIdle, v)
		case 3:
			const v = "half the in-capsule data of a write"
			a.misbehave(v)
			admin, ioq := a.assocFor(v, 31, 0)
			if ioq == nil {
				continue
			}
			sqe := writeSQE(0, scratchLBA(0), 16, true)
			a.sendPrefix(ioq, ioq.capsule(&sqe, make([]byte, 16*512)), tcp.HLenCapsuleCmd)
			a.finish(ioq, held, time.Now(), idleTimeout, whyIdle, v, admin)
		}
	}
}

// --- icreqonly: ICReq, then nothing -----------------------------------

func runICReqOnly(a *actor) {
	variants := []struct {
		name string
		req  tcp.ICReq
	}{
		{"ICReq then silence", tcp.ICReq{}},
		{"ICReq with digests then silence", tcp.ICReq{DGST: tcp.DgstHeader | tcp.DgstData}},
		{"ICReq with HPDA 31 then silence", tcp.ICReq{HPDA: 31, MAXR2T: 15}},
	}
	for a.pause(a.randDur(20*time.Millisecond, 200*time.Millisecond)) {
		v := variants[a.rng.IntN(len(variants))]
		a.misbehave(v.name)
		p, err := a.dial(a.pickPort())
		if err != nil {
			continue
		}
		_ = p.SendPDU(&v.req, nil, tcp.EncodeOptions{})
		a.finish(p, a.rng.IntN(2) == 0, p.born, icTimeout, whyIC, v.name)
	}
}

// --- flood: many sockets at once, then all closed ---------------------

func runFlood(a *actor) {
	s := a.s
	icreq := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
	c := nvme.Connect{SQSIZE: 31}
	sqe := c.SQE(1)
	d := nvme.ConnectData{HostID: hostID(a.id()), CNTLID: nvme.CNTLIDDynamic, SubNQN: soakNQN, HostNQN: hostNQN(a.id())}
	connect := append(append([]byte(nil), icreq...), tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, d.Append(nil), tcp.EncodeOptions{})...)
	for a.pause(a.randDur(300*time.Millisecond, 1500*time.Millisecond)) {
		n := 32 + a.rng.IntN(floodMax-31)
		port := a.pickPort()
		a.misbehave("floods")
		s.rep.add("flood/sockets", int64(n))
		modes := make([]int, n)
		for i := range modes {
			modes[i] = a.rng.IntN(4)
		}
		conns := make([]*net.TCPConn, n)
		jobs := make(chan int)
		var wg sync.WaitGroup
		s.gate.RLock()
		for range 8 {
			wg.Go(func() {
				for i := range jobs {
					nc, err := net.DialTimeout("tcp", s.addr[port], peerWait)
					if err != nil {
						a.note("dial errors")
						continue
					}
					conns[i] = nc.(*net.TCPConn)
					switch modes[i] {
					case 1:
						_, _ = nc.Write(icreq)
					case 2:
						_, _ = nc.Write(icreq[:64])
					case 3:
						if port != portDiscovery {
							_, _ = nc.Write(connect)
						}
					}
				}
			})
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		s.gate.RUnlock()
		time.Sleep(a.randDur(0, 500*time.Millisecond))
		for i, nc := range conns {
			if nc != nil {
				if i%2 == 0 {
					_ = nc.SetLinger(0)
				}
				_ = nc.Close()
			}
		}
		a.probe(port, fmt.Sprintf("after a flood of %d connections", n))
	}
}

// --- emfile: the process runs out of descriptors -----------------------

func runEMFILE(a *actor) {
	for a.pause(a.randDur(2*time.Second, 5*time.Second)) {
		a.misbehave("descriptor exhaustions")
		if !a.lockGate(10 * time.Second) {
			a.note("gate busy")
			continue
		}
		n, err := a.exhaust(portDiscovery)
		a.s.gate.Unlock()
		if err != nil {
			a.violate("could not exhaust descriptors (harness)", err.Error())
			continue
		}
		a.s.rep.add(a.name+"/connections at the limit", int64(n))
		a.probe(portDiscovery, "after the process ran out of descriptors")
	}
}

// lockGate takes the descriptor gate exclusively, waiting at most d.
func (a *actor) lockGate(d time.Duration) bool {
	got := make(chan struct{})
	go func() {
		a.s.gate.Lock()
		close(got)
	}()
	select {
	case <-got:
		return true
	case <-time.After(d):
		go func() {
			<-got
			a.s.gate.Unlock()
		}()
		return false
	}
}

// exhaust lowers the descriptor limit to just above what is open, dials
// port until no descriptor is left, then frees exactly one and dials once
// more: that connection completes in the kernel, and the target's accept
// meets EMFILE. It restores the limit and closes everything before it
// returns. The caller holds the gate, so nothing else opens a descriptor
// meanwhile.
func (a *actor) exhaust(port uint16) (int, error) {
	spare, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	lim := a.s.nofile
	lim.Cur = uint64(countFDs() + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		spare.Close()
		return 0, err
	}
	var conns []net.Conn
	defer func() {
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &a.s.nofile)
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := a.s.addr[port]
	for range 64 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	spare.Close()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conns = append(conns, c)
	}
	time.Sleep(300 * time.Millisecond)
	return len(conns), nil
}

// --- slowreader: large reads asked for and never read ------------------

func runSlowReader(a *actor) {
	for a.pause(a.randDur(100*time.Millisecond, 500*time.Millisecond)) {
		switch a.rng.IntN(3) {
		case 0:
			a.slowDiscovery(false)
		case 1:
			a.slowDiscovery(true)
		default:
			a.slowIO()
		}
	}
}

// slowDiscovery asks an anonymous discovery controller (KATO 0) for 16 MiB
// log pages and reads none of it. Silent, it asks for more than the
// connection's write backlog holds, so the target's receive loop waits for
// the peer and its read deadline never fires (review #5b); chatty, it asks
// for less and sends a Keep Alive every second so that the connection is
// never idle.
func (a *actor) slowDiscovery(chatty bool) {
	v := "discovery log pages never read, silent"
	k := 3
	if chatty {
		v, k = "discovery log pages never read, keep-alives sent", 2
	}
	const page = 16 << 20
	k = max(k, int(2*a.s.slack/page)+1)
	a.misbehave(v)
	p := a.adminFor(v, portDiscovery, nvme.DiscoveryNQN, 0)
	if p == nil {
		return
	}
	for range k {
		if _, err := p.send(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, page), nil); err != nil {
			break
		}
	}
	since := time.Now()
	if chatty {
		a.keepTalking(since.Add(stallTimeout+boundSlack), p, nil)
	}
	a.expectDrained(p, since, v)
}

// slowIO keeps an association alive (Keep Alives on its admin queue, a
// small read every second on the I/O queue) while reading nothing of the
// 1 MiB reads it asked for on the I/O queue.
func (a *actor) slowIO() {
	const v = "1 MiB reads never read, commands still sent"
	a.misbehave(v)
	admin, ioq := a.assocFor(v, 63, 0)
	if ioq == nil {
		return
	}
	defer admin.close(true)
	k := min(int(2*a.s.slack/mdts)+4, 40)
	for range k {
		if _, err := ioq.send(readSQE(1, 0, mdts/4096), nil); err != nil {
			break
		}
	}
	since := time.Now()
	a.keepTalking(since.Add(stallTimeout+boundSlack), ioq, admin)
	a.expectDrained(ioq, since, v)
}

// keepTalking sends a command on p every second until until (a Keep Alive
// on an admin queue, a 4 KiB read on an I/O queue) without reading
// anything, and a Keep Alive on admin (reading its answer); it stops when
// a send fails (the target ended the connection).
func (a *actor) keepTalking(until time.Time, p, admin *peer) {
	for time.Now().Before(until) {
		time.Sleep(min(time.Second, time.Until(until)))
		sqe := nvme.KeepAliveCmd()
		if admin != nil {
			if _, _, err := admin.Command(nvme.KeepAliveCmd(), nil); err != nil {
				return
			}
			sqe = readSQE(1, 0, 1)
		}
		if _, err := p.send(sqe, nil); err != nil {
			return
		}
	}
}

// expectDrained checks, stallTimeout plus slack after since, that the
// target is not still holding data for p: it may keep the connection, but
// no more than the kernel's buffers may still be on the way.
func (a *actor) expectDrained(p *peer, since time.Time, variant string) {
	time.Sleep(time.Until(since.Add(stallTimeout + boundSlack)))
	_, n := p.ended(a.s.slack)
	p.close(true)
	a.note("held")
	if n > a.s.slack {
		a.violate("target kept queueing data for a peer that stopped reading ("+whyStall+")",
			fmt.Sprintf("%s: %v after the peer stopped reading (bound %v), still sending: read %s and more; the target holds it in memory meanwhile",
				variant, time.Since(since).Round(time.Millisecond), stallTimeout, mib(uint64(n))))
		return
	}
	a.note("let go in time")
}

// --- r2tstall: writes announced, R2Ts answered with nothing -----------

func runR2TStall(a *actor) {
	for a.pause(a.randDur(100*time.Millisecond, 500*time.Millisecond)) {
		a.r2tStall(a.rng.IntN(3) != 0)
	}
}

// r2tStall announces 48 writes of 1 MiB by capsule (data by R2T) and
// never sends H2CData. Held, it keeps the association alive (Keep Alives,
// a small read every second) and expects the target, within r2tTimeout,
// to fail the writes or end the connection (review #5a: each pins a 1 MiB
// buffer); otherwise it closes with a reset once the R2Ts are in.
func (a *actor) r2tStall(held bool) {
	const n = 48
	v := "1 MiB writes announced, no data, peer gone"
	if held {
		v = "1 MiB writes announced, no data, peer alive"
	}
	a.misbehave(v)
	admin, ioq := a.assocFor(v, 63, 0)
	if ioq == nil {
		return
	}
	defer admin.close(true)
	defer ioq.close(true)
	announced := map[uint16]bool{}
	for range n {
		cid, err := ioq.send(writeSQE(1, scratchLBA(1), mdts/4096, false), nil)
		if err != nil {
			a.setupFailed(v, err)
			return
		}
		announced[cid] = true
	}
	since := time.Now()
	var mu sync.Mutex
	r2ts, resolved, ended := 0, 0, ""
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			pdu, _, _, err := ioq.Recv(r2tTimeout + boundSlack + peerWait)
			mu.Lock()
			switch v := pdu.(type) {
			case *tcp.R2T:
				if announced[v.CCCID] {
					r2ts++
				}
			case *tcp.CapsuleResp:
				if announced[v.CQE.CID] {
					resolved++
				}
			case *tcp.TermReq:
				ended = fmt.Sprintf("C2HTermReq FES %d", v.FES)
			}
			if err != nil && ended == "" {
				ended = err.Error()
			}
			stop := ended != ""
			mu.Unlock()
			if stop {
				return
			}
		}
	}()
	defer func() {
		ioq.close(true)
		<-done
	}()
	if !held {
		time.Sleep(200 * time.Millisecond)
		return
	}
	until := since.Add(r2tTimeout + boundSlack)
	for time.Now().Before(until) {
		time.Sleep(min(time.Second, time.Until(until)))
		mu.Lock()
		stop := ended != "" || resolved == n
		mu.Unlock()
		if stop {
			break
		}
		if _, _, err := admin.Command(nvme.KeepAliveCmd(), nil); err != nil {
			break
		}
		_, _ = ioq.send(readSQE(1, 0, 1), nil)
	}
	time.Sleep(100 * time.Millisecond) // answers already sent
	mu.Lock()
	r, res, e := r2ts, resolved, ended
	mu.Unlock()
	a.s.rep.add(a.name+"/R2Ts received", int64(r))
	a.note("held")
	if e == "" && res < n {
		a.violate("announced writes held without their data past the bound ("+whyR2T+")",
			fmt.Sprintf("%d writes of 1 MiB announced %v ago (expected bound %v): %d R2Ts sent, %d failed, connection open; the target keeps a buffer for each",
				n, time.Since(since).Round(time.Millisecond), r2tTimeout, r, res))
		return
	}
	a.note("let go in time")
}

// --- fused: FUSE bits where they do not belong ------------------------

func runFused(a *actor) {
	for a.pause(a.randDur(50*time.Millisecond, 300*time.Millisecond)) {
		switch a.rng.IntN(6) {
		case 0:
			a.fusedConnect()
		case 1:
			a.fusedAdmin(portAll, soakNQN, "an NVM")
		case 2:
			a.fusedAdmin(portDiscovery, nvme.DiscoveryNQN, "a discovery")
		default:
			a.fusedIO()
		}
	}
}

// fused returns sqe with the FUSE field set to f.
func fused(sqe nvme.SQE, f uint8) nvme.SQE {
	sqe.Flags = sqe.Flags&^nvme.FuseMask | f
	return sqe
}

// fusedPair is two commands sent together, at least one of them with a
// FUSE field where it does not belong.
type fusedPair struct {
	name   string
	s1, s2 nvme.SQE
}

// sendFused sends v's commands in one write, d1 and d2 their data, and
// counts how the target reacts.
func (a *actor) sendFused(p *peer, v fusedPair, d1, d2 []byte) {
	_ = p.SendBytes(append(p.capsule(&v.s1, d1), p.capsule(&v.s2, d2)...))
	a.observe(p, 500*time.Millisecond)
}

// fusedConnect sends fused Connect capsules before any Connect (review
// #3: a nil dereference in the base target, unauthenticated).
func (a *actor) fusedConnect() {
	c := nvme.Connect{SQSIZE: 31}
	cn := c.SQE(0)
	pairs := []fusedPair{
		{"fused Connect pair", fused(cn, nvme.FuseFirst), fused(cn, nvme.FuseSecond)},
		{"first-fused Connect then a plain one", fused(cn, nvme.FuseFirst), cn},
		{"second-fused Connect alone", fused(cn, nvme.FuseSecond), cn},
		{"Connect with FUSE 11b", fused(cn, nvme.FuseMask), cn},
	}
	v := pairs[a.rng.IntN(len(pairs))]
	a.misbehave(v.name)
	p := a.initializedFor(v.name, portAll, 0)
	if p == nil {
		return
	}
	data := p.connectData(soakNQN, nvme.CNTLIDDynamic)
	a.sendFused(p, v, data, data)
	a.finish(p, a.rng.IntN(4) == 0, p.born, icTimeout, whyIC, v.name)
}

// fusedAdmin sends fused admin and fabrics commands on an enabled admin
// queue (NVM or discovery controller).
func (a *actor) fusedAdmin(port uint16, subnqn, kind string) {
	ka, id := nvme.KeepAliveCmd(), nvme.IdentifyCmd(nvme.CNSController, 0, 0)
	pg := nvme.PropertyGetCmd(0, nvme.PropCSTS, false)
	pairs := []fusedPair{
		{"fused Keep Alive pair", fused(ka, nvme.FuseFirst), fused(ka, nvme.FuseSecond)},
		{"fused Identify pair", fused(id, nvme.FuseFirst), fused(id, nvme.FuseSecond)},
		{"fused Property Get pair", fused(pg, nvme.FuseFirst), fused(pg, nvme.FuseSecond)},
		{"second-fused Keep Alive alone", fused(ka, nvme.FuseSecond), ka},
		{"Keep Alive with FUSE 11b", fused(ka, nvme.FuseMask), ka},
	}
	v := pairs[a.rng.IntN(len(pairs))]
	name := v.name + " on " + kind + " controller"
	a.misbehave(name)
	p := a.adminFor(name, port, subnqn, 0)
	if p == nil {
		return
	}
	a.sendFused(p, v, nil, nil)
	a.finish(p, a.rng.IntN(4) == 0, time.Now(), idleTimeout, whyIdle, name)
}

// fusedIO sends fused pairs that are not Compare then Write, or are but
// do not match, on an I/O queue (scratch blocks only).
func (a *actor) fusedIO() {
	lba := scratchLBA(0)
	rd := readSQE(0, lba, 8)
	cmp := nvme.CompareCmd(namespaces[0].nsid, lba, 8)
	nvme.SetInCapsule(&cmp, 8*512)
	cmpR2T := nvme.CompareCmd(namespaces[0].nsid, lba, 8)
	nvme.SetDataLength(&cmpR2T, 8*512)
	wr := writeSQE(0, lba, 8, true)
	wrElsewhere := writeSQE(0, lba+64, 16, true)
	pairs := []fusedPair{
		{"fused Read pair", fused(rd, nvme.FuseFirst), fused(rd, nvme.FuseSecond)},
		{"fused Compare and Write of different blocks", fused(cmp, nvme.FuseFirst), fused(wrElsewhere, nvme.FuseSecond)},
		{"fused Write then Compare", fused(wr, nvme.FuseFirst), fused(cmp, nvme.FuseSecond)},
		{"first-fused Compare then a plain Write", fused(cmp, nvme.FuseFirst), wr},
		{"second-fused Write alone", fused(wr, nvme.FuseSecond), rd},
		{"Read with FUSE 11b", fused(rd, nvme.FuseMask), rd},
		{"fused Compare by R2T, data never sent, then Write", fused(cmpR2T, nvme.FuseFirst), fused(wr, nvme.FuseSecond)},
		{"fused Compare and Write", fused(cmp, nvme.FuseFirst), fused(wr, nvme.FuseSecond)},
	}
	v := pairs[a.rng.IntN(len(pairs))]
	a.misbehave(v.name)
	admin, ioq := a.assocFor(v.name, 31, 0)
	if ioq == nil {
		return
	}
	data := make([]byte, 16*512)
	for i := range data {
		data[i] = byte(a.rng.IntN(256))
	}
	a.sendFused(ioq, v, data[:v.s1.DPTR.Length], data[:v.s2.DPTR.Length])
	a.finish(ioq, a.rng.IntN(4) == 0, time.Now(), idleTimeout, whyIdle, v.name, admin)
}
