package hostconform

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Behaviours of the test controller that checks share: hooks for
// Setup.ToHost and Setup.FromHost, and PDUs to inject.

// pass is what a hook returns to let a PDU through unchanged.
func pass(f *Frame) [][]byte { return [][]byte{f.Raw} }

// Byte offsets in PDU headers (FEI values, and fields the behaviours
// change).
const (
	offFlags       = 1
	offPLEN        = 4
	offCCCID       = 8
	offTTAG        = 10
	offDATAO       = 12
	offDATAL       = 16
	offICRespCPDA  = 10
	offICRespDGST  = 11
	flagSuccess    = 1 << 3
	flagLastPDU    = 1 << 2
	maxTermReqPLEN = tcp.HLenTermReq + tcp.MaxTermReqData
)

// editICResp returns a ToHost hook that lets edit change the ICResp's
// bytes; req is the host's ICReq on that connection.
func editICResp(edit func(req *tcp.ICReq, raw []byte)) Hook {
	return func(c *Conn, f *Frame) [][]byte {
		if f.CH.Type != tcp.TypeICResp {
			return pass(f)
		}
		req, _ := c.ICReq()
		if req == nil {
			return pass(f)
		}
		raw := append([]byte(nil), f.Raw...)
		edit(req, raw)
		return [][]byte{raw}
	}
}

// termReq encodes a C2HTermReq with FES and data (the offending header).
func termReq(fes uint16, fei uint32, data []byte) []byte {
	return tcp.AppendPDU(nil, &tcp.TermReq{FES: fes, FEI: fei}, data, tcp.EncodeOptions{})
}

// injected returns the first PDU of type typ that a check's hook sent to
// the host in place of the target's, with its connection (nil, nil if
// none): the PDU whose reaction the check judges.
func injected(conns []*Conn, typ tcp.PDUType) (*Conn, *Frame) {
	for _, c := range conns {
		for _, f := range c.Received() {
			if f.Injected && f.CH.Type == typ {
				return c, f
			}
		}
	}
	return nil, nil
}

// ioConn returns the first connection of an I/O queue (nil if none).
func ioConn(conns []*Conn) *Conn {
	for _, c := range conns {
		if c.QID() > 0 {
			return c
		}
	}
	return nil
}

// checkReadSize is the size of the reads whose data the fatal-error
// checks change: not a power of two, so no read the host makes of its
// own (a partition table scan, readahead) is taken for the check's.
const checkReadSize = 12288

// onceC2H returns a ToHost hook that gives the first C2HData of a
// checkReadSize read on an I/O queue to edit (which returns what goes to
// the host instead) and lets everything else through.
func onceC2H(edit func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte) Hook {
	var edited atomic.Bool // the first one only
	return func(c *Conn, f *Frame) [][]byte {
		d, ok := f.PDU.(*tcp.C2HData)
		if !ok || c.QID() <= 0 || commandLength(c, d.CCCID) != checkReadSize {
			return pass(f)
		}
		if !edited.CompareAndSwap(false, true) {
			return pass(f)
		}
		c.State()["edited"] = f.Raw
		return edit(c, f, d)
	}
}

// commandLength is the data length (SGL1) of the last command the host
// sent on c with identifier cid.
func commandLength(c *Conn, cid uint16) uint32 {
	fs := c.Frames()
	for i := len(fs) - 1; i >= 0; i-- {
		if p, ok := fs[i].PDU.(*tcp.CapsuleCmd); ok && fs[i].Dir == FromHost && p.SQE.CID == cid {
			return p.SQE.DPTR.Length
		}
	}
	return 0
}

