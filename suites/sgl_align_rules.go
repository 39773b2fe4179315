package suites

// SGL descriptor, alignment and error-reporting rules of issue 19 (spec
// coverage): unsupported SGL descriptor types and invalid in-capsule
// offsets, dword-aligned C2HData and R2T offsets and lengths, R2Ts that
// start at 0 and follow each other, the FEI of a header digest error, and
// the Error Information log a failed Connect must leave alone.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Sections the checks below cite.
const (
	secBaseSGL    = "NVMe Base 2.2 4.3.2 Fig. 113, Fig. 117"
	secCapsuleSGL = "NVMe Base 2.1 3.3.2.1.3"
	secC2HDataPDU = "NVMe/TCP 1.0 3.6.2.9 Fig. 27"
	secR2TPDU     = "NVMe/TCP 1.0 3.6.2.10 Fig. 28"
)

// sglsBitBucket is Identify Controller SGLS bit 16: SGL Bit Bucket
// descriptors are supported.
const sglsBitBucket = 1 << 16

// sglCase is one SGL descriptor identifier byte (type in bits 7:4,
// subtype in 3:0) that NVMe/TCP does not support, and when it applies.
type sglCase struct {
	name string
	id   uint8
	// claimed, if set, is the SGLS bit with which a controller claims the
	// type; the case is skipped on a controller that sets it.
	claimed uint32
}

// unsupportedSGLs are the descriptors an Identify is sent with: NVMe/TCP
// 1.0 3.3.2 supports only the Data Block descriptor with the Offset
// subtype (1h) and the Transport SGL Data Block with subtype Ah, "exactly
// one SGL descriptor per command".
var unsupportedSGLs = []sglCase{
	{name: "Keyed SGL Data Block (40h)", id: 0x40, claimed: nvme.SGLSKeyed},
	{name: "SGL Bit Bucket (10h)", id: 0x10, claimed: sglsBitBucket},
	{name: "SGL Segment, Address subtype (20h)", id: 0x20},
	{name: "SGL Last Segment, Address subtype (30h)", id: 0x30},
	{name: "SGL Data Block, Address subtype (00h)", id: 0x00},
	{name: "Transport SGL Data Block, subtype 0h (50h)", id: 0x50},
	{name: "reserved type 6h (60h)", id: 0x60},
}

