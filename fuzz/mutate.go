package fuzz

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// mutator changes c in place using r and returns what it did; ok false
// when it found nothing to change (the caller picks another).
type mutator struct {
	name   string
	weight int
	apply  func(r *rand.Rand, c *Case, id Identity) (Mutation, bool)
}

// mutators are the format-aware mutations, weighted: field values most
// often, since the header fields are where parsers trust the peer.
var mutators = []mutator{
	{"set", 40, mutSetField},
	{"truncate", 6, mutTruncate},
	{"split", 4, mutSplit},
	{"duplicate", 4, mutDuplicate},
	{"delete", 4, mutDelete},
	{"swap", 3, mutSwap},
	{"move", 3, mutMove},
	{"insert", 6, mutInsert},
	{"resize", 5, mutResize},
	{"havoc", 3, mutHavoc},
	{"repeat", 2, mutRepeat},
}

var mutatorTotal = func() int {
	n := 0
	for _, m := range mutators {
		n += m.weight
	}
	return n
}()

// pickStep chooses a step, favouring each connection's first PDUs: the
// set-up (ICReq, Connect) is the surface every target exposes before any
// authentication, and a mutation there is not masked by an earlier one.
func pickStep(r *rand.Rand, c *Case) int {
	if len(c.Steps) == 0 {
		return -1
	}
	if r.IntN(2) == 0 {
		return r.IntN(len(c.Steps))
	}
	// One of the first three steps of a random connection.
	conn := r.IntN(c.Conns())
	var idx []int
	for i, s := range c.Steps {
		if s.Conn == conn {
			idx = append(idx, i)
			if len(idx) == 3 {
				break
			}
		}
	}
	if len(idx) == 0 {
		return r.IntN(len(c.Steps))
	}
	return idx[r.IntN(len(idx))]
}

// Mutate applies 1 to 5 mutations (fewer more often) to c.
func Mutate(r *rand.Rand, c *Case, id Identity) {
	n := 1
	for n < 5 && r.IntN(2) == 0 {
		n++
	}
	for range n {
		for try := 0; try < 8; try++ {
			w := r.IntN(mutatorTotal)
			var m mutator
			for _, m = range mutators {
				if w < m.weight {
					break
				}
				w -= m.weight
			}
			if mu, ok := m.apply(r, c, id); ok {
				c.Muts = append(c.Muts, mu)
				break
			}
		}
	}
	c.renumber()
}

// mutSetField sets one field of one PDU to a boundary value.
func mutSetField(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 {
		return Mutation{}, false
	}
	s := &c.Steps[i]
	fs := fieldsOf(s.Bytes)
	if len(fs) == 0 {
		return Mutation{}, false
	}
	// The common header two times in five: every PDU has it, and its
	// lengths and offsets are what a receiver's framing trusts.
	var f field
	if r.IntN(5) < 2 && len(fs) >= len(commonFields) {
		f = fs[r.IntN(len(commonFields))]
	} else {
		f = fs[r.IntN(len(fs))]
	}
	off := f.Off
	if f.Data {
		off += int(s.Bytes[3])
	}
	m := Mutation{Op: "set", Field: typeName(s.Bytes) + "." + f.Name, Step: i}
	s.Fix &^= f.Fix
	switch f.Kind {
	case kindNQN:
		return setNQN(r, s.Bytes[off:off+f.Size], m)
	case kindDigest:
		v := getField(s.Bytes, off, f.Size) ^ (1 << r.IntN(32))
		putField(s.Bytes, off, f.Size, v)
		m.Value = v
		return m, true
	}
	cur := getField(s.Bytes, off, f.Size)
	var v uint64
	switch {
	case f.Kind == kindFlags && r.IntN(2) == 0:
		v = cur ^ 1<<r.IntN(8*f.Size)
	case r.IntN(8) == 0:
		v = r.Uint64()
	default:
		vs := candidates(s.Bytes, f, cur)
		v = vs[r.IntN(len(vs))]
	}
	if f.Size < 8 {
		v &= 1<<(8*f.Size) - 1
	}
	if v == cur {
		v = cur ^ 1
		if f.Size < 8 {
			v &= 1<<(8*f.Size) - 1
		}
	}
	putField(s.Bytes, off, f.Size, v)
	m.Value = v
	return m, true
}

