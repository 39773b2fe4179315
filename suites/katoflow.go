package suites

import (
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

// Checks on what a Connect negotiates for the life of an association and
// its queues: keep alive (KATO 0 where NVMe/TCP requires keep alive), SQ
// flow control (the Connect response's SQHD) and the deletion of one I/O
// queue without the host's INDIVIOQDELS. Held against NVMe Base 2.2 3.3.2.4,
// 3.9.1 and 6.3, and NVMe/TCP 1.0 3.4.

// sqhdObservation renders the SQHD of a Connect response on a queue of
// sqsize+1 entries: "SQHD FFFFh" (SQ flow control disabled), a head
// pointer inside the queue, or one outside it.
func sqhdObservation(sqhd, sqsize uint16) string {
	switch {
	case sqhd == 0xFFFF:
		return "SQHD FFFFh"
	case sqhd > sqsize:
		return fmt.Sprintf("SQHD %d, outside a queue of %d entries", sqhd, int(sqsize)+1)
	}
	return "SQHD a head pointer inside the queue"
}

var _ = Describe("Fabrics", Label("fabrics"), func() {
	Describe("association: keep alive, SQ flow control, I/O queue deletion", Label("fabrics-assoc"), func() {
		// NVMe/TCP requires keep alive (NVMe/TCP 1.0 3.4) and 3.9.1 makes
		// "a command" that clears KATO to 0h fail with Keep Alive Timeout
		// Invalid; the Connect KATO "has the same definition" (Fig. 546),
		// so a controller may refuse an admin Connect with KATO 0 that way.
		// Whether a Connect, which creates the controller with its timer
		// inactive, "attempts to disable" the timer is not settled by the
		// text (Linux nvmet and SPDK accept it), so success passes too.
		// What the text rules out is refusing it with another status.
		Check(Requirement{ID: "FAB-CONN-031", Section: secKATOConfig + "; " + secConnectSQE + "; " + secTCPKeepAlive, Keyword: Shall, Binds: Controller,
			Text:       "a command attempts to disable the Keep Alive Timer by clearing the Keep Alive Timeout value to 0h, then the controller shall abort that command with a status code of Keep Alive Timeout Invalid",
			Statements: []string{"B-3.9.1-01"},
			Title:      "an admin Connect with KATO 0 either succeeds or fails with Keep Alive Timeout Invalid (NVMe/TCP requires keep alive), never with another status"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, KATOZero: true})
			s.OneOf(ConnectOutcome(cqe, err), StatusOutcome(nvme.StatusKeepAliveInvalid), "success")
		})
		// 6.3: "If the Connect command did not request that SQ flow control
		// be disabled, then the controller shall not set the SQHD field to
		// FFFFh"; flow control is then on and SQHD is the SQ head pointer
		// (Fig. 548), an index into the queue.
		Check(Requirement{ID: "FAB-CONN-032", Section: secConnect + "; " + secConnectResp, Keyword: Shall, Binds: Controller,
			Text:       "If the Connect command did not request that SQ flow control be disabled, then the controller shall not set the SQHD field to FFFFh in the response to that Connect command",
			Statements: []string{"B-6.3-21", "B-6.3-26"},
			Title:      "the response to an admin or I/O queue Connect without DISSQFC carries a real SQ head pointer, never FFFFh"}, func(ctx context.Context, s *Spec) {
			const ioSQSIZE = 15
			r := s.Raw(ctx, plainIC)
			cqe, err := s.adminConnect(r)
			s.Must(err, "admin Connect")
			s.Conform("admin queue: "+sqhdObservation(cqe.SQHD, initiator.AdminQueueSize-1), "admin queue: SQHD a head pointer inside the queue")
			cntlid := uint16(cqe.DW0)
			s.enableRaw(ctx, r)
			cqe, err = s.connect(s.Raw(ctx, plainIC), connectArgs{QID: 1, SQSIZE: ioSQSIZE, CNTLID: cntlid})
			s.Must(err, "Connect I/O queue 1")
			s.Conform("I/O queue: "+sqhdObservation(cqe.SQHD, ioSQSIZE), "I/O queue: SQHD a head pointer inside the queue")
		})
		// 6.3: "A controller that agrees to disable SQ flow control shall
		// set the SQHD field to FFFFh ... A controller that does not agree
		// ... shall set the SQHD field to a value other than FFFFh in the
		// response to that Connect command": the answer to DISSQFC is the
		// SQHD of a completed Connect, and both answers are allowed. A
		// Connect refused for asking is neither.
		Check(Requirement{ID: "FAB-CONN-033", Section: secConnect + "; " + secConnectSQE, Keyword: Shall, Binds: Controller,
			Text:       "Use of SQ flow control is negotiated by the Connect command and response ... A controller that agrees to disable SQ flow control shall set the SQHD field to FFFFh ... A controller that does not agree ... shall set the SQHD field to a value other than FFFFh",
			Statements: []string{"B-6.3-20"},
			Title:      "an admin or I/O queue Connect with DISSQFC succeeds and its SQHD answers: FFFFh (SQ flow control disabled) or a head pointer inside the queue (kept)"}, func(ctx context.Context, s *Spec) {
			const ioSQSIZE = 15
			answer := func(q string, cqe nvme.CQE, err error, sqsize uint16) {
				GinkgoHelper()
				obs := ConnectOutcome(cqe, err)
				if err == nil {
					obs = sqhdObservation(cqe.SQHD, sqsize)
				}
				s.OneOf(q+": "+obs, q+": SQHD FFFFh", q+": SQHD a head pointer inside the queue")
			}
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CATTR: nvme.CATTRDisableSQFlow})
			answer("admin queue", cqe, err, initiator.AdminQueueSize-1)
			cntlid := uint16(cqe.DW0)
			s.enableRaw(ctx, r)
			cqe, err = s.connect(s.Raw(ctx, plainIC), connectArgs{QID: 1, SQSIZE: ioSQSIZE, CNTLID: cntlid, CATTR: nvme.CATTRDisableSQFlow})
			answer("I/O queue", cqe, err, ioSQSIZE)
		})
		// 3.3.2.4: "If either the host or the controller does not support
		// deletion of an individual I/O Queue, then the deletion of an
		// individual I/O Queue ... causes the association to be
		// terminated." The host says it does not by leaving INDIVIOQDELS
		// clear in the admin Connect (FAB-DISC-002 is the other branch).
		// A Disconnect that fails deletes nothing ("the host may delete an
		// I/O Queue using other methods"), so it ends nothing either.
		Check(Requirement{ID: "FAB-DISC-011", Section: secIOQDeletion + "; " + secDisconnect, Keyword: Indicative, Binds: Controller,
			Text:       "If either the host or the controller does not support deletion of an individual I/O Queue, then the deletion of an individual I/O Queue or the termination of an NVMe Transport connection causes the association to be terminated",
			Statements: []string{"B-3.3.2.4-02"},
			Title:      "a Disconnect that deletes an I/O queue ends the association when the admin Connect left CATTR.INDIVIOQDELS clear"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, _ := s.EnabledAdmin(ctx, plainIC) // adminConnect: CATTR 0
			s.requireDisconnect(s.identifyCtrl(admin))
			io := s.Raw(ctx, plainIC)
			_, err := s.connect(io, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
			s.Must(err, "Connect I/O queue 1")
			_, _, err = io.Command(nvme.DisconnectCmd(0), nil)
			if err != nil {
				AddReportEntry("observed", fmt.Sprintf("%s: Disconnect %s: no queue deleted, the association may live", s.Req.ID, Outcome(err)))
				return
			}
			_ = io.Close()
			// The end may take a moment: poll the admin queue, then try
			// the freed QID once (a second try would find it connected).
			obs := "association alive"
			for end := time.Now().Add(s.fatalWait()); obs == "association alive" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if _, _, err := admin.Command(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil); err != nil {
					obs = "association ended (admin queue: " + Outcome(err) + ")"
				}
			}
			if obs == "association alive" {
				cqe, err := s.connect(s.Raw(ctx, plainIC), connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
				if err != nil {
					obs = "association ended (I/O queue Connect to its CNTLID: " + ConnectOutcome(cqe, err) + ")"
				} else {
					obs = "association alive: admin queue answers and the freed QID connects again"
				}
			}
			if strings.HasPrefix(obs, "association ended") {
				AddReportEntry("observed", s.Req.ID+": "+obs)
				return
			}
			s.Conform(obs, "association ended")
		})
	})
})

