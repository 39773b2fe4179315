package suites

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Checks of the message-based queue model and of the Connect and
// Disconnect fields (issue 19): what SQ flow control disabled does to
// SQHD, the admin queue size ASQSZ allows, Connect fields the controller
// ignores or records, what ends with a lost or failed I/O connection, and
// Disconnect's RECFMT and OFCS.DCS.

// Sections of NVMe Base 2.2 these checks cite.
const (
	secQueueSize    = "NVMe Base 2.2 3.3.3.1" // Queue Size
	secTransportReq = "NVMe Base 2.2 3.3.2.9" // Transport Requirements
	secDisconnectSQ = "NVMe Base 2.2 6.4 Fig. 550"
	secDiscTREQ21   = "NVMe Base 2.1 5.1.12.3.1 Fig. 294" // TREQ.ZHIDS
	secSQHDOpt      = "NVMe Base 2.2 3.3.2.7"             // SQ Head Pointer update optimization
)

// Connect and Discovery log fields these checks set or read that the nvme
// package does not name.
const (
	treqZHIDS        = 1 << 3 // Discovery log entry TREQ bit 3: Zero Host ID Support
	hostIDFeatEXHID  = 1      // Get Features Host Identifier CDW11 bit 0: the 128-bit Host Identifier
	hostIDFeatLength = 16     // its data
)

// connectSQE is connect for an admin queue asking for any controller of
// the subsystem's model (as connectAnyModel), with mut applied to the
// Connect SQE before it is sent: for fields connectArgs does not carry.
func (s *Spec) connectSQE(r *initiator.Raw, a connectArgs, mut func(*nvme.SQE)) (nvme.CQE, error) {
	send := func(cntlid uint16) (nvme.CQE, error) {
		hostID := s.hostID(s.hostNQN())
		if a.HostID != nil {
			hostID = *a.HostID
		}
		cd := nvme.ConnectData{HostID: hostID, CNTLID: cntlid, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
		cmd := nvme.Connect{QID: a.QID, SQSIZE: a.SQSIZE, CATTR: a.CATTR, KATO: s.rawAdminKATO()}
		sqe := cmd.SQE(0)
		mut(&sqe)
		cqe, _, err := r.Command(sqe, cd.Append(nil))
		return cqe, err
	}
	cqe, err := send(cntlidAnyDynamic)
	if nvme.ConnectRefusedAtCNTLID(cqe, err) {
		return send(cntlidAnyStatic)
	}
	return cqe, err
}

// subsystemEntry is the discovery log's TCP entry for the subsystem under
// test (an NVM subsystem entry whose SUBNQN is the configured one); the
// check skips when the discovery log has none.
func (s *Spec) subsystemEntry(ctx context.Context) nvme.DiscoveryLogEntry {
	GinkgoHelper()
	_, l := s.readDiscoveryLog(ctx, s.ConnectDiscovery(ctx))
	for _, e := range tcpEntries(l) {
		if e.SUBTYPE == nvme.SubtypeNVM && e.SUBNQN == s.Target.Config.SubNQN {
			return e
		}
	}
	s.Lacks(fmt.Sprintf("a TCP discovery log entry for %s", s.Target.Config.SubNQN))
	return nvme.DiscoveryLogEntry{}
}

// awaitAssociationEnd polls the admin queue of an association (Property
// Get CSTS) until it fails or closes, for at most wait: "association
// ended" and how, or "association alive".
func awaitAssociationEnd(admin *initiator.Raw, wait time.Duration) string {
	for end := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		if _, _, err := admin.Command(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil); err != nil {
			return "association ended (admin queue: " + Outcome(err) + ")"
		}
		if time.Now().After(end) {
			return "association alive"
		}
	}
}

