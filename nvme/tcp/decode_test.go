package tcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
)

// wantFatal parses b under r and checks for a *FatalError with fes/fei
// whose Header starts the input.
func wantFatal(t *testing.T, name string, b []byte, r Rules, fes uint16, fei uint32) {
	t.Helper()
	p, _, _, n, err := Parse(b, &r)
	var fe *FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("%s: got p=%v n=%d err=%v, want FES %d FEI %d", name, p, n, err, fes, fei)
	}
	if fe.FES != fes || fe.FEI != fei {
		t.Fatalf("%s: got FES %d FEI %d (%v), want FES %d FEI %d", name, fe.FES, fe.FEI, fe, fes, fei)
	}
	if p != nil || n != 0 {
		t.Fatalf("%s: fatal error with p=%v n=%d", name, p, n)
	}
	if len(fe.Header) < CommonHeaderSize || len(fe.Header) > MaxTermReqData || !bytes.HasPrefix(b, fe.Header) {
		t.Fatalf("%s: FatalError.Header %x is not the start of the PDU", name, fe.Header)
	}
}

func putPLEN(b []byte, v uint32) { binary.LittleEndian.PutUint32(b[offPLEN:], v) }

// mutate returns a copy of orig changed by f with its header digest (if r
// has one and the PDU type carries one) recomputed, so that the receiver
// gets past the digest to the field under test. Type, HLEN and HDGSTF are
// checked before the digest, as nvmet does.
func mutate(orig []byte, r Rules, f func(b []byte)) []byte {
	b := bytes.Clone(orig)
	f(b)
	t := PDUType(orig[0])
	if h := HLen(t); r.Header && digestible(t) && len(b) >= h+DigestSize {
		binary.LittleEndian.PutUint32(b[h:], Checksum(b[:h]))
	}
	return b
}

// encodeFor encodes s for its receiver and returns the bytes and rules.
func encodeFor(s samplePDU, d Digests, pda uint8) ([]byte, Rules) {
	r, o := rulesFor(s.pdu, d, pda)
	return AppendPDU(nil, s.pdu, s.data, o), r
}

func TestMutateHLEN(t *testing.T) {
	for _, s := range samplePDUs() {
		for _, d := range allDigests {
			orig, r := encodeFor(s, d, 0)
			for h := 0; h < 256; h++ {
				if h == HLen(s.pdu.Type()) {
					continue
				}
				b := bytes.Clone(orig)
				b[offHLEN] = byte(h)
				wantFatal(t, fmt.Sprintf("%s hlen %d", s.name, h), b, r, FESInvalidHeaderField, offHLEN)
				// The HLEN check needs only the common header.
				wantFatal(t, fmt.Sprintf("%s hlen %d, 8 bytes", s.name, h), b[:CommonHeaderSize], r, FESInvalidHeaderField, offHLEN)
			}
		}
	}
}

func TestMutateType(t *testing.T) {
	for _, s := range samplePDUs() {
		orig, r := encodeFor(s, Digests{}, 0)
		for typ := 0; typ < 256; typ++ {
			b := bytes.Clone(orig)
			b[offType] = byte(typ)
			rr := r
			accepted := r.accepts(PDUType(typ))
			if accepted {
				continue
			}
			// Unknown types and types of the other direction alike.
			wantFatal(t, fmt.Sprintf("%s as type %#x", s.name, typ), b, rr, FESInvalidHeaderField, offType)
		}
		// The same bytes at the wrong end of the connection.
		r.Controller = !r.Controller
		wantFatal(t, s.name+" wrong direction", orig, r, FESInvalidHeaderField, offType)
	}
	for _, typ := range []PDUType{8, 0x0A, 0x10, 0x7F, 0xFF} {
		b := []byte{byte(typ), 0, 24, 0, 24, 0, 0, 0}
		for _, c := range []bool{false, true} {
			wantFatal(t, fmt.Sprintf("unknown %v controller=%v", typ, c), b, Rules{Controller: c}, FESInvalidHeaderField, offType)
		}
	}
}

