package hostconform

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Dir is the direction a PDU travelled.
type Dir int

// Directions of a PDU on the wire.
const (
	FromHost Dir = iota // host to controller
	ToHost              // controller to host
)

func (d Dir) String() string {
	if d == FromHost {
		return "host->ctrl"
	}
	return "ctrl->host"
}

// Frame is one PDU as the host sent it or as the host got it (after the
// check's behaviour changed or injected it), with the time the tap saw it.
type Frame struct {
	Dir Dir
	At  time.Time
	// Seq orders the frames of one connection across both directions.
	Seq int
	CH  tcp.CommonHeader
	// Raw is the whole PDU as on the wire: header, digest, padding, data,
	// data digest.
	Raw []byte
	// PDU holds the decoded type-specific fields; nil when the PDU does
	// not decode (Err says why).
	PDU tcp.PDU
	// Err is a decoding error: a *tcp.FatalError for a malformed header
	// (a wrong header digest included), tcp.ErrDataDigest for a wrong data
	// digest (PDU is set then).
	Err error
	// Injected marks a PDU the check's behaviour made, not the target.
	Injected bool
}

// Data is the PDU's data (in-capsule data, H2CData/C2HData data, TermReq
// error data); nil if it has none or did not decode.
func (f *Frame) Data() []byte {
	hlen := int(f.CH.HLEN)
	switch f.CH.Type {
	case tcp.TypeH2CTermReq, tcp.TypeC2HTermReq:
		if len(f.Raw) > hlen {
			return f.Raw[hlen:]
		}
		return nil
	case tcp.TypeCapsuleCmd, tcp.TypeH2CData, tcp.TypeC2HData:
	default:
		return nil
	}
	start := int(f.CH.PDO)
	end := len(f.Raw)
	if f.CH.Flags&tcp.FlagDDGST != 0 {
		end -= tcp.DigestSize
	}
	if start == 0 || start > end {
		return nil
	}
	return f.Raw[start:end]
}

// HeaderLen is where the header (with its digest, if flagged) ends.
func (f *Frame) HeaderLen() int {
	n := int(f.CH.HLEN)
	if f.CH.Flags&tcp.FlagHDGST != 0 && digestible(f.CH.Type) {
		n += tcp.DigestSize
	}
	return min(n, len(f.Raw))
}

func (f *Frame) String() string {
	s := fmt.Sprintf("#%d %v %v", f.Seq, f.Dir, f.CH)
	switch p := f.PDU.(type) {
	case *tcp.CapsuleCmd:
		s += fmt.Sprintf(" opc=%#x cid=%d", p.SQE.Opcode, p.SQE.CID)
	case *tcp.CapsuleResp:
		s += fmt.Sprintf(" cid=%d status=%#x", p.CQE.CID, uint16(p.CQE.Status))
	case *tcp.H2CData:
		s += fmt.Sprintf(" cccid=%d ttag=%d datao=%d datal=%d last=%v", p.CCCID, p.TTAG, p.DATAO, p.DATAL, p.Last)
	case *tcp.C2HData:
		s += fmt.Sprintf(" cccid=%d datao=%d datal=%d last=%v success=%v", p.CCCID, p.DATAO, p.DATAL, p.Last, p.Success)
	case *tcp.R2T:
		s += fmt.Sprintf(" cccid=%d ttag=%d r2to=%d r2tl=%d", p.CCCID, p.TTAG, p.R2TO, p.R2TL)
	case *tcp.TermReq:
		s += fmt.Sprintf(" fes=%#x fei=%#x", p.FES, p.FEI)
	}
	if f.Err != nil {
		s += " err=" + f.Err.Error()
	}
	if f.Injected {
		s += " (injected)"
	}
	return s
}

func digestible(t tcp.PDUType) bool {
	return t != tcp.TypeICReq && t != tcp.TypeICResp && t != tcp.TypeH2CTermReq && t != tcp.TypeC2HTermReq
}

// maxFrame bounds the PLEN the tap frames: a larger one is not a PDU any
// host or target sends (MDTS-sized data goes in many PDUs), and the tap
// must not buffer gigabytes for a broken peer. Past it, the stream is
// passed through unframed.
const maxFrame = 64 << 20

