package suites

// Helpers for the fabrics and discovery areas: the specification sections
// they cite, and the capability probes that read a target's own answers
// (controller model, Disconnect support, discovery persistence) before a
// check holds the target to a capability-dependent rule.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// Sections of the texts the fabrics and discovery checks were held
// against: NVMe Base 2.2 (chapters 3 and 6 read in full for the parts
// cited), NVMe Base 2.1 (page files, for Identify Controller and the
// Discovery log page, whose 2.2 chapters are not in the stored material)
// and NVMe/TCP 1.0.
const (
	secModels        = "NVMe Base 2.2 3.1.2"
	secCtrlTypes     = "NVMe Base 2.2 3.1.3"
	secDiscCtrl      = "NVMe Base 2.2 3.1.3.3"
	secAdminCmds     = "NVMe Base 2.2 3.1.3.4 Fig. 28"
	secFabricsCmds   = "NVMe Base 2.2 3.1.3.4 Fig. 29"
	secLogSupport    = "NVMe Base 2.2 3.1.3.5 Fig. 31"
	secFeatSupport   = "NVMe Base 2.2 3.1.3.6 Fig. 32"
	secProps         = "NVMe Base 2.2 3.1.4"
	secPropMap       = "NVMe Base 2.2 3.1.4 Fig. 33"
	secCAP           = "NVMe Base 2.2 3.1.4.1"
	secCC            = "NVMe Base 2.2 3.1.4.5"
	secCSTS          = "NVMe Base 2.2 3.1.4.6"
	secQueueCreate   = "NVMe Base 2.2 3.3.2.2"
	secQueueState    = "NVMe Base 2.2 3.3.2.3"
	secIOQDeletion   = "NVMe Base 2.2 3.3.2.4"
	secFabricsTypes  = "NVMe Base 2.2 6 Fig. 541"
	secConnect       = "NVMe Base 2.2 6.3"
	secConnectSQE    = "NVMe Base 2.2 6.3 Fig. 546"
	secConnectData   = "NVMe Base 2.2 6.3 Fig. 547"
	secConnectResp   = "NVMe Base 2.2 6.3 Fig. 548"
	secConnectDW0    = "NVMe Base 2.2 6.3 Fig. 549"
	secDisconnect    = "NVMe Base 2.2 6.4"
	secPropGet       = "NVMe Base 2.2 6.5"
	secPropSet       = "NVMe Base 2.2 6.6"
	secIDCtrl21      = "NVMe Base 2.1 5.1.13.2.1 Fig. 312"
	secDiscLog21     = "NVMe Base 2.1 5.1.12.3.1"
	secDiscEntry21   = "NVMe Base 2.1 5.1.12.3.1 Fig. 294"
	secGetLogOffset  = "NVMe Base 2.1 5.1.12"
	secTCPSetup      = "NVMe/TCP 1.0 3.1"
	secTCPPort       = "NVMe/TCP 1.0 3.1.2"
	secTCPTSAS       = "NVMe/TCP 1.0 3.6.1.1 Fig. 17"
	secBaseAERNotice = "NVMe Base 2.2 3.1.3.3.2"
)

// Identify Controller and Connect bits the probes read.
const (
	fcattStatic         = 1 << 0 // FCATT bit 0: the subsystem uses the static controller model
	cattrIndivIOQDelete = 1 << 3 // Connect CATTR.INDIVIOQDELS: the host supports deleting one I/O queue
	cntlidAnyStatic     = 0xFFFE // Fig. 27: any available static controller
	cntlidAnyDynamic    = 0xFFFF // Fig. 27: any available dynamic controller
)

// ctrlModel is the controller model of the subsystem under test as the
// subsystem itself reports it.
type ctrlModel struct {
	Static bool
	// Wildcard is the CNTLID that asks this model for any controller:
	// FFFFh (dynamic) or FFFEh (static).
	Wildcard uint16
	// How says which answers showed the model, for the report.
	How string
}

func (m ctrlModel) String() string {
	if m.Static {
		return "static controller model (" + m.How + ")"
	}
	return "dynamic controller model (" + m.How + ")"
}

