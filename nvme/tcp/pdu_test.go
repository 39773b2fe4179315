package tcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// samplePDU is a PDU with the data that travels with it.
type samplePDU struct {
	name string
	pdu  PDU
	data []byte
}

// toController reports whether the host sends p (so a controller receives
// it).
func toController(p PDU) bool {
	switch p.Type() {
	case TypeICReq, TypeH2CTermReq, TypeCapsuleCmd, TypeH2CData:
		return true
	}
	return false
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8 + 1)
	}
	return b
}

var sampleSQE = nvme.SQE{
	Opcode: nvme.CmdWrite, Flags: nvme.PSDTSGL, CID: 0x1234, NSID: 1,
	CDW2: 2, CDW3: 3, MPTR: 0x0102030405060708,
	DPTR:  nvme.SGLDescriptor{Addr: 0, Length: 4096, Type: nvme.SGLDataBlockOffset},
	CDW10: 0x10, CDW11: 0x11, CDW12: 7, CDW13: 0x13, CDW14: 0x14, CDW15: 0x15,
}

// samplePDUs returns one or more PDUs of every type, data-carrying ones
// with several data sizes.
func samplePDUs() []samplePDU {
	s := []samplePDU{
		{"ICReq", &ICReq{PFV: 0, HPDA: 3, DGST: DgstHeader | DgstData, MAXR2T: 7}, nil},
		{"ICResp", &ICResp{CPDA: 31, DGST: DgstData, MAXH2CDATA: 128 << 10}, nil},
		{"H2CTermReq/empty", &TermReq{H2C: true, FES: FESPDUSequenceError}, nil},
		{"H2CTermReq/hdr", &TermReq{H2C: true, FES: FESInvalidHeaderField, FEI: offHLEN}, pattern(HLenCapsuleCmd)},
		{"C2HTermReq/max", &TermReq{FES: FESHeaderDigestError}, pattern(MaxTermReqData)},
		{"C2HTermReq/1", &TermReq{FES: FESUnsupportedParameter, FEI: offHPDA}, pattern(1)},
		{"CapsuleCmd/nodata", &CapsuleCmd{SQE: sampleSQE}, nil},
		{"CapsuleResp", &CapsuleResp{CQE: nvme.CQE{DW0: 0xdeadbeef, DW1: 1, SQHD: 9, SQID: 2, CID: 0x1234, Status: nvme.StatusInvalidField, Phase: true}}, nil},
		{"R2T", &R2T{CCCID: 0x1234, TTAG: 0xfffe, R2TO: 8192, R2TL: 128 << 10}, nil},
	}
	for _, n := range []int{1, 3, 4, 513, 4096} {
		s = append(s,
			samplePDU{fmt.Sprintf("CapsuleCmd/icd%d", n), &CapsuleCmd{SQE: sampleSQE}, pattern(n)},
			samplePDU{fmt.Sprintf("H2CData/%d", n), &H2CData{CCCID: 5, TTAG: 6, DATAO: 4096, DATAL: uint32(n), Last: n%2 == 1}, pattern(n)},
			samplePDU{fmt.Sprintf("C2HData/%d", n), &C2HData{CCCID: 5, DATAO: 12288, DATAL: uint32(n), Last: n > 3}, pattern(n)},
		)
	}
	s = append(s, samplePDU{"C2HData/success", &C2HData{CCCID: 1, DATAL: 8, Last: true, Success: true}, pattern(8)})
	return s
}

var allDigests = []Digests{{}, {Header: true}, {Data: true}, {Header: true, Data: true}}

// rulesFor returns the receiver's rules for p under digests d and the
// receiver's alignment pda, and the sender's matching encode options.
func rulesFor(p PDU, d Digests, pda uint8) (Rules, EncodeOptions) {
	return Rules{Controller: toController(p), Digests: d, PDA: pda}, EncodeOptions{Digests: d, PDA: pda}
}