// setNQN rewrites an NQN field: empty, unterminated (all 256 bytes), the
// discovery NQN, a near miss of the current one, or non-UTF-8.
func setNQN(r *rand.Rand, b []byte, m Mutation) (Mutation, bool) {
	cur := slices.Clone(b)
	switch v := r.IntN(5); v {
	case 0:
		clear(b)
	case 1:
		for i := range b {
			if b[i] == 0 {
				b[i] = 'a'
			}
		}
	case 2:
		clear(b)
		copy(b, nvme.DiscoveryNQN)
	case 3:
		n := slices.Index(b, 0)
		if n <= 0 {
			n = len(b)
		}
		b[r.IntN(n)] ^= 0x20
	default:
		b[r.IntN(len(b))] = 0xFF
	}
	if slices.Equal(b, cur) {
		b[0] ^= 1
	}
	m.Value = uint64(b[0])
	return m, true
}

// mutTruncate cuts a PDU short: at a field boundary or any byte.
func mutTruncate(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 || len(c.Steps[i].Bytes) < 2 {
		return Mutation{}, false
	}
	s := &c.Steps[i]
	n := len(s.Bytes)
	cuts := []int{1, 4, 7, 8, n - 1, n - 4}
	if n > 8 {
		cuts = append(cuts, int(s.Bytes[2]), int(s.Bytes[2])-1, int(s.Bytes[3]))
	}
	cut := r.IntN(n)
	if r.IntN(2) == 0 {
		cut = cuts[r.IntN(len(cuts))]
	}
	if cut <= 0 || cut >= n {
		cut = n - 1
	}
	s.Bytes = s.Bytes[:cut]
	if s.Split >= cut {
		s.Split = 0
	}
	return Mutation{Op: "truncate", Field: typeName(s.Bytes), Step: i, Value: uint64(cut)}, true
}

// mutSplit sends a PDU in two writes, cut anywhere.
func mutSplit(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 || len(c.Steps[i].Bytes) < 2 {
		return Mutation{}, false
	}
	s := &c.Steps[i]
	was := s.Split
	s.Split = 1 + r.IntN(len(s.Bytes)-1)
	if s.Split == was {
		s.Split = was%(len(s.Bytes)-1) + 1
		if s.Split == was {
			return Mutation{}, false // a 2-byte PDU already split
		}
	}
	return Mutation{Op: "split", Field: typeName(s.Bytes), Step: i, Value: uint64(s.Split)}, true
}

func mutDuplicate(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 {
		return Mutation{}, false
	}
	s := c.Steps[i]
	s.Bytes = slices.Clone(s.Bytes)
	c.Steps = slices.Insert(c.Steps, i+1, s)
	return Mutation{Op: "duplicate", Field: typeName(s.Bytes), Step: i}, true
}

func mutRepeat(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 {
		return Mutation{}, false
	}
	n := []int{16, 64, 200}[r.IntN(3)]
	s := c.Steps[i]
	more := make([]Step, n)
	for k := range more {
		more[k] = s
		more[k].Bytes = slices.Clone(s.Bytes)
	}
	c.Steps = slices.Insert(c.Steps, i+1, more...)
	return Mutation{Op: "repeat", Field: typeName(s.Bytes), Step: i, Value: uint64(n)}, true
}

func mutDelete(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	if len(c.Steps) < 2 {
		return Mutation{}, false
	}
	i := pickStep(r, c)
	m := Mutation{Op: "delete", Field: typeName(c.Steps[i].Bytes), Step: i}
	c.Steps = slices.Delete(c.Steps, i, i+1)
	return m, true
}

// mutSwap exchanges two neighbouring PDUs of one connection.
func mutSwap(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 {
		return Mutation{}, false
	}
	for j := i + 1; j < len(c.Steps); j++ {
		if c.Steps[j].Conn == c.Steps[i].Conn && !slices.Equal(c.Steps[j].Bytes, c.Steps[i].Bytes) {
			c.Steps[i].Bytes, c.Steps[j].Bytes = c.Steps[j].Bytes, c.Steps[i].Bytes
			c.Steps[i].Fix, c.Steps[j].Fix = c.Steps[j].Fix, c.Steps[i].Fix
			return Mutation{Op: "swap", Field: typeName(c.Steps[i].Bytes), Step: i, Value: uint64(j)}, true
		}
	}
	return Mutation{}, false
}

