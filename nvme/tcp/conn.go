package tcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Config tunes a Conn. Zero values pick the defaults.
type Config struct {
	// ReadBufferSize is the size of the receive buffer (default 64 KiB).
	// Headers are decoded straight out of it; large data bypasses it.
	ReadBufferSize int
	// MaxPending bounds the bytes queued for sending before Send blocks
	// (default 4 MiB), so a slow peer cannot grow memory without bound.
	MaxPending int
}

// Conn is one NVMe/TCP connection, used by both the host and the
// controller. One goroutine reads with Next and ReadData; any number of
// goroutines send with Send.
//
// Sending coalesces: PDUs queued while another goroutine is in the middle
// of writing, or while the connection is corked, go out together in one
// write. A receive loop corks while it still has buffered input and uncorks
// when it is about to block, so a burst of commands gets one burst of
// responses rather than one syscall each.
type Conn struct {
	nc     net.Conn
	rules  Rules
	enc    EncodeOptions
	icDone bool

	// receive side, owned by the reading goroutine
	br      *bufio.Reader
	hbuf    [HLenIC + DigestSize]byte
	ch      CommonHeader
	layout  Layout
	unread  int  // bytes of the current PDU not yet consumed
	inPDU   bool // Next is part way through a PDU (see Idle)
	pdus    pduSet
	scratch [512]byte

	// send side
	mu         sync.Mutex
	flushed    sync.Cond
	buf, spare []byte
	flushing   bool
	corked     int
	werr       error
	maxPending int
}

type pduSet struct {
	icreq  ICReq
	icresp ICResp
	term   TermReq
	cmd    CapsuleCmd
	resp   CapsuleResp
	h2c    H2CData
	c2h    C2HData
	r2t    R2T
}

func (s *pduSet) get(t PDUType) PDU {
	switch t {
	case TypeICReq:
		return &s.icreq
	case TypeICResp:
		return &s.icresp
	case TypeH2CTermReq:
		s.term.H2C = true
		return &s.term
	case TypeC2HTermReq:
		s.term.H2C = false
		return &s.term
	case TypeCapsuleCmd:
		return &s.cmd
	case TypeCapsuleResp:
		return &s.resp
	case TypeH2CData:
		return &s.h2c
	case TypeC2HData:
		return &s.c2h
	case TypeR2T:
		return &s.r2t
	}
	return nil
}

// NewConn wraps nc. controller selects which PDUs it accepts. Until
// Negotiated is called only the IC exchange is legal and no digests are
// used.
func NewConn(nc net.Conn, controller bool, cfg Config) *Conn {
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 64 << 10
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4 << 20
	}
	c := &Conn{
		nc:         nc,
		rules:      Rules{Controller: controller},
		br:         bufio.NewReaderSize(nc, cfg.ReadBufferSize),
		maxPending: cfg.MaxPending,
	}
	c.flushed.L = &c.mu
	return c
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Negotiated records the outcome of ICReq/ICResp: digests in both
// directions, the alignment this side asked for (rxPDA) and the one the
// peer asked for (txPDA). After it, IC PDUs are a sequence error.
func (c *Conn) Negotiated(d Digests, rxPDA, txPDA uint8) {
	c.rules.Digests = d
	c.rules.PDA = rxPDA
	c.mu.Lock()
	c.enc = EncodeOptions{Digests: d, PDA: txPDA}
	c.mu.Unlock()
	c.icDone = true
}

// SetLimits sets the data bounds the receiver enforces.
func (c *Conn) SetLimits(maxCapsuleData, maxData uint32) {
	c.rules.MaxCapsuleData = maxCapsuleData
	c.rules.MaxData = maxData
}

// Rules returns the rules received PDUs are checked against.
func (c *Conn) Rules() Rules { return c.rules }

