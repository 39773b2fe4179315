//go:build linux

package soak

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// A peer is one raw NVMe/TCP connection a misbehaving actor drives by
// hand. It is built on nvme/tcp's Conn rather than initiator.DialRaw so
// that the socket can be set up as a slow reader's is (a small receive
// buffer, fixed before connecting) and closed with a reset.

// peerRcvBuf is every peer socket's receive buffer. Setting it before
// connecting also turns off the kernel's autotuning, so that what an ended
// connection can still deliver (Soak.slack) is small and known.
const peerRcvBuf = 64 << 10

// peerWait bounds one answer a peer waits for when the target has no
// reason to be slow.
const peerWait = 10 * time.Second

type peer struct {
	a      *actor
	port   uint16
	nc     *net.TCPConn
	c      *tcp.Conn
	born   time.Time // dialled
	cid    uint16
	icresp *tcp.ICResp
	cntlid uint16 // of the controller this queue belongs to, once connected
	nqn    string
	hostid [16]byte
}

func setRcvBuf(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, peerRcvBuf)
	}); err != nil {
		return err
	}
	return serr
}

// dial opens a peer connection to the given port; nothing is sent.
func (a *actor) dial(port uint16) (*peer, error) {
	d := net.Dialer{Timeout: peerWait, Control: setRcvBuf}
	a.s.gate.RLock()
	nc, err := d.Dial("tcp", a.s.addr[port])
	a.s.gate.RUnlock()
	if err != nil {
		a.note("dial errors")
		return nil, err
	}
	c := tcp.NewConn(nc, false, tcp.Config{ReadBufferSize: 16 << 10})
	c.SetLimits(0, 16<<20)
	return &peer{a: a, port: port, nc: nc.(*net.TCPConn), c: c, born: time.Now(), nqn: hostNQN(a.id()), hostid: hostID(a.id())}, nil
}

// close closes the connection; with reset the kernel sends RST instead of
// FIN (SO_LINGER 0), as a crashed host does.
func (p *peer) close(reset bool) {
	if reset {
		_ = p.nc.SetLinger(0)
	}
	_ = p.nc.Close()
}

// closeSoon closes p after a random short delay, half the time with a
// reset: the ordinary end of an episode that is not held.
func (p *peer) closeSoon() {
	time.Sleep(p.a.randDur(0, 50*time.Millisecond))
	p.close(p.a.rng.IntN(2) == 0)
}

// icreq runs ICReq/ICResp asking for the digests in dgst.
func (p *peer) icreq(dgst uint8) error {
	_ = p.nc.SetDeadline(time.Now().Add(peerWait))
	defer func() { _ = p.nc.SetDeadline(time.Time{}) }()
	resp, err := p.c.HostInitialize(tcp.ICReq{DGST: dgst})
	if err != nil {
		return fmt.Errorf("ICReq: %w", err)
	}
	p.icresp = resp
	return nil
}

// enc is how the connection encodes PDUs once initialized.
func (p *peer) enc() tcp.EncodeOptions {
	if p.icresp == nil {
		return tcp.EncodeOptions{}
	}
	return tcp.EncodeOptions{Digests: tcp.Digests{Header: p.icresp.DGST&tcp.DgstHeader != 0, Data: p.icresp.DGST&tcp.DgstData != 0}, PDA: p.icresp.CPDA}
}

// bytesOf is the wire encoding of a PDU under the negotiated options.
func (p *peer) bytesOf(pdu tcp.PDU, data []byte) []byte {
	return tcp.AppendPDU(nil, pdu, data, p.enc())
}

// raw sends b as it is.
func (p *peer) raw(b []byte) error { return p.c.SendRaw(b) }

func (p *peer) nextCID() uint16 {
	p.cid++
	if p.cid == 0 {
		p.cid = 1
	}
	return p.cid
}

// capsule gives sqe a fresh CID (unless it has one) and returns its
// encoding: data travels in the capsule when the SGL says so (a Data
// Block with the Offset subtype), otherwise it is what R2Ts ask for.
func (p *peer) capsule(sqe *nvme.SQE, data []byte) []byte {
	if sqe.CID == 0 {
		sqe.CID = p.nextCID()
	}
	var inline []byte
	if sqe.DPTR.Type == nvme.SGLDataBlockOffset {
		inline = data
	}
	return p.bytesOf(&tcp.CapsuleCmd{SQE: *sqe}, inline)
}

// readSQE is a Read of nlb blocks of namespace index i.
func readSQE(i int, slba uint64, nlb uint32) nvme.SQE {
	s := nvme.ReadCmd(namespaces[i].nsid, slba, nlb)
	nvme.SetDataLength(&s, nlb*namespaces[i].bs)
	return s
}

// writeSQE is a Write of nlb blocks of namespace index i, its data in the
// capsule or moved by R2T/H2CData.
func writeSQE(i int, slba uint64, nlb uint32, inCapsule bool) nvme.SQE {
	s := nvme.WriteCmd(namespaces[i].nsid, slba, nlb)
	if inCapsule {
		nvme.SetInCapsule(&s, nlb*namespaces[i].bs)
	} else {
		nvme.SetDataLength(&s, nlb*namespaces[i].bs)
	}
	return s
}

