package hostconform

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// chunked writes b to w in pieces of random sizes, as TCP may deliver it.
func chunked(t *testing.T, w io.Writer, b []byte, rng *rand.Rand) {
	for len(b) > 0 {
		n := min(len(b), 1+rng.IntN(40))
		if _, err := w.Write(b[:n]); err != nil {
			t.Error(err)
			return
		}
		b = b[n:]
	}
}

// TestTapFrames: whatever pieces the bytes come in, both ways, the tap
// passes them on unchanged and records each PDU once, decoded, in order.
func TestTapFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hostSide, tapSide := net.Pipe()
	c := newConn(tapSide, 1, nil, nil, make(chan struct{}, 1))
	dg := tcp.EncodeOptions{Digests: tcp.Digests{Header: true, Data: true}}
	var fromHost []byte
	fromHost = tcp.AppendPDU(fromHost, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
	fromHost = tcp.AppendPDU(fromHost, &tcp.CapsuleCmd{SQE: nvme.SQE{Opcode: 1, CID: 7}}, make([]byte, 100), dg)
	fromHost = tcp.AppendPDU(fromHost, &tcp.H2CData{CCCID: 7, TTAG: 3, DATAL: 8, Last: true}, make([]byte, 8), dg)
	toHost := tcp.AppendPDU(nil, &tcp.ICResp{MAXH2CDATA: 4096}, nil, tcp.EncodeOptions{})
	toHost = tcp.AppendPDU(toHost, &tcp.R2T{CCCID: 7, TTAG: 3, R2TL: 8}, nil, dg)
	toHost = tcp.AppendPDU(toHost, &tcp.CapsuleResp{CQE: nvme.CQE{CID: 7}}, nil, dg)

	go chunked(t, hostSide, fromHost, rng)
	got := make([]byte, len(fromHost))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, fromHost) {
		t.Fatalf("the target read %x (%v), the host sent %x", got, err, fromHost)
	}
	done := make(chan []byte)
	go func() {
		b := make([]byte, len(toHost))
		_, _ = io.ReadFull(hostSide, b)
		done <- b
	}()
	chunked(t, c, toHost, rng)
	if b := <-done; !bytes.Equal(b, toHost) {
		t.Fatalf("the host read %x, the target sent %x", b, toHost)
	}
	var types []tcp.PDUType
	for _, f := range c.Frames() {
		if f.Err != nil || f.PDU == nil {
			t.Errorf("%v", f)
		}
		types = append(types, f.CH.Type)
	}
	want := []tcp.PDUType{tcp.TypeICReq, tcp.TypeCapsuleCmd, tcp.TypeH2CData, tcp.TypeICResp, tcp.TypeR2T, tcp.TypeCapsuleResp}
	if len(types) != len(want) {
		t.Fatalf("frames %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Errorf("frame %d is %v, want %v", i, types[i], want[i])
		}
	}
	if c.QID() != -1 || len(c.Sent()) != 3 || len(c.Received()) != 3 {
		t.Errorf("QID %d, %d sent, %d received", c.QID(), len(c.Sent()), len(c.Received()))
	}
	hostSide.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read after the host closed")
	}
	if by, _ := c.CloseInfo(); by != "host" {
		t.Errorf("closed by %q, want host", by)
	}
}

// TestTapHooksAndSever: a hook's replacement reaches the host, marked
// injected; after a C2HTermReq nothing more of the target's does, nor the
// host's of the target.
func TestTapHooksAndSever(t *testing.T) {
	hostSide, tapSide := net.Pipe()
	toHost := func(c *Conn, f *Frame) [][]byte {
		if f.CH.Type == tcp.TypeR2T {
			return [][]byte{withField(f.Raw, offTTAG, 2, 9)}
		}
		return pass(f)
	}
	c := newConn(tapSide, 1, toHost, nil, make(chan struct{}, 1))
	r2t := tcp.AppendPDU(nil, &tcp.R2T{CCCID: 1, TTAG: 2, R2TL: 4}, nil, tcp.EncodeOptions{Digests: tcp.Digests{Header: true}})
	go func() { _, _ = c.Write(r2t) }()
	b := make([]byte, len(r2t))
	if _, err := io.ReadFull(hostSide, b); err != nil {
		t.Fatal(err)
	}
	p, _, _, _, err := tcp.Parse(b, &tcp.Rules{Digests: tcp.Digests{Header: true}})
	if err != nil || p.(*tcp.R2T).TTAG != 9 {
		t.Fatalf("the host got %v (%v): want TTAG 9 and a right header digest", p, err)
	}
	if f := c.Received()[0]; !f.Injected {
		t.Error("a changed PDU is not marked injected")
	}
	go func() { _ = c.Inject(termReq(tcp.FESPDUSequenceError, 0, nil)) }()
	tr := make([]byte, tcp.HLenTermReq)
	if _, err := io.ReadFull(hostSide, tr); err != nil || tr[0] != byte(tcp.TypeC2HTermReq) {
		t.Fatalf("the host got %x (%v), want the C2HTermReq", tr, err)
	}
	if n, err := c.Write(r2t); n != len(r2t) || err != nil {
		t.Errorf("a write after the C2HTermReq: %d %v (want it swallowed)", n, err)
	}
	_ = hostSide.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := hostSide.Read(make([]byte, 1)); n != 0 {
		t.Error("the target's PDU reached the host after the C2HTermReq")
	}
	if got := binary.LittleEndian.Uint32(r2t[24:]); got != tcp.Checksum(r2t[:24]) {
		t.Error("the hook changed the target's own bytes")
	}
}