func TestMutatePLEN(t *testing.T) {
	for _, s := range samplePDUs() {
		for _, d := range allDigests {
			orig, r := encodeFor(s, d, 0)
			typ := s.pdu.Type()
			hl := HLen(typ)
			if digestible(typ) && d.Header {
				hl += DigestSize
			}
			var bad []uint32
			switch typ {
			case TypeICReq, TypeICResp, TypeCapsuleResp, TypeR2T:
				bad = []uint32{0, 8, uint32(hl - 1), uint32(hl + 1), uint32(hl + 4), 1 << 31, 0xFFFFFFFF}
			case TypeH2CTermReq, TypeC2HTermReq:
				bad = []uint32{0, 23, 153, 256, 0xFFFFFFFF}
			case TypeCapsuleCmd:
				if len(s.data) == 0 {
					// PLEN past the header makes it carry data at PDO 0.
					b := mutate(orig, r, func(b []byte) {
						putPLEN(b, uint32(hl+4))
						if d.Data {
							b[offFlags] |= FlagDDGST // else that is found first
						}
					})
					wantFatal(t, s.name+" plen+4 pdo 0", b, r, FESInvalidHeaderField, offPDO)
				}
				bad = []uint32{0, uint32(hl - 1)}
			case TypeH2CData, TypeC2HData:
				// No data, or shorter than the header.
				bad = []uint32{0, uint32(hl - 1), uint32(hl)}
			}
			for _, plen := range bad {
				b := mutate(orig, r, func(b []byte) { putPLEN(b, plen) })
				wantFatal(t, fmt.Sprintf("%s hd=%v dd=%v plen %d", s.name, d.Header, d.Data, plen), b, r, FESInvalidHeaderField, offPLEN)
			}
		}
	}
	// A data PDU whose PLEN ends at PDO (plus its data digest) holds no data.
	b, r := encodeFor(samplePDU{pdu: &CapsuleCmd{}, data: pattern(4)}, Digests{Header: true, Data: true}, 0)
	b = mutate(b, r, func(b []byte) { putPLEN(b, uint32(b[offPDO])+DigestSize) })
	wantFatal(t, "CapsuleCmd plen == pdo+ddgst", b, r, FESInvalidHeaderField, offPLEN)
}

func TestMutateTermReqPLEN(t *testing.T) {
	for _, h2c := range []bool{true, false} {
		r := Rules{Controller: h2c}
		for n := 0; n <= MaxTermReqData; n++ {
			b := AppendPDU(nil, &TermReq{H2C: h2c, FES: 1}, pattern(n), EncodeOptions{})
			if _, _, data, m, err := Parse(b, &r); err != nil || m != HLenTermReq+n || len(data) != n {
				t.Fatalf("TermReq with %d bytes: %v", n, err)
			}
		}
		for _, plen := range []uint32{HLenTermReq + MaxTermReqData + 1, 1 << 20, 0xFFFFFFFF} {
			b := AppendPDU(nil, &TermReq{H2C: h2c, FES: 1}, pattern(MaxTermReqData), EncodeOptions{})
			putPLEN(b, plen)
			wantFatal(t, fmt.Sprintf("TermReq h2c=%v plen %d", h2c, plen), b, r, FESInvalidHeaderField, offPLEN)
		}
	}
}

func TestMutatePDO(t *testing.T) {
	for _, s := range samplePDUs() {
		for _, d := range allDigests {
			for _, pda := range []uint8{0, 3, 31} {
				orig, r := encodeFor(s, d, pda)
				typ := s.pdu.Type()
				name := fmt.Sprintf("%s hd=%v dd=%v pda=%d", s.name, d.Header, d.Data, pda)
				switch {
				case typ == TypeICReq || typ == TypeICResp || typ == TypeCapsuleResp || typ == TypeR2T ||
					(typ == TypeCapsuleCmd && len(s.data) == 0):
					for _, pdo := range []byte{1, 4, 24, 255} {
						b := mutate(orig, r, func(b []byte) { b[offPDO] = pdo })
						wantFatal(t, fmt.Sprintf("%s pdo %d", name, pdo), b, r, FESInvalidHeaderField, offPDO)
					}
				case digestible(typ):
					hl := HLen(typ)
					if d.Header {
						hl += DigestSize
					}
					align := (int(pda) + 1) * 4
					for pdo := 0; pdo < 256; pdo++ {
						if pdo >= hl && pdo%align == 0 {
							continue
						}
						b := mutate(orig, r, func(b []byte) { b[offPDO] = byte(pdo) })
						wantFatal(t, fmt.Sprintf("%s pdo %d", name, pdo), b, r, FESInvalidHeaderField, offPDO)
					}
				}
			}
		}
	}
}