var _ = Describe("admin", Label("admin"), func() {
	// 3.9.1 with NVMe/TCP 1.0 3.4 ("The NVMe/TCP Transport requires the
	// use of the Keep Alive feature"): a Set Features that clears KATO is
	// refused and KATO stays as it was.
	Check(Requirement{ID: "ADM-KA-011", Section: secKATOConfig + "; " + secTCPKeepAlive, Keyword: Shall, Binds: Controller,
		Text:       "If an NVMe Transport binding specification requires the use of the Keep Alive Timer feature, and a command attempts to disable the Keep Alive Timer by clearing the Keep Alive Timeout value to 0h, then the controller shall abort that command with a status code of Keep Alive Timeout Invalid and the Keep Alive Timeout value at the controller shall not be changed",
		Statements: []string{"B-3.9.1-01"},
		Title:      "Set Features Keep Alive Timer with KATO 0 fails with Keep Alive Timeout Invalid and leaves KATO as it was"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx) // the host library's non-zero KATO
		if idCtrl(c).KAS == 0 {
			s.Lacks("the Keep Alive Timer feature (KAS 0; ADM-ID-013 judges that)")
		}
		before := s.getKATO(ctx, c)
		_, err := c.SetFeatures(ctx, nvme.FeatKeepAliveTimer, 0, 0, false, nil)
		// One observation for both halves of the rule, so that a profile
		// can document a controller that breaks both at once.
		kato := "KATO unchanged"
		if after := s.getKATO(ctx, c); after != before {
			kato = fmt.Sprintf("KATO %d ms (was %d ms)", after.Milliseconds(), before.Milliseconds())
		}
		s.Conform(Outcome(err)+", "+kato, StatusOutcome(nvme.StatusKeepAliveInvalid)+", KATO unchanged")
	})
})