func TestRoundTripAllTypes(t *testing.T) {
	prefix := []byte("prefix")
	for _, s := range samplePDUs() {
		for _, d := range allDigests {
			for pda := uint8(0); pda < 32; pda++ {
				r, o := rulesFor(s.pdu, d, pda)
				name := fmt.Sprintf("%s/hd=%v,dd=%v,pda=%d", s.name, d.Header, d.Data, pda)
				b := AppendPDU(bytes.Clone(prefix), s.pdu, s.data, o)
				if !bytes.HasPrefix(b, prefix) {
					t.Fatalf("%s: AppendPDU clobbered the prefix", name)
				}
				b = b[len(prefix):]
				p, ch, data, n, err := Parse(append(b, 0xEE, 0xEE), &r) // trailing bytes belong to the next PDU
				if err != nil {
					t.Fatalf("%s: Parse: %v\n%x", name, err, b)
				}
				if n != len(b) || int(ch.PLEN) != len(b) {
					t.Fatalf("%s: n=%d plen=%d, encoded %d bytes", name, n, ch.PLEN, len(b))
				}
				if !reflect.DeepEqual(p, s.pdu) {
					t.Fatalf("%s: got %+v, want %+v", name, p, s.pdu)
				}
				if !bytes.Equal(data, s.data) {
					t.Fatalf("%s: data differs", name)
				}
				checkLayout(t, name, ch, s, d, pda)
			}
		}
	}
}

// checkLayout checks the common header AppendPDU chose against the spec:
// digest flags only on digestible PDUs, PDO 0 without data, otherwise the
// smallest multiple of the alignment past the header (and its digest).
func checkLayout(t *testing.T, name string, ch CommonHeader, s samplePDU, d Digests, pda uint8) {
	t.Helper()
	typ := s.pdu.Type()
	if int(ch.HLEN) != HLen(typ) || ch.Type != typ {
		t.Fatalf("%s: header %v", name, ch)
	}
	dig := digestible(typ)
	if got, want := ch.Flags&FlagHDGST != 0, dig && d.Header; got != want {
		t.Fatalf("%s: HDGSTF %v, want %v", name, got, want)
	}
	if got, want := ch.Flags&FlagDDGST != 0, dig && d.Data && len(s.data) > 0; got != want {
		t.Fatalf("%s: DDGSTF %v, want %v", name, got, want)
	}
	if !dig || len(s.data) == 0 {
		if ch.PDO != 0 {
			t.Fatalf("%s: PDO %d, want 0", name, ch.PDO)
		}
		return
	}
	min := HLen(typ)
	if d.Header {
		min += DigestSize
	}
	align := (int(pda) + 1) * 4
	want := (min + align - 1) / align * align
	if int(ch.PDO) != want {
		t.Fatalf("%s: PDO %d, want %d", name, ch.PDO, want)
	}
}

// TestAppendPDUReusesBuffer checks that AppendPDU writes into spare
// capacity and zeroes padding and reserved bytes left over from earlier
// contents.
func TestAppendPDUReusesBuffer(t *testing.T) {
	buf := bytes.Repeat([]byte{0xFF}, 8192)
	for _, s := range samplePDUs() {
		for _, d := range allDigests {
			r, o := rulesFor(s.pdu, d, 7)
			want := AppendPDU(nil, s.pdu, s.data, o)
			got := AppendPDU(buf[:0], s.pdu, s.data, o)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: dirty buffer changes the encoding", s.name)
			}
			if len(want) <= len(buf) && &got[0] != &buf[0] {
				t.Fatalf("%s: AppendPDU reallocated with enough capacity", s.name)
			}
			if _, _, _, _, err := Parse(got, &r); err != nil {
				t.Fatal(err)
			}
			buf = bytes.Repeat([]byte{0xFF}, 8192)
		}
	}
}