var _ = Describe("Transport", Label("transport"), func() {
	Describe("SGL descriptors", Label("transport-sgl"), func() {
		// Each descriptor describes the 4096 bytes of Identify
		// Controller, so it is used for a data transfer and examined
		// (Base: the controller "is not required to examine for errors
		// any SGL descriptor that is not used for data transfer"). Fig.
		// 113 names one status for an unsupported type or type and
		// subtype combination; the transport binding names the same.
		Check(Requirement{ID: "TCP-SGL-001", Section: secTCPSGL + "; " + secBaseSGL, Keyword: Shall, Binds: Controller,
			Statements: []string{"T-3.3.2-02"},
			Text:       "A Command Capsule PDU with an unsupported SGL descriptor type shall be completed by the controller with an \"SGL DESCRIPTOR TYPE INVALID\" error status (NVMe/TCP 3.3.2); An SGL descriptor has an unsupported type or a combination of type and subtype: SGL Descriptor Type Invalid (Base Fig. 113)",
			Title:      "an Identify whose data descriptor is Keyed, Bit Bucket (unless SGLS claims them), Segment, Last Segment, a Data Block with the Address subtype, a Transport Data Block with subtype 0h or a reserved type completes with SGL Descriptor Type Invalid"}, func(ctx context.Context, s *Spec) {
			r, _, _ := s.EnabledAdmin(ctx, plainIC)
			id := s.identifyCtrl(r)
			want := StatusOutcome(nvme.StatusSGLInvalidType)
			for _, k := range unsupportedSGLs {
				if k.claimed != 0 && id.SGLS&k.claimed != 0 {
					AddReportEntry("observed", fmt.Sprintf("%s: %s not tried: SGLS %#x claims it", s.Req.ID, k.name, id.SGLS))
					continue
				}
				sqe := nvme.IdentifyCmd(nvme.CNSController, 0, 0)
				sqe.CID = r.NextCID()
				sqe.Flags = sqe.Flags&^nvme.PSDTMask | nvme.PSDTSGL
				sqe.DPTR = nvme.SGLDescriptor{Length: nvme.IdentifyDataSize, Type: k.id}
				s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Identify with a "+k.name+" descriptor")
				if obs := awaitResponse(r, sqe.CID, 5*time.Second); obs != want {
					// Judged on the first departure: after a fatal
					// error (what a profile may document) the
					// connection carries nothing more.
					s.Conform(k.name+": "+obs, k.name+": "+want)
					return
				}
			}
		})
	})

	Describe("data alignment", Label("transport-data"), func() {
		// The transfer is 4096 bytes, a dword multiple, so every
		// C2HData of it can be aligned; each one's DATAO and DATAL must
		// be.
		Check(Requirement{ID: "TCP-ALIGN-001", Section: secC2HDataPDU, Keyword: Shall, Binds: Controller,
			Statements: []string{"T-3.6.2.9-03", "T-3.6.2.9-04"},
			Text:       "Data Offset (DATAO): Byte offset from start of host-resident data. This value shall be dword aligned. Data Length (DATAL): PDU DATA field length in bytes. This value shall be dword aligned",
			Title:      "every C2HData of Identify Controller (4096 bytes) has a dword-aligned DATAO and DATAL"}, func(ctx context.Context, s *Spec) {
			r, _, _ := s.EnabledAdmin(ctx, plainIC)
			sqe := nvme.IdentifyCmd(nvme.CNSController, 0, 0)
			sqe.CID = r.NextCID()
			s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Identify")
			obs, pdus := "dword-aligned C2HData", 0
			for done := false; !done; {
				p, _, d, err := r.Recv(0)
				s.Must(err, "receive Identify data")
				switch v := p.(type) {
				case *tcp.C2HData:
					pdus++
					if (v.DATAO%4 != 0 || uint32(len(d))%4 != 0) && obs == "dword-aligned C2HData" {
						obs = fmt.Sprintf("C2HData %d: DATAO %d DATAL %d", pdus, v.DATAO, len(d))
					}
					done = v.Success
				case *tcp.CapsuleResp:
					s.Conform("Identify: "+StatusOutcome(v.CQE.Status), "Identify: success")
					done = true
				default:
					s.Conform("PDU "+p.Type().String(), "C2HData then CapsuleResp")
				}
			}
			AddReportEntry("observed", fmt.Sprintf("%s: %d C2HData PDUs", s.Req.ID, pdus))
			s.Conform(obs, "dword-aligned C2HData")
		})

		// The R2Ts of one write: the first at offset 0, each next one
		// where the last ended, every R2TO and R2TL a dword multiple (the
		// write is a whole number of blocks), until the whole buffer was
		// asked for. Each R2T is answered at once, so the check holds
		// with any MAXR2T use.
		Check(Requirement{ID: "TCP-ALIGN-002", Section: secR2TPDU + "; " + secH2CData, Keyword: Shall, Binds: Controller,
			Statements: []string{"T-3.6.2.10-04", "T-3.6.2.10-05", "T-3.3.2.2-03"},
			Text:       "Requested Data Offset (R2TO): ... This value shall be dword aligned. Requested Data Length (R2TL): ... This value shall be dword aligned (Fig. 28); The first R2T PDU of a command shall start with an offset of zero and subsequent R2T PDUs for the command shall solicit data transfers sequentially to the end of the Command Data Buffer (3.3.2.2)",
			Title:      "the R2Ts of a write start at offset 0, follow each other without gap or overlap to the end of its data, and have dword-aligned R2TO and R2TL"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			maxh2c := io.io.ICResp.MAXH2CDATA
			n := min(uint32(256<<10), 4*maxh2c)
			if mt := io.maxTransfer(); mt > 0 && uint64(n) > mt {
				n = uint32(mt)
			}
			n -= n % io.bs
			n = max(n, io.r2tSize(0))
			sqe := io.writeCmd(io.io, n)
			data := bytes.Repeat([]byte{0x5A}, int(n))
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Write")
			var next uint32
			r2ts := 0
			for done := false; !done; {
				p, _, _, err := io.io.Recv(0)
				s.Must(err, "receive")
				switch v := p.(type) {
				case *tcp.R2T:
					r2ts++
					obs := "R2TO at the end of the data asked for, R2TO and R2TL dword aligned"
					switch {
					case v.R2TO != next:
						obs = fmt.Sprintf("R2T %d: R2TO %d, the data asked for so far ends at %d", r2ts, v.R2TO, next)
					case v.R2TO%4 != 0 || v.R2TL%4 != 0:
						obs = fmt.Sprintf("R2T %d: R2TO %d R2TL %d", r2ts, v.R2TO, v.R2TL)
					case v.R2TL == 0 || uint64(v.R2TO)+uint64(v.R2TL) > uint64(n):
						obs = fmt.Sprintf("R2T %d: R2TO %d R2TL %d for %d bytes", r2ts, v.R2TO, v.R2TL, n)
					}
					s.Conform(obs, "R2TO at the end of the data asked for, R2TO and R2TL dword aligned")
					next = v.R2TO + v.R2TL
					for off := v.R2TO; off < next; {
						k := min(next-off, maxh2c)
						s.Must(io.io.SendBytes(h2cData(io.io, sqe.CID, v.TTAG, off, data[off:off+k], off+k == next)), "send H2CData")
						off += k
					}
				case *tcp.CapsuleResp:
					s.Conform("Write: "+StatusOutcome(v.CQE.Status), "Write: success")
					done = true
				default:
					s.Conform("PDU "+p.Type().String(), "R2T or CapsuleResp")
				}
			}
			AddReportEntry("observed", fmt.Sprintf("%s: %d R2Ts for %d bytes", s.Req.ID, r2ts, n))
			s.Conform(fmt.Sprintf("%d bytes asked for", next), fmt.Sprintf("%d bytes asked for", n))
		})
	})

	Describe("digests", Label("transport-digest"), func() {
		// TCP-PDU-019 judges the FES; this check the FEI that goes with
		// it: the digest as the controller received it.
		Check(Requirement{ID: "TCP-HDGST-001", Section: secC2HTermReq + " Fig. 23; " + secDigestErr, Keyword: Indicative, Binds: Controller,
			Statements: []string{"T-3.6.2.5-05"},
			Text:       "Fatal Error Information (FEI): ... 03h PDU Header Digest: This field indicates the HDGST that was received by the controller caused a header digest verification error",
			Title:      "the C2HTermReq for a CapsuleCmd with a wrong header digest carries FES 03h and, in FEI, the HDGST received"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, tcp.ICReq{DGST: tcp.DgstHeader})
			if !r.Encoding().Header {
				s.Lacks("header digests")
			}
			_, err := s.adminConnect(r)
			s.Must(err, "admin Connect")
			b := encode(r, &tcp.CapsuleCmd{SQE: nvme.PropertyGetCmd(r.NextCID(), nvme.PropCAP, true)}, nil)
			b[tcp.HLenCapsuleCmd] ^= 0x5A
			sendQuiet(r, b)
			sent := binary.LittleEndian.Uint32(b[tcp.HLenCapsuleCmd:])
			s.ExpectFatal(ctx, r, fesFEI(tcp.FESHeaderDigestError, sent))
		})
	})
})