// subsystemModel learns the controller model the way a host can (Base
// 2.2 3.1.3.3: "The Identify Controller data structure also indicates
// whether an NVM subsystem is dynamic or static"): it asks for any
// dynamic controller, falls back to any static one when the subsystem
// refuses FFFFh, enables the controller it got and reads Identify
// Controller FCATT bit 0. The admin connection stays open until the check
// ends.
func (s *Spec) subsystemModel(ctx context.Context) ctrlModel {
	GinkgoHelper()
	r := s.Raw(ctx, plainIC)
	how := "Connect with CNTLID FFFFh accepted"
	_, err := s.connect(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: cntlidAnyDynamic})
	if err != nil {
		first := Outcome(err)
		r = s.Raw(ctx, plainIC)
		_, err = s.connect(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: cntlidAnyStatic})
		if err != nil {
			Fail(fmt.Sprintf("%s: the subsystem grants no controller: admin Connect with CNTLID FFFFh: %s, with FFFEh: %s", s.Req.ID, first, Outcome(err)))
		}
		how = "Connect with CNTLID FFFFh refused (" + first + "), FFFEh accepted"
	}
	s.enableRaw(ctx, r)
	id := s.identifyCtrl(r)
	m := ctrlModel{Static: id.FCATT&fcattStatic != 0, Wildcard: cntlidAnyDynamic}
	if m.Static {
		m.Wildcard = cntlidAnyStatic
	}
	m.How = fmt.Sprintf("%s; Identify FCATT %#x", how, id.FCATT)
	AddReportEntry("capability", fmt.Sprintf("%s: %s", s.Req.ID, m))
	return m
}

// requireDisconnect reads Identify Controller OFCS and skips the check unless the controller claims the
// optional Disconnect command (Fig. 29: Disconnect is O for I/O
// controllers; 3.3.2.4: OFCS.DCS reports it and individual I/O queue
// deletion).
func (s *Spec) requireDisconnect(id *nvme.IdentifyController) {
	GinkgoHelper()
	if id.OFCS&nvme.OFCSDisconnect == 0 {
		s.Lacks("the Disconnect command and individual I/O queue deletion (Identify OFCS.DCS is 0)")
	}
}

// enabledAdminIndivDelete is an enabled raw admin queue whose Connect
// sets CATTR.INDIVIOQDELS, so that (3.3.2.4) deleting one I/O queue
// leaves the association alive when the controller supports it too. It
// returns the admin connection, its CNTLID and Identify Controller.
func (s *Spec) enabledAdminIndivDelete(ctx context.Context) (*initiator.Raw, uint16, *nvme.IdentifyController) {
	GinkgoHelper()
	r := s.Raw(ctx, plainIC)
	cqe, err := s.connectAnyModel(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CATTR: cattrIndivIOQDelete})
	s.Must(err, "admin Connect with CATTR.INDIVIOQDELS")
	s.enableRaw(ctx, r)
	return r, uint16(cqe.DW0), s.identifyCtrl(r)
}

// rejectedNotInvalidField judges a Connect that must fail when the text
// names no one status for it: any error status passes, named in the
// report, except Invalid Field in Command, which 6.3 forbids for a failed
// Connect ("the controller shall not: return a status code of Invalid
// Field in Command").
func (s *Spec) rejectedNotInvalidField(obs string) {
	GinkgoHelper()
	const want = "rejected with a status other than Invalid Field in Command"
	switch {
	case obs == "success", obs == stInvalidField, obs == "transport error":
		s.Conform(obs, want)
	default:
		AddReportEntry("observed", fmt.Sprintf("%s: %s", s.Req.ID, obs))
	}
}

// discPersistence is what a discovery controller says about explicit
// persistent connections (Base 2.2 3.1.3.3).
type discPersistence struct {
	// EPCSD: the controller's own log entry (SUBTYPE 3, Current
	// Discovery Subsystem) sets EFLAGS.EPCSD, "Explicit Persistent
	// Connection Support for Discovery".
	EPCSD bool
	// KAS: Identify KAS is not 0, i.e. it claims the Keep Alive Timer
	// feature, which Fig. 32 note 10 allows only to discovery controllers
	// that support explicit persistent connections (prohibited otherwise).
	KAS bool
}

