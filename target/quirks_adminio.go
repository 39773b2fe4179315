package target

import "github.com/nvmftest/nvmftest/nvme"

// adminIOQuirks are the quirks that prove the admin and I/O (ADM-*, IO-*)
// checks can fail, one field each, embedded in quirkSet.
type adminIOQuirks struct {
	// deviations
	abortClearsIANP      bool
	numQueuesFFFF        bool
	kasExact             bool
	katoSetIgnored       bool
	aecReadbackWrong     bool
	vwcInconsistent      bool
	iorcszWrong          bool
	smartReadsStatic     bool
	smartZero            bool
	changedNSLogBad      bool
	effectsNoRead        bool
	effectsNoDSM         bool
	anaGrpidMismatch     bool
	logOffsetIgnored     bool
	flbasBeyondNLBAF     bool
	activeListFromStart  bool
	activeListStale      bool
	nsDescriptorsMissing bool
	nguidMismatch        bool
	dsmWrongFill         bool
	mdtsClose            bool
	lastLBAReadFails     bool
	icdOverrunShifted    bool
	sglShortAccepted     bool
	sglLongerRefused     bool
	sglLongerUnclaimed   bool
	sglLongerWrongStatus bool
	sqhdFrozen           bool
	inactiveNSIDReadOK   bool

	// allowed personalities
	icdOverrunAccept         bool
	errorLogWithoutMore      bool
	inactiveNSIDInvalidField bool
}

