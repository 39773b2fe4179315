package suites

// The discovery area: the discovery controller (Connect, Identify, what it
// refuses), the discovery log page (header, entries, paging, GENCTR) and
// discovery events and referrals.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// tcpEntries returns the log's NVMe/TCP entries.
func tcpEntries(l *nvme.DiscoveryLog) []nvme.DiscoveryLogEntry {
	var out []nvme.DiscoveryLogEntry
	for _, e := range l.Entries {
		if e.TRTYPE == nvme.TRTypeTCP {
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

	Check(Requirement{ID: "DISC-CONN-001", Section: refFabDiscovery, Level: Mandatory,
		Title: "a discovery controller accepts a Connect to the discovery NQN on the discovery address and becomes ready"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		s.expectThat(c.IdentifyData() != nil, "no Identify data")
	})

	Check(Requirement{ID: "DISC-CONN-002", Section: refFabConnect, Level: Mandatory,
		Title: "a discovery controller accepts KATO 0 in the admin Connect"}, func(ctx context.Context, s *Spec) {
		r := s.DialDiscovery(ctx)
		_, err := r.Initialize(tcp.ICReq{})
		s.mustOK(err, "connection initialization")
		_, err = s.connectRaw(r, nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, initiator.AdminQueueSize-1, 0, 0)
		s.Conform(Outcome(err), "success")
	})

	Check(Requirement{ID: "DISC-CONN-003", Section: refFabDiscovery, Level: Mandatory,
		Title: "a discovery controller refuses an I/O queue Connect with Connect Invalid Parameters"}, func(ctx context.Context, s *Spec) {
		a := s.DialDiscovery(ctx)
		_, err := a.Initialize(tcp.ICReq{})
		s.mustOK(err, "connection initialization")
		cqe, err := s.connectRaw(a, nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, initiator.AdminQueueSize-1, 0, 0)
		s.mustOK(err, "admin Connect")
		r := s.DialDiscovery(ctx)
		_, err = r.Initialize(tcp.ICReq{})
		s.mustOK(err, "connection initialization")
		_, err = s.connectRaw(r, nvme.DiscoveryNQN, 1, uint16(cqe.DW0), 31, 0, 0)
		s.Conform(Outcome(err), "status 0x1/0x82")
	})

	Check(Requirement{ID: "DISC-ID-001", Section: refIDCtrl, Level: Mandatory,
		Title: "a discovery controller's Identify SUBNQN is the discovery NQN it was connected through"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		s.Conform(c.IdentifyData().SUBNQN, nvme.DiscoveryNQN)
	})

	Check(Requirement{ID: "DISC-ID-002", Section: refIDCtrl, Level: Mandatory,
		Title: "a discovery controller reports CNTRLTYPE 2 when VER is 1.4 or later"}, func(ctx context.Context, s *Spec) {
		id := s.ConnectDiscovery(ctx).IdentifyData()
		if id.VER < nvme.MakeVersion(1, 4, 0) {
			s.Lacks("VER 1.4 or later")
		}
		s.Conform(fmt.Sprintf("CNTRLTYPE %d", id.CNTRLTYPE), "CNTRLTYPE 2")
	})

	Check(Requirement{ID: "DISC-ID-003", Section: refIDCtrl, Level: Mandatory,
		Title: "a discovery controller reports keep alive support (KAS not zero)"}, func(ctx context.Context, s *Spec) {
		id := s.ConnectDiscovery(ctx).IdentifyData()
		s.expectThat(id.KAS != 0, "KAS is 0")
	})

	Check(Requirement{ID: "DISC-ID-004", Section: refIDCtrl, Level: Recommended,
		Title: "a discovery controller reports extended data for Get Log Page (LPA bit 2), so the log can be read in pieces"}, func(ctx context.Context, s *Spec) {
		id := s.ConnectDiscovery(ctx).IdentifyData()
		s.Conform(fmt.Sprintf("LPA bit 2 = %d", id.LPA>>2&1), "LPA bit 2 = 1")
	})

	Check(Requirement{ID: "DISC-ID-005", Section: refBaseVS, Level: Mandatory,
		Title: "a discovery controller's Identify VER equals its Version property"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		s.Conform(nvme.VersionString(c.IdentifyData().VER), nvme.VersionString(c.Version()))
	})

	Check(Requirement{ID: "DISC-CMD-001", Section: refBaseIdentify, Level: Mandatory,
		Title: "a discovery controller refuses Identify Namespace (CNS 00h) with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := identifyRaw(ctx, c, nvme.CNSNamespace, 1)
		s.Conform(Outcome(err), "status 0x0/0x2")
	})

	Check(Requirement{ID: "DISC-CMD-002", Section: refBaseGetLog, Level: Mandatory,
		Title: "a discovery controller refuses a log page other than Discovery (SMART) with Invalid Field in Command or Invalid Log Page"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := getLogRaw(ctx, c, nvme.LogSMART, 0xFFFFFFFF, 0, nvme.SMARTLogSize)
		s.conformOneOf(Outcome(err), "status 0x1/0x9", "status 0x0/0x2")
	})

	Check(Requirement{ID: "DISC-CMD-003", Section: refFabDiscovery, Level: Mandatory,
		Title: "a discovery controller refuses NVM admin commands (Format NVM) with Invalid Command Opcode"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := c.Admin().Exec(ctx, nvme.SQE{Opcode: 0x80, NSID: 1}, nil, initiator.NoData)
		s.Conform(Outcome(err), "status 0x0/0x1")
	})

	Check(Requirement{ID: "DISC-CMD-004", Section: refFabDiscovery, Level: Mandatory,
		Title: "a discovery controller refuses Set Features Number of Queues with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := c.SetFeatures(ctx, nvme.FeatNumQueues, 0, nvme.NumQueuesValue(1, 1), false, nil)
		s.Conform(Outcome(err), "status 0x0/0x2")
	})

	Check(Requirement{ID: "DISC-CMD-005", Section: refBaseKeepAliveCm, Level: Mandatory,
		Title: "a discovery controller completes Keep Alive successfully"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, err := c.Admin().Exec(ctx, nvme.KeepAliveCmd(), nil, initiator.NoData)
		s.Conform(Outcome(err), "success")
	})

	// The discovery log page.

	Check(Requirement{ID: "DISC-LOG-001", Section: refLogDiscovery, Level: Mandatory,
		Title: "the discovery log header has RECFMT 0 and NUMREC entries follow it, 1024 bytes each"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		full, l := s.readDiscoveryLog(ctx, c)
		s.Conform(fmt.Sprintf("RECFMT %d", l.RECFMT), "RECFMT 0")
		s.expectThat(len(l.Entries) == int(l.NUMREC), "NUMREC %d, %d entries in %d bytes", l.NUMREC, len(l.Entries), len(full))
		for i, e := range l.Entries {
			s.expectThat(e.TRTYPE != 0 && e.SUBNQN != "", "entry %d of NUMREC %d is empty (TRTYPE %d SUBNQN %q)", i, l.NUMREC, e.TRTYPE, e.SUBNQN)
		}
	})

	Check(Requirement{ID: "DISC-LOG-002", Section: refLogDiscovery, Level: Mandatory,
		Title: "the discovery log lists the subsystem under test as an NVM subsystem (SUBTYPE 2) over TCP (TRTYPE 3)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		found := slices.ContainsFunc(l.Entries, func(e nvme.DiscoveryLogEntry) bool {
			return e.SUBNQN == s.Target.Config.SubNQN && e.SUBTYPE == nvme.SubtypeNVM && e.TRTYPE == nvme.TRTypeTCP
		})
		s.expectThat(found, "no TCP NVM subsystem entry for %s among %d entries", s.Target.Config.SubNQN, len(l.Entries))
	})

	Check(Requirement{ID: "DISC-LOG-003", Section: refLogDiscovery, Level: Mandatory,
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

	Check(Requirement{ID: "DISC-LOG-004", Section: refLogDiscovery, Level: Mandatory,
		Title: "every TCP entry's TRSVCID is a decimal port number"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range tcpEntries(l) {
			p, err := strconv.ParseUint(e.TRSVCID, 10, 16)
			s.expectThat(err == nil && p > 0, "TCP entry %d: TRSVCID %q is not a port number", i, e.TRSVCID)
		}
	})

	Check(Requirement{ID: "DISC-LOG-005", Section: refLogDiscovery, Level: Mandatory,
		Title: "every TCP entry's TSAS SECTYPE is a defined value (none, TLS 1.2, TLS 1.3)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range tcpEntries(l) {
			s.expectThat(e.SECTYPE() <= nvme.TCPSecTypeTLS13, "TCP entry %d: SECTYPE %d", i, e.SECTYPE())
		}
	})

	Check(Requirement{ID: "DISC-LOG-006", Section: refLogDiscovery, Level: Mandatory,
		Title: "every entry's SUBTYPE is 1, 2 or 3, NVM subsystems have their own NQN and discovery entries a discovery NQN"}, func(ctx context.Context, s *Spec) {
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

	Check(Requirement{ID: "DISC-LOG-007", Section: refLogDiscovery, Level: Mandatory,
		Title: "entries for the same transport address carry the same PORTID"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		port := map[string]uint16{}
		for i, e := range tcpEntries(l) {
			if e.SUBTYPE == nvme.SubtypeReferral {
				continue // another discovery service's numbering
			}
			k := net.JoinHostPort(e.TRADDR, e.TRSVCID)
			if p, ok := port[k]; ok {
				s.expectThat(p == e.PORTID, "TCP entry %d at %s has PORTID %d, an earlier one %d", i, k, e.PORTID, p)
			}
			port[k] = e.PORTID
		}
	})

	Check(Requirement{ID: "DISC-LOG-008", Section: refLogDiscovery, Level: Mandatory,
		Title: "every entry's ASQSZ is at least 32"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range l.Entries {
			s.expectThat(e.ASQSZ >= 32, "entry %d (%s): ASQSZ %d", i, e.SUBNQN, e.ASQSZ)
		}
	})

	Check(Requirement{ID: "DISC-LOG-009", Section: refLogDiscovery, Level: Optional,
		Title: "reading the discovery log in pieces at Log Page Offsets (LPA bit 2) gives the same bytes as one read"}, func(ctx context.Context, s *Spec) {
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

	Check(Requirement{ID: "DISC-LOG-010", Section: refBaseGetLog, Level: Mandatory,
		Title: "a Log Page Offset beyond the end of the discovery log fails with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
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

	Check(Requirement{ID: "DISC-LOG-011", Section: refLogDiscovery, Level: Mandatory,
		Title: "GENCTR stays the same across reads while nothing changes"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, a := s.readDiscoveryLog(ctx, c)
		_, b := s.readDiscoveryLog(ctx, c)
		s.Conform(fmt.Sprintf("GENCTR %d", b.GENCTR), fmt.Sprintf("GENCTR %d", a.GENCTR))
	})

	Check(Requirement{ID: "DISC-LOG-012", Section: refLogDiscovery, Level: Optional,
		Title: "adding a subsystem changes GENCTR and lists the new subsystem"}, func(ctx context.Context, s *Spec) {
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

	Check(Requirement{ID: "DISC-LOG-013", Section: refLogDiscovery, Level: Optional,
		Title: "removing a subsystem changes GENCTR and drops it from the log"}, func(ctx context.Context, s *Spec) {
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

	Check(Requirement{ID: "DISC-AEN-001", Section: refBaseAER, Level: Optional,
		Title: "with discovery log change notices enabled (OAES bit 31), adding a subsystem raises a Discovery Log Page Change event"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if c.IdentifyData().OAES&nvme.AECDiscovery == 0 {
			s.Lacks("Discovery Log Page Change Notices (OAES bit 31)")
		}
		s.RequireControl("add a subsystem")
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

	Check(Requirement{ID: "DISC-REF-001", Section: refLogDiscovery, Level: Optional,
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