func TestMutateDigestFlags(t *testing.T) {
	for _, s := range samplePDUs() {
		if !digestible(s.pdu.Type()) {
			continue
		}
		for _, d := range allDigests {
			orig, r := encodeFor(s, d, 0)
			b := bytes.Clone(orig)
			b[offFlags] ^= FlagHDGST
			wantFatal(t, fmt.Sprintf("%s hd=%v HDGSTF flipped", s.name, d.Header), b, r, FESInvalidHeaderField, offFlags)
			// DDGSTF matters on PDUs with data; a CapsuleCmd without data
			// must not set it; on CapsuleResp and R2T it is reserved and
			// ignored (as nvmet does).
			if len(s.data) > 0 || s.pdu.Type() == TypeCapsuleCmd && !d.Data {
				b = mutate(orig, r, func(b []byte) { b[offFlags] ^= FlagDDGST })
				wantFatal(t, fmt.Sprintf("%s dd=%v DDGSTF flipped", s.name, d.Data), b, r, FESInvalidHeaderField, offFlags)
			}
			// The PDU itself is fine: the receiver negotiated otherwise.
			if d.Header {
				r.Header = false
				wantFatal(t, s.name+" header digest not negotiated", orig, r, FESInvalidHeaderField, offFlags)
			}
		}
	}
}

func TestMutateHeaderDigest(t *testing.T) {
	for _, s := range samplePDUs() {
		if !digestible(s.pdu.Type()) {
			continue
		}
		orig, r := encodeFor(s, Digests{Header: true, Data: true}, 0)
		hlen := HLen(s.pdu.Type())
		// Every bit of the type-specific header and of the digest itself.
		for pos := CommonHeaderSize; pos < hlen+DigestSize; pos++ {
			for bit := 0; bit < 8; bit++ {
				b := bytes.Clone(orig)
				b[pos] ^= 1 << bit
				// The FEI carries the HDGST as received (NVMe/TCP 1.0
				// 3.6.2.5: "the HDGST that was received").
				wantFatal(t, fmt.Sprintf("%s byte %d bit %d", s.name, pos, bit), b, r, FESHeaderDigestError, binary.LittleEndian.Uint32(b[hlen:]))
			}
		}
		// A PDO change is a header change too when it stays legal.
		if len(s.data) > 0 {
			b := bytes.Clone(orig)
			b[offPDO] += 4
			putPLEN(b, binary.LittleEndian.Uint32(b[offPLEN:])+4)
			wantFatal(t, s.name+" pdo+4", b, r, FESHeaderDigestError, binary.LittleEndian.Uint32(b[hlen:]))
		}
	}
}

func TestMutateDataDigest(t *testing.T) {
	for _, s := range samplePDUs() {
		if !digestible(s.pdu.Type()) || len(s.data) == 0 {
			continue
		}
		orig, r := encodeFor(s, Digests{Header: true, Data: true}, 0)
		for _, pos := range []int{int(orig[offPDO]), len(orig) - 1} {
			b := bytes.Clone(orig)
			b[pos] ^= 0x80
			p, _, data, n, err := Parse(b, &r)
			if !errors.Is(err, ErrDataDigest) || n != len(b) || !reflect.DeepEqual(p, s.pdu) || len(data) != len(s.data) {
				t.Fatalf("%s: data digest error at %d: p=%v n=%d err=%v", s.name, pos, p, n, err)
			}
		}
	}
}

