package tcp

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fuzzRules are the receivers FuzzParse tries every input on: both ends,
// every digest combination, a few alignments, with and without limits.
var fuzzRules = func() []Rules {
	var rs []Rules
	for _, ctrl := range []bool{false, true} {
		for _, d := range allDigests {
			for _, pda := range []uint8{0, 3, 31} {
				for _, lim := range []uint32{0, 8192} {
					rs = append(rs, Rules{Controller: ctrl, Digests: d, PDA: pda, MaxCapsuleData: lim, MaxData: lim})
				}
			}
		}
	}
	return rs
}()

// FuzzParse: no input panics Parse; whatever it accepts has the length its
// PLEN says, re-encodes, and parses back to the same PDU and data; every
// proper prefix of an accepted PDU is ErrTruncated; every rejection is
// ErrTruncated or a well-formed *FatalError.
func FuzzParse(f *testing.F) {
	for _, g := range goldens {
		f.Add(unhex(g.hex))
	}
	for _, s := range samplePDUs() {
		if len(s.data) <= 600 {
			b, _ := encodeFor(s, Digests{Header: true, Data: true}, 3)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := range fuzzRules {
			checkParse(t, b, fuzzRules[i])
		}
	})
}

func checkParse(t *testing.T, b []byte, r Rules) {
	p, ch, data, n, err := Parse(b, &r)
	var fe *FatalError
	switch {
	case err == nil, errors.Is(err, ErrDataDigest):
		if p == nil || n != int(ch.PLEN) || n > len(b) || p.Type() != ch.Type {
			t.Fatalf("%+v: p=%v n=%d plen=%d len=%d", r, p, n, ch.PLEN, len(b))
		}
		// The data must be a window of the input, within the PDU.
		if len(data) > n {
			t.Fatalf("%+v: %d bytes of data in a %d-byte PDU", r, len(data), n)
		}
		if len(data) > 0 && !bytes.Contains(b[:n], data) {
			t.Fatalf("%+v: data outside the input", r)
		}
	case errors.As(err, &fe):
		if fe.FES < FESInvalidHeaderField || fe.FES > FESUnsupportedParameter || len(fe.Header) < CommonHeaderSize ||
			len(fe.Header) > MaxTermReqData || !bytes.HasPrefix(b, fe.Header) || p != nil || n != 0 {
			t.Fatalf("%+v: malformed fatal error %#v", r, fe)
		}
		return
	case errors.Is(err, ErrTruncated):
		if p != nil || n != 0 {
			t.Fatalf("%+v: truncated with p=%v n=%d", r, p, n)
		}
		return
	default:
		t.Fatalf("%+v: unexpected error %v", r, err)
	}
	// Every prefix through the header and a little data, and the last few
	// (all of them would make each execution, and minimizing, slow).
	for i := 0; i < n; i++ {
		if i == 200 && n > 208 {
			i = n - 8
		}
		if _, _, _, _, err := Parse(b[:i:i], &r); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%+v: prefix %d of an accepted %d-byte PDU: %v", r, i, n, err)
		}
	}
	if err != nil {
		return // data digest error: the bytes are not what AppendPDU makes
	}
	re := AppendPDU(nil, p, data, EncodeOptions{Digests: r.Digests, PDA: r.PDA})
	p2, _, data2, n2, err := Parse(re, &r)
	if err != nil || n2 != len(re) || !reflect.DeepEqual(p, p2) || !bytes.Equal(data, data2) {
		t.Fatalf("%+v: re-encoded %v does not parse back: n=%d/%d err=%v\n%+v\n%+v", r, ch, n2, len(re), err, p, p2)
	}
}

// fuzzConnLimit bounds what FuzzConn allocates per PDU.
const (
	fuzzMaxCapsule = 16 << 10
	fuzzMaxData    = 64 << 10
)

