package suites

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// The transport area: NVMe/TCP connection initialization (ICReq/ICResp),
// PDU validation, data transfer (R2T/H2CData/C2HData), digests and the
// controller's handling of fatal transport errors. Every fatal-error check
// also checks that the target still accepts a new connection afterwards.
//
// Sections are those of the NVMe/TCP Transport Specification 1.0 (the
// headings of 3.5 and 3.3.x carry no numbers in some copies: 3.5.1 is
// "Transport Error Handling", 3.5.2 "Digest Error handling"; 3.6.1 is
// TLS, the PDU formats are 3.6.2.x).
const (
	secSetup      = "NVMe/TCP 1.0 3.1"
	secDataModel  = "NVMe/TCP 1.0 3.3"
	secDigests    = "NVMe/TCP 1.0 3.3.1.1"
	secC2HData    = "NVMe/TCP 1.0 3.3.2.1"
	secH2CData    = "NVMe/TCP 1.0 3.3.2.2"
	secFatal      = "NVMe/TCP 1.0 3.5.1"
	secDigestErr  = "NVMe/TCP 1.0 3.5.2"
	secICReq      = "NVMe/TCP 1.0 3.6.2.2"
	secICResp     = "NVMe/TCP 1.0 3.6.2.3"
	secC2HTermReq = "NVMe/TCP 1.0 3.6.2.5"
	secCapsuleCmd = "NVMe/TCP 1.0 3.6.2.6"
	secH2CDataPDU = "NVMe/TCP 1.0 3.6.2.8"
)

// Canonical fatal observations.
func termReq(fes uint16, fei uint32) string {
	return fmt.Sprintf("C2HTermReq FES %#x FEI %#x", fes, fei)
}
func termReqFES(fes uint16) string { return fmt.Sprintf("C2HTermReq FES %#x", fes) }

// FEI byte offsets named by the checks.
const (
	feiType   = 0
	feiFlags  = 1
	feiHLEN   = 2
	feiPDO    = 3
	feiPLEN   = 4
	feiPFV    = 8
	feiHPDA   = 10
	feiMAXR2T = 12
	feiTTAG   = 10
	feiDATAL  = 16
)

// pdoOrPLEN are the answers to a header whose PDO and PLEN disagree with
// each other or with HLEN: which of the two fields "has an error" is a
// matter of reading, and FEI is then "the lowest offset that has an
// error" (3.6.2.5), so either is right.
var pdoOrPLEN = []termAnswer{fesFEI(tcp.FESInvalidHeaderField, feiPDO), fesFEI(tcp.FESInvalidHeaderField, feiPLEN)}

// icResp sends req on a new connection and returns the ICResp, even one
// the host library finds invalid (the checks judge its fields).
func (s *Spec) icResp(ctx context.Context, req tcp.ICReq) *tcp.ICResp {
	GinkgoHelper()
	r := s.Dial(ctx)
	resp, err := r.Initialize(req)
	if resp == nil {
		s.Conform(icOutcome(r, err), "ICResp")
		Skip(s.Req.ID + ": no ICResp to examine (a documented finding)")
	}
	return resp
}

// digestsWork asks for digests d and checks that the ICResp grants them
// (or refuses only in DGST) and that what was granted then works.
func digestsWork(ctx context.Context, s *Spec, d uint8) {
	GinkgoHelper()
	r := s.Dial(ctx)
	_, err := r.Initialize(tcp.ICReq{DGST: d})
	s.Conform(s.icAnswer(r, err), "ICResp")
	got := r.ICResp.DGST
	if got&^d != 0 {
		s.Conform(fmt.Sprintf("DGST %#x", got), fmt.Sprintf("DGST %#x", d))
	}
	// Whatever was granted must work: Connect, enable and an Identify
	// moving 4 KiB of digested data.
	_, err = s.adminConnect(r)
	s.Must(err, "admin Connect")
	s.enableRaw(ctx, r) // and wait for CSTS.RDY: a controller may take until CAP.TO
	_, data, err := r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
	s.Conform(Outcome(err), "success")
	if len(data) != 4096 {
		Fail(fmt.Sprintf("Identify returned %d bytes", len(data)))
	}
	if got != d {
		s.Lacks(fmt.Sprintf("the %s digest (ICResp DGST %#x for a request of %#x)", digestName(d&^got), got, d))
	}
}

// requireDigests skips the check unless the target grants digests d, asked
// for on a connection of their own: the I/O queue a check then connects
// with them must not fail for a digest the ICResp refused (TCP-IC-011..013
// judge what a target does with a digest it refused).
func (s *Spec) requireDigests(ctx context.Context, d uint8) {
	GinkgoHelper()
	r := s.Raw(ctx, tcp.ICReq{DGST: d})
	granted := r.ICResp.DGST&d == d
	_ = r.Close()
	if !granted {
		s.Lacks(digestName(d) + " digests")
	}
}

// digestName names a DGST value.
func digestName(d uint8) string {
	switch d {
	case 0:
		return "none"
	case tcp.DgstHeader:
		return "header"
	case tcp.DgstData:
		return "data"
	}
	return "header and data"
}