// Next reads the next PDU header. The returned PDU and Header are valid
// until the following call to Next. If the PDU carries data, call ReadData
// before the next Next to get it; otherwise Next discards it. Protocol
// violations are returned as *FatalError: send it with Terminate.
func (c *Conn) Next() (PDU, error) {
	c.inPDU = true
	if c.unread > 0 {
		if _, err := c.br.Discard(c.unread); err != nil {
			return nil, unexpected(err)
		}
		c.unread = 0
	}
	c.layout = Layout{}
	// Wait for the first byte without consuming it, so that a read
	// deadline that expires before the next PDU starts leaves the
	// connection as it was (Idle).
	if c.br.Buffered() == 0 {
		c.inPDU = false
		if _, err := c.br.Peek(1); err != nil {
			return nil, err
		}
		c.inPDU = true
	}
	hb := c.hbuf[:]
	if _, err := io.ReadFull(c.br, hb[:CommonHeaderSize]); err != nil {
		return nil, err
	}
	_ = c.ch.Decode(hb)
	rest, ferr := c.rules.headerLen(&c.ch, hb)
	if ferr != nil {
		return nil, ferr
	}
	hend := CommonHeaderSize + rest
	if _, err := io.ReadFull(c.br, hb[CommonHeaderSize:hend]); err != nil {
		return nil, unexpected(err)
	}
	isIC := c.ch.Type == TypeICReq || c.ch.Type == TypeICResp
	if isIC == c.icDone {
		if isIC {
			return nil, fatal(FESPDUSequenceError, 0, hb[:hend], "%v after connection initialization", c.ch.Type)
		}
		if c.ch.Type != TypeH2CTermReq && c.ch.Type != TypeC2HTermReq {
			return nil, fatal(FESPDUSequenceError, 0, hb[:hend], "%v before ICReq/ICResp", c.ch.Type)
		}
	}
	p := c.pdus.get(c.ch.Type)
	p.decode(hb[CommonHeaderSize:c.ch.HLEN], c.ch.Flags)
	l, ferr := c.rules.check(&c.ch, hb[:hend], p)
	if ferr != nil {
		return nil, ferr
	}
	c.layout = l
	c.unread = l.Pad + l.DataLen
	if l.DDigest {
		c.unread += DigestSize
	}
	c.inPDU = false
	return p, nil
}

// Idle reports whether the last Next failed before any byte of a new PDU
// arrived, the previous one's data included. An error then, such as an
// expired read deadline, left the connection intact: Next may be called
// again. After an error part way through a PDU Idle is false.
func (c *Conn) Idle() bool { return !c.inPDU }

// Header returns the common header of the PDU Next returned last.
func (c *Conn) Header() CommonHeader { return c.ch }

// RawHeader returns the bytes of that PDU's header (including a header
// digest), valid until the next Next.
func (c *Conn) RawHeader() []byte { return c.hbuf[:c.layout.HeaderLen] }

// DataLen returns the length of the current PDU's data.
func (c *Conn) DataLen() int { return c.layout.DataLen }

// Buffered reports how many received bytes are waiting in the buffer
// beyond the current PDU's unread data (which Next discards): zero means
// the next Next will block on the network.
func (c *Conn) Buffered() int { return max(c.br.Buffered()-c.unread, 0) }

// PDUBuffered reports whether the next PDU is in the buffer whole, so
// that Next and reading its data will not wait for the network. A loop
// that corks its sends while it works through what one read brought in
// uncorks when this turns false: before it could block with responses
// held back.
func (c *Conn) PDUBuffered() bool {
	n := c.Buffered()
	if n < CommonHeaderSize {
		return false
	}
	b, err := c.br.Peek(c.unread + CommonHeaderSize) // buffered: never reads
	if err != nil {
		return false
	}
	plen := binary.LittleEndian.Uint32(b[c.unread+4:])
	return uint64(n) >= uint64(plen)
}