// withField returns a copy of raw with a little-endian field of n bytes
// at off set to v, digests fixed.
func withField(raw []byte, off, n int, v uint32) []byte {
	out := append([]byte(nil), raw...)
	switch n {
	case 1:
		out[off] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(out[off:], uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(out[off:], v)
	}
	return FixDigests(out)
}

// splitR2T is the behaviour of a controller that asks for each command's
// data in several R2Ts, each with a transfer tag of its own: as many at
// once as the host's MAXR2T allows, the next one when the host has sent
// all the data of one (NVMe/TCP 1.0 3.3.2.2 and its Figure 16). The
// target itself sends one R2T for the whole transfer; the hooks split it
// for the host and put the host's H2CData back together for the target.
type splitR2T struct {
	pieces int

	mu      sync.Mutex
	next    uint16
	grants  map[*Conn]map[uint16]*grant // by the tag the host got
	pending map[*Conn]map[uint16][]*grant
}

// grant is one R2T the host got from the split.
type grant struct {
	cccid, ttag, orig uint16
	r2to, r2tl        uint32
	final             bool // its data ends the command's transfer
	raw               []byte
}

func newSplitR2T(pieces int) *splitR2T {
	return &splitR2T{pieces: pieces, next: 0x4000, grants: map[*Conn]map[uint16]*grant{}, pending: map[*Conn]map[uint16][]*grant{}}
}

func (s *splitR2T) setup(st *Setup) {
	st.ToHost, st.FromHost = s.toHost, s.fromHost
}

func (s *splitR2T) toHost(c *Conn, f *Frame) [][]byte {
	r, ok := f.PDU.(*tcp.R2T)
	if !ok || r.R2TL < 8 {
		return pass(f)
	}
	req, _ := c.ICReq()
	window := 1
	if req != nil {
		window = int(min(req.MAXR2T, 15)) + 1
	}
	n := min(s.pieces, int(r.R2TL/4))
	per := r.R2TL / uint32(n) &^ 3
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grants[c] == nil {
		s.grants[c], s.pending[c] = map[uint16]*grant{}, map[uint16][]*grant{}
	}
	var gs []*grant
	for i, off := 0, r.R2TO; i < n; i++ {
		l := per
		if i == n-1 {
			l = r.R2TO + r.R2TL - off
		}
		s.next++
		if s.next >= 0x7FF0 {
			s.next = 0x4000
		}
		g := &grant{cccid: r.CCCID, ttag: s.next, orig: r.TTAG, r2to: off, r2tl: l, final: i == n-1}
		g.raw = FixDigests(withTTAG(f.Raw, g))
		s.grants[c][g.ttag] = g
		gs = append(gs, g)
		off += l
	}
	var out [][]byte
	for i, g := range gs {
		if i < window {
			out = append(out, g.raw)
		} else {
			s.pending[c][r.CCCID] = append(s.pending[c][r.CCCID], g)
		}
	}
	return out
}

func withTTAG(raw []byte, g *grant) []byte {
	out := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint16(out[offTTAG:], g.ttag)
	binary.LittleEndian.PutUint32(out[offDATAO:], g.r2to)
	binary.LittleEndian.PutUint32(out[offDATAL:], g.r2tl)
	return out
}

func (s *splitR2T) fromHost(c *Conn, f *Frame) [][]byte {
	h, ok := f.PDU.(*tcp.H2CData)
	if !ok {
		return pass(f)
	}
	s.mu.Lock()
	g := s.grants[c][h.TTAG]
	var next *grant
	if g != nil && h.Last {
		delete(s.grants[c], h.TTAG)
		if q := s.pending[c][g.cccid]; len(q) > 0 {
			next = q[0]
			s.pending[c][g.cccid] = q[1:]
		}
	}
	s.mu.Unlock()
	if g == nil {
		return pass(f) // the target judges a tag it never sent
	}
	raw := append([]byte(nil), f.Raw...)
	binary.LittleEndian.PutUint16(raw[offTTAG:], g.orig)
	if !g.final {
		raw[offFlags] &^= flagLastPDU // the target's one R2T is not done yet
	}
	if next != nil {
		_ = c.Inject(next.raw)
	}
	return [][]byte{FixDigests(raw)}
}