// Persistent is true when either answer claims explicit persistent
// connections.
func (p discPersistence) Persistent() bool { return p.EPCSD || p.KAS }

func (p discPersistence) String() string {
	return fmt.Sprintf("EPCSD on its own log entry: %v, KAS non-zero: %v", p.EPCSD, p.KAS)
}

// discoveryPersistence reads whether the discovery controller c claims
// explicit persistent connections: its Identify KAS and the EPCSD flag of
// the log entries that describe its own Discovery subsystem.
func (s *Spec) discoveryPersistence(ctx context.Context, c *initiator.Controller) discPersistence {
	GinkgoHelper()
	id := c.IdentifyData()
	p := discPersistence{KAS: id.KAS != 0}
	_, l := s.readDiscoveryLog(ctx, c)
	own := []string{id.SUBNQN, nvme.DiscoveryNQN}
	for _, e := range l.Entries {
		if e.SUBTYPE == nvme.SubtypeCurrentDiscovery && slices.Contains(own, e.SUBNQN) && e.EFLAGS&nvme.EFlagsEPCSD != 0 {
			p.EPCSD = true
		}
	}
	AddReportEntry("capability", fmt.Sprintf("%s: discovery controller persistence: %s", s.Req.ID, p))
	return p
}

// connectDiscoveryNQN sends an admin Connect naming nqn (the well-known
// discovery NQN or a unique one) to the discovery address, with KATO 0 so
// that it asks for no persistent connection, and returns its outcome.
func (s *Spec) connectDiscoveryNQN(ctx context.Context, nqn string) error {
	GinkgoHelper()
	r := s.DialDiscovery(ctx)
	_, err := r.Initialize(plainIC)
	s.skipIfICRespRefused(err)
	s.mustOK(err, "connection initialization")
	_, err = s.connectRaw(r, nqn, 0, cntlidAnyDynamic, initiator.AdminQueueSize-1, 0, 0)
	return err
}

// quietAfter waits up to d for anything more on r after a command's last
// response and renders what came: "nothing" (open and silent), "close",
// or what arrived.
func quietAfter(r *initiator.Raw, d time.Duration) string {
	switch obs := FatalOutcome(r, d); obs {
	case "no reaction":
		return "nothing"
	case "close without C2HTermReq":
		return "close"
	default:
		return obs
	}
}

// discConnectOwner is the check that judges that the discovery controller
// accepts a Connect (to the well-known NQN, KATO 0) at all.
const discConnectOwner = "DISC-CONN-001"

// skipIfDiscoveryConnectRefused skips the check when the discovery
// controller refused its Connect with a status, unless the check is the
// one that judges that: one root cause, one failing check (without it a
// refused discovery Connect fails every discovery check).
func (s *Spec) skipIfDiscoveryConnectRefused(err error) {
	GinkgoHelper()
	var st nvme.Status
	if s.Req.ID != discConnectOwner && errors.As(err, &st) {
		Skip(fmt.Sprintf("%s: the discovery controller refuses the Connect (%v), so nothing else about it can be judged (%s judges that)", s.Req.ID, err, discConnectOwner))
	}
}

// connectAnyModel is connect for an admin queue asking for any controller
// of the subsystem's model: CNTLID FFFFh, then FFFEh when the subsystem
// refuses FFFFh at CNTLID (a static-model subsystem, NVMe Base 2.2 6.3),
// as adminConnect does, with a's other fields.
func (s *Spec) connectAnyModel(r *initiator.Raw, a connectArgs) (nvme.CQE, error) {
	a.CNTLID = cntlidAnyDynamic
	cqe, err := s.connect(r, a)
	if nvme.ConnectRefusedAtCNTLID(cqe, err) {
		a.CNTLID = cntlidAnyStatic
		return s.connect(r, a)
	}
	return cqe, err
}

// readyOwner is the check that judges that CSTS.RDY becomes 1 within
// CAP.TO after CC.EN=1.
const readyOwner = "FAB-PROP-010"