var _ = Describe("Transport", Label("transport"), func() {
	Describe("connection initialization", Label("transport-ic"), func() {
		Check(Requirement{ID: "TCP-IC-001", Section: secICResp, Keyword: Shall, Binds: Controller,
			Title: "ICResp carries PFV 0",
			Text:  "PDU Format Version (PFV) ... shall be cleared to 0h"}, func(ctx context.Context, s *Spec) {
			resp := s.icResp(ctx, plainIC)
			s.Conform(fmt.Sprintf("PFV %d", resp.PFV), "PFV 0")
		})
		Check(Requirement{ID: "TCP-IC-002", Section: secICResp, Keyword: Indicative, Binds: Controller,
			Title: "ICResp has HLEN 128, PLEN 128, PDO 0 and no flags",
			Text:  "HLEN: Fixed length of 128 bytes (80h) ... PLEN: Fixed length of 128 bytes (80h); FLAGS, PDO: Reserved"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			s.Must(r.SendPDU(&tcp.ICReq{}, nil, tcp.EncodeOptions{}), "send ICReq")
			// Read the raw header so a wrong length is seen, not parsed away.
			nc := r.Conn.NetConn()
			_ = nc.SetReadDeadline(time.Now().Add(s.fatalWait()))
			h := make([]byte, tcp.CommonHeaderSize)
			_, err := readFull(nc, h)
			s.Must(err, "read ICResp common header")
			var ch tcp.CommonHeader
			_ = ch.Decode(h)
			s.Conform(fmt.Sprintf("%v flags %#x hlen %d pdo %d plen %d", ch.Type, ch.Flags, ch.HLEN, ch.PDO, ch.PLEN),
				"ICResp flags 0x0 hlen 128 pdo 0 plen 128")
		})
		Check(Requirement{ID: "TCP-IC-003", Section: secICResp, Keyword: Indicative, Binds: Controller,
			Title: "ICResp CPDA is at most 31",
			Text:  "Controller PDU Data Alignment (CPDA) ... in the range 0 to 31"}, func(ctx context.Context, s *Spec) {
			resp := s.icResp(ctx, plainIC)
			obs := "CPDA <= 31"
			if resp.CPDA > 31 {
				obs = fmt.Sprintf("CPDA %d", resp.CPDA)
			}
			s.Conform(obs, "CPDA <= 31")
		})
		// MAXH2CDATA "is a multiple of dwords and should be no less than
		// 4,096": the dword multiple is stated as fact (mandatory), the
		// floor is a recommendation (TCP-IC-020). Zero is no size at all:
		// no H2CData could carry data, yet 3.3 makes Command Data Buffer
		// transfers mandatory.
		Check(Requirement{ID: "TCP-IC-004", Section: secICResp, Keyword: Indicative, Binds: Controller,
			Title: "ICResp MAXH2CDATA is a non-zero multiple of 4",
			Text:  "MAXH2CDATA ... This value is a multiple of dwords"}, func(ctx context.Context, s *Spec) {
			m := s.icResp(ctx, plainIC).MAXH2CDATA
			obs := "MAXH2CDATA a non-zero multiple of 4"
			if m == 0 || m%4 != 0 {
				obs = fmt.Sprintf("MAXH2CDATA %d", m)
			}
			s.Conform(obs, "MAXH2CDATA a non-zero multiple of 4")
		})
		Check(Requirement{ID: "TCP-IC-020", Section: secICResp, Keyword: Should, Binds: Controller,
			Title: "ICResp MAXH2CDATA is at least 4096",
			Text:  "MAXH2CDATA ... should be no less than 4,096"}, func(ctx context.Context, s *Spec) {
			m := s.icResp(ctx, plainIC).MAXH2CDATA
			obs := "MAXH2CDATA >= 4096"
			if m < tcp.MinMaxH2CData {
				obs = fmt.Sprintf("MAXH2CDATA %d", m)
			}
			s.Conform(obs, "MAXH2CDATA >= 4096")
		})
		Check(Requirement{ID: "TCP-IC-005", Section: secICReq, Keyword: Shall, Binds: Both,
			Title: "ICResp enables no digest the host did not ask for",
			Text:  "If cleared to '0', header digest shall not be used for the connection (DGST, likewise data digest)"}, func(ctx context.Context, s *Spec) {
			resp := s.icResp(ctx, plainIC)
			s.Conform(fmt.Sprintf("DGST %#x", resp.DGST), "DGST 0x0")
		})
		// TCP-IC-006 (an ICReq with HPDA 0 is answered) is gone: it sent
		// the very ICReq every check starts with, so a target that broke
		// it failed the whole suite, and the check could never fail alone.
		// A controller may refuse an HPDA it does not support (3.1:
		// "Unsupported Parameter"); one that accepts it is held to the
		// padding 3.3 requires.
		Check(Requirement{ID: "TCP-IC-007", Section: secDataModel, Keyword: Shall, Binds: Both,
			Title: "an ICReq with HPDA 31 is accepted and C2H data is then 128-byte aligned, or refused with FES 6 FEI 10",
			Text:  "An appropriate number of padding bytes shall be inserted by the controller or host in the PAD field to achieve the required alignment"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			_, err := r.Initialize(tcp.ICReq{HPDA: 31})
			obs := s.icAnswer(r, err)
			if obs != "ICResp" {
				if obs == termReq(tcp.FESUnsupportedParameter, feiHPDA) {
					s.Lacks("host PDU data alignment other than 0 (refused with FES 6 FEI 10, as 3.1 allows)")
				}
				s.Conform(obs, "ICResp")
				s.Lacks("host PDU data alignment other than 0 (" + obs + ", a documented finding)")
			}
			// The host's receive rules now require PDO % 128 == 0: an
			// Identify's C2HData proves the controller honours HPDA.
			_, err = s.adminConnect(r)
			s.Must(err, "admin Connect with HPDA 31")
			s.enableRaw(ctx, r) // and wait for CSTS.RDY: a controller may take until CAP.TO
			_, _, err = r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
			s.Conform(Outcome(err), "success")
		})
		Check(Requirement{ID: "TCP-IC-008", Section: secSetup, Keyword: Indicative, Binds: Controller,
			Title: "an ICReq with HPDA 32 (out of range) is a fatal Invalid PDU Header Field at HPDA",
			Text:  "Reception of an ICReq PDU with an invalid field is treated as a fatal transport error ... \"Invalid PDU Header Field\""}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{HPDA: 32}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiHPDA))
		})
		// PFV "shall be cleared to 0h": a PFV of 1 is as much an invalid
		// field as an unsupported format version, so 3.1 allows either
		// answer at the PFV offset (SPDK sends FES 1, our target FES 6).
		Check(Requirement{ID: "TCP-IC-009", Section: secSetup, Keyword: Indicative, Binds: Controller,
			Title: "an ICReq with PFV 1 is a fatal Unsupported Parameter or Invalid PDU Header Field at PFV",
			Text:  "Reception of an ICReq PDU with an unsupported parameter is treated as a fatal transport error ... \"Unsupported Parameter\""}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{PFV: 1}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESUnsupportedParameter, feiPFV), fesFEI(tcp.FESInvalidHeaderField, feiPFV))
		})
		// TCP-IC-010 (no digests: the ICResp enables none and commands
		// work) is gone: TCP-IC-005 judges the digests granted and every
		// other check runs commands on such a connection.
		for i, d := range []uint8{tcp.DgstHeader, tcp.DgstData, tcp.DgstHeader | tcp.DgstData} {
			Check(Requirement{ID: fmt.Sprintf("TCP-IC-%03d", 11+i), Section: secDigests, Keyword: May, Binds: Controller,
				Title: fmt.Sprintf("digests %s: ICResp grants them (or refuses only in DGST) and commands then work with them", digestName(d)),
				Text:  "The controller may accept (or reject) the use of a header digest by setting to '1' (or clearing to '0') the HDGST_ENABLE flag"},
				func(ctx context.Context, s *Spec) { digestsWork(ctx, s, d) })
		}
		// The first PDU must be an ICReq (3.1); a CapsuleCmd instead is an
		// "unexpected protocol sequence" (FES 02h, 3.6.2.5), or, as FreeBSD
		// reads it, an ICReq whose PDU-Type field is invalid (FES 01h at 0).
		Check(Requirement{ID: "TCP-IC-014", Section: secSetup, Keyword: Indicative, Binds: Controller,
			Title: "a CapsuleCmd before ICReq is a fatal PDU Sequence Error (or Invalid PDU Header Field at the type)",
			Text:  "Once a TCP connection has been established, the host sends an Initialize Connection Request (ICReq) PDU"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sqe := nvme.PropertyGetCmd(1, nvme.PropCAP, true)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, fesAny(tcp.FESPDUSequenceError), fesFEI(tcp.FESInvalidHeaderField, feiType))
		})
		Check(Requirement{ID: "TCP-IC-015", Section: secSetup, Keyword: Indicative, Binds: Controller,
			Title: "a second ICReq on an initialized connection is a fatal PDU Sequence Error (or Invalid PDU Header Field at the type)",
			Text:  "When a connection is established, the host and controller are ready to exchange capsules and command data"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, fesAny(tcp.FESPDUSequenceError), fesFEI(tcp.FESInvalidHeaderField, feiType))
		})
		// Before any R2T every H2CData is unexpected (PDU Sequence Error)
		// and its TTAG unknown (Invalid PDU Header Field at TTAG); the
		// PDU-Type reading of TCP-IC-014 applies too.
		Check(Requirement{ID: "TCP-IC-016", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData before ICReq is a fatal PDU Sequence Error (or Invalid PDU Header Field at TTAG or the type)",
			Text:  "Reception of an unexpected H2CData PDU is treated as a fatal transport error with the Fatal Error Status field in the C2HTermReq PDU set to \"PDU Sequence Error\""}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.H2CData{CCCID: 1, DATAL: 4, Last: true}, make([]byte, 4), tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, fesAny(tcp.FESPDUSequenceError), fesFEI(tcp.FESInvalidHeaderField, feiTTAG), fesFEI(tcp.FESInvalidHeaderField, feiType))
		})
		Check(Requirement{ID: "TCP-IC-017", Section: secSetup, Keyword: Indicative, Binds: Controller,
			Title: "an ICReq with HLEN other than 128 is a fatal Invalid PDU Header Field at HLEN",
			Text:  "Reception of an ICReq PDU with an invalid field is treated as a fatal transport error (HLEN: Fixed length of 128 bytes)"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
			b[2] = 64
			sendQuiet(r, b)
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiHLEN))
		})
		Check(Requirement{ID: "TCP-IC-018", Section: secSetup, Keyword: Indicative, Binds: Controller,
			Title: "an ICReq with PLEN other than 128 is a fatal Invalid PDU Header Field at PLEN",
			Text:  "Reception of an ICReq PDU with an invalid field is treated as a fatal transport error (PLEN: Fixed length of 128 bytes)"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
			setPLEN(b, 132)
			b = append(b, 0, 0, 0, 0)
			sendQuiet(r, b)
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiPLEN))
		})
		// MAXR2T is the host's limit (the controller "shall not exceed"
		// it); nothing obliges a controller to accept every value, but an
		// ICReq it cannot serve is an Unsupported Parameter (3.1), not a
		// silence, a close or another error.
		Check(Requirement{ID: "TCP-IC-019", Section: secSetup, Keyword: Indicative, Binds: Controller,
			Title: "an ICReq asking for 65536 outstanding R2Ts (MAXR2T 0xFFFF) gets an ICResp, or a fatal Unsupported Parameter at MAXR2T",
			Text:  "When a controller receives an ICReq PDU, that controller responds with an Initialize Connection Response (ICResp) PDU"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			_, err := r.Initialize(tcp.ICReq{MAXR2T: 0xFFFF})
			s.OneOf(s.icAnswer(r, err), "ICResp", termReq(tcp.FESUnsupportedParameter, feiMAXR2T))
		})
	})

	Describe("PDU validation", Label("transport-pdu"), func() {
		// bad sends b after a plain initialization and an admin Connect.
		bad := func(ctx context.Context, s *Spec, build func(r *initiator.Raw) []byte, want termAnswer, alts ...termAnswer) {
			GinkgoHelper()
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, build(r))
			s.ExpectFatal(ctx, r, want, alts...)
		}
		propCmd := func(r *initiator.Raw) []byte {
			return encode(r, &tcp.CapsuleCmd{SQE: nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)}, nil)
		}
		for i, t := range []uint8{0x08, 0x0A, 0x7F, 0xFF} {
			Check(Requirement{ID: fmt.Sprintf("TCP-PDU-%03d", 1+i), Section: secDataModel, Keyword: Indicative, Binds: Controller,
				Title: fmt.Sprintf("a PDU of undefined type %#02x is a fatal Invalid PDU Header Field at the type", t),
				Text:  "Opcodes not listed are reserved (Figure 10); Invalid PDU Header Field: An invalid field in the transport header"},
				func(ctx context.Context, s *Spec) {
					bad(ctx, s, func(*initiator.Raw) []byte { return header(tcp.PDUType(t), 0, 24, 24) },
						fesFEI(tcp.FESInvalidHeaderField, feiType))
				})
		}
		// The spec makes a PDU sent the wrong way fatal but names no FES:
		// its type field is invalid there (FES 01h at 0, what SPDK and
		// FreeBSD send) or it is an unexpected protocol sequence (02h).
		for i, c := range []struct {
			t    tcp.PDUType
			hlen uint8
			data int
		}{{tcp.TypeICResp, 128, 0}, {tcp.TypeC2HTermReq, 24, 0}, {tcp.TypeCapsuleResp, 24, 0}, {tcp.TypeC2HData, 24, 4}, {tcp.TypeR2T, 24, 0}} {
			Check(Requirement{ID: fmt.Sprintf("TCP-PDU-%03d", 5+i), Section: secDataModel, Keyword: Indicative, Binds: Controller,
				Title: fmt.Sprintf("a controller-to-host %v sent by the host is a fatal error (Invalid PDU Header Field at the type, or PDU Sequence Error)", c.t),
				Text:  "An NVMe/TCP PDU that is transferred in a direction opposite from that with which it is associated is treated as a fatal transport error"},
				func(ctx context.Context, s *Spec) {
					bad(ctx, s, func(*initiator.Raw) []byte {
						b := header(c.t, 0, c.hlen, uint32(int(c.hlen)+c.data))
						if c.data > 0 {
							b[3] = c.hlen
						}
						return append(b, make([]byte, c.data)...)
					}, fesFEI(tcp.FESInvalidHeaderField, feiType), fesAny(tcp.FESPDUSequenceError))
				})
		}
		Check(Requirement{ID: "TCP-PDU-010", Section: secCapsuleCmd, Keyword: Indicative, Binds: Controller,
			Title: "a CapsuleCmd with HLEN 24 is a fatal Invalid PDU Header Field at HLEN",
			Text:  "HLEN: Fixed length of 72 bytes (48h)"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := propCmd(r)
				b[2] = 24
				return rehash(r, b)
			}, fesFEI(tcp.FESInvalidHeaderField, feiHLEN))
		})
		Check(Requirement{ID: "TCP-PDU-011", Section: secH2CDataPDU, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData with HLEN 72 is a fatal Invalid PDU Header Field at HLEN",
			Text:  "HLEN: Fixed length of 24 bytes (18h)"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := header(tcp.TypeH2CData, tcp.FlagLastPDU, 72, 76)
				b[3] = 72
				return append(b, 0, 0, 0, 0)
			}, fesFEI(tcp.FESInvalidHeaderField, feiHLEN))
		})
		Check(Requirement{ID: "TCP-PDU-012", Section: secCapsuleCmd, Keyword: Indicative, Binds: Controller,
			Title: "a CapsuleCmd whose PLEN is shorter than its header is a fatal Invalid PDU Header Field at PLEN (or PDO)",
			Text:  "PLEN: Total length of PDU (including PDU Header, HDGST, PAD, DATA, and DDGST)"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := propCmd(r)
				setPLEN(b, 64)
				return rehash(r, b)
			}, pdoOrPLEN[1], pdoOrPLEN[0])
		})
		Check(Requirement{ID: "TCP-PDU-013", Section: secCapsuleCmd, Keyword: Indicative, Binds: Controller,
			Title: "a CapsuleCmd with PLEN 8 (no room for its header) is a fatal Invalid PDU Header Field at PLEN (or PDO)",
			Text:  "PLEN: Total length of PDU (including PDU Header, HDGST, PAD, DATA, and DDGST)"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := propCmd(r)
				setPLEN(b, 8)
				return rehash(r, b)
			}, pdoOrPLEN[1], pdoOrPLEN[0])
		})
		Check(Requirement{ID: "TCP-PDU-014", Section: secCapsuleCmd, Keyword: Shall, Binds: Both,
			Title: "a CapsuleCmd whose PDO is not a multiple of the CPDA alignment is a fatal Invalid PDU Header Field at PDO, or is processed as sent",
			Text:  "PDO: ... This value shall be a multiple of the data alignment specified by the CPDA field"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			b := s.connectCapsule(r)
			pdo := int(b[3]) + 2 // 74 with CPDA 0: never a multiple of 4
			sendQuiet(r, rehash(r, repad(b, pdo)))
			// The shall binds the sender; a controller that still reads
			// the data at PDO may process the Connect (SPDK does).
			s.ExpectFatalOrProcessed(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiPDO))
		})
		Check(Requirement{ID: "TCP-PDU-015", Section: secCapsuleCmd, Keyword: Indicative, Binds: Controller,
			Title: "a CapsuleCmd whose PDO points inside its header is a fatal Invalid PDU Header Field at PDO (or PLEN)",
			Text:  "HLEN: Fixed length of 72 bytes ... PDO: Data offset within PDU (the data follows the header and HDGST)"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			sendQuiet(r, rehash(r, repad(s.connectCapsule(r), 64)))
			s.ExpectFatal(ctx, r, pdoOrPLEN[0], pdoOrPLEN[1])
		})
		Check(Requirement{ID: "TCP-PDU-016", Section: secDigests, Keyword: Shall, Binds: Both,
			Title: "a CapsuleCmd with HDGSTF set on a connection without header digests is a fatal Invalid PDU Header Field at FLAGS",
			Text:  "If PDU Header Digest is not enabled, then all subsequent PDUs shall not contain a HDGST field and shall have the HDGSTF flag ... cleared"}, func(ctx context.Context, s *Spec) {
			// The PDU carries the HDGST its flag announces and reads
			// unambiguously; the shall binds the sender, so processing
			// it is allowed too.
			r, _ := s.rawAdmin(ctx, plainIC)
			o := r.Encoding()
			o.Header = true
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)}, nil, o))
			s.ExpectFatalOrProcessed(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiFlags))
		})
		Check(Requirement{ID: "TCP-PDU-017", Section: secDigests, Keyword: Shall, Binds: Both,
			Title: "a CapsuleCmd without HDGSTF on a connection with header digests is a fatal Invalid PDU Header Field at FLAGS",
			Text:  "If the PDU Header Digest is enabled, then all the subsequent PDUs ... shall contain a HDGST field and have the HDGSTF flag set"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, tcp.ICReq{DGST: tcp.DgstHeader})
			if !r.Encoding().Header {
				s.Lacks("header digests")
			}
			_, err := s.adminConnect(r)
			s.Must(err, "admin Connect")
			o := r.Encoding()
			o.Header = false
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)}, nil, o))
			// A controller that trusts the negotiated digest reads the
			// next four bytes as the HDGST: a Header Digest Error is a
			// fair report too. Waiting for bytes that never come is not.
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiFlags), fesAny(tcp.FESHeaderDigestError))
		})
		Check(Requirement{ID: "TCP-PDU-018", Section: secDigests, Keyword: Shall, Binds: Both,
			Title: "a CapsuleCmd with DDGSTF set (and a data digest) on a connection without data digests is a fatal Invalid PDU Header Field at FLAGS or PLEN",
			Text:  "If the PDU Data Digest is not enabled, then these PDUs shall not contain a DDGST field and shall have the DDGSTF flag cleared"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			o := r.Encoding()
			o.Data = true
			cd := nvme.ConnectData{CNTLID: nvme.CNTLIDDynamic, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
			cmd := nvme.Connect{SQSIZE: initiator.AdminQueueSize - 1}
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: cmd.SQE(r.NextCID())}, cd.Append(nil), o))
			// The PDU carries the digest its flag announces, so its PLEN
			// is wrong for the connection as negotiated: two fields
			// disagree with the connection, and either may be reported.
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiFlags), fesFEI(tcp.FESInvalidHeaderField, feiPLEN))
		})
		Check(Requirement{ID: "TCP-PDU-019", Section: secDigestErr, Keyword: Shall, Binds: Controller,
			Title: "a CapsuleCmd with a wrong header digest is a fatal Header Digest Error",
			Text:  "when a controller detects a PDU Header digest error, the controller shall treat the error as a fatal transport error with the Fatal Error Status field set to \"Header Digest Error\""}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, tcp.ICReq{DGST: tcp.DgstHeader})
			if !r.Encoding().Header {
				s.Lacks("header digests")
			}
			_, err := s.adminConnect(r)
			s.Must(err, "admin Connect")
			b := propCmd(r)
			b[tcp.HLenCapsuleCmd] ^= 0x5A
			sendQuiet(r, b)
			s.ExpectFatal(ctx, r, fesAny(tcp.FESHeaderDigestError))
		})
		// The controller "shall terminate the connection"; the host may
		// give up on it only after 30 seconds, so that is how long a
		// correct controller may take, and how long the check waits. A
		// C2HTermReq before the close is not forbidden: it is noted only.
		Check(Requirement{ID: "TCP-PDU-020", Section: secFatal, Keyword: Shall, Binds: Controller,
			Title: "after an H2CTermReq from the host the controller terminates the connection",
			Text:  "In response to a H2CTermReq PDU, the controller shall terminate the connection"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.TermReq{H2C: true, FES: tcp.FESInvalidHeaderField, FEI: 0}, make([]byte, 8), tcp.EncodeOptions{}))
			s.Conform(awaitTermination(r, hostTermGrace), "connection terminated")
			s.TargetAlive(ctx)
		})
		Check(Requirement{ID: "TCP-PDU-021", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData PDU with no R2T outstanding is a fatal error (Invalid PDU Header Field at TTAG, or PDU Sequence Error)",
			Text:  "Reception of a H2CData PDU with an unknown TTAG is treated as a fatal transport error ... Reception of an unexpected H2CData PDU ... \"PDU Sequence Error\""}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				return h2cData(r, 1, 0, 0, make([]byte, 512), true)
			}, fesFEI(tcp.FESInvalidHeaderField, feiTTAG), fesAny(tcp.FESPDUSequenceError))
		})

		// The same header malformations in the very first capsule, the
		// Connect with its 1024 bytes of in-capsule data, before any
		// association exists: a controller's Connect path parses its
		// header too (SPDK v26.05 dies on a Connect whose PDO, 13, points
		// inside its header). Each must get the C2HTermReq any capsule
		// would, and the target must live on (ExpectFatal checks both).
		for i, c := range []struct {
			what  string
			is    string // the answer, in words
			ic    tcp.ICReq
			build func(s *Spec, r *initiator.Raw) []byte
			sec   string
			kw    Keyword
			binds Party
			text  string
			want  []termAnswer
			// processedOK: the rule broken binds the sender and the PDU
			// still reads unambiguously, so processing it is allowed.
			processedOK bool
		}{
			{what: "HLEN 24", is: "Invalid PDU Header Field at HLEN", build: func(s *Spec, r *initiator.Raw) []byte {
				b := s.connectCapsule(r)
				b[2] = 24
				return rehash(r, b)
			}, sec: secCapsuleCmd, kw: Indicative, binds: Controller, text: "HLEN: Fixed length of 72 bytes (48h)",
				want: []termAnswer{fesFEI(tcp.FESInvalidHeaderField, feiHLEN)}},
			{what: "PLEN 64, shorter than its header", is: "Invalid PDU Header Field at PLEN or PDO", build: func(s *Spec, r *initiator.Raw) []byte {
				b := s.connectCapsule(r)
				setPLEN(b, 64)
				return rehash(r, b)
			}, sec: secCapsuleCmd, kw: Indicative, binds: Controller, text: "PLEN: Total length of PDU (including PDU Header, HDGST, PAD, DATA, and DDGST)",
				want: []termAnswer{pdoOrPLEN[1], pdoOrPLEN[0]}},
			{what: "PLEN 8, no room for its header", is: "Invalid PDU Header Field at PLEN or PDO", build: func(s *Spec, r *initiator.Raw) []byte {
				b := s.connectCapsule(r)
				setPLEN(b, 8)
				return rehash(r, b)
			}, sec: secCapsuleCmd, kw: Indicative, binds: Controller, text: "PLEN: Total length of PDU (including PDU Header, HDGST, PAD, DATA, and DDGST)",
				want: []termAnswer{pdoOrPLEN[1], pdoOrPLEN[0]}},
			{what: "PDO 13, inside its header and not a dword multiple", is: "Invalid PDU Header Field at PDO or PLEN", build: func(s *Spec, r *initiator.Raw) []byte {
				return rehash(r, repad(s.connectCapsule(r), 13))
			}, sec: secCapsuleCmd, kw: Shall, binds: Both, text: "PDO: Data offset within PDU. This value shall be a multiple of the data alignment specified by the CPDA field",
				want: []termAnswer{pdoOrPLEN[0], pdoOrPLEN[1]}},
			{what: "PDO 128 beyond its PLEN of 100", is: "Invalid PDU Header Field at PDO or PLEN", build: func(s *Spec, r *initiator.Raw) []byte {
				return rehash(r, pdoBeyondPLEN(s.connectCapsule(r), 128, 100))
			}, sec: secCapsuleCmd, kw: Indicative, binds: Controller, text: "PDO: Data offset within PDU ... PLEN: Total length of PDU",
				want: []termAnswer{pdoOrPLEN[0], pdoOrPLEN[1]}},
			{what: "HDGSTF set without header digests", is: "Invalid PDU Header Field at FLAGS", build: func(s *Spec, r *initiator.Raw) []byte {
				o := r.Encoding()
				o.Header = true
				return s.connectCapsuleWith(r, o)
			}, sec: secDigests, kw: Shall, binds: Both, text: "If PDU Header Digest is not enabled, then all subsequent PDUs ... shall have the HDGSTF flag, if defined, cleared to '0'",
				want: []termAnswer{fesFEI(tcp.FESInvalidHeaderField, feiFlags)}, processedOK: true},
			{what: "HDGSTF clear on a connection with header digests", is: "Invalid PDU Header Field at FLAGS", ic: tcp.ICReq{DGST: tcp.DgstHeader}, build: func(s *Spec, r *initiator.Raw) []byte {
				o := r.Encoding()
				o.Header = false
				return s.connectCapsuleWith(r, o)
			}, sec: secDigests, kw: Shall, binds: Both, text: "If the PDU Header Digest is enabled, then all the subsequent PDUs ... shall contain a HDGST field and have the HDGSTF flag set to '1'",
				// A controller that trusts the negotiated digest reads the
				// first data bytes as the HDGST and finds it wrong.
				want: []termAnswer{fesFEI(tcp.FESInvalidHeaderField, feiFlags), fesAny(tcp.FESHeaderDigestError)}},
			{what: "a wrong header digest", is: "Header Digest Error", ic: tcp.ICReq{DGST: tcp.DgstHeader}, build: func(s *Spec, r *initiator.Raw) []byte {
				b := s.connectCapsule(r)
				b[tcp.HLenCapsuleCmd] ^= 0x5A
				return b
			}, sec: secDigestErr, kw: Shall, binds: Controller, text: "when a controller detects a PDU Header digest error, the controller shall treat the error as a fatal transport error",
				want: []termAnswer{fesAny(tcp.FESHeaderDigestError)}},
		} {
			Check(Requirement{ID: fmt.Sprintf("TCP-PDU-%03d", 22+i), Section: c.sec, Keyword: c.kw, Binds: c.binds,
				Title: fmt.Sprintf("a Connect capsule (the first capsule, with in-capsule data) with %s is a fatal %s, and the target survives", c.what, c.is),
				Text:  c.text}, func(ctx context.Context, s *Spec) {
				r := s.Raw(ctx, c.ic)
				if c.ic.DGST&tcp.DgstHeader != 0 && !r.Encoding().Header {
					s.Lacks("header digests")
				}
				sendQuiet(r, c.build(s, r))
				s.expectFatal(ctx, r, c.processedOK, c.want[0], c.want[1:]...)
			})
		}
	})

	Describe("fatal error handling", Label("transport-fatal"), func() {
		// unknown is a PDU of the reserved type 0Ah (TCP-PDU-002), the
		// fatal error these checks provoke.
		unknown := referenceFatal
		// termReqOf provokes the unknown-type fatal error and returns the
		// target's C2HTermReq header and error data, then terminates the
		// connection as the host must. Whether a C2HTermReq comes at all
		// is TCP-FATAL-006's verdict, not these checks': without one they
		// have nothing to examine and skip, saying so.
		termReqOf := func(ctx context.Context, s *Spec) (tcp.CommonHeader, []byte) {
			GinkgoHelper()
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, unknown)
			p, ch, data, err := r.Recv(s.fatalWait())
			if err != nil {
				Skip(fmt.Sprintf("%s: no C2HTermReq to examine (%s; "+termReqOwner+" judges that)", s.Req.ID, fatalErrOutcome(err)))
			}
			if _, ok := p.(*tcp.TermReq); !ok {
				Skip(fmt.Sprintf("%s: no C2HTermReq to examine (PDU %v; "+termReqOwner+" judges that)", s.Req.ID, p.Type()))
			}
			_ = r.Close()
			return ch, data
		}
		Check(Requirement{ID: "TCP-FATAL-001", Section: secC2HTermReq, Keyword: Shall, Binds: Controller,
			Title: "a C2HTermReq has HLEN 24 and PLEN within 24..152",
			Text:  "HLEN: Fixed length of 24 bytes (18h) ... PLEN ... shall not exceed a limit of 152 bytes"}, func(ctx context.Context, s *Spec) {
			// Not termReqOf: the host library refuses a C2HTermReq with
			// wrong lengths, and the lengths are what this check judges,
			// from the header the library kept.
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, unknown)
			p, ch, _, err := r.Recv(s.fatalWait())
			switch h := refusedHeader(err, tcp.TypeC2HTermReq, tcp.CommonHeaderSize); {
			case h != nil:
				_ = ch.Decode(h)
			case err != nil:
				Skip(fmt.Sprintf("%s: no C2HTermReq to examine (%s; "+termReqOwner+" judges that)", s.Req.ID, fatalErrOutcome(err)))
			default:
				if _, ok := p.(*tcp.TermReq); !ok {
					Skip(fmt.Sprintf("%s: no C2HTermReq to examine (PDU %v; "+termReqOwner+" judges that)", s.Req.ID, p.Type()))
				}
			}
			_ = r.Close()
			obs := "valid C2HTermReq lengths"
			if ch.HLEN != 24 || ch.PLEN < 24 || ch.PLEN > 152 {
				obs = fmt.Sprintf("C2HTermReq hlen %d plen %d", ch.HLEN, ch.PLEN)
			}
			s.Conform(obs, "valid C2HTermReq lengths")
		})
		Check(Requirement{ID: "TCP-FATAL-002", Section: secFatal, Keyword: Shall, Binds: Controller,
			Title: "a C2HTermReq for an invalid header carries the offending PDU header as its error data",
			Text:  "the PDU data contents filled with the PDU Header that was being processed when the fatal error was detected"}, func(ctx context.Context, s *Spec) {
			_, data := termReqOf(ctx, s)
			obs := "offending header"
			n := min(len(data), len(unknown))
			if n < tcp.CommonHeaderSize || !bytes.Equal(data[:n], unknown[:n]) {
				obs = fmt.Sprintf("error data % x", data)
			}
			s.Conform(obs, "offending header")
		})
		// What 3.5.1 makes the controller do after a fatal error is stop
		// processing the connection's PDUs and send the C2HTermReq;
		// closing is the host's part. So the harness, for once, delays
		// that part a moment: it sends a valid command after the
		// C2HTermReq and requires that no response comes.
		Check(Requirement{ID: "TCP-FATAL-003", Section: secFatal, Keyword: Shall, Binds: Controller,
			Title: "after a fatal error the controller stops processing the connection's PDUs: a command sent after its C2HTermReq gets no response",
			Text:  "When a controller detects a fatal error, that controller shall: 1. stop processing any PDUs that arrive on the connection"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, unknown)
			t, obs := fatalReaction(r, s.fatalWait())
			switch {
			case obs == "close without C2HTermReq":
				// Nothing can be processed on a closed connection;
				// the missing C2HTermReq is TCP-FATAL-006's verdict.
				s.TargetAlive(ctx)
				return
			case t == nil:
				Skip(fmt.Sprintf("%s: the target signalled no fatal error (%s; TCP-PDU-002 and %s judge that), so nothing tells whether it stopped processing", s.Req.ID, obs, termReqOwner))
			}
			sqe := nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)
			sendQuiet(r, encode(r, &tcp.CapsuleCmd{SQE: sqe}, nil))
			obs = "no response"
			for {
				p, _, _, err := r.Recv(processWait)
				if err != nil {
					break // silence or the end of the connection: not processed
				}
				if resp, ok := p.(*tcp.CapsuleResp); ok {
					obs = fmt.Sprintf("a response (%s) to a command sent after the C2HTermReq", StatusOutcome(resp.CQE.Status))
					break
				}
			}
			_ = r.Close() // the host's duty, delayed only for this probe
			s.Conform(obs, "no response")
			s.TargetAlive(ctx)
		})
		Check(Requirement{ID: "TCP-FATAL-004", Section: secFatal, Keyword: Indicative, Binds: Controller,
			Title: "fatal errors end one connection only: after eight in a row a full association still works",
			Text:  "NVMe/TCP transport fatal errors are handled by terminating the connection"}, func(ctx context.Context, s *Spec) {
			for i := range 8 {
				r := s.Dial(ctx)
				if i%2 == 0 {
					sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{PFV: 1}, nil, tcp.EncodeOptions{}))
				} else {
					_, _ = r.Initialize(plainIC)
					sendQuiet(r, unknown)
				}
				_ = FatalOutcome(r, s.fatalWait())
			}
			c := s.Connect(ctx, s.Options())
			_, err := c.Identify(ctx)
			s.Conform(Outcome(err), "success")
		})
		// The one check that judges whether fatal errors come with a
		// C2HTermReq at all; every other fatal-error check skips, pointing
		// here, when the target never sends one (expectFatal).
		Check(Requirement{ID: termReqOwner, Section: secFatal, Keyword: Shall, Binds: Controller,
			Title: "a fatal transport error is reported with a C2HTermReq before the connection ends (a PDU of reserved type 0Ah provokes it)",
			Text:  "When a controller detects a fatal error, that controller shall: ... send a C2HTermReq PDU"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, unknown)
			t, obs := actAsHost(r, s.fatalWait())
			if t != nil {
				obs = "C2HTermReq"
			}
			s.Conform(obs, "C2HTermReq")
		})
		Check(Requirement{ID: "TCP-FATAL-005", Section: secFatal, Keyword: Indicative, Binds: Controller,
			Title: "a fatal error on one connection leaves the other connections of the target working",
			Text:  "NVMe/TCP transport fatal errors are handled by terminating the connection"}, func(ctx context.Context, s *Spec) {
			c := s.Connect(ctx, s.Options())
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{PFV: 1}, nil, tcp.EncodeOptions{}))
			_ = FatalOutcome(r, s.fatalWait())
			_, err := c.Identify(ctx)
			s.Conform(Outcome(err), "success")
		})
	})

	Describe("data transfer", Label("transport-data"), func() {
		// NVMe/TCP 1.0 3.3.2.1: C2HData start at offset 0 and run in order
		// to the end of the buffer (shall), LAST_PDU on the last. SUCCESS
		// "shall be cleared" on all but the last, replaces the response
		// capsule ("no Response Capsule is sent"), and "may be set ... only
		// if the controller supports disabling SQHD updates": the one
		// place it is forbidden on a queue is a controller that cannot
		// disable SQ flow control (NVMe Base 2.2 6.3: SQHD FFFFh in the
		// Connect response of a DISSQFC request). On a queue that keeps
		// flow control, as this admin queue, it is NVMe Base 2.1 3.3.2.7's
		// SQHD update optimization, which SPDK uses, so it passes.
		Check(Requirement{ID: "TCP-DATA-001", Section: secC2HData, Keyword: Shall, Binds: Controller,
			Title:      "C2HData for a read run in order to the end of the buffer, LAST_PDU on the last; SUCCESS replaces the response, from a controller that can disable SQ flow control",
			Text:       "The first C2HData PDU of a command shall start with an offset of zero and subsequent C2HData PDUs for the command shall transfer data sequentially",
			Statements: []string{"T-3.3.2.1-01", "T-3.3.2.1-05", "T-3.3.2.1-06", "T-3.3.2.1-08", "T-3.3.2.1-10"}}, func(ctx context.Context, s *Spec) {
			r, _, _ := s.EnabledAdmin(ctx, plainIC)
			sqe := nvme.IdentifyCmd(nvme.CNSController, 0, 0)
			sqe.CID = r.NextCID()
			s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Identify")
			var next uint32
			last, success := false, false
			for {
				p, _, d, err := r.Recv(0)
				var fe *tcp.FatalError
				if errors.As(err, &fe) {
					// e.g. SUCCESS without LAST_PDU: a fatal error for a host
					s.Conform("C2HData a host must treat as a fatal error ("+fe.Reason+")", "in-order C2HData")
				}
				s.Must(err, "receive Identify data")
				if v, ok := p.(*tcp.C2HData); ok {
					if last || v.CCCID != sqe.CID || v.DATAO != next {
						s.Conform(fmt.Sprintf("C2HData CCCID %d DATAO %d after %d bytes (last seen %v)", v.CCCID, v.DATAO, next, last), "in-order C2HData")
					}
					next += uint32(len(d))
					last = v.Last
					if v.Success {
						success = true
						break
					}
					continue
				}
				resp, ok := p.(*tcp.CapsuleResp)
				if !ok {
					s.Conform("PDU "+p.Type().String(), "C2HData then CapsuleResp")
				}
				s.Conform(StatusOutcome(resp.CQE.Status), "success")
				break
			}
			s.Conform(fmt.Sprintf("%d bytes, LAST_PDU %v", next, last), "4096 bytes, LAST_PDU true")
			if !success {
				return
			}
			// SUCCESS completed the Identify: the next PDU must answer the
			// next command, not complete the Identify a second time.
			s.nextAnswersNext(r, sqe.CID)
			// Can the controller disable SQ flow control? Ask on a new
			// association.
			r2 := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r2, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: nvme.CNTLIDDynamic, CATTR: nvme.CATTRDisableSQFlow})
			obs := "SUCCESS from a controller that disables SQ flow control"
			switch {
			case err != nil:
				obs = "SUCCESS from a controller that fails a Connect asking to disable SQ flow control (" + Outcome(err) + ")"
			case cqe.SQHD != 0xFFFF:
				obs = "SUCCESS from a controller that keeps SQ flow control when asked to disable it"
			}
			s.Conform(obs, "SUCCESS from a controller that disables SQ flow control")
		})
		// The first R2T of a write without in-capsule data starts at 0
		// ("shall"), names the command and asks for data inside its buffer.
		Check(Requirement{ID: "TCP-DATA-002", Section: secH2CData, Keyword: Shall, Binds: Controller,
			Title: "the first R2T for a write names the command and a transfer tag and asks for data from offset 0 within the command's data",
			Text:  "The first R2T PDU of a command shall start with an offset of zero ... The R2T PDU specifies the Command Identifier ..., a transfer tag (TTAG), a data offset (R2TO) ..., and the transfer data length (R2TL)"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			n := io.r2tSize(0)
			sqe, r2t := s.startWrite(io, n)
			obs := "valid R2T"
			if r2t.CCCID != sqe.CID || r2t.R2TO != 0 || r2t.R2TL == 0 || uint64(r2t.R2TO)+uint64(r2t.R2TL) > uint64(n) {
				obs = fmt.Sprintf("R2T CCCID %d R2TO %d R2TL %d for CID %d of %d bytes", r2t.CCCID, r2t.R2TO, r2t.R2TL, sqe.CID, n)
			}
			s.Conform(obs, "valid R2T")
		})
		Check(Requirement{ID: "TCP-DATA-003", Section: secH2CData, Keyword: Shall, Binds: Controller,
			Title: "with MAXR2T 0 the controller never has more than one R2T outstanding for a command",
			Text:  "shall not exceed the maximum number of outstanding R2T PDUs per command supported by the host (MAXR2T)"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, tcp.ICReq{MAXR2T: 0})
			maxh2c := io.io.ICResp.MAXH2CDATA
			n := min(uint32(1<<20), 4*maxh2c)
			if mt := io.maxTransfer(); mt > 0 && uint64(n) > mt {
				n = uint32(mt)
			}
			n -= n % io.bs
			sqe := io.writeCmd(io.io, n)
			data := bytes.Repeat([]byte{0xA5}, int(n))
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Write")
			var pending []*tcp.R2T
			done := false
			for !done {
				wait := time.Duration(0)
				if len(pending) > 0 {
					wait = 300 * time.Millisecond // a second R2T would come now
				}
				p, _, _, err := io.io.Recv(wait)
				if err != nil && len(pending) > 0 {
					r2t := pending[0]
					pending = pending[1:]
					off := r2t.R2TO
					for end := r2t.R2TO + r2t.R2TL; off < end; {
						k := min(end-off, maxh2c)
						s.Must(io.io.SendBytes(h2cData(io.io, sqe.CID, r2t.TTAG, off, data[off:off+k], off+k == end)), "send H2CData")
						off += k
					}
					continue
				}
				s.Must(err, "receive")
				switch v := p.(type) {
				case *tcp.R2T:
					pending = append(pending, v)
					if len(pending) > 1 {
						s.Conform(fmt.Sprintf("%d R2Ts outstanding", len(pending)), "at most 1 R2T outstanding")
					}
				case *tcp.CapsuleResp:
					s.Conform(StatusOutcome(v.CQE.Status), "success")
					done = true
				default:
					s.Conform("PDU "+p.Type().String(), "R2T or CapsuleResp")
				}
			}
		})
		Check(Requirement{ID: "TCP-DATA-004", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData with a transfer tag the controller did not issue is a fatal Invalid PDU Header Field at TTAG",
			Text:  "Reception of a H2CData PDU with an unknown TTAG is treated as a fatal transport error with the Fatal Error Status field set to \"Invalid PDU Header Field\""}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			sendQuiet(io.io, h2cData(io.io, sqe.CID, r2t.TTAG^0x5A5A, 0, make([]byte, io.bs), true))
			s.ExpectFatal(ctx, io.io, fesFEI(tcp.FESInvalidHeaderField, feiTTAG))
		})
		// TCP-DATA-005 (a wrong CCCID in an H2CData is fatal) is gone: the
		// spec names no rule for it. The transfer is identified by its
		// TTAG (3.3.2.2); CCCID checks are specified only for C2HData,
		// on the host (3.3.2.1).
		//
		// Inside the R2T's range, data that skips ahead is "non-contiguous"
		// (PDU Sequence Error); FES 04h is only for data outside
		// R2TO..R2TO+R2TL.
		Check(Requirement{ID: "TCP-DATA-006", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData that skips ahead inside the R2T's range (DATAO not the next expected offset) is a fatal PDU Sequence Error",
			Text:  "Reception of a non-contiguous H2CData PDU is treated as a fatal transport error with the Fatal Error Status field set to \"PDU Sequence Error\""}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(2*io.bs))
			// Skip one block and send the next, or skip a dword and send
			// one when the R2T asks for less than two blocks: either way
			// the PDU lies wholly inside the R2T's range.
			skip, n := io.bs, io.bs
			if r2t.R2TL < 2*io.bs {
				skip, n = 4, 4
			}
			if r2t.R2TL < skip+n {
				s.Lacks(fmt.Sprintf("an R2T long enough to skip ahead inside (R2TL %d)", r2t.R2TL))
			}
			sendQuiet(io.io, h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO+skip, make([]byte, n), skip+n == r2t.R2TL))
			s.ExpectFatal(ctx, io.io, fesAny(tcp.FESPDUSequenceError))
		})
		Check(Requirement{ID: "TCP-DATA-007", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData reaching beyond the R2T's range is a fatal Data Transfer Out of Range",
			Text:  "Reception of a H2CData PDU that is outside the range starting from R2TO to R2TO + R2TL is treated as a fatal transport error ... \"Data Transfer Out of Range\""}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			n := r2t.R2TL + io.bs
			var alts []termAnswer
			if n > io.io.ICResp.MAXH2CDATA {
				// Then it also exceeds MAXH2CDATA: both errors are real.
				alts = append(alts, fesAny(tcp.FESDataLimitExceeded))
			}
			sendQuiet(io.io, h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO, make([]byte, n), true))
			s.ExpectFatal(ctx, io.io, fesAny(tcp.FESDataOutOfRange), alts...)
		})
		Check(Requirement{ID: "TCP-DATA-008", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData carrying more than MAXH2CDATA bytes is a fatal Data Transfer Limit Exceeded",
			Text:  "Reception of a H2CData PDU with a data length which exceeds MAXH2CDATA is treated as a fatal transport error ... \"Data Transfer Limit Exceeded\""}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			maxh2c := io.io.ICResp.MAXH2CDATA
			n := maxh2c + io.bs - maxh2c%io.bs
			if mt := io.maxTransfer(); mt > 0 && uint64(n) > mt {
				s.Lacks(fmt.Sprintf("a transfer size above MAXH2CDATA %d (MDTS allows %d bytes)", maxh2c, mt))
			}
			if n > 16<<20 {
				s.Lacks(fmt.Sprintf("a MAXH2CDATA small enough to exceed in a check (%d bytes)", maxh2c))
			}
			sqe := io.writeCmd(io.io, n)
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Write")
			p, _, _, err := io.io.Recv(0)
			s.Must(err, "waiting for the R2T")
			r2t, ok := p.(*tcp.R2T)
			if !ok {
				if resp, isResp := p.(*tcp.CapsuleResp); isResp {
					s.Lacks(fmt.Sprintf("a write of %d bytes (more than MAXH2CDATA): refused with %s", n, StatusOutcome(resp.CQE.Status)))
				}
				s.Conform("PDU "+p.Type().String(), "R2T")
			}
			if r2t.R2TL <= maxh2c {
				s.Lacks(fmt.Sprintf("an R2T longer than MAXH2CDATA (R2TL %d)", r2t.R2TL))
			}
			k := min(r2t.R2TL, n)
			sendQuiet(io.io, h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO, make([]byte, k), true))
			s.ExpectFatal(ctx, io.io, fesAny(tcp.FESDataLimitExceeded))
		})
		Check(Requirement{ID: "TCP-DATA-009", Section: secH2CDataPDU, Keyword: Indicative, Binds: Controller,
			Title: "an H2CData whose DATAL disagrees with its PLEN is a fatal Invalid PDU Header Field (PLEN or DATAL)",
			Text:  "PLEN: Total length of PDU (including PDU Header, HDGST, PAD, DATA, and DDGST) ... Data Length (DATAL): PDU DATA field length in bytes"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			b := h2cData(io.io, sqe.CID, r2t.TTAG, 0, make([]byte, io.bs), true)
			binary.LittleEndian.PutUint32(b[16:], io.bs/2) // DATAL
			sendQuiet(io.io, rehash(io.io, b))
			// The text names no FES for it; a controller that reads
			// PLEN's bytes and then finds the data out of step with the
			// transfer reports a PDU Sequence Error (SPDK does).
			s.ExpectFatal(ctx, io.io, fesFEI(tcp.FESInvalidHeaderField, feiPLEN), fesFEI(tcp.FESInvalidHeaderField, feiDATAL), fesAny(tcp.FESPDUSequenceError))
		})
		Check(Requirement{ID: "TCP-DATA-010", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Title: "a write whose data comes by R2T/H2CData in several PDUs completes successfully",
			Text:  "This data transfer may be performed using one or more H2CData PDUs"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			n := io.r2tSize(4 * max(io.bs, 4096))
			sqe, r2t := s.startWrite(io, n)
			data := bytes.Repeat([]byte{0x3C}, int(n))
			off, end := r2t.R2TO, r2t.R2TO+r2t.R2TL
			for off < end {
				k := min(end-off, io.bs)
				s.Must(io.io.SendBytes(h2cData(io.io, sqe.CID, r2t.TTAG, off, data[off:off+k], off+k == end)), "send H2CData")
				off += k
			}
			s.Conform(answerR2Ts(io.io, sqe.CID, data, s.fatalWait()*2), "success")
		})
	})

	Describe("small writes by R2T", Label("transport-data"), func() {
		Check(Requirement{ID: "TCP-DATA-011", Section: secDataModel, Keyword: Shall, Binds: Controller,
			Title: "a write small enough for in-capsule data but sent without it still gets an R2T and completes",
			Text:  "All NVMe/TCP implementations shall support data transfers using Command Data Buffers"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			n := io.bs
			sqe := io.writeCmd(io.io, n)
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Write")
			p, _, _, err := io.io.Recv(s.fatalWait())
			if err != nil {
				s.Conform("no R2T: "+fatalErrOutcome(err), "R2T")
				return
			}
			r2t, ok := p.(*tcp.R2T)
			if !ok {
				s.Conform("PDU "+p.Type().String(), "R2T")
			}
			data := bytes.Repeat([]byte{0x5B}, int(n))
			s.Must(io.io.SendBytes(h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO, data[r2t.R2TO:r2t.R2TO+r2t.R2TL], true)), "send H2CData")
			s.Conform(answerR2Ts(io.io, sqe.CID, data, s.fatalWait()*2), "success")
		})
	})

	Describe("digests", Label("transport-digest"), func() {
		Check(Requirement{ID: "TCP-DGST-001", Section: secDigestErr, Keyword: Shall, Binds: Controller,
			Title: "an H2CData with a wrong header digest is a fatal Header Digest Error",
			Text:  "when a controller detects a PDU Header digest error, the controller shall treat the error as a fatal transport error with the Fatal Error Status field set to \"Header Digest Error\""}, func(ctx context.Context, s *Spec) {
			s.requireDigests(ctx, tcp.DgstHeader)
			io := s.SetupIO(ctx, tcp.ICReq{DGST: tcp.DgstHeader})
			if !io.io.Encoding().Header {
				s.Lacks("header digests")
			}
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			b := h2cData(io.io, sqe.CID, r2t.TTAG, 0, make([]byte, io.bs), true)
			b[tcp.HLenData] ^= 0xFF
			sendQuiet(io.io, b)
			s.ExpectFatal(ctx, io.io, fesAny(tcp.FESHeaderDigestError))
		})
		// digestError sends a write whose data digest is wrong, in the
		// capsule or in the H2CData for the first R2T (answering any
		// further R2Ts with good data, since the controller "may continue
		// processing H2CData PDUs associated with the command"), and
		// renders the outcome. After a C2HTermReq the harness terminates
		// the connection, as the host must.
		digestError := func(ctx context.Context, s *Spec, inCapsule bool) (string, *ioSetup) {
			GinkgoHelper()
			s.requireDigests(ctx, tcp.DgstData)
			io := s.SetupIO(ctx, tcp.ICReq{DGST: tcp.DgstData})
			if !io.io.Encoding().Data {
				s.Lacks("data digests")
			}
			var obs string
			if inCapsule {
				if io.inCapsule() < io.bs {
					s.Lacks(fmt.Sprintf("in-capsule data of one %d-byte block (IOCCSZ %d)", io.bs, io.id.IOCCSZ))
				}
				data := bytes.Repeat([]byte{0x77}, int(io.bs))
				sqe := nvme.WriteCmd(io.nsid, 0, 1)
				sqe.CID = io.io.NextCID()
				nvme.SetInCapsule(&sqe, io.bs)
				b := encode(io.io, &tcp.CapsuleCmd{SQE: sqe}, data)
				b[len(b)-1] ^= 0xFF
				sendQuiet(io.io, b)
				obs = awaitResponse(io.io, sqe.CID, s.fatalWait())
			} else {
				n := io.r2tSize(0)
				sqe, r2t := s.startWrite(io, n)
				data := bytes.Repeat([]byte{0x77}, int(n))
				end := r2t.R2TO + r2t.R2TL
				if uint64(end) > uint64(n) || r2t.R2TL > io.io.ICResp.MAXH2CDATA {
					// TCP-DATA-002 and TCP-DATA-008 judge such an R2T.
					s.Lacks(fmt.Sprintf("an R2T this check can answer in one H2CData (R2TO %d R2TL %d)", r2t.R2TO, r2t.R2TL))
				}
				b := h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO, data[r2t.R2TO:end], true)
				b[len(b)-1] ^= 0xFF
				sendQuiet(io.io, b)
				obs = answerR2Ts(io.io, sqe.CID, data, s.fatalWait())
			}
			if isFatal(obs) {
				_ = io.io.Close()
			}
			return obs, io
		}
		for i, inCapsule := range []bool{true, false} {
			where := "in-capsule data"
			if !inCapsule {
				where = "an H2CData PDU"
			}
			// The status: Transient Transport Error, and nothing else (a
			// fatal reaction fails here, once).
			Check(Requirement{ID: fmt.Sprintf("TCP-DGST-%03d", 2+2*i), Section: secDigestErr, Keyword: Shall, Binds: Controller,
				Title: fmt.Sprintf("a data digest error in %s fails that command with Transient Transport Error (00/22)", where),
				Text:  "the controller shall fail the command with a non-fatal transport error"},
				func(ctx context.Context, s *Spec) {
					obs, _ := digestError(ctx, s, inCapsule)
					s.Conform(obs, StatusOutcome(nvme.StatusTransientTransport))
				})
			// The connection: a non-fatal error leaves it working. A fatal
			// reaction is TCP-DGST-002/004's verdict; here it leaves
			// nothing to judge.
			Check(Requirement{ID: fmt.Sprintf("TCP-DGST-%03d", 3+2*i), Section: secDigestErr, Keyword: Indicative, Binds: Controller,
				Title: fmt.Sprintf("after a data digest error in %s the connection keeps working", where),
				Text:  "A PDU data digest error detected by the host or the controller is treated as a non-fatal transport error"},
				func(ctx context.Context, s *Spec) {
					obs, io := digestError(ctx, s, inCapsule)
					if isFatal(obs) || obs == "no reaction" {
						Skip(fmt.Sprintf("%s: the command's outcome was %q (TCP-DGST-%03d judges it); no connection left to examine", s.Req.ID, obs, 2+2*i))
					}
					sqe := nvme.ReadCmd(io.nsid, 0, 1)
					nvme.SetDataLength(&sqe, io.bs)
					_, _, err := io.io.Command(sqe, nil)
					obs = "the next command completes"
					if _, st := err.(nvme.Status); err != nil && !st {
						obs = "the next command fails: " + fatalErrOutcome(err)
					}
					s.Conform(obs, "the next command completes")
					s.TargetAlive(ctx)
				})
		}
	})
})

