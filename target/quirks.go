package target

import (
	"fmt"
	"strings"
)

// Quirks are named departures from the reference target's default
// behaviour that it can be told to have (config `quirks:`, `nvmftest
// target --quirk NAME`). They serve two purposes:
//
//   - A QuirkDeviation breaks a rule of the specification on purpose, so
//     the conformance suite can be shown to notice: the sensitivity test
//     (suites/sensitivity_test.go) runs the suite against the target with
//     each one and expects exactly the checks that own the rule to fail.
//   - A QuirkAllowed is a behaviour the specification permits that other
//     real targets have (SPDK's 10 s keep alive granularity, a discovery
//     controller without persistent connections, ...): the suite must pass
//     a target that has it, and hosts can be tested against it.
//
// Each quirk is a bool in quirkSet, tested where the behaviour changes: a
// quirk costs nothing when it is off (no lookup on any I/O path).

// QuirkKind says whether the specification allows a quirk's behaviour.
type QuirkKind string

const (
	// QuirkAllowed is a behaviour the specification permits: the suite
	// must not fail it.
	QuirkAllowed QuirkKind = "allowed"
	// QuirkDeviation breaks a rule: the checks that own the rule must fail.
	QuirkDeviation QuirkKind = "deviation"
)

// Quirk describes one named behaviour.
type Quirk struct {
	// Name is what config `quirks:` and --quirk take.
	Name string
	Kind QuirkKind
	// Does says what the target then does, and for an allowed quirk which
	// text allows it, for a deviation which rule it breaks.
	Does string

	set func(*quirkSet)
}

// quirkSet is the quirks a target has, one field each.
type quirkSet struct {
	// deviations
	noTermReq             bool
	termReqFESUnsupported bool
	termReqNoHeader       bool
	processAfterFatal     bool
	acceptForeignHost     bool
	noErrorLog            bool
	katoNeverExpires      bool
	digestErrorFatal      bool
	cntlidReserved        bool
	icrespPFV1            bool
	reservedNonzero       bool

	// allowed personalities
	closeAfterTermReq    bool
	kas10s               bool
	connectNoDNR         bool
	discoveryNonPersist  bool
	uniqueDiscoveryNQN   bool
	qidDupInvalidQID     bool
	reservedPropertyZero bool
}

