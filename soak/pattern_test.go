//go:build linux

package soak

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// Every block a well-behaved host writes says where it belongs and which
// write put it there: a 32-byte header (magic, NSID, writer, LBA,
// generation) and a body of 8-byte words derived from the header, each
// word also numbered so shifted data differs. A read then tells a good
// block from a lost (zeros), stale (older generation), misplaced (another
// LBA), foreign (another writer) or torn (body of another write) one.
const (
	hdrSize = 32
	golden  = 0x9E3779B97F4A7C15
)

var magic = [8]byte{'N', 'V', 'M', 'F', 'S', 'O', 'A', 'K'}

// zeroGen is the generation of a block the model expects to read as zeros
// (after Write Zeroes). altNone marks a block with one possible content.
const (
	zeroGen = ^uint64(0)
	altNone = ^uint64(0) - 1
)

var le = binary.LittleEndian

func mix(nsid uint32, lba uint64, writer uint32, gen uint64) uint64 {
	z := uint64(nsid)<<32 ^ uint64(writer) ^ lba*golden ^ gen*0xBF58476D1CE4E5B9
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// fillBlock writes the content of block lba of nsid as writer's write gen.
func fillBlock(b []byte, nsid uint32, lba uint64, writer uint32, gen uint64) {
	if gen == zeroGen {
		clear(b)
		return
	}
	copy(b, magic[:])
	le.PutUint32(b[8:], nsid)
	le.PutUint32(b[12:], writer)
	le.PutUint64(b[16:], lba)
	le.PutUint64(b[24:], gen)
	base := mix(nsid, lba, writer, gen)
	for off, i := hdrSize, uint64(0); off+8 <= len(b); off, i = off+8, i+1 {
		le.PutUint64(b[off:], base+i*golden)
	}
}

// holds reports whether b is exactly block lba of nsid written by writer
// as generation gen.
func holds(b []byte, nsid uint32, lba uint64, writer uint32, gen uint64) bool {
	if gen == zeroGen {
		return allZero(b)
	}
	if !bytes.Equal(b[:8], magic[:]) || le.Uint32(b[8:]) != nsid || le.Uint32(b[12:]) != writer ||
		le.Uint64(b[16:]) != lba || le.Uint64(b[24:]) != gen {
		return false
	}
	return bodyMismatch(b, nsid, lba, writer, gen) < 0
}

// bodyMismatch returns the offset of the first body word that does not
// belong to the given write, or -1.
func bodyMismatch(b []byte, nsid uint32, lba uint64, writer uint32, gen uint64) int {
	base := mix(nsid, lba, writer, gen)
	for off, i := hdrSize, uint64(0); off+8 <= len(b); off, i = off+8, i+1 {
		if le.Uint64(b[off:]) != base+i*golden {
			return off
		}
	}
	return -1
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func genString(g uint64) string {
	if g == zeroGen {
		return "zeros"
	}
	return fmt.Sprintf("gen %d", g)
}

// checkBlock compares block lba of nsid with what writer's model expects:
// want, or alt when a write of unknown outcome may have landed. It returns
// the generation found and, when it is neither, what the block holds.
func checkBlock(b []byte, nsid uint32, lba uint64, writer uint32, want, alt uint64) (uint64, string) {
	if holds(b, nsid, lba, writer, want) {
		return want, ""
	}
	if alt != altNone && holds(b, nsid, lba, writer, alt) {
		return alt, ""
	}
	exp := genString(want)
	if alt != altNone {
		exp += " or " + genString(alt)
	}
	switch {
	case allZero(b):
		return 0, "lost: reads zeros, want " + exp
	case !bytes.Equal(b[:8], magic[:]):
		return 0, fmt.Sprintf("garbage: no soak header (starts % x), want %s", b[:8], exp)
	}
	hn, hw, hl, hg := le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint64(b[16:]), le.Uint64(b[24:])
	switch {
	case hn != nsid || hl != lba:
		return 0, fmt.Sprintf("misplaced: holds namespace %d LBA %d (writer %d gen %d), want %s", hn, hl, hw, hg, exp)
	case hw != writer:
		return 0, fmt.Sprintf("foreign: writer %d gen %d wrote it, want %s", hw, hg, exp)
	}
	if off := bodyMismatch(b, nsid, lba, writer, hg); off >= 0 {
		return 0, fmt.Sprintf("torn: header of gen %d but byte %d is not, want %s", hg, off, exp)
	}
	if want == zeroGen || hg < want {
		return hg, fmt.Sprintf("stale: holds gen %d, want %s", hg, exp)
	}
	return hg, fmt.Sprintf("unexpected: holds gen %d, newer than the acknowledged %s", hg, exp)
}

// extent is a lane's share of one namespace.
type extent struct {
	first  uint64
	blocks uint64
}

// lane is the model of one stream of I/O that owns its blocks: nobody
// else writes them, and the lane never has two commands on them at once,
// so it knows exactly what each block must hold.
type lane struct {
	writer uint32
	name   string
	ext    []extent   // by namespace index
	want   [][]uint64 // generation each block must hold
	alt    [][]uint64 // another possible one (a failed write), or altNone
	gen    uint64
	buf    []byte
	cmp    []byte
}

// maxLaneIO is the largest transfer a lane issues.
const maxLaneIO = 256 << 10

func newLane(writer uint32, name string, ext []extent) *lane {
	l := &lane{writer: writer, name: name, ext: ext, buf: make([]byte, maxLaneIO), cmp: make([]byte, maxLaneIO)}
	for _, e := range ext {
		w, a := make([]uint64, e.blocks), make([]uint64, e.blocks)
		for i := range a {
			a[i] = altNone
		}
		l.want, l.alt = append(l.want, w), append(l.alt, a)
	}
	return l
}

// fill writes the content of generation gen of blocks [slba, slba+nlb) of
// namespace i into b.
func (l *lane) fill(b []byte, i int, slba uint64, nlb uint32, gen uint64) {
	bs := int(namespaces[i].bs)
	for k := range int(nlb) {
		fillBlock(b[k*bs:(k+1)*bs], namespaces[i].nsid, slba+uint64(k), l.writer, gen)
	}
}

// expected fills b with what the blocks must hold; false when one of them
// may hold either of two contents.
func (l *lane) expected(b []byte, i int, slba uint64, nlb uint32) bool {
	bs := int(namespaces[i].bs)
	off := slba - l.ext[i].first
	for k := range uint64(nlb) {
		if l.alt[i][off+k] != altNone {
			return false
		}
		fillBlock(b[int(k)*bs:int(k+1)*bs], namespaces[i].nsid, slba+k, l.writer, l.want[i][off+k])
	}
	return true
}

// written records a write of generation gen: acknowledged, or of unknown
// outcome (it failed, so it may or may not have landed).
func (l *lane) written(i int, slba uint64, nlb uint32, gen uint64, acked bool) {
	off := slba - l.ext[i].first
	for k := range uint64(nlb) {
		if acked {
			l.want[i][off+k], l.alt[i][off+k] = gen, altNone
		} else {
			l.alt[i][off+k] = gen
		}
	}
}

// verify checks blocks read into b and returns a description of each bad
// one; a block found holding the alternative content pins the model to it.
func (l *lane) verify(b []byte, i int, slba uint64, nlb uint32) []string {
	bs := int(namespaces[i].bs)
	off := slba - l.ext[i].first
	var bad []string
	for k := range uint64(nlb) {
		w, a := l.want[i][off+k], l.alt[i][off+k]
		got, problem := checkBlock(b[int(k)*bs:int(k+1)*bs], namespaces[i].nsid, slba+k, l.writer, w, a)
		if problem != "" {
			bad = append(bad, fmt.Sprintf("namespace %d LBA %d: %s", namespaces[i].nsid, slba+k, problem))
			continue
		}
		l.want[i][off+k], l.alt[i][off+k] = got, altNone
	}
	return bad
}

// TestBlockVerdicts: the verifier tells every kind of bad block apart, so
// a soak failure names what went wrong.
func TestBlockVerdicts(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		good := make([]byte, bs)
		fillBlock(good, 2, 77, 5, 9)
		other := func(nsid uint32, lba uint64, writer uint32, gen uint64) []byte {
			b := make([]byte, bs)
			fillBlock(b, nsid, lba, writer, gen)
			return b
		}
		torn := bytes.Clone(good)
		copy(torn[bs/2:], other(2, 77, 5, 8)[bs/2:])
		for _, tc := range []struct {
			name      string
			b         []byte
			want, alt uint64
			verdict   string // prefix; "" for good
			got       uint64
		}{
			{"good", good, 9, altNone, "", 9},
			{"alternative", good, 8, 9, "", 9},
			{"zeros wanted", make([]byte, bs), zeroGen, altNone, "", zeroGen},
			{"lost", make([]byte, bs), 9, altNone, "lost", 0},
			{"garbage", bytes.Repeat([]byte{0xA5}, bs), 9, altNone, "garbage", 0},
			{"misplaced", other(2, 78, 5, 9), 9, altNone, "misplaced", 0},
			{"other namespace", other(1, 77, 5, 9), 9, altNone, "misplaced", 0},
			{"foreign", other(2, 77, 6, 9), 9, altNone, "foreign", 0},
			{"torn", torn, 9, altNone, "torn", 0},
			{"stale", good, 10, altNone, "stale", 9},
			{"not zeroed", good, zeroGen, altNone, "stale", 9},
			{"newer", good, 3, altNone, "unexpected", 9},
		} {
			got, verdict := checkBlock(tc.b, 2, 77, 5, tc.want, tc.alt)
			if !strings.HasPrefix(verdict, tc.verdict) || (tc.verdict == "") != (verdict == "") || got != tc.got {
				t.Errorf("%d-byte block, %s: got %d %q, want %d %q...", bs, tc.name, got, verdict, tc.got, tc.verdict)
			}
		}
	}
}

// TestLaneModel: a failed write leaves either content acceptable until a
// read shows which one landed.
func TestLaneModel(t *testing.T) {
	l := newLane(3, "t", []extent{{first: 100, blocks: 8}})
	b := make([]byte, 8*512)
	l.fill(b, 0, 100, 8, 0)
	if bad := l.verify(b, 0, 100, 8); bad != nil {
		t.Fatalf("prefilled blocks: %v", bad)
	}
	l.written(0, 102, 2, 5, false)
	if l.expected(b, 0, 100, 8) {
		t.Fatal("expected content known although a write's outcome is not")
	}
	l.fill(b[2*512:4*512], 0, 102, 2, 5) // the failed write did land
	if bad := l.verify(b, 0, 100, 8); bad != nil {
		t.Fatalf("landed failed write: %v", bad)
	}
	l.fill(b[2*512:4*512], 0, 102, 2, 0) // now the old content is stale
	if bad := l.verify(b, 0, 100, 8); len(bad) != 2 || !strings.Contains(bad[0], "stale") {
		t.Fatalf("after the model pinned gen 5, gen 0 read back: %v", bad)
	}
}