// isFatal says whether an outcome is a fatal-error reaction.
func isFatal(obs string) bool {
	return obs == "close without C2HTermReq" || strings.HasPrefix(obs, "C2HTermReq")
}

// icOutcome renders an Initialize result: "ICResp", a fatal outcome, or
// "ICResp rejected by the host: ..." when the ICResp itself is invalid.
func icOutcome(r *initiator.Raw, err error) string {
	if err == nil {
		return "ICResp"
	}
	if pt, ok := err.(*tcp.PeerTerminated); ok {
		return termReq(pt.FES, pt.FEI)
	}
	if fe, ok := err.(*tcp.FatalError); ok {
		return "invalid ICResp: " + fe.Reason
	}
	return fatalErrOutcome(err)
}

// icAnswer is icOutcome for a check that judges what follows the ICResp,
// not the ICResp: an ICResp the host must refuse (judged by TCP-IC-001..005)
// skips it, as it skips every check that needs a connection.
func (s *Spec) icAnswer(r *initiator.Raw, err error) string {
	GinkgoHelper()
	s.skipIfICRespRefused(err)
	return icOutcome(r, err)
}

// answerR2Ts answers further R2Ts of command cid from data until its
// response and renders the outcome.
func answerR2Ts(r *initiator.Raw, cid uint16, data []byte, wait time.Duration) string {
	maxh2c := r.ICResp.MAXH2CDATA
	for {
		p, _, _, err := r.Recv(wait)
		if err != nil {
			return fatalErrOutcome(err)
		}
		switch v := p.(type) {
		case *tcp.R2T:
			for off, end := v.R2TO, v.R2TO+v.R2TL; off < end; {
				k := min(end-off, maxh2c)
				if err := r.SendBytes(h2cData(r, cid, v.TTAG, off, data[off:off+k], off+k == end)); err != nil {
					return "transport error"
				}
				off += k
			}
		case *tcp.CapsuleResp:
			if v.CQE.CID == cid {
				return StatusOutcome(v.CQE.Status)
			}
		case *tcp.TermReq:
			return termReq(v.FES, v.FEI)
		}
	}
}

// refusedTermReq returns the C2HTermReq that err, a receive error,
// refused for its HLEN or PLEN (the host library checks them before
// anything else), when the header it kept holds FES and FEI; else nil.
func refusedTermReq(err error) *tcp.TermReq {
	h := refusedHeader(err, tcp.TypeC2HTermReq, tcp.HLenTermReq)
	if h == nil {
		return nil
	}
	return &tcp.TermReq{FES: binary.LittleEndian.Uint16(h[8:]), FEI: binary.LittleEndian.Uint32(h[10:])}
}

// refusedHeader returns the header of a PDU of type typ that the host
// library refused as invalid and kept in its error (err a
// *tcp.FatalError), when at least min bytes of it are there; else nil.
func refusedHeader(err error, typ tcp.PDUType, min int) []byte {
	var fe *tcp.FatalError
	if !errors.As(err, &fe) || len(fe.Header) < max(min, 1) || tcp.PDUType(fe.Header[0]) != typ {
		return nil
	}
	return fe.Header
}

// readFull reads exactly len(b) bytes.
func readFull(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