var _ = Describe("Fabrics", Label("fabrics"), func() {
	Describe("queue model", Label("fabrics-queue"), func() {
		// 3.3.2.5 / 6.3: once a Connect with DISSQFC is answered with
		// SQHD FFFFh, SQ flow control is off for that queue pair and SQHD
		// is reserved: cleared to 0h in every later response. Both queue
		// kinds are asked; a controller that agrees on neither lacks the
		// feature (FAB-CONN-033 judges the answer itself). The I/O queue
		// gets Flushes, whose completions always come in response
		// capsules (no data, so no C2HData SUCCESS shortcut).
		Check(Requirement{ID: "FAB-CONN-034", Section: secSQFlowOff + "; " + secConnect, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-3.3.2.5-02"},
			Title:      "after a Connect with DISSQFC answered SQHD FFFFh, every later response on that queue pair carries SQHD 0h",
			Text:       "If SQ flow control is disabled, then the Submission Queue Head Pointer (SQHD) field is reserved in all Fabrics response capsules for that queue pair after the response to the Connect command (i.e., in all subsequent response capsules for that queue pair, the controller shall clear the SQHD field to 0h ...)"}, func(ctx context.Context, s *Spec) {
			var bad []string
			agreed := 0
			watch := func(q string, r *initiator.Raw, sqe nvme.SQE, what string) {
				GinkgoHelper()
				for i := range 4 {
					cqe, _, err := r.Command(sqe, nil)
					var st nvme.Status
					if err != nil && !errors.As(err, &st) {
						s.Must(err, fmt.Sprintf("%s %d on the %s", what, i+1, q))
					}
					if cqe.SQHD != 0 {
						bad = append(bad, fmt.Sprintf("%s: SQHD %#x in the response to %s %d", q, cqe.SQHD, what, i+1))
					}
				}
			}
			// The namespaces, from an association of its own: no command
			// with data goes to the queues under test (a read's data may
			// end with SUCCESS there, which TCP-DATA-031 judges).
			plain, _, _ := s.EnabledAdmin(ctx, plainIC)
			_, list, err := plain.Command(nvme.IdentifyCmd(nvme.CNSActiveNSList, 0, 0), nil)
			s.Must(err, "Identify active namespace list")
			_ = plain.Close()
			admin := s.Raw(ctx, plainIC)
			cqe, err := s.connectAnyModel(admin, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CATTR: nvme.CATTRDisableSQFlow})
			if err != nil {
				Skip(fmt.Sprintf("%s: the admin Connect with DISSQFC failed (%s): FAB-CONN-033 judges that", s.Req.ID, ConnectOutcome(cqe, err)))
			}
			cntlid := uint16(cqe.DW0)
			adminOff := cqe.SQHD == 0xFFFF
			if adminOff {
				agreed++
				watch("admin queue", admin, nvme.PropertyGetCmd(0, nvme.PropCSTS, false), "Property Get CSTS")
			}
			s.enableRaw(ctx, admin)
			if adminOff {
				// Get Features, not Keep Alive: a controller may complete a
				// Keep Alive late (ADM-KA-017 judges how late).
				watch("admin queue", admin, nvme.GetFeaturesCmd(nvme.FeatNumQueues, 0, nvme.SelCurrent), "Get Features Number of Queues")
			}
			if ids := nvme.DecodeNSList(list); len(ids) > 0 {
				io := s.Raw(ctx, plainIC)
				cqe, err = s.connect(io, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid, CATTR: nvme.CATTRDisableSQFlow})
				if err != nil {
					Skip(fmt.Sprintf("%s: the I/O queue Connect with DISSQFC failed (%s): FAB-CONN-033 judges that", s.Req.ID, ConnectOutcome(cqe, err)))
				}
				if cqe.SQHD == 0xFFFF {
					agreed++
					watch("I/O queue", io, nvme.FlushCmd(ids[0]), "Flush")
				}
			}
			if agreed == 0 {
				s.Lacks("disabling SQ flow control (every Connect with DISSQFC was answered with an SQHD other than FFFFh)")
			}
			s.ConformAll(bad, "SQHD 0h in every later response")
		})

		// 3.3.3.1: the admin queue of a message-based controller "is
		// limited by the value indicated in the ASQSZ field in the
		// Discovery Log Page Entry"; a larger SQSIZE is one "larger than
		// the controller supports" (Fig. 546). ASQSZ counts entries,
		// SQSIZE is 0's based: SQSIZE ASQSZ asks for one entry more.
		Check(Requirement{ID: "FAB-CONN-037", Section: secQueueSize + "; " + secConnectSQE, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-3.3.3.1-01"},
			Title:      "an admin Connect for one entry more than the ASQSZ of the subsystem's discovery log entry fails 01/82 with IPO at SQSIZE",
			Text:       "For Message-based controllers, the maximum size for the Admin Submission Queue is limited by the value indicated in the ASQSZ field in the Discovery Log Page Entry data structure; SQSIZE: If the size is 0h or larger than the controller supports, then a status code of Connect Invalid Parameters shall be returned"}, func(ctx context.Context, s *Spec) {
			e := s.subsystemEntry(ctx)
			if e.ASQSZ >= 4096 {
				s.Lacks(fmt.Sprintf("an ASQSZ below the 4,096 entries any admin queue is limited to (ASQSZ %d; FAB-CONN-007 judges 4,096)", e.ASQSZ))
			}
			if e.ASQSZ < 32 {
				// An ASQSZ below the admin queue every host uses is the
				// discovery log's error, judged once.
				Skip(fmt.Sprintf("%s: the entry's ASQSZ is %d, below 32: DISC-LOG-008 judges that", s.Req.ID, e.ASQSZ))
			}
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connectAnyModel(r, connectArgs{SQSIZE: e.ASQSZ})
			s.Conform(fmt.Sprintf("ASQSZ %d, SQSIZE %d: %s", e.ASQSZ, e.ASQSZ, ConnectOutcome(cqe, err)),
				fmt.Sprintf("ASQSZ %d, SQSIZE %d: %s", e.ASQSZ, e.ASQSZ, invalidParam(false, nvme.ConnectOffSQSIZE)))
		})
	})

	Describe("SQ head pointer updates", Label("fabrics-queue"), func() {
		// 3.3.2.7: a transport may omit SQHD from successful responses
		// (NVMe/TCP: the last C2HData of a read carries SUCCESS and no
		// response capsule follows); if it does not send SQHD in every
		// one, "an SQHD value should be transmitted periodically (e.g.,
		// in at least one of every n response capsules on a CQ, where n
		// is 10% of the size of the associated SQ) or more often". Reads
		// one at a time on a 32-entry I/O queue with SQ flow control:
		// no run of completions without SQHD may be longer than n-1, n
		// rounded up (4 for 32 entries). A controller that sends every
		// completion in a response capsule omits nothing: nothing to
		// judge.
		Check(Requirement{ID: "FAB-IOQ-016", Section: secSQHDOpt + "; " + secC2HData, Keyword: Should, Binds: Controller,
			Statements: []string{"B-3.3.2.7-02"},
			Title:      "a controller that omits SQHD from some read completions (C2HData SUCCESS) still sends it in at least one of every 10% of the SQ size",
			Text:       "If an NVMe Transport does not transmit an SQHD value in every response capsule, then an SQHD value should be transmitted periodically (e.g., in at least one of every n response capsules on a CQ, where n is 10% of the size of the associated SQ) or more often"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, cp := s.EnabledAdmin(ctx, plainIC)
			s.skipIfMQESZero(cp)
			nsid, ns := s.firstNamespace(admin)
			sqsize := min(31, cp.MQES())
			size := int(sqsize) + 1
			n := (size + 9) / 10 // 10% of the SQ size, rounded up
			io := s.IOQueue(ctx, plainIC, cntlid, 1, sqsize)
			run, longest, omitted := 0, 0, 0
			for i := range 3 * size {
				rd := nvme.ReadCmd(nsid, 0, 1)
				nvme.SetDataLength(&rd, ns.BlockSize())
				rd.CID = io.NextCID()
				s.Must(io.Conn.Send(&tcp.CapsuleCmd{SQE: rd}, nil), fmt.Sprintf("send Read %d", i+1))
				withSQHD := false
			recv:
				for {
					p, _, _, err := io.Recv(0)
					s.Must(err, fmt.Sprintf("completion of Read %d", i+1))
					switch v := p.(type) {
					case *tcp.C2HData:
						if v.CCCID == rd.CID && v.Success {
							break recv
						}
					case *tcp.CapsuleResp:
						if v.CQE.CID == rd.CID {
							if st := v.CQE.Status; !st.Success() {
								s.mustProbeRead(st, fmt.Sprintf("Read %d", i+1))
							}
							withSQHD = true
							break recv
						}
					}
				}
				if withSQHD {
					run = 0
					continue
				}
				omitted++
				run++
				longest = max(longest, run)
			}
			if omitted == 0 {
				s.Lacks("omitting SQHD (every read completed with a response capsule)")
			}
			AddReportEntry("observed", fmt.Sprintf("%s: %d of %d reads completed without a response capsule", s.Req.ID, omitted, 3*size))
			obs := "SQHD in at least one of every n completions"
			switch {
			case omitted == 3*size:
				obs = "no read completion carried SQHD"
			case longest >= n:
				obs = fmt.Sprintf("%d consecutive read completions without SQHD (n, 10%% of the %d-entry SQ rounded up, is %d)", longest, size, n)
			}
			s.Conform(obs, "SQHD in at least one of every n completions")
		})
	})

	Describe("Connect fields", Label("fabrics-connect"), func() {
		// Fig. 546 NVMSETID: "In the Connect command for an Admin Queue,
		// the: host should clear this field to 0h; controller shall
		// ignore this field". A value no NVM Set has is sent; ignoring it
		// means the Connect succeeds as it would with 0h.
		Check(Requirement{ID: "FAB-CONN-035", Section: secConnectSQE, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.3-30"},
			Title:      "an admin Connect with a non-zero NVMSETID succeeds: the controller ignores the field on admin queues",
			Text:       "NVM Set Identifier (NVMSETID): ... In the Connect command for an Admin Queue, the: host should clear this field to 0h; controller shall ignore this field; and Submission Queue is not associated with any NVM Set"}, func(ctx context.Context, s *Spec) {
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connectSQE(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1}, func(sqe *nvme.SQE) {
				sqe.CDW13 = 0xFEDC // NVMSETID, bytes 53:52
			})
			s.Conform("NVMSETID FEDCh: "+ConnectOutcome(cqe, err), "NVMSETID FEDCh: success")
		})

		// Fig. 547 HOSTID: "For a Connect command to create an Admin
		// Queue ... that completes successfully the controller shall set
		// the current Host Identifier ... to this value", which Get
		// Features Host Identifier (81h, EXHID for the 128-bit form)
		// returns. The Host ID is one this suite uses nowhere else, so a
		// value left from another association cannot pass for it.
		Check(Requirement{ID: "FAB-CONN-036", Section: secConnectData, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.3-33"},
			Title:      "after an admin Connect, Get Features Host Identifier returns the Connect's HOSTID",
			Text:       "Host Identifier (HOSTID): ... For a Connect command to create an Admin Queue (i.e., the QID field is cleared to 0h) that completes successfully the controller shall set the current Host Identifier (refer to section 5.1.25.1.28.2) to this value"}, func(ctx context.Context, s *Spec) {
			id := s.hostID(s.hostNQN() + ":FAB-CONN-036")
			r := s.Raw(ctx, plainIC)
			_, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, HostID: &id})
			s.Must(err, "admin Connect with its own HOSTID")
			s.enableRaw(ctx, r)
			sqe := nvme.GetFeaturesCmd(nvme.FeatHostIdentifier, 0, 0)
			sqe.CDW11 = hostIDFeatEXHID
			nvme.SetDataLength(&sqe, hostIDFeatLength)
			_, data, err := r.Command(sqe, nil)
			var st nvme.Status
			if errors.As(err, &st) {
				s.Lacks(fmt.Sprintf("Get Features Host Identifier with EXHID (%s)", StatusOutcome(st)))
			}
			s.Must(err, "Get Features Host Identifier")
			obs := "the Connect's HOSTID"
			if len(data) < hostIDFeatLength || !bytes.Equal(data[:hostIDFeatLength], id[:]) {
				obs = fmt.Sprintf("Host Identifier %x, the Connect's HOSTID is %x", data, id)
			}
			s.Conform(obs, "the Connect's HOSTID")
		})

		// Fig. 547: for an I/O queue Connect "if this field is cleared to
		// 0h, then the controller shall ignore this field"; 3.1.2 makes a
		// Host Identifier of 0h on I/O queue Connects conditional ("if
		// supported"), and the discovery log entry says whether it is
		// (TREQ.ZHIDS, Base 2.1 Fig. 294). A controller that claims it
		// must take the Connect as if the admin queue's HOSTID had been
		// sent.
		Check(Requirement{ID: "FAB-IOQ-013", Section: secConnectData + "; " + secDiscTREQ21, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.3-34"},
			Title:      "where the discovery log entry sets TREQ.ZHIDS, an I/O queue Connect with HOSTID 0h succeeds (the field is ignored)",
			Text:       "For a Connect command to create an I/O queue (i.e., the QID field is set to a non-zero value): if this field is cleared to 0h, then the controller shall ignore this field; Zero Host ID Support (ZHIDS): If this bit is set to '1', then the controller supports a Host Identifier value of 0h in a Connect command"}, func(ctx context.Context, s *Spec) {
			if e := s.subsystemEntry(ctx); e.TREQ&treqZHIDS == 0 {
				s.Lacks(fmt.Sprintf("a Host Identifier of 0h in I/O queue Connects (discovery log entry TREQ %#x: ZHIDS clear)", e.TREQ))
			}
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			var zero [16]byte
			r := s.Raw(ctx, plainIC)
			cqe, err := s.connect(r, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid, HostID: &zero})
			s.Conform("HOSTID 0h: "+ConnectOutcome(cqe, err), "HOSTID 0h: success")
		})

		// 6.3: "Connect Invalid Parameters if: ... the Host NQN, NVM
		// Subsystem NQN, and the Controller ID values specified for an I/O
		// Queue are not the same as the values specified for the
		// associated Admin Queue". FAB-IOQ-009 names a subsystem that does
		// not exist; here the SUBNQN is another subsystem the discovery
		// log lists at the same address, with this association's CNTLID.
		// A subsystem that does not allow this host may answer Connect
		// Invalid Host instead ("If the host is not allowed to establish
		// an association to any controller in the NVM subsystem"); any
		// other outcome fails.
		Check(Requirement{ID: "FAB-IOQ-017", Section: secConnect, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.3-13"},
			Title:      "an I/O queue Connect naming another existing subsystem (with this controller's CNTLID) fails with Connect Invalid Parameters (or Connect Invalid Host where that subsystem refuses the host)",
			Text:       "The Controller shall abort a Connect command with a status code of Connect Invalid Parameters if: ... the Host NQN, NVM Subsystem NQN, and the Controller ID values specified for an I/O Queue are not the same as the values specified for the associated Admin Queue"}, func(ctx context.Context, s *Spec) {
			_, l := s.readDiscoveryLog(ctx, s.ConnectDiscovery(ctx))
			var others []string
			for _, e := range tcpEntries(l) {
				if e.SUBTYPE == nvme.SubtypeNVM && e.SUBNQN != s.Target.Config.SubNQN && !slices.Contains(others, e.SUBNQN) {
					others = append(others, e.SUBNQN)
				}
			}
			if len(others) == 0 {
				s.Lacks("another NVM subsystem in the discovery log")
			}
			_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			var bad []string
			for _, nqn := range others {
				r := s.Raw(ctx, plainIC)
				cqe, err := s.connect(r, connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid, SubNQN: nqn})
				obs := ConnectOutcome(cqe, err)
				var st nvme.Status
				switch {
				case errors.As(err, &st) && (st.Code() == nvme.StatusConnectInvalidParameters || st.Code() == nvme.StatusConnectInvalidHost):
					AddReportEntry("observed", fmt.Sprintf("%s: I/O queue Connect naming %s: %s", s.Req.ID, nqn, obs))
				default:
					bad = append(bad, nqn+": "+obs)
				}
				_ = r.Close()
			}
			s.ConformAll(bad, stCIP)
		})

		// 6.1: "The Authentication Receive command data shall not be
		// retained if there is a loss of communication between the
		// controller and host". A DH-HMAC-CHAP transaction is begun on an
		// admin queue of the --auth-nqn subsystem (AUTH_Negotiate sent,
		// so the controller holds a Challenge for the next Authentication
		// Receive) and the connection is closed before that Receive. On a
		// new association the first Authentication Receive, with no Send
		// before it, must not return that Challenge (TID 77h); an error,
		// or a message of the new queue's own (e.g. AUTH_Failure1), passes.
		Check(Requirement{ID: "FAB-CONN-039", Section: "NVMe Base 2.2 6.1", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.1-01"},
			Title:      "the Challenge prepared for an Authentication Receive is not kept across a lost connection: a new queue's first Authentication Receive does not return it",
			Text:       "Authentication Receive commands return the appropriate data corresponding to an Authentication Send command as defined by the rules of the Security Protocol. The Authentication Receive command data shall not be retained if there is a loss of communication between the controller and host, or if a Controller Level Reset occurs"}, func(ctx context.Context, s *Spec) {
			r1, _ := s.authAdmin(ctx)
			s.Must(authCmd(r1, true, nvme.AuthSECPDHCHAP, negotiate(), 0), "Authentication Send AUTH_Negotiate (TID 77h)")
			_ = r1.Close()
			time.Sleep(processWait) // the controller sees the close
			r2, _ := s.authAdmin(ctx)
			sqe := nvme.AuthReceiveCmd(0, 4096)
			sqe.DPTR = nvme.SGLDescriptor{Length: 4096}
			_, data, err := r2.Command(sqe, nil)
			obs := "not retained"
			switch h, perr := nvme.PeekAuth(data); {
			case err != nil:
				AddReportEntry("observed", fmt.Sprintf("%s: Authentication Receive on the new queue: %s", s.Req.ID, Outcome(err)))
			case perr == nil && h.Type == nvme.AuthDHCHAPMessages && h.ID == nvme.AuthChallengeID && h.TID == 0x77:
				obs = "the new queue's Authentication Receive returned the DH-HMAC-CHAP Challenge (TID 77h) of the transaction begun on the lost connection"
			default:
				AddReportEntry("observed", fmt.Sprintf("%s: Authentication Receive on the new queue returned %d bytes (type %#x, id %#x)", s.Req.ID, len(data), h.Type, h.ID))
			}
			s.Conform(obs, "not retained")
		})

		// Fig. 549 AUTHREQ: ASCR "If this bit is set to '1', then
		// authentication ... followed by secure channel establishment is
		// required and the ATR bit should be cleared to '0'". The admin
		// Connects of this check, to the subsystem under test and, where
		// given, the --auth-nqn subsystem as the host it authenticates,
		// are looked at; none with ASCR set: nothing to judge.
		Check(Requirement{ID: "FAB-CONN-040", Section: secConnectDW0, Keyword: Should, Binds: Controller,
			Statements: []string{"B-6.3-39"},
			Title:      "a Connect response that sets AUTHREQ.ASCR (authentication then secure channel) leaves AUTHREQ.ATR clear",
			Text:       "Authentication and Secure Channel Required (ASCR): If this bit is set to '1', then authentication using NVMe over Fabrics Authentication protocols followed by secure channel establishment is required and the ATR bit should be cleared to '0'"}, func(ctx context.Context, s *Spec) {
			type dest struct{ sub, host string }
			subs := []dest{{s.Target.Config.SubNQN, s.hostNQN()}}
			if c := s.Target.Config; c.AuthSubNQN != "" {
				subs = append(subs, dest{c.AuthSubNQN, s.authHostNQN()})
			}
			var seen, bad []string
			for _, t := range subs {
				r := s.Raw(ctx, plainIC)
				cqe, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, SubNQN: t.sub, HostNQN: t.host})
				_ = r.Close()
				if err != nil || cqe.DW0&nvme.ConnectAuthReqASCR == 0 {
					continue
				}
				seen = append(seen, t.sub)
				if cqe.DW0&nvme.ConnectAuthReqATR != 0 {
					bad = append(bad, fmt.Sprintf("%s: AUTHREQ %#x, ASCR and ATR both set", t.sub, cqe.DW0>>16))
				}
			}
			if len(seen) == 0 {
				s.Lacks("a Connect response with AUTHREQ.ASCR set (authentication followed by a secure channel)")
			}
			s.ConformAll(bad, "ATR clear where ASCR is set")
		})

		// Fig. 549: "If a particular controller was specified in the
		// CNTLID field of the Connect command, then this field shall
		// contain the same value." FAB-IOQ-001 judges I/O queues; here an
		// admin Connect of a static-model subsystem names the controller
		// a first association got (FFFEh), once that association ended.
		// A refusal (the controller may be busy a while, or not allowed
		// to this host) is not this rule's case and is reported.
		Check(Requirement{ID: "FAB-CONN-038", Section: secConnectDW0 + "; " + secConnect, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.3-38"},
			Title:      "static controller model: an admin Connect naming a specific controller that succeeds returns that CNTLID",
			Text:       "Controller ID (CNTLID): Specifies the controller ID allocated to the host. If a particular controller was specified in the CNTLID field of the Connect command, then this field shall contain the same value"}, func(ctx context.Context, s *Spec) {
			if m := s.subsystemModel(ctx); !m.Static {
				s.Lacks("the static controller model (" + m.How + ")")
			}
			first := s.Raw(ctx, plainIC)
			cqe, err := s.connect(first, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: cntlidAnyStatic})
			if err != nil {
				Skip(fmt.Sprintf("%s: the static-model subsystem refused an admin Connect with CNTLID FFFEh (%s): FAB-CONN-005 judges the wildcards", s.Req.ID, ConnectOutcome(cqe, err)))
			}
			want := uint16(cqe.DW0)
			_ = first.Close()
			var obs string
			for end := time.Now().Add(s.fatalWait()); ; time.Sleep(100 * time.Millisecond) {
				r := s.Raw(ctx, plainIC)
				cqe, err = s.connect(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: want})
				obs = ConnectOutcome(cqe, err)
				_ = r.Close()
				if err == nil || time.Now().After(end) {
					break
				}
			}
			if err != nil {
				AddReportEntry("observed", fmt.Sprintf("%s: the Connect naming controller %d, free again, was refused: %s", s.Req.ID, want, obs))
				return
			}
			s.Conform(fmt.Sprintf("CNTLID %d", uint16(cqe.DW0)), fmt.Sprintf("CNTLID %d", want))
		})
	})

	Describe("I/O connection loss", Label("fabrics-association"), func() {
		// 3.1.2: an association "is terminated if ... an NVMe Transport
		// connection is lost between the host and controller for any I/O
		// Queue and the host or controller does not support individual
		// I/O Queue deletion"; 3.3.2.4 says the same of "the termination
		// of an NVMe Transport connection". The host says it does not by
		// leaving CATTR.INDIVIOQDELS clear in its admin Connect; then the
		// host closes the I/O queue's connection without a Disconnect.
		// The text names no time: the check waits the bound a fatal
		// reaction gets (a TCP close is seen at once).
		Check(Requirement{ID: "FAB-IOQ-014", Section: secAssociation + "; " + secIOQDeletion, Keyword: Indicative, Binds: Controller,
			Statements: []string{"B-3.1.2-04"},
			Title:      "when the admin Connect left CATTR.INDIVIOQDELS clear, losing an I/O queue's connection (a TCP reset) ends the association",
			Text:       "An association between a host and controller is terminated if: ... an NVMe Transport connection is lost between the host and controller for any I/O Queue and the host or controller does not support individual I/O Queue deletion"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, cp := s.EnabledAdmin(ctx, plainIC) // adminConnect: CATTR 0
			s.skipIfMQESZero(cp)
			// Lost, not closed: a TCP reset (SO_LINGER 0) on a connection
			// of our own. An orderly close is how every host ends its I/O
			// queues before it shuts the controller down on the admin
			// queue (Linux nvme_tcp_teardown_ctrl, SPDK
			// nvme_ctrlr_destruct), so a controller may take that as the
			// host ending the queue.
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", s.Target.Config.Address)
			s.Must(err, "dial the I/O connection")
			io := initiator.NewRaw(nc, tcp.Config{}, s.Options())
			_, err = io.Initialize(plainIC)
			s.Must(err, "initialize the I/O connection")
			_, err = s.connect(io, connectArgs{QID: 1, SQSIZE: min(15, cp.MQES()), CNTLID: cntlid})
			s.Must(err, "Connect I/O queue 1")
			_, _, err = admin.Command(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil)
			s.Must(err, "Property Get CSTS while the I/O queue is connected")
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = io.Close()
			obs := awaitAssociationEnd(admin, s.fatalWait())
			if obs == "association alive" {
				cqe, err := s.connect(s.Raw(ctx, plainIC), connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
				AddReportEntry("observed", fmt.Sprintf("%s: the admin queue still answered %v after the I/O connection closed", s.Req.ID, s.fatalWait()))
				obs = "association alive after the I/O connection closed: the admin queue answers, and an I/O queue Connect to its CNTLID: " + ConnectOutcome(cqe, err)
			} else {
				AddReportEntry("observed", s.Req.ID+": "+obs)
				obs = "association ended"
			}
			s.Conform(obs, "association ended")
		})

		// 3.3.2.9: unrecoverable transport errors "should cause: the
		// deletion of the individual I/O Queues ... and the associated
		// NVMe Transport connection on which that NVMe Transport level
		// error occurred; or termination of the NVMe Transport connection
		// and the association". A fatal NVMe/TCP error (a PDU of a
		// reserved type) on I/O queue 1 of an association whose admin
		// Connect set INDIVIOQDELS, where deleting the one queue is
		// possible; after the C2HTermReq the host closes. Then either the
		// association ended, or it lives and QID 1 can be connected
		// again (the queue was deleted). An association that lives with
		// QID 1 still taken did neither.
		Check(Requirement{ID: "FAB-IOQ-015", Section: secTransportReq + "; " + secFatal, Keyword: Should, Binds: Controller,
			Statements: []string{"B-3.3.2.9-01"},
			Title:      "after a fatal transport error on an I/O queue, either that queue is deleted (its QID connects again) or the association ends",
			Text:       "Transport errors that cause loss of a message or loss of data in a way that the low-level NVMe Transport cannot replay or recover should cause: the deletion of the individual I/O Queues ... and the associated NVMe Transport connection on which that NVMe Transport level error occurred; or termination of the NVMe Transport connection and the association between the host and controller"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, _ := s.enabledAdminIndivDelete(ctx)
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			sendQuiet(io, referenceFatal)
			AddReportEntry("observed", fmt.Sprintf("%s: after the bad PDU on I/O queue 1: %s", s.Req.ID, FatalOutcome(io, s.fatalWait())))
			_ = io.Close() // the host's duty after a C2HTermReq
			obs := awaitAssociationEnd(admin, processWait)
			if obs == "association alive" {
				var last string
				for range 20 { // the controller frees the queue asynchronously
					cqe, err := s.connect(s.Raw(s.afterWait(ctx), plainIC), connectArgs{QID: 1, SQSIZE: 15, CNTLID: cntlid})
					if last = ConnectOutcome(cqe, err); last == "success" {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				obs = "I/O queue deleted"
				if last != "success" {
					obs = "association alive and QID 1 still taken (its Connect: " + last + ")"
				}
			} else {
				AddReportEntry("observed", s.Req.ID+": "+obs)
				obs = "association ended"
			}
			s.OneOf(obs, "I/O queue deleted", "association ended")
		})
	})

	Describe("Disconnect fields", Label("fabrics-disconnect"), func() {
		// Fig. 550 RECFMT: "The format of the record specified in this
		// definition shall be 0h. If the NVM subsystem does not support
		// the value specified, then a status code of Incompatible Format
		// shall be returned." No other record format is defined, so 1h
		// is one no subsystem can support.
		Check(Requirement{ID: "FAB-DCON-001", Section: secDisconnectSQ, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6.4-06"},
			Title:      "a Disconnect with RECFMT 1h fails with Incompatible Format",
			Text:       "Record Format (RECFMT): Specifies the format of the Disconnect command capsule. The format of the record specified in this definition shall be 0h. If the NVM subsystem does not support the value specified, then a status code of Incompatible Format shall be returned"}, func(ctx context.Context, s *Spec) {
			_, cntlid, id := s.enabledAdminIndivDelete(ctx)
			s.requireDisconnect(id)
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			sqe := nvme.DisconnectCmd(0)
			sqe.CDW10 = 1 // RECFMT, bytes 41:40
			_, _, err := io.Command(sqe, nil)
			s.Conform("RECFMT 1h: "+Outcome(err), "RECFMT 1h: "+StatusOutcome(nvme.StatusConnectIncompatibleFormat))
		})

		// 3.3.2.4: with a connection per queue "the controller should
		// not delete an NVMe Transport connection until after: a
		// Disconnect command has been received ... and processed; the
		// responses for commands received ... prior to receiving the
		// Disconnect command have been sent ...; and the resulting
		// response for that Disconnect command has been sent ... (i.e.,
		// this response is the last response sent)". In flight when the
		// Disconnect comes: a Write waiting for its data (its R2T in, the
		// data withheld) and reads sent in the same segment as the
		// Disconnect. Each gets a response (any status; a read's C2HData
		// with SUCCESS is one) before the Disconnect's, and the
		// connection stays until that. FAB-ASSOC-005 judges the 6.4 rule
		// (nothing after the Disconnect's completion); this the should.
		Check(Requirement{ID: "FAB-DCON-003", Section: secIOQDeletion, Keyword: Should, Binds: Controller,
			Statements: []string{"B-3.3.2.4-05"},
			Title:      "a Disconnect with commands in flight answers each of them before its own response, and the connection lasts until that response is sent",
			Text:       "the controller should not delete an NVMe Transport connection until after: a Disconnect command has been received on the I/O Submission Queue and processed by the controller; the responses for commands received by the controller on that I/O Submission Queue prior to receiving the Disconnect command have been sent to the host ...; and the resulting response for that Disconnect command has been sent ... (i.e., this response is the last response sent)"}, func(ctx context.Context, s *Spec) {
			st, _ := s.ioAdmin(ctx)
			_, cntlid, id := s.enabledAdminIndivDelete(ctx)
			s.requireDisconnect(id)
			st.io = s.IOQueue(ctx, plainIC, cntlid, 1, min(15, st.cap.MQES()))
			io := st.io
			n := st.r2tSize(st.bs)
			w := nvme.WriteCmd(st.nsid, assocLBA+24, n/st.bs)
			w.CID = io.NextCID()
			nvme.SetDataLength(&w, n)
			s.Must(io.Conn.Send(&tcp.CapsuleCmd{SQE: w}, nil), "send the Write without its data")
			_, err := awaitR2T(io, w.CID)
			s.Must(err, "waiting for the Write's R2T")
			pending := map[uint16]string{w.CID: "the Write waiting for its data"}
			var seg []byte
			for range 4 {
				rd := nvme.ReadCmd(st.nsid, 0, 1)
				nvme.SetDataLength(&rd, st.bs)
				rd.CID = io.NextCID()
				pending[rd.CID] = "a Read sent with the Disconnect"
				seg = append(seg, encode(io, &tcp.CapsuleCmd{SQE: rd}, nil)...)
			}
			disc := nvme.DisconnectCmd(io.NextCID())
			seg = append(seg, encode(io, &tcp.CapsuleCmd{SQE: disc}, nil)...)
			s.Must(io.SendBytes(seg), "send the Reads and the Disconnect")
			obs := ""
			deadline := time.Now().Add(s.fatalWait() + processWait)
			for obs == "" {
				p, _, _, err := io.Recv(time.Until(deadline))
				if err != nil {
					obs = fmt.Sprintf("no response for the Disconnect (%s)", fatalErrOutcome(err))
					break
				}
				switch v := p.(type) {
				case *tcp.CapsuleResp:
					if v.CQE.CID == disc.CID {
						obs = "every command answered before the Disconnect's response"
						if !v.CQE.Status.Success() {
							AddReportEntry("observed", fmt.Sprintf("%s: the Disconnect completed with %s", s.Req.ID, StatusOutcome(v.CQE.Status)))
						}
						for cid, what := range pending {
							obs = fmt.Sprintf("the Disconnect's response came while %s (CID %d) had none", what, cid)
							break
						}
						continue
					}
					delete(pending, v.CQE.CID)
				case *tcp.C2HData:
					if v.Success {
						delete(pending, v.CCCID)
					}
				}
			}
			_ = io.Close()
			s.Conform(obs, "every command answered before the Disconnect's response")
		})

		// 3.3.2.4: "The controller indicates support for the deletion of
		// an individual I/O Queue by setting the Disconnect Command
		// Support (DCS) bit to '1' in the OFCS field". A controller that
		// clears DCS says it cannot delete one I/O queue, so a Disconnect
		// there must not complete successfully (which would say the
		// queue was deleted); any error status, or ending the
		// connection, agrees with DCS 0. Controllers that set DCS are
		// held to deleting the queue by FAB-DISC-001 and FAB-DISC-002.
		Check(Requirement{ID: "FAB-DCON-002", Section: secIOQDeletion + "; " + secDisconnect, Keyword: Indicative, Binds: Controller,
			Statements: []string{"B-3.3.2.4-01"},
			Title:      "a controller whose Identify OFCS.DCS is 0 does not complete a Disconnect successfully (it claims no individual I/O queue deletion)",
			Text:       "The controller indicates support for the deletion of an individual I/O Queue by setting the Disconnect Command Support (DCS) bit to '1' in the OFCS field of the Identify Controller data structure"}, func(ctx context.Context, s *Spec) {
			_, cntlid, id := s.enabledAdminIndivDelete(ctx)
			if id.OFCS&nvme.OFCSDisconnect != 0 {
				Skip(fmt.Sprintf("%s: Identify OFCS.DCS is 1: FAB-DISC-001 and FAB-DISC-002 judge its Disconnect", s.Req.ID))
			}
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			_, _, err := io.Command(nvme.DisconnectCmd(0), nil)
			obs := Outcome(err)
			if err != nil {
				AddReportEntry("observed", fmt.Sprintf("%s: Disconnect with OFCS.DCS 0: %s", s.Req.ID, obs))
				obs = "not completed successfully"
			} else {
				obs = "the Disconnect completed successfully (the queue deleted) though OFCS.DCS is 0"
			}
			s.Conform(obs, "not completed successfully")
		})
	})
})
