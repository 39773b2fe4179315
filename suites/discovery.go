package suites

// The discovery area: the discovery controller (Connect, Identify, what it
// refuses), the discovery log page (header, entries, paging, GENCTR) and
// discovery events and referrals. The discovery controller rules are
// held against NVMe Base 2.2 3.1.3.3 and its figures; the log page and
// Identify Controller fields against NVMe Base 2.1, whose pages for them
// are in the stored material.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// tcpEntries returns the log's NVMe/TCP entries with TRADDR and TRSVCID
// as the strings they carry: both are ASCII fields that a target may pad
// with spaces as well as NULs.
func tcpEntries(l *nvme.DiscoveryLog) []nvme.DiscoveryLogEntry {
	var out []nvme.DiscoveryLogEntry
	for _, e := range l.Entries {
		if e.TRTYPE == nvme.TRTypeTCP {
			e.TRADDR = strings.TrimRight(e.TRADDR, " ")
			e.TRSVCID = strings.TrimRight(e.TRSVCID, " ")
			out = append(out, e)
		}
	}
	return out
}

func listsNQN(l *nvme.DiscoveryLog, nqn string) bool {
	return slices.ContainsFunc(l.Entries, func(e nvme.DiscoveryLogEntry) bool { return e.SUBNQN == nqn })
}

