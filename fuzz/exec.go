package fuzz

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// Reaction is how the target answered a case, as far as the host sees.
type Reaction string

// Reactions, from the most to the least telling.
const (
	// ReactClose: the target closed or reset a connection.
	ReactClose Reaction = "close"
	// ReactTermReq: the target sent a C2HTermReq.
	ReactTermReq Reaction = "c2htermreq"
	// ReactMalformed: the target sent bytes that are not a valid PDU
	// header (PLEN below 8 or above 16 MiB).
	ReactMalformed Reaction = "malformed"
	// ReactSilence: the target did not answer a PDU that asks for an
	// answer (ICReq, a command) within the response timeout, and held
	// the connection open.
	ReactSilence Reaction = "silence"
	// ReactResponse: every PDU that asks for an answer got one.
	ReactResponse Reaction = "response"
	// ReactNoConnect: a case connection could not be opened at all.
	ReactNoConnect Reaction = "no-connect"
)

var reactionRank = map[Reaction]int{ReactNoConnect: 6, ReactClose: 5, ReactTermReq: 4, ReactMalformed: 3, ReactSilence: 2, ReactResponse: 1}

// maxResponse bounds what one PDU from the target may claim: more is
// classed malformed and never allocated.
const maxResponse = 16 << 20

// splitPause is the pause between the two writes of a split PDU: long
// enough that the target sees them in separate reads.
const splitPause = 2 * time.Millisecond

// Executor runs cases against one target address.
type Executor struct {
	Addr string
	// ResponseTimeout bounds each wait for an answer. Once one passes on a
	// connection, the rest of its PDUs go without waiting.
	ResponseTimeout time.Duration
	// Dial opens a case connection (default: TCP to Addr).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (e *Executor) dial(ctx context.Context) (net.Conn, error) {
	if e.Dial != nil {
		return e.Dial(ctx, e.Addr)
	}
	d := net.Dialer{Timeout: max(e.ResponseTimeout, time.Second)}
	return d.DialContext(ctx, "tcp", e.Addr)
}

type liveConn struct {
	nc       net.Conn
	dead     bool // closed, reset or terminated: nothing more is sent
	noWait   bool // a wait timed out: the rest goes without waiting
	r2t      map[uint16]uint16
	connCID  int // CID of this connection's admin Connect, -1 if none
	reaction Reaction
	buf      []byte
}

// Outcome is what running one case showed.
type Outcome struct {
	Reaction Reaction
	// Steps is how many steps were sent (in whole or in part).
	Steps int
}

// Run sends c. rec, if not nil, records every connection (one trace).
func (e *Executor) Run(ctx context.Context, c *Case, rec capture.Recorder) Outcome {
	conns := map[int]*liveConn{}
	defer func() {
		for _, lc := range conns {
			_ = lc.nc.Close()
		}
	}()
	var cntlid uint16
	haveCNTLID := false
	out := Outcome{Reaction: ReactResponse}
	worse := func(r Reaction) {
		if reactionRank[r] > reactionRank[out.Reaction] {
			out.Reaction = r
		}
	}
	handle := func(lc *liveConn, typ tcp.PDUType, b []byte) (cid uint16, resp bool) {
		switch typ {
		case tcp.TypeCapsuleResp:
			if len(b) >= 24 {
				cid = binary.LittleEndian.Uint16(b[20:])
				st := binary.LittleEndian.Uint16(b[22:]) >> 1
				if int(cid) == lc.connCID && st == 0 {
					cntlid, haveCNTLID = uint16(binary.LittleEndian.Uint32(b[8:])), true
				}
				return cid, true
			}
		case tcp.TypeR2T:
			if len(b) >= 12 {
				cid = binary.LittleEndian.Uint16(b[8:])
				lc.r2t[cid] = binary.LittleEndian.Uint16(b[10:])
				return cid, true
			}
		case tcp.TypeC2HData:
			// The last C2HData with SUCCESS set completes its command:
			// no CapsuleResp follows (SPDK sets it).
			if len(b) >= 10 && b[1]&(tcp.FlagLastPDU|tcp.FlagSuccess) == tcp.FlagLastPDU|tcp.FlagSuccess {
				return binary.LittleEndian.Uint16(b[8:]), true
			}
		case tcp.TypeC2HTermReq:
			lc.dead = true
			lc.reaction = ReactTermReq
		}
		return 0, false
	}
	// wait reads until want says stop, the connection ends or the
	// response timeout passes.
	wait := func(lc *liveConn, want func(typ tcp.PDUType, cid uint16, resp bool) bool, d time.Duration) {
		deadline := time.Now().Add(d)
		for !lc.dead && ctx.Err() == nil {
			typ, b, err := lc.read(deadline)
			if err != nil {
				var ne net.Error
				switch {
				case errors.As(err, &ne) && ne.Timeout():
					if want != nil {
						lc.noWait = true
						if lc.reaction == ReactResponse {
							lc.reaction = ReactSilence
						}
					}
				case errors.Is(err, errMalformed):
					lc.dead, lc.reaction = true, ReactMalformed
				default:
					lc.dead, lc.reaction = true, ReactClose
				}
				return
			}
			cid, resp := handle(lc, typ, b)
			if want != nil && want(typ, cid, resp) {
				return
			}
		}
	}
	for i := range c.Steps {
		if ctx.Err() != nil {
			break
		}
		s := &c.Steps[i]
		lc := conns[s.Conn]
		if lc == nil {
			nc, err := e.dial(ctx)
			if err != nil {
				worse(ReactNoConnect)
				lc = &liveConn{dead: true, reaction: ReactNoConnect, nc: nopConn{}}
				conns[s.Conn] = lc
				continue
			}
			if rec != nil {
				nc = rec.Record(nc, true, fmt.Sprintf("nvmftest fuzz: case %d connection %d", c.ID, s.Conn))
			}
			lc = &liveConn{nc: nc, r2t: map[uint16]uint16{}, connCID: -1, reaction: ReactResponse}
			conns[s.Conn] = lc
		}
		if lc.dead {
			continue
		}
		b := applyFixes(s, cntlid, haveCNTLID, func(cccid uint16) (uint16, bool) {
			t, ok := lc.r2t[cccid]
			return t, ok
		})
		want := expectation(b)
		if isAdminConnect(b) {
			lc.connCID = int(binary.LittleEndian.Uint16(b[10:]))
		}
		out.Steps++
		if err := lc.write(b, s.Split, e.ResponseTimeout); err != nil {
			lc.dead, lc.reaction = true, ReactClose
			continue
		}
		if want != nil && !lc.noWait {
			wait(lc, want, e.ResponseTimeout)
		}
	}
	// A last look at every connection: a close or a C2HTermReq answering
	// the last PDUs.
	for _, lc := range conns {
		if !lc.dead {
			wait(lc, nil, min(e.ResponseTimeout, 20*time.Millisecond))
		}
		worse(lc.reaction)
	}
	return out
}

