package hostconform

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// Discovery (NVMe Base 2.2 3.1.3.3, Figure 105; Base 2.1 Figures 152 and
// 294): what a host that finds subsystems through the test controller's
// discovery service does with what it is told there. The test controller
// serves discovery and the subsystem on the same port.
func init() { register(append(discoveryChecks, referralCheck)...) }

var discoveryChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-DISC-001", Section: "NVMe Base 2.2 Fig.105 (83h)", Keyword: suites.Should,
			Title:      "A host whose Connect to a subsystem it discovered is answered Connect Restart Discovery reads the Discovery log again",
			Text:       "Connect Restart Discovery: The NVM subsystem requested is not available. The host should restart the discovery process.",
			Statements: []string{"B-F105-01"},
		},
		Area: "discovery", Deviation: "restart-discovery-ignored",
		Controller: func(s *Setup) {
			s.ToHost = restartDiscoveryOnce()
		},
		Run: func(t *T) {
			defer discDisconnect(t)
			_ = t.Do(VerbConnectAll, discArgs(t))
			var at time.Time
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Received() {
					if r, ok := f.PDU.(*tcp.CapsuleResp); ok && f.Injected && r.CQE.Status.Code() == nvme.StatusConnectRestartDiscovery {
						at = f.At
					}
				}
			}
			if at.IsZero() {
				t.Failf("%s: the host sent no admin Connect to %s after reading the discovery log", t.Check.ID, t.Cfg.SubNQN)
			}
			// The host may restart at once or after a delay of its own.
			reread := t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool {
				return discLogReadAfter(t, at)
			})
			if !reread {
				t.Conform("did not read the Discovery log again", "restarted discovery")
			}
			t.Detail("the host read the Discovery log again after Connect Restart Discovery")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DISC-002", Section: "NVMe Base 2.1 Fig.294 (TREQ)", Keyword: suites.Shall,
			Title:      "The host makes no cleartext connection to a discovery log entry whose TREQ.TSC requires a secure channel",
			Text:       "Transport Secure Channel (TSC): Indicates whether connections shall be made over a fabric secure channel (refer to section 8.3.4.1). 01b Required",
			Statements: []string{"B-L70-14"},
		},
		Area: "discovery", Deviation: "treq-tsc-ignored",
		Controller: func(s *Setup) {
			s.ToHost = treqSecureChannel
		},
		Run: func(t *T) {
			defer discDisconnect(t)
			_ = t.Do(VerbConnectAll, discArgs(t)) // a host without TLS cannot connect: expected to fail
			if _, edited := injected(t.Ctrl.Conns(), tcp.TypeC2HData); edited == nil {
				t.Failf("%s: the host read no Discovery log entry for %s", t.Check.ID, t.Cfg.SubNQN)
			}
			clear := 0
			for _, c := range t.Ctrl.Conns() {
				if _, d := c.Connect(); d != nil && d.SubNQN == t.Cfg.SubNQN {
					clear++
					t.Detail("connection %d: ICReq and Connect to %s in the clear", c.ID(), d.SubNQN)
				}
			}
			if clear > 0 {
				t.Conform("connected in the clear", "no cleartext connection when a secure channel is required")
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DISC-003", Section: "NVMe Base 2.2 3.1.3.3; Base 2.1 Fig.152 (F0h)", Keyword: suites.May,
			Title:      "A host with an explicit persistent discovery connection reads the Discovery log (RAE cleared) after a Discovery Log Page Change event",
			Text:       "A host requests an explicit persistent connection to a Discovery controller and Asynchronous Event Notifications from the Discovery controller on that persistent connection by specifying a non-zero Keep Alive Timer value in the Connect command ... Discovery Log Page Change: A change has occurred to one or more of the Discovery log pages. To clear this event, the host or Discovery controller reads the Discovery log page with the Retain Asynchronous Event bit cleared to '0'.",
			Statements: []string{"B-F152-01"},
		},
		Area: "discovery", Deviation: "aen-discovery-ignored",
		Run: func(t *T) {
			defer discDisconnect(t)
			args := discArgs(t)
			args["persistent"] = "true"
			if err := t.Do(VerbDiscover, args); err != nil {
				t.Failf("%s: the host's persistent discovery failed: %v", t.Check.ID, err)
			}
			var disc *Conn
			for _, c := range t.Ctrl.Conns() {
				if s, d := c.Connect(); s != nil && d != nil && d.SubNQN == nvme.DiscoveryNQN {
					disc = c
				}
			}
			if disc == nil {
				t.Failf("%s: the host connected no discovery controller", t.Check.ID)
			}
			if s, _ := disc.Connect(); nvme.DecodeConnect(s).KATO == 0 {
				t.Skipf("the host connected the discovery controller with KATO 0: no explicit persistent connection, no events")
			}
			eventArmed(t, disc)
			nqn := t.Cfg.SubNQN + ":added"
			if err := t.Ctrl.Target().AddSubsystem(target.SubsystemConfig{NQN: nqn, AllowAnyHost: true}); err != nil {
				t.Failf("%s: the test controller could not add a subsystem: %v", t.Check.ID, err)
			}
			at := eventSeen(t, disc, nvme.AENNoticeDiscoveryChange)
			read := t.Ctrl.WaitFor(ctxUntil(t, time.Now().Add(reactWait(t))), func() bool {
				for _, f := range disc.Sent() {
					if s := Command(f); s != nil && f.At.After(at) && s.Opcode == nvme.AdminGetLogPage && nvme.LogPageLID(s) == nvme.LogDiscovery && !nvme.LogPageRAE(s) {
						return true
					}
				}
				return false
			})
			if !read {
				t.Conform("did not read the Discovery log (RAE 0)", "read the Discovery log")
			}
		},
	},
}

