// Package faults is a fault-injecting TCP proxy for NVMe/TCP: it sits
// between a host and a target and, on command or on a timeline, delays
// (fixed and jitter), holds one direction's bytes and delivers them late
// even after their sender has gone (a congested network's packets in
// flight: stale commands), limits bandwidth, blackholes (stalls without
// closing), resets, closes, drops one direction, corrupts one byte at an
// offset of a chosen PDU (so header or data digests catch it), and takes
// the path down and up (flap).
//
// The model is quic-go's integrationtests/tools/proxy, which calls back
// per UDP packet; here each direction is a byte stream that the proxy
// frames into NVMe/TCP PDUs by their common header (type, hlen, plen), so
// corruption lands at a PDU offset, never in the framing.
package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// Direction is a direction of traffic through the proxy.
type Direction int

// Directions.
const (
	ToTarget Direction = iota // host to target
	ToHost                    // target to host
)

func (d Direction) String() string {
	if d == ToTarget {
		return "to-target"
	}
	return "to-host"
}

// AnyPDU matches every PDU type in a Corruption.
const AnyPDU = -1

// Corruption damages the byte at Offset (from the start of the PDU,
// common header included; at least 8 so framing survives) of the next
// Count PDUs of type PDUType (AnyPDU: any) long enough to have it, by
// XOR with Mask (default 0xFF).
type Corruption struct {
	PDUType int
	Offset  int
	Mask    byte
	Count   int
}

// Event is something the proxy did, for timelines.
type Event struct {
	Time time.Time
	What string
}

// dirState is the fault configuration of one direction.
type dirState struct {
	delay, jitter time.Duration
	hold          time.Duration
	bps           int64 // 0: unlimited
	drop          bool
	corrupt       []Corruption
}

// Proxy forwards connections from its listener to a target address.
type Proxy struct {
	target string
	ln     net.Listener

	mu        sync.Mutex
	dirs      [2]dirState
	blackhole bool
	bhCond    *sync.Cond
	down      bool
	conns     map[*pair]struct{}
	closed    bool
	onEvent   func(Event)
	rec       capture.Recorder
	upNote    string // for the next recorded connection: the path came up

	corrupted atomic.Int64
	accepted  atomic.Int64
	held      atomic.Int64 // bytes held by SetHold, not yet delivered or discarded
	wg        sync.WaitGroup
}