// ReadData reads the current PDU's data into dst, which must be DataLen
// bytes long, and checks its data digest. ErrDataDigest leaves the
// connection usable: the bytes were consumed.
func (c *Conn) ReadData(dst []byte) error {
	l := c.layout
	if len(dst) != l.DataLen || c.unread == 0 {
		return errors.New("nvme/tcp: ReadData: no such data")
	}
	if l.Pad > 0 {
		if _, err := c.br.Discard(l.Pad); err != nil {
			return unexpected(err)
		}
	}
	if _, err := io.ReadFull(c.br, dst); err != nil {
		return unexpected(err)
	}
	c.unread = 0
	if !l.DDigest {
		return nil
	}
	d := c.scratch[:DigestSize]
	if _, err := io.ReadFull(c.br, d); err != nil {
		return unexpected(err)
	}
	if binary.LittleEndian.Uint32(d) != Checksum(dst) {
		return ErrDataDigest
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Send queues p with data and writes it out unless another goroutine is
// writing or the connection is corked, in which case it goes out with
// theirs. data is copied before Send returns. A write error is sticky and
// returned by every later Send.
func (c *Conn) Send(p PDU, data []byte) error {
	if err := c.lockForSend(); err != nil {
		return err
	}
	c.buf = AppendPDU(c.buf, p, data, c.enc)
	return c.kickLocked()
}

// lockForSend takes c.mu once the pending bytes leave room (or the
// connection failed: then it returns the error with c.mu released).
func (c *Conn) lockForSend() error {
	c.mu.Lock()
	for c.werr == nil && c.flushing && len(c.buf) >= c.maxPending {
		c.flushed.Wait()
	}
	if c.werr != nil {
		err := c.werr
		c.mu.Unlock()
		return err
	}
	return nil
}

// SendPair queues two PDUs back to back: nothing another goroutine sends
// comes between them. A fused command pair needs that (NVMe Base 2.1
// 3.4.2: the controller aborts a first fused command whose second does
// not follow it on the queue).
func (c *Conn) SendPair(p1 PDU, data1 []byte, p2 PDU, data2 []byte) error {
	if err := c.lockForSend(); err != nil {
		return err
	}
	c.buf = AppendPDU(c.buf, p1, data1, c.enc)
	c.buf = AppendPDU(c.buf, p2, data2, c.enc)
	return c.kickLocked()
}

// SendRaw queues b as it is: for conformance tests that must send what a
// well-behaved peer never would.
func (c *Conn) SendRaw(b []byte) error {
	c.mu.Lock()
	if c.werr != nil {
		err := c.werr
		c.mu.Unlock()
		return err
	}
	c.buf = append(c.buf, b...)
	return c.kickLocked()
}

// kickLocked flushes if nobody else will; it releases c.mu.
func (c *Conn) kickLocked() error {
	if c.flushing || (c.corked > 0 && len(c.buf) < c.maxPending) {
		c.mu.Unlock()
		return nil
	}
	err := c.flushLocked()
	c.mu.Unlock()
	return err
}

// flushLocked writes out everything queued, including what other
// goroutines queue meanwhile. Called and returns with c.mu held.
func (c *Conn) flushLocked() error {
	c.flushing = true
	for len(c.buf) > 0 && c.werr == nil {
		out := c.buf
		c.buf = c.spare[:0]
		c.mu.Unlock()
		_, err := c.nc.Write(out)
		c.mu.Lock()
		c.spare = out[:0]
		if err != nil {
			c.werr = err
		}
		c.flushed.Broadcast()
	}
	c.flushing = false
	c.flushed.Broadcast()
	return c.werr
}

// Cork holds back writes until the matching Uncork.
func (c *Conn) Cork() {
	c.mu.Lock()
	c.corked++
	c.mu.Unlock()
}

// Uncork undoes one Cork and writes out what was held back.
func (c *Conn) Uncork() error {
	c.mu.Lock()
	if c.corked > 0 {
		c.corked--
	}
	if c.corked > 0 || c.flushing || len(c.buf) == 0 {
		err := c.werr
		c.mu.Unlock()
		return err
	}
	err := c.flushLocked()
	c.mu.Unlock()
	return err
}

// Terminate sends the TermReq a fatal error calls for (C2HTermReq from a
// controller, H2CTermReq from a host) and closes the connection, as the
// spec requires of the side that detects a fatal transport error. A peer
// that does not read gets LingerTimeout to take the TermReq (and what was
// queued before it), not more: Terminate never waits for ever.
func (c *Conn) Terminate(fe *FatalError) error {
	_ = c.SendTermReq(fe)
	return c.Close()
}

// ErrTerminated is what Send returns once SendTermReq has sent a TermReq:
// nothing may follow it on the connection.
var ErrTerminated = errors.New("nvme/tcp: connection terminated by a TermReq")

// SendTermReq sends the TermReq a fatal error calls for, as Terminate
// does, but leaves the connection open: every later Send fails with
// ErrTerminated, and reading still works. A controller needs that, as
// NVMe/TCP 1.0 3.5.1 makes closing the connection the host's duty and
// lets the controller wait for it. It returns the error of writing the
// TermReq, if any.
func (c *Conn) SendTermReq(fe *FatalError) error {
	t := TermReq{H2C: !c.rules.Controller, FES: fe.FES, FEI: fe.FEI}
	// The deadline also bounds a write in progress on another goroutine,
	// which the loop below waits for.
	_ = c.nc.SetWriteDeadline(time.Now().Add(LingerTimeout))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = 0
	for c.flushing && c.werr == nil {
		c.flushed.Wait()
	}
	if c.werr != nil {
		return c.werr
	}
	c.buf = AppendPDU(c.buf, &t, fe.Header, EncodeOptions{})
	err := c.flushLocked()
	if c.werr == nil {
		c.werr = ErrTerminated
	}
	c.flushed.Broadcast()
	return err
}

// Close closes the connection. Sends that were queued but not written are
// lost; Send after Close fails.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.werr == nil {
		c.werr = net.ErrClosed
	}
	c.flushed.Broadcast()
	c.mu.Unlock()
	return c.nc.Close()
}