// decodeFrame decodes raw leniently: digests and padding as the PDU's own
// flags and PDO say, whatever was negotiated, so a host that gets them
// wrong is still seen.
func decodeFrame(raw []byte, dir Dir) (tcp.CommonHeader, tcp.PDU, error) {
	var ch tcp.CommonHeader
	_ = ch.Decode(raw)
	r := tcp.Rules{Controller: dir == FromHost}
	if digestible(ch.Type) {
		r.Header = ch.Flags&tcp.FlagHDGST != 0
		r.Data = ch.Flags&tcp.FlagDDGST != 0
	}
	p, _, _, _, err := tcp.Parse(raw, &r)
	return ch, p, err
}

// Hook sees each PDU one way and returns what goes on instead: nil drops
// it, [][]byte{f.Raw} passes it (the default). It may return several PDUs
// (an R2T split in two) or one it made (a corrupted digest). The Conn is
// the connection it travels on, for hooks that inject or keep state.
type Hook func(c *Conn, f *Frame) [][]byte

// Conn is one connection between the host under test and the test
// controller, seen from the middle: the target serves it as its net.Conn,
// the host is at the other end of raw. It records every PDU both ways and
// lets the check's behaviour change, drop or add PDUs.
type Conn struct {
	raw      net.Conn
	id       int
	opened   time.Time
	toHost   Hook // nil passes everything
	fromHost Hook

	mu       sync.Mutex
	frames   []*Frame
	seq      int
	closed   chan struct{} // closed once the host closed or reset, or the test controller closed
	closedAt time.Time
	closeBy  string // "host" (FIN), "host reset", "controller"
	severed  bool   // a TermReq went to the host: nothing the target sends follows it
	qid      int    // the queue the host's Connect names; -1 before it
	notify   chan struct{}
	state    map[string]any

	// host to controller, on the target's reading goroutine
	rbuf, out []byte
	tmp       [64 << 10]byte
	rerr      error
	unframed  bool

	// controller to host
	wmu  sync.Mutex
	wbuf []byte
}

func newConn(raw net.Conn, id int, toHost, fromHost Hook, notify chan struct{}) *Conn {
	return &Conn{raw: raw, id: id, opened: time.Now(), toHost: toHost, fromHost: fromHost,
		closed: make(chan struct{}), notify: notify, state: map[string]any{}, qid: -1}
}

// ID numbers the connection in the order the test controller accepted it
// (from 1).
func (c *Conn) ID() int { return c.id }

// State is scratch space for a behaviour's hooks (per connection).
func (c *Conn) State() map[string]any { return c.state }

// Frames returns a snapshot of the PDUs seen so far, in order.
func (c *Conn) Frames() []*Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Frame(nil), c.frames...)
}

// Closed is closed once the connection ended.
func (c *Conn) Closed() <-chan struct{} { return c.closed }

// CloseInfo says who ended the connection ("host", "host reset",
// "controller"; "" while open) and when.
func (c *Conn) CloseInfo() (by string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeBy, c.closedAt
}

func (c *Conn) markClosed(by string) {
	c.mu.Lock()
	if c.closeBy == "" {
		c.closeBy, c.closedAt = by, time.Now()
		close(c.closed)
	}
	c.mu.Unlock()
	c.poke()
}

func (c *Conn) poke() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *Conn) record(dir Dir, raw []byte, injected bool) *Frame {
	ch, p, err := decodeFrame(raw, dir)
	f := &Frame{Dir: dir, At: time.Now(), CH: ch, Raw: raw, PDU: p, Err: err, Injected: injected}
	c.mu.Lock()
	c.seq++
	f.Seq = c.seq
	c.frames = append(c.frames, f)
	if p, ok := p.(*tcp.CapsuleCmd); ok && c.qid < 0 && dir == FromHost && IsConnect(&p.SQE) {
		c.qid = int(nvme.DecodeConnect(&p.SQE).QID)
	}
	c.mu.Unlock()
	c.poke()
	return f
}