func TestMutateDATAL(t *testing.T) {
	for _, p := range []PDU{&H2CData{DATAL: 512}, &C2HData{DATAL: 512}} {
		for _, d := range allDigests {
			for _, datal := range []uint32{0, 511, 513, 0xFFFFFFFF} {
				s := samplePDU{pdu: p, data: pattern(512)}
				orig, r := encodeFor(s, d, 0)
				b := mutate(orig, r, func(b []byte) { binary.LittleEndian.PutUint32(b[offDATAL:], datal) })
				wantFatal(t, fmt.Sprintf("%v hd=%v datal %d", p.Type(), d.Header, datal), b, r, FESInvalidHeaderField, offDATAL)
			}
		}
	}
}

func TestDataLimits(t *testing.T) {
	const max = 8192
	for _, d := range allDigests {
		for _, n := range []int{max, max + 1, max + 4096} {
			for _, p := range []PDU{&H2CData{DATAL: uint32(n)}, &C2HData{DATAL: uint32(n)}, &CapsuleCmd{}} {
				s := samplePDU{pdu: p, data: pattern(n)}
				b, r := encodeFor(s, d, 0)
				r.MaxData, r.MaxCapsuleData = max, max
				name := fmt.Sprintf("%v hd=%v dd=%v %d bytes", p.Type(), d.Header, d.Data, n)
				if n <= max {
					if _, _, _, _, err := Parse(b, &r); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					continue
				}
				if p.Type() == TypeCapsuleCmd {
					wantFatal(t, name, b, r, FESInvalidHeaderField, offPLEN)
				} else {
					wantFatal(t, name, b, r, FESDataLimitExceeded, 0)
				}
				// The limit is enforced from the header alone, long before
				// the data arrives.
				hend := int(b[offPDO])
				wantFatal(t, name+" header only", b[:hend], r, map[bool]uint16{true: FESInvalidHeaderField, false: FESDataLimitExceeded}[p.Type() == TypeCapsuleCmd], map[bool]uint32{true: offPLEN, false: 0}[p.Type() == TypeCapsuleCmd])
			}
		}
	}
}

func TestC2HSuccessNeedsLast(t *testing.T) {
	for _, d := range allDigests {
		orig, r := encodeFor(samplePDU{pdu: &C2HData{DATAL: 4, Last: true, Success: true}, data: pattern(4)}, d, 0)
		b := mutate(orig, r, func(b []byte) { b[offFlags] &^= FlagLastPDU })
		wantFatal(t, fmt.Sprintf("SUCCESS without LAST_PDU hd=%v", d.Header), b, r, FESInvalidHeaderField, offFlags)
	}
}

// TestParseHugePLEN: a PLEN near 4 GiB must come back as ErrTruncated or
// a *FatalError, never a panic. On 32-bit platforms (GOARCH=386) the data
// length overflows int unless Parse bounds it.
func TestParseHugePLEN(t *testing.T) {
	for _, s := range samplePDUs() {
		typ := s.pdu.Type()
		if typ != TypeCapsuleCmd && typ != TypeH2CData && typ != TypeC2HData || len(s.data) == 0 {
			continue
		}
		for _, d := range allDigests {
			for _, plen := range []uint32{1 << 31, 0xFFFFFFF0, 0xFFFFFFFF} {
				b, r := encodeFor(s, d, 0)
				putPLEN(b, plen)
				hdl := int(b[offPDO]) - HLen(typ)
				datal := int64(plen) - int64(b[offPDO])
				if d.Data {
					datal -= DigestSize
				}
				if typ != TypeCapsuleCmd {
					binary.LittleEndian.PutUint32(b[offDATAL:], uint32(datal))
				}
				if hdl >= DigestSize && d.Header {
					h := HLen(typ)
					binary.LittleEndian.PutUint32(b[h:], Checksum(b[:h]))
				}
				func() {
					defer func() {
						if e := recover(); e != nil {
							t.Fatalf("%s hd=%v dd=%v plen %#x: panic: %v", s.name, d.Header, d.Data, plen, e)
						}
					}()
					p, _, _, n, err := Parse(b, &r)
					var fe *FatalError
					if !errors.Is(err, ErrTruncated) && !errors.As(err, &fe) {
						t.Fatalf("%s plen %#x: p=%v n=%d err=%v", s.name, plen, p, n, err)
					}
				}()
			}
		}
	}
}

