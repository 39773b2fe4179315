package suites

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// The fabrics area: Connect for the admin and I/O queues, Property Get and
// Set, the controller enable and shutdown sequences, and Disconnect.

// Canonical Connect observations.
func invalidParam(inData bool, off uint16) string {
	a := 0
	if inData {
		a = 1
	}
	return fmt.Sprintf("status 0x1/0x82 IATTR %d IPO %d", a, off)
}

var (
	stInvalidField = StatusOutcome(nvme.StatusInvalidField)
	stSeqError     = StatusOutcome(nvme.StatusCommandSequenceError)
)

var _ = Describe("Fabrics", Label("fabrics"), func() {
	Describe("admin queue Connect", Label("fabrics-connect"), func() {
		Check(Requirement{ID: "FAB-CONN-001", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an admin Connect with valid parameters succeeds and DW0 holds a valid CNTLID (not FFFFh/FFFEh)"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cqe, err := s.adminConnect(r)
			s.Conform(Outcome(err), "success")
			id := uint16(cqe.DW0)
			obs := "valid CNTLID"
			if id >= 0xFFF0 {
				obs = fmt.Sprintf("CNTLID %#x", id)
			}
			s.Conform(obs, "valid CNTLID")
		})
		Check(Requirement{ID: "FAB-CONN-002", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a Connect response echoes the command's CID"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cd := nvme.ConnectData{HostID: s.hostID(s.hostNQN()), CNTLID: nvme.CNTLIDDynamic, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
			cmd := nvme.Connect{SQSIZE: initiator.AdminQueueSize - 1}
			s.Must(r.Conn.Send(&tcp.CapsuleCmd{SQE: cmd.SQE(0x1234)}, cd.Append(nil)), "send Connect")
			p, _, _, err := r.Recv(0)
			s.Must(err, "receive the Connect response")
			resp, ok := p.(*tcp.CapsuleResp)
			if !ok {
				s.Conform("PDU "+p.Type().String(), "CapsuleResp")
			}
			s.Conform(fmt.Sprintf("CID %#x", resp.CQE.CID), "CID 0x1234")
		})
		Check(Requirement{ID: "FAB-CONN-003", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a Connect with RECFMT 1 fails with Connect Incompatible Format (01/80)"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			_, err := s.connect(r, connectArgs{RECFMT: 1, SQSIZE: 31, CNTLID: nvme.CNTLIDDynamic})
			s.Conform(Outcome(err), StatusOutcome(nvme.StatusConnectIncompatibleFormat))
		})
		for i, id := range []uint16{1, nvme.CNTLIDStatic} {
			Check(Requirement{ID: fmt.Sprintf("FAB-CONN-%03d", 4+i), Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
				Title: fmt.Sprintf("an admin Connect with CNTLID %#x to a dynamic-model subsystem fails 01/82 with IATTR/IPO at CNTLID", id)},
				func(ctx context.Context, s *Spec) {
					r := s.Raw(ctx, plainIC)
					cqe, err := s.connect(r, connectArgs{SQSIZE: 31, CNTLID: id})
					s.Conform(ConnectOutcome(cqe, err), invalidParam(true, nvme.ConnectDataOffCNTLID))
				})
		}
		Check(Requirement{ID: "FAB-CONN-006", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an admin Connect with SQSIZE 0 fails 01/82 with IPO at SQSIZE"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r, connectArgs{SQSIZE: 0, CNTLID: nvme.CNTLIDDynamic})
			s.Conform(ConnectOutcome(cqe, err), invalidParam(false, nvme.ConnectOffSQSIZE))
		})
		Check(Requirement{ID: "FAB-CONN-007", Section: "NVMe-oF 1.1 3.3", Level: Recommended,
			Title: "an admin Connect with SQSIZE above the admin queue limit (4095) fails 01/82 with IPO at SQSIZE"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r, connectArgs{SQSIZE: 0xFFFF, CNTLID: nvme.CNTLIDDynamic})
			s.Conform(ConnectOutcome(cqe, err), invalidParam(false, nvme.ConnectOffSQSIZE))
		})
		Check(Requirement{ID: "FAB-CONN-008", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a Connect to an unknown SUBNQN fails 01/82 with IATTR 1 and IPO 256"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r, connectArgs{SQSIZE: 31, CNTLID: nvme.CNTLIDDynamic, SubNQN: "nqn.2014-08.io.nvmftest:no-such-subsystem"})
			s.Conform(ConnectOutcome(cqe, err), invalidParam(true, nvme.ConnectDataOffSUBNQN))
		})
		Check(Requirement{ID: "FAB-CONN-009", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a Connect from a host the subsystem does not allow fails with Connect Invalid Host (01/84)"}, func(ctx context.Context, s *Spec) {
			nqn := s.Target.Config.RestrictedSubNQN
			if nqn == "" {
				s.Lacks("a host-restricted subsystem to test (give --restricted-nqn NQN: one that does not allow this host)")
			}
			r := s.Raw(ctx, plainIC)
			_, err := s.connect(r, connectArgs{SQSIZE: 31, CNTLID: nvme.CNTLIDDynamic, SubNQN: nqn})
			s.Conform(Outcome(err), StatusOutcome(nvme.StatusConnectInvalidHost))
		})
		Check(Requirement{ID: "FAB-CONN-010", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a Property Get before Connect fails with Command Sequence Error (or ends the connection)"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			_, err := propGet(r, nvme.PropCAP, true)
			s.OneOf(Outcome(err), stSeqError, "transport error")
		})
		Check(Requirement{ID: "FAB-CONN-011", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an Identify before Connect fails with Command Sequence Error (or ends the connection)"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			_, _, err := r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
			s.OneOf(Outcome(err), stSeqError, "transport error")
		})
		Check(Requirement{ID: "FAB-CONN-012", Section: "NVMe-oF 1.1 3.3", Level: Recommended,
			Title: "a second Connect on an already connected queue is rejected (Command Sequence Error, or Controller Busy)"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			_, err := s.adminConnect(r)
			s.OneOf(Outcome(err), stSeqError, StatusOutcome(nvme.StatusConnectControllerBusy))
		})
		Check(Requirement{ID: "FAB-CONN-013", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an admin Connect with a keep alive timeout (KATO 120 s) is accepted"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			_, err := s.connect(r, connectArgs{SQSIZE: 31, CNTLID: nvme.CNTLIDDynamic, KATO: 120000})
			s.Conform(Outcome(err), "success")
		})
		Check(Requirement{ID: "FAB-CONN-014", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a Connect whose data is shorter than 1024 bytes is rejected with an SGL data length error"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			_, err := s.connect(r, connectArgs{SQSIZE: 31, CNTLID: nvme.CNTLIDDynamic, DataLen: 512})
			s.Conform(Outcome(err), StatusOutcome(nvme.StatusSGLInvalidDataLength))
		})
		Check(Requirement{ID: "FAB-CONN-015", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a rejected Connect has DNR set"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			_, err := s.connect(r, connectArgs{SQSIZE: 31, CNTLID: nvme.CNTLIDDynamic, SubNQN: "nqn.2014-08.io.nvmftest:no-such-subsystem"})
			st, ok := err.(nvme.Status)
			obs := "DNR set"
			if !ok || !st.DNR() {
				obs = fmt.Sprintf("%v without DNR", err)
			}
			s.Conform(obs, "DNR set")
		})
		Check(Requirement{ID: "FAB-CONN-016", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "each admin Connect creates a new controller with a CNTLID unique among the subsystem's live controllers"}, func(ctx context.Context, s *Spec) {
			_, a := s.rawAdmin(ctx, plainIC)
			_, b := s.rawAdmin(ctx, plainIC)
			obs := "distinct CNTLIDs"
			if a == b {
				obs = fmt.Sprintf("both CNTLID %d", a)
			}
			s.Conform(obs, "distinct CNTLIDs")
		})
	})

	Describe("I/O queue Connect", Label("fabrics-ioq"), func() {
		ioConnect := func(ctx context.Context, s *Spec, a connectArgs) string {
			GinkgoHelper()
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r, a)
			return ConnectOutcome(cqe, err)
		}
		Check(Requirement{ID: "FAB-IOQ-001", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O queue Connect to an enabled controller succeeds and DW0 holds the controller's CNTLID"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
			s.Conform(Outcome(err), "success")
			s.Conform(fmt.Sprintf("CNTLID %d", uint16(cqe.DW0)), fmt.Sprintf("CNTLID %d", cntlid))
		})
		// The initialization sequence (NVMe Base 2.0 3.5.2) creates I/O
		// queues only once CSTS.RDY=1; the spec does not say in so many
		// words that a controller must refuse an earlier one, hence
		// "recommended".
		Check(Requirement{ID: "FAB-IOQ-002", Section: "NVMe Base 2.0 3.5.2", Level: Recommended,
			Title: "an I/O queue Connect before the controller is enabled (CC.EN=0) is rejected"}, func(ctx context.Context, s *Spec) {
			_, cntlid := s.rawAdmin(ctx, plainIC)
			obs := ioConnect(ctx, s, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
			if obs != "success" {
				AddReportEntry("observed", fmt.Sprintf("%s: %s", s.Req.ID, obs))
				obs = "rejected"
			}
			s.Conform(obs, "rejected")
		})
		Check(Requirement{ID: "FAB-IOQ-003", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O queue Connect for a QID beyond the queues granted fails 01/82 with IPO at QID"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			cqe, _, err := admin.Command(nvme.SetFeaturesCmd(nvme.FeatNumQueues, 0, nvme.NumQueuesValue(3, 3), false), nil)
			s.Must(err, "Set Features Number of Queues")
			nsq, _ := nvme.DecodeNumQueues(cqe.DW0)
			if nsq >= 0xFFFE {
				s.Lacks("a queue limit below 65535")
			}
			obs := ioConnect(ctx, s, connectArgs{QID: nsq + 2, SQSIZE: 15, CNTLID: cntlid})
			s.Conform(obs, invalidParam(false, nvme.ConnectOffQID))
		})
		Check(Requirement{ID: "FAB-IOQ-004", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "a second I/O queue Connect for a QID already connected fails with Command Sequence Error"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			cqe, err := s.connect(s.Raw(ctx, plainIC), connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
			s.Conform(ConnectOutcome(cqe, err), stSeqError)
		})
		Check(Requirement{ID: "FAB-IOQ-005", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O queue Connect naming a CNTLID that does not exist fails 01/82 with IATTR/IPO at CNTLID"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			bogus := cntlid ^ 0x0400
			obs := ioConnect(ctx, s, connectArgs{QID: 1, SQSIZE: 15, CNTLID: bogus})
			s.Conform(obs, invalidParam(true, nvme.ConnectDataOffCNTLID))
		})
		Check(Requirement{ID: "FAB-IOQ-006", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O queue Connect with a host NQN other than the controller's is rejected (01/82 or 01/84)"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			r := s.Raw(ctx, plainIC)
			_, err := s.connect(r, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid, HostNQN: s.hostNQN() + "-other"})
			s.OneOf(Outcome(err), StatusOutcome(nvme.StatusConnectInvalidParameters), StatusOutcome(nvme.StatusConnectInvalidHost))
		})
		Check(Requirement{ID: "FAB-IOQ-007", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O queue Connect with SQSIZE above CAP.MQES fails 01/82 with IPO at SQSIZE"}, func(ctx context.Context, s *Spec) {
			_, cntlid, cp := s.EnabledAdmin(ctx, plainIC)
			if cp.MQES() == 0xFFFF {
				s.Lacks("a queue size limit (CAP.MQES is 65535)")
			}
			obs := ioConnect(ctx, s, connectArgs{QID: 1, SQSIZE: cp.MQES() + 1, CNTLID: cntlid})
			s.Conform(obs, invalidParam(false, nvme.ConnectOffSQSIZE))
		})
		Check(Requirement{ID: "FAB-IOQ-008", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O queue Connect with SQSIZE 0 fails 01/82 with IPO at SQSIZE"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			obs := ioConnect(ctx, s, connectArgs{QID: 1, SQSIZE: 0, CNTLID: cntlid})
			s.Conform(obs, invalidParam(false, nvme.ConnectOffSQSIZE))
		})
		Check(Requirement{ID: "FAB-IOQ-009", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O queue Connect to an unknown SUBNQN fails 01/82 with IATTR 1 and IPO 256"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			obs := ioConnect(ctx, s, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid, SubNQN: "nqn.2014-08.io.nvmftest:no-such-subsystem"})
			s.Conform(obs, invalidParam(true, nvme.ConnectDataOffSUBNQN))
		})
		Check(Requirement{ID: "FAB-IOQ-010", Section: "NVMe-oF 1.1 3.3", Level: Mandatory,
			Title: "an I/O command on a connected I/O queue (Read of one block) completes"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			_, list, err := admin.Command(nvme.IdentifyCmd(nvme.CNSActiveNSList, 0, 0), nil)
			s.Must(err, "Identify active namespace list")
			ids := nvme.DecodeNSList(list)
			if len(ids) == 0 {
				s.Lacks("an active namespace")
			}
			_, data, err := admin.Command(nvme.IdentifyCmd(nvme.CNSNamespace, ids[0], 0), nil)
			s.Must(err, "Identify Namespace")
			var ns nvme.IdentifyNamespace
			s.Must(ns.Decode(data), "decode Identify Namespace")
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			sqe := nvme.ReadCmd(ids[0], 0, 1)
			nvme.SetDataLength(&sqe, ns.BlockSize())
			_, got, err := io.Command(sqe, nil)
			s.Conform(Outcome(err), "success")
			s.Conform(fmt.Sprintf("%d bytes", len(got)), fmt.Sprintf("%d bytes", ns.BlockSize()))
		})
		Check(Requirement{ID: "FAB-IOQ-011", Section: "NVMe-oF 1.1 3.5", Level: Mandatory,
			Title: "a Property Get on an I/O queue is rejected (Property Get/Set are admin queue commands)"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			_, err := propGet(io, nvme.PropCAP, true)
			obs := Outcome(err)
			if obs != "success" {
				AddReportEntry("observed", fmt.Sprintf("%s: %s", s.Req.ID, obs))
				obs = "rejected"
			}
			s.Conform(obs, "rejected")
		})
		Check(Requirement{ID: "FAB-IOQ-012", Section: "NVMe-oF 1.1 3.3", Level: Recommended,
			Title: "an I/O queue Connect with a host ID other than the controller's is rejected"}, func(ctx context.Context, s *Spec) {
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			other := s.hostID(s.hostNQN())
			other[0] ^= 0xFF
			r := s.Raw(ctx, plainIC)
			_, err := s.connect(r, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid, HostID: &other})
			obs := Outcome(err)
			if obs != "success" {
				AddReportEntry("observed", fmt.Sprintf("%s: %s", s.Req.ID, obs))
				obs = "rejected"
			}
			s.Conform(obs, "rejected")
		})
	})

	Describe("Disconnect", Label("fabrics-disconnect"), func() {
		disconnect := func(ctx context.Context, s *Spec) (*initiator.Raw, uint16, string) {
			GinkgoHelper()
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			_, _, err := io.Command(nvme.DisconnectCmd(0), nil)
			obs := Outcome(err)
			if obs == StatusOutcome(nvme.StatusInvalidOpcode) {
				s.Lacks("the Disconnect command (Invalid Command Opcode)")
			}
			return io, cntlid, obs
		}
		Check(Requirement{ID: "FAB-DISC-001", Section: "NVMe-oF 1.1 3.4", Level: Optional,
			Title: "a Disconnect on an I/O queue succeeds and the controller then closes that connection"}, func(ctx context.Context, s *Spec) {
			io, _, obs := disconnect(ctx, s)
			s.Conform(obs, "success")
			s.Conform(FatalOutcome(io, s.fatalWait()), "close without C2HTermReq")
		})
		Check(Requirement{ID: "FAB-DISC-002", Section: "NVMe-oF 1.1 3.4", Level: Optional,
			Title: "after a Disconnect the QID it freed can be connected again"}, func(ctx context.Context, s *Spec) {
			io, cntlid, obs := disconnect(ctx, s)
			s.Conform(obs, "success")
			_ = FatalOutcome(io, s.fatalWait())
			var last string
			for range 20 { // the controller frees the queue asynchronously
				cqe, err := s.connect(s.Raw(ctx, plainIC), connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
				if last = ConnectOutcome(cqe, err); last == "success" {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			s.Conform(last, "success")
		})
	})

	Describe("properties", Label("fabrics-property"), func() {
		capOf := func(ctx context.Context, s *Spec) nvme.CAP {
			GinkgoHelper()
			r, _ := s.rawAdmin(ctx, plainIC)
			v, err := propGet(r, nvme.PropCAP, true)
			s.Conform(Outcome(err), "success")
			return nvme.CAP(v)
		}
		Check(Requirement{ID: "FAB-PROP-001", Section: "NVMe-oF 1.1 3.5", Level: Mandatory,
			Title: "Property Get of CAP (8 bytes) succeeds"}, func(ctx context.Context, s *Spec) {
			capOf(ctx, s)
		})
		Check(Requirement{ID: "FAB-PROP-002", Section: "NVMe Base 2.0 3.1.4.1", Level: Mandatory,
			Title: "CAP.MQES is at least 1 (queues of two or more entries)"}, func(ctx context.Context, s *Spec) {
			cp := capOf(ctx, s)
			s.Conform(fmt.Sprintf("MQES >= 1: %v", cp.MQES() >= 1), "MQES >= 1: true")
		})
		Check(Requirement{ID: "FAB-PROP-003", Section: "NVMe-oF 1.1 3.5", Level: Mandatory,
			Title: "CAP.CQR is 1 (fabrics controllers require contiguous queues)"}, func(ctx context.Context, s *Spec) {
			s.Conform(fmt.Sprintf("CQR %v", capOf(ctx, s).CQR()), "CQR true")
		})
		Check(Requirement{ID: "FAB-PROP-004", Section: "NVMe Base 2.0 3.1.4.1", Level: Mandatory,
			Title: "CAP.TO is not 0"}, func(ctx context.Context, s *Spec) {
			s.Conform(fmt.Sprintf("TO > 0: %v", capOf(ctx, s).TO() > 0), "TO > 0: true")
		})
		Check(Requirement{ID: "FAB-PROP-005", Section: "NVMe Base 2.0 3.1.4.1", Level: Mandatory,
			Title: "CAP.CSS of an NVM subsystem's controller reports the NVM command set (or I/O command sets)"}, func(ctx context.Context, s *Spec) {
			css := capOf(ctx, s).CSS()
			s.Conform(fmt.Sprintf("NVM or I/O command sets: %v", css&(nvme.CSSNVM|nvme.CSSIOCS) != 0), "NVM or I/O command sets: true")
		})
		Check(Requirement{ID: "FAB-PROP-006", Section: "NVMe Base 2.0 3.1.4.1", Level: Mandatory,
			Title: "CAP.MPSMIN is not above CAP.MPSMAX"}, func(ctx context.Context, s *Spec) {
			cp := capOf(ctx, s)
			s.Conform(fmt.Sprintf("MPSMIN <= MPSMAX: %v", cp.MPSMIN() <= cp.MPSMAX()), "MPSMIN <= MPSMAX: true")
		})
		Check(Requirement{ID: "FAB-PROP-007", Section: "NVMe-oF 1.1 1.5", Level: Mandatory,
			Title: "VS reports NVMe 1.2.1 or later (the first version with NVMe over Fabrics)"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			v, err := propGet(r, nvme.PropVS, false)
			s.Conform(Outcome(err), "success")
			obs := "VS >= 1.2.1"
			if uint32(v) < nvme.MakeVersion(1, 2, 1) {
				obs = "VS " + nvme.VersionString(uint32(v))
			}
			s.Conform(obs, "VS >= 1.2.1")
		})
		Check(Requirement{ID: "FAB-PROP-008", Section: "NVMe Base 2.0 3.1.4.5", Level: Mandatory,
			Title: "CC reads 0 on a newly connected controller"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			v, err := propGet(r, nvme.PropCC, false)
			s.Conform(Outcome(err), "success")
			s.Conform(fmt.Sprintf("CC %#x", v), "CC 0x0")
		})
		Check(Requirement{ID: "FAB-PROP-009", Section: "NVMe Base 2.0 3.1.4.6", Level: Mandatory,
			Title: "CSTS.RDY reads 0 on a newly connected controller"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			v, err := propGet(r, nvme.PropCSTS, false)
			s.Conform(Outcome(err), "success")
			s.Conform(fmt.Sprintf("RDY %d", v&nvme.CSTSReady), "RDY 0")
		})
		Check(Requirement{ID: "FAB-PROP-010", Section: "NVMe Base 2.0 3.5.2", Level: Mandatory,
			Title: "after Property Set CC.EN=1, CSTS.RDY becomes 1 within CAP.TO"}, func(ctx context.Context, s *Spec) {
			s.EnabledAdmin(ctx, plainIC)
		})
		Check(Requirement{ID: "FAB-PROP-011", Section: "NVMe Base 2.0 3.1.4.5", Level: Mandatory,
			Title: "a value written to CC reads back"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			want := uint64(ccEnable &^ nvme.CCEnable)
			s.Must(propSet(r, nvme.PropCC, false, want), "Property Set CC")
			v, err := propGet(r, nvme.PropCC, false)
			s.Conform(Outcome(err), "success")
			s.Conform(fmt.Sprintf("CC %#x", v), fmt.Sprintf("CC %#x", want))
		})
		for i, c := range []struct {
			name  string
			off   uint32
			size8 bool
		}{{"a 4-byte Property Get of CAP (an 8-byte property)", nvme.PropCAP, false},
			{"an 8-byte Property Get of VS (a 4-byte property)", nvme.PropVS, true},
			{"an 8-byte Property Get of CSTS (a 4-byte property)", nvme.PropCSTS, true},
			{"a Property Get of the undefined offset 100h", 0x100, false},
			{"a Property Get of the reserved offset 4h (inside CAP)", 0x04, false}} {
			Check(Requirement{ID: fmt.Sprintf("FAB-PROP-%03d", 12+i), Section: "NVMe-oF 1.1 3.5", Level: Mandatory,
				Title: c.name + " fails with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
				r, _ := s.rawAdmin(ctx, plainIC)
				_, err := propGet(r, c.off, c.size8)
				s.Conform(Outcome(err), stInvalidField)
			})
		}
		for i, c := range []struct {
			name  string
			off   uint32
			size8 bool
		}{{"CAP", nvme.PropCAP, true}, {"VS", nvme.PropVS, false}, {"CSTS", nvme.PropCSTS, false}} {
			Check(Requirement{ID: fmt.Sprintf("FAB-PROP-%03d", 17+i), Section: "NVMe-oF 1.1 3.6", Level: Mandatory,
				Title: "a Property Set of the read-only " + c.name + " fails with Invalid Field in Command and leaves it unchanged"}, func(ctx context.Context, s *Spec) {
				r, _ := s.rawAdmin(ctx, plainIC)
				before, err := propGet(r, c.off, c.size8)
				s.Must(err, "Property Get "+c.name)
				err = propSet(r, c.off, c.size8, ^before)
				s.Conform(Outcome(err), stInvalidField)
				after, err := propGet(r, c.off, c.size8)
				s.Must(err, "Property Get "+c.name)
				s.Conform(fmt.Sprintf("%s %#x", c.name, after), fmt.Sprintf("%s %#x", c.name, before))
			})
		}
		Check(Requirement{ID: "FAB-PROP-020", Section: "NVMe-oF 1.1 3.6", Level: Mandatory,
			Title: "an 8-byte Property Set of CC (a 4-byte property) fails with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			s.Conform(Outcome(propSet(r, nvme.PropCC, true, 0)), stInvalidField)
		})
		Check(Requirement{ID: "FAB-PROP-021", Section: "NVMe Base 2.0 3.5.2", Level: Mandatory,
			Title: "an admin command other than Property Get/Set before CC.EN=1 fails with Command Sequence Error"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			_, _, err := r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
			s.Conform(Outcome(err), stSeqError)
		})
		Check(Requirement{ID: "FAB-PROP-022", Section: "NVMe Base 2.0 3.6.1", Level: Mandatory,
			Title: "after CC.SHN=01b (normal shutdown), CSTS.SHST reads 10b (complete) in time"}, func(ctx context.Context, s *Spec) {
			r, _, cp := s.EnabledAdmin(ctx, plainIC)
			s.Must(propSet(r, nvme.PropCC, false, ccEnable|nvme.CCShnNormal), "Property Set CC.SHN=01b")
			csts, ok, err := waitCSTS(ctx, r, nvme.CSTSShstMask, nvme.CSTSShstCmplt, max(readyTimeout(cp), 5*time.Second))
			s.Must(err, "Property Get CSTS")
			obs := "SHST 10b"
			if !ok {
				obs = fmt.Sprintf("SHST %02b", (csts&nvme.CSTSShstMask)>>nvme.CSTSShstShift)
			}
			s.Conform(obs, "SHST 10b")
		})
		Check(Requirement{ID: "FAB-PROP-023", Section: "NVMe Base 2.0 3.6.1", Level: Mandatory,
			Title: "after a shutdown the controller can be reset (CC.EN=0) and enabled again"}, func(ctx context.Context, s *Spec) {
			r, _, cp := s.EnabledAdmin(ctx, plainIC)
			s.Must(propSet(r, nvme.PropCC, false, ccEnable|nvme.CCShnNormal), "Property Set CC.SHN=01b")
			_, ok, err := waitCSTS(ctx, r, nvme.CSTSShstMask, nvme.CSTSShstCmplt, max(readyTimeout(cp), 5*time.Second))
			s.Must(err, "Property Get CSTS")
			if !ok {
				Fail("shutdown did not complete")
			}
			s.Must(propSet(r, nvme.PropCC, false, 0), "Property Set CC=0")
			_, ok, err = waitCSTS(ctx, r, nvme.CSTSReady, 0, readyTimeout(cp))
			s.Must(err, "Property Get CSTS")
			s.Conform(fmt.Sprintf("RDY cleared after CC.EN=0: %v", ok), "RDY cleared after CC.EN=0: true")
			s.Must(propSet(r, nvme.PropCC, false, ccEnable), "Property Set CC.EN=1")
			_, ok, err = waitCSTS(ctx, r, nvme.CSTSReady, nvme.CSTSReady, readyTimeout(cp))
			s.Must(err, "Property Get CSTS")
			s.Conform(fmt.Sprintf("RDY set after re-enable: %v", ok), "RDY set after re-enable: true")
			_, _, err = r.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
			s.Conform(Outcome(err), "success")
		})
		Check(Requirement{ID: "FAB-PROP-024", Section: "NVMe Base 2.0 3.1.4.6", Level: Mandatory,
			Title: "clearing CC.EN on an enabled controller clears CSTS.RDY within CAP.TO"}, func(ctx context.Context, s *Spec) {
			r, _, cp := s.EnabledAdmin(ctx, plainIC)
			s.Must(propSet(r, nvme.PropCC, false, ccEnable&^nvme.CCEnable), "Property Set CC.EN=0")
			_, ok, err := waitCSTS(ctx, r, nvme.CSTSReady, 0, readyTimeout(cp))
			s.Must(err, "Property Get CSTS")
			s.Conform(fmt.Sprintf("RDY cleared: %v", ok), "RDY cleared: true")
		})
		Check(Requirement{ID: "FAB-PROP-025", Section: "NVMe Base 2.0 3.1.4.5", Level: Recommended,
			Title: "enabling with an invalid I/O queue entry size (CC.IOSQES 0) reports a controller fatal status (CSTS.CFS) or stays not ready"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			s.Must(propSet(r, nvme.PropCC, false, 4<<20|nvme.CCEnable), "Property Set CC")
			csts, _, err := waitCSTS(ctx, r, nvme.CSTSReady|nvme.CSTSFatal, nvme.CSTSFatal, time.Second)
			s.Must(err, "Property Get CSTS")
			obs := "not ready"
			if csts&nvme.CSTSReady != 0 {
				obs = "ready"
			}
			s.Conform(obs, "not ready")
		})
		Check(Requirement{ID: "FAB-PROP-026", Section: "NVMe Base 2.0 3.1.4.5", Level: Mandatory,
			Title: "CC reads back with EN set once the controller is enabled"}, func(ctx context.Context, s *Spec) {
			r, _, _ := s.EnabledAdmin(ctx, plainIC)
			v, err := propGet(r, nvme.PropCC, false)
			s.Must(err, "Property Get CC")
			s.Conform(fmt.Sprintf("CC.EN %d", v&nvme.CCEnable), "CC.EN 1")
		})
	})
})
