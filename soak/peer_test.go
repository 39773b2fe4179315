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

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// A peer is one raw NVMe/TCP connection a misbehaving actor drives by
// hand: an initiator.Raw over a socket the soak dials itself, so that its
// receive buffer is set as a slow reader's is (small, fixed before
// connecting) and it can be closed with a reset.

// peerRcvBuf is every peer socket's receive buffer. Setting it before
// connecting also turns off the kernel's autotuning, so that what an ended
// connection can still deliver (Soak.slack) is small and known.
const peerRcvBuf = 64 << 10

// peerWait bounds one answer a peer waits for when the target has no
// reason to be slow.
const peerWait = 10 * time.Second

type peer struct {
	*initiator.Raw
	a      *actor
	port   uint16
	nc     *net.TCPConn
	born   time.Time // dialled
	cntlid uint16    // of the controller an admin queue connected
	// nqn and hostid are the host the peer's Connects name. badconnect
	// changes them on I/O queues only: ConnectAdmin takes the host ID from
	// the Options dial gave Raw.
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
	nqn, hostid := hostNQN(a.id()), hostID(a.id())
	// Naming the host keeps Raw from reading /etc/nvme for a default (a
	// descriptor opened outside the gate). KATO -1 asks for none:
	// idle_timeout bounds every peer. What the framing's read buffer holds
	// is not counted by ended: it is kept small.
	r := initiator.NewRaw(nc, tcp.Config{ReadBufferSize: 16 << 10}, initiator.Options{HostNQN: nqn, HostID: hostid, KATO: -1, Timeout: peerWait})
	return &peer{Raw: r, a: a, port: port, nc: nc.(*net.TCPConn), born: time.Now(), nqn: nqn, hostid: hostid}, nil
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

// errICReq marks a failed ICReq/ICResp exchange.
var errICReq = errors.New("ICReq")

// icreq runs ICReq/ICResp asking for the digests in dgst; if that fails
// it closes the connection with a reset.
func (p *peer) icreq(dgst uint8) error {
	if _, err := p.Initialize(tcp.ICReq{DGST: dgst}); err != nil {
		p.close(true)
		return fmt.Errorf("%w: %w", errICReq, err)
	}
	return nil
}

// initialized dials port and runs ICReq: a peer ready for its first
// command.
func (a *actor) initialized(port uint16, dgst uint8) (*peer, error) {
	p, err := a.dial(port)
	if err != nil {
		return nil, err
	}
	if err := p.icreq(dgst); err != nil {
		return nil, err
	}
	return p, nil
}

// initializedFor is initialized for episode v: nil if the dial failed
// (only counted) or ICReq did (a violation: the target must serve it).
func (a *actor) initializedFor(v string, port uint16, dgst uint8) *peer {
	p, err := a.initialized(port, dgst)
	if errors.Is(err, errICReq) {
		a.setupFailed(v, err)
	}
	return p
}

// bytesOf is the wire encoding of a PDU under the negotiated options.
func (p *peer) bytesOf(pdu tcp.PDU, data []byte) []byte {
	return tcp.AppendPDU(nil, pdu, data, p.Encoding())
}

// capsule gives sqe a fresh CID (unless it has one) and returns its
// encoding: data travels in the capsule when the SGL says so (a Data
// Block with the Offset subtype), otherwise it is what R2Ts ask for.
func (p *peer) capsule(sqe *nvme.SQE, data []byte) []byte {
	if sqe.CID == 0 {
		sqe.CID = p.NextCID()
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
	return sqe.CID, p.SendBytes(b)
}

// readUntil hands fn every PDU the target sends until deadline, until fn
// returns false or a read fails; it returns that read's error (nil if fn
// stopped).
func (p *peer) readUntil(deadline time.Time, fn func(tcp.PDU) bool) error {
	for {
		// Raw.Recv takes a timeout of 0 for its default: once the deadline
		// has passed, a nanosecond still hands over what is buffered.
		pdu, _, _, err := p.Recv(max(time.Until(deadline), time.Nanosecond))
		if err != nil {
			return err
		}
		if !fn(pdu) {
			return nil
		}
	}
}

// connectData is the 1024 bytes of a Connect for this peer.
func (p *peer) connectData(subnqn string, cntlid uint16) []byte {
	d := nvme.ConnectData{HostID: p.hostid, CNTLID: cntlid, SubNQN: subnqn, HostNQN: p.nqn}
	return d.Append(nil)
}

// connect sends Connect c for controller cntlid of subnqn, naming the
// peer's host, and waits for the answer.
func (p *peer) connect(subnqn string, cntlid uint16, c nvme.Connect) (nvme.CQE, error) {
	cqe, _, err := p.Command(c.SQE(0), p.connectData(subnqn, cntlid))
	return cqe, err
}

// ccEnable is CC with 64-byte SQEs, 16-byte CQEs and EN.
const ccEnable = 6<<16 | 4<<20 | nvme.CCEnable

func (p *peer) enable() error {
	_, _, err := p.Command(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil)
	return err
}

// adminQueue connects an admin queue (KATO 0: idle_timeout bounds it) to
// subnqn through port; the controller is not enabled.
func (a *actor) adminQueue(port uint16, subnqn string, dgst uint8) (*peer, error) {
	p, err := a.initialized(port, dgst)
	if err != nil {
		return nil, err
	}
	cqe, err := p.ConnectAdmin(subnqn, p.nqn)
	if err != nil {
		p.close(true)
		return nil, fmt.Errorf("admin Connect: %w", err)
	}
	p.cntlid = uint16(cqe.DW0)
	return p, nil
}

// rawAdmin is adminQueue with the controller enabled.
func (a *actor) rawAdmin(port uint16, subnqn string, dgst uint8) (*peer, error) {
	p, err := a.adminQueue(port, subnqn, dgst)
	if err != nil {
		return nil, err
	}
	if err := p.enable(); err != nil {
		p.close(true)
		return nil, fmt.Errorf("enable: %w", err)
	}
	return p, nil
}

// adminFor is rawAdmin for episode v: nil if the set-up failed (a
// violation: the target must serve it).
func (a *actor) adminFor(v string, port uint16, subnqn string, dgst uint8) *peer {
	p, err := a.rawAdmin(port, subnqn, dgst)
	if err != nil {
		a.setupFailed(v, err)
	}
	return p
}

// beside opens a connection for an I/O queue of admin's controller: the
// same port and host, ICReq done.
func (a *actor) beside(admin *peer, dgst uint8) (*peer, error) {
	p, err := a.initialized(admin.port, dgst)
	if err != nil {
		return nil, err
	}
	p.nqn, p.hostid = admin.nqn, admin.hostid
	return p, nil
}

// rawAssoc is an admin queue and one I/O queue on the soak subsystem.
func (a *actor) rawAssoc(port uint16, sqsize uint16, dgst uint8) (admin, ioq *peer, err error) {
	admin, err = a.rawAdmin(port, soakNQN, dgst)
	if err != nil {
		return nil, nil, err
	}
	ioq, err = a.beside(admin, dgst)
	if err == nil {
		if _, err = ioq.connect(soakNQN, admin.cntlid, nvme.Connect{QID: 1, SQSIZE: sqsize}); err != nil {
			ioq.close(true)
			err = fmt.Errorf("I/O queue 1 Connect: %w", err)
		}
	}
	if err != nil {
		admin.close(true)
		return nil, nil, err
	}
	return admin, ioq, nil
}

// assocFor is rawAssoc through port 1 for episode v: nil peers if the
// set-up failed (a violation: the target must serve it).
func (a *actor) assocFor(v string, sqsize uint16, dgst uint8) (admin, ioq *peer) {
	admin, ioq, err := a.rawAssoc(portAll, sqsize, dgst)
	if err != nil {
		a.setupFailed(v, err)
	}
	return admin, ioq
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
			// Not Initialize, which sets a bound of its own: probeWait
			// bounds the whole probe, retries included.
			_, err = p.Conn.HostInitialize(tcp.ICReq{})
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