// scratchLBA is the first block of namespace index i's scratch region,
// the only blocks misbehaving peers write.
func scratchLBA(i int) uint64 {
	return uint64(regionScratch) * (namespaces[i].size / uint64(namespaces[i].bs) / regions)
}

// send sends a command without waiting; it returns its CID.
func (p *peer) send(sqe nvme.SQE, data []byte) (uint16, error) {
	b := p.capsule(&sqe, data)
	return sqe.CID, p.raw(b)
}

// recv waits up to d for the next PDU and returns a copy and its data.
func (p *peer) recv(d time.Duration) (tcp.PDU, []byte, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = p.nc.SetReadDeadline(time.Time{}) }()
	pdu, err := p.c.Next()
	if err != nil {
		return nil, nil, err
	}
	pdu = clonePDU(pdu)
	var data []byte
	if n := p.c.DataLen(); n > 0 {
		data = make([]byte, n)
		if err := p.c.ReadData(data); err != nil {
			return pdu, data, err
		}
	}
	return pdu, data, nil
}

func clonePDU(p tcp.PDU) tcp.PDU {
	switch v := p.(type) {
	case *tcp.TermReq:
		c := *v
		return &c
	case *tcp.CapsuleResp:
		c := *v
		return &c
	case *tcp.C2HData:
		c := *v
		return &c
	case *tcp.R2T:
		c := *v
		return &c
	case *tcp.ICResp:
		c := *v
		return &c
	}
	return p
}

// exec sends sqe and waits for its completion, answering R2Ts from data
// and collecting C2HData. A non-success status comes back as the error
// (an nvme.Status) with the CQE; a TermReq as *tcp.PeerTerminated.
func (p *peer) exec(sqe nvme.SQE, data []byte) (nvme.CQE, []byte, error) {
	cid, err := p.send(sqe, data)
	if err != nil {
		return nvme.CQE{}, nil, err
	}
	return p.wait(cid, data)
}

// wait reads until the completion of cid; responses to other commands are
// skipped, R2Ts for cid are answered from out.
func (p *peer) wait(cid uint16, out []byte) (nvme.CQE, []byte, error) {
	var in []byte
	deadline := time.Now().Add(peerWait)
	for {
		pdu, d, err := p.recv(time.Until(deadline))
		if err != nil {
			return nvme.CQE{}, in, err
		}
		switch v := pdu.(type) {
		case *tcp.CapsuleResp:
			if v.CQE.CID != cid {
				continue
			}
			if !v.CQE.Status.Success() {
				return v.CQE, in, v.CQE.Status
			}
			return v.CQE, in, nil
		case *tcp.C2HData:
			if v.CCCID != cid {
				continue
			}
			if end := int(v.DATAO) + len(d); end > len(in) {
				in = append(in, make([]byte, end-len(in))...)
			}
			copy(in[v.DATAO:], d)
			if v.Success {
				return nvme.CQE{CID: cid}, in, nil
			}
		case *tcp.R2T:
			if v.CCCID == cid {
				if err := p.answerR2T(v, out); err != nil {
					return nvme.CQE{}, in, err
				}
			}
		case *tcp.TermReq:
			return nvme.CQE{}, in, &tcp.PeerTerminated{FES: v.FES, FEI: v.FEI}
		default:
			return nvme.CQE{}, in, fmt.Errorf("unexpected %v", pdu.Type())
		}
	}
}

