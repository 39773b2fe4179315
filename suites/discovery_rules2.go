package suites

// Discovery-controller rules of issue 19, second part: the controller
// model a Discovery controller follows, the admin commands, log pages and
// features Figures 28, 31 and 32 make mandatory or prohibit on it, the
// commands note 6 ties to explicit persistent connections, and the
// Discovery log page's flags, options and atomicity. Held against NVMe
// Base 2.2 3.1.2 to 3.1.3.6 and NVMe Base 2.1 5.1.12.3.1 and Figure 294.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// Sections of the second part.
const (
	secCtrlModels  = "NVMe Base 2.2 3.1.2"
	secSupportLogs = "NVMe Base 2.1 5.1.12.1.1 Figs. 203, 204"
)

const (
	// logSupportedPages is the Supported Log Pages log page (LID 00h).
	logSupportedPages = 0x00
	// logFIDSupport is the Feature Identifiers Supported and Effects log
	// page (LID 12h).
	logFIDSupport = 0x12
	// logPullDDC is the Pull Model DDC Request log page (73h): mandatory
	// for CDCs, prohibited for the other Discovery controllers.
	logPullDDC = 0x73
	// lidsLSUPP and lidsIOS are bits of a LID Supported and Effects
	// data structure (Fig. 204); its LID Specific Parameter is bits
	// 31:16.
	lidsLSUPP = 1 << 0
	lidsIOS   = 1 << 1
	// extDLPES is the Discovery log's LID Specific Parameter bit 0
	// (Fig. 292): Extended Discovery Log Page Entries Supported.
	extDLPES = 1 << 0
	// dctypeCDC is Identify Controller DCTYPE 2, a Centralized Discovery
	// controller.
	dctypeCDC = 2
	// getLogOT is Get Log Page CDW14 bit 23, Offset Type: LPOL/LPOU are
	// an index into the log page's list of data structures.
	getLogOT = 1 << 23
)

// discProhibitedAdmin are the admin opcodes NVMe Base 2.2 Figure 28
// marks P for a Discovery controller, with their names; Format NVM is
// DISC-CMD-003's.
var discProhibitedAdmin = []struct {
	op   uint8
	name string
}{
	{0x00, "Delete I/O Submission Queue"}, {0x01, "Create I/O Submission Queue"},
	{0x04, "Delete I/O Completion Queue"}, {0x05, "Create I/O Completion Queue"},
	{0x0D, "Namespace Management"}, {0x10, "Firmware Commit"}, {0x11, "Firmware Image Download"},
	{0x14, "Device Self-test"}, {0x15, "Namespace Attachment"}, {0x19, "Directive Send"},
	{0x1A, "Directive Receive"}, {0x1C, "Virtualization Management"}, {0x1D, "NVMe-MI Send"},
	{0x1E, "NVMe-MI Receive"}, {0x20, "Capacity Management"}, {0x24, "Lockdown"},
	{0x28, "Clear Exported NVM Resource Configuration"}, {0x2A, "Create Exported NVM Subsystem"},
	{0x2D, "Manage Exported NVM Subsystem"}, {0x31, "Manage Exported Namespace"},
	{0x35, "Manage Exported Port"}, {0x3D, "Track Send"}, {0x3E, "Track Receive"},
	{0x41, "Migration Send"}, {0x42, "Migration Receive"}, {0x45, "Controller Data Queue"},
	{0x7C, "Doorbell Buffer Config"}, {0x81, "Security Send"},
	{0x82, "Security Receive"}, {0x84, "Sanitize"}, {0x85, "I/O Command Set specific 85h"},
}

// discProhibitedLogs are the log pages NVMe Base 2.2 Figure 31 marks P
// for a Discovery controller but SMART / Health Information
// (DISC-CMD-002's) and Pull Model DDC Request (73h, prohibited only for
// one that is not a CDC: added apart).
var discProhibitedLogs = []uint8{0x03, 0x04, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0F, 0x10, 0x11,
	0x14, 0x15, 0x16, 0x17, 0x19, 0x1A, 0x1B, 0x1C, 0x20, 0x21, 0x22, 0x23, 0x80, 0x81}

// discProhibitedFeatures are the features NVMe Base 2.2 Figure 32 marks
// P for a Discovery controller.
var discProhibitedFeatures = []uint8{0x01, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x0C, 0x0D, 0x0E, 0x10, 0x11, 0x12, 0x13,
	0x14, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1D, 0x1E, 0x1F, 0x21, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85}

var stInvalidOpcode = StatusOutcome(nvme.StatusInvalidOpcode)

// persistentDiscovery connects to the discovery controller with a
// non-zero KATO, which asks for an explicit persistent connection; a
// refusal skips the check (DISC-RULE-001 judges it).
func (s *Spec) persistentDiscovery(ctx context.Context) *initiator.Controller {
	GinkgoHelper()
	o := s.Options()
	o.KATO = 30 * time.Second
	c, err := initiator.Connect(ctx, s.discoveryAddress(), nvme.DiscoveryNQN, o)
	if err != nil {
		Skip(fmt.Sprintf("%s: the discovery controller refuses a Connect with KATO 30 s (%s); DISC-RULE-001 judges that", s.Req.ID, Outcome(err)))
	}
	s.Defer(func() { _ = c.Close() })
	return c
}

