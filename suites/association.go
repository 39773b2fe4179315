package suites

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Checks of what ends a connection or an association, and of what a
// controller must no longer do once one has ended (issue 19): PDUs after
// a fatal error, malformed H2CTermReqs, submission queue overruns and the
// loss of the admin connection.

// Sections of NVMe Base 2.2 these checks cite.
const (
	secAssociation = "NVMe Base 2.2 3.1.2"   // message-based controller architecture: when an association ends
	secSQFlowOff   = "NVMe Base 2.2 3.3.2.5" // SQ flow control disabled
	secSQFull      = "NVMe Base 2.2 3.3.2.6" // Submission Queue flow control
	secKATOActive  = "NVMe Base 2.2 3.9.2"   // Keep Alive Timer activation
	secQueueInit   = "NVMe Base 2.2 3.3.2.3" // Queue Initialization and Queue State
	secIOQDelete   = "NVMe Base 2.2 3.3.2.4" // I/O Queue Deletion
)

// afterWait is a context for what a check does after a long wait that
// may have used up its own (the checks here wait for reactions that take
// seconds): the check's values, a fresh step timeout.
func (s *Spec) afterWait(ctx context.Context) context.Context {
	t := s.Target.Config.Timeout
	if t <= 0 {
		t = DefaultStepTimeout
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), t)
	s.Defer(cancel)
	return c
}

// readOwner is the check that judges that a Read on a connected I/O queue
// completes; the checks here that only use a Read as a probe skip,
// pointing there, when it fails with a status (one root cause, one
// failing check).
const readOwner = "FAB-IOQ-010"

// mustProbeRead is Must for a Read a check uses as a probe.
func (s *Spec) mustProbeRead(err error, what string) {
	GinkgoHelper()
	var st nvme.Status
	if errors.As(err, &st) {
		Skip(fmt.Sprintf("%s: %s failed (%s), so this check has no probe; %s judges Reads", s.Req.ID, what, Outcome(err), readOwner))
	}
	s.Must(err, what)
}

// awaitR2T reads until an R2T (the caller has one command waiting for
// one), or the completion of cid.
func awaitR2T(r *initiator.Raw, cid uint16) (*tcp.R2T, error) {
	for {
		p, _, _, err := r.Recv(0)
		if err != nil {
			return nil, err
		}
		if v, ok := p.(*tcp.R2T); ok {
			return v, nil
		}
		if v, ok := p.(*tcp.CapsuleResp); ok && v.CQE.CID == cid {
			return nil, fmt.Errorf("the Write completed (%s) without asking for its data", StatusOutcome(v.CQE.Status))
		}
	}
}

// assocLBA is the block the fatal-error side-effect check writes; no
// other check reads it.
const assocLBA = 40

