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

// discPeer is a fake discovery controller, just enough of one for the
// discovery controller and PORTID checks, whose personality the test
// chooses: the allowed ones (no explicit persistent connections, a
// unique discovery NQN, PORTIDs numbered per subsystem, space-padded
// address fields) must fail nothing, and the deviations must fail
// exactly the check that owns the rule.
type discPeer struct {
	nonPersistent   bool   // no EPCSD, KAS 0; Keep Alive and Set Features are Invalid Opcode
	uniqueNQN       string // Identify SUBNQN; "" is the well-known NQN
	refuseUnique    bool   // deviation: a Connect naming the unique NQN is refused
	portPerSubsys   bool   // two subsystems at one address, each with its own PORTID
	portSplit       bool   // deviation: one subsystem at one address under two PORTIDs
	kasZero         bool   // deviation: EPCSD on its own entry, yet KAS 0
	refuseKeepAlive bool   // deviation: claims persistence, refuses Keep Alive
	spacePadded     bool   // TRADDR and TRSVCID padded with spaces
}

const discPeerSubNQN = "nqn.2024-01.io.nvmftest:discpeer"

func (dp discPeer) serve(t *testing.T) string {
	// The log it serves names the port the host connected to.
	return testnet.Serve(t, func(nc net.Conn) { dp.conn(tcp.NewConn(nc, true, tcp.Config{}), nc.LocalAddr().String()) })
}

func (dp discPeer) log(addr string) []byte {
	host, port, _ := net.SplitHostPort(addr)
	if dp.spacePadded {
		host += strings.Repeat(" ", 8)
		port += strings.Repeat(" ", 4)
	}
	entry := func(subtype uint8, nqn string, portid uint16) nvme.DiscoveryLogEntry {
		return nvme.DiscoveryLogEntry{TRTYPE: nvme.TRTypeTCP, ADRFAM: nvme.AdrFamIPv4, SUBTYPE: subtype, PORTID: portid,
			CNTLID: 0xFFFF, ASQSZ: 32, TRSVCID: port, SUBNQN: nqn, TRADDR: host}
	}
	own := entry(nvme.SubtypeCurrentDiscovery, nvme.DiscoveryNQN, 1)
	if dp.uniqueNQN != "" {
		own.SUBNQN = dp.uniqueNQN
	}
	if !dp.nonPersistent {
		own.EFLAGS = nvme.EFlagsEPCSD
	}
	l := nvme.DiscoveryLog{Entries: []nvme.DiscoveryLogEntry{own, entry(nvme.SubtypeNVM, discPeerSubNQN, 1)}}
	switch {
	case dp.portPerSubsys:
		l.Entries = append(l.Entries, entry(nvme.SubtypeNVM, discPeerSubNQN+"-2", 7))
	case dp.portSplit:
		l.Entries = append(l.Entries, entry(nvme.SubtypeNVM, discPeerSubNQN, 7))
	}
	l.NUMREC = uint64(len(l.Entries))
	return l.Append(nil)
}