func (p *peer) answerR2T(v *tcp.R2T, data []byte) error {
	end := uint64(v.R2TO) + uint64(v.R2TL)
	if end > uint64(len(data)) {
		return errors.New("R2T beyond the command's data")
	}
	maxData := p.icresp.MAXH2CDATA
	for off := v.R2TO; uint64(off) < end; {
		n := min(uint32(end)-off, maxData)
		h := &tcp.H2CData{CCCID: v.CCCID, TTAG: v.TTAG, DATAO: off, DATAL: n, Last: uint64(off+n) == end}
		if err := p.raw(p.bytesOf(h, data[off:off+n])); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// connectData is the 1024 bytes of a Connect for this peer.
func (p *peer) connectData(subnqn string, cntlid uint16) []byte {
	d := nvme.ConnectData{HostID: p.hostid, CNTLID: cntlid, SubNQN: subnqn, HostNQN: p.nqn}
	return d.Append(nil)
}

// connect sends Fabrics Connect and waits for the answer.
func (p *peer) connect(subnqn string, qid, sqsize, cntlid uint16, kato uint32) (nvme.CQE, error) {
	c := nvme.Connect{QID: qid, SQSIZE: sqsize, KATO: kato}
	cqe, _, err := p.exec(c.SQE(0), p.connectData(subnqn, cntlid))
	return cqe, err
}

// ccEnable is CC with 64-byte SQEs, 16-byte CQEs and EN.
const ccEnable = 6<<16 | 4<<20 | nvme.CCEnable

func (p *peer) enable() error {
	_, _, err := p.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil)
	return err
}

// rawAdmin connects an admin queue (KATO 0: idle_timeout bounds it) to
// subnqn through port and enables the controller; it returns the peer and
// the CNTLID.
func (a *actor) rawAdmin(port uint16, subnqn string, dgst uint8) (*peer, uint16, error) {
	p, err := a.dial(port)
	if err != nil {
		return nil, 0, err
	}
	if err := p.icreq(dgst); err != nil {
		p.close(true)
		return nil, 0, err
	}
	cqe, err := p.connect(subnqn, 0, 31, nvme.CNTLIDDynamic, 0)
	if err != nil {
		p.close(true)
		return nil, 0, fmt.Errorf("admin Connect: %w", err)
	}
	if err := p.enable(); err != nil {
		p.close(true)
		return nil, 0, fmt.Errorf("enable: %w", err)
	}
	p.cntlid = uint16(cqe.DW0)
	return p, p.cntlid, nil
}

// rawIO connects I/O queue qid of controller cntlid (which admin set up).
func (a *actor) rawIO(admin *peer, cntlid, qid, sqsize uint16, dgst uint8) (*peer, error) {
	p, err := a.dial(admin.port)
	if err != nil {
		return nil, err
	}
	p.nqn, p.hostid = admin.nqn, admin.hostid
	if err := p.icreq(dgst); err != nil {
		p.close(true)
		return nil, err
	}
	if _, err := p.connect(soakNQN, qid, sqsize, cntlid, 0); err != nil {
		p.close(true)
		return nil, fmt.Errorf("I/O queue %d Connect: %w", qid, err)
	}
	p.cntlid = cntlid
	return p, nil
}

// rawAssoc is an admin queue and one I/O queue on the soak subsystem.
func (a *actor) rawAssoc(port uint16, sqsize uint16, dgst uint8) (admin, ioq *peer, err error) {
	admin, cntlid, err := a.rawAdmin(port, soakNQN, dgst)
	if err != nil {
		return nil, nil, err
	}
	ioq, err = a.rawIO(admin, cntlid, 1, sqsize, dgst)
	if err != nil {
		admin.close(true)
		return nil, nil, err
	}
	return admin, ioq, nil
}

// ended tells whether the target has ended the connection: it reads and
// discards until EOF or an error, at most slack bytes and endWait.
func (p *peer) ended(slack int64) (closed bool, n int64) {
	buf := make([]byte, 64<<10)
	_ = p.nc.SetReadDeadline(time.Now().Add(endWait))
	// What the framing reader already holds was delivered before.
	for n <= slack {
		m, err := p.nc.Read(buf)
		n += int64(m)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, n
			}
			return true, n
		}
	}
	return false, n
}

// expectEnded holds p (no reads, no writes) until bound plus boundSlack
// after since, then checks that the target ended the connection with at
// most the kernel's buffers still on the way. why names the bound.
func (a *actor) expectEnded(p *peer, since time.Time, bound time.Duration, why, variant string) {
	time.Sleep(time.Until(since.Add(bound + boundSlack)))
	closed, n := p.ended(a.s.slack)
	p.close(true)
	a.note("held")
	switch {
	case !closed && n > a.s.slack:
		a.violate("target kept sending to a peer past its bound ("+why+")",
			fmt.Sprintf("%s: %v after the bound started (%s %v), still sending: read %s and more", variant, time.Since(since).Round(time.Millisecond), why, bound, mib(uint64(n))))
	case !closed:
		a.violate("connection not ended within its bound ("+why+")",
			fmt.Sprintf("%s: still open %v after the bound started (%s %v, +%v slack); read %d bytes", variant, time.Since(since).Round(time.Millisecond), why, bound, boundSlack, n))
	case n > a.s.slack:
		a.violate("target kept sending to a peer past its bound ("+why+")",
			fmt.Sprintf("%s: read %s before EOF, more than the kernel buffers hold (%s)", variant, mib(uint64(n)), mib(uint64(a.s.slack))))
	default:
		a.note("let go in time")
	}
}

// holdAsync runs a held check on its own goroutine so the actor goes on
// misbehaving meanwhile; at most maxHeld at once per actor, beyond that
// it runs inline.
func (a *actor) holdAsync(fn func()) {
	select {
	case a.heldSem <- struct{}{}:
		a.held.Go(func() {
			defer func() { <-a.heldSem }()
			fn()
		})
	default:
		fn()
	}
}

const maxHeld = 6

// probe checks that port still answers a fresh ICReq within probeWait.
func (a *actor) probe(port uint16, after string) {
	start := time.Now()
	var err error
	for time.Since(start) < probeWait {
		var p *peer
		if p, err = a.dial(port); err == nil {
			_ = p.nc.SetDeadline(start.Add(probeWait))
			_, err = p.c.HostInitialize(tcp.ICReq{})
			p.close(true)
			if err == nil {
				a.note("probes answered")
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.violate("port stopped serving", fmt.Sprintf("port %d, %s: no ICResp within %v: %v", port, after, probeWait, err))
}

// countFDs counts descriptors without the gate (for the one holding it).
func countFDs() int {
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(d)
}

// isEOF reports an ended connection (EOF, reset, closed).
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE)
}