// referrals maps the port of a run's listener to the port of the second
// discovery service HOST-DISC-004 refers the host to (set by the check,
// read by its hook on the target's goroutines).
var referrals sync.Map // int -> int

// referralCheck is HOST-DISC-004: the test controller's discovery log on
// the run's port lists no subsystem, only a referral to a second
// discovery service (the same test controller on a second port), whose
// log lists the subsystem.
var referralCheck = Check{
	Requirement: suites.Requirement{
		ID: "HOST-DISC-004", Section: "NVMe Base 2.1 Fig.294 (SUBTYPE 01h)", Keyword: suites.May,
		Title:      "A host discovering through a Discovery log that holds a referral reads the log of the Discovery Service it refers to",
		Text:       "Referral: The entry describes a referral to another Discovery Service composed of Discovery controllers that provide additional discovery records.",
		Statements: []string{"B-L70-21"},
	},
	Area: "discovery", Deviation: "referral-ignored",
	Controller: func(s *Setup) {
		s.ToHost = referNVMEntries
	},
	Run: func(t *T) {
		defer discDisconnect(t)
		host, port, _ := net.SplitHostPort(t.Cfg.Listen)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Failf("%s: the second discovery service: %v", t.Check.ID, err)
		}
		defer ln.Close()
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				t.Ctrl.serve(nc)
			}
		}()
		main, _ := strconv.Atoi(port)
		second := ln.Addr().(*net.TCPAddr).Port
		referrals.Store(main, second)
		defer referrals.Delete(main)
		_ = t.Do(VerbConnectAll, discArgs(t))
		referred, followed := false, false
		for _, c := range t.Ctrl.Conns() {
			for _, f := range c.Received() {
				referred = referred || f.Injected && f.CH.Type == tcp.TypeC2HData
			}
			if localPort(c) != second {
				continue
			}
			for _, f := range c.Sent() {
				if s := Command(f); s != nil && s.Opcode == nvme.AdminGetLogPage && nvme.LogPageLID(s) == nvme.LogDiscovery {
					followed = true
				}
			}
		}
		if !referred {
			t.Failf("%s: the host read no Discovery log entry", t.Check.ID)
		}
		if !followed {
			t.Conform("did not follow the referral", "read the referred Discovery log")
		}
		t.Detail("the host read the Discovery log at port %d, where the referral pointed", second)
	},
}

