package hostconform

import (
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// Asynchronous events (NVMe Base 2.1 5.1.2 and Figure 151): whether the
// host asks for events, and whether it reads what the test controller's
// namespace and ANA changes tell it to. Every host action here is the
// host's choice (a host need not use events at all), so the checks are
// optional: they tell a lab what the host does, and fail only at that
// level.
func init() { register(eventChecks...) }

// reactWait bounds how long a host has to react to an event (read a log
// page, arm a new request, restart discovery): the run's CloseWait, the
// bound it has to react to a fatal error.
func reactWait(t *T) time.Duration { return t.Cfg.CloseWait }

var eventChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-AEN-001", Section: "NVMe Base 2.1 5.1.2", Keyword: suites.May,
			Title:      "The host keeps an Asynchronous Event Request outstanding: one once the controller is ready, and a new one after each event",
			Text:       "To enable asynchronous events to be reported by the controller, a host needs to submit one or more Asynchronous Event Request commands to the controller. The controller specifies an event to the host by completing an Asynchronous Event Request command.",
			Statements: []string{"B-5.1.2-01"},
		},
		Area: "admin", Deviation: "aer-none",
		Run: func(t *T) {
			t.MustConnect()
			admin := eventAdmin(t)
			if !t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool { return aerOutstanding(admin) > 0 }) {
				t.Conform("no Asynchronous Event Request outstanding", "an Asynchronous Event Request outstanding")
			}
			// An event completes it: the host asks again.
			if err := t.Ctrl.Target().SetANAState(1, 1, nvme.ANANonOptimized); err != nil {
				t.Failf("%s: the test controller could not change the ANA state: %v", t.Check.ID, err)
			}
			done := time.Time{}
			t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool {
				done, _ = aerCompletion(admin)
				return !done.IsZero()
			})
			if done.IsZero() {
				t.Failf("%s: the test controller completed no Asynchronous Event Request after an ANA change (are ANA change notices enabled?)", t.Check.ID)
			}
			if !t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool { return aerOutstanding(admin) > 0 }) {
				t.Conform("no Asynchronous Event Request outstanding after an event", "an Asynchronous Event Request outstanding")
			}
			t.Detail("an Asynchronous Event Request outstanding before and after the event")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-AEN-002", Section: "NVMe Base 2.1 Fig.151 (00h)", Keyword: suites.May,
			Title:      "After an Attached Namespace Attribute Changed event the host reads the Changed Namespace List with RAE cleared and rescans the namespaces",
			Text:       "Attached Namespace Attribute Changed: Indicates a change to one or more of the following: Identify Namespace data structures ...; the Active Namespace ID list ... To clear this event, a host issues a Get Log Page command for the Changed Attached Namespace List log page with the Retain Asynchronous Event bit cleared to '0'.",
			Statements: []string{"B-F151-01"},
		},
		Area: "admin", Deviation: "aen-ns-ignored",
		Run: func(t *T) {
			t.MustConnect()
			admin := eventAdmin(t)
			eventArmed(t, admin)
			if err := t.Ctrl.Target().AddNamespace(t.Cfg.SubNQN, target.NamespaceConfig{NSID: 2, Backend: target.BackendNull, Size: "16MiB"}); err != nil {
				t.Failf("%s: the test controller could not add namespace 2: %v", t.Check.ID, err)
			}
			at := eventSeen(t, admin, nvme.AENNoticeNSChanged)
			var readLog, rescan bool
			t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool {
				readLog, rescan = false, false
				for _, f := range admin.Sent() {
					s := Command(f)
					if s == nil || f.At.Before(at) {
						continue
					}
					switch {
					case s.Opcode == nvme.AdminGetLogPage && nvme.LogPageLID(s) == nvme.LogChangedNSList && !nvme.LogPageRAE(s):
						readLog = true
					case s.Opcode == nvme.AdminIdentify && (uint8(s.CDW10) == nvme.CNSActiveNSList || uint8(s.CDW10) == nvme.CNSNamespace && s.NSID == 2):
						rescan = true
					}
				}
				return readLog && rescan
			})
			var problems []string
			if !readLog {
				problems = append(problems, "did not read the Changed Namespace List (RAE 0)")
			}
			if !rescan {
				problems = append(problems, "did not rescan the namespaces")
			}
			t.ConformAll(problems, "read the Changed Namespace List and rescanned")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-AEN-003", Section: "NVMe Base 2.1 Fig.151 (03h)", Keyword: suites.May,
			Title:      "After an Asymmetric Namespace Access Change event the host reads the ANA log with RAE cleared",
			Text:       "Asymmetric Namespace Access Change: ... The current Asymmetric Namespace Access information for attached namespaces is indicated in the Asymmetric Namespace Access log page. To clear this event, the host issues a Get Log Page command with the Retain Asynchronous Event bit cleared to '0' for the Asymmetric Namespace Access log.",
			Statements: []string{"B-F151-02"},
		},
		Area: "admin", Deviation: "aen-ana-ignored",
		Run: func(t *T) {
			t.MustConnect()
			admin := eventAdmin(t)
			eventArmed(t, admin)
			if err := t.Ctrl.Target().SetANAState(1, 1, nvme.ANANonOptimized); err != nil {
				t.Failf("%s: the test controller could not change the ANA state: %v", t.Check.ID, err)
			}
			at := eventSeen(t, admin, nvme.AENNoticeANAChange)
			read := t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool {
				for _, f := range admin.Sent() {
					if s := Command(f); s != nil && f.At.After(at) && s.Opcode == nvme.AdminGetLogPage && nvme.LogPageLID(s) == nvme.LogANA && !nvme.LogPageRAE(s) {
						return true
					}
				}
				return false
			})
			if !read {
				t.Conform("did not read the ANA log (RAE 0)", "read the ANA log")
			}
		},
	},
}

