package suites

// Discovery-controller rules of issue 19 (spec coverage): what a non-zero
// KATO in a discovery Connect must do, what OAES must say, what a log
// entry's CNTLID says about the controller model, and that the Discovery
// log page belongs to Discovery controllers alone. Held against NVMe Base
// 2.2 3.1.3.3 and 3.1.3.3.1 and NVMe Base 2.1 5.1.12.3.1.

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// secDiscAEConf is the section on a Discovery controller's asynchronous
// event configuration.
const secDiscAEConf = "NVMe Base 2.2 3.1.3.3.1"

var _ = Describe("discovery", Label("discovery"), func() {
	// A non-zero KATO asks for an explicit persistent connection "and
	// Asynchronous Event Notifications ... on that persistent connection".
	// The text allows two answers: a controller without asynchronous
	// events refuses with Connect Invalid Parameters; one that accepts
	// "shall enable Asynchronous Discovery Log Event Notifications", which
	// the Asynchronous Event Configuration feature (bit 31) then shows
	// without the host having set it. A controller that claims the events
	// (EPCSD on its own log entry, or OAES bit 31) may not refuse.
	Check(Requirement{ID: "DISC-RULE-001", Section: secDiscCtrl + "; " + secDiscAEConf, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-3.1.3.3-09", "B-3.1.3.3.1-02", "B-3.1.3.3-17"},
		Text:       "If the Connect command specifies a non-zero Keep Alive Timer value and the Discovery controller does not support Asynchronous Events, then the Discovery controller shall return a status value of Connect Invalid Parameters (3.1.3.3); A Discovery controller shall enable Asynchronous Discovery Log Event Notifications, if a non-zero Keep Alive Timeout (KATO) value is received in the Connect command (3.1.3.3.1)",
		Title:      "a discovery Connect with a non-zero KATO either enables Discovery Log Change notices (AEC bit 31 set without Set Features) or, from a controller without asynchronous events, fails with Connect Invalid Parameters"}, func(ctx context.Context, s *Spec) {
		probe := s.ConnectDiscovery(ctx)
		p := s.discoveryPersistence(ctx, probe)
		claims := p.EPCSD || probe.IdentifyData().OAES&nvme.AECDiscovery != 0
		_ = probe.Close()
		o := s.Options()
		o.KATO = 30 * time.Second
		c, err := initiator.Connect(ctx, s.discoveryAddress(), nvme.DiscoveryNQN, o)
		if err != nil {
			obs := "Connect with KATO 30 s: " + Outcome(err)
			if claims {
				// EPCSD or OAES bit 31: it has the events it refuses.
				s.Conform(obs+" from a controller that claims discovery log change notices ("+p.String()+")", "Connect with KATO 30 s: success")
				return
			}
			s.Conform(obs, "Connect with KATO 30 s: "+stCIP)
			return
		}
		s.Defer(func() { _ = c.Close() })
		dw0, err := c.GetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, nvme.SelCurrent, 0, nil)
		// A Discovery controller with asynchronous events "shall
		// implement the Get Features and Set Features commands".
		s.Conform("Get Features Asynchronous Event Configuration: "+Outcome(err), "Get Features Asynchronous Event Configuration: success")
		obs := "AEC bit 31 set"
		if dw0&nvme.AECDiscovery == 0 {
			obs = fmt.Sprintf("AEC %#x: bit 31 clear", dw0)
		}
		s.Conform(obs, "AEC bit 31 set")
	})

	// "Discovery controllers shall indicate support for Discovery Log
	// Change Notifications" stands in the paragraph on explicit persistent
	// connections, the only ones notices travel on: a controller without
	// them sends none (no AER, 3.1.3.3 Fig. 28 note 6), and reporting the
	// bit would claim what it cannot do, so the check holds the
	// controllers that claim persistent connections to the bit.
	Check(Requirement{ID: "DISC-RULE-002", Section: secDiscCtrl + "; " + secIDCtrl21, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-3.1.3.3-10"},
		Text:       "Discovery controllers shall indicate support for Discovery Log Change Notifications in the Identify Controller data structure (OAES bit 31)",
		Title:      "a discovery controller that supports explicit persistent connections reports Discovery Log Page Change Notices in Identify OAES (bit 31)"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if p := s.discoveryPersistence(ctx, c); !p.Persistent() {
			s.Lacks("explicit persistent connections (no EPCSD on its own log entry, KAS 0), on which alone notices are sent")
		}
		oaes := c.IdentifyData().OAES
		obs := "OAES bit 31 set"
		if oaes&nvme.AECDiscovery == 0 {
			obs = fmt.Sprintf("OAES %#x: bit 31 clear", oaes)
		}
		s.Conform(obs, "OAES bit 31 set")
	})

	// The model the subsystem reports (Identify FCATT bit 0, learned by
	// connecting as a host does) and the CNTLID its log entries carry
	// must agree: FFFFh for the dynamic model, FFFEh or a specific
	// controller ID (below FFF0h) for the static one.
	Check(Requirement{ID: "DISC-RULE-003", Section: secDiscCtrl + " Fig. 27", Keyword: Indicative, Binds: Controller,
		Statements: []string{"B-3.1.3.3-15"},
		Text:       "The controller ID value of FFFFh is used for NVM subsystems that support the dynamic controller model ... The Controller ID value of FFFEh is used for NVM subsystems that support the static controller model ... An NVM subsystem supports the static controller model if Discovery Log Page Entries use a Controller ID value that is less than FFFFh",
		Title:      "the discovery log entries of the subsystem under test carry CNTLID FFFFh if it uses the dynamic controller model, FFFEh or a controller ID below FFF0h if the static one (Identify FCATT bit 0)"}, func(ctx context.Context, s *Spec) {
		m := s.subsystemModel(ctx)
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		n := 0
		for i, e := range l.Entries {
			if e.SUBNQN != s.Target.Config.SubNQN || e.SUBTYPE != nvme.SubtypeNVM {
				continue
			}
			n++
			ok := e.CNTLID == cntlidAnyDynamic
			want := "CNTLID FFFFh"
			if m.Static {
				ok = e.CNTLID == cntlidAnyStatic || e.CNTLID < 0xFFF0
				want = "CNTLID FFFEh or below FFF0h"
			}
			obs := want
			if !ok {
				obs = fmt.Sprintf("CNTLID %04Xh", e.CNTLID)
			}
			s.Conform(fmt.Sprintf("entry %d, %s: %s", i, m, obs), fmt.Sprintf("entry %d, %s: %s", i, m, want))
		}
		if n == 0 {
			s.Lacks("a discovery log entry for " + s.Target.Config.SubNQN + " (DISC-LOG-002 judges that)")
		}
	})

	// Get Log Page of an unsupported page: the command is refused, as
	// DISC-CMD-002 accepts for a discovery controller (Invalid Log Page,
	// or Invalid Field in Command at the LID).
	Check(Requirement{ID: "DISC-RULE-004", Section: secDiscLog21, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-L70-01"},
		Text:       "The Discovery log page shall only be supported by Discovery controllers. The Discovery log page shall not be supported by controllers that expose namespaces for NVMe over PCIe or NVMe over Fabrics",
		Title:      "an I/O controller refuses Get Log Page 70h (Discovery) with Invalid Log Page or Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		_, err := getLogRaw(ctx, c, nvme.LogDiscovery, 0, 0, nvme.DiscoveryLogEntrySize)
		s.conformOneOf(Outcome(err), StatusOutcome(nvme.StatusInvalidLogPage), stInvalidField)
	})

	// A Disconnect to a discovery controller (B-3.1.3.3-13) is DISC-DCON-001's.

	// Keep Alive is for explicit persistent connections only: without
	// them "Discovery controllers ... shall not support Keep Alive
	// commands" (3.1.3.3; Fig. 28 note 6: prohibited). DISC-CMD-005
	// holds the ones with them to Keep Alive.
	Check(Requirement{ID: "DISC-RULE-006", Section: secDiscCtrl + "; " + secAdminCmds, Keyword: Shall, Binds: Controller,
		Statements: []string{"B-3.1.3.3-11"},
		Text:       "Discovery controllers that do not support explicit persistent connections shall not support Keep Alive commands (3.1.3.3); Keep Alive: For Discovery controllers that do not support explicit persistent connections, this command is prohibited (Fig. 28 note 6)",
		Title:      "a discovery controller without explicit persistent connections (no EPCSD, KAS 0) fails Keep Alive with an error status"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		if p := s.discoveryPersistence(ctx, c); p.Persistent() {
			s.Lacks("a discovery controller without explicit persistent connections (it claims them: " + p.String() + "; DISC-CMD-005 judges Keep Alive there)")
		}
		_, err := c.Admin().Exec(ctx, nvme.KeepAliveCmd(), nil, initiator.NoData)
		obs := Outcome(err)
		AddReportEntry("observed", fmt.Sprintf("%s: Keep Alive: %s", s.Req.ID, obs))
		if strings.HasPrefix(obs, "status ") {
			obs = "an error status"
		}
		s.Conform("Keep Alive: "+obs, "Keep Alive: an error status")
	})

	// Port 8009 is the discovery port; an I/O controller behind it would
	// collide with the Discovery controller hosts look for there.
	Check(Requirement{ID: "DISC-RULE-007", Section: secTCPPort, Keyword: Should, Binds: Controller,
		Statements: []string{"T-3.1.2-02"},
		Text:       "TCP port 8009 is the default TCP port for NVMe/TCP Discovery controllers. There is no default TCP port for NVMe/TCP I/O controllers ... NVMe/TCP I/O controllers should not use TCP port 8009",
		Title:      "no TCP discovery log entry of an NVM subsystem (SUBTYPE 2) names port 8009"}, func(ctx context.Context, s *Spec) {
		c := s.ConnectDiscovery(ctx)
		_, l := s.readDiscoveryLog(ctx, c)
		for i, e := range tcpEntries(l) {
			if e.SUBTYPE != nvme.SubtypeNVM {
				continue
			}
			obs := "TRSVCID not 8009"
			if e.TRSVCID == "8009" {
				obs = "TRSVCID 8009"
			}
			s.Conform(fmt.Sprintf("entry %d (%s): %s", i, e.SUBNQN, obs), fmt.Sprintf("entry %d (%s): TRSVCID not 8009", i, e.SUBNQN))
		}
	})
})