// ---- Conn

// connPDU is what a receiver saw of one PDU.
type connPDU struct {
	pdu  PDU
	ch   CommonHeader
	data []byte
	err  error
}

func clonePDU(p PDU) PDU {
	v := reflect.New(reflect.TypeOf(p).Elem())
	v.Elem().Set(reflect.ValueOf(p).Elem())
	return v.Interface().(PDU)
}

// parseAll runs Parse over a stream until it ends or fails.
func parseAll(b []byte, r Rules) []connPDU {
	var out []connPDU
	for len(b) > 0 {
		p, ch, data, n, err := Parse(b, &r)
		out = append(out, connPDU{p, ch, bytes.Clone(data), err})
		if n == 0 {
			break
		}
		b = b[n:]
	}
	return out
}

// readAll runs a Conn over the same stream, reading data when read(i)
// says so (and skipping it otherwise).
func readAll(c *Conn, read func(i int) bool) []connPDU {
	var out []connPDU
	for i := 0; ; i++ {
		p, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			return append(out, connPDU{err: err})
		}
		e := connPDU{pdu: clonePDU(p), ch: c.Header()}
		if n := c.DataLen(); n > 0 && read(i) {
			e.data = make([]byte, n)
			e.err = c.ReadData(e.data)
			if e.err != nil && !errors.Is(e.err, ErrDataDigest) {
				return append(out, e)
			}
		}
		out = append(out, e)
	}
}

// randomStream encodes n random PDUs that a receiver under r accepts,
// corrupting the data digest of some.
func randomStream(rng *rand.Rand, n int, r Rules) ([]byte, []samplePDU) {
	o := EncodeOptions{Digests: r.Digests, PDA: r.PDA}
	var b []byte
	var sent []samplePDU
	for len(sent) < n {
		var s samplePDU
		data := pattern(rng.IntN(3) * rng.IntN(5000))
		if r.Controller {
			switch rng.IntN(3) {
			case 0:
				sqe := sampleSQE
				sqe.CID = uint16(rng.Uint32())
				s = samplePDU{"cmd", &CapsuleCmd{SQE: sqe}, data}
			case 1:
				if len(data) == 0 {
					data = pattern(1 + rng.IntN(300))
				}
				s = samplePDU{"h2c", &H2CData{CCCID: uint16(rng.Uint32()), TTAG: 3, DATAO: rng.Uint32(), DATAL: uint32(len(data)), Last: rng.IntN(2) == 0}, data}
			default:
				continue
			}
		} else {
			switch rng.IntN(3) {
			case 0:
				s = samplePDU{"resp", &CapsuleResp{CQE: nvme.CQE{CID: uint16(rng.Uint32()), DW0: rng.Uint32()}}, nil}
			case 1:
				if len(data) == 0 {
					data = pattern(1 + rng.IntN(300))
				}
				last := rng.IntN(2) == 0
				s = samplePDU{"c2h", &C2HData{CCCID: uint16(rng.Uint32()), DATAO: rng.Uint32(), DATAL: uint32(len(data)), Last: last, Success: last && rng.IntN(2) == 0}, data}
			default:
				s = samplePDU{"r2t", &R2T{CCCID: uint16(rng.Uint32()), TTAG: uint16(rng.Uint32()), R2TO: rng.Uint32(), R2TL: rng.Uint32()}, nil}
			}
		}
		start := len(b)
		b = AppendPDU(b, s.pdu, s.data, o)
		if r.Data && len(s.data) > 0 && rng.IntN(8) == 0 {
			b[len(b)-1] ^= 0xFF
		}
		_ = start
		sent = append(sent, s)
	}
	return b, sent
}

