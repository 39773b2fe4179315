package hostconform

import (
	"fmt"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
)

// The Fabrics Connect and controller bring-up (NVMe/TCP 1.0 3.1, 3.4;
// NVMe Base 2.2 3.3.2.2, 6.3): what the host's Connect commands carry,
// on which connection, and what it sends before the controller is ready.
func init() { register(connectChecks...) }

// mqesForCheck is the CAP.MQES of HOST-CONN-003's controller: small, so
// a host's default queue size (Linux: 128) is beyond it.
const mqesForCheck = 31

var connectChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-CONN-001", Section: "NVMe/TCP 1.0 3.1", Keyword: suites.Indicative,
			Title:      "On every connection the host sends the ICReq first and the Fabrics Connect as its first capsule",
			Text:       "the host sends an Initialize Connection Request (ICReq) PDU ... The first capsule exchange is the NVMe-oF Connect request/response sequence",
			Statements: []string{"T-3.1-01", "T-3.1-03"},
		},
		Area: "fabrics", Deviation: "cmd-before-connect",
		Run: func(t *T) {
			t.MustConnect()
			var problems []string
			for _, c := range t.Ctrl.Conns() {
				sent := c.Sent()
				for i, f := range sent {
					if i == 0 {
						if f.CH.Type != tcp.TypeICReq {
							problems = append(problems, fmt.Sprintf("connection %d: first PDU %v", c.ID(), f.CH.Type))
						}
						continue
					}
					if s := Command(f); s != nil {
						if !IsConnect(s) {
							problems = append(problems, fmt.Sprintf("connection %d: first capsule opcode %#x fctype %#x, not Connect", c.ID(), s.Opcode, s.FCType()))
						}
						break
					}
				}
			}
			t.ConformAll(problems, "ICReq, then Connect first")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-CONN-002", Section: "NVMe Base 2.2 6.3 Fig.547", Keyword: suites.Indicative,
			Title:      "Every I/O-queue Connect carries the admin Connect's Host NQN and Subsystem NQN, the Controller ID the controller returned, and the admin queue's Host Identifier or 0h",
			Text:       "the Host NQN, NVM Subsystem NQN, and the Controller ID values specified for an I/O Queue are ... the same as the values specified for the associated Admin Queue ... the Host Identifier for an I/O Queue is ... set to a value of 0h or ... the same value",
			Statements: []string{"B-6.3-41"},
		},
		Area: "fabrics", Deviation: "ioq-hostid-differs",
		Run: func(t *T) {
			_ = t.Connect() // a host the controller refuses for this fails to connect its I/O queues
			var admin *nvme.ConnectData
			var cntlid uint16
			for _, c := range t.Ctrl.Conns() {
				if s, d := c.Connect(); s != nil && d != nil && nvme.DecodeConnect(s).QID == 0 {
					if r := responseTo(c, s.CID); r != nil && r.Status.Success() {
						admin, cntlid = d, uint16(r.DW0)
					}
				}
			}
			if admin == nil {
				t.Failf("%s: the host connected no admin queue", t.Check.ID)
			}
			var problems []string
			ioqs := 0
			for _, c := range t.Ctrl.Conns() {
				s, d := c.Connect()
				if s == nil || nvme.DecodeConnect(s).QID == 0 {
					continue
				}
				ioqs++
				if d == nil {
					problems = append(problems, fmt.Sprintf("connection %d: Connect without its 1024-byte data", c.ID()))
					continue
				}
				qid := nvme.DecodeConnect(s).QID
				if d.HostNQN != admin.HostNQN {
					problems = append(problems, fmt.Sprintf("I/O queue %d: HOSTNQN %q, admin's %q", qid, d.HostNQN, admin.HostNQN))
				}
				if d.SubNQN != admin.SubNQN {
					problems = append(problems, fmt.Sprintf("I/O queue %d: SUBNQN %q, admin's %q", qid, d.SubNQN, admin.SubNQN))
				}
				if d.CNTLID != cntlid {
					problems = append(problems, fmt.Sprintf("I/O queue %d: CNTLID %#x, the controller's is %#x", qid, d.CNTLID, cntlid))
				}
				if d.HostID != admin.HostID && d.HostID != ([16]byte{}) {
					problems = append(problems, fmt.Sprintf("I/O queue %d: HOSTID %x, admin's %x", qid, d.HostID, admin.HostID))
				}
			}
			if ioqs == 0 {
				t.Skipf("the host connected no I/O queue")
			}
			t.Detail("%d I/O queue Connects", ioqs)
			t.ConformAll(problems, "I/O queue Connects match the admin queue's")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-CONN-003", Section: "NVMe Base 2.2 6.3 Fig.546", Keyword: suites.Indicative,
			Title:      "The host asks I/O queues of 1 to CAP.MQES entries (SQSIZE, 0's based) in their Connect",
			Text:       "Submission Queue Size (SQSIZE): ... If the size is 0h or larger than the controller supports, then a status code of Connect Invalid Parameters shall be returned",
			Statements: []string{"B-6.3-42"},
		},
		Area: "fabrics", Deviation: "sqsize-beyond-mqes",
		Controller: func(s *Setup) {
			s.Config.QueueSize = mqesForCheck + 1
		},
		Run: func(t *T) {
			_ = t.Connect()
			var problems []string
			ioqs := 0
			for _, c := range t.Ctrl.Conns() {
				s, _ := c.Connect()
				if s == nil {
					continue
				}
				cmd := nvme.DecodeConnect(s)
				if cmd.QID == 0 {
					if cmd.SQSIZE == 0 {
						problems = append(problems, "admin queue: SQSIZE 0")
					}
					continue
				}
				ioqs++
				if cmd.SQSIZE == 0 || cmd.SQSIZE > mqesForCheck {
					problems = append(problems, fmt.Sprintf("I/O queue %d: SQSIZE %d (MQES %d)", cmd.QID, cmd.SQSIZE, mqesForCheck))
				}
			}
			if ioqs == 0 && len(problems) == 0 {
				t.Failf("%s: the host sent no I/O queue Connect to a controller with CAP.MQES %d", t.Check.ID, mqesForCheck)
			}
			t.ConformAll(problems, "SQSIZE 1..MQES")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-CONN-004", Section: "NVMe/TCP 1.0 3.4; NVMe Base 2.2 6.3 Fig.546", Keyword: suites.Indicative,
			Title:      "The host's admin Connect to an NVM subsystem over NVMe/TCP asks a non-zero Keep Alive Timeout",
			Text:       "The NVMe/TCP Transport requires the use of the Keep Alive feature",
			Statements: []string{"T-3.4-01"},
		},
		Area: "fabrics", Deviation: "kato-zero",
		Run: func(t *T) {
			t.MustConnect()
			for _, c := range t.Ctrl.Conns() {
				if s, _ := c.Connect(); s != nil && nvme.DecodeConnect(s).QID == 0 {
					kato := nvme.DecodeConnect(s).KATO
					t.Detail("admin Connect KATO %d ms", kato)
					if kato == 0 {
						t.Conform("KATO 0", "KATO > 0")
					}
					return
				}
			}
			t.Failf("%s: the host sent no admin Connect", t.Check.ID)
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-CONN-005", Section: "NVMe Base 2.2 3.3.2.2", Keyword: suites.Shall,
			Title:      "The host sends one Connect per queue, on the connection of the queue it creates, and none once it succeeded",
			Text:       "A Connect is sent once per queue, on the queue it creates",
			Statements: []string{"B-3.3.2.2-01", "B-6-03"},
		},
		Area: "fabrics", Deviation: "connect-twice",
		Run: func(t *T) {
			t.MustConnect()
			var problems []string
			for _, c := range t.Ctrl.Conns() {
				created := false
				for _, f := range c.Sent() {
					s := Command(f)
					if !IsConnect(s) {
						continue
					}
					if created {
						problems = append(problems, fmt.Sprintf("connection %d: another Connect (QID %d) after its queue was created", c.ID(), nvme.DecodeConnect(s).QID))
						break
					}
					if r := responseTo(c, s.CID); r != nil && r.Status.Success() {
						created = true
					}
				}
			}
			t.ConformAll(problems, "one Connect per queue")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-CONN-006", Section: "NVMe Base 2.2 3.3.2.2, 6.3", Keyword: suites.Shall,
			Title:      "Until the controller reports CSTS.RDY=1 the host sends only Fabrics commands, and it connects I/O queues only after that",
			Text:       "The host shall establish an association with a controller and enable the controller before establishing a connection with an I/O Queue",
			Statements: []string{"B-3.3.2.2-03", "B-6.3-10"},
		},
		Area: "fabrics", Deviation: "identify-before-ready",
		Run: func(t *T) {
			t.MustConnect()
			var problems []string
			var ready time.Time
			for _, c := range t.Ctrl.Conns() {
				s, _ := c.Connect()
				if s == nil || nvme.DecodeConnect(s).QID != 0 {
					continue
				}
				ready = readyAt(c)
				for _, f := range c.Sent() {
					cmd := Command(f)
					if cmd == nil || (!ready.IsZero() && f.At.After(ready)) {
						continue
					}
					if cmd.Opcode != nvme.CmdFabrics {
						problems = append(problems, fmt.Sprintf("admin opcode %#x before CSTS.RDY=1", cmd.Opcode))
					}
				}
			}
			if ready.IsZero() {
				t.Failf("%s: the host never read CSTS.RDY=1", t.Check.ID)
			}
			for _, c := range t.Ctrl.Conns() {
				if s, _ := c.Connect(); s != nil && nvme.DecodeConnect(s).QID != 0 {
					for _, f := range c.Sent() {
						if Command(f) == s && f.At.Before(ready) {
							problems = append(problems, fmt.Sprintf("I/O queue %d connected before CSTS.RDY=1", nvme.DecodeConnect(s).QID))
						}
					}
				}
			}
			t.ConformAll(problems, "only Fabrics commands before CSTS.RDY=1")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-CONN-007", Section: "NVMe Base 2.2 6.3 Fig.546, Fig.547", Keyword: suites.Shall,
			Title:      "The admin Connect to a dynamic-model subsystem asks CNTLID FFFFh, with PRIOCLASS 00b and the subsystem's NQN",
			Text:       "If the NVM subsystem uses the dynamic controller model, then the value shall be FFFFh for the Admin Queue ... PRIOCLASS ... shall be cleared to 00b for Admin Queue connections",
			Statements: []string{"B-6.3-35", "B-6.3-27"},
		},
		Area: "fabrics", Deviation: "connect-cntlid-static",
		Run: func(t *T) {
			_ = t.Connect()
			var problems []string
			n := 0
			for _, c := range t.Ctrl.Conns() {
				s, d := c.Connect()
				if s == nil || nvme.DecodeConnect(s).QID != 0 {
					continue
				}
				n++
				cmd := nvme.DecodeConnect(s)
				switch {
				case d == nil:
					problems = append(problems, "admin Connect without its 1024-byte data")
					continue
				case d.CNTLID != nvme.CNTLIDDynamic:
					problems = append(problems, fmt.Sprintf("admin Connect CNTLID %#x", d.CNTLID))
				}
				if cmd.CATTR&3 != 0 {
					problems = append(problems, fmt.Sprintf("admin Connect PRIOCLASS %d", cmd.CATTR&3))
				}
				if d.SubNQN != t.Cfg.SubNQN {
					problems = append(problems, fmt.Sprintf("admin Connect SUBNQN %q", d.SubNQN))
				}
				break
			}
			if n == 0 {
				t.Failf("%s: the host sent no admin Connect", t.Check.ID)
			}
			t.ConformAll(problems, "CNTLID FFFFh, PRIOCLASS 00b")
		},
	},
}

// responseTo returns the CQE the host got on c for command cid (the
// first after it was sent), or nil.
func responseTo(c *Conn, cid uint16) *nvme.CQE {
	for _, f := range c.Received() {
		if r, ok := f.PDU.(*tcp.CapsuleResp); ok && r.CQE.CID == cid {
			cqe := r.CQE
			return &cqe
		}
	}
	return nil
}

// readyAt is when the host got a Property Get of CSTS with RDY set on
// admin connection c (zero if it never did).
func readyAt(c *Conn) time.Time {
	pending := map[uint16]bool{}
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			s := &p.SQE
			if s.Opcode == nvme.CmdFabrics && s.FCType() == nvme.FabricsPropertyGet {
				if off, _, _ := nvme.DecodeProperty(s); off == nvme.PropCSTS {
					pending[s.CID] = true
				}
			}
		case *tcp.CapsuleResp:
			if pending[p.CQE.CID] {
				delete(pending, p.CQE.CID)
				if p.CQE.Status.Success() && nvme.PropertyValue(&p.CQE)&nvme.CSTSReady != 0 {
					return f.At
				}
			}
		}
	}
	return time.Time{}
}
