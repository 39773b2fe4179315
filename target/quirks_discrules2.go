package target

import "slices"

// discRules2Quirks are the quirks that prove the second set of issue 19's
// discovery-controller checks can fail (DISC-RULE-008 and up): command,
// log page and feature support (NVMe Base 2.2 Figures 28, 31, 32), the
// Discovery log page's flags and options (NVMe Base 2.1 5.1.12.3.1), one
// field each, embedded in quirkSet.
type discRules2Quirks struct {
	discOwnEntryStatic       bool
	discProhibitedAdminOK    bool
	ioQueueCmdsOK            bool
	discMandatoryLogsMissing bool
	discIOLogsServed         bool
	discProhibitedFeatureOK  bool
	discNonPersistFeaturesOK bool
	discAERRefused           bool
	discAECRefused           bool
	discEPCSDMissing         bool
	discNCCSet               bool
	discCDCNoExtended        bool
	discIndexOffsetIgnored   bool
	discGENCTRLags           bool
	discReadAfterChangeError bool
	discEntryPortShifted     bool
	discSQFCDClear           bool
	staticCtrlShared         bool
	discGENCTRStepTwo        bool
}

// dctypeCDC is Identify Controller DCTYPE 2, a Centralized Discovery
// controller.
const dctypeCDC = 2

// discProhibitedAdmin are the admin opcodes Figure 28 prohibits on a
// Discovery controller (P in its column), Create/Delete I/O queue
// included.
var discProhibitedAdmin = []uint8{0x00, 0x01, 0x04, 0x05, 0x0D, 0x10, 0x11, 0x14, 0x15, 0x19, 0x1A, 0x1C, 0x1D, 0x1E,
	0x20, 0x24, 0x28, 0x2A, 0x2D, 0x31, 0x35, 0x3D, 0x3E, 0x41, 0x42, 0x45, 0x7C, 0x80, 0x81, 0x82, 0x84, 0x85}

// ioQueueAdmin are Delete/Create I/O Submission and Completion Queue,
// "not supported for NVMe over Fabrics" (Figure 28 note 9).
var ioQueueAdmin = []uint8{0x00, 0x01, 0x04, 0x05}

// prohibitedAdminOK reports whether a quirk completes admin opcode op,
// which the target does not support, successfully.
func (s *quirkSet) prohibitedAdminOK(disc bool, op uint8) bool {
	if disc {
		return s.discProhibitedAdminOK && slices.Contains(discProhibitedAdmin, op)
	}
	return s.ioQueueCmdsOK && slices.Contains(ioQueueAdmin, op)
}