func comparePDUs(t *testing.T, name string, want, got []connPDU, skipped func(i int) bool) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: Parse saw %d PDUs, Conn %d", name, len(want), len(got))
	}
	for i := range want {
		w, g := want[i], got[i]
		if !reflect.DeepEqual(w.pdu, g.pdu) || w.ch != g.ch {
			t.Fatalf("%s: PDU %d: Parse %v %+v, Conn %v %+v", name, i, w.ch, w.pdu, g.ch, g.pdu)
		}
		if skipped(i) || len(w.data) == 0 {
			if g.data != nil {
				t.Fatalf("%s: PDU %d: data read although skipped", name, i)
			}
			continue
		}
		if !bytes.Equal(w.data, g.data) {
			t.Fatalf("%s: PDU %d: data differs", name, i)
		}
		if errors.Is(w.err, ErrDataDigest) != errors.Is(g.err, ErrDataDigest) {
			t.Fatalf("%s: PDU %d: Parse %v, Conn %v", name, i, w.err, g.err)
		}
	}
}

func TestConnStreamMatchesParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ctrl := range []bool{false, true} {
		for _, d := range allDigests {
			for _, pda := range []uint8{0, 1, 31} {
				for _, bufSize := range []int{16, 100, 64 << 10} {
					r := Rules{Controller: ctrl, Digests: d, PDA: pda}
					stream, _ := randomStream(rng, 200, r)
					name := fmt.Sprintf("ctrl=%v hd=%v dd=%v pda=%d buf=%d", ctrl, d.Header, d.Data, pda, bufSize)
					want := parseAll(stream, r)
					skip := func(i int) bool { return i%5 == 4 }
					c := NewConn(&readerConn{bytes.NewReader(stream)}, ctrl, Config{ReadBufferSize: bufSize})
					c.Negotiated(d, pda, 0)
					got := readAll(c, func(i int) bool { return !skip(i) })
					comparePDUs(t, name, want, got, skip)
				}
			}
		}
	}
}

// TestConnTruncatedData: a stream that ends inside a PDU's data is an
// unexpected EOF whether the reader reads the data or skips it.
func TestConnTruncatedData(t *testing.T) {
	b := AppendPDU(nil, &C2HData{DATAL: 100, Last: true}, pattern(100), EncodeOptions{})
	b = b[:len(b)-10]
	for _, read := range []bool{true, false} {
		c := NewConn(&readerConn{bytes.NewReader(b)}, false, Config{})
		c.Negotiated(Digests{}, 0, 0)
		if _, err := c.Next(); err != nil {
			t.Fatal(err)
		}
		var err error
		if read {
			err = c.ReadData(make([]byte, c.DataLen()))
		} else {
			_, err = c.Next()
		}
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("read=%v: got %v, want io.ErrUnexpectedEOF", read, err)
		}
	}
}

