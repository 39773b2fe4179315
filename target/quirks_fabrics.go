package target

// fabricsQuirks are the quirks that prove the fabrics and discovery
// (FAB-*, DISC-*) checks can fail, one field each, embedded in quirkSet.
// Each breaks one rule at one place of the target (named in its Does).
type fabricsQuirks struct {
	discNumQueuesOK          bool
	discKATO0Refused         bool
	discIOQAccepted          bool
	discLogRECFMT1           bool
	discLogOffsetIgnored     bool
	discGENCTRFrozen         bool
	discReferralDangling     bool
	connectCIDTruncated      bool
	adminSQSIZEUnbounded     bool
	preConnectCommandsOK     bool
	connectDuplicateAccepted bool
	katoAbove60sRefused      bool
	connectShortInvalidField bool
	cntlidShared             bool
	disconnectStrayResponse  bool
	disconnectEndsAssoc      bool
	ioqConnectDW0Zero        bool
	ioqQIDUnbounded          bool
	capCSSNone               bool
	capMPSMINAboveMax        bool
	ccReadbackENOnly         bool
	propertyMidOffset        bool
	readOnlyPropWritable     bool
	ccEntrySizesUnchecked    bool
	readsFail                bool
	vsGetRefused             bool
	capGetRefused            bool
	capMQESZero              bool
	readyAfterCAPTO          bool

	// allowed personalities
	staticModel bool
}