// New listens on listen (e.g. "127.0.0.1:0") and forwards to target.
func New(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("faults: listen %s: %w", listen, err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[*pair]struct{}{}}
	p.bhCond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address hosts connect to.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// OnEvent calls f (from the proxy's goroutines) for every fault applied.
func (p *Proxy) OnEvent(f func(Event)) {
	p.mu.Lock()
	p.onEvent = f
	p.mu.Unlock()
}

func (p *Proxy) event(format string, args ...any) {
	p.mu.Lock()
	f := p.onEvent
	p.mu.Unlock()
	if f != nil {
		f(Event{Time: time.Now(), What: fmt.Sprintf(format, args...)})
	}
}

// SetCapture records the host side of every connection accepted from now
// on (nil: stop), as the host's bytes arrive and as the host receives them,
// and notes every fault applied to it as a packet comment ("fault: ..."),
// so a trace shows what the proxy did where it did it.
func (p *Proxy) SetCapture(rec capture.Recorder) {
	p.mu.Lock()
	p.rec = rec
	p.mu.Unlock()
}

// annotate notes a fault in the trace of every live connection.
func (p *Proxy) annotate(format string, args ...any) {
	text := "fault: " + fmt.Sprintf(format, args...)
	p.mu.Lock()
	for c := range p.conns {
		capture.Annotate(c.hostSide(), text)
	}
	p.mu.Unlock()
}

// Corrupted is the number of bytes corrupted so far.
func (p *Proxy) Corrupted() int64 { return p.corrupted.Load() }

// Accepted is the number of connections accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Conns is the number of live forwarded connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// SetDelay delays every byte in direction d by delay plus a uniformly
// random extra up to jitter (order is kept).
func (p *Proxy) SetDelay(d Direction, delay, jitter time.Duration) {
	p.mu.Lock()
	p.dirs[d].delay, p.dirs[d].jitter = delay, jitter
	p.mu.Unlock()
	p.annotate("delay %s %v jitter %v", d, delay, jitter)
	p.event("delay %s %v jitter %v", d, delay, jitter)
}

// SetHold holds every byte read in direction d from now on for hold
// before delivering it (0: no longer; bytes already held still wait their
// time, and later ones queue behind them). Unlike SetDelay, what is held
// is delivered even after its sender has closed or reset its side, before
// the receiver's side is closed: the receiver sees it as packets a
// congested network still carried when the sender gave up. On the way to
// the target that is the stale command a host failing over must survive:
// a write it timed out and retried elsewhere arrives, and runs, late.
func (p *Proxy) SetHold(d Direction, hold time.Duration) {
	p.mu.Lock()
	p.dirs[d].hold = hold
	p.mu.Unlock()
	if hold > 0 {
		p.annotate("hold %s %v: bytes delivered late, even after their sender has gone", d, hold)
	} else {
		p.annotate("hold %s off: bytes already held still arrive late", d)
	}
	p.event("hold %s %v", d, hold)
}

// Held is the number of bytes SetHold holds now: read, not yet delivered.
func (p *Proxy) Held() int64 { return p.held.Load() }

// SetBandwidth limits direction d to bytesPerSec (0: unlimited).
func (p *Proxy) SetBandwidth(d Direction, bytesPerSec int64) {
	p.mu.Lock()
	p.dirs[d].bps = bytesPerSec
	p.mu.Unlock()
	p.annotate("bandwidth %s %d B/s", d, bytesPerSec)
	p.event("bandwidth %s %d B/s", d, bytesPerSec)
}

// SetDrop discards (on) or forwards again (off) the bytes of direction d,
// without closing anything.
func (p *Proxy) SetDrop(d Direction, on bool) {
	p.mu.Lock()
	p.dirs[d].drop = on
	p.mu.Unlock()
	if on {
		p.annotate("drop %s: bytes discarded from here on", d)
	} else {
		p.annotate("drop %s off: bytes forwarded again", d)
	}
	p.event("drop %s %v", d, on)
}

// Corrupt arms a corruption in direction d.
func (p *Proxy) Corrupt(d Direction, c Corruption) error {
	if c.Offset < 8 {
		return errors.New("faults: corruption offset must be at least 8 (past the common header)")
	}
	if c.Mask == 0 {
		c.Mask = 0xFF
	}
	if c.Count <= 0 {
		c.Count = 1
	}
	p.mu.Lock()
	p.dirs[d].corrupt = append(p.dirs[d].corrupt, c)
	p.mu.Unlock()
	p.annotate("corruption armed %s: PDU type %d offset %d mask %#02x x%d", d, c.PDUType, c.Offset, c.Mask, c.Count)
	p.event("corrupt armed %s type %d offset %d x%d", d, c.PDUType, c.Offset, c.Count)
	return nil
}

// SetBlackhole stalls (on) every connection in both directions without
// closing it, as a path whose packets vanish: bytes wait in the proxy and
// in the TCP windows, and new connections hang after accept. Off delivers
// what waited, as TCP retransmission would.
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.bhCond.Broadcast()
	p.mu.Unlock()
	if on {
		p.annotate("blackhole: both directions stall from here on")
	} else {
		p.annotate("blackhole off: what waited is delivered")
	}
	p.event("blackhole %v", on)
}

// Reset ends every connection with a TCP RST on both sides.
func (p *Proxy) Reset() {
	p.annotate("reset: connection ended with RST on both sides")
	p.endAll(true)
	p.event("reset")
}

// CloseConns ends every connection with a FIN on both sides.
func (p *Proxy) CloseConns() {
	p.annotate("close: connection ended with FIN on both sides")
	p.endAll(false)
	p.event("close")
}

// SetDown takes the path down (on: every connection reset, new ones
// reset at once) or brings it back up.
func (p *Proxy) SetDown(on bool) {
	p.mu.Lock()
	wasDown := p.down
	p.down = on
	if !on && wasDown {
		// No connection outlived the path going down: the note goes on
		// the first one accepted after it came back.
		p.upNote = "fault: path up at " + time.Now().Format("15:04:05.000000")
	}
	p.mu.Unlock()
	if on {
		p.annotate("path down: connection reset")
		p.endAll(true)
	}
	p.event("path down %v", on)
}

// IsDown reports whether SetDown took the path down.
func (p *Proxy) IsDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

func (p *Proxy) endAll(rst bool) {
	p.mu.Lock()
	l := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		l = append(l, c)
	}
	p.mu.Unlock()
	for _, c := range l {
		c.end(rst)
	}
	p.mu.Lock()
	p.bhCond.Broadcast() // writers stalled by a blackhole see their end
	p.mu.Unlock()
}

