package tcp

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

func pipePair(t *testing.T) (host, ctrl *Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return NewConn(a, false, Config{}), NewConn(b, true, Config{})
}

func handshake(t *testing.T, host, ctrl *Conn, dgst uint8, cpda uint8) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := ctrl.ControllerInitialize(ICPolicy{CPDA: cpda, HeaderDigest: true, DataDigest: true, MaxHPDA: 31})
		done <- err
	}()
	if _, err := host.HostInitialize(ICReq{DGST: dgst, HPDA: 1}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestConnCapsuleAndDataRoundTrip(t *testing.T) {
	for _, dg := range []uint8{0, DgstHeader, DgstData, DgstHeader | DgstData} {
		host, ctrl := pipePair(t)
		handshake(t, host, ctrl, dg, 3)
		payload := bytes.Repeat([]byte{0xA5, 0x5A, 1, 2}, 1024)
		cmd := CapsuleCmd{SQE: nvme.SQE{Opcode: nvme.CmdWrite, CID: 7, NSID: 1}}
		go func() {
			_ = host.Send(&cmd, payload)
			_ = host.Send(&H2CData{CCCID: 7, TTAG: 3, DATAO: 4096, DATAL: 4096, Last: true}, payload)
		}()
		p, err := ctrl.Next()
		if err != nil {
			t.Fatalf("dgst %d: %v", dg, err)
		}
		got := p.(*CapsuleCmd)
		if got.SQE != cmd.SQE {
			t.Fatalf("SQE %+v, want %+v", got.SQE, cmd.SQE)
		}
		if h := ctrl.Header(); h.PDO%16 != 0 {
			t.Fatalf("pdo %d not aligned to CPDA 3", h.PDO)
		}
		buf := make([]byte, ctrl.DataLen())
		if err := ctrl.ReadData(buf); err != nil || !bytes.Equal(buf, payload) {
			t.Fatalf("data: %v", err)
		}
		p, err = ctrl.Next()
		if err != nil {
			t.Fatal(err)
		}
		if d := p.(*H2CData); d.DATAO != 4096 || !d.Last || d.TTAG != 3 {
			t.Fatalf("h2c %+v", d)
		}
		// Not reading the data: Next must skip it.
		go func() { _ = ctrl.Send(&CapsuleResp{CQE: nvme.CQE{CID: 7, Status: nvme.StatusInvalidField}}, nil) }()
		p, err = host.Next()
		if err != nil {
			t.Fatal(err)
		}
		if r := p.(*CapsuleResp); r.CQE.CID != 7 || r.CQE.Status != nvme.StatusInvalidField {
			t.Fatalf("resp %+v", r)
		}
	}
}

func TestConnRejectsSecondICReq(t *testing.T) {
	host, ctrl := pipePair(t)
	handshake(t, host, ctrl, 0, 0)
	raw := AppendPDU(nil, &ICReq{}, nil, EncodeOptions{})
	go func() { _ = host.SendRaw(raw) }()
	_, err := ctrl.Next()
	var fe *FatalError
	if !errors.As(err, &fe) || fe.FES != FESPDUSequenceError {
		t.Fatalf("got %v, want PDU sequence error", err)
	}
}

func TestConnHeaderDigestError(t *testing.T) {
	host, ctrl := pipePair(t)
	handshake(t, host, ctrl, DgstHeader, 0)
	raw := AppendPDU(nil, &CapsuleCmd{}, nil, EncodeOptions{Digests: Digests{Header: true}})
	raw[HLenCapsuleCmd] ^= 0xFF
	go func() { _ = host.SendRaw(raw) }()
	_, err := ctrl.Next()
	var fe *FatalError
	if !errors.As(err, &fe) || fe.FES != FESHeaderDigestError {
		t.Fatalf("got %v, want header digest error", err)
	}
	// The TermReq the controller sends decodes on the host.
	go func() { _ = ctrl.Terminate(fe) }()
	p, err := host.Next()
	if err != nil {
		t.Fatal(err)
	}
	tr := p.(*TermReq)
	if tr.FES != FESHeaderDigestError || host.DataLen() != HLenCapsuleCmd+DigestSize {
		t.Fatalf("termreq %+v datalen %d", tr, host.DataLen())
	}
}

func TestConnDataDigestErrorIsNotFatal(t *testing.T) {
	host, ctrl := pipePair(t)
	handshake(t, host, ctrl, DgstData, 0)
	raw := AppendPDU(nil, &CapsuleCmd{}, []byte("0123456789abcdef"), EncodeOptions{Digests: Digests{Data: true}})
	raw[len(raw)-1] ^= 1
	go func() {
		_ = host.SendRaw(raw)
		_ = host.Send(&CapsuleCmd{SQE: nvme.SQE{CID: 9}}, nil)
	}()
	if _, err := ctrl.Next(); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.ReadData(make([]byte, 16)); !errors.Is(err, ErrDataDigest) {
		t.Fatalf("got %v, want ErrDataDigest", err)
	}
	p, err := ctrl.Next()
	if err != nil || p.(*CapsuleCmd).SQE.CID != 9 {
		t.Fatalf("after digest error: %v", err)
	}
}

func TestConnCorkCoalesces(t *testing.T) {
	host, ctrl := pipePair(t)
	handshake(t, host, ctrl, 0, 0)
	ctrl.Cork()
	for i := 0; i < 3; i++ {
		if err := ctrl.Send(&CapsuleResp{CQE: nvme.CQE{CID: uint16(i)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// net.Pipe is synchronous: had Send written, it would block here.
	go func() { _ = ctrl.Uncork() }()
	for i := 0; i < 3; i++ {
		p, err := host.Next()
		if err != nil || p.(*CapsuleResp).CQE.CID != uint16(i) {
			t.Fatalf("resp %d: %v", i, err)
		}
	}
}

// TestConnIdleAfterTimeout: a read deadline that expires before any byte
// of the next PDU leaves the connection usable (Idle, and the next Next
// reads the PDU whole); one that expires part way through a PDU does not
// (not Idle).
func TestConnIdleAfterTimeout(t *testing.T) {
	host, ctrl := pipePair(t)
	handshake(t, host, ctrl, DgstHeader, 0)
	expire := func() error {
		_ = ctrl.NetConn().SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := ctrl.Next()
		_ = ctrl.NetConn().SetReadDeadline(time.Time{})
		return err
	}
	var ne net.Error
	if err := expire(); !errors.As(err, &ne) || !ne.Timeout() || !ctrl.Idle() {
		t.Fatalf("silence: err %v, Idle %v; want a timeout and Idle", err, ctrl.Idle())
	}
	cmd := CapsuleCmd{SQE: nvme.SQE{Opcode: nvme.CmdRead, CID: 9, NSID: 1}}
	b := AppendPDU(nil, &cmd, nil, EncodeOptions{Digests: Digests{Header: true}})
	go func() { _, _ = host.NetConn().Write(b) }()
	p, err := ctrl.Next()
	if err != nil {
		t.Fatalf("Next after an idle timeout: %v", err)
	}
	if got := p.(*CapsuleCmd).SQE; got != cmd.SQE {
		t.Fatalf("SQE %+v, want %+v", got, cmd.SQE)
	}
	go func() { _, _ = host.NetConn().Write(b[:30]) }()
	if err := expire(); err == nil || ctrl.Idle() {
		t.Fatalf("half a PDU: err %v, Idle %v; want an error and not Idle", err, ctrl.Idle())
	}
}

// PDUBuffered says whether the next PDU, data included, is in the buffer:
// after a read that brought two capsules and half of a third, it is true
// before the second and false before the third.
func TestConnPDUBuffered(t *testing.T) {
	host, ctrl := pipePair(t)
	handshake(t, host, ctrl, 0, 0)
	var raw []byte
	for cid := range uint16(3) {
		raw = AppendPDU(raw, &CapsuleCmd{SQE: nvme.SQE{CID: cid}}, []byte("in-capsule data!"), EncodeOptions{})
	}
	whole := len(raw)
	go func() { _ = host.SendRaw(raw[:whole-10]) }()
	for cid := range uint16(3) {
		p, err := ctrl.Next()
		if err != nil || p.(*CapsuleCmd).SQE.CID != cid {
			t.Fatalf("capsule %d: %v", cid, err)
		}
		if err := ctrl.ReadData(make([]byte, 16)); err != nil {
			t.Fatal(err)
		}
		if want := cid == 0; ctrl.PDUBuffered() != want {
			t.Errorf("after capsule %d: PDUBuffered %v, want %v", cid, !want, want)
		}
		if cid == 1 {
			go func() { _ = host.SendRaw(raw[whole-10:]) }()
		}
	}
	if ctrl.PDUBuffered() || ctrl.Buffered() != 0 {
		t.Errorf("empty buffer: PDUBuffered %v, Buffered %d", ctrl.PDUBuffered(), ctrl.Buffered())
	}
}
