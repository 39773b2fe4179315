package tcp

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
)

var benchCases = []struct {
	name string
	pdu  PDU
	data []byte
}{
	{"CapsuleCmd", &CapsuleCmd{SQE: sampleSQE}, nil},
	{"C2HData4K", &C2HData{CCCID: 1, DATAL: 4096, Last: true}, pattern(4096)},
}

var benchDigests = []struct {
	name string
	d    Digests
}{{"plain", Digests{}}, {"digests", Digests{Header: true, Data: true}}}

// BenchmarkAppendPDU encodes into a reused buffer.
func BenchmarkAppendPDU(b *testing.B) {
	for _, c := range benchCases {
		for _, d := range benchDigests {
			b.Run(c.name+"/"+d.name, func(b *testing.B) {
				o := EncodeOptions{Digests: d.d}
				buf := AppendPDU(nil, c.pdu, c.data, o)
				b.SetBytes(int64(len(buf)))
				b.ReportAllocs()
				for b.Loop() {
					buf = AppendPDU(buf[:0], c.pdu, c.data, o)
				}
			})
		}
	}
}

// BenchmarkParse decodes the same PDUs, verifying digests. It reports one
// allocation: Parse returns a newly allocated PDU value (newPDU).
func BenchmarkParse(b *testing.B) {
	for _, c := range benchCases {
		for _, d := range benchDigests {
			b.Run(c.name+"/"+d.name, func(b *testing.B) {
				r, o := rulesFor(c.pdu, d.d, 0)
				buf := AppendPDU(nil, c.pdu, c.data, o)
				b.SetBytes(int64(len(buf)))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, _, _, err := Parse(buf, &r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkConnSendNext sends a CapsuleResp through a Conn and reads it
// back through another over an in-memory connection: the controller's
// per-I/O completion path and the host's receive path, without sockets.
func BenchmarkConnSendNext(b *testing.B) {
	for _, d := range benchDigests {
		b.Run("CapsuleResp/"+d.name, func(b *testing.B) {
			lc := &loopConn{}
			tx := NewConn(lc, true, Config{})
			rx := NewConn(lc, false, Config{})
			tx.Negotiated(d.d, 0, 0)
			rx.Negotiated(d.d, 0, 0)
			resp := &CapsuleResp{CQE: nvme.CQE{CID: 1, SQHD: 2}}
			b.ReportAllocs()
			for b.Loop() {
				resp.CQE.CID++
				if err := tx.Send(resp, nil); err != nil {
					b.Fatal(err)
				}
				p, err := rx.Next()
				if err != nil {
					b.Fatal(err)
				}
				if p.(*CapsuleResp).CQE.CID != resp.CQE.CID {
					b.Fatal("wrong CID")
				}
			}
		})
	}
}

// TestHotPathsDoNotAllocate pins down what the benchmarks show: encoding
// into a reused buffer and a Send/Next round trip of a reused PDU value
// allocate nothing. (A fresh &CapsuleResp{} per Send does: it escapes
// through the PDU interface. Parse allocates the PDU it returns.)
func TestHotPathsDoNotAllocate(t *testing.T) {
	for _, c := range benchCases {
		o := EncodeOptions{Digests: Digests{Header: true, Data: true}, PDA: 3}
		buf := AppendPDU(nil, c.pdu, c.data, o)
		if n := testing.AllocsPerRun(100, func() { buf = AppendPDU(buf[:0], c.pdu, c.data, o) }); n != 0 {
			t.Errorf("AppendPDU %s: %v allocs", c.name, n)
		}
	}
	lc := &loopConn{}
	tx, rx := NewConn(lc, true, Config{}), NewConn(lc, false, Config{})
	d := Digests{Header: true, Data: true}
	tx.Negotiated(d, 0, 0)
	rx.Negotiated(d, 0, 0)
	resp := &CapsuleResp{}
	c2h := &C2HData{DATAL: 4096, Last: true}
	data, dst := pattern(4096), make([]byte, 4096)
	n := testing.AllocsPerRun(100, func() {
		resp.CQE.CID++
		_ = tx.Send(resp, nil)
		_ = tx.Send(c2h, data)
		if _, err := rx.Next(); err != nil {
			t.Fatal(err)
		}
		if _, err := rx.Next(); err != nil {
			t.Fatal(err)
		}
		if err := rx.ReadData(dst); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Conn Send/Next/ReadData: %v allocs", n)
	}
}
