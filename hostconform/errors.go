package hostconform

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
)

// Command errors and their handling (NVMe Base 2.2 4.2.3, Figure 100):
// what the host does with a command the controller failed.
func init() { register(errorChecks...) }

// dnrStatus is the status the HOST-ERR-001 controller fails the check's
// read with: Unrecovered Read Error (SCT 2h, SC 81h), with DNR.
const dnrStatus = nvme.Status(0x281) | nvme.StatusDNR

// offCQEStatus is the Status field's byte offset in a CapsuleResp
// (8-byte common header, then the CQE; status in bits 31:17 of DW3).
const offCQEStatus = 8 + 14

var errorChecks = []Check{
	{
		Requirement: suites.Requirement{
			// The text gives DNR as what to expect, not as a duty: with
			// DNR set a re-submission "is expected to fail", with DNR
			// cleared the command "may succeed if retried". Nothing
			// forbids the host to try again, so the check is optional.
			ID: "HOST-ERR-001", Section: "NVMe Base 2.2 4.2.3 Fig.100", Keyword: suites.May,
			Title:      "The host does not re-submit unchanged a command the controller failed with Do Not Retry (DNR) set",
			Text:       "Do Not Retry (DNR): If this bit is set to '1', then this bit indicates that if the same command is re-submitted to any controller in the NVM subsystem, then that re-submitted command is expected to fail. If this bit is cleared to '0', then this bit indicates that the same command may succeed if retried.",
			Statements: []string{"B-F100-01"},
		},
		Area: "io", Deviation: "retry-dnr",
		Controller: func(s *Setup) {
			s.ToHost = failOnceDNR()
		},
		Run: func(t *T) {
			t.MustConnect()
			ioErr := t.IO("read", checkReadSize, checkReadSize)
			on, failed := injected(t.Ctrl.Conns(), tcp.TypeCapsuleResp)
			if failed == nil {
				t.Failf("%s: the host made no %d-byte read on an I/O queue (%v)", t.Check.ID, checkReadSize, ioErr)
			}
			if ioErr == nil {
				t.Detail("the host's read succeeded: it read the blocks again after the failure")
			}
			// A host that retries does so at once or after a delay of
			// its own (CRD is 0): give it a moment.
			sleepCtx(t, time.Now().Add(500*time.Millisecond))
			orig := commandBefore(on, failed.PDU.(*tcp.CapsuleResp).CQE.CID, failed.Seq)
			if orig == nil {
				t.Failf("%s: no command for the failed completion", t.Check.ID)
			}
			n := 0
			for _, c := range t.Ctrl.Conns() {
				if c.QID() <= 0 {
					continue
				}
				for _, f := range c.Sent() {
					if s := Command(f); s != nil && f.At.After(failed.At) && sameCommand(s, orig) {
						n++
					}
				}
			}
			t.Detail("the read failed with status %#x (DNR); the host sent it again %d times", uint16(dnrStatus), n)
			if n > 0 {
				t.Conform("re-submitted a command failed with DNR", "no re-submission after DNR")
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-ERR-002", Section: "NVMe Base 2.2 4.2.3 Fig.107", Keyword: suites.Should,
			Title:      "The host does not re-submit to the same controller a command failed with Asymmetric Access Inaccessible while the namespace stays inaccessible there",
			Text:       "Asymmetric Access Inaccessible: The requested function (e.g., command) is not able to be performed as a result of the relationship between the controller and the namespace ... being in the ANA Inaccessible state ... The command should not be re-submitted to the same controller.",
			Statements: []string{"B-F107-01"},
		},
		Area: "io", Deviation: "retry-path-inaccessible",
		// A host that reads the ANA log on the change notice (Linux
		// does) learns the group is inaccessible, holds the read and
		// never gets the status the check judges its reaction to: the
		// controller withholds the notice while the group is
		// inaccessible, and hands it over when the group is back.
		Controller: func(s *Setup) { s.ToHost = holdANANotice },
		Run: func(t *T) {
			t.MustConnect()
			tgt := t.Ctrl.Target()
			admin := eventAdmin(t)
			hold := &anaHold{}
			anaHeld.Store(admin, hold)
			defer anaHeld.Delete(admin)
			defer hold.release(admin)
			if err := tgt.SetANAState(1, 1, nvme.ANAInaccessible); err != nil {
				t.Failf("%s: the test controller could not make ANA group 1 inaccessible: %v", t.Check.ID, err)
			}
			// A multipath host may hold the read until a path comes
			// back: the group stays inaccessible for the window judged,
			// then becomes optimized again and the read may finish.
			ioErr := make(chan error, 1)
			go func() { ioErr <- t.IO("read", checkReadSize, checkReadSize) }()
			var failed *Frame
			var orig *nvme.SQE
			t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool {
				failed, orig = pathFailure(t)
				return failed != nil
			})
			if failed == nil {
				_ = tgt.SetANAState(1, 1, nvme.ANAOptimized)
				hold.release(admin)
				<-ioErr
				t.Failf("%s: the host made no %d-byte read the controller failed with Asymmetric Access Inaccessible", t.Check.ID, checkReadSize)
			}
			sleepCtx(t, failed.At.Add(500*time.Millisecond))
			restored := time.Now()
			_ = tgt.SetANAState(1, 1, nvme.ANAOptimized)
			hold.release(admin)
			err := <-ioErr
			n := 0
			for _, c := range t.Ctrl.Conns() {
				if c.QID() <= 0 {
					continue
				}
				for _, f := range c.Sent() {
					if s := Command(f); s != nil && f.At.After(failed.At) && f.At.Before(restored) && sameCommand(s, orig) {
						n++
					}
				}
			}
			t.Detail("the read failed with Asymmetric Access Inaccessible; %d re-submissions to the same controller while inaccessible; the read then returned %v", n, err)
			if n > 0 {
				t.Conform("re-submitted to the same controller while inaccessible", "no re-submission to the same controller")
			}
		},
	},
}