// mutMove sends a PDU on another connection (the wrong queue) or on a
// new one (before any ICReq).
func mutMove(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 {
		return Mutation{}, false
	}
	n := c.Conns()
	to := r.IntN(n + 1)
	if to == c.Steps[i].Conn {
		to = n
	}
	c.Steps[i].Conn = to
	return Mutation{Op: "move", Field: typeName(c.Steps[i].Bytes), Step: i, Value: uint64(to)}, true
}

// mutInsert puts a valid PDU where it may not belong: before Connect,
// after Disconnect, a second ICReq, an H2CData nobody asked for.
func mutInsert(r *rand.Rand, c *Case, id Identity) (Mutation, bool) {
	pos := r.IntN(len(c.Steps) + 1)
	conn := 0
	if len(c.Steps) > 0 {
		conn = c.Steps[min(pos, len(c.Steps)-1)].Conn
	}
	hd, dd := connDigests(c, conn)
	s := grammarPDU(r, id, conn, hd, dd)
	c.Steps = slices.Insert(c.Steps, pos, s)
	return Mutation{Op: "insert", Field: typeName(s.Bytes), Step: pos}, true
}

// connDigests says which digests the connection's ICReq asked for.
func connDigests(c *Case, conn int) (hd, dd bool) {
	for _, s := range c.Steps {
		if s.Conn == conn && len(s.Bytes) >= 12 && s.Bytes[0] == byte(tcp.TypeICReq) {
			return s.Bytes[11]&tcp.DgstHeader != 0, s.Bytes[11]&tcp.DgstData != 0
		}
	}
	return false, false
}

// mutResize grows or shrinks the data of a PDU (or adds data to one that
// has none), keeping PLEN and the length fields in step or not.
func mutResize(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 || len(c.Steps[i].Bytes) < tcp.CommonHeaderSize {
		return Mutation{}, false
	}
	s := &c.Steps[i]
	deltas := []int{-1, 1, -4, 4, 512, 4096, -512, 65536}
	d := deltas[r.IntN(len(deltas))]
	n := len(s.Bytes) + d
	if n < tcp.CommonHeaderSize {
		return Mutation{}, false
	}
	if d > 0 {
		s.Bytes = append(s.Bytes, make([]byte, d)...)
	} else {
		s.Bytes = s.Bytes[:n]
	}
	if s.Split >= n {
		s.Split = 0
	}
	if r.IntN(3) > 0 {
		binary.LittleEndian.PutUint32(s.Bytes[4:], uint32(n))
		if s.Bytes[3] == 0 && n > int(s.Bytes[2]) {
			s.Bytes[3] = s.Bytes[2] // data where there was none
		}
		dl := uint32(dataLen(s.Bytes))
		switch tcp.PDUType(s.Bytes[0]) {
		case tcp.TypeH2CData:
			if n >= 20 {
				binary.LittleEndian.PutUint32(s.Bytes[16:], dl)
			}
		case tcp.TypeCapsuleCmd:
			if n >= 44 && s.Bytes[47] == nvme.SGLDataBlockOffset {
				binary.LittleEndian.PutUint32(s.Bytes[40:], dl)
			}
		}
	}
	return Mutation{Op: "resize", Field: typeName(s.Bytes), Step: i, Value: uint64(int64(d))}, true
}

// mutHavoc overwrites a few random bytes of a PDU: what the field
// mutators do not know about (reserved bytes, the data).
func mutHavoc(r *rand.Rand, c *Case, _ Identity) (Mutation, bool) {
	i := pickStep(r, c)
	if i < 0 || len(c.Steps[i].Bytes) == 0 {
		return Mutation{}, false
	}
	s := &c.Steps[i]
	n := 1 + r.IntN(4)
	for range n {
		k := r.IntN(len(s.Bytes))
		old := s.Bytes[k]
		switch r.IntN(3) {
		case 0:
			s.Bytes[k] ^= 1 << r.IntN(8)
		case 1:
			s.Bytes[k] = []byte{0, 0xFF, 0x7F, 0x80, 1}[r.IntN(5)]
		default:
			s.Bytes[k] = byte(r.IntN(256))
		}
		if s.Bytes[k] == old {
			s.Bytes[k] ^= 0x01
		}
	}
	return Mutation{Op: "havoc", Field: typeName(s.Bytes), Step: i, Value: uint64(n)}, true
}