// FuzzConn feeds arbitrary bytes through a Conn's Next/ReadData loop and
// compares each step with Parse on the same bytes. The first byte picks the
// configuration: bit 0 controller, bits 1-2 digests, bits 3-4 the
// alignment (0, 1, 3, 31), bit 5 clear for a negotiated connection (set:
// still in the IC exchange), bit 6 a 16-byte or 64 KiB read buffer, bit 7
// skip the data of every other PDU. Limits are always set, so no PDU may
// make the reader allocate more than fuzzMaxData.
func FuzzConn(f *testing.F) {
	for _, name := range []string{traceDigests, tracePlain} {
		for _, seed := range traceConnSeeds(f, name) {
			f.Add(seed)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for sel := 0; sel < 256; sel += 7 {
		if sel&0x20 != 0 {
			continue
		}
		r := Rules{Controller: sel&1 != 0, Digests: allDigests[sel>>1&3], PDA: []uint8{0, 1, 3, 31}[sel>>3&3]}
		stream, _ := randomStream(rng, 6, r)
		f.Add(append([]byte{byte(sel)}, stream...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		checkConn(t, in[0], in[1:])
	})
}

func checkConn(t *testing.T, sel byte, b []byte) {
	ctrl := sel&1 != 0
	d := allDigests[sel>>1&3]
	pda := []uint8{0, 1, 3, 31}[sel>>3&3]
	negotiated := sel&0x20 == 0
	bufSize := 16
	if sel&0x40 != 0 {
		bufSize = 64 << 10
	}
	skipOdd := sel&0x80 != 0

	c := NewConn(&readerConn{bytes.NewReader(b)}, ctrl, Config{ReadBufferSize: bufSize})
	if negotiated {
		c.Negotiated(d, pda, 0)
	}
	c.SetLimits(fuzzMaxCapsule, fuzzMaxData)
	r := c.Rules()
	rest := b
	for i := 0; ; i++ {
		if i > len(b) {
			t.Fatalf("no progress after %d PDUs", i)
		}
		p, ch, data, n, perr := Parse(rest, &r)
		// Conn also enforces the IC sequence, once the header is in.
		seqErr := false
		if len(rest) >= CommonHeaderSize {
			if hl, fe := r.headerLen(&ch, rest); fe == nil && len(rest) >= CommonHeaderSize+hl {
				isIC := ch.Type == TypeICReq || ch.Type == TypeICResp
				isTerm := ch.Type == TypeH2CTermReq || ch.Type == TypeC2HTermReq
				seqErr = isIC == negotiated && (isIC || !isTerm)
			}
		}
		got, err := c.Next()
		var gfe, pfe *FatalError
		switch {
		case len(rest) == 0:
			if err != io.EOF {
				t.Fatalf("PDU %d: at the end of the stream: %v", i, err)
			}
			return
		case seqErr:
			if !errors.As(err, &gfe) || gfe.FES != FESPDUSequenceError {
				t.Fatalf("PDU %d: %v out of sequence: %v", i, ch.Type, err)
			}
			return
		case errors.As(perr, &pfe):
			if !errors.As(err, &gfe) || gfe.FES != pfe.FES || gfe.FEI != pfe.FEI || !bytes.Equal(gfe.Header, pfe.Header) {
				t.Fatalf("PDU %d: Parse %v, Conn %v", i, perr, err)
			}
			return
		case errors.Is(perr, ErrTruncated) && err != nil:
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("PDU %d: Parse %v, Conn %v", i, perr, err)
			}
			return
		case err != nil:
			t.Fatalf("PDU %d: Parse p=%v err=%v, Conn %v", i, p, perr, err)
		}
		// Conn has a header; Parse has it too unless the data is cut off.
		if perr == nil || errors.Is(perr, ErrDataDigest) {
			if !reflect.DeepEqual(got, p) || c.Header() != ch || c.DataLen() != len(data) {
				t.Fatalf("PDU %d: Parse %v %+v (%d data bytes), Conn %v %+v (%d)", i, ch, p, len(data), c.Header(), got, c.DataLen())
			}
		}
		if c.DataLen() > fuzzMaxData {
			t.Fatalf("PDU %d: %v DataLen %d past the limits", i, c.Header(), c.DataLen())
		}
		if c.DataLen() > 0 && !(skipOdd && i%2 == 1) {
			buf := make([]byte, c.DataLen())
			rerr := c.ReadData(buf)
			if errors.Is(perr, ErrTruncated) {
				if rerr != io.ErrUnexpectedEOF {
					t.Fatalf("PDU %d: truncated data: ReadData %v", i, rerr)
				}
				return
			}
			if !errors.Is(rerr, ErrDataDigest) == errors.Is(perr, ErrDataDigest) || rerr != nil && !errors.Is(rerr, ErrDataDigest) {
				t.Fatalf("PDU %d: Parse %v, ReadData %v", i, perr, rerr)
			}
			if !bytes.Equal(buf, data) {
				t.Fatalf("PDU %d: data differs", i)
			}
		} else if errors.Is(perr, ErrTruncated) {
			if _, err := c.Next(); err != io.ErrUnexpectedEOF {
				t.Fatalf("PDU %d: skipping truncated data: %v", i, err)
			}
			return
		}
		rest = rest[n:]
	}
}

// traceConnSeeds makes FuzzConn inputs from a capture: for each connection
// and direction, the selector byte for its negotiated rules and up to
// 4 KiB of its PDUs after the IC exchange, plus the IC exchange itself
// with the selector for a connection not yet negotiated.
func traceConnSeeds(tb testing.TB, name string) [][]byte {
	var seeds [][]byte
	type key struct {
		conn int
		h2c  bool
	}
	streams := map[key][]byte{}
	sels := map[key]byte{}
	var order []key
	for _, tp := range tracePDUs(tb, name) {
		k := key{tp.Conn, tp.H2C}
		if tp.Index == 0 {
			sel := byte(0x20)
			if tp.H2C {
				sel |= 1
			}
			seeds = append(seeds, append([]byte{sel}, tp.Raw...))
			continue
		}
		if _, ok := sels[k]; !ok {
			sel := byte(0)
			if tp.H2C {
				sel |= 1
			}
			sel |= byte(slices.Index(allDigests, tp.Rules.Digests)) << 1
			sels[k] = sel
			order = append(order, k)
		}
		if len(streams[k])+len(tp.Raw) <= 4<<10 {
			streams[k] = append(streams[k], tp.Raw...)
		}
	}
	for _, k := range order {
		seeds = append(seeds, append([]byte{sels[k]}, streams[k]...))
	}
	return seeds
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the trace-* seeds in testdata/fuzz/FuzzParse from the captures")

const corpusDir = "testdata/fuzz/FuzzParse"

// traceCorpus picks distinct PDUs from the captures as FuzzParse seeds:
// one per capture, type, flags, PDO, data size class and, for commands and
// responses, opcode (with fabrics type) and status; PDUs over 8 KiB (the
// 128 KiB H2CData) are left out.
func traceCorpus(tb testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, name := range []string{traceDigests, tracePlain} {
		short := strings.TrimSuffix(strings.TrimPrefix(name, "linux-6.12-host-to-nvmet-"), ".pcap")
		seen := map[string]bool{}
		for _, tp := range tracePDUs(tb, name) {
			if len(tp.Raw) > 8<<10 {
				continue
			}
			p, ch, data, _, err := Parse(tp.Raw, &tp.Rules)
			if err != nil {
				tb.Fatal(err)
			}
			k := fmt.Sprintf("%v-f%x-o%d-d%d", ch.Type, ch.Flags, ch.PDO, min(len(data), 4096)/1024)
			switch v := p.(type) {
			case *CapsuleCmd:
				k += fmt.Sprintf("-op%02x", v.SQE.Opcode)
				if v.SQE.Opcode == 0x7f {
					k += fmt.Sprintf("-fc%02x", v.SQE.FCType())
				}
			case *CapsuleResp:
				k += fmt.Sprintf("-st%x", uint16(v.CQE.Status))
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			out[fmt.Sprintf("trace-%s-%s", short, k)] = tp.Raw
		}
	}
	return out
}

func corpusFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}

// TestFuzzCorpus keeps testdata/fuzz/FuzzParse/trace-* in step with the
// captures (go test -run TestFuzzCorpus -update-corpus rewrites them).
// Other files there are regression inputs found by fuzzing.
func TestFuzzCorpus(t *testing.T) {
	want := traceCorpus(t)
	if *updateCorpus {
		old, _ := filepath.Glob(filepath.Join(corpusDir, "trace-*"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(corpusDir, name), corpusFile(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	have, _ := filepath.Glob(filepath.Join(corpusDir, "trace-*"))
	if len(have) != len(want) {
		t.Fatalf("%d trace seeds in %s, want %d (run with -update-corpus)", len(have), corpusDir, len(want))
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil || !bytes.Equal(got, corpusFile(b)) {
			t.Fatalf("%s: stale or missing (run with -update-corpus): %v", name, err)
		}
	}
	if len(want) < 30 || len(want) > 60 {
		t.Errorf("%d trace seeds; aim for 30-60", len(want))
	}
}