var _ = Describe("io", Label("io"), func() {
	// NVMe/TCP "does not use ICDOFF to control the in-capsule data
	// offset, thus ICDOFF shall be cleared to '0'" (3.3.1), so any
	// non-zero offset is invalid there; the check uses one past anything
	// a capsule can hold, invalid on any transport. The length is the
	// block the Write moves, so no other SGL status applies.
	Check(Requirement{ID: "IO-SGLOFF-001", Section: secCapsuleSGL, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-3.3.2.1.3-01"},
		Text:       "If an invalid offset is specified in an SGL descriptor, then a status code of SGL Offset Invalid shall be returned",
		Title:      "a Write whose in-capsule Data Block descriptor names an offset beyond the largest in-capsule data completes with SGL Offset Invalid"}, func(ctx context.Context, s *Spec) {
		c, _ := s.ioController(ctx)
		ns := s.writableNS(ctx, c)
		icd := int(c.IdentifyData().IOCCSZ)*16 - nvme.SQESize
		if icd < int(ns.BS) {
			s.Lacks(fmt.Sprintf("in-capsule data of %d bytes", ns.BS))
		}
		a := s.rawIOQueue(ctx, 31)
		sqe := nvme.WriteCmd(ns.ID, randomLBA(ns, 1), 1)
		sqe.DPTR = nvme.SGLDescriptor{Addr: uint64(icd) + 4096, Length: ns.BS, Type: nvme.SGLDataBlockOffset}
		_, _, err := a.IO.Command(sqe, randomData(int(ns.BS)))
		s.Conform(commandOutcome(err), StatusOutcome(nvme.StatusSGLInvalidOffset))
	})
})