// Close stops the proxy and ends every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.blackhole = false
	p.bhCond.Broadcast()
	p.mu.Unlock()
	err := p.ln.Close()
	p.endAll(true)
	p.wg.Wait()
	return err
}

// pair is one forwarded connection.
type pair struct {
	host, tgt net.Conn
	hrec      net.Conn // host as recorded; nil when not capturing
	once      sync.Once
	done      chan struct{}
	// held counts the bytes SetHold holds per direction: while some wait,
	// the other direction's failure to write (its receiver has gone)
	// closes that side only, so they are still delivered.
	held [2]atomic.Int64
}

// closeSide closes the side d writes to, leaving the other open.
func (c *pair) closeSide(d Direction) {
	if d == ToHost {
		c.hostSide().Close()
	} else {
		c.tgt.Close()
	}
}

// hostSide is the host connection to read and write: through the recorder
// when capturing.
func (c *pair) hostSide() net.Conn {
	if c.hrec != nil {
		return c.hrec
	}
	return c.host
}

func (c *pair) end(rst bool) {
	c.once.Do(func() {
		for _, nc := range []net.Conn{c.host, c.tgt} {
			if tc, ok := nc.(*net.TCPConn); ok && rst {
				_ = tc.SetLinger(0)
			}
		}
		// Closing the recorded side closes the host's socket and
		// completes its trace.
		c.hostSide().Close()
		c.tgt.Close()
		close(c.done)
	})
}

func (c *pair) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		hc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.handle(hc)
	}
}

func (p *Proxy) handle(hc net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	for p.blackhole && !p.closed {
		p.bhCond.Wait()
	}
	down, closed, rec := p.down, p.closed, p.rec
	p.mu.Unlock()
	label := "nvmftest proxy: host side, forwarded to " + p.target
	if down || closed {
		if tc, ok := hc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		if rec != nil && down {
			hr := rec.Record(hc, false, label)
			capture.Annotate(hr, "fault: path down: connection reset at once")
			hr.Close()
		} else {
			hc.Close()
		}
		return
	}
	tc, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		if t, ok := hc.(*net.TCPConn); ok {
			_ = t.SetLinger(0)
		}
		hc.Close()
		return
	}
	for _, nc := range []net.Conn{hc, tc} {
		if t, ok := nc.(*net.TCPConn); ok {
			_ = t.SetNoDelay(true)
		}
	}
	c := &pair{host: hc, tgt: tc, done: make(chan struct{})}
	if rec != nil {
		c.hrec = rec.Record(hc, false, label)
		p.mu.Lock()
		if p.upNote != "" {
			capture.Annotate(c.hrec, p.upNote)
			p.upNote = ""
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.end(true)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(c, ToTarget, c.hostSide(), tc) }()
	go func() { defer wg.Done(); p.pipe(c, ToHost, tc, c.hostSide()) }()
	wg.Wait()
	c.end(false)
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// chunk is bytes read at a time, to deliver no earlier than at.
type chunk struct {
	b    []byte
	at   time.Time
	bh   bool // read while blackholed: lost unless its sender is still there
	held bool // read while SetHold held its direction: counted in pair.held
}

// pipe forwards one direction: a reader that frames and corrupts, and a
// writer that applies delay, bandwidth and blackhole.
func (p *Proxy) pipe(c *pair, d Direction, src, dst net.Conn) {
	q := make(chan chunk, 64)
	wdone := make(chan struct{})
	var gone atomic.Bool // the sender closed: what a blackhole ate is lost
	go func() {
		defer close(wdone)
		p.writer(c, d, dst, q, &gone)
	}()
	var fr framer
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			p.mu.Lock()
			st := &p.dirs[d]
			drop, bh := st.drop, p.blackhole
			delay, hold := st.delay, st.hold
			if st.jitter > 0 {
				delay += rand.N(st.jitter)
			}
			hits := fr.feed(b, &st.corrupt)
			st.corrupt = pruneCorruptions(st.corrupt)
			p.mu.Unlock()
			if hits > 0 {
				p.corrupted.Add(int64(hits))
				for _, f := range fr.flips {
					capture.Annotate(c.hostSide(), fmt.Sprintf("fault: byte flipped at PDU offset %d (PDU type %#02x, mask %#02x, %s)", f.off, f.typ, f.mask, d))
				}
				p.event("corrupted %d byte(s) %s", hits, d)
			}
			if !drop {
				ch := chunk{b: b, at: time.Now().Add(delay + hold), bh: bh, held: hold > 0}
				if ch.held {
					c.held[d].Add(int64(n))
					p.held.Add(int64(n))
				}
				select {
				case q <- ch:
				case <-c.done:
					p.release(c, d, ch)
				}
			}
		}
		if err != nil {
			break
		}
	}
	gone.Store(true)
	close(q)
	<-wdone
	// Half close so the other side sees the end of this direction. A
	// recorded connection half-closes too, and records its FIN.
	if tc, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	} else {
		c.end(false)
	}
}