// fabricsQuirkTable lists them, in the format of quirkTable.
var fabricsQuirkTable = []Quirk{
	{Name: "discovery-numqueues-accepted", Kind: QuirkDeviation,
		Does: "a discovery controller completes Set Features Number of Queues successfully (NVMe Base 2.2 Fig. 32: Number of Queues is prohibited on Discovery controllers)",
		set:  func(s *quirkSet) { s.discNumQueuesOK = true }},
	{Name: "discovery-kato0-refused", Kind: QuirkDeviation,
		Does: "refuses a discovery Connect with KATO 0 (Connect Invalid Parameters at KATO), as if every discovery host had to ask for an explicit persistent connection (NVMe Base 2.2 3.1.3.3: the discovery subsystem shall support the well-known NQN in a Connect; KATO 0 asks for no persistent connection)",
		set:  func(s *quirkSet) { s.discKATO0Refused = true }},
	{Name: "discovery-ioq-accepted", Kind: QuirkDeviation,
		Does: "accepts an I/O queue Connect to a discovery controller, even a disabled one (NVMe Base 2.2 3.1.3.3: a Discovery controller does not implement I/O Queues)",
		set:  func(s *quirkSet) { s.discIOQAccepted = true }},
	{Name: "discovery-log-recfmt-1", Kind: QuirkDeviation,
		Does: "gives the discovery log header RECFMT 1 (NVMe Base 2.1 5.1.12.3.1: the record format shall be 0h)",
		set:  func(s *quirkSet) { s.discLogRECFMT1 = true }},
	{Name: "discovery-log-offset-ignored", Kind: QuirkDeviation,
		Does: "a discovery controller claims extended data for Get Log Page (LPA bit 2) but ignores the Log Page Offset: every read of the discovery log starts at byte 0 (NVMe Base 2.1 5.1.12 Fig. 199)",
		set:  func(s *quirkSet) { s.discLogOffsetIgnored = true }},
	{Name: "discovery-genctr-frozen", Kind: QuirkDeviation,
		Does: "never changes the discovery log GENCTR, even when a subsystem is added or removed (NVMe Base 2.1 5.1.12.3.1: GENCTR is incremented for each change)",
		set:  func(s *quirkSet) { s.discGENCTRFrozen = true }},
	{Name: "discovery-referral-dangling", Kind: QuirkDeviation,
		Does: "lists a referral to a discovery service at 127.0.0.1 port 1, where none listens (NVMe Base 2.1 Fig. 294: a referral entry describes another Discovery Service)",
		set:  func(s *quirkSet) { s.discReferralDangling = true }},
	{Name: "connect-cid-truncated", Kind: QuirkDeviation,
		Does: "answers a Connect with its CID cut to the low 8 bits, as a target that keeps the Connect's CID in a byte would (NVMe Base 2.2 6.3 Fig. 548: the CID of the command being completed)",
		set:  func(s *quirkSet) { s.connectCIDTruncated = true }},
	{Name: "admin-sqsize-unbounded", Kind: QuirkDeviation,
		Does: "accepts an admin Connect whatever its SQSIZE, FFFFh included (NVMe Base 2.2 6.3 Fig. 546: larger than the controller supports -> Connect Invalid Parameters)",
		set:  func(s *quirkSet) { s.adminSQSIZEUnbounded = true }},
	{Name: "pre-connect-commands-ok", Kind: QuirkDeviation,
		Does: "completes Property Get and Identify sent before any Connect successfully, with zeroes (NVMe Base 2.2 3.3.2.2: the queues exist once a Connect completes)",
		set:  func(s *quirkSet) { s.preConnectCommandsOK = true }},
	{Name: "connect-duplicate-accepted", Kind: QuirkDeviation,
		Does: "completes a Connect for a queue that already exists successfully: a second Connect on an admin queue, or an I/O queue Connect for a QID in use (which replaces the old queue) (NVMe Base 2.2 3.3.2.3, 6.3: Command Sequence Error)",
		set:  func(s *quirkSet) { s.connectDuplicateAccepted = true }},
	{Name: "kato-above-60s-refused", Kind: QuirkDeviation,
		Does: "refuses a Connect whose KATO is above 60 s with Connect Invalid Parameters at KATO (NVMe/TCP 1.0 3.4: the transport imposes no maximum)",
		set:  func(s *quirkSet) { s.katoAbove60sRefused = true }},
	{Name: "connect-short-data-invalid-field", Kind: QuirkDeviation,
		Does: "fails a Connect whose data is shorter than 1024 bytes with Invalid Field in Command, as SPDK does (NVMe Base 2.2 6.3: a failed Connect shall not return Invalid Field in Command)",
		set:  func(s *quirkSet) { s.connectShortInvalidField = true }},
	{Name: "cntlid-shared", Kind: QuirkDeviation,
		Does: "gives every new controller CNTLID 1, even while another controller has it (NVMe Base 2.2 3.1.2: a controller has one association at a time)",
		set:  func(s *quirkSet) { s.cntlidShared = true }},
	{Name: "disconnect-stray-response", Kind: QuirkDeviation,
		Does: "sends a second response capsule (CID FFFFh) after the Disconnect's (NVMe Base 2.2 6.4: the Disconnect's completion shall be the last entry on that queue)",
		set:  func(s *quirkSet) { s.disconnectStrayResponse = true }},
	{Name: "disconnect-ends-association", Kind: QuirkDeviation,
		Does: "ends the whole association on a Disconnect of an I/O queue, though both sides support deleting one I/O queue (NVMe Base 2.2 3.3.2.4)",
		set:  func(s *quirkSet) { s.disconnectEndsAssoc = true }},
	{Name: "ioq-connect-dw0-zero", Kind: QuirkDeviation,
		Does: "answers a successful I/O queue Connect with CNTLID 0 in DW0 (NVMe Base 2.2 6.3 Fig. 549: the controller ID the Connect named)",
		set:  func(s *quirkSet) { s.ioqConnectDW0Zero = true }},
	{Name: "ioq-qid-unbounded", Kind: QuirkDeviation,
		Does: "accepts an I/O queue Connect for any QID, beyond the queues Number of Queues allocated too (NVMe Base 2.2 6.3 Fig. 546: Invalid Queue Identifier)",
		set:  func(s *quirkSet) { s.ioqQIDUnbounded = true }},
	{Name: "cap-css-none", Kind: QuirkDeviation,
		Does: "reports CAP.CSS 0: neither the NVM command set nor I/O command sets, on an I/O controller (NVMe Base 2.2 3.1.4.1)",
		set:  func(s *quirkSet) { s.capCSSNone = true }},
	{Name: "cap-mpsmin-above-mpsmax", Kind: QuirkDeviation,
		Does: "reports CAP.MPSMIN 1 (8 KiB) and MPSMAX 0 (4 KiB); MDTS is lowered by one so that the largest transfer stays the same (NVMe Base 2.2 3.1.4.1)",
		set:  func(s *quirkSet) { s.capMPSMINAboveMax = true }},
	{Name: "cc-readback-en-only", Kind: QuirkDeviation,
		Does: "Property Get of CC reads only the EN bit: the entry sizes, command set and other fields the host wrote read as 0 (NVMe Base 2.2 3.1.4.5: IOCQES and IOSQES are RW)",
		set:  func(s *quirkSet) { s.ccReadbackENOnly = true }},
	{Name: "property-mid-offset", Kind: QuirkDeviation,
		Does: "answers a 4-byte Property Get at offset 4h with the upper half of CAP, as SPDK does, instead of Invalid Field in Command (NVMe Base 2.2 6.5: an invalid offset)",
		set:  func(s *quirkSet) { s.propertyMidOffset = true }},
	{Name: "readonly-property-writable", Kind: QuirkDeviation,
		Does: "lets Property Set change CAP and VS: later Property Gets on that controller read the value written (NVMe Base 2.2 3.1.4: every CAP field is RO, VS is RO)",
		set:  func(s *quirkSet) { s.readOnlyPropWritable = true }},
	{Name: "cc-entry-sizes-unchecked", Kind: QuirkDeviation,
		Does: "becomes ready on CC.EN=1 whatever IOSQES and IOCQES say (0 included) and then creates I/O queues (NVMe Base 2.2 3.1.4.5: creating an I/O queue before they are initialized shall fail with Invalid Queue Size)",
		set:  func(s *quirkSet) { s.ccEntrySizesUnchecked = true }},
	{Name: "reads-fail", Kind: QuirkDeviation,
		Does: "fails every Read with Internal Error (NVMe Base 2.2 3.3.2.2: once an I/O queue's Connect completed, I/O commands may be submitted to it)",
		set:  func(s *quirkSet) { s.readsFail = true }},
	{Name: "vs-get-refused", Kind: QuirkDeviation,
		Does: "fails Property Get of VS with Invalid Field in Command (NVMe Base 2.2 3.1.4 Fig. 33: VS is a mandatory property)",
		set:  func(s *quirkSet) { s.vsGetRefused = true }},
	{Name: "cap-get-refused", Kind: QuirkDeviation,
		Does: "fails Property Get of CAP with Invalid Field in Command (NVMe Base 2.2 3.1.4 Fig. 33: CAP is a mandatory property; Fig. 29: Property Get is mandatory)",
		set:  func(s *quirkSet) { s.capGetRefused = true }},
	{Name: "cap-mqes-zero", Kind: QuirkDeviation,
		Does: "reports CAP.MQES 0, below its minimum of 1h (two entries), while it goes on refusing SQSIZE 0 (NVMe Base 2.2 3.1.4.1)",
		set:  func(s *quirkSet) { s.capMQESZero = true }},
	{Name: "ready-after-cap-to", Kind: QuirkDeviation,
		Does: "reports CAP.TO 1 (500 ms) but sets an I/O controller's CSTS.RDY 600 ms after CC.EN=1 (NVMe Base 2.2 3.1.4.1: TO is the worst-case time to wait for CSTS.RDY to become 1)",
		set:  func(s *quirkSet) { s.readyAfterCAPTO = true }},

	{Name: "static-model", Kind: QuirkAllowed,
		Does: "NVM subsystems use the static controller model (NVMe Base 2.2 3.1.2: a message-based controller may support either model): an admin Connect with CNTLID FFFFh fails with Connect Invalid Parameters at CNTLID, FFFEh gets any free controller, a specific CNTLID that controller (Controller Busy while it is associated); Identify FCATT bit 0 is set and the discovery log entries of NVM subsystems carry CNTLID FFFEh",
		set:  func(s *quirkSet) { s.staticModel = true }},
}
