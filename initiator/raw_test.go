package initiator_test

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/target"
)

// countingRecorder records nothing; it counts the connections it was
// given.
type countingRecorder struct{ n atomic.Int32 }

func (r *countingRecorder) Record(nc net.Conn, _ bool, _ string) net.Conn {
	r.n.Add(1)
	return nc
}

// NewRaw drives a connection the caller dialled itself (here with a
// dialer hook, as a caller that sets socket options before connecting
// does) exactly as DialRaw's: ICReq, Connect, commands with data, the
// capture and the data bound.
func TestNewRaw(t *testing.T) {
	addr := startTarget(t)
	var hooked atomic.Bool
	d := net.Dialer{Control: func(string, string, syscall.RawConn) error {
		hooked.Store(true)
		return nil
	}}
	nc, err := d.DialContext(ctx(t), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !hooked.Load() {
		t.Fatal("the dialer's Control hook did not run")
	}
	rec := &countingRecorder{}
	r := initiator.NewRaw(nc, tcp.Config{ReadBufferSize: 4096}, initiator.Options{Capture: rec})
	defer r.Close()
	if got := rec.n.Load(); got != 1 {
		t.Fatalf("Options.Capture recorded %d connections, want 1", got)
	}
	if got := r.Conn.Rules().MaxData; got != initiator.RawMaxData {
		t.Fatalf("data bound %d, want RawMaxData (%d)", got, initiator.RawMaxData)
	}
	if _, err := r.Initialize(tcp.ICReq{DGST: tcp.DgstHeader | tcp.DgstData}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ConnectAdmin(target.DefaultSubsystemNQN, ""); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, _, err := r.Command(nvme.PropertySetCmd(0, nvme.PropCC, false, 0x460001), nil); err != nil {
		t.Fatalf("enable: %v", err)
	}
	// Identify data is as large as the read buffer: it must still arrive
	// whole.
	_, data, err := r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
	if err != nil || len(data) != nvme.IdentifyDataSize {
		t.Fatalf("identify: %v (%d bytes)", err, len(data))
	}
}

// A completion for another command than the one Command waits for is a
// StrayCompletionError, so a caller can tell it from a refusal.
func TestRawStrayCompletion(t *testing.T) {
	hc, cc := net.Pipe()
	defer hc.Close()
	defer cc.Close()
	go func() {
		ctrl := tcp.NewConn(cc, true, tcp.Config{})
		if _, err := ctrl.ControllerInitialize(tcp.ICPolicy{MaxH2CData: 8192}); err != nil {
			return
		}
		p, err := ctrl.Next()
		if err != nil {
			return
		}
		cid := p.(*tcp.CapsuleCmd).SQE.CID
		_ = ctrl.Send(&tcp.CapsuleResp{CQE: nvme.CQE{CID: cid + 1}}, nil)
	}()
	r := initiator.NewRaw(hc, tcp.Config{}, initiator.Options{})
	if _, err := r.Initialize(tcp.ICReq{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Command(nvme.KeepAliveCmd(), nil)
	var stray *initiator.StrayCompletionError
	if !errors.As(err, &stray) || stray.CID != stray.Want+1 {
		t.Fatalf("err %v, want a StrayCompletionError for the next CID", err)
	}
}