var _ = Describe("discovery", Label("discovery"), func() {
	// The discovery controller.

	Check(Requirement{ID: "DISC-CONN-001", Section: secDiscCtrl, Keyword: Shall, Binds: Controller,
		Text:  "that Discovery subsystem shall support the well-known Discovery Service NQN being specified in the Connect command",
		Title: "a discovery controller accepts a Connect to the well-known discovery NQN on the discovery address and becomes ready"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		s.expectThat(c.IdentifyData() != nil, "no Identify data")
	})

	Check(Requirement{ID: "DISC-CONN-002", Section: secDiscCtrl, Keyword: Indicative, Binds: Controller,
		Text:  "A host requests an explicit persistent connection ... by specifying a non-zero Keep Alive Timer value in the Connect command (KATO 0 asks for none)",
		Title: "a discovery controller accepts KATO 0 in the admin Connect"}, func(ctx context.Context, s *Spec) {
		r := s.DialDiscovery(ctx)
		_, err := r.Initialize(tcp.ICReq{})
		s.skipIfICRespRefused(err)
		s.mustOK(err, "connection initialization")
		_, err = s.connectRaw(r, nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, initiator.AdminQueueSize-1, 0, 0)
		s.Conform(Outcome(err), "success")
	})

	// The text names no status for an I/O queue Connect to a discovery
	// controller; it only says there are no I/O queues, and a failed
	// Connect never reports Invalid Field in Command.
	Check(Requirement{ID: "DISC-CONN-003", Section: secDiscCtrl + "; " + secConnect, Keyword: Indicative, Binds: Controller,
		Text:  "A Discovery controller ... does not implement I/O Queues; For a Connect command that fails, the controller shall not: return a status code of Invalid Field in Command",
		Title: "a discovery controller refuses an I/O queue Connect (any status but Invalid Field in Command)"}, func(ctx context.Context, s *Spec) {
		a := s.DialDiscovery(ctx)
		_, err := a.Initialize(tcp.ICReq{})
		s.skipIfICRespRefused(err)
		s.mustOK(err, "connection initialization")
		cqe, err := s.connectRaw(a, nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, initiator.AdminQueueSize-1, 0, 0)
		s.skipIfDiscoveryConnectRefused(err)
		s.mustOK(err, "admin Connect")
		r := s.DialDiscovery(ctx)
		_, err = r.Initialize(tcp.ICReq{})
		s.skipIfICRespRefused(err)
		s.mustOK(err, "connection initialization")
		_, err = s.connectRaw(r, nvme.DiscoveryNQN, 1, uint16(cqe.DW0), 31, 0, 0)
		s.rejectedNotInvalidField(Outcome(err))
	})

	Check(Requirement{ID: "DISC-ID-001", Section: secDiscCtrl, Keyword: Shall, Binds: Controller,
		Text:  "If the Discovery subsystem provides a unique Discovery Service NQN (i.e., the ... SUBNQN field in that Discovery subsystem's Identify Controller data structure contains a unique Discovery Service NQN value), then that Discovery subsystem shall support both the unique Discovery Service NQN and the well-known Discovery Service NQN being specified in the Connect command",
		Title: "a discovery controller's Identify SUBNQN is the well-known discovery NQN, or a unique discovery NQN it also accepts in a Connect"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		nqn := c.IdentifyData().SUBNQN
		if nqn == nvme.DiscoveryNQN {
			return
		}
		AddReportEntry("observed", fmt.Sprintf("%s: unique Discovery Service NQN %q", s.Req.ID, nqn))
		s.expectThat(strings.HasPrefix(nqn, "nqn."), "Identify SUBNQN %q is neither the well-known discovery NQN nor an NQN", nqn)
		err := s.connectDiscoveryNQN(ctx, nqn)
		s.Conform("Connect to the unique NQN: "+Outcome(err), "Connect to the unique NQN: success")
	})

	Check(Requirement{ID: "DISC-ID-002", Section: secCtrlTypes + "; " + secIDCtrl21, Keyword: Indicative, Binds: Controller,
		Text:  "The Controller Type (CNTRLTYPE) field in the Identify Controller data structure indicates a controller's type",
		Title: "a discovery controller reports CNTRLTYPE 2 (Discovery controller) when VER is 1.4 or later"}, func(ctx context.Context, s *Spec) {
		id := s.ConnectDiscovery(ctx).IdentifyData()
		if id.VER < nvme.MakeVersion(1, 4, 0) {
			s.Lacks("VER 1.4 or later")
		}
		s.Conform(fmt.Sprintf("CNTRLTYPE %d", id.CNTRLTYPE), "CNTRLTYPE 2")
	})

	// A discovery controller supports Keep Alive (and the Keep Alive
	// Timer feature, whose support KAS reports) only if it supports
	// explicit persistent connections; the check holds a controller that
	// says so in its own log entry (EPCSD) to a non-zero KAS.
	Check(Requirement{ID: "DISC-ID-003", Section: secFeatSupport + "; " + secIDCtrl21, Keyword: Shall, Binds: Controller,
		Text:  "Keep Alive Timer: for Discovery controllers that support explicit persistent connections, this feature is mandatory (Fig. 32 note 10); KAS: If this field is cleared to 0h, then the Keep Alive Timer feature is not supported",
		Title: "a discovery controller that supports explicit persistent connections reports keep alive support (KAS not zero)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		p := s.discoveryPersistence(ctx, c)
		if !p.Persistent() {
			s.Lacks("explicit persistent connections (no EPCSD on its own log entry, KAS 0)")
		}
		obs := "KAS not zero"
		if c.IdentifyData().KAS == 0 {
			obs = "KAS is 0" // the words the nvmet profile documents
		}
		s.Conform(obs, "KAS not zero")
	})

	// DISC-ID-004 (LPA bit 2 recommended) is gone: no text recommends
	// it. A controller that claims it is held to it by DISC-LOG-009/010.

	Check(Requirement{ID: "DISC-ID-005", Section: secIDCtrl21, Keyword: Indicative, Binds: Controller,
		Text:  "Version (VER): This field contains the value reported in the Version property (i.e., VS property) defined in section 3.1.4.2",
		Title: "a discovery controller's Identify VER equals its Version property"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		s.Conform(nvme.VersionString(c.IdentifyData().VER), nvme.VersionString(c.Version()))
	})

	// Identify CNS 00h names namespace 1, which a discovery controller
	// does not have: the CNS may be refused (Invalid Field in Command) or
	// the NSID (Invalid Namespace or Format).
	Check(Requirement{ID: "DISC-CMD-001", Section: secDiscCtrl, Keyword: Indicative, Binds: Controller,
		Text:  "A Discovery controller ... does not implement I/O Queues, I/O commands, or expose namespaces",
		Title: "a discovery controller refuses Identify Namespace (CNS 00h, NSID 1) with Invalid Field in Command or Invalid Namespace or Format"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := identifyRaw(ctx, c, nvme.CNSNamespace, 1)
		s.OneOf(Outcome(err), stInvalidField, StatusOutcome(nvme.StatusInvalidNamespace))
	})

	Check(Requirement{ID: "DISC-CMD-002", Section: secLogSupport, Keyword: Shall, Binds: Controller,
		Text:  "SMART / Health Information 02h: Discovery P (prohibited)",
		Title: "a discovery controller refuses a log page other than Discovery (SMART) with Invalid Field in Command or Invalid Log Page"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := getLogRaw(ctx, c, nvme.LogSMART, 0xFFFFFFFF, 0, nvme.SMARTLogSize)
		s.conformOneOf(Outcome(err), "status 0x1/0x9", "status 0x0/0x2")
	})

	Check(Requirement{ID: "DISC-CMD-003", Section: secAdminCmds, Keyword: Shall, Binds: Controller,
		Text:  "Format NVM 80h: Discovery P (prohibited)",
		Title: "a discovery controller refuses NVM admin commands (Format NVM) with Invalid Command Opcode"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := c.Admin().Exec(ctx, nvme.SQE{Opcode: 0x80, NSID: 1}, nil, initiator.NoData)
		s.Conform(Outcome(err), "status 0x0/0x1")
	})

	// Number of Queues is prohibited on every discovery controller;
	// Set Features itself is mandatory on one with explicit persistent
	// connections (the feature is then refused, Invalid Field) and
	// prohibited on one without (the command is then refused, Invalid
	// Command Opcode, or the feature).
	Check(Requirement{ID: "DISC-CMD-004", Section: secFeatSupport + "; " + secAdminCmds, Keyword: Shall, Binds: Controller,
		Text:  "Number of Queues 07h: Discovery P (Fig. 32); Set Features: For Discovery controllers that support explicit persistent connections, this command is mandatory ... that do not ..., this command is prohibited (Fig. 28 note 6)",
		Title: "a discovery controller refuses Set Features Number of Queues (Invalid Field in Command; Invalid Command Opcode too without explicit persistent connections)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		p := s.discoveryPersistence(ctx, c)
		_, err := c.SetFeatures(ctx, nvme.FeatNumQueues, 0, nvme.NumQueuesValue(1, 1), false, nil)
		if p.Persistent() {
			s.Conform(Outcome(err), stInvalidField)
			return
		}
		s.OneOf(Outcome(err), stInvalidField, StatusOutcome(nvme.StatusInvalidOpcode))
	})

	Check(Requirement{ID: "DISC-CMD-005", Section: secDiscCtrl, Keyword: Shall, Binds: Controller,
		Text:  "Discovery controllers that support explicit persistent connections shall support both the Asynchronous Event Request command and the Keep Alive command",
		Title: "a discovery controller that supports explicit persistent connections completes Keep Alive successfully"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if p := s.discoveryPersistence(ctx, c); !p.Persistent() {
			s.Lacks("explicit persistent connections (no EPCSD on its own log entry, KAS 0): such a controller \"shall not support Keep Alive commands\"")
		}
		_, err := c.Admin().Exec(ctx, nvme.KeepAliveCmd(), nil, initiator.NoData)
		s.Conform(Outcome(err), "success")
	})

	// The discovery log page.

	Check(Requirement{ID: "DISC-LOG-001", Section: secDiscLog21, Keyword: Shall, Binds: Controller,
		Text:  "RECFMT: The format of the record specified in this definition shall be 0h; NUMREC: the number of records contained in the log (header wording as libnvme quotes it; the 2.1 header figure is not in the stored material)",
		Title: "the discovery log header has RECFMT 0 and NUMREC entries follow it, 1024 bytes each"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		full, l := s.readDiscoveryLog(ctx, c)
		s.Conform(fmt.Sprintf("RECFMT %d", l.RECFMT), "RECFMT 0")
		s.expectThat(len(l.Entries) == int(l.NUMREC), "NUMREC %d, %d entries in %d bytes", l.NUMREC, len(l.Entries), len(full))
		for i, e := range l.Entries {
			s.expectThat(e.TRTYPE != 0 && e.SUBNQN != "", "entry %d of NUMREC %d is empty (TRTYPE %d SUBNQN %q)", i, l.NUMREC, e.TRTYPE, e.SUBNQN)
		}
	})

	Check(Requirement{ID: "DISC-LOG-002", Section: secDiscCtrl + "; " + secDiscEntry21, Keyword: Should, Binds: Controller,
		Text:  "The set of Discovery Log Page Entries should include all applicable addresses on the same fabric as the Discovery Service",
		Title: "the discovery log lists the subsystem under test as an NVM subsystem (SUBTYPE 2) over TCP (TRTYPE 3)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		found := slices.ContainsFunc(l.Entries, func(e nvme.DiscoveryLogEntry) bool {
			return e.SUBNQN == s.Target.Config.SubNQN && e.SUBTYPE == nvme.SubtypeNVM && e.TRTYPE == nvme.TRTypeTCP
		})
		s.expectThat(found, "no TCP NVM subsystem entry for %s among %d entries", s.Target.Config.SubNQN, len(l.Entries))
	})

	Check(Requirement{ID: "DISC-LOG-003", Section: secDiscEntry21, Keyword: Indicative, Binds: Controller,
		Text:  "Address Family (ADRFAM): the address family of the entry's transport address (IPv4 1h, IPv6 2h)",
		Title: "every TCP entry's ADRFAM is IPv4 or IPv6 and matches its TRADDR"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range tcpEntries(l) {
			ip := net.ParseIP(e.TRADDR)
			s.expectThat(ip != nil, "TCP entry %d: TRADDR %q is not an IP address", i, e.TRADDR)
			want := uint8(nvme.AdrFamIPv6)
			if ip.To4() != nil {
				want = nvme.AdrFamIPv4
			}
			s.Conform(fmt.Sprintf("ADRFAM %d for %s", e.ADRFAM, e.TRADDR), fmt.Sprintf("ADRFAM %d for %s", want, e.TRADDR))
		}
	})

	Check(Requirement{ID: "DISC-LOG-004", Section: secTCPPort, Keyword: Shall, Binds: Controller,
		Text:  "The TRSVCID field in a Discovery Log Entry for the NVMe/TCP transport shall contain a TCP port number in decimal representation as an ASCII string",
		Title: "every TCP entry's TRSVCID is a decimal port number"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range tcpEntries(l) {
			p, err := strconv.ParseUint(e.TRSVCID, 10, 16)
			s.expectThat(err == nil && p > 0, "TCP entry %d: TRSVCID %q is not a port number", i, e.TRSVCID)
		}
	})

	Check(Requirement{ID: "DISC-LOG-005", Section: secTCPTSAS, Keyword: Indicative, Binds: Controller,
		Text:  "Security Type (SECTYPE): 00 No Security, 01 TLS 1.2, 02 TLS 1.3; 255:03 Reserved",
		Title: "every TCP entry's TSAS SECTYPE is a defined value (none, TLS 1.2, TLS 1.3)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range tcpEntries(l) {
			s.expectThat(e.SECTYPE() <= nvme.TCPSecTypeTLS13, "TCP entry %d: SECTYPE %d", i, e.SECTYPE())
		}
	})

	Check(Requirement{ID: "DISC-LOG-006", Section: secDiscEntry21, Keyword: Indicative, Binds: Controller,
		Text:  "SUBTYPE: 01 Referral, 02 NVM Subsystem, 03 Current Discovery Subsystem: The entry describes this Discovery subsystem; 04 to 255 Reserved",
		Title: "every entry's SUBTYPE is 1, 2 or 3, NVM subsystems have their own NQN and Current Discovery Subsystem entries this controller's NQN"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		own := c.IdentifyData().SUBNQN
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range l.Entries {
			switch e.SUBTYPE {
			case nvme.SubtypeNVM:
				s.expectThat(e.SUBNQN != nvme.DiscoveryNQN && len(e.SUBNQN) > 4 && e.SUBNQN[:4] == "nqn.", "entry %d: NVM subsystem NQN %q", i, e.SUBNQN)
			case nvme.SubtypeCurrentDiscovery:
				s.expectThat(e.SUBNQN == own || e.SUBNQN == nvme.DiscoveryNQN, "entry %d: current discovery subsystem NQN %q, the controller's is %q", i, e.SUBNQN, own)
			case nvme.SubtypeReferral:
				s.expectThat(len(e.SUBNQN) > 4 && e.SUBNQN[:4] == "nqn.", "entry %d: referral NQN %q", i, e.SUBNQN)
			default:
				s.checkFail("entry %d: SUBTYPE %d", i, e.SUBTYPE)
			}
		}
	})

	// A PORTID names a port of one NVM subsystem; different subsystems
	// number their ports independently, so the check compares entries of
	// the same subsystem only.
	Check(Requirement{ID: "DISC-LOG-007", Section: secDiscEntry21 + "; " + secConnect, Keyword: Indicative, Binds: Controller,
		Text:  "Port ID (PORTID): Specifies a particular NVM subsystem port (Fig. 294); the NVMe Transport Type and NVMe Transport Address are unique to an NVM Subsystem Port (6.3)",
		Title: "entries for the same subsystem at the same transport address carry the same PORTID"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		port := map[string]uint16{}
		for i, e := range tcpEntries(l) {
			if e.SUBTYPE == nvme.SubtypeReferral {
				continue // another discovery service's numbering
			}
			k := e.SUBNQN + " at " + net.JoinHostPort(e.TRADDR, e.TRSVCID)
			if p, ok := port[k]; ok {
				s.expectThat(p == e.PORTID, "TCP entry %d, %s, has PORTID %d, an earlier one %d", i, k, e.PORTID, p)
			}
			port[k] = e.PORTID
		}
	})

	Check(Requirement{ID: "DISC-LOG-008", Section: secDiscEntry21 + "; " + secConnectSQE, Keyword: Indicative, Binds: Controller,
		Text:  "The maximum size of the Admin Submission Queue is specified in the Discovery Log Page Entry (ASQSZ); the minimum of 32 is not in the stored Base 2.1/2.2 text (it is NVMe-oF's)",
		Title: "every entry's ASQSZ is at least 32"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range l.Entries {
			s.expectThat(e.ASQSZ >= 32, "entry %d (%s): ASQSZ %d", i, e.SUBNQN, e.ASQSZ)
		}
	})

	Check(Requirement{ID: "DISC-LOG-009", Section: secGetLogOffset + " Fig. 199", Keyword: Indicative, Binds: Controller,
		Text:  "Log Page Offset Lower (LPOL): The log page offset specifies the location within a log page to start returning data from",
		Title: "with extended data for Get Log Page (LPA bit 2), reading the discovery log in pieces at Log Page Offsets gives the same bytes as one read"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if c.IdentifyData().LPA&(1<<2) == 0 {
			s.Lacks("extended data for Get Log Page (LPA bit 2)")
		}
		full, _ := s.readDiscoveryLog(ctx, c)
		var pieces []byte
		const chunk = 512
		for off := 0; off < len(full); off += chunk {
			b, err := getLogRaw(ctx, c, nvme.LogDiscovery, 0, uint64(off), chunk)
			s.mustOK(err, fmt.Sprintf("Get Log Page 70h at offset %d", off))
			pieces = append(pieces, b...)
		}
		obs := "same bytes"
		if d := firstDiff(pieces, full); d != "" {
			obs = "different bytes"
			AddReportEntry("detail", fmt.Sprintf("%s: pieced-together log: %s", s.Req.ID, d))
		}
		s.Conform(obs, "same bytes")
	})

	Check(Requirement{ID: "DISC-LOG-010", Section: secGetLogOffset + " Fig. 199", Keyword: Shall, Binds: Controller,
		Text:  "If the host specifies an offset (i.e., LPOL and LPOU) that is greater than the size of the log page requested ..., then the controller shall abort the command with a status of Invalid Field in Command",
		Title: "with extended data for Get Log Page (LPA bit 2), a Log Page Offset beyond the end of the discovery log fails with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if c.IdentifyData().LPA&(1<<2) == 0 {
			s.Lacks("extended data for Get Log Page (LPA bit 2), which gives the Log Page Offset fields")
		}
		full, _ := s.readDiscoveryLog(ctx, c)
		b, err := getLogRaw(ctx, c, nvme.LogDiscovery, 0, uint64(len(full)+nvme.DiscoveryLogEntrySize), nvme.DiscoveryLogEntrySize)
		obs := Outcome(err)
		if err == nil {
			obs = "success with data"
			if allBytes(b, 0) {
				obs = "success, zero-filled"
			}
		}
		s.Conform(obs, "status 0x0/0x2")
	})

	Check(Requirement{ID: "DISC-LOG-011", Section: secDiscLog21, Keyword: Indicative, Binds: Controller,
		Text:  "GENCTR: For each change in the Discovery Log Page, this counter is incremented by one (header wording as libnvme quotes it)",
		Title: "GENCTR stays the same across reads while nothing changes"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, a := s.readDiscoveryLog(ctx, c)
		_, b := s.readDiscoveryLog(ctx, c)
		s.Conform(fmt.Sprintf("GENCTR %d", b.GENCTR), fmt.Sprintf("GENCTR %d", a.GENCTR))
	})

	Check(Requirement{ID: "DISC-LOG-012", Section: secDiscLog21, Keyword: Indicative, Binds: Controller,
		Text:  "GENCTR: For each change in the Discovery Log Page, this counter is incremented by one (header wording as libnvme quotes it)",
		Title: "adding a subsystem changes GENCTR and lists the new subsystem (needs a target control)"}, func(ctx context.Context, s *Spec) {
		s.RequireControl("add a subsystem")
		c := s.ConnectDiscovery(ctx)
		_, before := s.readDiscoveryLog(ctx, c)
		nqn := scratchNQN("disc")
		s.act(ctx, "add a subsystem", Action{Verb: "add-subsystem", Args: map[string]string{"nqn": nqn}},
			&Action{Verb: "remove-subsystem", Args: map[string]string{"nqn": nqn}})
		_, after := s.readDiscoveryLog(ctx, c)
		s.expectThat(after.GENCTR != before.GENCTR, "GENCTR %d unchanged after adding %s", after.GENCTR, nqn)
		s.expectThat(listsNQN(after, nqn), "added subsystem %s not listed", nqn)
	})

	Check(Requirement{ID: "DISC-LOG-013", Section: secDiscLog21, Keyword: Indicative, Binds: Controller,
		Text:  "GENCTR: For each change in the Discovery Log Page, this counter is incremented by one (header wording as libnvme quotes it)",
		Title: "removing a subsystem changes GENCTR and drops it from the log (needs a target control)"}, func(ctx context.Context, s *Spec) {
		ctl := s.RequireControl("add and remove a subsystem")
		c := s.ConnectDiscovery(ctx)
		nqn := scratchNQN("disc")
		rm := Action{Verb: "remove-subsystem", Args: map[string]string{"nqn": nqn}}
		s.act(ctx, "add a subsystem", Action{Verb: "add-subsystem", Args: map[string]string{"nqn": nqn}}, &rm)
		_, before := s.readDiscoveryLog(ctx, c)
		s.mustOK(ctl.Do(ctx, rm), "control remove-subsystem")
		_, after := s.readDiscoveryLog(ctx, c)
		s.expectThat(after.GENCTR != before.GENCTR, "GENCTR %d unchanged after removing %s", after.GENCTR, nqn)
		s.expectThat(!listsNQN(after, nqn), "removed subsystem %s still listed", nqn)
	})

	// Discovery log change notices go to hosts on explicit persistent
	// connections: those are asked for with a non-zero KATO, and a
	// controller that supports them "shall enable Asynchronous Discovery
	// Log Event Notifications" on such a Connect (3.1.3.3.1).
	Check(Requirement{ID: "DISC-AEN-001", Section: secBaseAERNotice + "; " + secDiscCtrl, Keyword: Shall, Binds: Controller,
		Text:  "As a result of a Discovery controller updating Discovery log page(s), that Discovery controller shall send a Discovery Log Page Change Asynchronous Event notification ... to each entity that has requested asynchronous event notifications of this type",
		Title: "on an explicit persistent connection to a controller with discovery log change notices (OAES bit 31), adding a subsystem raises a Discovery Log Page Change event"}, func(ctx context.Context, s *Spec) {
		probe := s.ConnectDiscovery(ctx)
		if probe.IdentifyData().OAES&nvme.AECDiscovery == 0 {
			s.Lacks("Discovery Log Page Change Notices (OAES bit 31)")
		}
		if p := s.discoveryPersistence(ctx, probe); !p.Persistent() {
			s.Lacks("explicit persistent connections (no EPCSD on its own log entry, KAS 0)")
		}
		s.RequireControl("add a subsystem")
		o := s.Options()
		o.KATO = 30 * time.Second // a non-zero KATO requests the persistent connection
		c, err := initiator.Connect(ctx, s.discoveryAddress(), nvme.DiscoveryNQN, o)
		s.mustOK(err, "persistent Connect (KATO 30 s) to the discovery controller")
		s.Defer(func() { _ = c.Close() })
		ch := c.AsyncEvents() // enables the notice with Set Features AEC bit 31
		dw0, err := c.GetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, nvme.SelCurrent, 0, nil)
		s.mustOK(err, "Get Features Asynchronous Event Configuration")
		s.expectThat(dw0&nvme.AECDiscovery != 0, "AEC %#x: bit 31 did not stay set", dw0)
		s.readDiscoveryLog(ctx, c)
		nqn := scratchNQN("aen")
		s.act(ctx, "add a subsystem", Action{Verb: "add-subsystem", Args: map[string]string{"nqn": nqn}},
			&Action{Verb: "remove-subsystem", Args: map[string]string{"nqn": nqn}})
		ev, err := waitEvent(ctx, ch, 5*time.Second)
		obs := fmt.Sprintf("AEN %#08x", ev)
		if err != nil {
			obs = err.Error()
		}
		s.Conform(obs, fmt.Sprintf("AEN %#08x", nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeDiscoveryChange, nvme.LogDiscovery)))
	})

	// Referrals are optional ("Multiple Referral entries may be
	// reported"); one that is reported must lead somewhere.
	Check(Requirement{ID: "DISC-REF-001", Section: secDiscEntry21, Keyword: May, Binds: Controller,
		Text:  "SUBTYPE 01 Referral: The entry describes a referral to another Discovery Service composed of Discovery controllers that provide additional discovery records",
		Title: "every TCP referral entry names a discovery controller that accepts a Connect"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		var refs []nvme.DiscoveryLogEntry
		for _, e := range tcpEntries(l) {
			if e.SUBTYPE == nvme.SubtypeReferral {
				refs = append(refs, e)
			}
		}
		if len(refs) == 0 {
			s.Lacks("referrals")
		}
		for _, e := range refs {
			addr := net.JoinHostPort(e.TRADDR, e.TRSVCID)
			rc, err := initiator.Connect(ctx, addr, e.SUBNQN, s.Options())
			if err == nil {
				_ = rc.Close()
			}
			s.Conform(Outcome(err), "success")
		}
	})
})