// adminIOQuirkTable lists them, in the format of quirkTable.
var adminIOQuirkTable = []Quirk{
	{Name: "abort-not-found-clears-ianp", Kind: QuirkDeviation,
		Does: "answers Abort of a command that is not outstanding with Dword 0 bit 0 (IANP) clear, as if it had aborted it (NVMe Base 2.2 5.1.1: IANP set when \"the requested command to abort was not found\")",
		set:  func(s *quirkSet) { s.abortClearsIANP = true }},
	{Name: "numqueues-ffff", Kind: QuirkDeviation,
		Does: "Get Features (not Set Features) Number of Queues reports NSQA and NCQA FFFFh (65536 queues, more than a controller can have: 0's based, and 65535 is the most)",
		set:  func(s *quirkSet) { s.numQueuesFFFF = true }},
	{Name: "kato-exact", Kind: QuirkDeviation,
		Does: "reports KAS 100 (10 s) but keeps and reports every KATO as asked, not rounded up to that granularity (NVMe Base 2.1 Keep Alive Timer feature: \"The controller rounds up the value specified to the granularity indicated in the KAS field\")",
		set:  func(s *quirkSet) { s.kasExact = true }},
	{Name: "kato-set-ignored", Kind: QuirkDeviation,
		Does: "completes Set Features Keep Alive Timer successfully but keeps the old KATO",
		set:  func(s *quirkSet) { s.katoSetIgnored = true }},
	{Name: "aec-readback-wrong", Kind: QuirkDeviation,
		Does: "an I/O controller's Get Features Asynchronous Event Configuration reads 0 whatever Set Features stored",
		set:  func(s *quirkSet) { s.aecReadbackWrong = true }},
	{Name: "vwc-inconsistent", Kind: QuirkDeviation,
		Does: "Get Features Volatile Write Cache contradicts Identify VWC: without a volatile write cache it reports one enabled; with one it fails with Invalid Field in Command",
		set:  func(s *quirkSet) { s.vwcInconsistent = true }},
	{Name: "iorcsz-wrong", Kind: QuirkDeviation,
		Does: "reports Identify Controller IORCSZ 2 (32 bytes) though NVMe/TCP response capsules are 16 bytes (NVMe/TCP 1.0: \"IORCSZ is 16 bytes\"); ICDOFF other than 0 would be the same kind of lie, but the host library refuses to connect to it at all",
		set:  func(s *quirkSet) { s.iorcszWrong = true }},
	{Name: "smart-reads-static", Kind: QuirkDeviation,
		Does: "the SMART / Health Information Host Read Commands count never grows",
		set:  func(s *quirkSet) { s.smartReadsStatic = true }},
	{Name: "smart-zero", Kind: QuirkDeviation,
		Does: "returns an all-zero SMART / Health Information page, as SPDK does: no composite temperature, no command counts",
		set:  func(s *quirkSet) { s.smartZero = true }},
	{Name: "changed-ns-log-bad", Kind: QuirkDeviation,
		Does: "the Changed Namespace List log lists NSID FFFFFFFEh (not a namespace, not the overflow marker) after the real entries",
		set:  func(s *quirkSet) { s.changedNSLogBad = true }},
	{Name: "effects-log-no-read", Kind: QuirkDeviation,
		Does: "the Commands Supported and Effects log does not mark Read supported",
		set:  func(s *quirkSet) { s.effectsNoRead = true }},
	{Name: "effects-log-no-dsm", Kind: QuirkDeviation,
		Does: "the Commands Supported and Effects log does not mark Dataset Management supported though ONCS claims it",
		set:  func(s *quirkSet) { s.effectsNoDSM = true }},
	{Name: "ana-grpid-mismatch", Kind: QuirkDeviation,
		Does: "Identify Namespace reports an ANAGRPID one above the ANA group the ANA log puts the namespace in",
		set:  func(s *quirkSet) { s.anaGrpidMismatch = true }},
	{Name: "log-offset-ignored", Kind: QuirkDeviation,
		Does: "an I/O controller's Get Log Page ignores the Log Page Offset (reads from byte 0) though LPA bit 2 claims extended data",
		set:  func(s *quirkSet) { s.logOffsetIgnored = true }},
	{Name: "flbas-beyond-nlbaf", Kind: QuirkDeviation,
		Does: "Identify Namespace FLBAS selects format 1 while NLBAF is 0 (one format); format 1 holds the real block size",
		set:  func(s *quirkSet) { s.flbasBeyondNLBAF = true }},
	{Name: "active-list-from-start", Kind: QuirkDeviation,
		Does: "the Active Namespace ID list ignores its NSID field: it lists every active NSID, not only those above it",
		set:  func(s *quirkSet) { s.activeListFromStart = true }},
	{Name: "active-list-stale", Kind: QuirkDeviation,
		Does: "the Active Namespace ID list is the one the controller had when it was created: namespaces added later are missing, removed ones stay",
		set:  func(s *quirkSet) { s.activeListStale = true }},
	{Name: "ns-descriptors-missing", Kind: QuirkDeviation,
		Does: "the Namespace Identification Descriptor list holds only the Command Set Identifier, no EUI64, NGUID or UUID",
		set:  func(s *quirkSet) { s.nsDescriptorsMissing = true }},
	{Name: "nguid-mismatch", Kind: QuirkDeviation,
		Does: "the NGUID descriptor differs from the NGUID Identify Namespace reports",
		set:  func(s *quirkSet) { s.nguidMismatch = true }},
	{Name: "dsm-wrong-fill", Kind: QuirkDeviation,
		Does: "deallocated blocks read as FFh though DLFEAT says they read as 00h",
		set:  func(s *quirkSet) { s.dsmWrongFill = true }},
	{Name: "mdts-close", Kind: QuirkDeviation,
		Does: "ends the connection (fatal transport error) on a Read longer than MDTS instead of failing it with Invalid Field in Command",
		set:  func(s *quirkSet) { s.mdtsClose = true }},
	{Name: "last-lba-read-fails", Kind: QuirkDeviation,
		Does: "fails a Read that ends at the last LBA with LBA Out of Range (an off-by-one at the end of the namespace)",
		set:  func(s *quirkSet) { s.lastLBAReadFails = true }},
	{Name: "icd-overrun-shifted", Kind: QuirkDeviation,
		Does: "accepts a Write whose in-capsule data is longer than its SGL and writes the last SGL-length bytes of it, not the first",
		set:  func(s *quirkSet) { s.icdOverrunShifted = true }},
	{Name: "sgl-short-accepted", Kind: QuirkDeviation,
		Does: "runs a Read whose SGL describes less data than its blocks instead of failing it with Data SGL Length Invalid (NVMe Base 2.2 4.3.2: shall abort)",
		set:  func(s *quirkSet) { s.sglShortAccepted = true }},
	{Name: "sgl-longer-refused", Kind: QuirkDeviation,
		Does: "sets SGLS bit 18 (LLDTS: a data SGL longer than the transfer is processed normally) but fails such commands with Data SGL Length Invalid",
		set:  func(s *quirkSet) { s.sglLongerRefused = true }},
	{Name: "sgl-longer-wrong-status", Kind: QuirkDeviation,
		Does: "clears SGLS bit 18 and fails a data SGL longer than the transfer with Invalid Field in Command instead of Data SGL Length Invalid (NVMe Base 2.2 4.3.2: if it aborts, \"should\" use Data SGL Length Invalid)",
		set:  func(s *quirkSet) { s.sglLongerUnclaimed, s.sglLongerWrongStatus = true, true }},
	{Name: "inactive-nsid-read-ok", Kind: QuirkDeviation,
		Does: "completes a Read of an inactive NSID successfully with zeroes, as if a 1 GiB namespace of 512-byte blocks were there (NVMe Base 2.2 3.2.1.5: an inactive NSID \"shall cause the controller to abort the command\")",
		set:  func(s *quirkSet) { s.inactiveNSIDReadOK = true }},
	{Name: "sqhd-frozen", Kind: QuirkDeviation,
		Does: "reports SQHD 0 in every I/O queue response with SQ flow control on: the head never advances",
		set:  func(s *quirkSet) { s.sqhdFrozen = true }},

	{Name: "icd-overrun-accept", Kind: QuirkAllowed,
		Does: "accepts a Write whose in-capsule data is longer than its SGL and writes the bytes the SGL describes, dropping the rest (NVMe/TCP 1.0 names no status for it)",
		set:  func(s *quirkSet) { s.icdOverrunAccept = true }},
	{Name: "sgl-longer-unclaimed", Kind: QuirkAllowed,
		Does: "clears SGLS bit 18 and fails a data SGL longer than the transfer with Data SGL Length Invalid (NVMe Base 2.2 4.3.2: \"should not abort\", and if it does, this status)",
		set:  func(s *quirkSet) { s.sglLongerUnclaimed, s.sglLongerRefused = true, true }},
	{Name: "error-log-without-more", Kind: QuirkAllowed,
		Does: "logs every failed command in the Error Information log but never sets More in the completion (More is an option: \"if set to '1'\")",
		set:  func(s *quirkSet) { s.errorLogWithoutMore = true }},
	{Name: "inactive-nsid-invalid-field", Kind: QuirkAllowed,
		Does: "fails I/O commands to an inactive NSID with Invalid Field in Command, as NVMe Base 2.2 3.2.1.5 words it, instead of Invalid Namespace or Format",
		set:  func(s *quirkSet) { s.inactiveNSIDInvalidField = true }},
}

// statusMDTSClose is what prepareIO returns under the mdts-close quirk for
// a command longer than MDTS: not a status, a request to onCapsule to end
// the connection with a C2HTermReq (Data Transfer Limit Exceeded).
const statusMDTSClose nvme.Status = 0xFFFF

// inactiveNSIDPhantom is the namespace the inactive-nsid-read-ok quirk
// reads an inactive NSID from: zeroes.
var inactiveNSIDPhantom = &namespace{b: NewNullBackend(1 << 30), bs: 512, shift: 9, nlba: 1 << 21}
