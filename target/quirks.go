package target

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nvmftest/nvmftest/nvme"
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
	// deviations of one field or one status each, for one check each
	identifyVER           bool
	identifyCNTLID        bool
	identifySUBNQN        bool
	identifySNEmpty       bool
	identifySQES          bool
	identifyMAXCMD        bool
	identifyNN            bool
	identifySGLS          bool
	identifyMSDBD         bool
	identifyFCATT         bool
	identifyCNTRLTYPE     bool
	identifyKASZero       bool
	identifyReservedCNS   bool
	featuresReservedOK    bool
	logReservedOK         bool
	aerLimitIgnored       bool
	keepAliveUnsupported  bool
	smartTempZero         bool
	propSetReadOnlyOK     bool
	adminBeforeEnable     bool
	shutdownNever         bool
	disableKeepsReady     bool
	ioqBeforeEnable       bool
	connectRECFMTIgnored  bool
	connectSQSIZEZero     bool
	discASQSZSmall        bool
	discGENCTRUnstable    bool
	lbaRangeInvalidField  bool
	invalidNSInvalidField bool
	ioOpcodeInvalidField  bool
	writesDropped         bool
	flushFails            bool
	compareAlwaysEqual    bool
	writeZeroesNoop       bool
	dataDigestIgnored     bool

	capCQRClear              bool
	capTOZero                bool
	vs11                     bool
	ccInitialNonzero         bool
	ccReadbackNoEN           bool
	propSizeUnchecked        bool
	ioqPropertyGetOK         bool
	connectCNTLIDIgnored     bool
	unknownSubNQNInvalidHost bool
	ioqHostUnchecked         bool
	ioqSQSIZEUnchecked       bool
	ioqUnknownCNTLIDSeqErr   bool
	discIdentifyNSOK         bool
	discNVMAdminOK           bool
	discTRSVCIDName          bool
	discADRFAMWrong          bool
	discSECTYPEBad           bool
	inactiveNSNonzero        bool
	nsNCAPAboveNSZE          bool
	fwLogNoActive            bool
	cstsReadyAtConnect       bool
	discSubtypeWrong         bool
	discLPANoExt             bool
	h2cTermReqAnswered       bool
	noNSChangeAEN            bool
	noDiscChangeAEN          bool

	// More quirks, one file per area (quirks_transport.go,
	// quirks_fabrics.go, quirks_adminio.go), each with its own fields and
	// its own table, joined into quirkTable.
	transportQuirks
	fabricsQuirks
	adminIOQuirks
	authQuirks
	katoFlowQuirks
	discRulesQuirks
	discRules2Quirks
	assocQuirks
	propsQuirks
	tcp2Quirks
	queueQuirks
	fuzzQuirks

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
var quirkTable = slices.Concat(coreQuirks, transportQuirkTable, fabricsQuirkTable, adminIOQuirkTable, authQuirkTable, katoFlowQuirkTable, discRulesQuirkTable, assocQuirkTable, propsQuirkTable, discRules2QuirkTable, tcp2QuirkTable, queueQuirkTable, fuzzQuirkTable)