var _ = Describe("Transport", Label("transport"), func() {
	Describe("termination", Label("transport-fatal"), func() {
		// TCP-FATAL-003 sends its command after the C2HTermReq. Here it
		// travels in the same TCP segment as the bad PDU, so it is
		// already in the controller's receive buffer when the error is
		// found: the case of a controller that has lost PDU framing and
		// would run the bytes that follow as commands. The command is a
		// Write with in-capsule data, so running it would also show on a
		// second association.
		Check(Requirement{ID: "TCP-TERM-001", Section: secFatal, Keyword: Shall, Binds: Controller,
			Statements: []string{"T-3.5.1-02"},
			Title:      "after a fatal error the controller runs no PDU that follows the offending one, even one already received in the same TCP segment",
			Text:       "When a controller detects a fatal error, that controller shall: 1. stop processing any PDUs that arrive on the connection"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			if io.inCapsule() < io.bs {
				s.Lacks(fmt.Sprintf("in-capsule data of one %d-byte block in I/O commands (IOCCSZ %d)", io.bs, io.id.IOCCSZ))
			}
			// A known content first, so a Write that ran shows.
			before := bytes.Repeat([]byte{0x5A}, int(io.bs))
			w0 := nvme.WriteCmd(io.nsid, assocLBA, 1)
			nvme.SetInCapsule(&w0, io.bs)
			_, _, err := io.io.Command(w0, before)
			s.Must(err, "Write of the block's known content")

			pattern := bytes.Repeat([]byte{0xC3}, int(io.bs))
			w := nvme.WriteCmd(io.nsid, assocLBA, 1)
			w.CID = io.io.NextCID()
			nvme.SetInCapsule(&w, io.bs)
			seg := append(append([]byte(nil), referenceFatal...), encode(io.io, &tcp.CapsuleCmd{SQE: w}, pattern)...)
			s.Must(io.io.SendBytes(seg), "send the bad PDU and a Write in one segment")

			obs := "not processed"
			deadline := time.Now().Add(s.fatalWait() + processWait)
			for time.Until(deadline) > 0 {
				p, _, _, err := io.io.Recv(time.Until(deadline))
				if err != nil {
					break // silence or the end of the connection
				}
				switch v := p.(type) {
				case *tcp.CapsuleResp:
					if v.CQE.CID == w.CID {
						obs = fmt.Sprintf("a response (%s) to the Write that followed the bad PDU", StatusOutcome(v.CQE.Status))
					}
				case *tcp.TermReq:
					continue // the expected reaction; TCP-PDU-002 judges its FES
				}
				if obs != "not processed" {
					break
				}
			}
			_ = io.io.Close() // the host's duty after a C2HTermReq
			_ = io.admin.Close()
			if obs == "not processed" {
				// No response is not enough: the Write may have run with
				// its response lost. A second association reads the block.
				r := s.SetupIO(s.afterWait(ctx), plainIC)
				rd := nvme.ReadCmd(r.nsid, assocLBA, 1)
				nvme.SetDataLength(&rd, r.bs)
				_, data, err := r.io.Command(rd, nil)
				s.mustProbeRead(err, "Read of the block on a second association")
				if bytes.Equal(data, pattern) {
					obs = "the Write that followed the bad PDU reached the namespace"
				}
			}
			s.Conform(obs, "not processed")
			s.TargetAlive(s.afterWait(ctx))
		})
		// The two length bounds of an H2CTermReq: the controller ignores
		// the PDU and closes "immediately". A controller that takes it
		// for a fatal error of its own and waits for the host to close
		// (3.5.1's rule for C2HTermReq) does not; it gets the bound a
		// fatal error's reaction gets (fatalWait), not the 30 s a
		// well-formed H2CTermReq allows (TCP-PDU-020). A C2HTermReq
		// before the close is noted, not judged: the text asks for the
		// close.
		for i, c := range []struct {
			stmt, title, text string
			plen              uint32
			data              int
		}{
			{"T-3.5.1-17", "an H2CTermReq with PLEN above 152 is ignored and the controller terminates the connection immediately",
				"The controller shall ignore a H2CTermReq PDU with a PDU length (PLEN) that exceeds 152 bytes ... and shall terminate the connection immediately", 160, 136},
			{"T-3.5.1-18", "an H2CTermReq with PLEN below 24 is ignored and the controller terminates the connection immediately",
				"the controller shall ignore a H2CTermReq PDU with PLEN less than 24 bytes and shall terminate the connection immediately", 16, 0},
		} {
			Check(Requirement{ID: fmt.Sprintf("TCP-TERM-%03d", 2+i), Section: secFatal, Keyword: Shall, Binds: Controller,
				Statements: []string{c.stmt}, Title: c.title, Text: c.text}, func(ctx context.Context, s *Spec) {
				r, _ := s.rawAdmin(ctx, plainIC)
				b := tcp.AppendPDU(nil, &tcp.TermReq{H2C: true, FES: tcp.FESInvalidHeaderField}, make([]byte, c.data), tcp.EncodeOptions{})
				binary.LittleEndian.PutUint32(b[4:], c.plen)
				sendQuiet(r, b)
				s.Conform(awaitTermination(r, s.fatalWait()), "connection terminated")
				s.TargetAlive(s.afterWait(ctx))
			})
		}
	})
})