// localPort is the test controller's port of connection c.
func localPort(c *Conn) int {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// referNVMEntries turns the NVM subsystem entries of the Discovery log
// read on the run's port into referrals to the second discovery service
// (referrals); the log read there is left as it is.
func referNVMEntries(c *Conn, f *Frame) [][]byte {
	p, ok := f.PDU.(*tcp.C2HData)
	if !ok || c.QID() != 0 {
		return pass(f)
	}
	v, ok := referrals.Load(localPort(c))
	if !ok {
		return pass(f)
	}
	if _, d := c.Connect(); d == nil || d.SubNQN != nvme.DiscoveryNQN {
		return pass(f)
	}
	s := commandOf(c, p.CCCID)
	if s == nil || s.Opcode != nvme.AdminGetLogPage || nvme.LogPageLID(s) != nvme.LogDiscovery {
		return pass(f)
	}
	start := nvme.LogPageOffset(s) + uint64(p.DATAO)
	data := f.Data()
	raw := append([]byte(nil), f.Raw...)
	changed := false
	for e := uint64(nvme.DiscoveryLogHeaderSize); e+nvme.DiscoveryLogEntrySize <= start+uint64(len(data)); e += nvme.DiscoveryLogEntrySize {
		if e < start {
			continue
		}
		var ent nvme.DiscoveryLogEntry
		off := int(f.CH.PDO) + int(e-start)
		if ent.Decode(raw[off:]) != nil || ent.SUBTYPE != nvme.SubtypeNVM {
			continue
		}
		ent.SUBTYPE, ent.SUBNQN, ent.TRSVCID, ent.CNTLID = nvme.SubtypeReferral, nvme.DiscoveryNQN, strconv.Itoa(v.(int)), nvme.CNTLIDDynamic
		ent.Put(raw[off:])
		changed = true
	}
	if !changed {
		return pass(f)
	}
	return [][]byte{FixDigests(raw)}
}

// discArgs are the discover and connect-all verbs' arguments for the test
// controller's discovery service.
func discArgs(t *T) map[string]string {
	host, port, _ := net.SplitHostPort(t.Cfg.Listen)
	return map[string]string{"addr": host, "port": port, "hostnqn": t.Cfg.HostNQN}
}

// discDisconnect ends what a discovery check connected: the subsystem
// (the run disconnects it too, but only after a connect verb) and a
// persistent discovery controller.
func discDisconnect(t *T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nqn := range []string{t.Cfg.SubNQN, nvme.DiscoveryNQN} {
		_ = t.Cfg.Control.Do(ctx, control.Action{Verb: VerbDisconnect, Args: map[string]string{"nqn": nqn}})
	}
}

// discLogReadAfter reports whether the host read the Discovery log on a
// discovery connection it made after at.
func discLogReadAfter(t *T, at time.Time) bool {
	for _, c := range t.Ctrl.Conns() {
		s, d := c.Connect()
		if s == nil || d == nil || d.SubNQN != nvme.DiscoveryNQN {
			continue
		}
		for _, f := range c.Sent() {
			if q := Command(f); q != nil && f.At.After(at) && q.Opcode == nvme.AdminGetLogPage && nvme.LogPageLID(q) == nvme.LogDiscovery {
				return true
			}
		}
	}
	return false
}

// restartDiscoveryOnce is a controller that answers the first admin
// Connect to an NVM subsystem with Connect Restart Discovery.
func restartDiscoveryOnce() Hook {
	var edited atomic.Bool // the first one only
	return func(c *Conn, f *Frame) [][]byte {
		r, ok := f.PDU.(*tcp.CapsuleResp)
		if !ok || c.QID() != 0 {
			return pass(f)
		}
		s, d := c.Connect()
		if s == nil || s.CID != r.CQE.CID || d == nil || d.SubNQN == nvme.DiscoveryNQN {
			return pass(f)
		}
		if !edited.CompareAndSwap(false, true) {
			return pass(f)
		}
		return [][]byte{withStatus(f.Raw, nvme.StatusConnectRestartDiscovery)}
	}
}

// withStatus is a copy of CapsuleResp raw with status st (and DW0
// cleared: a failed Connect returns no controller ID), digests fixed.
func withStatus(raw []byte, st nvme.Status) []byte {
	out := append([]byte(nil), raw...)
	for i := 0; i < 4; i++ {
		out[8+i] = 0
	}
	phase := uint16(out[offCQEStatus]) & 1
	v := uint16(st)<<1 | phase
	out[offCQEStatus], out[offCQEStatus+1] = byte(v), byte(v>>8)
	return FixDigests(out)
}

// treqSecureChannel is a controller whose Discovery log requires a
// secure channel (TREQ.TSC 01b) for every NVM subsystem entry.
func treqSecureChannel(c *Conn, f *Frame) [][]byte {
	p, ok := f.PDU.(*tcp.C2HData)
	if !ok || c.QID() != 0 {
		return pass(f)
	}
	if _, d := c.Connect(); d == nil || d.SubNQN != nvme.DiscoveryNQN {
		return pass(f)
	}
	s := commandOf(c, p.CCCID)
	if s == nil || s.Opcode != nvme.AdminGetLogPage || nvme.LogPageLID(s) != nvme.LogDiscovery {
		return pass(f)
	}
	start := nvme.LogPageOffset(s) + uint64(p.DATAO) // log offset of the PDU's first byte
	data := f.Data()
	raw := append([]byte(nil), f.Raw...)
	changed := false
	for e := uint64(nvme.DiscoveryLogHeaderSize); e < start+uint64(len(data)); e += nvme.DiscoveryLogEntrySize {
		sub, treq := e+2, e+3
		if sub < start || treq >= start+uint64(len(data)) || data[sub-start] != nvme.SubtypeNVM {
			continue
		}
		i := int(f.CH.PDO) + int(treq-start)
		raw[i] = raw[i]&^nvme.TREQSecureMask | nvme.TREQRequired
		changed = true
	}
	if !changed {
		return pass(f)
	}
	return [][]byte{FixDigests(raw)}
}
