package suites

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// fatalPeer is just enough of a controller for the connection
// initialization and fatal-error checks (ICReq, admin Connect, Property
// Get/Set, Identify), working on raw bytes so that after a fatal error it
// can do exactly what a given implementation does: send a C2HTermReq or
// not, close at once or wait for the host, stop processing or not. It
// grants no digests. Its zero value follows NVMe/TCP 1.0 3.5.1 the way
// SPDK and FreeBSD do: C2HTermReq, then it processes nothing more and
// leaves closing to the host (up to 30 seconds).
type fatalPeer struct {
	maxH2C         uint32 // ICResp MAXH2CDATA (0: 128 KiB)
	pfvFES         uint16 // FES for an ICReq with PFV != 0 (0: 6, Unsupported Parameter)
	noTermReq      bool   // close instead of sending a C2HTermReq
	noTermReqOnIC  bool   // the same, but only for errors before the ICResp
	closeAfter     bool   // close right after the C2HTermReq
	keepProcessing bool   // go on answering commands after a C2HTermReq
	feiPlus        uint32 // added to every FEI: a wrong field offset
	noHeaderCopy   bool   // a C2HTermReq without the offending header
}

func (fp fatalPeer) serve(t *testing.T) string {
	return testnet.Serve(t, func(nc net.Conn) { fp.conn(nc) })
}

func (fp fatalPeer) conn(nc net.Conn) {
	rules := tcp.Rules{Controller: true}
	var buf []byte
	rd := make([]byte, 64<<10)
	icDone, stopped := false, false
	var cc uint32
	send := func(p tcp.PDU, data []byte) { _, _ = nc.Write(tcp.AppendPDU(nil, p, data, tcp.EncodeOptions{})) }
	respond := func(cid uint16, v uint64) {
		send(&tcp.CapsuleResp{CQE: nvme.CQE{CID: cid, DW0: uint32(v), DW1: uint32(v >> 32), SQHD: 1}}, nil)
	}
	// fatal reacts to a fatal error; false: the connection is to end now.
	fatal := func(fe *tcp.FatalError) bool {
		if fp.noTermReq || fp.noTermReqOnIC && !icDone {
			return false
		}
		data := fe.Header
		if fp.noHeaderCopy {
			data = nil
		}
		send(&tcp.TermReq{FES: fe.FES, FEI: fe.FEI + fp.feiPlus}, data[:min(len(data), tcp.MaxTermReqData)])
		stopped = !fp.keepProcessing
		// Otherwise wait for the host to terminate (3.5.1 gives it 30 s).
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		return !fp.closeAfter
	}
	for {
		n, err := nc.Read(rd)
		if err != nil {
			return
		}
		buf = append(buf, rd[:n]...)
		for len(buf) >= tcp.CommonHeaderSize && !stopped {
			p, ch, _, used, err := tcp.Parse(buf, &rules)
			if errors.Is(err, tcp.ErrTruncated) {
				break
			}
			if !icDone && err == nil && ch.Type != tcp.TypeICReq || icDone && ch.Type == tcp.TypeICReq {
				err = &tcp.FatalError{FES: tcp.FESPDUSequenceError, Header: buf[:min(len(buf), int(ch.HLEN))]}
			}
			var fe *tcp.FatalError
			if errors.As(err, &fe) {
				if !fatal(fe) {
					return
				}
				used = int(ch.PLEN) // skip the PDU, when PLEN can be believed
				if used < tcp.CommonHeaderSize || used > len(buf) {
					used = len(buf)
				}
				buf = buf[used:]
				continue
			}
			buf = buf[used:]
			switch v := p.(type) {
			case *tcp.ICReq:
				switch {
				case v.PFV != 0:
					fes := fp.pfvFES
					if fes == 0 {
						fes = tcp.FESUnsupportedParameter
					}
					if !fatal(&tcp.FatalError{FES: fes, FEI: 8, Header: append([]byte(nil), tcp.AppendPDU(nil, v, nil, tcp.EncodeOptions{})...)}) {
						return
					}
					continue
				case v.HPDA > 31:
					if !fatal(&tcp.FatalError{FES: tcp.FESInvalidHeaderField, FEI: 10}) {
						return
					}
					continue
				}
				m := fp.maxH2C
				if m == 0 {
					m = 128 << 10
				}
				send(&tcp.ICResp{MAXH2CDATA: m}, nil)
				icDone = true
			case *tcp.CapsuleCmd:
				sqe := v.SQE
				switch {
				case sqe.Opcode == nvme.AdminFabrics && sqe.FCType() == nvme.FabricsConnect:
					respond(sqe.CID, 1)
				case sqe.Opcode == nvme.AdminFabrics && sqe.FCType() == nvme.FabricsPropertyGet:
					off, _, _ := nvme.DecodeProperty(&sqe)
					var val uint64
					switch off {
					case nvme.PropCAP:
						val = 31 | 1<<24 | 1<<37
					case nvme.PropVS:
						val = uint64(nvme.MakeVersion(2, 0, 0))
					case nvme.PropCSTS:
						val = uint64(cc & nvme.CCEnable)
					}
					respond(sqe.CID, val)
				case sqe.Opcode == nvme.AdminFabrics && sqe.FCType() == nvme.FabricsPropertySet:
					if off, _, val := nvme.DecodeProperty(&sqe); off == nvme.PropCC {
						cc = uint32(val)
					}
					respond(sqe.CID, 0)
				case sqe.Opcode == nvme.AdminIdentify:
					send(&tcp.C2HData{CCCID: sqe.CID, DATAL: sqe.DPTR.Length, Last: true}, make([]byte, sqe.DPTR.Length))
					respond(sqe.CID, 0)
				default:
					respond(sqe.CID, 0)
				}
			}
		}
		if stopped {
			buf = buf[:0] // 3.5.1: "stop processing any PDUs that arrive"
		}
	}
}

