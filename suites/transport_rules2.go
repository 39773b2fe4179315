package suites

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// More NVMe/TCP transport rules: one queue per connection, in-capsule
// data in admin capsules up to 8 KiB, H2CData after an R2T was satisfied,
// R2Ts of different commands serviced out of order, the header a
// C2HTermReq carries, and the layout and reserved fields of the PDUs a
// controller sends (CapsuleResp, R2T, C2HData, C2HTermReq). Held against
// NVMe/TCP 1.0 3.2, 3.3.1, 3.3.2.2, 3.5.1 and 3.6.2.

// Sections of NVMe/TCP 1.0 only these checks cite.
const (
	secQueueModel  = "NVMe/TCP 1.0 3.2"
	secCapsuleResp = "NVMe/TCP 1.0 3.6.2.7"
	secR2TFig      = "NVMe/TCP 1.0 3.6.2.10"
	secReserved    = "NVMe Base 2.2 1.4.2" // reserved fields are cleared to zero by their sender
)

// digestIC asks for header digests, for the second pass of checks that
// look at PDU headers.
var digestIC = tcp.ICReq{DGST: tcp.DgstHeader}

// rawHeader is a copy of the header (with any header digest) of the PDU
// r received last.
func rawHeader(r *initiator.Raw) []byte {
	return append([]byte(nil), r.Conn.RawHeader()...)
}

// termReqAfter reads r's PDUs for up to wait, passing over R2Ts and the
// response to cid (a command the provoked error did not concern), and
// returns the first C2HTermReq with its raw header and data, or, without
// one, the observation in FatalOutcome's words.
func termReqAfter(r *initiator.Raw, cid uint16, wait time.Duration) (t *tcp.TermReq, hdr, data []byte, obs string) {
	end := time.Now().Add(wait)
	for {
		p, _, d, err := r.Recv(max(time.Until(end), time.Millisecond))
		if t := refusedTermReq(err); t != nil {
			// A C2HTermReq the host library refused for its lengths
			// still says what the error was, and its header is kept;
			// TCP-FATAL-001 judges the lengths.
			_ = r.Close()
			return t, refusedHeader(err, tcp.TypeC2HTermReq, tcp.HLenTermReq), nil, termReq(t.FES, t.FEI)
		}
		if err != nil {
			return nil, nil, nil, fatalErrOutcome(err)
		}
		switch v := p.(type) {
		case *tcp.TermReq:
			hdr = rawHeader(r)
			_ = r.Close() // the host's duty (NVMe/TCP 1.0 3.5.1)
			return v, hdr, d, termReq(v.FES, v.FEI)
		case *tcp.R2T:
			continue
		case *tcp.CapsuleResp:
			if v.CQE.CID == cid {
				continue
			}
		}
		return nil, nil, nil, "PDU " + p.Type().String()
	}
}

// skipWithoutTermReq skips a check that judges a C2HTermReq when the
// target ends connections without one as its rule (termReqOwner judges
// that once), or when the target did not treat the PDU as fatal at all
// and another check owns that verdict.
func (s *Spec) skipWithoutTermReq(ctx context.Context, obs, owner string) {
	GinkgoHelper()
	if obs == noTermReq && s.closesWithoutTermReq(ctx) {
		Skip(fmt.Sprintf("%s: the target ends connections without a C2HTermReq on every fatal error, so there is none to examine (%s judges that)", s.Req.ID, termReqOwner))
	}
	if obs == "no reaction" || strings.HasPrefix(obs, "PDU ") {
		Skip(fmt.Sprintf("%s: no C2HTermReq to examine (%s; %s judges that)", s.Req.ID, obs, owner))
	}
}

// sendData answers an R2T with H2CData PDUs of at most MAXH2CDATA bytes
// each, the last with LAST_PDU, encoded into one buffer.
func sendData(r *initiator.Raw, cccid uint16, r2t *tcp.R2T) []byte {
	chunk := r.ICResp.MAXH2CDATA
	if chunk == 0 || chunk > r2t.R2TL {
		chunk = r2t.R2TL
	}
	var b []byte
	for off := uint32(0); off < r2t.R2TL; off += chunk {
		n := min(chunk, r2t.R2TL-off)
		b = append(b, h2cData(r, cccid, r2t.TTAG, r2t.R2TO+off, make([]byte, n), off+n == r2t.R2TL)...)
	}
	return b
}