var _ = Describe("Fabrics", Label("fabrics"), func() {
	Describe("association lifetime", Label("fabrics-association"), func() {
		// A two-entry I/O queue (SQSIZE 1) holds one capsule. A Write
		// without in-capsule data stays outstanding until the host
		// sends its data, so once its R2T is in, the controller cannot
		// have completed it, and no SQHD can have freed its entry: a
		// second capsule now goes to a full queue (with SQ flow
		// control), or makes the outstanding commands reach the queue
		// size (without). The text binds the controller only "if [it]
		// detects" that: one that took the capsule and ran it normally
		// passes (reported). One that detects it must end the
		// association; CSTS.CFS is then unreadable (the association
		// ended), so what is judged is that the association ends: the
		// admin connection too is closed, or stops answering. What
		// fails: the overrunning command completed with an error, or
		// the I/O connection ended while the association lives on.
		for i, c := range []struct {
			stmt, sec, text, title string
			cattr                  uint8
		}{
			{"B-3.3.2.6-03", secSQFull,
				"If the controller detects that the host has submitted a command capsule to a full Submission Queue, then the controller shall: a) stop processing commands and set the Controller Fatal Status (CSTS.CFS) bit to '1' ...; and b) terminate the NVMe Transport connection and end the association",
				"a capsule sent to a full submission queue is either processed normally (not detected) or ends the connection and the association", 0},
			{"B-3.3.2.5-04", secSQFlowOff,
				"If the controller detects that the number of outstanding commands for a queue pair is greater than or equal to the size of the Submission Queue, then the controller shall: a) stop processing commands and set the Controller Fatal Status (CSTS.CFS) bit to '1' ...; and b) terminate the NVMe Transport connection and end the association",
				"with SQ flow control disabled, as many outstanding commands as the queue size are either processed normally (not detected) or end the connection and the association", nvme.CATTRDisableSQFlow},
		} {
			Check(Requirement{ID: fmt.Sprintf("FAB-ASSOC-%03d", 1+i), Section: c.sec, Keyword: Shall, Binds: Controller,
				Statements: []string{c.stmt}, Title: c.title, Text: c.text}, func(ctx context.Context, s *Spec) {
				io := s.setupSmallIO(ctx, c.cattr)
				n := io.r2tSize(io.bs)
				_, r2t := s.startWrite(io, n)
				rd := nvme.ReadCmd(io.nsid, 0, 1)
				rd.CID = io.io.NextCID()
				nvme.SetDataLength(&rd, io.bs)
				s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: rd}, nil), "send the Read to the full queue")
				obs := s.overrunReaction(io, rd.CID, r2t, n)
				if obs == "connection terminated" {
					obs = s.associationEnded(io.admin)
				}
				s.OneOf(obs, overrunEnded, "not detected")
				s.TargetAlive(s.afterWait(ctx))
			})
		}

		// The admin connection closes; the association, and with it the
		// I/O queues, end. The text names no time; a controller that
		// misses the close still ends the association when its keep
		// alive timer expires, so the check allows KATO (as the
		// controller reports it after rounding) plus CQT and a margin,
		// and keeps the I/O connection silent meanwhile: an I/O command
		// could restart a traffic-based keep alive timer.
		Check(Requirement{ID: "FAB-ASSOC-003", Section: secAssociation, Keyword: Indicative, Binds: Controller,
			Statements: []string{"B-3.1.2-04"},
			Title:      "losing the admin queue's connection ends the association: its I/O connections close or their commands fail",
			Text:       "An association between a host and controller is terminated if: ... the NVMe Transport connection is lost between the host and controller for the Admin Queue"}, func(ctx context.Context, s *Spec) {
			nsid := s.RequireWritable()
			admin := s.Raw(ctx, plainIC)
			cqe, err := s.connectAnyModel(admin, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, KATO: 2000})
			s.Must(err, "admin Connect with KATO 2 s")
			cntlid := uint16(cqe.DW0)
			v, err := propGet(admin, nvme.PropCAP, true)
			s.mustProperty(err, nvme.PropCAP)
			cp := nvme.CAP(v)
			s.Must(propSet(admin, nvme.PropCC, false, ccEnable), "Property Set CC.EN=1")
			s.waitReady(ctx, admin, cp)
			id := s.identifyCtrl(admin)
			kcqe, _, err := admin.Command(nvme.GetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, 0), nil)
			s.Must(err, "Get Features Keep Alive Timer")
			kato := time.Duration(kcqe.DW0) * time.Millisecond
			s.skipIfMQESZero(cp)
			io := s.IOQueue(ctx, plainIC, cntlid, 1, min(31, cp.MQES()))
			rd := nvme.ReadCmd(nsid, 0, 1)
			var ns nvme.IdentifyNamespace
			_, data, err := admin.Command(nvme.IdentifyCmd(nvme.CNSNamespace, nsid, 0), nil)
			s.Must(err, "Identify Namespace")
			s.Must(ns.Decode(data), "decode Identify Namespace")
			nvme.SetDataLength(&rd, ns.BlockSize())
			_, _, err = io.Command(rd, nil)
			s.mustProbeRead(err, "Read on the I/O queue before the admin connection closes")

			_ = admin.Close()
			bound := kato + time.Duration(id.CQT)*time.Millisecond + s.fatalWait()
			obs := fmt.Sprintf("the I/O queue still completes commands %v after its admin connection closed (KATO %v, CQT %d ms)", bound.Round(time.Millisecond), kato, id.CQT)
			p, _, _, err := io.Recv(bound)
			switch {
			case err != nil && fatalErrOutcome(err) != "no reaction":
				obs = "association ended" // the I/O connection closed
			case err == nil:
				obs = "association ended" // a C2HTermReq or any PDU nobody asked for: the controller ends the queue
				if _, ok := p.(*tcp.TermReq); !ok {
					obs = fmt.Sprintf("an unexpected %v on the idle I/O queue", p.Type())
				}
			default:
				// Still open: its commands must fail.
				_, _, err := io.Command(rd, nil)
				if err != nil {
					obs = "association ended"
					AddReportEntry("observed", fmt.Sprintf("after the admin connection closed the I/O queue stayed open and a Read failed: %s", Outcome(err)))
				}
			}
			_ = io.Close()
			s.Conform(obs, "association ended")
			s.TargetAlive(s.afterWait(ctx))
		})

		// Writes in flight when the Disconnect arrives: one waiting for
		// its data (its R2T is in, the data withheld) and, where the
		// controller takes in-capsule data, a few more sent in the same
		// segment as the Disconnect. Each may complete (any status)
		// before the Disconnect's completion, or never; none may complete
		// after it. A Disconnect refused with a status (Controller Busy:
		// "not able to delete the I/O Queue") deletes nothing and is
		// noted. A write still without a completion when the Disconnect
		// completed then gets its data: it must not reach the namespace
		// ("no further command processing").
		Check(Requirement{ID: "FAB-ASSOC-005", Section: secDisconnect, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.4-04"},
			Title:      "the Disconnect's completion is the last on its I/O queue: writes in flight complete before it or never, and none is processed after it",
			Text:       "The completion queue entry for the Disconnect command shall be the last entry submitted to the I/O Queue Completion queue ... The controller shall ensure that no further command processing is performed for any command on an I/O queue after sending the completion queue entry for the Disconnect command"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			// The withheld write: a block of known content first.
			n := io.r2tSize(io.bs)
			lba := uint64(assocLBA + 8)
			before := bytes.Repeat([]byte{0x5A}, int(n))
			w0 := nvme.WriteCmd(io.nsid, lba, n/io.bs)
			nvme.SetDataLength(&w0, n)
			_, _, err := io.io.Command(w0, before)
			s.Must(err, "Write of the blocks' known content")
			wsqe := nvme.WriteCmd(io.nsid, lba, n/io.bs)
			wsqe.CID = io.io.NextCID()
			nvme.SetDataLength(&wsqe, n)
			s.Must(io.io.Conn.Send(&tcp.CapsuleCmd{SQE: wsqe}, nil), "send the Write without its data")
			r2t, err := awaitR2T(io.io, wsqe.CID)
			s.Must(err, "waiting for the Write's R2T")

			inflight := map[uint16]string{wsqe.CID: "the Write waiting for its data"}
			var seg []byte
			if ic := io.inCapsule(); ic >= io.bs {
				data := make([]byte, min(ic, 8*io.bs)/io.bs*io.bs)
				for i := range 4 {
					// Past the withheld write's blocks, which are read back.
					w := nvme.WriteCmd(io.nsid, lba+uint64(n/io.bs)+uint64(16*i), uint32(len(data))/io.bs)
					w.CID = io.io.NextCID()
					nvme.SetInCapsule(&w, uint32(len(data)))
					inflight[w.CID] = "an in-capsule Write sent with the Disconnect"
					seg = append(seg, encode(io.io, &tcp.CapsuleCmd{SQE: w}, data)...)
				}
			}
			disc := nvme.DisconnectCmd(io.io.NextCID())
			seg = append(seg, encode(io.io, &tcp.CapsuleCmd{SQE: disc}, nil)...)
			s.Must(io.io.SendBytes(seg), "send the Writes and the Disconnect")

			obs := "Disconnect completion last"
			var discSt *nvme.Status
			completed := map[uint16]bool{}
			deadline := time.Now().Add(s.fatalWait() + processWait)
			for discSt == nil || time.Until(deadline) > 0 {
				if discSt != nil && time.Until(deadline) > processWait {
					deadline = time.Now().Add(processWait) // after the Disconnect's: look a while longer
				}
				wait := time.Until(deadline)
				if wait <= 0 {
					break
				}
				p, _, _, err := io.io.Recv(wait)
				if err != nil {
					break // silence, or the connection closed
				}
				var cid uint16
				switch v := p.(type) {
				case *tcp.CapsuleResp:
					if v.CQE.CID == disc.CID && discSt == nil {
						st := v.CQE.Status
						discSt = &st
						continue
					}
					cid = v.CQE.CID
				case *tcp.C2HData:
					cid = v.CCCID
				case *tcp.R2T:
					cid = v.CCCID
				default:
					continue
				}
				what, ours := inflight[cid]
				if !ours {
					continue // not a command of this check's (FAB-DISC-001 judges strays)
				}
				if discSt != nil && discSt.Success() {
					obs = fmt.Sprintf("a %v for %s (CID %d) after the Disconnect's completion", p.Type(), what, cid)
					break
				}
				completed[cid] = true
			}
			switch {
			case discSt == nil:
				obs = "no completion for the Disconnect"
			case !discSt.Success():
				AddReportEntry("observed", fmt.Sprintf("the Disconnect with writes in flight completed with %s: the queue was not deleted", StatusOutcome(*discSt)))
				obs = "Disconnect completion last"
			case obs == "Disconnect completion last" && !completed[wsqe.CID]:
				// The withheld write never completed: its data now must
				// not be written.
				sendQuiet(io.io, h2cData(io.io, wsqe.CID, r2t.TTAG, 0, bytes.Repeat([]byte{0xC3}, int(n)), true))
				time.Sleep(processWait)
				_ = io.io.Close()
				r := s.SetupIO(s.afterWait(ctx), plainIC)
				rd := nvme.ReadCmd(r.nsid, lba, n/r.bs)
				nvme.SetDataLength(&rd, n)
				_, got, err := r.io.Command(rd, nil)
				s.mustProbeRead(err, "Read of the withheld Write's blocks on a second association")
				if !bytes.Equal(got, before) {
					obs = "the data of a Write sent before the Disconnect, given after its completion, reached the namespace"
				}
			}
			_ = io.io.Close()
			s.Conform(obs, "Disconnect completion last")
		})

		// CC.EN cleared while an I/O queue exists. "A created I/O queue
		// shall abort all commands with a status code of Command Sequence
		// Error if the associated controller is disabled"; the Controller
		// Reset that clearing CC.EN causes also "deletes all I/O
		// Submission Queues", which over fabrics a controller may carry
		// out by terminating the queue's connection. Either passes; a
		// Read that runs, or fails otherwise, does not.
		Check(Requirement{ID: "FAB-ASSOC-006", Section: secQueueInit, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-3.3.2.3-05"},
			Title:      "after CC.EN is cleared an existing I/O queue aborts its commands with Command Sequence Error (or its connection ends)",
			Text:       "A created I/O queue shall abort all commands with a status code of Command Sequence Error if the associated controller is disabled"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			rd := nvme.ReadCmd(io.nsid, 0, 1)
			nvme.SetDataLength(&rd, io.bs)
			_, _, err := io.io.Command(rd, nil)
			s.mustProbeRead(err, "Read while the controller is enabled")
			s.Must(propSet(io.admin, nvme.PropCC, false, 0), "Property Set CC.EN=0")
			if _, ok, err := waitCSTS(ctx, io.admin, nvme.CSTSReady, 0, readyTimeout(io.cap)); err != nil || !ok {
				AddReportEntry("observed", fmt.Sprintf("CSTS.RDY did not clear within CAP.TO after CC.EN=0 (%v): the property checks judge that; the Read goes anyway", err))
			}
			_, _, err = io.io.Command(rd, nil)
			var st nvme.Status
			obs := "I/O connection terminated"
			switch {
			case err == nil:
				obs = "success"
			case errors.As(err, &st):
				obs = StatusOutcome(st)
			default:
				if o := fatalErrOutcome(err); o == "no reaction" {
					obs = "no response"
				}
			}
			_ = io.io.Close()
			s.OneOf(obs, StatusOutcome(nvme.StatusCommandSequenceError), "I/O connection terminated")
		})

		// The hazard of Base 9.6: a host whose connection is lost retries
		// its write on another path; a stale copy still running on the
		// dead one must not overwrite the retry. The controller stops the
		// lost connection's commands within CQT, so: writes of one
		// content are sent and the connection is reset at once (SO_LINGER
		// 0), then, CQT and a margin later, a second association writes
		// another content to the same blocks; CQT and a margin after
		// that, the blocks must still hold it. The text bounds nothing
		// when CQT is 0.
		Check(Requirement{ID: "FAB-ASSOC-007", Section: secIOQDelete, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-3.3.2.4-06"},
			Title:      "after losing an I/O connection the controller stops its commands within CQT: a write sent on it never lands over a later write from another association",
			Text:       "If the controller terminates an NVMe Transport connection or detects an NVMe Transport connection loss, then the controller shall stop processing all commands received on I/O Queues associated with that NVMe Transport connection within the time reported in the CQT field ..., if non-zero"}, func(ctx context.Context, s *Spec) {
			// The I/O connection is dialled here, so that closing its
			// socket with SO_LINGER 0 resets it: a loss, not a close.
			nsid := s.RequireWritable()
			admin, cntlid, cp := s.EnabledAdmin(ctx, plainIC)
			defer admin.Close() // its association lives on: the loss is the I/O connection's alone
			id := s.identifyCtrl(admin)
			if id.CQT == 0 {
				s.Lacks("a Command Quiesce Time (CQT 0: the text then bounds nothing)")
			}
			var ns nvme.IdentifyNamespace
			_, data, err := admin.Command(nvme.IdentifyCmd(nvme.CNSNamespace, nsid, 0), nil)
			s.Must(err, "Identify Namespace")
			s.Must(ns.Decode(data), "decode Identify Namespace")
			bs := ns.BlockSize()
			ioset := &ioSetup{id: id, bs: bs}
			if ioset.inCapsule() < bs {
				s.Lacks(fmt.Sprintf("in-capsule data of one %d-byte block in I/O commands (IOCCSZ %d)", bs, id.IOCCSZ))
			}
			s.skipIfMQESZero(cp)
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", s.Target.Config.Address)
			s.Must(err, "dial the I/O connection")
			tc, _ := nc.(*net.TCPConn)
			io := initiator.NewRaw(nc, tcp.Config{}, s.Options())
			defer io.Close()
			_, err = io.Initialize(plainIC)
			s.Must(err, "initialize the I/O connection")
			_, err = s.connect(io, connectArgs{QID: 1, SQSIZE: min(31, cp.MQES()), CNTLID: cntlid})
			s.Must(err, "Connect I/O queue 1")
			cqt := time.Duration(id.CQT) * time.Millisecond
			lba := uint64(assocLBA + 96)
			stale := bytes.Repeat([]byte{0xC3}, int(bs))
			w := nvme.WriteCmd(nsid, lba, 1)
			nvme.SetInCapsule(&w, bs)
			_, _, err = io.Command(w, stale)
			s.Must(err, "Write on the connection to be lost")
			var seg []byte
			for range 8 {
				w.CID = io.NextCID()
				seg = append(seg, encode(io, &tcp.CapsuleCmd{SQE: w}, stale)...)
			}
			sendQuiet(io, seg)
			if tc != nil {
				_ = tc.SetLinger(0)
			}
			_ = nc.Close()
			lost := time.Now()

			time.Sleep(cqt + processWait)
			r := s.SetupIO(s.afterWait(ctx), plainIC)
			retry := bytes.Repeat([]byte{0x3C}, int(r.bs))
			w2 := nvme.WriteCmd(r.nsid, lba, 1)
			nvme.SetInCapsule(&w2, r.bs)
			_, _, err = r.io.Command(w2, retry)
			s.Must(err, "the retried Write on a second association")
			time.Sleep(cqt + processWait)
			rd := nvme.ReadCmd(r.nsid, lba, 1)
			nvme.SetDataLength(&rd, r.bs)
			_, got, err := r.io.Command(rd, nil)
			s.mustProbeRead(err, "Read of the block")
			obs := "retry kept"
			switch {
			case bytes.Equal(got, stale):
				obs = fmt.Sprintf("a Write sent on the lost connection landed over a later Write from another association (read %v after the loss, CQT %v)", time.Since(lost).Round(time.Second), cqt)
			case !bytes.Equal(got, retry):
				// Neither: the retried Write itself did not stay, which is
				// what the Write checks judge (one root cause, one failing
				// check).
				Skip(fmt.Sprintf("%s: the Write of the second association did not reach the namespace either, so nothing tells a stale write from a lost one (IO-RW-001 judges Writes)", s.Req.ID))
			}
			s.Conform(obs, "retry kept")
		})

		// Connect asks for a short KATO; the host then stays silent past
		// it without enabling the controller. The timer is inactive until
		// CC.EN and CSTS.RDY are 1, so the association must still be
		// there to enable. KATO is the first multiple of the KAS
		// granularity (read on an association of its own) from 1 s, so
		// that rounding does not make the wait too short; the wait is
		// twice that, and the host sends nothing meanwhile, which no
		// keep alive mode counts as traffic.
		Check(Requirement{ID: "FAB-ASSOC-004", Section: secKATOActive, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-3.9.2-01"},
			Title:      "no Keep Alive Timeout before the controller is enabled: an association silent past its KATO between Connect and CC.EN=1 can still be enabled and used",
			Text:       "The Keep Alive Timer is active if: CC.EN is set to '1'; CSTS.RDY is set to '1'; ... Otherwise, the Keep Alive Timer is inactive, and a Keep Alive Timeout ... shall not occur on the controller"}, func(ctx context.Context, s *Spec) {
			probe, _, _ := s.EnabledAdmin(ctx, plainIC)
			kas := s.identifyCtrl(probe).KAS
			_ = probe.Close()
			if kas == 0 {
				s.Lacks("the Keep Alive Timer feature (KAS 0)")
			}
			granule := time.Duration(kas) * 100 * time.Millisecond
			kato := (time.Second + granule - 1) / granule * granule
			r := s.Raw(ctx, plainIC)
			_, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, KATO: uint32(kato / time.Millisecond)})
			s.Must(err, fmt.Sprintf("admin Connect with KATO %v", kato))
			wait := 2 * kato
			obs := "association alive"
			if p, _, _, err := r.Recv(wait); err == nil {
				obs = fmt.Sprintf("an unexpected %v on the idle admin queue before CC.EN=1", p.Type())
			} else if o := fatalErrOutcome(err); o != "no reaction" {
				obs = fmt.Sprintf("the association ended (%s) within %v of a Connect with KATO %v, before CC.EN=1", o, wait, kato)
			}
			actx := s.afterWait(ctx)
			if obs == "association alive" {
				v, err := propGet(r, nvme.PropCAP, true)
				if err == nil {
					err = propSet(r, nvme.PropCC, false, ccEnable)
				}
				if err == nil {
					if _, ok, werr := waitCSTS(actx, r, nvme.CSTSReady, nvme.CSTSReady, readyTimeout(nvme.CAP(v))+10*time.Second); werr != nil || !ok {
						err = fmt.Errorf("CSTS.RDY did not become 1 (%v)", werr)
					}
				}
				if err == nil {
					_, _, err = r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
				}
				if err != nil {
					obs = fmt.Sprintf("after %v silent before CC.EN=1 (KATO %v) enabling and using the controller failed: %s", wait, kato, Outcome(err))
				}
			}
			_ = r.Close()
			s.Conform(obs, "association alive")
		})
	})
})