var _ = Describe("Transport", Label("transport"), func() {
	// NVMe/TCP 1.0 3.3.2.1: "The SUCCESS flag may be set to '1' in the
	// last C2HData PDU only if the controller supports disabling
	// Submission Queue Head Pointer (SQHD) updates"; with SUCCESS "no
	// Response Capsule is sent", without it the controller "shall send a
	// Response Capsule". TCP-DATA-001 reads on a queue with SQ flow
	// control on; this reads on an admin queue whose Connect asked for it
	// off (DISSQFC), where SUCCESS is at home if the controller agreed
	// (SQHD FFFFh) and out of place if it kept flow control on the very
	// queue that asked.
	Check(Requirement{ID: "TCP-DATA-031", Section: secC2HData + "; " + secConnect, Keyword: Shall, Binds: Controller,
		Text:       "The SUCCESS flag may be set to '1' in the last C2HData PDU only if the controller supports disabling Submission Queue Head Pointer (SQHD) updates; If the SUCCESS flag is cleared to '0' in the last C2HData PDU of a command, then the controller shall send a Response Capsule",
		Statements: []string{"T-3.3.2.1-06", "T-3.3.2.1-08", "T-3.3.2.1-09", "T-3.3.2.1-10"},
		Title:      "on an admin queue whose Connect asked to disable SQ flow control, a read's last C2HData carries SUCCESS only if the controller agreed (SQHD FFFFh), and then no response capsule follows; without SUCCESS one does"}, func(ctx context.Context, s *Spec) {
		r := s.Raw(ctx, plainIC)
		cqe, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CATTR: nvme.CATTRDisableSQFlow})
		if err != nil {
			Skip(fmt.Sprintf("%s: the admin Connect with DISSQFC failed (%s), so no queue asked for SQ flow control off (FAB-CONN-033 judges that)", s.Req.ID, ConnectOutcome(cqe, err)))
		}
		disabled := cqe.SQHD == 0xFFFF
		s.enableRaw(ctx, r)
		sqe := nvme.IdentifyCmd(nvme.CNSController, 0, 0)
		sqe.CID = r.NextCID()
		s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil), "send Identify")
		success, responded := false, false
		for !success && !responded {
			p, _, _, err := r.Recv(0)
			var fe *tcp.FatalError
			if errors.As(err, &fe) {
				// e.g. SUCCESS without LAST_PDU (T-3.3.2.1-09)
				s.Conform("C2HData a host must treat as a fatal error ("+fe.Reason+")", "C2HData ending with LAST_PDU")
			}
			s.Must(err, "receive the Identify data")
			switch v := p.(type) {
			case *tcp.C2HData:
				success = v.Success
			case *tcp.CapsuleResp:
				responded = v.CQE.CID == sqe.CID
			}
		}
		AddReportEntry("observed", fmt.Sprintf("%s: SQ flow control disabled: %v, C2HData SUCCESS: %v", s.Req.ID, disabled, success))
		if !success {
			return // the Identify's own response capsule came
		}
		if !disabled {
			s.Conform("C2HData SUCCESS on a queue whose DISSQFC request the controller refused", "SUCCESS only where SQ flow control is disabled")
		}
		// SUCCESS completed the Identify: the next PDU must answer the
		// next command, not complete the Identify a second time.
		s.nextAnswersNext(r, sqe.CID)
	})
})