// discRules2QuirkTable lists them, in the format of quirkTable.
var discRules2QuirkTable = []Quirk{
	{Name: "discovery-own-entry-static", Kind: QuirkDeviation,
		Does: "gives the discovery log entries that describe the discovery subsystem itself (SUBTYPE 3) CNTLID FFFEh, the static model's (NVMe Base 2.2 3.1.2: a Discovery controller shall support only the dynamic controller model; 3.1.3.3: CNTLID FFFFh in log entries says the dynamic model)",
		set:  func(s *quirkSet) { s.discOwnEntryStatic = true }},
	{Name: "discovery-prohibited-admin-ok", Kind: QuirkDeviation,
		Does: "a discovery controller completes every admin command Figure 28 prohibits on it (Namespace Management, Firmware Commit, Create I/O Submission Queue, Sanitize, ...) successfully, doing nothing (NVMe Base 2.2 3.1.3.4 Figure 28: P for Discovery)",
		set:  func(s *quirkSet) { s.discProhibitedAdminOK = true }},
	{Name: "io-queue-admin-ok", Kind: QuirkDeviation,
		Does: "an I/O controller completes Create/Delete I/O Submission/Completion Queue successfully, doing nothing (NVMe Base 2.2 Figure 28 note 9: not supported for NVMe over Fabrics)",
		set:  func(s *quirkSet) { s.ioQueueCmdsOK = true }},
	{Name: "discovery-mandatory-logs-missing", Kind: QuirkDeviation,
		Does: "a discovery controller serves the Discovery log page alone and refuses Supported Log Pages, Commands Supported and Effects and Feature Identifiers Supported and Effects (NVMe Base 2.2 3.1.3.5 Figure 31: M for Discovery)",
		set:  func(s *quirkSet) { s.discMandatoryLogsMissing = true }},
	{Name: "discovery-io-logs-served", Kind: QuirkDeviation,
		Does: "a discovery controller answers Get Log Page of any log page it does not support (Firmware Slot Information, Telemetry, Sanitize Status, ...) with zeroes (NVMe Base 2.2 3.1.3.5 Figure 31: P for Discovery)",
		set:  func(s *quirkSet) { s.discIOLogsServed = true }},
	{Name: "discovery-prohibited-feature-ok", Kind: QuirkDeviation,
		Does: "a discovery controller answers Get and Set Features of any feature but Asynchronous Event Configuration and Keep Alive Timer (Arbitration, Temperature Threshold, Timestamp, ...) with success (NVMe Base 2.2 3.1.3.6 Figure 32: P for Discovery)",
		set:  func(s *quirkSet) { s.discProhibitedFeatureOK = true }},
	{Name: "discovery-non-persistent-features", Kind: QuirkDeviation,
		Does: "the discovery-non-persistent personality (KAS 0, no EPCSD, Set Features and Keep Alive refused), except that Get Features and Asynchronous Event Request are accepted (NVMe Base 2.2 Figure 28 note 6: for Discovery controllers that do not support explicit persistent connections, this command is prohibited)",
		set:  func(s *quirkSet) { s.discoveryNonPersist, s.discNonPersistFeaturesOK = true, true }},
	{Name: "discovery-aer-refused", Kind: QuirkDeviation,
		Does: "a discovery controller with explicit persistent connections fails Asynchronous Event Request with Invalid Command Opcode (NVMe Base 2.2 3.1.3.3: Discovery controllers that support explicit persistent connections shall support both the Asynchronous Event Request command and the Keep Alive command)",
		set:  func(s *quirkSet) { s.discAERRefused = true }},
	{Name: "discovery-aec-set-refused", Kind: QuirkDeviation,
		Does: "a discovery controller that reports Discovery Log Page Change Notices (OAES bit 31) fails Set Features of Asynchronous Event Configuration with Invalid Field in Command (Get Features answers) (NVMe Base 2.2 3.1.3.3.1: Discovery controllers that support Asynchronous Event Notifications shall implement the Get Features and Set Features commands; Figure 32 note 10)",
		set:  func(s *quirkSet) { s.discAECRefused = true }},
	{Name: "discovery-epcsd-missing", Kind: QuirkDeviation,
		Does: "the discovery log entries that describe the discovery subsystem leave EFLAGS.EPCSD clear although its controllers support explicit persistent connections (KAS non-zero, Keep Alive, notices) (NVMe Base 2.1 Figure 294: EPCSD indicates explicit persistent connection support)",
		set:  func(s *quirkSet) { s.discEPCSDMissing = true }},
	{Name: "discovery-ncc-set", Kind: QuirkDeviation,
		Does: "sets EFLAGS.NCC (no CDC connectivity) in the NVM subsystem entries of a discovery controller that is not a CDC (NVMe Base 2.1 Figure 294, as libnvme quotes it: NCC shall be cleared to 0 unless the Discovery controller is a CDC)",
		set:  func(s *quirkSet) { s.discNCCSet = true }},
	{Name: "discovery-cdc-no-extended", Kind: QuirkDeviation,
		Does: "the discovery controller reports DCTYPE 2 (Centralized Discovery controller) but not Extended Discovery Log Page Entries support (EXTDLPES) for the Discovery log (NVMe Base 2.1 5.1.12.3.1: a CDC shall support returning Extended Discovery Log Page Entries)",
		set:  func(s *quirkSet) { s.discCDCNoExtended = true }},
	{Name: "discovery-index-offset-ignored", Kind: QuirkDeviation,
		Does: "claims an index offset (IOS) for the Discovery log but reads LPOL as a byte offset when the Get Log Page sets OT (NVMe Base 2.1 5.1.12.3.1: the index values in LPOL/LPOU shall be used to index into the header and list of entries)",
		set:  func(s *quirkSet) { s.discIndexOffsetIgnored = true }},
	{Name: "discovery-genctr-lags", Kind: QuirkDeviation,
		Does: "the Discovery log header carries the GENCTR of the read before, so the first read after a change pairs the old counter with the new entries (NVMe Base 2.1 5.1.12.3.1: a single Get Log Page command used to read the Discovery log page shall be atomic)",
		set:  func(s *quirkSet) { s.discGENCTRLags = true }},
	{Name: "discovery-read-after-change-error", Kind: QuirkDeviation,
		Does: "fails a Get Log Page of the Discovery log at a non-zero offset with Internal Error when the log changed since the controller's last read from offset 0 (NVMe Base 2.1 5.1.12.3.1: if the log page contents change during this command sequence, then the controller may return a status code of Discover Restart)",
		set:  func(s *quirkSet) { s.discReadAfterChangeError = true }},
	{Name: "discovery-entry-port-shifted", Kind: QuirkDeviation,
		Does: "gives the discovery log entries of NVM subsystems the TRSVCID of the port above the one they listen on, so no entry names the address the subsystem is reached at (NVMe Base 2.2 3.1.3.3: the set of Discovery Log Page Entries should include all applicable addresses on the same fabric as the Discovery Service)",
		set:  func(s *quirkSet) { s.discEntryPortShifted = true }},
	{Name: "discovery-sqfcd-clear", Kind: QuirkDeviation,
		Does: "clears TREQ.SQFCD in the NVM subsystem entries (the controller requires SQ flow control) but still disables SQ flow control when a Connect asks (NVMe Base 2.1 Figure 294: if this bit is cleared to '0', then the controller requires use of SQ flow control)",
		set:  func(s *quirkSet) { s.discSQFCDClear = true }},
	{Name: "static-controller-shared", Kind: QuirkDeviation,
		Does: "the static-model personality, except that an admin Connect naming a controller that is associated gets that controller ID, a second association with it (NVMe Base 2.2 3.1.2: while a controller is associated with a host, that controller is busy, and no other associations may be made with that controller)",
		set:  func(s *quirkSet) { s.staticModel, s.staticCtrlShared = true, true }},
	{Name: "discovery-genctr-step-two", Kind: QuirkDeviation,
		Does: "adds 2 to the Discovery log's GENCTR for each change (NVMe Base 2.1 Figure 296, as libnvme quotes it: for each change in the Discovery Log Page, this counter is incremented by one)",
		set:  func(s *quirkSet) { s.discGENCTRStepTwo = true }},
}
