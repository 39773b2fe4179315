package initiator

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// NVMe/TCP 1.0 3.5.1: "In response to a C2HTermReq PDU, the host shall
// terminate the connection"; the controller may wait 30 seconds for it.
// These tests play a controller that sends a C2HTermReq and then keeps
// the connection open, and require the host to close it promptly,
// without an H2CTermReq of its own (the error is the controller's).

// hostClosed waits until the controller's side reads the end of the
// connection.
func hostClosed(t *testing.T, cc *tcp.Conn) {
	t.Helper()
	_ = cc.NetConn().SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		p, err := cc.Next()
		if err == nil {
			if _, isTerm := p.(*tcp.TermReq); isTerm {
				t.Fatal("the host answered the C2HTermReq with an H2CTermReq")
			}
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the host did not close the connection within 2 s of the C2HTermReq")
		}
		return
	}
}

func TestQueueClosesOnC2HTermReq(t *testing.T) {
	term := make(chan struct{})
	q, f := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		f.send(&tcp.TermReq{FES: tcp.FESInvalidHeaderField, FEI: 2}, make([]byte, 24))
		close(term)
	}})
	buf := make([]byte, 512)
	err := q.Read(context.Background(), 1, 0, 1, buf)
	var pt *tcp.PeerTerminated
	if !errors.As(err, &pt) || pt.FES != tcp.FESInvalidHeaderField || pt.FEI != 2 {
		t.Fatalf("read: %v, want the controller's C2HTermReq (FES 1 FEI 2)", err)
	}
	<-term
	select {
	case <-f.done: // the fake controller's reader saw the connection end
	case <-time.After(2 * time.Second):
		t.Fatal("the host did not close the connection within 2 s of the C2HTermReq")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.terms) != 0 {
		t.Fatalf("the host answered the C2HTermReq with H2CTermReq %+v", f.terms)
	}
}

func TestRawCommandClosesOnC2HTermReq(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	r := NewRaw(a, tcp.Config{}, Options{Timeout: 5 * time.Second})
	cc := tcp.NewConn(b, true, tcp.Config{})
	go func() {
		if _, err := cc.ControllerInitialize(tcp.ICPolicy{}); err != nil {
			return
		}
		if _, err := cc.Next(); err != nil {
			return
		}
		_ = cc.Send(&tcp.TermReq{FES: tcp.FESPDUSequenceError}, make([]byte, 72))
	}()
	if _, err := r.Initialize(tcp.ICReq{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Command(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil)
	var pt *tcp.PeerTerminated
	if !errors.As(err, &pt) || pt.FES != tcp.FESPDUSequenceError {
		t.Fatalf("command: %v, want the controller's C2HTermReq", err)
	}
	hostClosed(t, cc)
}

func TestRawInitializeClosesOnC2HTermReq(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	r := NewRaw(a, tcp.Config{}, Options{Timeout: 5 * time.Second})
	cc := tcp.NewConn(b, true, tcp.Config{})
	go func() {
		if _, err := cc.Next(); err != nil {
			return
		}
		_ = cc.Send(&tcp.TermReq{FES: tcp.FESUnsupportedParameter, FEI: 8}, make([]byte, 128))
	}()
	_, err := r.Initialize(tcp.ICReq{PFV: 1})
	var pt *tcp.PeerTerminated
	if !errors.As(err, &pt) || pt.FES != tcp.FESUnsupportedParameter || pt.FEI != 8 {
		t.Fatalf("initialize: %v, want the controller's C2HTermReq", err)
	}
	hostClosed(t, cc)
}