func (dp discPeer) conn(c *tcp.Conn, addr string) {
	if _, err := c.ControllerInitialize(tcp.ICPolicy{}); err != nil {
		return
	}
	var (
		connected bool
		cc        uint32
	)
	respond := func(cid uint16, st nvme.Status, dw0, dw1 uint32) { respondTo(c, cid, st, dw0, dw1) }
	send := func(cid uint16, b []byte) {
		_ = c.Send(&tcp.C2HData{CCCID: cid, DATAL: uint32(len(b)), Last: true}, b)
		respond(cid, nvme.StatusSuccess, 0, 0)
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
			// The subsystem under test is accepted too: the run's
			// liveness probe (after every failed check) connects to it.
			okNQN := cd.Decode(data) == nil && (cd.SubNQN == nvme.DiscoveryNQN || cd.SubNQN == discPeerSubNQN ||
				cd.SubNQN == dp.uniqueNQN && dp.uniqueNQN != "" && !dp.refuseUnique)
			if connected || args.QID != 0 || !okNQN {
				respond(sqe.CID, nvme.StatusConnectInvalidParameters, 0, 0)
				continue
			}
			connected = true
			respond(sqe.CID, nvme.StatusSuccess, 1, 0)
		case !connected:
			respond(sqe.CID, nvme.StatusCommandSequenceError, 0, 0)
		case fabrics && sqe.FCType() == nvme.FabricsPropertyGet:
			off, _, _ := nvme.DecodeProperty(&sqe)
			var v uint64
			switch off {
			case nvme.PropCAP:
				v = uint64(nvme.MakeCAP(31, 1, nvme.CSSNVM) | nvme.CAPCQR)
			case nvme.PropVS:
				v = uint64(nvme.MakeVersion(2, 1, 0))
			case nvme.PropCC:
				v = uint64(cc)
			case nvme.PropCSTS:
				v = uint64(cc & nvme.CCEnable)
				if cc&nvme.CCShnMask != 0 {
					v |= nvme.CSTSShstCmplt // a shutdown completes at once
				}
			}
			respond(sqe.CID, nvme.StatusSuccess, uint32(v), uint32(v>>32))
		case fabrics && sqe.FCType() == nvme.FabricsPropertySet:
			if off, _, v := nvme.DecodeProperty(&sqe); off == nvme.PropCC {
				cc = uint32(v)
			}
			respond(sqe.CID, nvme.StatusSuccess, 0, 0)
		case sqe.Opcode == nvme.AdminIdentify && uint8(sqe.CDW10) == nvme.CNSController:
			id := nvme.IdentifyController{CNTLID: 1, VER: nvme.MakeVersion(2, 1, 0), CNTRLTYPE: nvme.CntrlTypeDiscovery, SUBNQN: nvme.DiscoveryNQN, MAXCMD: 32}
			if dp.uniqueNQN != "" {
				id.SUBNQN = dp.uniqueNQN
			}
			if !dp.nonPersistent && !dp.kasZero {
				id.KAS = 10
			}
			send(sqe.CID, id.Append(nil))
		case sqe.Opcode == nvme.AdminIdentify:
			respond(sqe.CID, nvme.StatusInvalidField, 0, 0)
		case sqe.Opcode == nvme.AdminGetLogPage && nvme.LogPageLID(&sqe) == nvme.LogDiscovery:
			full := dp.log(addr)
			off, n := nvme.LogPageOffset(&sqe), uint64(nvme.LogPageLength(&sqe))
			if off > uint64(len(full)) {
				respond(sqe.CID, nvme.StatusInvalidField, 0, 0)
				continue
			}
			b := make([]byte, n)
			copy(b, full[off:])
			send(sqe.CID, b)
		case sqe.Opcode == nvme.AdminGetLogPage:
			respond(sqe.CID, nvme.StatusInvalidLogPage, 0, 0)
		case sqe.Opcode == nvme.AdminKeepAlive && !dp.nonPersistent && !dp.refuseKeepAlive,
			sqe.Opcode == nvme.AdminSetFeatures && !dp.nonPersistent && uint8(sqe.CDW10) != nvme.FeatNumQueues:
			respond(sqe.CID, nvme.StatusSuccess, 0, 0)
		case sqe.Opcode == nvme.AdminSetFeatures && !dp.nonPersistent:
			respond(sqe.CID, nvme.StatusInvalidField, 0, 0)
		default:
			respond(sqe.CID, nvme.StatusInvalidOpcode, 0, 0)
		}
	}
}

// discPeerChecks are the checks the fake discovery controller is meant for.
const discPeerChecks = "DISC-CONN-001 || DISC-CONN-003 || DISC-ID-001 || DISC-ID-003 || DISC-CMD-004 || DISC-CMD-005 || DISC-LOG-003 || DISC-LOG-004 || DISC-LOG-007"

var discPeerCases = map[string]struct {
	peer discPeer
	fail []string
}{
	"persistent":                {peer: discPeer{}},
	"discovery-non-persistent":  {peer: discPeer{nonPersistent: true}},
	"unique-discovery-nqn":      {peer: discPeer{uniqueNQN: "nqn.2024-01.io.nvmftest:unique-discovery"}},
	"portid-per-subsystem":      {peer: discPeer{portPerSubsys: true}},
	"space-padded-addresses":    {peer: discPeer{spacePadded: true}},
	"unique-nqn-refused":        {peer: discPeer{uniqueNQN: "nqn.2024-01.io.nvmftest:unique-discovery", refuseUnique: true}, fail: []string{"DISC-ID-001"}},
	"portid-split-in-subsystem": {peer: discPeer{portSplit: true}, fail: []string{"DISC-LOG-007"}},
	"epcsd-without-kas":         {peer: discPeer{kasZero: true}, fail: []string{"DISC-ID-003"}},
	"persistent-no-keep-alive":  {peer: discPeer{refuseKeepAlive: true}, fail: []string{"DISC-CMD-005"}},
}

// TestDiscoveryPersonalities runs the discovery controller checks against
// fake discovery controllers with the personalities the text allows,
// which must fail nothing, and with deviations, which must fail exactly
// the checks that own the broken rule. Each case runs in a process of its
// own (suites.Run runs once per process).
func TestDiscoveryPersonalities(t *testing.T) {
	const env = "NVMFTEST_DISCPEER_CASE"
	if name := os.Getenv(env); name != "" {
		addr := discPeerCases[name].peer.serve(t)
		printResults(t, Config{Address: addr, DiscoveryAddress: addr, SubNQN: discPeerSubNQN}, discPeerChecks)
		return
	}
	for name, tc := range discPeerCases {
		t.Run(name, func(t *testing.T) {
			got, out := childResults(t, "TestDiscoveryPersonalities", env, name)
			ran, failed := judged(got)
			if want := strings.Count(discPeerChecks, "||") + 1; ran != want || strings.Join(failed, " ") != strings.Join(tc.fail, " ") {
				t.Fatalf("ran %d of %d checks, failed %v, want %v\n%s", ran, want, failed, tc.fail, out)
			}
		})
	}
}