// ownDiscoveryEntries are the log entries that describe the discovery
// subsystem c belongs to (SUBTYPE 3 with its NQN or the well-known one).
func ownDiscoveryEntries(c *initiator.Controller, l *nvme.DiscoveryLog) []nvme.DiscoveryLogEntry {
	own := []string{c.IdentifyData().SUBNQN, nvme.DiscoveryNQN}
	var out []nvme.DiscoveryLogEntry
	for _, e := range l.Entries {
		if e.SUBTYPE == nvme.SubtypeCurrentDiscovery && slices.Contains(own, e.SUBNQN) {
			out = append(out, e)
		}
	}
	return out
}

// supportedLogs reads the Supported Log Pages log page (the error is the
// refusal's, if the controller refuses it).
func supportedLogs(ctx context.Context, c *initiator.Controller) (lids [256]uint32, err error) {
	b, err := getLogRaw(ctx, c, logSupportedPages, 0, 0, 1024)
	if err != nil {
		return lids, err
	}
	for i := range lids {
		lids[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return lids, nil
}

// aerOutcome submits an Asynchronous Event Request on c and renders what
// became of it: "outstanding" (no completion: accepted and waiting for an
// event), "success (event DW0 ...)" or the error status. An Identify sent
// behind it is the barrier: a controller that refuses the request has
// answered it by the time it answers the Identify (plus a short grace for
// completions that pass each other), so no long wait is needed.
func aerOutcome(ctx context.Context, c *initiator.Controller) (string, error) {
	done := make(chan *initiator.Request, 1)
	r := &initiator.Request{SQE: nvme.AsyncEventRequestCmd(), Timeout: -1, Done: func(r *initiator.Request) { done <- r }}
	if err := c.Admin().Submit(r); err != nil {
		return "", err
	}
	if _, err := identifyRaw(ctx, c, nvme.CNSController, 0); err != nil {
		return "", err
	}
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case r := <-done:
		if r.Err != nil {
			return Outcome(r.Err), nil
		}
		return fmt.Sprintf("success (event DW0 %#x)", r.CQE.DW0), nil
	case <-t.C:
		return "outstanding", nil
	}
}

// allOr is the observation of a check that collects departures: them,
// joined, or ok when there are none. One verdict per check keeps one root
// cause one observation (a profile documents one per check).
func allOr(bad []string, ok string) string {
	if len(bad) == 0 {
		return ok
	}
	return strings.Join(bad, "; ")
}

// entriesAt returns the log's TCP entries of NVM subsystem nqn that name
// addr (host:port, the host resolved), and whether any TCP entry at all
// names one of addr's IP addresses: when none does, the log describes
// the fabric from the other side of an address translation and says
// nothing about the addresses this host reaches.
func entriesAt(l *nvme.DiscoveryLog, nqn, addr string) (at []nvme.DiscoveryLogEntry, sameView bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, false
	}
	ips, err := net.LookupHost(host)
	if err != nil {
		ips = []string{host}
	}
	same := func(traddr string) bool {
		ip := net.ParseIP(traddr)
		return slices.ContainsFunc(ips, func(s string) bool { return traddr == s || ip != nil && ip.Equal(net.ParseIP(s)) })
	}
	for _, e := range tcpEntries(l) {
		if !same(e.TRADDR) {
			continue
		}
		sameView = true
		// Any SUBTYPE: an entry naming the subsystem lists it; whether
		// its SUBTYPE is right is DISC-LOG-002's verdict.
		if e.SUBNQN == nqn && e.TRSVCID == port {
			at = append(at, e)
		}
	}
	return at, sameView
}