// waitReady waits for CSTS.RDY after CC.EN=1 on r. The owner of the rule
// fails when RDY takes longer than CAP.TO; any other check, which only
// needs a ready controller, waits up to 10 s more (one root cause, one
// failing check).
func (s *Spec) waitReady(ctx context.Context, r *initiator.Raw, cp nvme.CAP) {
	GinkgoHelper()
	if ok, err := s.readyWithin(ctx, r, cp); err != nil || !ok {
		Fail(fmt.Sprintf("%s: CSTS.RDY did not become 1 within CAP.TO after CC.EN=1 (%v)", s.Req.ID, err))
	}
}

// readyWithin polls CSTS on r until RDY is 1: within CAP.TO for
// readyOwner, up to 10 s more for any other check (which reports the
// late transition).
func (s *Spec) readyWithin(ctx context.Context, r *initiator.Raw, cp nvme.CAP) (bool, error) {
	_, ok, err := waitCSTS(ctx, r, nvme.CSTSReady, nvme.CSTSReady, readyTimeout(cp))
	if err == nil && !ok && s.Req.ID != readyOwner {
		_, ok, err = waitCSTS(ctx, r, nvme.CSTSReady, nvme.CSTSReady, 10*time.Second)
		if ok {
			AddReportEntry("observed", fmt.Sprintf("%s: CSTS.RDY became 1 only after CAP.TO (%v); %s judges that", s.Req.ID, readyTimeout(cp), readyOwner))
		}
	}
	return ok, err
}

// propertyOwners are the checks that judge the Property Gets every host
// sends first (CAP, VS): the error text the host library gives when one
// fails, and the check that owns it.
var propertyOwners = []struct{ libError, owner string }{
	{"property get CAP:", "FAB-PROP-001"},
	{"property get VS:", "FAB-PROP-007"},
}

// mustProperty is Must for a Property Get of CAP or VS that a check needs
// to judge something else: when the controller refuses it (a status),
// the check skips, naming the check that judges that Get (one root
// cause, one failing check); that check itself fails.
func (s *Spec) mustProperty(err error, off uint32) {
	GinkgoHelper()
	owner := propertyOwners[0].owner
	if off == nvme.PropVS {
		owner = propertyOwners[1].owner
	}
	var st nvme.Status
	if err != nil && errors.As(err, &st) && s.Req.ID != owner {
		Skip(fmt.Sprintf("%s: the controller refuses the Property Get of %s (%v); %s judges that", s.Req.ID, propertyName(off), err, owner))
	}
	s.Must(err, "Property Get "+propertyName(off))
}

func propertyName(off uint32) string {
	if off == nvme.PropVS {
		return "VS"
	}
	return "CAP"
}

// skipIfPropertyRefused skips the check when the host library could not
// bring up an association because of the controller's properties (it
// refused the Property Get of CAP or VS, CAP.MQES allows no queue of two
// entries, or CSTS.RDY did not become 1 within CAP.TO), unless the check
// is the one that judges that: one root cause, one failing check.
func (s *Spec) skipIfPropertyRefused(err error) {
	GinkgoHelper()
	// A refused Get is a status; a connection that failed meanwhile is
	// not the property's fault.
	var st nvme.Status
	refused := errors.As(err, &st)
	owners := []struct{ libError, owner string }{
		{"controller allows queue size", "FAB-PROP-002"},
		{"waiting for CSTS.RDY: timed out", readyOwner},
	}
	if refused {
		owners = append(owners, propertyOwners...)
	}
	for _, p := range owners {
		if strings.Contains(err.Error(), p.libError) && s.Req.ID != p.owner {
			Skip(fmt.Sprintf("%s: the host library cannot bring up an association (%v); %s judges that", s.Req.ID, err, p.owner))
		}
	}
}

// skipIfMQESZero skips a check that sizes an I/O queue from CAP.MQES when
// MQES is 0, below its minimum of 1h: no legal queue size is within it.
// FAB-PROP-002 judges MQES.
func (s *Spec) skipIfMQESZero(cp nvme.CAP) {
	GinkgoHelper()
	if cp.MQES() == 0 {
		Skip(fmt.Sprintf("%s: CAP.MQES is 0, below its minimum of 1 (two entries), so no legal I/O queue size is within it; FAB-PROP-002 judges MQES", s.Req.ID))
	}
}