// eventAdmin is the admin connection of the host's association.
func eventAdmin(t *T) *Conn {
	for _, c := range t.Ctrl.Conns() {
		if s, d := c.Connect(); s != nil && nvme.DecodeConnect(s).QID == 0 && d != nil && d.SubNQN == t.Cfg.SubNQN {
			return c
		}
	}
	t.Failf("%s: the host connected no admin queue to %s", t.Check.ID, t.Cfg.SubNQN)
	return nil
}

// eventArmed waits for the host to have an Asynchronous Event Request
// outstanding; without one no event can reach it, and the check has
// nothing to judge (HOST-AEN-001 judges that).
func eventArmed(t *T, admin *Conn) {
	if !t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool { return aerOutstanding(admin) > 0 }) {
		t.Skipf("the host keeps no Asynchronous Event Request outstanding (HOST-AEN-001): no event can reach it")
	}
}

// eventSeen waits for the controller to complete an Asynchronous Event
// Request with a notice of info, and returns when.
func eventSeen(t *T, admin *Conn, info uint8) time.Time {
	var at time.Time
	t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool {
		var dw0 uint32
		at, dw0 = aerCompletion(admin)
		return !at.IsZero() && dw0&7 == nvme.AENTypeNotice && uint8(dw0>>8) == info
	})
	if at.IsZero() {
		t.Failf("%s: the test controller sent no event (notice %#x)", t.Check.ID, info)
	}
	t.Detail("event at %s", at.Format(time.RFC3339Nano))
	return at
}

// aerOutstanding counts the Asynchronous Event Requests the host has
// sent on c that are not completed.
func aerOutstanding(c *Conn) int {
	open := map[uint16]bool{}
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			if f.Dir == FromHost && p.SQE.Opcode == nvme.AdminAsyncEventReq {
				open[p.SQE.CID] = true
			}
		case *tcp.CapsuleResp:
			delete(open, p.CQE.CID)
		}
	}
	return len(open)
}

// aerCompletion is the last completion of an Asynchronous Event Request
// the host got on c: when, and its dword 0 (zero time if none).
func aerCompletion(c *Conn) (time.Time, uint32) {
	open := map[uint16]bool{}
	var at time.Time
	var dw0 uint32
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			if f.Dir == FromHost {
				open[p.SQE.CID] = p.SQE.Opcode == nvme.AdminAsyncEventReq
			}
		case *tcp.CapsuleResp:
			if open[p.CQE.CID] {
				at, dw0 = f.At, p.CQE.DW0
			}
			delete(open, p.CQE.CID)
		}
	}
	return at, dw0
}