var _ = Describe("discovery", Label("discovery"), func() {
	// The controller model: Identify FCATT bit 0 says static, and the
	// entries that describe the discovery subsystem itself say the model
	// by their CNTLID (FFFFh dynamic, anything less static).
	Check(Requirement{ID: "DISC-RULE-008", Section: secCtrlModels + "; " + secDiscCtrl + " Fig. 27", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-3.1.2-02"},
		Text:       "A Discovery controller shall support only the dynamic controller model (3.1.2); An NVM subsystem supports the dynamic controller model if Discovery Log Page Entries use the Controller ID value of FFFFh ... The Identify Controller data structure also indicates whether an NVM subsystem is dynamic or static (3.1.3.3)",
		Title:      "a discovery controller reports the dynamic controller model: Identify FCATT bit 0 clear, and CNTLID FFFFh in the log entries that describe its own discovery subsystem (SUBTYPE 3)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		fcatt := c.IdentifyData().FCATT
		obs := "FCATT bit 0 clear"
		if fcatt&fcattStatic != 0 {
			obs = fmt.Sprintf("FCATT %#x: bit 0 set (static model)", fcatt)
		}
		s.Conform(obs, "FCATT bit 0 clear")
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range ownDiscoveryEntries(c, l) {
			s.Conform(fmt.Sprintf("own entry %d: CNTLID %04Xh", i, e.CNTLID), fmt.Sprintf("own entry %d: CNTLID FFFFh", i))
		}
	})

	// Every prohibited command is unsupported: Invalid Command Opcode,
	// the status for "an unsupported value in the command opcode field".
	Check(Requirement{ID: "DISC-RULE-009", Section: secAdminCmds, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-F28-02"},
		Text:       "Figure 28, Discovery column: P (prohibited) for Delete/Create I/O Submission/Completion Queue, Namespace Management, Firmware Commit, Firmware Image Download, Device Self-test, Namespace Attachment, Directive Send/Receive, Virtualization Management, NVMe-MI Send/Receive, Capacity Management, Lockdown, the Exported NVM resource commands, Track Send/Receive, Migration Send/Receive, Controller Data Queue, Doorbell Buffer Config, Format NVM (DISC-CMD-003's), Security Send/Receive, Sanitize and I/O Command Set specific 85h",
		Title:      "a discovery controller fails every admin command Figure 28 prohibits on it (but Format NVM, DISC-CMD-003's) with Invalid Command Opcode"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		var bad []string
		for _, p := range discProhibitedAdmin {
			_, err := c.Admin().Exec(ctx, nvme.SQE{Opcode: p.op}, nil, initiator.NoData)
			if obs := Outcome(err); obs != stInvalidOpcode {
				bad = append(bad, fmt.Sprintf("%s (%02Xh): %s", p.name, p.op, obs))
			}
		}
		s.Conform(allOr(bad, "every one "+stInvalidOpcode), "every one "+stInvalidOpcode)
	})

	Check(Requirement{ID: "DISC-RULE-010", Section: secAdminCmds + " note 9", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-F28-04"},
		Text:       "Delete I/O Submission Queue, Create I/O Submission Queue, Delete I/O Completion Queue, Create I/O Completion Queue: M (note 9) for I/O controllers, P for Discovery; 9. Mandatory for NVMe over PCIe. This command is not supported for NVMe over Fabrics",
		Title:      "an I/O controller fails Create and Delete I/O Submission and Completion Queue with Invalid Command Opcode (the discovery controller: DISC-RULE-009)"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		var bad []string
		for _, p := range discProhibitedAdmin[:4] {
			_, err := c.Admin().Exec(ctx, nvme.SQE{Opcode: p.op, CDW10: 2}, nil, initiator.NoData)
			if obs := Outcome(err); obs != stInvalidOpcode {
				bad = append(bad, fmt.Sprintf("%s: %s", p.name, obs))
			}
		}
		s.Conform(allOr(bad, "every one "+stInvalidOpcode), "every one "+stInvalidOpcode)
	})

	// A refused log page: Invalid Log Page, or Invalid Field in Command at
	// the LID, as DISC-CMD-002 accepts.
	Check(Requirement{ID: "DISC-RULE-011", Section: secLogSupport, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-F31-02"},
		Text:       "Figure 31, Discovery column: P (prohibited) for SMART / Health Information (DISC-CMD-002's), Firmware Slot Information, Changed Attached Namespace List, Device Self-test, Telemetry, Endurance Group, Predictable Latency, Asymmetric Namespace Access, Persistent Event, Media Unit Status, Supported Capacity Configuration, Lockdown, Boot Partition, Rotational Media, Dispersed Namespace, Reachability, Changed Allocated Namespace List, FDP, Reservation Notification, Sanitize Status; Pull Model DDC Request: prohibited for Discovery controllers that are not a CDC (note 10)",
		Title:      "a discovery controller refuses every log page Figure 31 prohibits on it (but SMART, DISC-CMD-002's) with Invalid Log Page or Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		lids := discProhibitedLogs
		if c.IdentifyData().DCTYPE != dctypeCDC {
			lids = append(slices.Clone(lids), logPullDDC)
		}
		var bad []string
		for _, lid := range lids {
			_, err := getLogRaw(ctx, c, lid, 0, 0, 512)
			if obs := Outcome(err); obs != stInvalidField && obs != StatusOutcome(nvme.StatusInvalidLogPage) {
				bad = append(bad, fmt.Sprintf("log %02Xh: %s", lid, obs))
			}
		}
		s.Conform(allOr(bad, "every one refused"), "every one refused")
	})

	// Supported Log Pages and Feature Identifiers Supported and Effects
	// are NVMe 2.0's: a controller that reports an older version is not
	// held to them.
	Check(Requirement{ID: "DISC-RULE-012", Section: secLogSupport + "; " + secSupportLogs, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-F31-01"},
		Text:       "Figure 31, Discovery column: Supported Log Pages M, Commands Supported and Effects M, Feature Identifiers Supported and Effects M (note 9: optional if the Set Features command is not supported), Discovery M; LID Supported (LSUPP): if this bit is set to '1', then the controller supports this LID for a Get Log Page command",
		Title:      "a discovery controller (VER 2.0 or later) serves Supported Log Pages, Commands Supported and Effects, Discovery and, if it supports Set Features, Feature Identifiers Supported and Effects, and Supported Log Pages reports each (LSUPP)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if v := c.IdentifyData().VER; v < nvme.MakeVersion(2, 0, 0) {
			s.Lacks(fmt.Sprintf("VER 2.0 or later (it reports %s; Supported Log Pages and Feature Identifiers Supported and Effects are NVMe 2.0's)", nvme.VersionString(v)))
		}
		// One verdict naming every gap, so that one missing page is one
		// observation whatever else the controller lacks.
		var gaps []string
		lids, slpErr := supportedLogs(ctx, c)
		if slpErr != nil {
			gaps = append(gaps, "00h refused ("+Outcome(slpErr)+")")
		}
		b, err := getLogRaw(ctx, c, nvme.LogCommandsEffects, 0, 0, nvme.CommandsEffectsLogSize)
		if err != nil {
			gaps = append(gaps, "05h refused ("+Outcome(err)+")")
		}
		setFeatures := s.discoveryPersistence(ctx, c).Persistent()
		if err == nil {
			setFeatures = binary.LittleEndian.Uint32(b[4*nvme.AdminSetFeatures:])&nvme.CmdEffectsCSUPP != 0
		}
		want := []uint8{logSupportedPages, nvme.LogCommandsEffects, nvme.LogDiscovery}
		if setFeatures {
			want = append(want, logFIDSupport)
			if _, err := getLogRaw(ctx, c, logFIDSupport, 0, 0, 1024); err != nil {
				gaps = append(gaps, "12h refused with Set Features supported ("+Outcome(err)+")")
			}
		}
		for _, lid := range want {
			if slpErr == nil && lids[lid]&lidsLSUPP == 0 {
				gaps = append(gaps, fmt.Sprintf("%02Xh without LSUPP in Supported Log Pages", lid))
			}
		}
		obs := "every mandatory log page served and listed"
		if len(gaps) > 0 {
			obs = strings.Join(gaps, "; ")
		}
		s.Conform(obs, "every mandatory log page served and listed")
	})

	// Get Features of a prohibited feature: Invalid Field in Command, or
	// Invalid Command Opcode where Get Features itself is prohibited
	// (no explicit persistent connections, Fig. 28 note 6).
	Check(Requirement{ID: "DISC-RULE-013", Section: secFeatSupport + "; " + secAdminCmds + " note 6", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-F32-01", "B-F28-03"},
		Text:       "Asynchronous Event Configuration 0Bh and Keep Alive Timer 0Fh: M10 for Discovery; 10. For Discovery controllers that support explicit persistent connections, this feature is mandatory. For Discovery controllers that do not support explicit persistent connections, this feature is prohibited; every other feature of Figure 32 but 78h, 79h, 7Dh to 7Fh (optional): P for Discovery",
		Title:      "a discovery controller answers Get Features of Asynchronous Event Configuration and Keep Alive Timer if it supports explicit persistent connections and refuses them otherwise, and refuses every feature Figure 32 prohibits on it"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		p := s.discoveryPersistence(ctx, c)
		refused := []string{stInvalidField}
		if !p.Persistent() {
			refused = append(refused, stInvalidOpcode)
		}
		// One verdict naming every departure, so that one root cause is
		// one observation.
		var bad []string
		for _, fid := range []uint8{nvme.FeatAsyncEventConfig, nvme.FeatKeepAliveTimer} {
			_, err := c.GetFeatures(ctx, fid, 0, nvme.SelCurrent, 0, nil)
			switch obs := Outcome(err); {
			case p.Persistent() && obs != "success":
				bad = append(bad, fmt.Sprintf("%02Xh %s", fid, obs))
			case !p.Persistent() && !slices.Contains(refused, obs):
				bad = append(bad, fmt.Sprintf("%02Xh %s", fid, obs))
			}
		}
		for _, fid := range discProhibitedFeatures {
			_, err := c.GetFeatures(ctx, fid, 0, nvme.SelCurrent, 0, nil)
			if obs := Outcome(err); !slices.Contains(refused, obs) {
				bad = append(bad, fmt.Sprintf("%02Xh %s", fid, obs))
			}
		}
		obs := "as Figure 32 says"
		if len(bad) > 0 {
			obs = fmt.Sprintf("%s: Get Features %s", p, strings.Join(bad, ", "))
		}
		s.Conform(obs, "as Figure 32 says")
	})

	// The prohibited side of note 6 for the command DISC-RULE-006 (Keep
	// Alive), DISC-CMD-004 (Set Features) and DISC-RULE-013 (Get
	// Features) leave: Asynchronous Event Request.
	Check(Requirement{ID: "DISC-RULE-014", Section: secAdminCmds + " note 6", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-F28-03"},
		Text:       "Asynchronous Event Request: Note 6 for Discovery; 6. For Discovery controllers that support explicit persistent connections, this command is mandatory. For Discovery controllers that do not support explicit persistent connections, this command is prohibited",
		Title:      "a discovery controller without explicit persistent connections (no EPCSD, KAS 0) fails an Asynchronous Event Request with an error status"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if p := s.discoveryPersistence(ctx, c); p.Persistent() {
			s.Lacks("a discovery controller without explicit persistent connections (it claims them: " + p.String() + "; DISC-RULE-015 judges the command there)")
		}
		obs, err := aerOutcome(ctx, c)
		s.mustOK(err, "submit Asynchronous Event Request")
		if strings.HasPrefix(obs, "status ") {
			obs = "an error status"
		}
		s.Conform("Asynchronous Event Request: "+obs, "Asynchronous Event Request: an error status")
	})

	// An AER is accepted when it stays outstanding (no event yet) or
	// completes with an event; an error status refuses it.
	Check(Requirement{ID: "DISC-RULE-015", Section: secDiscCtrl + "; " + secAdminCmds + " note 6", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-3.1.3.3-08", "B-F28-03"},
		Text:       "Discovery controllers that support explicit persistent connections shall support both the Asynchronous Event Request command and the Keep Alive command (3.1.3.3)",
		Title:      "on an explicit persistent connection (KATO 30 s) to a discovery controller that claims them, an Asynchronous Event Request is accepted (outstanding, or completed with an event)"}, func(ctx context.Context, s *Spec) {
		probe := s.ConnectDiscovery(ctx)
		if p := s.discoveryPersistence(ctx, probe); !p.Persistent() {
			s.Lacks("explicit persistent connections (no EPCSD on its own log entry, KAS 0)")
		}
		c := s.persistentDiscovery(ctx)
		obs, err := aerOutcome(ctx, c)
		s.mustOK(err, "submit Asynchronous Event Request")
		if obs == "outstanding" || strings.HasPrefix(obs, "success") {
			AddReportEntry("observed", fmt.Sprintf("%s: Asynchronous Event Request: %s", s.Req.ID, obs))
			obs = "accepted"
		}
		s.Conform("Asynchronous Event Request: "+obs, "Asynchronous Event Request: accepted")
	})

	Check(Requirement{ID: "DISC-RULE-016", Section: secDiscAEConf, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-3.1.3.3.1-01"},
		Text:       "Discovery controllers that support Asynchronous Event Notifications shall implement the Get Features and Set Features commands",
		Title:      "a discovery controller that reports Discovery Log Page Change Notices (OAES bit 31) completes Set Features and Get Features of Asynchronous Event Configuration, and Get Features shows bit 31 as set"}, func(ctx context.Context, s *Spec) {
		probe := s.ConnectDiscovery(ctx)
		if probe.IdentifyData().OAES&nvme.AECDiscovery == 0 {
			s.Lacks("Asynchronous Event Notifications (OAES bit 31 clear)")
		}
		c := s.persistentDiscovery(ctx)
		_, err := c.SetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, nvme.AECDiscovery, false, nil)
		s.Conform("Set Features AEC bit 31: "+Outcome(err), "Set Features AEC bit 31: success")
		dw0, err := c.GetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, nvme.SelCurrent, 0, nil)
		s.Conform("Get Features AEC: "+Outcome(err), "Get Features AEC: success")
		obs := "bit 31 set"
		if dw0&nvme.AECDiscovery == 0 {
			obs = fmt.Sprintf("AEC %#x: bit 31 clear", dw0)
		}
		s.Conform("Get Features AEC: "+obs, "Get Features AEC: bit 31 set")
	})

	// EPCSD clear on the entries that describe the discovery subsystem
	// says it has no explicit persistent connections; the Keep Alive
	// Timer feature is then prohibited (Fig. 32 note 10), so KAS must be
	// 0. (EPCSD set is held to the behaviour by DISC-ID-003, DISC-CMD-005
	// and DISC-RULE-001, which count it as a claim.)
	Check(Requirement{ID: "DISC-RULE-017", Section: secDiscEntry21 + "; " + secFeatSupport + " note 10", Keyword: Indicative, Binds: Controller,
		Statements: []string{"B-L70-20"},
		Text:       "EFLAGS bit 1, Explicit Persistent Connection Support for Discovery (EPCSD) (Fig. 294, as libnvme quotes it); Keep Alive Timer: for Discovery controllers that do not support explicit persistent connections, this feature is prohibited (Fig. 32 note 10)",
		Title:      "a discovery controller whose own log entries (SUBTYPE 3) leave EPCSD clear reports no Keep Alive Timer feature (KAS 0)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		own := ownDiscoveryEntries(c, l)
		if len(own) == 0 {
			s.Lacks("log entries that describe its own discovery subsystem (SUBTYPE 3), which carry EPCSD")
		}
		for _, e := range own {
			if e.EFLAGS&nvme.EFlagsEPCSD != 0 {
				s.Lacks("an own entry with EPCSD clear (EPCSD is set; DISC-ID-003, DISC-CMD-005 and DISC-RULE-001 hold that claim)")
			}
		}
		kas := c.IdentifyData().KAS
		s.Conform(fmt.Sprintf("EPCSD clear, KAS %d", kas), "EPCSD clear, KAS 0")
	})

	Check(Requirement{ID: "DISC-RULE-018", Section: secDiscEntry21, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-L70-19"},
		Text:       "EFLAGS bit 2, No CDC Connectivity (NCC): shall be cleared to 0 if the Discovery controller is not a CDC (Fig. 294, as libnvme quotes it)",
		Title:      "a discovery controller that is not a CDC (Identify DCTYPE not 2) leaves EFLAGS.NCC clear in every log entry"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if c.IdentifyData().DCTYPE == dctypeCDC {
			s.Lacks("a Discovery controller that is not a CDC (DCTYPE 2)")
		}
		_, l := s.readDiscoveryLog(ctx, c)
		var bad []string
		for i, e := range l.Entries {
			if e.EFLAGS&nvme.EFlagsNCC != 0 {
				bad = append(bad, fmt.Sprintf("entry %d (%s): EFLAGS %#x", i, e.SUBNQN, e.EFLAGS))
			}
		}
		s.Conform(allOr(bad, "NCC clear in every entry"), "NCC clear in every entry")
	})

	Check(Requirement{ID: "DISC-RULE-019", Section: secDiscLog21 + " Fig. 292", Keyword: Shall, Binds: Controller,
		Statements: []string{"B-L70-03"},
		Text:       "If the Discovery controller is a CDC, then that CDC shall support returning Extended Discovery Log Page Entries (Fig. 292, EXTDLPES); A Centralized Discovery controller (CDC) shall support returning Extended Discovery Log Page Entries",
		Title:      "a Centralized Discovery controller (Identify DCTYPE 2) reports Extended Discovery Log Page Entries Supported (EXTDLPES) for the Discovery log in Supported Log Pages"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if c.IdentifyData().DCTYPE != dctypeCDC {
			s.Lacks(fmt.Sprintf("a Centralized Discovery controller (DCTYPE %d)", c.IdentifyData().DCTYPE))
		}
		lids, err := supportedLogs(ctx, c)
		s.mustOK(err, "Get Log Page Supported Log Pages (DISC-RULE-012 judges it)")
		obs := "EXTDLPES set"
		if lids[nvme.LogDiscovery]>>16&extDLPES == 0 {
			obs = fmt.Sprintf("LIDS 70h %#x: EXTDLPES clear", lids[nvme.LogDiscovery])
		}
		s.Conform(obs, "EXTDLPES set")
	})

	Check(Requirement{ID: "DISC-RULE-020", Section: secDiscLog21 + "; " + secSupportLogs, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-L70-08"},
		Text:       "If the Discovery controller supports an index offset for this log page (i.e., the Index Offset Supported (IOS) bit is set to '1' in the Supported Log Pages log page ...), then the index values specified in the Log Page Offset Lower (LPOL) field ... and Log Page Offset Upper (LPOU) field ... shall be used to index into the header and list of entries within this log page (e.g., specifying an index offset of 0 returns this log page starting at the header, specifying an index offset of 1 returns this log page starting at the offset of Entry 0, etc.)",
		Title:      "with an index offset claimed for the Discovery log (IOS), Get Log Page with OT set and index 0, 1 and NUMREC returns the header, entry 0 and the last entry"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		lids, err := supportedLogs(ctx, c)
		if err != nil || lids[nvme.LogDiscovery]&lidsIOS == 0 {
			s.Lacks("an index offset for the Discovery log (IOS in Supported Log Pages)")
		}
		full, l := s.readDiscoveryLog(ctx, c)
		for _, idx := range []uint64{0, 1, l.NUMREC} {
			if idx == 0 && l.NUMREC == 0 {
				continue
			}
			sqe := nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, idx, nvme.DiscoveryLogEntrySize)
			sqe.CDW14 |= getLogOT
			buf := make([]byte, nvme.DiscoveryLogEntrySize)
			_, err := c.Admin().Exec(ctx, sqe, buf, initiator.FromController)
			s.mustOK(err, fmt.Sprintf("Get Log Page 70h, OT, index %d", idx))
			want := full[idx*nvme.DiscoveryLogEntrySize:][:nvme.DiscoveryLogEntrySize]
			obs := "the record at that index"
			if d := firstDiff(buf, want); d != "" {
				obs = "other bytes (" + d + ")"
			}
			s.Conform(fmt.Sprintf("index %d: %s", idx, obs), fmt.Sprintf("index %d: the record at that index", idx))
		}
	})

	// Atomic reads: the header's GENCTR changes with every change of the
	// log, so two single reads with the same GENCTR must return the same
	// records. A change made between reads shows which read paired what.
	Check(Requirement{ID: "DISC-RULE-021", Section: secDiscLog21, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-L70-09"},
		Text:       "A single Get Log Page command used to read the Discovery log page shall be atomic; GENCTR: for each change in the Discovery Log Page, this counter is incremented by one (libnvme's wording)",
		Title:      "single whole-log reads of the discovery log taken around added subsystems never pair one GENCTR with two different sets of records (needs a target control)"}, func(ctx context.Context, s *Spec) {
		s.RequireControl("add a subsystem")
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		// Room for the subsystems added below on every port listed.
		size := nvme.DiscoveryLogHeaderSize + (int(l.NUMREC)*3+8)*nvme.DiscoveryLogEntrySize
		seen := map[uint64][]byte{}
		torn := ""
		read := func(when string) {
			b, err := getLogRaw(ctx, c, nvme.LogDiscovery, 0, 0, size)
			s.mustOK(err, "Get Log Page 70h "+when)
			gen, numrec, _, _ := nvme.DecodeDiscoveryLogHeader(b)
			n := min(int(numrec), (size-nvme.DiscoveryLogHeaderSize)/nvme.DiscoveryLogEntrySize)
			recs := b[nvme.DiscoveryLogHeaderSize:][:n*nvme.DiscoveryLogEntrySize]
			recs = append(binary.LittleEndian.AppendUint64(nil, numrec), recs...)
			if prev, ok := seen[gen]; ok && firstDiff(recs, prev) != "" && torn == "" {
				torn = fmt.Sprintf("%s: GENCTR %d with records that differ from an earlier read's with the same GENCTR", when, gen)
			}
			seen[gen] = recs
		}
		read("before")
		for i := range 2 {
			nqn := scratchNQN("atomic")
			s.act(ctx, "add a subsystem", Action{Verb: "add-subsystem", Args: map[string]string{"nqn": nqn}},
				&Action{Verb: "remove-subsystem", Args: map[string]string{"nqn": nqn}})
			read(fmt.Sprintf("after adding subsystem %d", i+1))
			read(fmt.Sprintf("again after adding subsystem %d", i+1))
		}
		if len(seen) == 1 {
			// A counter that never moves is DISC-LOG-012's finding.
			Skip(fmt.Sprintf("%s: GENCTR stayed %d over two changes, so it tells no reads apart (DISC-LOG-012 judges that)", s.Req.ID, l.GENCTR))
		}
		if torn != "" {
			s.Conform(torn, "one set of records per GENCTR")
		}
	})
	Check(Requirement{ID: "DISC-RULE-022", Section: secDiscCtrl, Keyword: Should, Binds: Controller,
		Statements: []string{"B-3.1.3.3-07"},
		Text:       "The set of Discovery Log Page Entries should include all applicable addresses on the same fabric as the Discovery Service and may include addresses on other fabrics",
		Title:      "the discovery log lists the subsystem under test at the address it is tested at (TRADDR and TRSVCID), unless the log's addresses are all behind an address translation"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		at, same := entriesAt(l, s.Target.Config.SubNQN, s.Target.Config.Address)
		if !same {
			Skip(fmt.Sprintf("%s: no TCP entry of the discovery log names a host address of %s: the log describes the fabric from behind an address translation", s.Req.ID, s.Target.Config.Address))
		}
		obs := "listed"
		if len(at) == 0 {
			obs = "not listed"
		}
		s.Conform(fmt.Sprintf("%s at %s: %s", s.Target.Config.SubNQN, s.Target.Config.Address, obs), fmt.Sprintf("%s at %s: listed", s.Target.Config.SubNQN, s.Target.Config.Address))
	})

	// SQFCD clear: the controller requires SQ flow control, so an I/O
	// queue Connect that asks to disable it is refused or leaves it on
	// (a Connect response SQHD other than FFFFh). SQFCD set: either
	// answer is allowed ("may accept or reject"), and only reported.
	Check(Requirement{ID: "DISC-RULE-023", Section: secDiscEntry21, Keyword: May, Binds: Controller,
		Statements: []string{"B-L70-15"},
		Text:       "SQ Flow Control Disable (SQFCD): If this bit is set to '1', then the controller is capable of disabling SQ flow control. A controller that is capable of disabling SQ flow control may accept or reject a host request to disable SQ flow control. If this bit is cleared to '0', then the controller requires use of SQ flow control",
		Title:      "an I/O queue Connect asking to disable SQ flow control (CATTR bit 2) is refused or keeps flow control on (SQHD not FFFFh) when the subsystem's log entry clears TREQ.SQFCD; with SQFCD set either answer passes"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		at, _ := entriesAt(l, s.Target.Config.SubNQN, s.Target.Config.Address)
		if len(at) == 0 {
			s.Lacks("a discovery log entry for the subsystem at the address under test (DISC-RULE-022 judges that)")
		}
		sqfcd := at[0].TREQ&nvme.TREQDisableSQFlow != 0
		_, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
		r := s.Raw(ctx, plainIC)
		cqe, err := s.connect(r, connectArgs{QID: 1, SQSIZE: 31, CNTLID: cntlid, CATTR: nvme.CATTRDisableSQFlow})
		obs := "refused (" + Outcome(err) + ")"
		switch {
		case err == nil && cqe.SQHD == 0xFFFF:
			obs = "flow control disabled"
		case err == nil:
			obs = "flow control kept"
		}
		AddReportEntry("observed", fmt.Sprintf("%s: TREQ %#x; I/O queue Connect with DISSQFC: %s", s.Req.ID, at[0].TREQ, obs))
		if sqfcd {
			return // may accept or reject
		}
		if obs != "flow control disabled" {
			obs = "flow control required"
		}
		s.Conform("SQFCD clear: "+obs, "SQFCD clear: flow control required")
	})

	// Reading the log in pieces while it changes: each piece is a single
	// read and succeeds, or the controller says Discover Restart.
	Check(Requirement{ID: "DISC-RULE-024", Section: secDiscLog21, Keyword: May, Binds: Controller,
		Statements: []string{"B-L70-11"},
		Text:       "If the log page contents change during this command sequence, then the controller may return a status code of Discover Restart",
		Title:      "with extended data for Get Log Page (LPA bit 2), reading the discovery log past the header after a subsystem was added since the header read succeeds or fails with Discover Restart (needs a target control)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if c.IdentifyData().LPA&(1<<2) == 0 {
			s.Lacks("extended data for Get Log Page (LPA bit 2), which gives the Log Page Offset fields")
		}
		s.RequireControl("add a subsystem")
		_, err := getLogRaw(ctx, c, nvme.LogDiscovery, 0, 0, nvme.DiscoveryLogHeaderSize)
		s.mustOK(err, "Get Log Page 70h (header)")
		nqn := scratchNQN("restart")
		s.act(ctx, "add a subsystem", Action{Verb: "add-subsystem", Args: map[string]string{"nqn": nqn}},
			&Action{Verb: "remove-subsystem", Args: map[string]string{"nqn": nqn}})
		_, err = getLogRaw(ctx, c, nvme.LogDiscovery, 0, nvme.DiscoveryLogHeaderSize, nvme.DiscoveryLogEntrySize)
		obs := Outcome(err)
		if obs == "success" || isDiscoverRestart(err) {
			AddReportEntry("observed", fmt.Sprintf("%s: read at offset 1024 after the change: %s", s.Req.ID, obs))
			obs = "success or Discover Restart"
		}
		s.Conform("read at offset 1024 after the change: "+obs, "read at offset 1024 after the change: success or Discover Restart")
	})
	// A controller has one association at a time: an admin Connect that
	// names the controller ID of a live association must not attach a
	// second host connection to it. The static model refuses it
	// (Controller Busy, 6.3), the dynamic one refuses any specific ID; a
	// success is allowed only for another controller.
	Check(Requirement{ID: "DISC-RULE-025", Section: secCtrlModels, Keyword: Indicative, Binds: Controller,
		Statements: []string{"B-3.1.2-03"},
		Text:       "A controller has only one association at a time ... While a controller is associated with a host, that controller is busy, and no other associations may be made with that controller",
		Title:      "an admin Connect naming the controller ID of a live association fails, or gives another controller ID"}, func(ctx context.Context, s *Spec) {
		r := s.Raw(ctx, plainIC)
		cqe, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1})
		s.Must(err, "admin Connect")
		busy := uint16(cqe.DW0)
		r2 := s.Raw(ctx, plainIC)
		cqe, err = s.connect(r2, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: busy})
		got := Outcome(err)
		if err == nil {
			got = fmt.Sprintf("success, CNTLID %d", uint16(cqe.DW0))
		}
		AddReportEntry("observed", fmt.Sprintf("%s: admin Connect naming CNTLID %d of a live association: %s", s.Req.ID, busy, got))
		obs := "no second association"
		switch {
		case err == nil && uint16(cqe.DW0) == busy:
			obs = fmt.Sprintf("a second association with controller %d", busy)
		case err != nil && !strings.HasPrefix(got, "status "):
			obs = got // no answer at all
		}
		s.Conform(obs, "no second association")
	})
	// "Incremented by one" per change: one change may alter several
	// entries (a subsystem on two ports), but every change alters one at
	// least, so the counter moves by at least 1 and at most the number of
	// entries added and removed.
	Check(Requirement{ID: "DISC-RULE-026", Section: secDiscLog21, Keyword: Indicative, Binds: Controller,
		Statements: []string{"B-L70-17"},
		Text:       "GENCTR: For each change in the Discovery Log Page, this counter is incremented by one (header wording as libnvme quotes it)",
		Title:      "adding a subsystem moves GENCTR up by at most the number of entries it adds (not at all: DISC-LOG-012) (needs a target control)"}, func(ctx context.Context, s *Spec) {
		s.RequireControl("add a subsystem")
		c := s.ConnectDiscovery(ctx)
		_, before := s.readDiscoveryLog(ctx, c)
		nqn := scratchNQN("genctr")
		s.act(ctx, "add a subsystem", Action{Verb: "add-subsystem", Args: map[string]string{"nqn": nqn}},
			&Action{Verb: "remove-subsystem", Args: map[string]string{"nqn": nqn}})
		_, after := s.readDiscoveryLog(ctx, c)
		changed := 0
		for _, e := range after.Entries {
			if e.SUBNQN == nqn {
				changed++
			}
		}
		if changed == 0 {
			s.Lacks("a log entry for the added subsystem (DISC-LOG-012 judges that)")
		}
		step := after.GENCTR - before.GENCTR // wraps like the counter
		if step == 0 {
			Skip(fmt.Sprintf("%s: GENCTR stayed %d (DISC-LOG-012 judges a counter that does not move)", s.Req.ID, after.GENCTR))
		}
		obs := fmt.Sprintf("GENCTR up by 1 to %d", changed)
		if step > uint64(changed) {
			obs = fmt.Sprintf("GENCTR %d -> %d (step %d) for %d new entries", before.GENCTR, after.GENCTR, int64(step), changed)
		}
		s.Conform(obs, fmt.Sprintf("GENCTR up by 1 to %d", changed))
	})
})