// pduLayout judges the common header (and the reserved bytes given) of a
// CapsuleResp, R2T or C2HData the controller sent: "" when all is as
// NVMe/TCP 1.0 3.6.2.7, 3.6.2.9 and 3.6.2.10 define it, otherwise what is
// not.
func pduLayout(hdr []byte, hdgst bool) string {
	var ch tcp.CommonHeader
	if err := ch.Decode(hdr); err != nil {
		return err.Error()
	}
	var bad []string
	if ch.HLEN != 24 {
		bad = append(bad, fmt.Sprintf("HLEN %d", ch.HLEN))
	}
	hd := ch.Flags&tcp.FlagHDGST != 0
	if hd != hdgst {
		bad = append(bad, fmt.Sprintf("HDGSTF %v with header digest %v", hd, hdgst))
	}
	// Reserved: FLAGS 7:1 of CapsuleResp and R2T, 7:4 of C2HData (3 is
	// SUCCESS, 2 LAST_PDU, 1 DDGSTF); PDO of the two without data; bytes
	// 23:20 of R2T and C2HData, 11:10 of C2HData.
	var flagsRes uint8 = 0xFE
	var res [][2]int
	switch ch.Type {
	case tcp.TypeCapsuleResp:
	case tcp.TypeR2T:
		res = [][2]int{{20, 24}}
	case tcp.TypeC2HData:
		flagsRes = 0xF0
		res = [][2]int{{10, 12}, {20, 24}}
	}
	if ch.Flags&flagsRes != 0 {
		bad = append(bad, fmt.Sprintf("reserved FLAGS bits %#02x", ch.Flags&flagsRes))
	}
	if ch.Type != tcp.TypeC2HData {
		want := uint32(24)
		if hdgst {
			want += tcp.DigestSize
		}
		if ch.PLEN != want {
			bad = append(bad, fmt.Sprintf("PLEN %d", ch.PLEN))
		}
		if ch.PDO != 0 {
			bad = append(bad, fmt.Sprintf("PDO %d", ch.PDO))
		}
	}
	for _, rr := range res {
		if rr[1] <= len(hdr) && !allBytes(hdr[rr[0]:rr[1]], 0) {
			bad = append(bad, fmt.Sprintf("reserved bytes %d:%d % x", rr[1]-1, rr[0], hdr[rr[0]:rr[1]]))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return ch.Type.String() + " " + strings.Join(bad, ", ")
}

var _ = Describe("Transport", Label("transport"), func() {
	Describe("queue model, capsules and R2T servicing", Label("transport-rules2"), func() {
		// 3.2: "An NVMe/TCP connection is associated with a single Admin
		// or I/O Submission Queue and Completion Queue pair. Multiplexing
		// two or more Submission Queues or Completion Queues on a single
		// NVMe/TCP connection is not supported." A Connect for a second
		// queue on a connection that carries one must not succeed; how
		// it fails (a status, a fatal error, the connection ending) the
		// text leaves open.
		Check(Requirement{ID: "TCP-IC-021", Section: secQueueModel, Keyword: Indicative, Binds: Controller,
			Text:       "An NVMe/TCP connection is associated with a single Admin or I/O Submission Queue and Completion Queue pair. Multiplexing two or more Submission Queues or Completion Queues on a single NVMe/TCP connection is not supported",
			Statements: []string{"T-3.2-01"},
			Title:      "a Connect for I/O queue 2 on the connection of I/O queue 1, and one for I/O queue 2 on the admin queue's connection, do not succeed"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, cp := s.EnabledAdmin(ctx, plainIC)
			if cp.MQES() == 0 {
				s.skipIfMQESZero(cp)
			}
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			cqe, err := s.connect(io, connectArgs{QID: 2, SQSIZE: 15, CNTLID: cntlid})
			onIO := ConnectOutcome(cqe, err)
			cqe, err = s.connect(admin, connectArgs{QID: 2, SQSIZE: 15, CNTLID: cntlid})
			onAdmin := ConnectOutcome(cqe, err)
			AddReportEntry("observed", fmt.Sprintf("%s: Connect I/O queue 2 on I/O queue 1's connection: %s; on the admin queue's: %s", s.Req.ID, onIO, onAdmin))
			verdict := func(o string) string {
				if o == "success" {
					return "success: two queues on one connection"
				}
				return "refused"
			}
			s.Conform("on I/O queue 1's connection: "+verdict(onIO)+"; on the admin queue's: "+verdict(onAdmin), "on I/O queue 1's connection: refused; on the admin queue's: refused")
		})

		// 3.3.1, Figure 11 note 1: "NVMe/TCP controllers must support
		// in-capsule data for Fabrics and Admin Command Capsules", up to
		// 8,192 bytes. The command carrying them is Set Features Keep
		// Alive Timer with the KATO in use (harmless), whose status is
		// the command's business: any status but SGL Descriptor Type
		// Invalid (in-capsule data refused) shows the capsule accepted. A
		// fatal error, the connection ending or silence do not.
		Check(Requirement{ID: "TCP-PDU-030", Section: secTCPCapsules + " Fig. 11", Keyword: Shall, Binds: Controller,
			Text:       "The maximum amount of in-capsule data for Fabrics and Admin Commands is 8,192 bytes ... NVMe/TCP controllers must support in-capsule data for Fabrics and Admin Command Capsules",
			Statements: []string{"T-3.3.1-03"},
			Title:      "an admin command capsule with 8,192 bytes of in-capsule data is answered with a response capsule, not a fatal error"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			_, err := s.adminConnect(r)
			s.Must(err, "admin Connect")
			s.enableRaw(ctx, r)
			sqe := nvme.SetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, s.rawAdminKATO(), false)
			sqe.Flags |= nvme.PSDTSGL
			nvme.SetInCapsule(&sqe, 8192) // Command sends the data in the capsule
			_, _, err = r.Command(sqe, make([]byte, 8192))
			obs := commandOutcome(err)
			var st nvme.Status
			if errors.As(err, &st) && st != nvme.StatusSGLInvalidType {
				AddReportEntry("observed", fmt.Sprintf("%s: the command completed with %s", s.Req.ID, obs))
				obs = "success"
			}
			s.Conform(obs, "success")
		})

		// 3.3.2.2: "Reception of an unexpected H2CData PDU is treated as a
		// fatal transport error with the Fatal Error Status field in the
		// C2HTermReq PDU set to "PDU Sequence Error"", the text's example
		// being an H2CData with LAST_PDU cleared after the one with
		// LAST_PDU set for the same R2T. Once that R2T is satisfied its
		// TTAG may be unknown to the controller, which is Invalid PDU
		// Header Field at TTAG: both answers pass.
		Check(Requirement{ID: "TCP-DATA-032", Section: secH2CData, Keyword: Indicative, Binds: Controller,
			Text:       "Reception of an unexpected H2CData PDU is treated as a fatal transport error with the Fatal Error Status field in the C2HTermReq PDU set to \"PDU Sequence Error\" ... Reception of a H2CData PDU with the LAST_PDU flag cleared to '0' after reception of a H2CData PDU with the LAST_PDU flag set to '1' and is associated with the same R2T PDU",
			Statements: []string{"T-3.3.2.2-14"},
			Title:      "an H2CData for an R2T already satisfied (after its LAST_PDU) is a fatal error: PDU Sequence Error, or Invalid PDU Header Field at TTAG"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(8))
			b := sendData(io.io, sqe.CID, r2t)
			b = append(b, h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO, make([]byte, 4), false)...)
			sendQuiet(io.io, b)
			t, _, _, obs := termReqAfter(io.io, sqe.CID, s.fatalWait())
			if obs == noTermReq && s.closesWithoutTermReq(ctx) {
				s.TargetAlive(ctx)
				Skip(fmt.Sprintf("%s: the target ends connections without a C2HTermReq on every fatal error, so there is no FES to judge (%s judges that)", s.Req.ID, termReqOwner))
			}
			if t != nil && t.FES == tcp.FESPDUSequenceError {
				obs = termReqFES(t.FES) // FEI reserved: TCP-TERM-004 judges it
			}
			s.OneOf(obs, termReqFES(tcp.FESPDUSequenceError), termReq(tcp.FESInvalidHeaderField, feiTTAG))
			s.TargetAlive(ctx)
		})

		// 3.3.2.2: "R2T PDUs associated with different commands received
		// by a host may be serviced in any order." Two writes each get
		// their R2T; the host answers the second first, and both must
		// complete successfully. A controller that has only one R2T out
		// at a time leaves no order to choose: the check skips.
		Check(Requirement{ID: "TCP-DATA-033", Section: secH2CData, Keyword: May, Binds: Controller,
			Text:       "R2T PDUs associated with different commands received by a host may be serviced in any order",
			Statements: []string{"T-3.3.2.2-16"},
			Title:      "with R2Ts out for two writes, answering the later R2T first completes both writes successfully"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			n := io.r2tSize(8)
			w1, w2 := io.writeCmd(io.io, n), io.writeCmd(io.io, n)
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: w1}, nil), "send Write 1")
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: w2}, nil), "send Write 2")
			// Collect the R2Ts until both writes have theirs and no more
			// come for 300 ms (a controller may send several per command).
			r2ts := map[uint16][]*tcp.R2T{}
			for {
				wait := time.Duration(0)
				if len(r2ts[w1.CID]) > 0 && len(r2ts[w2.CID]) > 0 {
					wait = 300 * time.Millisecond
				}
				if len(r2ts) == 1 {
					wait = s.fatalWait() // the second write's R2T may wait for the first's data
				}
				p, _, _, err := io.io.Recv(wait)
				if err != nil {
					switch {
					case fatalErrOutcome(err) != "no reaction":
						s.Must(err, "waiting for the R2Ts of two writes")
					case wait == 300*time.Millisecond:
					default:
						Skip(fmt.Sprintf("%s: the controller had R2Ts out for one write at a time, so there was no order to choose", s.Req.ID))
					}
					break
				}
				r2t, ok := p.(*tcp.R2T)
				if !ok || r2t.CCCID != w1.CID && r2t.CCCID != w2.CID {
					Fail(fmt.Sprintf("%s: two writes without in-capsule data got %v, not their R2Ts (TCP-DATA-002 judges CCCID)", s.Req.ID, p.Type()))
				}
				r2ts[r2t.CCCID] = append(r2ts[r2t.CCCID], r2t)
			}
			// The later write first, each write's R2Ts in the order received.
			var b []byte
			for _, w := range []nvme.SQE{w2, w1} {
				for _, r2t := range r2ts[w.CID] {
					b = append(b, sendData(io.io, w.CID, r2t)...)
				}
			}
			sendQuiet(io.io, b)
			got := map[uint16]string{}
			for len(got) < 2 {
				p, _, _, err := io.io.Recv(0)
				if err != nil {
					s.Conform(fmt.Sprintf("after the second write's data went first: %s", fatalErrOutcome(err)), "both writes: success")
					return
				}
				switch v := p.(type) {
				case *tcp.R2T: // a further R2T: answered at once
					sendQuiet(io.io, sendData(io.io, v.CCCID, v))
				case *tcp.CapsuleResp:
					got[v.CQE.CID] = StatusOutcome(v.CQE.Status)
				case *tcp.TermReq:
					s.Conform(fmt.Sprintf("after the second write's data went first: %s", termReq(v.FES, v.FEI)), "both writes: success")
					return
				}
			}
			s.Conform(fmt.Sprintf("write 1: %s, write 2: %s", got[w1.CID], got[w2.CID]), "write 1: success, write 2: success")
		})
		// 3.3.2.2: "A controller may send an R2T PDU without waiting for a
		// previous R2T data transfer to complete, but shall not exceed
		// the maximum number of outstanding R2T PDUs per command
		// supported by the host (MAXR2T)", and "subsequent R2T PDUs for
		// the command shall solicit data transfers sequentially". With
		// MAXR2T 3 the host holds back its data until no further R2T
		// comes (300 ms): a controller may have sent one R2T or up to
		// four, each continuing where the one before ended, and the write
		// must complete once they are all answered. TCP-DATA-003 judges
		// MAXR2T 0.
		Check(Requirement{ID: "TCP-DATA-034", Section: secH2CData, Keyword: May, Binds: Controller,
			Text:       "A controller may send an R2T PDU without waiting for a previous R2T data transfer to complete, but shall not exceed the maximum number of outstanding R2T PDUs per command supported by the host (MAXR2T)",
			Statements: []string{"T-3.3.2.2-17"},
			Title:      "with MAXR2T 3, the R2Ts a controller sends for one write before any data are at most four and sequential, and answering them completes the write"}, func(ctx context.Context, s *Spec) {
			const maxR2T = 3
			io := s.SetupIO(ctx, tcp.ICReq{MAXR2T: maxR2T})
			maxh2c := io.io.ICResp.MAXH2CDATA
			n := min(uint32(1<<20), 4*maxh2c)
			if mt := io.maxTransfer(); mt > 0 && uint64(n) > mt {
				n = uint32(mt)
			}
			n -= n % io.bs
			if n <= io.inCapsule() {
				s.Lacks("a write larger than the in-capsule limit that MDTS allows")
			}
			sqe := io.writeCmd(io.io, n)
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Write")
			var pending []*tcp.R2T
			next, most := uint32(0), 0 // where the next R2T must start; the most outstanding
			for {
				wait := time.Duration(0)
				if len(pending) > 0 {
					wait = 300 * time.Millisecond // a further R2T would come now
				}
				p, _, _, err := io.io.Recv(wait)
				if err != nil && len(pending) > 0 {
					sendQuiet(io.io, sendData(io.io, sqe.CID, pending[0]))
					pending = pending[1:]
					continue
				}
				if err != nil {
					s.Conform("after the R2Ts were answered: "+fatalErrOutcome(err), "success")
				}
				switch v := p.(type) {
				case *tcp.R2T:
					if v.CCCID != sqe.CID || v.R2TO != next || v.R2TL == 0 || uint64(v.R2TO)+uint64(v.R2TL) > uint64(n) {
						s.Conform(fmt.Sprintf("R2T CCCID %d R2TO %d R2TL %d where R2TO %d was due (write CID %d, %d bytes)", v.CCCID, v.R2TO, v.R2TL, next, sqe.CID, n), "sequential R2Ts")
					}
					next = v.R2TO + v.R2TL
					pending = append(pending, v)
					most = max(most, len(pending))
					if len(pending) > maxR2T+1 {
						s.Conform(fmt.Sprintf("%d R2Ts outstanding", len(pending)), fmt.Sprintf("at most %d R2Ts outstanding", maxR2T+1))
					}
				case *tcp.CapsuleResp:
					AddReportEntry("observed", fmt.Sprintf("%s: at most %d R2Ts outstanding for a %d-byte write (MAXH2CDATA %d)", s.Req.ID, most, n, maxh2c))
					s.Conform(StatusOutcome(v.CQE.Status), "success")
					return
				default:
					s.Conform("PDU "+p.Type().String(), "R2T or CapsuleResp")
				}
			}
		})
	})

	Describe("PDU layout and C2HTermReq contents", Label("transport-rules2"), func() {
		// 3.6.2.5: for FES 01h "If multiple errors exist, then this field
		// indicates the lowest offset that has an error". An ICReq with
		// HPDA 32 (out of range, offset 10) and a reserved DGST bit set
		// (offset 11) has its lowest error at HPDA, whether or not the
		// controller looks at reserved bits (TCP-IC-008 takes HPDA 32
		// alone).
		Check(Requirement{ID: "TCP-TERM-005", Section: secC2HTermReq + "; " + secICReq, Keyword: Indicative, Binds: Controller,
			Text:       "PDU Header Field Offset: This field indicates the offset in bytes from the start of the PDU Header to the start of the field that has an error. If multiple errors exist, then this field indicates the lowest offset that has an error",
			Statements: []string{"T-3.6.2.5-04"},
			Title:      "an ICReq with HPDA 32 and a reserved DGST bit set is a fatal Invalid PDU Header Field at HPDA, the lower of the two offsets"}, func(ctx context.Context, s *Spec) {
			r := s.Dial(ctx)
			sendQuiet(r, tcp.AppendPDU(nil, &tcp.ICReq{HPDA: 32, DGST: 0x80}, nil, tcp.EncodeOptions{}))
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESInvalidHeaderField, feiHPDA))
		})
		// 3.5.1: the C2HTermReq carries "the PDU data contents filled with
		// the PDU Header that was being processed when the fatal error was
		// detected". TCP-FATAL-002 sees a 24-byte header of an unknown
		// type; here the headers are a CapsuleCmd's 72 bytes (with and
		// without a header digest) and an H2CData's 24, each fatal for a
		// field after its common header: the error data must begin with
		// the whole header as sent (a header digest after it is
		// tolerated).
		Check(Requirement{ID: "TCP-FATAL-007", Section: secFatal, Keyword: Shall, Binds: Controller,
			Text:       "send a C2HTermReq PDU ... with: ... c. the PDU data contents filled with the PDU Header that was being processed when the fatal error was detected",
			Statements: []string{"T-3.5.1-05"},
			Title:      "a C2HTermReq for a CapsuleCmd (with and without header digest) or an H2CData carries that PDU's whole header as its error data"}, func(ctx context.Context, s *Spec) {
			// A CapsuleCmd whose PDO is not a dword multiple: no CPDA
			// allows it. Processing it anyway is not excluded by the text
			// (the rule binds the host), so that case then has no
			// C2HTermReq to examine.
			capsule := func(r *initiator.Raw) []byte {
				sqe := nvme.KeepAliveCmd()
				sqe.CID = r.NextCID()
				nvme.SetInCapsule(&sqe, 4)
				b := encode(r, &tcp.CapsuleCmd{SQE: sqe}, make([]byte, 4))
				hl := tcp.HLenCapsuleCmd
				if r.Encoding().Digests.Header {
					hl += tcp.DigestSize
				}
				b = repad(b, hl+2)
				return rehash(r, b)
			}
			type sample struct {
				what string
				sent []byte
				hlen int
				t    *tcp.TermReq
				data []byte
				obs  string
			}
			var got []sample
			for _, ic := range []tcp.ICReq{plainIC, digestIC} {
				r := s.Raw(ctx, ic)
				if ic.DGST != 0 && !r.Encoding().Digests.Header {
					_ = r.Close()
					continue // header digests refused: TCP-HDGST-001's business
				}
				_, err := s.adminConnect(r)
				s.Must(err, "admin Connect")
				s.enableRaw(ctx, r)
				b := capsule(r)
				sendQuiet(r, b)
				t, _, data, obs := termReqAfter(r, 0, s.fatalWait())
				got = append(got, sample{what: fmt.Sprintf("CapsuleCmd (header digest %v)", ic.DGST != 0), sent: b, hlen: tcp.HLenCapsuleCmd, t: t, data: data, obs: obs})
			}
			io := s.SetupIO(ctx, plainIC)
			sqe, r2t := s.startWrite(io, io.r2tSize(8))
			b := h2cData(io.io, sqe.CID, r2t.TTAG, r2t.R2TO+r2t.R2TL, make([]byte, 4), true)
			sendQuiet(io.io, b)
			t, _, data, obs := termReqAfter(io.io, sqe.CID, s.fatalWait())
			got = append(got, sample{what: "H2CData", sent: b, hlen: tcp.HLenData, t: t, data: data, obs: obs})
			var bad, seen []string
			for _, g := range got {
				if g.t == nil {
					AddReportEntry("observed", fmt.Sprintf("%s: %s: %s, no C2HTermReq to examine", s.Req.ID, g.what, g.obs))
					if g.obs == noTermReq && s.closesWithoutTermReq(ctx) {
						Skip(fmt.Sprintf("%s: the target ends connections without a C2HTermReq on every fatal error (%s judges that)", s.Req.ID, termReqOwner))
					}
					continue
				}
				seen = append(seen, g.what)
				if len(g.data) < g.hlen || !bytes.Equal(g.data[:g.hlen], g.sent[:g.hlen]) {
					bad = append(bad, fmt.Sprintf("%s: error data % x", g.what, g.data))
				}
			}
			if len(seen) == 0 {
				Skip(fmt.Sprintf("%s: none of the malformed PDUs drew a C2HTermReq (%s and the TCP-PDU checks judge that)", s.Req.ID, termReqOwner))
			}
			empty := true
			for _, g := range got {
				empty = empty && (g.t == nil || len(g.data) == 0)
			}
			if empty {
				Skip(fmt.Sprintf("%s: the target's C2HTermReqs carry no error data at all, which TCP-FATAL-002 judges", s.Req.ID))
			}
			AddReportEntry("observed", fmt.Sprintf("%s: examined %s", s.Req.ID, strings.Join(seen, ", ")))
			s.ConformAll(bad, "the whole offending header")
		})

		// 3.6.2.5: the FEI is "Reserved" for FES 02h, 04h and 05h, and
		// bytes 23:14, FLAGS and PDO are reserved; reserved fields are
		// cleared to zero by their sender (Base 2.2 1.4.2, to which
		// NVMe/TCP 1.0 1.3 defers). A non-contiguous H2CData (PDU
		// Sequence Error), one outside its R2T (Data Transfer Out of
		// Range) and one longer than MAXH2CDATA (Data Transfer Limit
		// Exceeded, when MDTS allows a write that long) provoke the three.
		Check(Requirement{ID: "TCP-TERM-004", Section: secC2HTermReq + "; " + secReserved, Keyword: Shall, Binds: Controller,
			Text:       "Fatal Error Information (FEI): ... 02h Reserved ... 04h to 05h Reserved ... 23:14 Reserved; FLAGS: Reserved; PDO: Reserved",
			Statements: []string{"T-3.6.2.5-07", "T-3.6.2-01"},
			Title:      "C2HTermReqs for a non-contiguous H2CData (02h), one outside its R2T (04h) and one above MAXH2CDATA (05h) have FEI, FLAGS, PDO and bytes 23:14 zero"}, func(ctx context.Context, s *Spec) {
			cases := []struct {
				what string
				fes  uint16
				// size is the write's length, 0 to skip the case; data the
				// H2CData that breaks the rule.
				size func(io *ioSetup) uint32
				data func(io *ioSetup, cid uint16, r2t *tcp.R2T) []byte
			}{
				{"non-contiguous H2CData", tcp.FESPDUSequenceError,
					func(io *ioSetup) uint32 { return io.r2tSize(8) },
					func(io *ioSetup, cid uint16, r2t *tcp.R2T) []byte {
						return h2cData(io.io, cid, r2t.TTAG, r2t.R2TO+4, make([]byte, 4), false)
					}},
				{"H2CData outside its R2T", tcp.FESDataOutOfRange,
					func(io *ioSetup) uint32 { return io.r2tSize(8) },
					func(io *ioSetup, cid uint16, r2t *tcp.R2T) []byte {
						return h2cData(io.io, cid, r2t.TTAG, r2t.R2TO+r2t.R2TL, make([]byte, 4), false)
					}},
				{"H2CData above MAXH2CDATA", tcp.FESDataLimitExceeded,
					func(io *ioSetup) uint32 {
						n := io.r2tSize(io.io.ICResp.MAXH2CDATA + 8)
						if m := io.maxTransfer(); m > 0 && uint64(n) > m {
							return 0
						}
						return n
					},
					func(io *ioSetup, cid uint16, r2t *tcp.R2T) []byte {
						n := min(r2t.R2TL, io.io.ICResp.MAXH2CDATA+4)
						return h2cData(io.io, cid, r2t.TTAG, r2t.R2TO, make([]byte, n), n == r2t.R2TL)
					}},
			}
			var bad, seen []string
			for _, c := range cases {
				io := s.SetupIO(ctx, plainIC)
				n := c.size(io)
				if n == 0 {
					AddReportEntry("observed", fmt.Sprintf("%s: %s not tried: MDTS allows no write above MAXH2CDATA", s.Req.ID, c.what))
					continue
				}
				sqe, r2t := s.startWrite(io, n)
				if c.fes == tcp.FESDataLimitExceeded && r2t.R2TL <= io.io.ICResp.MAXH2CDATA {
					AddReportEntry("observed", fmt.Sprintf("%s: %s not tried: the R2T asked for %d bytes, no more than MAXH2CDATA", s.Req.ID, c.what, r2t.R2TL))
					continue
				}
				sendQuiet(io.io, c.data(io, sqe.CID, r2t))
				t, hdr, _, obs := termReqAfter(io.io, sqe.CID, s.fatalWait())
				if t == nil {
					s.skipWithoutTermReq(ctx, obs, "TCP-DATA-004..009")
					bad = append(bad, c.what+": "+obs)
					continue
				}
				if t.FES != c.fes {
					AddReportEntry("observed", fmt.Sprintf("%s: %s drew %s (the TCP-DATA checks judge the FES)", s.Req.ID, c.what, termReq(t.FES, t.FEI)))
				}
				seen = append(seen, c.what)
				var wrong []string
				switch t.FES {
				case tcp.FESPDUSequenceError, tcp.FESDataOutOfRange, tcp.FESDataLimitExceeded:
					if t.FEI != 0 {
						wrong = append(wrong, "FEI")
					}
				}
				if len(hdr) >= tcp.HLenTermReq {
					for _, f := range []struct {
						name string
						b    []byte
					}{{"FLAGS", hdr[1:2]}, {"PDO", hdr[3:4]}, {"bytes 23:14", hdr[14:24]}} {
						if !allBytes(f.b, 0) {
							wrong = append(wrong, f.name)
						}
					}
				}
				if len(wrong) > 0 {
					// The bytes go to the report; the verdict names the
					// fields, so that it reads the same on every run.
					AddReportEntry("observed", fmt.Sprintf("%s: %s: C2HTermReq header % x", s.Req.ID, c.what, hdr))
					bad = append(bad, fmt.Sprintf("%s: %s not zero", c.what, strings.Join(wrong, ", ")))
				}
			}
			AddReportEntry("observed", fmt.Sprintf("%s: examined %s", s.Req.ID, strings.Join(seen, ", ")))
			s.ConformAll(bad, "reserved fields zero")
		})

		// 3.6.2.7, 3.6.2.9, 3.6.2.10: a CapsuleResp and an R2T have HLEN
		// 24, PLEN the header plus HDGST if present, PDO and FLAGS 7:1
		// reserved; R2T bytes 23:20, C2HData bytes 11:10 and 23:20 and
		// FLAGS 7:4 are reserved, hence zero. A write and a read on an I/O
		// queue, without and with header digests, show each PDU type.
		Check(Requirement{ID: "TCP-PDU-031", Section: secCapsuleResp + "; " + secR2TFig + "; " + secC2HDataPDU + "; " + secReserved, Keyword: Indicative, Binds: Controller,
			Text:       "HLEN: Fixed length of 24 bytes (18h). PDO: Reserved. PLEN: Length of PDU Header and HDGST (if present) in bytes; FLAGS 7:1 Reserved; 23:20 Reserved",
			Statements: []string{"T-3.6.2.7-01", "T-3.6.2.10-01", "T-3.6.2-01"},
			Title:      "CapsuleResp, R2T and C2HData headers, with and without header digest: HLEN 24, PLEN and PDO as defined, reserved FLAGS bits and bytes zero"}, func(ctx context.Context, s *Spec) {
			var bad, seen []string
			judge := func(r *initiator.Raw, what string, hdgst bool) {
				if o := pduLayout(rawHeader(r), hdgst); o != "" {
					bad = append(bad, what+": "+o)
				}
			}
			for i, ic := range []tcp.ICReq{plainIC, digestIC} {
				st, cntlid := s.ioAdmin(ctx)
				r := s.Raw(ctx, ic)
				hd := r.Encoding().Digests.Header
				if i == 1 && !hd {
					_ = r.Close()
					continue // header digests refused: TCP-HDGST-001's business
				}
				_, err := s.connect(r, connectArgs{QID: 1, SQSIZE: min(31, st.cap.MQES()), CNTLID: cntlid})
				s.Must(err, "Connect I/O queue 1")
				st.io = r
				pass := fmt.Sprintf("header digest %v", hd)
				seen = append(seen, pass)
				recv := func(what string) tcp.PDU {
					p, _, _, err := r.Recv(0)
					if err != nil {
						bad = append(bad, fmt.Sprintf("%s (%s): %s", what, pass, fatalErrOutcome(err)))
						return nil
					}
					judge(r, fmt.Sprintf("%v (%s)", p.Type(), pass), hd)
					return p
				}
				w, r2t := s.startWrite(st, st.r2tSize(8))
				judge(r, "R2T ("+pass+")", hd)
				sendQuiet(r, sendData(r, w.CID, r2t))
				if recv("the write's response") == nil {
					continue
				}
				rd := nvme.ReadCmd(st.nsid, 0, 1)
				nvme.SetDataLength(&rd, st.bs)
				rd.CID = r.NextCID()
				s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: rd}, nil), "send Read")
				for {
					p := recv("the read's data and response")
					if c, ok := p.(*tcp.C2HData); p == nil || ok && c.Success || !ok {
						break
					}
				}
				_ = r.Close()
			}
			AddReportEntry("observed", fmt.Sprintf("%s: examined %s", s.Req.ID, strings.Join(seen, ", ")))
			s.ConformAll(bad, "as defined")
		})
	})
})
