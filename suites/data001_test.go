package suites

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// successTarget is just enough of a controller for TCP-DATA-001 (enable,
// Identify, Property Get) that answers Identify with a C2HData carrying
// SUCCESS, on the admin queue, which keeps SQ flow control.
type successTarget struct {
	dissqfc  bool // a Connect may disable SQ flow control
	strayRsp bool // a Response Capsule follows the SUCCESS anyway
	success  bool // false: LAST_PDU then a Response Capsule, as usual
}

func (st successTarget) serve(t *testing.T) string {
	return testnet.Serve(t, func(nc net.Conn) { st.conn(tcp.NewConn(nc, true, tcp.Config{})) })
}

func (st successTarget) conn(c *tcp.Conn) {
	if _, err := c.ControllerInitialize(tcp.ICPolicy{HeaderDigest: true, DataDigest: true, MaxHPDA: 31}); err != nil {
		return
	}
	var cc uint32
	flowOff := false
	respond := func(cid uint16, dw0, dw1 uint32) {
		cqe := nvme.CQE{CID: cid, DW0: dw0, DW1: dw1, SQHD: 1}
		if flowOff {
			cqe.SQHD = 0xFFFF
		}
		_ = c.Send(&tcp.CapsuleResp{CQE: cqe}, nil)
	}
	for {
		sqe, _, ok := nextCapsule(c)
		if !ok {
			return
		}
		switch {
		case sqe.Opcode == nvme.AdminFabrics && sqe.FCType() == nvme.FabricsConnect:
			flowOff = st.dissqfc && nvme.DecodeConnect(&sqe).CATTR&nvme.CATTRDisableSQFlow != 0
			respond(sqe.CID, 1, 0)
		case sqe.Opcode == nvme.AdminFabrics && sqe.FCType() == nvme.FabricsPropertyGet:
			off, _, _ := nvme.DecodeProperty(&sqe)
			var v uint64
			switch off {
			case nvme.PropCAP:
				v = 31 | 1<<24 | 1<<37
			case nvme.PropVS:
				v = uint64(nvme.MakeVersion(2, 0, 0))
			case nvme.PropCSTS:
				v = uint64(cc & nvme.CCEnable) // RDY follows EN
			}
			respond(sqe.CID, uint32(v), uint32(v>>32))
		case sqe.Opcode == nvme.AdminFabrics && sqe.FCType() == nvme.FabricsPropertySet:
			if off, _, v := nvme.DecodeProperty(&sqe); off == nvme.PropCC {
				cc = uint32(v)
			}
			respond(sqe.CID, 0, 0)
		case sqe.Opcode == nvme.AdminIdentify:
			_ = c.Send(&tcp.C2HData{CCCID: sqe.CID, DATAL: sqe.DPTR.Length, Last: true, Success: st.success}, make([]byte, sqe.DPTR.Length))
			if !st.success || st.strayRsp {
				respond(sqe.CID, 0, 0)
			}
		default:
			respond(sqe.CID, 0, 0)
		}
	}
}

var data001Cases = map[string]struct {
	target successTarget
	want   string // in the check's line: PASS or the failure's observation
}{
	"response":           {successTarget{}, "PASS"},
	"success-sqfc":       {successTarget{success: true, dissqfc: true}, "PASS"},
	"success-no-sqfc":    {successTarget{success: true}, "keeps SQ flow control when asked to disable it"},
	"success-and-stray":  {successTarget{success: true, dissqfc: true, strayRsp: true}, "a Response Capsule after C2HData SUCCESS"},
	"response-with-sqfc": {successTarget{dissqfc: true}, "PASS"},
}

// TestTCPDATA001SuccessFlag runs TCP-DATA-001 against controllers that
// answer a read on the admin queue (SQ flow control on) with C2HData
// SUCCESS: allowed for a controller that can disable SQ flow control
// (NVMe/TCP 1.0 3.3.2.1; NVMe Base 2.1 3.3.2.7 lets it omit SQHD on a
// flow-controlled queue), forbidden for one that cannot, and never
// followed by a Response Capsule. It used to pass all of them. Each case
// runs in a process of its own (suites.Run runs once per process).
func TestTCPDATA001SuccessFlag(t *testing.T) {
	const env = "NVMFTEST_DATA001_CASE"
	if name := os.Getenv(env); name != "" {
		printResults(t, Config{Address: data001Cases[name].target.serve(t), SubNQN: "nqn.2024-01.io.nvmftest:success"}, "TCP-DATA-001")
		return
	}
	for name, tc := range data001Cases {
		t.Run(name, func(t *testing.T) {
			got, out := childResults(t, "TestTCPDATA001SuccessFlag", env, name)
			r, ok := got["TCP-DATA-001"]
			switch {
			case !ok:
				t.Fatalf("no result:\n%s", out)
			case tc.want == "PASS" && r.verdict != "PASS",
				tc.want != "PASS" && (r.verdict != "FAIL" || !strings.Contains(r.message, tc.want)):
				t.Fatalf("check %s %s, want %q\n%s", r.verdict, r.message, tc.want, out)
			}
		})
	}
}
