package initiator

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// A static-model subsystem refuses an admin Connect for CNTLID FFFFh with
// Connect Invalid Parameters at CNTLID and serves FFFEh, "any available
// static controller" (NVMe Base 2.2 6.3). These tests play such a
// controller.

// staticAnswer is the static model's answer to an admin Connect data.
func staticAnswer(cid uint16, data []byte) tcp.CapsuleResp {
	var cd nvme.ConnectData
	if err := cd.Decode(data); err != nil || cd.CNTLID == nvme.CNTLIDDynamic {
		return tcp.CapsuleResp{CQE: nvme.CQE{CID: cid, Status: nvme.StatusConnectInvalidParameters,
			DW0: nvme.ConnectInvalidParam(true, nvme.ConnectDataOffCNTLID)}}
	}
	return tcp.CapsuleResp{CQE: nvme.CQE{CID: cid, DW0: 5}}
}

func TestConnectQueueMarksARefusedCNTLID(t *testing.T) {
	q, _ := newPair(t, pairOpts{inline: nvme.ConnectDataSize, onCmd: func(f *fakeCtrl, sqe nvme.SQE, data []byte) {
		resp := staticAnswer(sqe.CID, data)
		f.send(&resp, nil)
	}})
	o := &Options{HostNQN: "nqn.2014-08.org.example:host"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := connectQueue(ctx, q, o, "nqn.2014-08.org.example:static", nvme.CNTLIDDynamic, 31, 0, 0)
	if !refusedCNTLID(err) {
		t.Fatalf("FFFFh refused at CNTLID: %v, want an error refusedCNTLID recognizes", err)
	}
	id, err := connectQueue(ctx, q, o, "nqn.2014-08.org.example:static", nvme.CNTLIDStatic, 31, 0, 0)
	if err != nil || id != 5 {
		t.Fatalf("FFFEh: controller %d, %v; want 5", id, err)
	}
}

func TestRawConnectAdminFallsBackToStatic(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	r := NewRaw(a, tcp.Config{}, Options{Timeout: 5 * time.Second})
	cc := tcp.NewConn(b, true, tcp.Config{})
	asked := make(chan uint16, 2)
	go func() {
		if _, err := cc.ControllerInitialize(tcp.ICPolicy{}); err != nil {
			return
		}
		for {
			p, err := cc.Next()
			if err != nil {
				return
			}
			c, ok := p.(*tcp.CapsuleCmd)
			if !ok {
				return
			}
			data := make([]byte, cc.DataLen())
			if err := cc.ReadData(data); err != nil {
				return
			}
			var cd nvme.ConnectData
			_ = cd.Decode(data)
			asked <- cd.CNTLID
			resp := staticAnswer(c.SQE.CID, data)
			_ = cc.Send(&resp, nil)
		}
	}()
	if _, err := r.Initialize(tcp.ICReq{}); err != nil {
		t.Fatal(err)
	}
	cqe, err := r.ConnectAdmin("nqn.2014-08.org.example:static", "nqn.2014-08.org.example:host")
	if err != nil || cqe.DW0 != 5 {
		t.Fatalf("ConnectAdmin: DW0 %d, %v; want controller 5", cqe.DW0, err)
	}
	if first, second := <-asked, <-asked; first != nvme.CNTLIDDynamic || second != nvme.CNTLIDStatic {
		t.Errorf("asked for CNTLID %#x then %#x, want FFFFh then FFFEh", first, second)
	}
}