// Read gives the target what the host sent, PDU by PDU, through the
// fromHost hook.
func (c *Conn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		n, err := c.raw.Read(c.tmp[:])
		if n > 0 {
			if c.unframed {
				c.out = append(c.out, c.tmp[:n]...)
			} else {
				c.rbuf = append(c.rbuf, c.tmp[:n]...)
				c.drainHost()
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if len(c.out) > 0 {
					break
				}
				return 0, err // a deadline: the connection stays as it was
			}
			c.rerr = err
			switch {
			case errors.Is(err, io.EOF):
				c.markClosed("host")
			case errors.Is(err, net.ErrClosed):
				c.markClosed("controller")
			default:
				c.markClosed("host reset")
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
	}
	return n, nil
}

func (c *Conn) drainHost() {
	for !c.unframed && len(c.rbuf) >= tcp.CommonHeaderSize {
		plen := int(binary.LittleEndian.Uint32(c.rbuf[4:]))
		if plen < tcp.CommonHeaderSize || plen > maxFrame {
			// Not a PDU boundary any more: record it and pass the rest
			// through as it comes; the target judges it.
			c.record(FromHost, append([]byte(nil), c.rbuf...), false)
			c.out = append(c.out, c.rbuf...)
			c.rbuf, c.unframed = nil, true
			return
		}
		if len(c.rbuf) < plen {
			return
		}
		raw := append([]byte(nil), c.rbuf[:plen]...)
		c.rbuf = c.rbuf[plen:]
		f := c.record(FromHost, raw, false)
		c.mu.Lock()
		severed := c.severed
		c.mu.Unlock()
		if severed {
			// A C2HTermReq went to the host in the target's name: the
			// target is cut off, and what the host does next is the
			// host's alone (the target would close on its H2CTermReq).
			continue
		}
		outs := [][]byte{raw}
		if c.fromHost != nil {
			outs = c.fromHost(c, f)
		}
		for _, o := range outs {
			c.out = append(c.out, o...)
		}
	}
	if len(c.rbuf) == 0 {
		c.rbuf = nil
	}
}

// Write takes what the target sends, PDU by PDU, through the toHost hook
// to the host. After a TermReq has gone to the host, the rest is dropped:
// nothing may follow it.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.wbuf, b...)
	for len(c.wbuf) >= tcp.CommonHeaderSize {
		plen := int(binary.LittleEndian.Uint32(c.wbuf[4:]))
		if plen < tcp.CommonHeaderSize || plen > maxFrame {
			// The target sends such a thing only on purpose (a quirk).
			rest := c.wbuf
			c.wbuf = nil
			return len(b), c.sendLocked(rest, false)
		}
		if len(c.wbuf) < plen {
			break
		}
		raw := append([]byte(nil), c.wbuf[:plen]...)
		c.wbuf = c.wbuf[plen:]
		outs := [][]byte{raw}
		if c.toHost != nil {
			ch, p, err := decodeFrame(raw, ToHost)
			outs = c.toHost(c, &Frame{Dir: ToHost, At: time.Now(), CH: ch, Raw: raw, PDU: p, Err: err})
		}
		for _, o := range outs {
			if err := c.sendLocked(o, !sameBytes(o, raw)); err != nil {
				return len(b), err
			}
		}
	}
	if len(c.wbuf) == 0 {
		c.wbuf = nil
	}
	return len(b), nil
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// sendLocked sends one PDU to the host and records it (under wmu).
func (c *Conn) sendLocked(raw []byte, injected bool) error {
	c.mu.Lock()
	severed := c.severed
	c.mu.Unlock()
	if severed {
		return nil
	}
	f := c.record(ToHost, raw, injected)
	if f.CH.Type == tcp.TypeC2HTermReq {
		c.mu.Lock()
		c.severed = true
		c.mu.Unlock()
	}
	_, err := c.raw.Write(raw)
	return err
}

// Inject sends raw PDU bytes to the host now, between the target's PDUs.
// A C2HTermReq severs the target from the host: nothing it sends later
// reaches the host.
func (c *Conn) Inject(raw []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sendLocked(raw, true)
}

// Close closes the connection to the host (the target ends it).
func (c *Conn) Close() error {
	err := c.raw.Close()
	c.markClosed("controller")
	return err
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error { return c.raw.SetDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// FixDigests recomputes the header digest (if HDGSTF is set) and the data
// digest (if DDGSTF is set) of raw in place, after a hook changed a field.
func FixDigests(raw []byte) []byte {
	var ch tcp.CommonHeader
	if ch.Decode(raw) != nil || !digestible(ch.Type) {
		return raw
	}
	hlen := int(ch.HLEN)
	if ch.Flags&tcp.FlagHDGST != 0 && len(raw) >= hlen+tcp.DigestSize {
		binary.LittleEndian.PutUint32(raw[hlen:], tcp.Checksum(raw[:hlen]))
	}
	if ch.Flags&tcp.FlagDDGST != 0 && int(ch.PDO) > 0 && len(raw) >= int(ch.PDO)+tcp.DigestSize {
		end := len(raw) - tcp.DigestSize
		binary.LittleEndian.PutUint32(raw[end:], tcp.Checksum(raw[ch.PDO:end]))
	}
	return raw
}