// setupSmallIO is SetupIO with a two-entry I/O queue (SQSIZE 1), connected
// with cattr; it skips the check when CATTR asks to disable SQ flow
// control and the Connect response's SQHD (FFFFh only then) says the
// controller keeps it.
func (s *Spec) setupSmallIO(ctx context.Context, cattr uint8) *ioSetup {
	GinkgoHelper()
	st, cntlid := s.ioAdmin(ctx)
	r := s.Raw(ctx, plainIC)
	cqe, err := s.connect(r, connectArgs{QID: 1, SQSIZE: 1, CNTLID: cntlid, CATTR: cattr})
	if err != nil && cattr&nvme.CATTRDisableSQFlow != 0 {
		Skip(fmt.Sprintf("%s: the I/O queue Connect asking to disable SQ flow control failed (%s): FAB-CONN-033 judges that", s.Req.ID, Outcome(err)))
	}
	s.Must(err, "Connect I/O queue 1 with SQSIZE 1")
	switch {
	case cattr&nvme.CATTRDisableSQFlow != 0 && cqe.SQHD != 0xFFFF:
		s.Lacks("disabling SQ flow control (the Connect response's SQHD is not FFFFh)")
	case cattr&nvme.CATTRDisableSQFlow == 0 && cqe.SQHD == 0xFFFF:
		// The controller says SQ flow control is off though nobody asked:
		// there is no "full queue" to overrun (FAB-CONN-032's finding).
		Skip(fmt.Sprintf("%s: the Connect response's SQHD is FFFFh without DISSQFC: FAB-CONN-032 judges that", s.Req.ID))
	}
	st.io = r
	return st
}