// expectation says which answer the PDU b asks for: ICReq an ICResp, a
// command its response (or an R2T), the last H2CData of a transfer the
// command's response (or the next R2T). nil: none.
func expectation(b []byte) func(tcp.PDUType, uint16, bool) bool {
	if len(b) < tcp.CommonHeaderSize {
		return nil
	}
	switch tcp.PDUType(b[0]) {
	case tcp.TypeICReq:
		return func(tcp.PDUType, uint16, bool) bool { return true }
	case tcp.TypeCapsuleCmd:
		if len(b) < 12 || b[8] == nvme.AdminAsyncEventReq {
			// An Asynchronous Event Request stays outstanding until an
			// event: nothing to wait for.
			return nil
		}
		want := binary.LittleEndian.Uint16(b[10:])
		return func(_ tcp.PDUType, cid uint16, resp bool) bool { return resp && cid == want }
	case tcp.TypeH2CData:
		if len(b) < 10 || b[1]&tcp.FlagLastPDU == 0 {
			return nil
		}
		want := binary.LittleEndian.Uint16(b[8:])
		return func(_ tcp.PDUType, cid uint16, resp bool) bool { return resp && cid == want }
	}
	return nil
}

func isAdminConnect(b []byte) bool {
	return len(b) >= 52 && b[0] == byte(tcp.TypeCapsuleCmd) && b[8] == nvme.AdminFabrics &&
		b[12] == nvme.FabricsConnect && binary.LittleEndian.Uint16(b[50:]) == 0
}

var errMalformed = errors.New("malformed PDU from the target")

// read reads one PDU from the target before deadline.
func (lc *liveConn) read(deadline time.Time) (tcp.PDUType, []byte, error) {
	_ = lc.nc.SetReadDeadline(deadline)
	if cap(lc.buf) < tcp.CommonHeaderSize {
		lc.buf = make([]byte, 4096)
	}
	h := lc.buf[:tcp.CommonHeaderSize]
	if _, err := io.ReadFull(lc.nc, h); err != nil {
		return 0, nil, err
	}
	plen := binary.LittleEndian.Uint32(h[4:])
	if plen < tcp.CommonHeaderSize || plen > maxResponse {
		return 0, nil, errMalformed
	}
	if int(plen) > cap(lc.buf) {
		nb := make([]byte, plen)
		copy(nb, h)
		lc.buf = nb
	}
	b := lc.buf[:plen]
	if _, err := io.ReadFull(lc.nc, b[tcp.CommonHeaderSize:]); err != nil {
		return 0, nil, err
	}
	return tcp.PDUType(b[0]), b, nil
}

func (lc *liveConn) write(b []byte, split int, d time.Duration) error {
	_ = lc.nc.SetWriteDeadline(time.Now().Add(max(4*d, 2*time.Second)))
	if split > 0 && split < len(b) {
		if _, err := lc.nc.Write(b[:split]); err != nil {
			return err
		}
		time.Sleep(splitPause)
		b = b[split:]
	}
	_, err := lc.nc.Write(b)
	return err
}

// nopConn stands in for a connection that could not be opened.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }
