package fuzz

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Fix names the fields the executor fills in at send time from what the
// target said earlier in the case, so that a case replayed against
// another target (or another run of the same one) still reaches the code
// it reached the first time. A mutator that sets one of these fields
// itself clears its bit: the value it chose is then what is sent.
type Fix uint8

const (
	// FixDigest recomputes the header digest (HDGSTF set) and the data
	// digest (DDGSTF set) over the bytes as sent, so that a mutated field
	// reaches the code behind the digest check.
	FixDigest Fix = 1 << iota
	// FixCNTLID puts the controller ID of the case's admin Connect
	// response into an I/O queue Connect's data.
	FixCNTLID
	// FixTTAG puts the transfer tag of the last R2T for the H2CData's
	// CCCID (on its connection) into the H2CData header.
	FixTTAG
)

var fixNames = []struct {
	f    Fix
	name string
}{{FixDigest, "digest"}, {FixCNTLID, "cntlid"}, {FixTTAG, "ttag"}}

func (f Fix) names() []string {
	var out []string
	for _, n := range fixNames {
		if f&n.f != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func parseFix(names []string) (Fix, error) {
	var f Fix
	for _, s := range names {
		i := slices.IndexFunc(fixNames, func(n struct {
			f    Fix
			name string
		}) bool {
			return n.name == s
		})
		if i < 0 {
			return 0, fmt.Errorf("unknown fix %q (want digest, cntlid or ttag)", s)
		}
		f |= fixNames[i].f
	}
	return f, nil
}

// Step is one PDU (or what is left of one) sent on one of the case's
// connections.
type Step struct {
	// Conn is the connection it goes on; connections are opened in the
	// order of their first step and stay open until the case ends.
	Conn int
	// Bytes are sent as they are, after the fixes.
	Bytes []byte
	Fix   Fix
	// Split, when in 1..len(Bytes)-1, sends the bytes in two writes cut
	// there, with a pause between: the target must reassemble.
	Split int
}

// Type is the PDU type the step's first byte claims (0xFF when empty).
func (s *Step) Type() tcp.PDUType {
	if len(s.Bytes) == 0 {
		return 0xFF
	}
	return tcp.PDUType(s.Bytes[0])
}

// Mutation records one change a mutator made to a case: what finding
// signatures and coverage are made of.
type Mutation struct {
	// Op is the mutator: set, truncate, split, duplicate, delete, swap,
	// move, insert, resize, havoc, repeat.
	Op string `json:"op"`
	// Field is PDUType.Field for field mutations ("CapsuleCmd.PDO"), the
	// PDU type for the others.
	Field string `json:"field"`
	Step  int    `json:"step"`
	// Value is the value set, or the byte position or count of the op.
	Value uint64 `json:"value"`
}

func (m Mutation) String() string {
	return fmt.Sprintf("%s %s=%d @%d", m.Op, m.Field, m.Value, m.Step)
}

// Case is one test case: PDUs sent over one or more connections.
type Case struct {
	// ID is the case's number in its run (the seed of its generator).
	ID uint64
	// Origin names what it was derived from: a seed trace or the grammar.
	Origin string
	Steps  []Step
	Muts   []Mutation
}

// Clone returns a deep copy of c.
func (c *Case) Clone() *Case {
	n := &Case{ID: c.ID, Origin: c.Origin, Muts: slices.Clone(c.Muts)}
	n.Steps = make([]Step, len(c.Steps))
	for i, s := range c.Steps {
		s.Bytes = slices.Clone(s.Bytes)
		n.Steps[i] = s
	}
	return n
}

// Conns returns how many connections the case uses.
func (c *Case) Conns() int {
	n := 0
	for _, s := range c.Steps {
		n = max(n, s.Conn+1)
	}
	return n
}

// Size is the number of bytes the case sends.
func (c *Case) Size() int {
	n := 0
	for _, s := range c.Steps {
		n += len(s.Bytes)
	}
	return n
}

// Describe lists the mutations, or says there are none.
func (c *Case) Describe() string {
	if len(c.Muts) == 0 {
		return c.Origin + " (unmutated)"
	}
	var b strings.Builder
	b.WriteString(c.Origin + ":")
	for _, m := range c.Muts {
		b.WriteString(" " + m.String())
	}
	return b.String()
}

// renumber makes connection numbers dense and ordered by first use.
func (c *Case) renumber() {
	m := map[int]int{}
	for i := range c.Steps {
		o := c.Steps[i].Conn
		n, ok := m[o]
		if !ok {
			n = len(m)
			m[o] = n
		}
		c.Steps[i].Conn = n
	}
}

// applyFixes returns the bytes of s as sent: the fixes applied to a copy.
// cntlid is the admin Connect's controller ID (ok false if none yet);
// ttag looks up the last R2T's tag for a CCCID on the step's connection.
func applyFixes(s *Step, cntlid uint16, haveCNTLID bool, ttag func(cccid uint16) (uint16, bool)) []byte {
	b := s.Bytes
	if s.Fix == 0 || len(b) < tcp.CommonHeaderSize {
		return b
	}
	b = slices.Clone(b)
	t := tcp.PDUType(b[0])
	hlen := int(b[2])
	pdo := int(b[3])
	if s.Fix&FixCNTLID != 0 && haveCNTLID && t == tcp.TypeCapsuleCmd && pdo >= tcp.HLenCapsuleCmd && len(b) >= pdo+18 {
		binary.LittleEndian.PutUint16(b[pdo+16:], cntlid)
	}
	if s.Fix&FixTTAG != 0 && t == tcp.TypeH2CData && len(b) >= 12 {
		if tag, ok := ttag(binary.LittleEndian.Uint16(b[8:])); ok {
			binary.LittleEndian.PutUint16(b[10:], tag)
		}
	}
	if s.Fix&FixDigest != 0 {
		fixDigests(b, t, hlen, pdo)
	}
	return b
}

// fixDigests recomputes the digests b's flags announce, wherever they fit.
func fixDigests(b []byte, t tcp.PDUType, hlen, pdo int) {
	if t == tcp.TypeICReq || t == tcp.TypeH2CTermReq || t > tcp.TypeR2T || hlen < tcp.CommonHeaderSize {
		return
	}
	flags := b[1]
	if flags&tcp.FlagHDGST != 0 && len(b) >= hlen+tcp.DigestSize {
		binary.LittleEndian.PutUint32(b[hlen:], tcp.Checksum(b[:hlen]))
	}
	if flags&tcp.FlagDDGST != 0 && pdo >= hlen && len(b) >= pdo+tcp.DigestSize+1 {
		end := len(b) - tcp.DigestSize
		binary.LittleEndian.PutUint32(b[end:], tcp.Checksum(b[pdo:end]))
	}
}