var _ = Describe("Fabrics", Label("fabrics"), func() {
	// The Connect fails for a QID beyond the queues the controller
	// granted (FAB-IOQ-003 judges its status); the controller it names
	// must not record it in its Error Information log.
	Check(Requirement{ID: "FAB-ERRLOG-001", Section: secConnect, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-6.3-37"},
		Text:       "For a Connect command that fails, the controller shall not: return a status code of Invalid Field in Command; and add an entry to the Error Information log page",
		Title:      "an I/O queue Connect that fails (QID beyond the queues granted) adds no entry to the Error Information log of the controller it names"}, func(ctx context.Context, s *Spec) {
		admin, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
		newest := func() uint64 {
			GinkgoHelper()
			_, b, err := admin.Command(nvme.GetLogPageCmd(nvme.LogError, 0xFFFFFFFF, 0, 0, 16*nvme.ErrorLogEntrySize), nil)
			s.Must(err, "Get Log Page Error Information")
			var top uint64
			for off := 0; off+nvme.ErrorLogEntrySize <= len(b); off += nvme.ErrorLogEntrySize {
				var e nvme.ErrorLogEntry
				if e.Decode(b[off:]) == nil {
					top = max(top, e.ErrorCount)
				}
			}
			return top
		}
		cqe, _, err := admin.Command(nvme.SetFeaturesCmd(nvme.FeatNumQueues, 0, nvme.NumQueuesValue(3, 3), false), nil)
		s.Must(err, "Set Features Number of Queues")
		nsq, _ := nvme.DecodeNumQueues(cqe.DW0)
		if nsq >= 0xFFFE {
			s.Lacks("a queue limit below 65535")
		}
		before := newest()
		r := s.Raw(ctx, plainIC)
		_, err = s.connect(r, connectArgs{QID: nsq + 2, SQSIZE: 15, CNTLID: cntlid})
		if err == nil {
			s.Lacks(fmt.Sprintf("a failed Connect (QID %d was accepted)", nsq+2))
		}
		AddReportEntry("observed", fmt.Sprintf("%s: Connect of QID %d: %s", s.Req.ID, nsq+2, Outcome(err)))
		after := newest()
		obs := "no new entry"
		if after > before {
			obs = fmt.Sprintf("Error Count %d after the failed Connect, %d before", after, before)
		}
		s.Conform(obs, "no new entry")
	})

	// PRS and PUS 010b to 111b are reserved, and "Receipt of reserved
	// coded values in defined fields in commands shall be reported as an
	// error" (1.4.1.6): any error status does, success does not. The
	// property is VS for the Get, and for the Set CC written with the
	// value it holds, so an accepted Set changes nothing.
	reserved := func(ctx context.Context, s *Spec, set bool) {
		GinkgoHelper()
		r, _ := s.rawAdmin(ctx, plainIC)
		field, sqe := "PRS", nvme.PropertyGetCmd(0, nvme.PropVS, false)
		if set {
			cc, err := propGet(r, nvme.PropCC, false)
			s.Must(err, "Property Get CC")
			field, sqe = "PUS", nvme.PropertySetCmd(0, nvme.PropCC, false, cc)
		}
		for _, v := range []uint32{2, 7} {
			sqe.CDW10 = v
			_, _, err := r.Command(sqe, nil)
			obs := Outcome(err)
			AddReportEntry("observed", fmt.Sprintf("%s: %s %03bb: %s", s.Req.ID, field, v, obs))
			if strings.HasPrefix(obs, "status ") {
				obs = "an error status"
			}
			s.Conform(fmt.Sprintf("%s %03bb: %s", field, v, obs), fmt.Sprintf("%s %03bb: an error status", field, v))
		}
	}
	Check(Requirement{ID: "FAB-PROPRSV-001", Section: secPropGet + " Fig. 552; NVMe Base 2.2 1.4.1.6", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-6.5-02"},
		Text:       "Property Return Size (PRS): 000b 4 bytes, 001b 8 bytes, 010b to 111b Reserved (Fig. 552); Receipt of reserved coded values in defined fields in commands shall be reported as an error (1.4.1.6)",
		Title:      "a Property Get of VS with a reserved size (PRS 010b, 111b) fails with an error status"}, func(ctx context.Context, s *Spec) {
		reserved(ctx, s, false)
	})
	Check(Requirement{ID: "FAB-PROPRSV-002", Section: secPropSet + " Fig. 554; NVMe Base 2.2 1.4.1.6", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-6.6-02"},
		Text:       "Property Update Size (PUS): 000b 4 bytes, 001b 8 bytes, 010b to 111b Reserved (Fig. 554); Receipt of reserved coded values in defined fields in commands shall be reported as an error (1.4.1.6)",
		Title:      "a Property Set of CC with a reserved size (PUS 010b, 111b) fails with an error status"}, func(ctx context.Context, s *Spec) {
		reserved(ctx, s, true)
	})
})
