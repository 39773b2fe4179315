package loadgen

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Verify block format: every logical block written by a verify job starts
// with a 32-byte header and is filled with a pattern derived from it:
//
//	0  8  magic "nvmftVF1"
//	8  8  LBA the block was written to
//	16 8  job seed
//	24 4  generation (per clone, counts writes from 1)
//	28 4  CRC32C of the block with this field zero
//
// A read checks each block: a block with no header was never written by a
// verify job (an error if this run wrote it, or if the job only reads, as
// fio's "bad magic header"), a header naming another LBA is a misplaced
// write, a CRC mismatch is corruption, and an older generation than the
// last one this run wrote is a lost write.
const (
	verifyMagic  = "nvmftVF1"
	verifyHdrLen = 32
	// maxTracked bounds the per-block generation table (4 bytes a block).
	maxTracked = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// VerifyError reports a block that failed verification.
type VerifyError struct {
	Device string
	NSID   uint32
	LBA    uint64
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify failed: %s namespace %d LBA %d: %s", e.Device, e.NSID, e.LBA, e.Reason)
}

type verifier struct {
	lbaSize int
	seed    uint64
	gen     uint32
	base    uint64   // first LBA tracked
	exp     []uint32 // last generation written per LBA of the region (nil: untracked)
	dev     string
	nsid    uint32
	checked int64
	// noHeader counts blocks read without a verify header.
	noHeader int64
	// readOnly: the job only reads, so every block it reads must hold what
	// a verify job wrote (fio: a read verify job over other data fails).
	readOnly bool
}

func newVerifier(info DeviceInfo, seed uint64, start, blocks uint64) *verifier {
	v := &verifier{lbaSize: info.BlockSize, seed: seed, base: start, dev: info.Name, nsid: info.NSID}
	if info.BlockSize < verifyHdrLen*2 {
		return nil
	}
	if blocks <= maxTracked {
		v.exp = make([]uint32, blocks)
	}
	return v
}

// fill writes the verify pattern for io (a write) with a new generation.
func (v *verifier) fill(io *IO) {
	v.gen++
	io.gen = v.gen
	bs := v.lbaSize
	for i := 0; i < int(io.NLB); i++ {
		b := io.Buf[i*bs : (i+1)*bs]
		lba := io.LBA + uint64(i)
		copy(b, verifyMagic)
		binary.LittleEndian.PutUint64(b[8:], lba)
		binary.LittleEndian.PutUint64(b[16:], v.seed)
		binary.LittleEndian.PutUint32(b[24:], io.gen)
		x := mix64(v.seed^lba*0x9e3779b97f4a7c15^uint64(io.gen)<<32) | 1
		for off := verifyHdrLen; off+8 <= bs; off += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			binary.LittleEndian.PutUint64(b[off:], x)
		}
		binary.LittleEndian.PutUint32(b[28:], blockCRC(b))
	}
}

func blockCRC(b []byte) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:28])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, b[verifyHdrLen:])
}

// written records a completed write.
func (v *verifier) written(io *IO) {
	if v.exp == nil {
		return
	}
	for i := uint64(0); i < uint64(io.NLB); i++ {
		v.exp[io.LBA+i-v.base] = io.gen
	}
}

func (v *verifier) expected(lba uint64) uint32 {
	if v.exp == nil {
		return 0
	}
	return v.exp[lba-v.base]
}

// check verifies the blocks a read returned.
func (v *verifier) check(io *IO) error {
	bs := v.lbaSize
	for i := 0; i < int(io.NLB); i++ {
		b := io.Buf[i*bs : (i+1)*bs]
		lba := io.LBA + uint64(i)
		want := v.expected(lba)
		fail := func(format string, args ...any) error {
			return &VerifyError{Device: v.dev, NSID: v.nsid, LBA: lba, Reason: fmt.Sprintf(format, args...)}
		}
		if string(b[:8]) != verifyMagic {
			v.noHeader++
			if want != 0 {
				return fail("no verify header (first bytes % x) where generation %d was written", b[:16], want)
			}
			if v.readOnly {
				return fail("no verify header (first bytes % x): the block was not written by an nvmftest verify job, "+
					"so it cannot be checked (write the region first with --rw write --verify crc32c, same --offset and --size)", b[:16])
			}
			continue // a mixed job reading a block it has not written yet
		}
		v.checked++
		stored := binary.LittleEndian.Uint32(b[28:])
		if got := blockCRC(b); got != stored {
			return fail("crc32c mismatch: header says %08x, data gives %08x (content corrupted)", stored, got)
		}
		if h := binary.LittleEndian.Uint64(b[8:]); h != lba {
			return fail("block holds the data written to LBA %d (misplaced write)", h)
		}
		if g, s := binary.LittleEndian.Uint32(b[24:]), binary.LittleEndian.Uint64(b[16:]); want != 0 && (g != want || s != v.seed) {
			return fail("stale data: generation %d (seed %d), last written generation %d (seed %d): a write was lost", g, s, want, v.seed)
		}
	}
	return nil
}

// overlaps reports whether [lba, lba+nlb) overlaps an I/O in flight.
func overlaps(ios []*IO, self *IO, lba uint64, nlb uint32) bool {
	for _, o := range ios {
		if o == self || !o.busy {
			continue
		}
		if lba < o.LBA+uint64(o.NLB) && o.LBA < lba+uint64(nlb) {
			return true
		}
	}
	return false
}