// release uncounts a held chunk once it is delivered or discarded.
func (p *Proxy) release(c *pair, d Direction, ch chunk) {
	if ch.held {
		c.held[d].Add(-int64(len(ch.b)))
		p.held.Add(-int64(len(ch.b)))
	}
}

func (p *Proxy) writer(c *pair, d Direction, dst net.Conn, q chan chunk, gone *atomic.Bool) {
	dstGone := false // the receiver went away while the other way held bytes
	for ch := range q {
		p.deliver(c, d, dst, ch, gone, &dstGone)
		p.release(c, d, ch)
	}
}

// deliver writes one chunk when its time comes, unless the connection
// ended (or, for blackholed bytes, their sender went away).
func (p *Proxy) deliver(c *pair, d Direction, dst net.Conn, ch chunk, gone *atomic.Bool, dstGone *bool) {
	if w := time.Until(ch.at); w > 0 {
		select {
		case <-time.After(w):
		case <-c.done:
		}
	}
	p.mu.Lock()
	for p.blackhole && !p.closed && !c.ended() {
		p.bhCond.Wait()
	}
	bps := p.dirs[d].bps
	p.mu.Unlock()
	select {
	case <-c.done:
		return // drain so the reader never blocks
	default:
	}
	if ch.bh && gone.Load() {
		// Bytes a blackhole swallowed come back only by retransmission,
		// and their sender is gone: never deliver them late.
		return
	}
	if *dstGone {
		return
	}
	b := ch.b
	for len(b) > 0 {
		n := len(b)
		if bps > 0 {
			n = min(n, max(int(bps/100), 1)) // about 10 ms of bytes at a time
		}
		if _, err := dst.Write(b[:n]); err != nil {
			if c.held[1-d].Load() > 0 {
				// The receiver went away, but the other direction still
				// holds bytes for the side that remains: close only this
				// side, so those are delivered before the other closes.
				c.closeSide(d)
				*dstGone = true
				return
			}
			c.end(false)
			break
		}
		b = b[n:]
		if bps > 0 {
			time.Sleep(time.Duration(int64(n) * int64(time.Second) / bps))
		}
	}
}

func pruneCorruptions(l []Corruption) []Corruption {
	out := l[:0]
	for _, c := range l {
		if c.Count > 0 {
			out = append(out, c)
		}
	}
	return out
}

// framer follows NVMe/TCP PDU boundaries in one direction's byte stream.
type framer struct {
	hdr    [8]byte
	off    int // offset within the current PDU
	plen   int
	typ    int
	target []int // offsets to corrupt in the current PDU
	mask   []byte
	flips  []flip // what the last feed changed
}

// flip is one byte a corruption changed.
type flip struct {
	typ, off int
	mask     byte
}

// feed walks b, corrupting it in place where armed corruptions match; it
// returns how many bytes it changed.
func (f *framer) feed(b []byte, arms *[]Corruption) int {
	hits := 0
	f.flips = f.flips[:0]
	for i := 0; i < len(b); {
		if f.off < 8 {
			f.hdr[f.off] = b[i]
			f.off++
			i++
			if f.off == 8 {
				f.typ = int(f.hdr[0])
				f.plen = int(binary.LittleEndian.Uint32(f.hdr[4:]))
				if f.plen < 8 {
					f.plen = 8 // nonsense: keep walking byte by byte
				}
				f.target, f.mask = f.target[:0], f.mask[:0]
				for j := range *arms {
					a := &(*arms)[j]
					if a.Count > 0 && (a.PDUType == AnyPDU || a.PDUType == f.typ) && a.Offset < f.plen {
						f.target = append(f.target, a.Offset)
						f.mask = append(f.mask, a.Mask)
						a.Count--
					}
				}
			}
		} else {
			k := min(len(b)-i, f.plen-f.off)
			for j, t := range f.target {
				if t >= f.off && t < f.off+k {
					b[i+t-f.off] ^= f.mask[j]
					hits++
					f.flips = append(f.flips, flip{typ: f.typ, off: t, mask: f.mask[j]})
				}
			}
			f.off += k
			i += k
		}
		if f.off >= 8 && f.off >= f.plen {
			f.off = 0
		}
	}
	return hits
}