// anaHeld holds, per admin connection, the HOST-ERR-002 controller's
// withheld ANA change notices (set by the check, read by its hook on the
// target's goroutine).
var anaHeld sync.Map // *Conn -> *anaHold

// anaHold is the Asynchronous Event Request completions carrying an ANA
// change notice that the controller keeps from the host until release.
type anaHold struct {
	mu       sync.Mutex
	released bool
	raw      [][]byte
}

// release hands the withheld completions to the host (once): it then
// reads the ANA log and finds the group accessible again.
func (h *anaHold) release(admin *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	for _, raw := range h.raw {
		_ = admin.Inject(raw)
	}
	h.raw = nil
}

// holdANANotice withholds, on an admin connection the check holds
// (anaHeld), the completion of an Asynchronous Event Request that
// notices an ANA change.
func holdANANotice(c *Conn, f *Frame) [][]byte {
	r, ok := f.PDU.(*tcp.CapsuleResp)
	if !ok || c.QID() != 0 {
		return pass(f)
	}
	v, ok := anaHeld.Load(c)
	if !ok {
		return pass(f)
	}
	s := commandOf(c, r.CQE.CID)
	if s == nil || s.Opcode != nvme.AdminAsyncEventReq || r.CQE.DW0&7 != nvme.AENTypeNotice || uint8(r.CQE.DW0>>8) != nvme.AENNoticeANAChange {
		return pass(f)
	}
	h := v.(*anaHold)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return pass(f)
	}
	h.raw = append(h.raw, append([]byte(nil), f.Raw...))
	return nil
}

// pathFailure finds the first checkReadSize read on an I/O queue the
// controller failed with Asymmetric Access Inaccessible: the completion
// and the command.
func pathFailure(t *T) (*Frame, *nvme.SQE) {
	for _, c := range t.Ctrl.Conns() {
		if c.QID() <= 0 {
			continue
		}
		for _, f := range c.Received() {
			if r, ok := f.PDU.(*tcp.CapsuleResp); ok && r.CQE.Status.Code() == nvme.StatusANAInaccessible {
				if s := commandBefore(c, r.CQE.CID, f.Seq); s != nil && s.Opcode == 0x02 && commandLength(c, r.CQE.CID) == checkReadSize {
					return f, s
				}
			}
		}
	}
	return nil, nil
}

// failOnceDNR is a controller that fails the first checkReadSize read on
// an I/O queue: its data is withheld and its completion carries
// dnrStatus. (A read the target completes with a SUCCESS C2HData has no
// CapsuleResp to change: the hook then sends one of its own.)
func failOnceDNR() Hook {
	var mu sync.Mutex
	var cid uint16
	var conn *Conn
	done := false
	return func(c *Conn, f *Frame) [][]byte {
		if c.QID() <= 0 {
			return pass(f)
		}
		switch p := f.PDU.(type) {
		case *tcp.C2HData:
			mu.Lock()
			defer mu.Unlock()
			if !done && conn == nil && commandLength(c, p.CCCID) == checkReadSize {
				conn, cid = c, p.CCCID
			}
			if conn != c || p.CCCID != cid || done {
				return pass(f)
			}
			if p.Success {
				done = true
				return [][]byte{errorResp(c, cid)}
			}
			return nil
		case *tcp.CapsuleResp:
			mu.Lock()
			defer mu.Unlock()
			if !done && conn == nil && commandLength(c, p.CQE.CID) == checkReadSize {
				conn, cid = c, p.CQE.CID
			}
			if conn != c || p.CQE.CID != cid || done {
				return pass(f)
			}
			done = true
			raw := append([]byte(nil), f.Raw...)
			st := binary.LittleEndian.Uint16(raw[offCQEStatus:])
			binary.LittleEndian.PutUint16(raw[offCQEStatus:], st&1|uint16(dnrStatus)<<1)
			return [][]byte{FixDigests(raw)}
		}
		return pass(f)
	}
}

// errorResp is a CapsuleResp failing cid with dnrStatus.
func errorResp(c *Conn, cid uint16) []byte { return capsuleResp(c, cid, dnrStatus) }

// capsuleResp is a CapsuleResp completing cid with status st, with the
// header digest c's ICResp enabled.
func capsuleResp(c *Conn, cid uint16, st nvme.Status) []byte {
	r := c.ICResp()
	hd := r != nil && r.DGST&tcp.DgstHeader != 0
	return tcp.AppendPDU(nil, &tcp.CapsuleResp{CQE: nvme.CQE{CID: cid, SQHD: 0xFFFF, Status: st}}, nil, tcp.EncodeOptions{Digests: tcp.Digests{Header: hd}})
}

// commandBefore is the command with identifier cid the host sent on c
// before frame seq.
func commandBefore(c *Conn, cid uint16, seq int) *nvme.SQE {
	var out *nvme.SQE
	for _, f := range c.Sent() {
		if s := Command(f); s != nil && f.Seq < seq && s.CID == cid {
			out = s
		}
	}
	return out
}

// sameCommand reports whether a and b are the same command but for
// their identifier: opcode, namespace and command dwords 10 to 15.
func sameCommand(a, b *nvme.SQE) bool {
	return a.Opcode == b.Opcode && a.NSID == b.NSID && a.CDW10 == b.CDW10 && a.CDW11 == b.CDW11 &&
		a.CDW12 == b.CDW12 && a.CDW13 == b.CDW13 && a.CDW14 == b.CDW14 && a.CDW15 == b.CDW15
}