// TestTruncateAtEveryByte parses every proper prefix of every sample
// PDU: each must be ErrTruncated (the fields seen so far are all valid),
// never a panic or a PDU.
func TestTruncateAtEveryByte(t *testing.T) {
	for _, s := range samplePDUs() {
		for _, d := range allDigests {
			for _, pda := range []uint8{0, 3, 31} {
				r, o := rulesFor(s.pdu, d, pda)
				b := AppendPDU(nil, s.pdu, s.data, o)
				for i := 0; i < len(b); i++ {
					p, _, data, n, err := Parse(b[:i:i], &r)
					if !errors.Is(err, ErrTruncated) || p != nil || data != nil || n != 0 {
						t.Fatalf("%s hd=%v dd=%v pda=%d: prefix %d/%d: p=%v n=%d err=%v", s.name, d.Header, d.Data, pda, i, len(b), p, n, err)
					}
				}
			}
		}
	}
}

// TestTruncateCorrupt cuts corrupted PDUs at every byte: the result must be
// ErrTruncated, a *FatalError or ErrDataDigest, and whatever succeeds must
// not claim more bytes than it was given.
func TestTruncateCorrupt(t *testing.T) {
	for _, s := range samplePDUs() {
		r, o := rulesFor(s.pdu, Digests{Header: true, Data: true}, 0)
		orig := AppendPDU(nil, s.pdu, s.data, o)
		if len(orig) > 600 {
			continue
		}
		for pos := 0; pos < min(len(orig), 80); pos++ {
			b := bytes.Clone(orig)
			b[pos] ^= 0x55
			for i := 0; i <= len(b); i++ {
				p, ch, _, n, err := Parse(b[:i:i], &r)
				var fe *FatalError
				switch {
				case err == nil || errors.Is(err, ErrDataDigest):
					if p == nil || n > i || n != int(ch.PLEN) {
						t.Fatalf("%s byte %d ^0x55, prefix %d: n=%d plen=%d p=%v", s.name, pos, i, n, ch.PLEN, p)
					}
				case errors.Is(err, ErrTruncated), errors.As(err, &fe):
				default:
					t.Fatalf("%s byte %d: unexpected error %v", s.name, pos, err)
				}
			}
		}
	}
}

// ---- fake connections shared by the Conn tests, fuzzers and benchmarks

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake" }

// readerConn is a net.Conn that reads from r and discards writes.
type readerConn struct{ r io.Reader }

func (c *readerConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *readerConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *readerConn) Close() error                     { return nil }
func (c *readerConn) LocalAddr() net.Addr              { return fakeAddr{} }
func (c *readerConn) RemoteAddr() net.Addr             { return fakeAddr{} }
func (c *readerConn) SetDeadline(time.Time) error      { return nil }
func (c *readerConn) SetReadDeadline(time.Time) error  { return nil }
func (c *readerConn) SetWriteDeadline(time.Time) error { return nil }

// loopConn is a single-goroutine in-memory net.Conn: what is written can be
// read back. It reuses its buffer once everything was read, so steady
// state does not allocate.
type loopConn struct {
	buf []byte
	off int
}

func (c *loopConn) Write(b []byte) (int, error) {
	if c.off == len(c.buf) {
		c.buf, c.off = c.buf[:0], 0
	}
	c.buf = append(c.buf, b...)
	return len(b), nil
}

func (c *loopConn) Read(b []byte) (int, error) {
	if c.off == len(c.buf) {
		return 0, io.EOF
	}
	n := copy(b, c.buf[c.off:])
	c.off += n
	return n, nil
}

func (c *loopConn) Close() error                     { return nil }
func (c *loopConn) LocalAddr() net.Addr              { return fakeAddr{} }
func (c *loopConn) RemoteAddr() net.Addr             { return fakeAddr{} }
func (c *loopConn) SetDeadline(time.Time) error      { return nil }
func (c *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (c *loopConn) SetWriteDeadline(time.Time) error { return nil }