// fatalPeerChecks are the checks run against each fatalPeer.
const fatalPeerChecks = "TCP-FATAL-006 || TCP-IC-004 || TCP-IC-009 || TCP-IC-020 || TCP-PDU-002 || TCP-PDU-012 || TCP-PDU-025 || TCP-FATAL-001 || TCP-FATAL-002 || TCP-FATAL-003"

// fatalPeerCases: each peer and the verdicts it must get; a check not
// named must pass.
var fatalPeerCases = map[string]struct {
	peer fatalPeer
	only string            // a narrower label filter than fatalPeerChecks
	want map[string]string // ID -> FAIL or SKIP, with a word of the message
}{
	// Waiting for the host to close is what 3.5.1 allows: every check
	// passes (they used to fail such a target: "without close").
	"waits-for-host": {peer: fatalPeer{}},
	"closes-at-once": {peer: fatalPeer{closeAfter: true}},
	// No C2HTermReq, ever: one failing check for it, TCP-FATAL-006; the
	// checks that judge an FES and FEI have none to judge and say so.
	"no-termreq": {peer: fatalPeer{noTermReq: true}, want: map[string]string{
		"TCP-FATAL-006": "FAIL close without C2HTermReq",
		"TCP-IC-009":    "SKIP no FES or FEI to judge", "TCP-PDU-002": "SKIP no FES or FEI to judge",
		"TCP-PDU-012": "SKIP no FES or FEI to judge", "TCP-PDU-025": "SKIP no FES or FEI to judge",
		"TCP-FATAL-001": "SKIP no C2HTermReq", "TCP-FATAL-002": "SKIP no C2HTermReq"}},
	// No C2HTermReq for one kind of error only: that is no rule of the
	// target's, so the check of that error fails itself.
	"no-termreq-on-icreq": {peer: fatalPeer{noTermReqOnIC: true}, want: map[string]string{
		"TCP-IC-009": "FAIL close without C2HTermReq"}},
	"keeps-processing-after-fatal": {peer: fatalPeer{keepProcessing: true}, want: map[string]string{
		"TCP-FATAL-003": "FAIL a response"}},
	"termreq-wrong-fei": {peer: fatalPeer{feiPlus: 2}, want: map[string]string{
		"TCP-IC-009": "FAIL FEI 0xa", "TCP-PDU-002": "FAIL FEI 0x2", "TCP-PDU-012": "FAIL FEI 0x6", "TCP-PDU-025": "FAIL FEI 0x5"}},
	"termreq-no-header-copy": {peer: fatalPeer{noHeaderCopy: true}, want: map[string]string{
		"TCP-FATAL-002": "FAIL error data"}},
	// SPDK's reading of PFV 1: an invalid field. Allowed.
	"pfv-invalid-field": {peer: fatalPeer{pfvFES: tcp.FESInvalidHeaderField}},
	"pfv-sequence-error": {peer: fatalPeer{pfvFES: tcp.FESPDUSequenceError}, want: map[string]string{
		"TCP-IC-009": "FAIL FES 0x2"}},
	// Below the recommended 4096: a recommendation missed, and the host
	// library still connects (TCP-FATAL-006 and TCP-FATAL-003 pass).
	"maxh2cdata-2048": {peer: fatalPeer{maxH2C: 2048}, want: map[string]string{
		"TCP-IC-020": "FAIL MAXH2CDATA 2048"}},
	// Not a dword multiple: an invalid ICResp, which the host library
	// refuses (3.1), so only the checks that read the ICResp itself run.
	"maxh2cdata-2050": {peer: fatalPeer{maxH2C: 2050}, only: "TCP-IC-004 || TCP-IC-020", want: map[string]string{
		"TCP-IC-004": "FAIL MAXH2CDATA 2050", "TCP-IC-020": "FAIL MAXH2CDATA 2050"}},
}

// TestFatalPeers runs the fatal-error and initialization checks against
// controllers that handle fatal errors in each way the spec allows (all
// must pass) and in ways it does not (exactly the checks about that must
// fail). Each case runs in a process of its own (suites.Run runs once per
// process).
func TestFatalPeers(t *testing.T) {
	const env = "NVMFTEST_FATALPEER_CASE"
	filterOf := func(name string) string {
		if only := fatalPeerCases[name].only; only != "" {
			return only
		}
		return fatalPeerChecks
	}
	if name := os.Getenv(env); name != "" {
		printResults(t, Config{Address: fatalPeerCases[name].peer.serve(t), SubNQN: "nqn.2024-01.io.nvmftest:fatal", Timeout: 4 * time.Second}, filterOf(name))
		return
	}
	for name, tc := range fatalPeerCases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, out := childResults(t, "TestFatalPeers", env, name)
			if want := strings.Count(filterOf(name), "TCP-"); len(got) != want {
				t.Fatalf("%d results, want %d:\n%s", len(got), want, out)
			}
			for id, r := range got {
				want, named := tc.want[id]
				switch {
				case !named && r.verdict != "PASS":
					t.Errorf("%s: %s %s, want PASS", id, r.verdict, r.message)
				case named:
					verdict, word, _ := strings.Cut(want, " ")
					if r.verdict != verdict || !strings.Contains(r.message, word) {
						t.Errorf("%s: %s %s, want %s", id, r.verdict, r.message, want)
					}
				}
			}
		})
	}
}