// overrunReaction watches the I/O queue after the Read (cid) went to a
// full queue, while the Write of n bytes waits for its data (r2t):
// "connection terminated" (closed, reset or a C2HTermReq), "not detected"
// when both commands complete successfully once the Write's data is sent,
// or what went wrong.
func (s *Spec) overrunReaction(io *ioSetup, cid uint16, r2t *tcp.R2T, n uint32) string {
	GinkgoHelper()
	r := io.io
	sent := false
	done := map[uint16]bool{}
	deadline := time.Now().Add(processWait + s.fatalWait())
	for len(done) < 2 {
		wait := time.Until(deadline)
		if wait <= 0 {
			return "no completion for the two commands"
		}
		if !sent {
			wait = min(wait, processWait)
		}
		p, _, _, err := r.Recv(wait)
		if err != nil {
			o := fatalErrOutcome(err)
			if o != "no reaction" {
				return "connection terminated"
			}
			if sent {
				return "no completion for the two commands"
			}
			// Nothing yet: the Read may wait behind the Write. The Write's
			// data lets both finish.
			sendQuiet(r, h2cData(r, r2t.CCCID, r2t.TTAG, 0, make([]byte, n), true))
			sent = true
			continue
		}
		switch v := p.(type) {
		case *tcp.TermReq:
			_ = r.Close() // the host's duty
			return "connection terminated"
		case *tcp.CapsuleResp:
			if !v.CQE.Status.Success() {
				return fmt.Sprintf("a command completed with %s instead of the overrun being ignored or ending the association", StatusOutcome(v.CQE.Status))
			}
			done[v.CQE.CID] = true
		case *tcp.C2HData:
			if v.Success {
				done[v.CCCID] = true
			}
		}
		if done[cid] && !sent {
			// The Read ran: the controller did not take the queue for
			// full. The Write still needs its data.
			sendQuiet(r, h2cData(r, r2t.CCCID, r2t.TTAG, 0, make([]byte, n), true))
			sent = true
		}
	}
	AddReportEntry("observed", "the controller processed the command sent to the full queue (it did not detect the overrun, which the text allows)")
	return "not detected"
}

// overrunEnded is the reaction to a detected overrun the text asks for.
const overrunEnded = "connection and association ended"

// associationEnded judges, after an overrun ended the I/O connection,
// whether the association ended too: its admin connection closes or
// stops answering within the bound a fatal reaction gets. It polls CSTS
// meanwhile, to report CFS.
func (s *Spec) associationEnded(admin *initiator.Raw) string {
	deadline := time.Now().Add(s.fatalWait())
	var csts uint64
	for {
		v, err := propGet(admin, nvme.PropCSTS, false)
		if err != nil {
			var st nvme.Status
			if errors.As(err, &st) {
				AddReportEntry("observed", fmt.Sprintf("after the overrun the admin queue fails Property Get with %s", Outcome(err)))
			}
			return overrunEnded
		}
		csts = v
		if time.Now().After(deadline) {
			return fmt.Sprintf("the I/O connection ended but the association lives on (CSTS %#x, CFS %d)", csts, csts>>1&1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
