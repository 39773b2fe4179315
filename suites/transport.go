package suites

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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

// Canonical fatal observations.
func termReq(fes uint16, fei uint32) string {
	return fmt.Sprintf("C2HTermReq FES %#x FEI %#x", fes, fei)
}
func termReqFES(fes uint16) string { return fmt.Sprintf("C2HTermReq FES %#x", fes) }

// FEI byte offsets named by the checks.
const (
	feiType  = 0
	feiFlags = 1
	feiHLEN  = 2
	feiPDO   = 3
	feiPLEN  = 4
	feiPFV   = 8
	feiHPDA  = 10
	feiCCCID = 8
	feiTTAG  = 10
	feiDATAL = 16
)

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
		Check(Requirement{ID: "TCP-IC-001", Section: "NVMe/TCP 1.0 3.6.2.3", Level: Mandatory,
			Title: "ICResp carries PFV 0"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			s.Conform(fmt.Sprintf("PFV %d", r.ICResp.PFV), "PFV 0")
		})
		Check(Requirement{ID: "TCP-IC-002", Section: "NVMe/TCP 1.0 3.6.2.3", Level: Mandatory,
			Title: "ICResp has HLEN 128, PLEN 128, PDO 0 and no digest flags"}, func(ctx context.Context, s *Spec) {
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
		Check(Requirement{ID: "TCP-IC-003", Section: "NVMe/TCP 1.0 3.6.2.3", Level: Mandatory,
			Title: "ICResp CPDA is at most 31"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			obs := "CPDA <= 31"
			if r.ICResp.CPDA > 31 {
				obs = fmt.Sprintf("CPDA %d", r.ICResp.CPDA)
			}
			s.Conform(obs, "CPDA <= 31")
		})
		Check(Requirement{ID: "TCP-IC-004", Section: "NVMe/TCP 1.0 3.6.2.3", Level: Mandatory,
			Title: "ICResp MAXH2CDATA is at least 4096 and a multiple of 4"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			m := r.ICResp.MAXH2CDATA
			obs := "valid MAXH2CDATA"
			if m < tcp.MinMaxH2CData || m%4 != 0 {
				obs = fmt.Sprintf("MAXH2CDATA %d", m)
			}
			s.Conform(obs, "valid MAXH2CDATA")
		})
		Check(Requirement{ID: "TCP-IC-005", Section: "NVMe/TCP 1.0 3.6.2.3", Level: Mandatory,
			Title: "ICResp enables no digest the host did not ask for"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			s.Conform(fmt.Sprintf("DGST %#x", r.ICResp.DGST), "DGST 0x0")
		})
		Check(Requirement{ID: "TCP-IC-006", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Mandatory,
			Title: "an ICReq with HPDA 0 is accepted"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			_, err := r.Initialize(tcp.ICReq{HPDA: 0})
			s.Conform(icOutcome(r, err), "ICResp")
		})
		Check(Requirement{ID: "TCP-IC-007", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Optional,
			Title: "an ICReq with HPDA 31 is accepted and C2H data is then 128-byte aligned, or refused with FES 6 FEI 10"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			_, err := r.Initialize(tcp.ICReq{HPDA: 31})
			obs := icOutcome(r, err)
			if obs != "ICResp" {
				if obs == termReq(tcp.FESUnsupportedParameter, feiHPDA) {
					s.Lacks("host PDU data alignment other than 0 (refused with FES 6 FEI 10, as allowed)")
				}
				s.Conform(obs, "ICResp")
				s.Lacks("host PDU data alignment other than 0")
			}
			// The host's receive rules now require PDO % 128 == 0: an
			// Identify's C2HData proves the controller honours HPDA.
			_, err = s.adminConnect(r)
			s.Must(err, "admin Connect with HPDA 31")
			s.Must(propSet(r, nvme.PropCC, false, ccEnable), "Property Set CC.EN=1")
			_, _, err = r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
			s.Conform(Outcome(err), "success")
		})
		Check(Requirement{ID: "TCP-IC-008", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Mandatory,
			Title: "an ICReq with HPDA 32 (out of range) is a fatal Invalid PDU Header Field at HPDA"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{HPDA: 32}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, termReq(tcp.FESInvalidHeaderField, feiHPDA), true)
		})
		Check(Requirement{ID: "TCP-IC-009", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Mandatory,
			Title: "an ICReq with PFV 1 is a fatal Unsupported Parameter at PFV"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{PFV: 1}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, termReq(tcp.FESUnsupportedParameter, feiPFV), true)
		})
		for i, d := range []uint8{0, tcp.DgstHeader, tcp.DgstData, tcp.DgstHeader | tcp.DgstData} {
			level := Optional
			if d == 0 {
				level = Mandatory
			}
			Check(Requirement{ID: fmt.Sprintf("TCP-IC-%03d", 10+i), Section: "NVMe/TCP 1.0 3.6.2.3", Level: level,
				Title: fmt.Sprintf("digests %s: ICResp grants them (or refuses only in DGST) and commands then work with them", digestName(d))},
				func(ctx context.Context, s *Spec) {
					r := s.Dial(ctx)
					_, err := r.Initialize(tcp.ICReq{DGST: d})
					s.Conform(icOutcome(r, err), "ICResp")
					got := r.ICResp.DGST
					if got&^d != 0 {
						s.Conform(fmt.Sprintf("DGST %#x", got), fmt.Sprintf("DGST %#x", d))
					}
					// Whatever was granted must work: Connect, enable and
					// an Identify moving 4 KiB of digested data.
					_, err = s.adminConnect(r)
					s.Must(err, "admin Connect")
					s.Must(propSet(r, nvme.PropCC, false, ccEnable), "Property Set CC.EN=1")
					_, data, err := r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
					s.Conform(Outcome(err), "success")
					if len(data) != 4096 {
						Fail(fmt.Sprintf("Identify returned %d bytes", len(data)))
					}
					if got != d {
						s.Lacks(fmt.Sprintf("the %s digest (ICResp DGST %#x for a request of %#x)", digestName(d&^got), got, d))
					}
				})
		}
		Check(Requirement{ID: "TCP-IC-014", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Mandatory,
			Title: "a CapsuleCmd before ICReq is a fatal PDU Sequence Error"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sqe := nvme.PropertyGetCmd(1, nvme.PropCAP, true)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, termReqFES(tcp.FESPDUSequenceError), false)
		})
		Check(Requirement{ID: "TCP-IC-015", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Mandatory,
			Title: "a second ICReq on an initialized connection is a fatal PDU Sequence Error"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, termReqFES(tcp.FESPDUSequenceError), false)
		})
		Check(Requirement{ID: "TCP-IC-016", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Mandatory,
			Title: "an H2CData before ICReq is a fatal PDU Sequence Error"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.H2CData{CCCID: 1, DATAL: 4, Last: true}, make([]byte, 4), tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, termReqFES(tcp.FESPDUSequenceError), false)
		})
		Check(Requirement{ID: "TCP-IC-017", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "an ICReq with HLEN other than 128 is a fatal Invalid PDU Header Field at HLEN"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
			b[2] = 64
			sendQuiet(r, b)
			s.ExpectFatal(ctx, r, termReq(tcp.FESInvalidHeaderField, feiHLEN), true)
		})
		Check(Requirement{ID: "TCP-IC-018", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "an ICReq with PLEN other than 128 is a fatal Invalid PDU Header Field at PLEN"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
			setPLEN(b, 132)
			b = append(b, 0, 0, 0, 0)
			sendQuiet(r, b)
			s.ExpectFatal(ctx, r, termReq(tcp.FESInvalidHeaderField, feiPLEN), true)
		})
		Check(Requirement{ID: "TCP-IC-019", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Recommended,
			Title: "an ICReq asking for 65536 outstanding R2Ts (MAXR2T 0xFFFF) is accepted"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			_, err := r.Initialize(tcp.ICReq{MAXR2T: 0xFFFF})
			s.Conform(icOutcome(r, err), "ICResp")
		})
	})

	Describe("PDU validation", Label("transport-pdu"), func() {
		// bad sends b after a plain initialization and an admin Connect.
		bad := func(ctx context.Context, s *Spec, build func(r *initiator.Raw) []byte, want string, keepFEI bool, alts ...string) {
			GinkgoHelper()
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, build(r))
			s.ExpectFatal(ctx, r, want, keepFEI, alts...)
		}
		propCmd := func(r *initiator.Raw) []byte {
			return encode(r, &tcp.CapsuleCmd{SQE: nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)}, nil)
		}
		for i, t := range []uint8{0x08, 0x0A, 0x7F, 0xFF} {
			Check(Requirement{ID: fmt.Sprintf("TCP-PDU-%03d", 1+i), Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
				Title: fmt.Sprintf("a PDU of undefined type %#02x is a fatal Invalid PDU Header Field at the type", t)},
				func(ctx context.Context, s *Spec) {
					bad(ctx, s, func(*initiator.Raw) []byte { return header(tcp.PDUType(t), 0, 24, 24) },
						termReq(tcp.FESInvalidHeaderField, feiType), true)
				})
		}
		for i, c := range []struct {
			t    tcp.PDUType
			hlen uint8
			data int
		}{{tcp.TypeICResp, 128, 0}, {tcp.TypeC2HTermReq, 24, 0}, {tcp.TypeCapsuleResp, 24, 0}, {tcp.TypeC2HData, 24, 4}, {tcp.TypeR2T, 24, 0}} {
			Check(Requirement{ID: fmt.Sprintf("TCP-PDU-%03d", 5+i), Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
				Title: fmt.Sprintf("a controller-to-host %v sent by the host is a fatal Invalid PDU Header Field at the type", c.t)},
				func(ctx context.Context, s *Spec) {
					bad(ctx, s, func(*initiator.Raw) []byte {
						b := header(c.t, 0, c.hlen, uint32(int(c.hlen)+c.data))
						if c.data > 0 {
							b[3] = c.hlen
						}
						return append(b, make([]byte, c.data)...)
					}, termReq(tcp.FESInvalidHeaderField, feiType), true)
				})
		}
		Check(Requirement{ID: "TCP-PDU-010", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd with HLEN 24 is a fatal Invalid PDU Header Field at HLEN"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := propCmd(r)
				b[2] = 24
				return rehash(r, b)
			}, termReq(tcp.FESInvalidHeaderField, feiHLEN), true)
		})
		Check(Requirement{ID: "TCP-PDU-011", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "an H2CData with HLEN 72 is a fatal Invalid PDU Header Field at HLEN"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := header(tcp.TypeH2CData, tcp.FlagLastPDU, 72, 76)
				b[3] = 72
				return append(b, 0, 0, 0, 0)
			}, termReq(tcp.FESInvalidHeaderField, feiHLEN), true)
		})
		Check(Requirement{ID: "TCP-PDU-012", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd whose PLEN is shorter than its header is a fatal Invalid PDU Header Field at PLEN"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := propCmd(r)
				setPLEN(b, 64)
				return rehash(r, b)
			}, termReq(tcp.FESInvalidHeaderField, feiPLEN), true)
		})
		Check(Requirement{ID: "TCP-PDU-013", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd with PLEN 8 (no room for its header) is a fatal Invalid PDU Header Field at PLEN"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				b := propCmd(r)
				setPLEN(b, 8)
				return rehash(r, b)
			}, termReq(tcp.FESInvalidHeaderField, feiPLEN), true)
		})
		Check(Requirement{ID: "TCP-PDU-014", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd whose PDO is not a multiple of the CPDA alignment is a fatal Invalid PDU Header Field at PDO"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cd := nvme.ConnectData{CNTLID: nvme.CNTLIDDynamic, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
			cmd := nvme.Connect{SQSIZE: initiator.AdminQueueSize - 1}
			b := encode(r, &tcp.CapsuleCmd{SQE: cmd.SQE(r.NextCID())}, cd.Append(nil))
			pdo := int(b[3]) + 2 // 74 with CPDA 0: never a multiple of 4
			sendQuiet(r, rehash(r, repad(b, pdo)))
			s.ExpectFatal(ctx, r, termReq(tcp.FESInvalidHeaderField, feiPDO), true)
		})
		Check(Requirement{ID: "TCP-PDU-015", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd whose PDO points inside its header is a fatal Invalid PDU Header Field at PDO"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cd := nvme.ConnectData{CNTLID: nvme.CNTLIDDynamic, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
			cmd := nvme.Connect{SQSIZE: initiator.AdminQueueSize - 1}
			b := encode(r, &tcp.CapsuleCmd{SQE: cmd.SQE(r.NextCID())}, cd.Append(nil))
			sendQuiet(r, rehash(r, repad(b, 64)))
			s.ExpectFatal(ctx, r, termReq(tcp.FESInvalidHeaderField, feiPDO), true)
		})
		Check(Requirement{ID: "TCP-PDU-016", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd with HDGSTF set on a connection without header digests is a fatal Invalid PDU Header Field at FLAGS"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				o := r.Encoding()
				o.Header = true
				return tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)}, nil, o)
			}, termReq(tcp.FESInvalidHeaderField, feiFlags), true)
		})
		Check(Requirement{ID: "TCP-PDU-017", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd without HDGSTF on a connection with header digests is a fatal Invalid PDU Header Field at FLAGS"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, tcp.ICReq{DGST: tcp.DgstHeader})
			if !r.Encoding().Header {
				s.Lacks("header digests")
			}
			_, err := s.adminConnect(r)
			s.Must(err, "admin Connect")
			o := r.Encoding()
			o.Header = false
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)}, nil, o))
			s.ExpectFatal(ctx, r, termReq(tcp.FESInvalidHeaderField, feiFlags), true)
		})
		Check(Requirement{ID: "TCP-PDU-018", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd with DDGSTF set on a connection without data digests is a fatal Invalid PDU Header Field at FLAGS"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			o := r.Encoding()
			o.Data = true
			cd := nvme.ConnectData{CNTLID: nvme.CNTLIDDynamic, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
			cmd := nvme.Connect{SQSIZE: initiator.AdminQueueSize - 1}
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: cmd.SQE(r.NextCID())}, cd.Append(nil), o))
			s.ExpectFatal(ctx, r, termReq(tcp.FESInvalidHeaderField, feiFlags), true)
		})
		Check(Requirement{ID: "TCP-PDU-019", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "a CapsuleCmd with a wrong header digest is a fatal Header Digest Error"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, tcp.ICReq{DGST: tcp.DgstHeader})
			if !r.Encoding().Header {
				s.Lacks("header digests")
			}
			_, err := s.adminConnect(r)
			s.Must(err, "admin Connect")
			b := propCmd(r)
			b[tcp.HLenCapsuleCmd] ^= 0x5A
			sendQuiet(r, b)
			s.ExpectFatal(ctx, r, termReqFES(tcp.FESHeaderDigestError), false)
		})
		Check(Requirement{ID: "TCP-PDU-020", Section: "NVMe/TCP 1.0 3.6.2.4", Level: Mandatory,
			Title: "after an H2CTermReq from the host the controller closes the connection without a C2HTermReq"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.TermReq{H2C: true, FES: tcp.FESInvalidHeaderField, FEI: 0}, make([]byte, 8), tcp.EncodeOptions{}))
			obs := FatalOutcome(r, s.fatalWait())
			s.Conform(obs, "close without C2HTermReq")
			s.TargetAlive(ctx)
		})
		Check(Requirement{ID: "TCP-PDU-021", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "an H2CData PDU with no R2T outstanding is a fatal error (Invalid PDU Header Field at TTAG)"}, func(ctx context.Context, s *Spec) {
			bad(ctx, s, func(r *initiator.Raw) []byte {
				return h2cData(r, 1, 0, 0, make([]byte, 512), true)
			}, termReq(tcp.FESInvalidHeaderField, feiTTAG), true, termReq(tcp.FESPDUSequenceError, 0))
		})
	})

	Describe("fatal error handling", Label("transport-fatal"), func() {
		// termReqOf provokes an unknown-type fatal error and returns the
		// target's C2HTermReq header and error data, or skips with the
		// observation when there is none (and the profile says so).
		termReqOf := func(ctx context.Context, s *Spec, sent []byte) (tcp.CommonHeader, []byte) {
			GinkgoHelper()
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, sent)
			p, ch, data, err := r.Recv(s.fatalWait())
			if err != nil {
				s.Conform(fatalErrOutcome(err), "C2HTermReq")
				s.TargetAlive(ctx)
				Skip(s.Req.ID + ": the target sends no C2HTermReq (a documented finding), nothing more to check")
			}
			if _, ok := p.(*tcp.TermReq); !ok {
				s.Conform("PDU "+p.Type().String(), "C2HTermReq")
			}
			return ch, data
		}
		unknown := append(header(0x0A, 0, 24, 24), make([]byte, 16)...)
		Check(Requirement{ID: "TCP-FATAL-001", Section: "NVMe/TCP 1.0 3.6.2.5", Level: Mandatory,
			Title: "a C2HTermReq has HLEN 24 and PLEN within 24..152"}, func(ctx context.Context, s *Spec) {
			ch, _ := termReqOf(ctx, s, unknown)
			obs := "valid C2HTermReq lengths"
			if ch.HLEN != 24 || ch.PLEN < 24 || ch.PLEN > 152 {
				obs = fmt.Sprintf("C2HTermReq hlen %d plen %d", ch.HLEN, ch.PLEN)
			}
			s.Conform(obs, "valid C2HTermReq lengths")
		})
		Check(Requirement{ID: "TCP-FATAL-002", Section: "NVMe/TCP 1.0 3.6.2.5", Level: Mandatory,
			Title: "a C2HTermReq for an invalid header carries the offending PDU header as its error data"}, func(ctx context.Context, s *Spec) {
			_, data := termReqOf(ctx, s, unknown)
			obs := "offending header"
			n := min(len(data), len(unknown))
			if n < tcp.CommonHeaderSize || !bytes.Equal(data[:n], unknown[:n]) {
				obs = fmt.Sprintf("error data % x", data)
			}
			s.Conform(obs, "offending header")
		})
		Check(Requirement{ID: "TCP-FATAL-003", Section: "NVMe/TCP 1.0 3.5.1", Level: Mandatory,
			Title: "after sending a C2HTermReq the controller closes the connection"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			sendQuiet(r, unknown)
			obs := FatalOutcome(r, s.fatalWait())
			if obs == "close without C2HTermReq" {
				s.TargetAlive(ctx)
				return // closing is what this check asks for
			}
			s.Conform(withoutFEI(obs), termReqFES(tcp.FESInvalidHeaderField))
		})
		Check(Requirement{ID: "TCP-FATAL-004", Section: "NVMe/TCP 1.0 3.5.1", Level: Mandatory,
			Title: "fatal errors end one connection only: after eight in a row a full association still works"}, func(ctx context.Context, s *Spec) {
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
		Check(Requirement{ID: "TCP-FATAL-005", Section: "NVMe/TCP 1.0 3.5.1", Level: Mandatory,
			Title: "a fatal error on one connection leaves the other connections of the target working"}, func(ctx context.Context, s *Spec) {
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
		Check(Requirement{ID: "TCP-DATA-001", Section: "NVMe/TCP 1.0 3.3.2.1", Level: Mandatory,
			Title: "C2HData for a read run in order to the end of the buffer, LAST_PDU on the last; SUCCESS replaces the response, from a controller that can disable SQ flow control"}, func(ctx context.Context, s *Spec) {
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
			// The next PDU on the queue must answer the next command, not
			// complete the Identify a second time.
			pg := nvme.PropertyGetCmd(r.NextCID(), nvme.PropVS, false)
			s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: pg}, nil), "send Property Get")
			p, _, _, err := r.Recv(0)
			s.Must(err, "receive the Property Get response")
			obs := "the next command's response"
			switch resp, ok := p.(*tcp.CapsuleResp); {
			case !ok:
				obs = "PDU " + p.Type().String()
			case resp.CQE.CID == sqe.CID:
				obs = "a Response Capsule after C2HData SUCCESS"
			case resp.CQE.CID != pg.CID:
				obs = fmt.Sprintf("a response for CID %d", resp.CQE.CID)
			}
			s.Conform(obs, "the next command's response")
			// Can the controller disable SQ flow control? Ask on a new
			// association.
			r2 := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r2, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: nvme.CNTLIDDynamic, CATTR: nvme.CATTRDisableSQFlow})
			obs = "SUCCESS from a controller that disables SQ flow control"
			switch {
			case err != nil:
				obs = "SUCCESS from a controller that fails a Connect asking to disable SQ flow control (" + Outcome(err) + ")"
			case cqe.SQHD != 0xFFFF:
				obs = "SUCCESS from a controller that keeps SQ flow control when asked to disable it"
			}
			s.Conform(obs, "SUCCESS from a controller that disables SQ flow control")
		})
		Check(Requirement{ID: "TCP-DATA-002", Section: "NVMe/TCP 1.0 3.6.2.10", Level: Mandatory,
			Title: "an R2T for a write names the command, a transfer tag and a range within the command's data"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			n := io.r2tSize(0)
			sqe, r2t := s.startWrite(io, n)
			obs := "valid R2T"
			if r2t.CCCID != sqe.CID || r2t.R2TL == 0 || uint64(r2t.R2TO)+uint64(r2t.R2TL) > uint64(n) {
				obs = fmt.Sprintf("R2T CCCID %d R2TO %d R2TL %d for CID %d of %d bytes", r2t.CCCID, r2t.R2TO, r2t.R2TL, sqe.CID, n)
			}
			s.Conform(obs, "valid R2T")
		})
		Check(Requirement{ID: "TCP-DATA-003", Section: "NVMe/TCP 1.0 3.6.2.2", Level: Mandatory,
			Title: "with MAXR2T 0 the controller never has more than one R2T outstanding for a command"}, func(ctx context.Context, s *Spec) {
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
		Check(Requirement{ID: "TCP-DATA-004", Section: "NVMe/TCP 1.0 3.6.2.8", Level: Mandatory,
			Title: "an H2CData with a transfer tag the controller did not issue is a fatal Invalid PDU Header Field at TTAG"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			sendQuiet(io.io, h2cData(io.io, sqe.CID, r2t.TTAG^0x5A5A, 0, make([]byte, io.bs), true))
			s.ExpectFatal(ctx, io.io, termReq(tcp.FESInvalidHeaderField, feiTTAG), true)
		})
		Check(Requirement{ID: "TCP-DATA-005", Section: "NVMe/TCP 1.0 3.6.2.8", Level: Mandatory,
			Title: "an H2CData whose CCCID is not the R2T's command is a fatal Invalid PDU Header Field at CCCID"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			sendQuiet(io.io, h2cData(io.io, sqe.CID+100, r2t.TTAG, 0, make([]byte, io.bs), true))
			s.ExpectFatal(ctx, io.io, termReq(tcp.FESInvalidHeaderField, feiCCCID), true)
		})
		Check(Requirement{ID: "TCP-DATA-006", Section: "NVMe/TCP 1.0 3.6.2.8", Level: Mandatory,
			Title: "an H2CData that skips ahead (DATAO not the next expected offset) is a fatal Data Transfer Out of Range"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(2*io.bs))
			sendQuiet(io.io, h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO+io.bs, make([]byte, io.bs), true))
			s.ExpectFatal(ctx, io.io, termReqFES(tcp.FESDataOutOfRange), false)
		})
		Check(Requirement{ID: "TCP-DATA-007", Section: "NVMe/TCP 1.0 3.6.2.8", Level: Mandatory,
			Title: "an H2CData reaching beyond the R2T's range is a fatal Data Transfer Out of Range"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			sendQuiet(io.io, h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO, make([]byte, r2t.R2TL+io.bs), true))
			s.ExpectFatal(ctx, io.io, termReqFES(tcp.FESDataOutOfRange), false)
		})
		Check(Requirement{ID: "TCP-DATA-008", Section: "NVMe/TCP 1.0 3.6.2.8", Level: Mandatory,
			Title: "an H2CData carrying more than MAXH2CDATA bytes is a fatal Data Transfer Limit Exceeded"}, func(ctx context.Context, s *Spec) {
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
			s.ExpectFatal(ctx, io.io, termReqFES(tcp.FESDataLimitExceeded), false)
		})
		Check(Requirement{ID: "TCP-DATA-009", Section: "NVMe/TCP 1.0 3.6.2.8", Level: Mandatory,
			Title: "an H2CData whose DATAL disagrees with its PLEN is a fatal Invalid PDU Header Field (PLEN or DATAL)"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			b := h2cData(io.io, sqe.CID, r2t.TTAG, 0, make([]byte, io.bs), true)
			binary.LittleEndian.PutUint32(b[16:], io.bs/2) // DATAL
			sendQuiet(io.io, rehash(io.io, b))
			s.ExpectFatal(ctx, io.io, termReq(tcp.FESInvalidHeaderField, feiPLEN), true, termReq(tcp.FESInvalidHeaderField, feiDATAL))
		})
		Check(Requirement{ID: "TCP-DATA-010", Section: "NVMe/TCP 1.0 3.6.2.8", Level: Mandatory,
			Title: "a write whose data comes by R2T/H2CData in several PDUs completes successfully"}, func(ctx context.Context, s *Spec) {
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
		Check(Requirement{ID: "TCP-DATA-011", Section: "NVMe/TCP 1.0 3.6.2.10", Level: Mandatory,
			Title: "a write small enough for in-capsule data but sent without it still gets an R2T and completes"}, func(ctx context.Context, s *Spec) {
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
		Check(Requirement{ID: "TCP-DGST-001", Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
			Title: "an H2CData with a wrong header digest is a fatal Header Digest Error"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, tcp.ICReq{DGST: tcp.DgstHeader})
			if !io.io.Encoding().Header {
				s.Lacks("header digests")
			}
			sqe, r2t := s.startWrite(io, io.r2tSize(0))
			b := h2cData(io.io, sqe.CID, r2t.TTAG, 0, make([]byte, io.bs), true)
			b[tcp.HLenData] ^= 0xFF
			sendQuiet(io.io, b)
			s.ExpectFatal(ctx, io.io, termReqFES(tcp.FESHeaderDigestError), false)
		})
		// digestError sends a write whose data digest is wrong, in the
		// capsule or in an H2CData, and renders the outcome.
		digestError := func(ctx context.Context, s *Spec, inCapsule bool) (string, *ioSetup) {
			GinkgoHelper()
			io := s.SetupIO(ctx, tcp.ICReq{DGST: tcp.DgstData})
			if !io.io.Encoding().Data {
				s.Lacks("data digests")
			}
			data := bytes.Repeat([]byte{0x77}, int(io.bs))
			var b []byte
			sqe := nvme.WriteCmd(io.nsid, 0, 1)
			sqe.CID = io.io.NextCID()
			if inCapsule {
				if io.inCapsule() < io.bs {
					s.Lacks(fmt.Sprintf("in-capsule data of one %d-byte block (IOCCSZ %d)", io.bs, io.id.IOCCSZ))
				}
				nvme.SetInCapsule(&sqe, io.bs)
				b = encode(io.io, &tcp.CapsuleCmd{SQE: sqe}, data)
			} else {
				var r2t *tcp.R2T
				sqe, r2t = s.startWrite(io, io.r2tSize(0))
				data = bytes.Repeat([]byte{0x77}, int(r2t.R2TL))
				b = h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO, data, r2t.R2TO+r2t.R2TL == sqe.DPTR.Length)
			}
			b[len(b)-1] ^= 0xFF
			sendQuiet(io.io, b)
			return awaitResponse(io.io, sqe.CID, s.fatalWait()), io
		}
		isFatal := func(obs string) bool {
			return obs == "close without C2HTermReq" || len(obs) > 10 && obs[:10] == "C2HTermReq"
		}
		for i, inCapsule := range []bool{true, false} {
			where := "in-capsule data"
			if !inCapsule {
				where = "an H2CData PDU"
			}
			Check(Requirement{ID: fmt.Sprintf("TCP-DGST-%03d", 2+2*i), Section: "NVMe/TCP 1.0 3.6.1", Level: Mandatory,
				Title: fmt.Sprintf("a data digest error in %s never completes the command successfully: Transient Transport Error or a fatal error", where)},
				func(ctx context.Context, s *Spec) {
					obs, _ := digestError(ctx, s, inCapsule)
					if isFatal(obs) {
						AddReportEntry("observed", fmt.Sprintf("%s: data digest error handled as fatal (%s)", s.Req.ID, obs))
						s.TargetAlive(ctx)
						return
					}
					s.Conform(obs, StatusOutcome(nvme.StatusTransientTransport))
				})
			Check(Requirement{ID: fmt.Sprintf("TCP-DGST-%03d", 3+2*i), Section: "NVMe/TCP 1.0 3.6.1", Level: Recommended,
				Title: fmt.Sprintf("a data digest error in %s fails only that command (00/22) and the connection keeps working", where)},
				func(ctx context.Context, s *Spec) {
					obs, io := digestError(ctx, s, inCapsule)
					if obs == StatusOutcome(nvme.StatusTransientTransport) {
						sqe := nvme.ReadCmd(io.nsid, 0, 1)
						nvme.SetDataLength(&sqe, io.bs)
						_, _, err := io.io.Command(sqe, nil)
						if err != nil {
							obs += " then the connection fails"
						}
					}
					s.Conform(obs, StatusOutcome(nvme.StatusTransientTransport))
					s.TargetAlive(ctx)
				})
		}
	})
})

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