// TestConnLimitsGiantPLEN: with limits set, a header announcing ~4 GiB of
// data is a *FatalError before anything is allocated or read; without
// them DataLen reports the whole PLEN and sizing a buffer from it is the
// caller's undoing.
func TestConnLimitsGiantPLEN(t *testing.T) {
	giant := func(p PDU, d Digests) []byte {
		b := AppendPDU(nil, p, pattern(4), EncodeOptions{Digests: d})
		hend := int(b[offPDO])
		b = b[:hend]
		putPLEN(b, 0xFFFFFFFF)
		dl := uint32(0xFFFFFFFF) - uint32(hend)
		if d.Data {
			dl -= DigestSize
		}
		if p.Type() != TypeCapsuleCmd {
			binary.LittleEndian.PutUint32(b[offDATAL:], dl)
		}
		if d.Header {
			h := HLen(p.Type())
			binary.LittleEndian.PutUint32(b[h:], Checksum(b[:h]))
		}
		return b
	}
	for _, d := range allDigests {
		for _, p := range []PDU{&CapsuleCmd{}, &H2CData{DATAL: 4}, &C2HData{DATAL: 4}} {
			ctrl := toController(p)
			b := giant(p, d)
			c := NewConn(&readerConn{bytes.NewReader(b)}, ctrl, Config{})
			c.Negotiated(d, 0, 0)
			c.SetLimits(16<<10, 128<<10)
			_, err := c.Next()
			var fe *FatalError
			if !errors.As(err, &fe) {
				t.Fatalf("%v hd=%v dd=%v with limits: got %v, want *FatalError", p.Type(), d.Header, d.Data, err)
			}
			if c.DataLen() != 0 {
				t.Fatalf("%v: DataLen %d after a fatal error", p.Type(), c.DataLen())
			}

			c = NewConn(&readerConn{bytes.NewReader(b)}, ctrl, Config{})
			c.Negotiated(d, 0, 0)
			_, err = c.Next()
			if strconv.IntSize == 32 && errors.As(err, &fe) {
				continue // 4 GiB does not fit an int: fatal even without limits
			}
			if err != nil {
				t.Fatalf("%v without limits: %v", p.Type(), err)
			}
			if int64(c.DataLen()) < 1<<31 {
				t.Fatalf("%v without limits: DataLen %d", p.Type(), c.DataLen())
			}
			// Skipping the data must not allocate it either.
			if _, err := c.Next(); err != io.ErrUnexpectedEOF {
				t.Fatalf("%v: skipping absent data: %v", p.Type(), err)
			}
		}
	}
}

// TestControllerInitializeBoundsCapsuleData: after the IC exchange a
// controller must not accept unbounded in-capsule data: a CapsuleCmd whose
// PLEN announces ~4 GiB must be a fatal error, not a DataLen a target then
// allocates.
func TestControllerInitializeBoundsCapsuleData(t *testing.T) {
	host, ctrl := pipePair(t)
	handshake(t, host, ctrl, 0, 0)
	b := AppendPDU(nil, &CapsuleCmd{}, pattern(4), EncodeOptions{})[:HLenCapsuleCmd]
	putPLEN(b, 0xFFFFFFFF)
	go func() { _ = host.SendRaw(b) }()
	_, err := ctrl.Next()
	var fe *FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("CapsuleCmd with PLEN 4 GiB: got %v (DataLen %d), want *FatalError", err, ctrl.DataLen())
	}
}

// TestConnICSequence: before the IC exchange only IC PDUs and TermReqs
// are legal; IC PDUs after it are sequence errors.
func TestConnICSequence(t *testing.T) {
	for _, ctrl := range []bool{false, true} {
		var ic PDU = &ICResp{MAXH2CDATA: 4096}
		var other PDU = &CapsuleResp{}
		term := &TermReq{FES: 1}
		if ctrl {
			ic, other, term = &ICReq{}, &CapsuleCmd{}, &TermReq{H2C: true, FES: 1}
		}
		next := func(b []byte, negotiated bool) error {
			c := NewConn(&readerConn{bytes.NewReader(b)}, ctrl, Config{})
			if negotiated {
				c.Negotiated(Digests{}, 0, 0)
			}
			_, err := c.Next()
			return err
		}
		isSeq := func(err error) bool {
			var fe *FatalError
			return errors.As(err, &fe) && fe.FES == FESPDUSequenceError
		}
		if err := next(AppendPDU(nil, ic, nil, EncodeOptions{}), false); err != nil {
			t.Fatal(err)
		}
		if err := next(AppendPDU(nil, term, nil, EncodeOptions{}), false); err != nil {
			t.Fatal(err)
		}
		if err := next(AppendPDU(nil, other, nil, EncodeOptions{}), false); !isSeq(err) {
			t.Fatalf("ctrl=%v: %v before IC: %v", ctrl, other.Type(), err)
		}
		if err := next(AppendPDU(nil, ic, nil, EncodeOptions{}), true); !isSeq(err) {
			t.Fatalf("ctrl=%v: %v after IC: %v", ctrl, ic.Type(), err)
		}
	}
}