// quirkTable is every quirk, deviations first. Keep it the one place that
// names them: the CLI help, the config error and the sensitivity test read
// it.
var quirkTable = []Quirk{
	{Name: "no-termreq", Kind: QuirkDeviation,
		Does: "closes the connection without a C2HTermReq on every fatal transport error (NVMe/TCP 1.0 3.5.1: the controller shall send a C2HTermReq)",
		set:  func(s *quirkSet) { s.noTermReq = true }},
	{Name: "termreq-fes-unsupported", Kind: QuirkDeviation,
		Does: "sends every C2HTermReq with FES 06h (Unsupported Parameter) whatever the error (NVMe/TCP 1.0 3.6.2.5: FES names the error)",
		set:  func(s *quirkSet) { s.termReqFESUnsupported = true }},
	{Name: "termreq-no-header", Kind: QuirkDeviation,
		Does: "sends C2HTermReqs without the offending PDU header as their data (NVMe/TCP 1.0 3.6.2.5)",
		set:  func(s *quirkSet) { s.termReqNoHeader = true }},
	{Name: "process-after-fatal", Kind: QuirkDeviation,
		Does: "after a fatal transport error sends the C2HTermReq and goes on processing the PDUs that follow (NVMe/TCP 1.0 3.5.1: stop processing any PDUs that arrive)",
		set:  func(s *quirkSet) { s.processAfterFatal = true }},
	{Name: "accept-foreign-hostnqn", Kind: QuirkDeviation,
		Does: "ignores the subsystems' host lists: any host NQN may connect (NVMe Base 2.1 6.3: Connect Invalid Host)",
		set:  func(s *quirkSet) { s.acceptForeignHost = true }},
	{Name: "no-error-log", Kind: QuirkDeviation,
		Does: "completes failed commands with the More bit set but adds no Error Information log entry (NVMe Base 2.1, completion status More: \"more status information for this command as part of the Error Information log\")",
		set:  func(s *quirkSet) { s.noErrorLog = true }},
	{Name: "kato-never-expires", Kind: QuirkDeviation,
		Does: "never ends an association whose host stopped sending for KATO (NVMe Base 2.1 3.9)",
		set:  func(s *quirkSet) { s.katoNeverExpires = true }},
	{Name: "digest-error-fatal", Kind: QuirkDeviation,
		Does: "handles a data digest error as a fatal transport error, as nvmet does, instead of failing the command with Transient Transport Error (NVMe/TCP 1.0 3.5.2)",
		set:  func(s *quirkSet) { s.digestErrorFatal = true }},
	{Name: "connect-cntlid-reserved", Kind: QuirkDeviation,
		Does: "gives admin Connects controller IDs from the reserved range FFF0h..FFFDh (NVMe Base 2.1 6.3)",
		set:  func(s *quirkSet) { s.cntlidReserved = true }},
	{Name: "icresp-pfv-1", Kind: QuirkDeviation,
		Does: "answers ICReq with an ICResp of PFV 1 (NVMe/TCP 1.0 3.6.2.3: PFV 0)",
		set:  func(s *quirkSet) { s.icrespPFV1 = true }},
	{Name: "reserved-fields-nonzero", Kind: QuirkDeviation,
		Does: "sets reserved bits where the checks look at them: SMART / Health Information Critical Warning bits 7:6",
		set:  func(s *quirkSet) { s.reservedNonzero = true }},

	{Name: "close-after-termreq", Kind: QuirkAllowed,
		Does: "closes the connection right after sending a C2HTermReq instead of waiting fatal_close_wait for the host (NVMe/TCP 1.0 3.5.1 lets the controller close; the host must close anyway)",
		set:  func(s *quirkSet) { s.closeAfterTermReq = true }},
	{Name: "kas-10s", Kind: QuirkAllowed,
		Does: "reports KAS 100 (10 s) and rounds every KATO up to a multiple of 10 s, like SPDK (NVMe Base 2.1, Keep Alive Timer feature: \"The controller rounds up the value specified to the granularity indicated in the KAS field\")",
		set:  func(s *quirkSet) { s.kas10s = true }},
	{Name: "connect-no-dnr", Kind: QuirkAllowed,
		Does: "fails refused Connects without DNR (the text names the status, not the DNR bit)",
		set:  func(s *quirkSet) { s.connectNoDNR = true }},
	{Name: "discovery-non-persistent", Kind: QuirkAllowed,
		Does: "discovery controllers do not support explicit persistent connections: KAS 0, no EPCSD in the discovery log, Keep Alive and Set Features fail with Invalid Command Opcode (NVMe Base 2.1 Figure 28 note 6: for such Discovery controllers \"this command is prohibited\")",
		set:  func(s *quirkSet) { s.discoveryNonPersist = true }},
	{Name: "unique-discovery-nqn", Kind: QuirkAllowed,
		Does: "the discovery subsystem has a unique NQN (" + uniqueDiscoveryNQN + "): Identify SUBNQN and the current discovery subsystem entry report it, and Connect accepts it as well as the well-known NQN (NVMe Base 2.1 3.1.3.3)",
		set:  func(s *quirkSet) { s.uniqueDiscoveryNQN = true }},
	{Name: "qid-dup-invalid-qid", Kind: QuirkAllowed,
		Does: "answers an I/O queue Connect for a QID already connected with Invalid Queue Identifier (01/01h) instead of Command Sequence Error",
		set:  func(s *quirkSet) { s.qidDupInvalidQID = true }},
	{Name: "reserved-property-zero", Kind: QuirkAllowed,
		Does: "Property Get of a reserved or undefined offset succeeds with 0 (reserved properties read as 0) instead of failing with Invalid Field in Command",
		set:  func(s *quirkSet) { s.reservedPropertyZero = true }},
}

// uniqueDiscoveryNQN is the discovery subsystem's NQN under the
// unique-discovery-nqn quirk.
const uniqueDiscoveryNQN = "nqn.2014-08.io.nvmftest:discovery"

// Quirks returns the table of every quirk, deviations first.
func Quirks() []Quirk {
	out := make([]Quirk, len(quirkTable))
	copy(out, quirkTable)
	return out
}

// QuirkNames returns every quirk's name, in table order.
func QuirkNames() []string {
	names := make([]string, len(quirkTable))
	for i, q := range quirkTable {
		names[i] = q.Name
	}
	return names
}

// LookupQuirk finds a quirk by name.
func LookupQuirk(name string) (Quirk, bool) {
	for _, q := range quirkTable {
		if q.Name == name {
			return q, true
		}
	}
	return Quirk{}, false
}

// validateQuirks checks that every name is a quirk.
func validateQuirks(names []string) error {
	for i, n := range names {
		if _, ok := LookupQuirk(n); !ok {
			return fmt.Errorf("quirks[%d]: %q is not a quirk (use one of %s)", i, n, strings.Join(QuirkNames(), ", "))
		}
	}
	return nil
}

// newQuirkSet turns validated names into the flags the target tests.
func newQuirkSet(names []string) quirkSet {
	var s quirkSet
	for _, n := range names {
		if q, ok := LookupQuirk(n); ok {
			q.set(&s)
		}
	}
	return s
}
