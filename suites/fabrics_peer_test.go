package suites

import (
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// fabPeer is a fake NVMe/TCP controller, just enough of one for the
// Connect and property checks, whose personality the test chooses: the
// allowed ones (static controller model, Invalid Queue Identifier for a
// duplicate QID, reserved properties reading 0, a CSTS that accepts a
// Property Set) must fail nothing, and the deviations must fail exactly
// the check that owns the rule.
type fabPeer struct {
	static          bool // static controller model: FFFFh refused, FFFEh and specific CNTLIDs granted
	dupInvalidQID   bool // a duplicate QID gets Invalid Queue Identifier, not Command Sequence Error
	reservedZero    bool // a reserved property reads 0 instead of Invalid Field
	reservedJunk    bool // deviation: a reserved property reads non-zero
	cstsSetAccepted bool // a Property Set of CSTS succeeds (and changes nothing)
	cstsWritable    bool // deviation: a Property Set of CSTS changes its RO bits
	ioWhileDisabled bool // deviation: an I/O queue Connect succeeds before CC.EN=1
	anyCNTLID       bool // deviation: a dynamic-model subsystem grants a specific CNTLID
}

type fabCtrl struct {
	mu     sync.Mutex
	cc     uint32
	csts   uint32
	queues map[uint16]bool
}

func (fp fabPeer) serve(t *testing.T) string {
	var (
		mu    sync.Mutex
		next  uint16 = 1
		ctrls        = map[uint16]*fabCtrl{}
	)
	alloc := func(id uint16) *fabCtrl {
		mu.Lock()
		defer mu.Unlock()
		if id == 0 {
			id = next
			next++
		}
		c := &fabCtrl{queues: map[uint16]bool{0: true}}
		ctrls[id] = c
		return c
	}
	lookup := func(id uint16) *fabCtrl {
		mu.Lock()
		defer mu.Unlock()
		return ctrls[id]
	}
	return testnet.Serve(t, func(nc net.Conn) { fp.conn(tcp.NewConn(nc, true, tcp.Config{}), alloc, lookup) })
}

func (fp fabPeer) conn(c *tcp.Conn, alloc func(uint16) *fabCtrl, lookup func(uint16) *fabCtrl) {
	if _, err := c.ControllerInitialize(tcp.ICPolicy{}); err != nil {
		return
	}
	var (
		ctrl   *fabCtrl
		cntlid uint16
		qid    uint16
	)
	respond := func(cid uint16, st nvme.Status, dw0, dw1 uint32) { respondTo(c, cid, st, dw0, dw1) }
	cip := func(cid uint16, inData bool, off uint16) {
		respond(cid, nvme.StatusConnectInvalidParameters, nvme.ConnectInvalidParam(inData, off), 0)
	}
	for {
		sqe, data, ok := nextCapsule(c)
		if !ok {
			return
		}
		fabrics := sqe.Opcode == nvme.AdminFabrics
		switch {
		case fabrics && sqe.FCType() == nvme.FabricsConnect:
			args := nvme.DecodeConnect(&sqe)
			var cd nvme.ConnectData
			if ctrl != nil || cd.Decode(data) != nil {
				respond(sqe.CID, nvme.StatusCommandSequenceError, 0, 0)
				continue
			}
			if args.SQSIZE == 0 {
				cip(sqe.CID, false, nvme.ConnectOffSQSIZE)
				continue
			}
			if args.QID == 0 {
				var want uint16
				switch {
				case fp.static && cd.CNTLID == 0xFFFF, !fp.static && !fp.anyCNTLID && cd.CNTLID != 0xFFFF, cd.CNTLID >= 0xFFF0 && cd.CNTLID < 0xFFFE:
					cip(sqe.CID, true, nvme.ConnectDataOffCNTLID)
					continue
				case cd.CNTLID < 0xFFF0:
					want = cd.CNTLID
				}
				ctrl, qid = alloc(want), 0
				for id := uint16(1); ; id++ {
					if lookup(id) == ctrl {
						cntlid = id
						break
					}
				}
				respond(sqe.CID, nvme.StatusSuccess, uint32(cntlid), 0)
				continue
			}
			owner := lookup(cd.CNTLID)
			if owner == nil {
				cip(sqe.CID, true, nvme.ConnectDataOffCNTLID)
				continue
			}
			owner.mu.Lock()
			switch {
			case owner.queues[args.QID]:
				owner.mu.Unlock()
				st := nvme.StatusCommandSequenceError
				if fp.dupInvalidQID {
					st = nvme.StatusInvalidQID
				}
				respond(sqe.CID, st, 0, 0)
				continue
			case owner.cc&nvme.CCEnable == 0 && !fp.ioWhileDisabled:
				owner.mu.Unlock()
				respond(sqe.CID, nvme.StatusConnectInvalidParameters, 0, 0)
				continue
			}
			owner.queues[args.QID] = true
			owner.mu.Unlock()
			ctrl, cntlid, qid = owner, cd.CNTLID, args.QID
			respond(sqe.CID, nvme.StatusSuccess, uint32(cntlid), 0)
		case ctrl == nil:
			respond(sqe.CID, nvme.StatusCommandSequenceError, 0, 0)
		case fabrics && (sqe.FCType() == nvme.FabricsPropertyGet || sqe.FCType() == nvme.FabricsPropertySet) && qid != 0:
			respond(sqe.CID, nvme.StatusInvalidField, 0, 0)
		case fabrics && sqe.FCType() == nvme.FabricsPropertyGet:
			off, size8, _ := nvme.DecodeProperty(&sqe)
			ctrl.mu.Lock()
			var v uint64
			st := nvme.StatusSuccess
			switch {
			case off == nvme.PropCAP && size8:
				v = uint64(nvme.MakeCAP(127, 1, nvme.CSSNVM) | nvme.CAPCQR)
			case off == nvme.PropVS && !size8:
				v = uint64(nvme.MakeVersion(2, 1, 0))
			case off == nvme.PropCC && !size8:
				v = uint64(ctrl.cc)
			case off == nvme.PropCSTS && !size8:
				v = uint64(ctrl.csts)
			case off == 0x100 && !size8 && fp.reservedZero:
			case off == 0x100 && !size8 && fp.reservedJunk:
				v = 0xDEAD
			default:
				st = nvme.StatusInvalidField
			}
			ctrl.mu.Unlock()
			respond(sqe.CID, st, uint32(v), uint32(v>>32))
		case fabrics && sqe.FCType() == nvme.FabricsPropertySet:
			off, size8, v := nvme.DecodeProperty(&sqe)
			ctrl.mu.Lock()
			st := nvme.StatusSuccess
			switch {
			case off == nvme.PropCC && !size8:
				ctrl.cc = uint32(v)
				ctrl.csts = ctrl.cc & nvme.CCEnable // RDY follows EN at once
			case off == nvme.PropCSTS && !size8 && fp.cstsWritable:
				ctrl.csts = uint32(v)
			case off == nvme.PropCSTS && !size8 && fp.cstsSetAccepted:
			default:
				st = nvme.StatusInvalidField
			}
			ctrl.mu.Unlock()
			respond(sqe.CID, st, 0, 0)
		case sqe.Opcode == nvme.AdminIdentify && qid == 0:
			id := nvme.IdentifyController{CNTLID: cntlid, VER: nvme.MakeVersion(2, 1, 0), CNTRLTYPE: nvme.CntrlTypeIO, SUBNQN: "nqn.2024-01.io.nvmftest:fabpeer"}
			if fp.static {
				id.FCATT = fcattStatic
			}
			buf := id.Append(nil)
			_ = c.Send(&tcp.C2HData{CCCID: sqe.CID, DATAL: uint32(len(buf)), Last: true}, buf)
			respond(sqe.CID, nvme.StatusSuccess, 0, 0)
		default:
			respond(sqe.CID, nvme.StatusInvalidOpcode, 0, 0)
		}
	}
}

// fabPeerChecks are the checks the fake peer is meant for.
const fabPeerChecks = "FAB-CONN-001 || FAB-CONN-004 || FAB-CONN-005 || FAB-CONN-012 || FAB-IOQ-002 || FAB-IOQ-004 || FAB-PROP-015 || FAB-PROP-019"

// fabPeerCases: for each personality, the checks that must fail (every
// other check of fabPeerChecks must pass or skip).
var fabPeerCases = map[string]struct {
	peer   fabPeer
	fail   []string
	checks string // default fabPeerChecks
}{
	"dynamic": {peer: fabPeer{}},
	// The suite's shared raw bring-up (adminConnect, initiator.Connect)
	// asks for CNTLID FFFFh only, so a static-model subsystem is held
	// here to the checks that read the model themselves.
	"static-model":                 {fabPeer{static: true}, nil, "FAB-CONN-001 || FAB-CONN-004 || FAB-CONN-005"},
	"qid-dup-invalid-qid":          {peer: fabPeer{dupInvalidQID: true}},
	"reserved-property-reads-zero": {peer: fabPeer{reservedZero: true}},
	"csts-set-accepted":            {peer: fabPeer{cstsSetAccepted: true}},
	"reserved-property-junk":       {peer: fabPeer{reservedJunk: true}, fail: []string{"FAB-PROP-015"}},
	"csts-writable":                {peer: fabPeer{cstsWritable: true}, fail: []string{"FAB-PROP-019"}},
	"io-connect-while-disabled":    {peer: fabPeer{ioWhileDisabled: true}, fail: []string{"FAB-IOQ-002"}},
	"dynamic-grants-any-cntlid":    {peer: fabPeer{anyCNTLID: true}, fail: []string{"FAB-CONN-004", "FAB-CONN-005"}},
}

// TestFabricsPersonalities runs the Connect and property checks against
// fake controllers with the personalities the text allows, which must
// fail nothing, and with deviations, which must fail exactly the checks
// that own the broken rule. Each case runs in a process of its own
// (suites.Run runs once per process).
func TestFabricsPersonalities(t *testing.T) {
	const env = "NVMFTEST_FABPEER_CASE"
	if name := os.Getenv(env); name != "" {
		tc := fabPeerCases[name]
		checks := tc.checks
		if checks == "" {
			checks = fabPeerChecks
		}
		printResults(t, Config{Address: tc.peer.serve(t), SubNQN: "nqn.2024-01.io.nvmftest:fabpeer"}, checks)
		return
	}
	for name, tc := range fabPeerCases {
		t.Run(name, func(t *testing.T) {
			got, out := childResults(t, "TestFabricsPersonalities", env, name)
			ran, failed := judged(got)
			if ran == 0 || strings.Join(failed, " ") != strings.Join(tc.fail, " ") {
				t.Fatalf("failed %v, want %v\n%s", failed, tc.fail, out)
			}
		})
	}
}