// coreQuirks are the first quirks, across the areas.
var coreQuirks = []Quirk{
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
		Does: "after a fatal transport error on an initialized connection sends the C2HTermReq and goes on processing the PDUs that follow (NVMe/TCP 1.0 3.5.1: stop processing any PDUs that arrive)",
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
	{Name: "identify-ver-mismatch", Kind: QuirkDeviation,
		Does: "reports an Identify Controller VER (1.3) other than the Version property (NVMe Base 2.1: VER \"contains the value reported in the Version property\")",
		set:  func(s *quirkSet) { s.identifyVER = true }},
	{Name: "identify-cntlid-wrong", Kind: QuirkDeviation,
		Does: "reports an Identify Controller CNTLID other than the one Connect returned",
		set:  func(s *quirkSet) { s.identifyCNTLID = true }},
	{Name: "identify-subnqn-wrong", Kind: QuirkDeviation,
		Does: "reports an Identify Controller SUBNQN other than the NQN of the subsystem connected to (I/O controllers)",
		set:  func(s *quirkSet) { s.identifySUBNQN = true }},
	{Name: "identify-sn-empty", Kind: QuirkDeviation,
		Does: "reports an empty Serial Number (all spaces) on I/O controllers",
		set:  func(s *quirkSet) { s.identifySNEmpty = true }},
	{Name: "identify-sqes-wrong", Kind: QuirkDeviation,
		Does: "reports SQES and CQES without the required 64- and 16-byte entry sizes",
		set:  func(s *quirkSet) { s.identifySQES = true }},
	{Name: "identify-maxcmd-zero", Kind: QuirkDeviation,
		Does: "reports MAXCMD 0 on a fabrics controller",
		set:  func(s *quirkSet) { s.identifyMAXCMD = true }},
	{Name: "identify-nn-zero", Kind: QuirkDeviation,
		Does: "reports NN 0 on I/O controllers though namespaces are active",
		set:  func(s *quirkSet) { s.identifyNN = true }},
	{Name: "identify-sgls-none", Kind: QuirkDeviation,
		Does: "reports no SGL support (SGLS 0), which fabrics require",
		set:  func(s *quirkSet) { s.identifySGLS = true }},
	{Name: "identify-msdbd-zero", Kind: QuirkAllowed,
		Does: "reports MSDBD 0 (no text asks for a limit of at least 1; 0 reads as no limit)",
		set:  func(s *quirkSet) { s.identifyMSDBD = true }},
	{Name: "identify-fcatt-static", Kind: QuirkDeviation,
		Does: "reports the static controller model (FCATT bit 0) for a controller made by a dynamic Connect",
		set:  func(s *quirkSet) { s.identifyFCATT = true }},
	{Name: "identify-cntrltype-zero", Kind: QuirkDeviation,
		Does: "reports CNTRLTYPE 0 (not reported) with VER 2.0",
		set:  func(s *quirkSet) { s.identifyCNTRLTYPE = true }},
	{Name: "identify-kas-zero", Kind: QuirkDeviation,
		Does: "reports KAS 0 on I/O controllers, though keep alive is required on NVMe over Fabrics",
		set:  func(s *quirkSet) { s.identifyKASZero = true }},
	{Name: "identify-cns-reserved-ok", Kind: QuirkDeviation,
		Does: "answers Identify with a reserved CNS with success and zeroes instead of Invalid Field in Command",
		set:  func(s *quirkSet) { s.identifyReservedCNS = true }},
	{Name: "features-reserved-ok", Kind: QuirkDeviation,
		Does: "answers Get Features of a reserved feature identifier with success instead of Invalid Field in Command",
		set:  func(s *quirkSet) { s.featuresReservedOK = true }},
	{Name: "log-page-reserved-ok", Kind: QuirkDeviation,
		Does: "answers Get Log Page of a reserved log identifier with success and zeroes",
		set:  func(s *quirkSet) { s.logReservedOK = true }},
	{Name: "aer-limit-ignored", Kind: QuirkDeviation,
		Does: "accepts any number of Asynchronous Event Requests instead of failing those beyond AERL+1 with Asynchronous Event Request Limit Exceeded",
		set:  func(s *quirkSet) { s.aerLimitIgnored = true }},
	{Name: "keepalive-unsupported", Kind: QuirkDeviation,
		Does: "fails Keep Alive on I/O controllers with Invalid Command Opcode (the command is mandatory on NVMe over Fabrics)",
		set:  func(s *quirkSet) { s.keepAliveUnsupported = true }},
	{Name: "smart-temperature-zero", Kind: QuirkDeviation,
		Does: "reports a SMART / Health composite temperature of 0 K",
		set:  func(s *quirkSet) { s.smartTempZero = true }},
	{Name: "property-set-readonly-ok", Kind: QuirkAllowed,
		Does: "answers Property Set of CAP, VS or CSTS with success and ignores the value, as a controller may (the properties stay unchanged)",
		set:  func(s *quirkSet) { s.propSetReadOnlyOK = true }},
	{Name: "admin-before-enable", Kind: QuirkDeviation,
		Does: "runs admin commands other than Property Get/Set before CC.EN=1 instead of failing them with Command Sequence Error",
		set:  func(s *quirkSet) { s.adminBeforeEnable = true }},
	{Name: "shutdown-never-completes", Kind: QuirkDeviation,
		Does: "never reports shutdown complete: CSTS.SHST stays 01b (in progress) after CC.SHN=01b",
		set:  func(s *quirkSet) { s.shutdownNever = true }},
	{Name: "disable-keeps-ready", Kind: QuirkDeviation,
		Does: "leaves CSTS.RDY set when CC.EN is cleared",
		set:  func(s *quirkSet) { s.disableKeepsReady = true }},
	{Name: "ioq-before-enable", Kind: QuirkDeviation,
		Does: "accepts I/O queue Connects before the controller is enabled (CC.EN=0), as nvmet does",
		set:  func(s *quirkSet) { s.ioqBeforeEnable = true }},
	{Name: "connect-recfmt-ignored", Kind: QuirkDeviation,
		Does: "accepts a Connect of any RECFMT instead of failing RECFMT other than 0 with Connect Incompatible Format",
		set:  func(s *quirkSet) { s.connectRECFMTIgnored = true }},
	{Name: "connect-sqsize-zero-ok", Kind: QuirkDeviation,
		Does: "accepts a Connect with SQSIZE 0 (a queue of one entry) instead of failing it with Connect Invalid Parameters",
		set:  func(s *quirkSet) { s.connectSQSIZEZero = true }},
	{Name: "discovery-asqsz-small", Kind: QuirkDeviation,
		Does: "reports ASQSZ 16 (below the minimum of 32) in discovery log entries",
		set:  func(s *quirkSet) { s.discASQSZSmall = true }},
	{Name: "discovery-genctr-unstable", Kind: QuirkDeviation,
		Does: "changes the discovery log GENCTR on every read though nothing changed",
		set:  func(s *quirkSet) { s.discGENCTRUnstable = true }},
	{Name: "lba-range-invalid-field", Kind: QuirkDeviation,
		Does: "fails commands beyond the end of the namespace with Invalid Field in Command instead of LBA Out of Range",
		set:  func(s *quirkSet) { s.lbaRangeInvalidField = true }},
	{Name: "invalid-ns-invalid-field", Kind: QuirkDeviation,
		Does: "fails commands to NSID 0, FFFFFFFFh or an inactive NSID with Invalid Field in Command instead of Invalid Namespace or Format",
		set:  func(s *quirkSet) { s.invalidNSInvalidField = true }},
	{Name: "io-opcode-invalid-field", Kind: QuirkDeviation,
		Does: "fails unsupported I/O opcodes with Invalid Field in Command instead of Invalid Command Opcode",
		set:  func(s *quirkSet) { s.ioOpcodeInvalidField = true }},
	{Name: "writes-dropped", Kind: QuirkDeviation,
		Does: "completes Writes successfully without storing their data",
		set:  func(s *quirkSet) { s.writesDropped = true }},
	{Name: "flush-fails", Kind: QuirkDeviation,
		Does: "fails Flush with Internal Error",
		set:  func(s *quirkSet) { s.flushFails = true }},
	{Name: "compare-always-equal", Kind: QuirkDeviation,
		Does: "completes every Compare successfully whatever the data",
		set:  func(s *quirkSet) { s.compareAlwaysEqual = true }},
	{Name: "write-zeroes-noop", Kind: QuirkDeviation,
		Does: "completes Write Zeroes successfully without zeroing",
		set:  func(s *quirkSet) { s.writeZeroesNoop = true }},
	{Name: "data-digest-ignored", Kind: QuirkDeviation,
		Does: "ignores data digest errors: the command runs with the damaged data and succeeds (NVMe/TCP 1.0 3.5.2)",
		set:  func(s *quirkSet) { s.dataDigestIgnored = true }},
	{Name: "cap-cqr-clear", Kind: QuirkDeviation,
		Does: "reports CAP.CQR 0, though fabrics controllers require contiguous queues",
		set:  func(s *quirkSet) { s.capCQRClear = true }},
	{Name: "cap-to-zero", Kind: QuirkAllowed,
		Does: "reports CAP.TO 0 (the worst-case ready time a host should wait; no text forbids 0)",
		set:  func(s *quirkSet) { s.capTOZero = true }},
	{Name: "vs-1.1", Kind: QuirkAllowed,
		Does: "reports Version (and Identify VER) 1.1 consistently; no text sets a minimum version for a fabrics controller",
		set:  func(s *quirkSet) { s.vs11 = true }},
	{Name: "cc-initial-nonzero", Kind: QuirkDeviation,
		Does: "a new controller's CC reads IOSQES 6 instead of 0",
		set:  func(s *quirkSet) { s.ccInitialNonzero = true }},
	{Name: "cc-readback-no-en", Kind: QuirkDeviation,
		Does: "Property Get of CC reads EN as 0 even once the host set it",
		set:  func(s *quirkSet) { s.ccReadbackNoEN = true }},
	{Name: "property-size-unchecked", Kind: QuirkDeviation,
		Does: "ignores the size of Property Get and Set: a 4-byte Get of CAP reads its low half, 8-byte accesses of 4-byte properties succeed",
		set:  func(s *quirkSet) { s.propSizeUnchecked = true }},
	{Name: "ioq-property-get-ok", Kind: QuirkDeviation,
		Does: "runs Property Get on I/O queues instead of failing it (Property Get and Set are admin queue commands)",
		set:  func(s *quirkSet) { s.ioqPropertyGetOK = true }},
	{Name: "connect-cntlid-ignored", Kind: QuirkDeviation,
		Does: "ignores the CNTLID of an admin Connect to the dynamic subsystem (any value makes a new controller) instead of failing values other than FFFFh",
		set:  func(s *quirkSet) { s.connectCNTLIDIgnored = true }},
	{Name: "connect-unknown-subnqn-invalid-host", Kind: QuirkDeviation,
		Does: "fails a Connect to an unknown SUBNQN with Connect Invalid Host (01/84) instead of Connect Invalid Parameters at SUBNQN",
		set:  func(s *quirkSet) { s.unknownSubNQNInvalidHost = true }},
	{Name: "ioq-host-unchecked", Kind: QuirkDeviation,
		Does: "lets an I/O queue Connect join a controller whatever host NQN and host ID it gives",
		set:  func(s *quirkSet) { s.ioqHostUnchecked = true }},
	{Name: "ioq-sqsize-unchecked", Kind: QuirkDeviation,
		Does: "accepts I/O queue Connects whose SQSIZE exceeds CAP.MQES",
		set:  func(s *quirkSet) { s.ioqSQSIZEUnchecked = true }},
	{Name: "ioq-cntlid-unknown-seq-error", Kind: QuirkDeviation,
		Does: "fails an I/O queue Connect naming a controller that does not exist with Command Sequence Error instead of Connect Invalid Parameters at CNTLID",
		set:  func(s *quirkSet) { s.ioqUnknownCNTLIDSeqErr = true }},
	{Name: "discovery-identify-ns-ok", Kind: QuirkDeviation,
		Does: "a discovery controller answers Identify Namespace with success and zeroes",
		set:  func(s *quirkSet) { s.discIdentifyNSOK = true }},
	{Name: "discovery-nvm-admin-ok", Kind: QuirkDeviation,
		Does: "a discovery controller completes Format NVM successfully (doing nothing) instead of failing it with Invalid Command Opcode",
		set:  func(s *quirkSet) { s.discNVMAdminOK = true }},
	{Name: "discovery-trsvcid-name", Kind: QuirkDeviation,
		Does: "discovery log entries give TRSVCID as a service name (\"nvme\") instead of a port number",
		set:  func(s *quirkSet) { s.discTRSVCIDName = true }},
	{Name: "discovery-adrfam-wrong", Kind: QuirkDeviation,
		Does: "discovery log entries say ADRFAM IPv6 for IPv4 addresses",
		set:  func(s *quirkSet) { s.discADRFAMWrong = true }},
	{Name: "discovery-sectype-bad", Kind: QuirkDeviation,
		Does: "discovery log entries carry an undefined TSAS SECTYPE (9)",
		set:  func(s *quirkSet) { s.discSECTYPEBad = true }},
	{Name: "inactive-ns-nonzero", Kind: QuirkDeviation,
		Does: "answers Identify Namespace of an inactive NSID with a structure that is not zero-filled",
		set:  func(s *quirkSet) { s.inactiveNSNonzero = true }},
	{Name: "ns-ncap-above-nsze", Kind: QuirkDeviation,
		Does: "reports Identify Namespace NCAP and NUSE above NSZE",
		set:  func(s *quirkSet) { s.nsNCAPAboveNSZE = true }},
	{Name: "firmware-log-no-active-slot", Kind: QuirkDeviation,
		Does: "reports AFI 0 (no active slot) in the Firmware Slot Information log",
		set:  func(s *quirkSet) { s.fwLogNoActive = true }},
	{Name: "csts-ready-at-connect", Kind: QuirkDeviation,
		Does: "a new controller's CSTS reads RDY 1 before the host enabled it",
		set:  func(s *quirkSet) { s.cstsReadyAtConnect = true }},
	{Name: "discovery-subtype-wrong", Kind: QuirkDeviation,
		Does: "gives NVM subsystem entries of the discovery log SUBTYPE 5 (reserved) instead of 2",
		set:  func(s *quirkSet) { s.discSubtypeWrong = true }},
	{Name: "discovery-lpa-no-extended", Kind: QuirkAllowed,
		Does: "a discovery controller reports no extended data for Get Log Page (LPA bit 2 clear), an optional capability; its offset checks then skip",
		set:  func(s *quirkSet) { s.discLPANoExt = true }},
	{Name: "h2ctermreq-answered", Kind: QuirkAllowed,
		Does: "answers a host's H2CTermReq with a C2HTermReq before closing; NVMe/TCP 1.0 3.5.1 asks only that the controller terminate the connection",
		set:  func(s *quirkSet) { s.h2cTermReqAnswered = true }},
	{Name: "no-ns-change-aen", Kind: QuirkDeviation,
		Does: "raises no Namespace Attribute Changed event when a namespace is added or removed, though OAES claims it",
		set:  func(s *quirkSet) { s.noNSChangeAEN = true }},
	{Name: "no-discovery-change-aen", Kind: QuirkDeviation,
		Does: "raises no Discovery Log Page Change event when the discovery log changes, though OAES claims it",
		set:  func(s *quirkSet) { s.noDiscChangeAEN = true }},

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

// editIdentify applies the quirks that misreport Identify Controller
// fields; disc says whether it is a discovery controller's.
func (s *quirkSet) editIdentify(id *nvme.IdentifyController, disc bool) {
	if s.identifyVER {
		id.VER = nvme.MakeVersion(1, 3, 0)
	}
	if s.identifyCNTLID {
		id.CNTLID ^= 0x0100
	}
	if s.identifySQES {
		id.SQES, id.CQES = 0x55, 0x33
	}
	if s.identifyMAXCMD {
		id.MAXCMD = 0
	}
	if s.identifySGLS {
		id.SGLS = 0
	}
	if s.identifyMSDBD {
		id.MSDBD = 0
	}
	if s.identifyFCATT {
		id.FCATT |= 1
	}
	if s.identifyCNTRLTYPE {
		id.CNTRLTYPE = 0
	}
	if disc {
		return
	}
	if s.identifySUBNQN {
		id.SUBNQN = "nqn.2014-08.io.nvmftest:not-this-one"
	}
	if s.identifySNEmpty {
		id.SN = ""
	}
	if s.identifyNN {
		id.NN = 0
	}
	if s.identifyKASZero {
		id.KAS = 0
	}
}

// editDiscoveryIdentify applies the quirks of discovery controllers'
// Identify Controller.
func (s *quirkSet) editDiscoveryIdentify(id *nvme.IdentifyController) {
	if s.discLPANoExt {
		id.LPA &^= 1 << 2
	}
}

// adminFormatNVM is the Format NVM opcode, which the target supports on
// no controller; the discovery-nvm-admin-ok quirk completes it anyway.
const adminFormatNVM = 0x80
