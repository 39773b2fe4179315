package target

// discRulesQuirks are the quirks that prove the checks of issue 19's
// discovery-controller, SGL-descriptor and alignment rules can fail
// (DISC-RULE-*, TCP-SGL-*, TCP-ALIGN-*, TCP-HDGST-*, FAB-ERRLOG-*), one
// field each, embedded in quirkSet. Each breaks one rule at one place of
// the target (named in its Does).
type discRulesQuirks struct {
	discKATONoAEN           bool
	discOAESNoLogChange     bool
	discEntryCNTLIDSpecific bool
	ioDiscoveryLog          bool
	sglAnyType              bool
	sglOffsetIgnored        bool
	c2hMisaligned           bool
	r2tMisaligned           bool
	hdgstFEIZero            bool
	connectFailLogged       bool
	discDisconnectOK        bool
	discNonPersistKeepAlive bool
	propReservedSizeOK      bool
	nvmEntryPort8009        bool
}

// discRulesQuirkTable lists them, in the format of quirkTable.
var discRulesQuirkTable = []Quirk{
	{Name: "discovery-kato-no-aen", Kind: QuirkDeviation,
		Does: "accepts a discovery Connect with a non-zero KATO but leaves Discovery Log Page Change notices disabled until the host sets them with Set Features (NVMe Base 2.2 3.1.3.3.1: a Discovery controller shall enable Asynchronous Discovery Log Event Notifications if a non-zero KATO is received in the Connect command)",
		set:  func(s *quirkSet) { s.discKATONoAEN = true }},
	{Name: "discovery-oaes-no-log-change", Kind: QuirkDeviation,
		Does: "a discovery controller with explicit persistent connections reports OAES bit 31 (Discovery Log Page Change Notices) clear, though it sends them (NVMe Base 2.2 3.1.3.3: Discovery controllers shall indicate support for Discovery Log Change Notifications in the Identify Controller data structure)",
		set:  func(s *quirkSet) { s.discOAESNoLogChange = true }},
	{Name: "discovery-entry-cntlid-specific", Kind: QuirkDeviation,
		Does: "gives the discovery log entries of dynamic-model NVM subsystems CNTLID 1 instead of FFFFh (NVMe Base 2.2 3.1.3.3: the controller ID value of FFFFh is used for NVM subsystems that support the dynamic controller model)",
		set:  func(s *quirkSet) { s.discEntryCNTLIDSpecific = true }},
	{Name: "io-discovery-log-served", Kind: QuirkDeviation,
		Does: "an I/O controller answers Get Log Page 70h (Discovery) with the discovery log (NVMe Base 2.1 5.1.12.3.1: only Discovery controllers support the Discovery log page; controllers that expose namespaces do not)",
		set:  func(s *quirkSet) { s.ioDiscoveryLog = true }},
	{Name: "sgl-unsupported-type-accepted", Kind: QuirkDeviation,
		Does: "takes any SGL descriptor other than a Data Block with the Offset subtype (Keyed, Segment, Last Segment, Bit Bucket, reserved types and subtypes) as a Transport SGL Data Block and moves the data (NVMe/TCP 1.0 3.3.2: a Command Capsule PDU with an unsupported SGL descriptor type shall be completed with SGL Descriptor Type Invalid)",
		set:  func(s *quirkSet) { s.sglAnyType = true }},
	{Name: "sgl-offset-ignored", Kind: QuirkDeviation,
		Does: "takes in-capsule data from the start of the capsule's data whatever offset its Data Block descriptor names (NVMe Base 2.1 3.3.2.1.3: if an invalid offset is specified in an SGL descriptor, then a status code of SGL Offset Invalid shall be returned)",
		set:  func(s *quirkSet) { s.sglOffsetIgnored = true }},
	{Name: "c2h-misaligned", Kind: QuirkDeviation,
		Does: "sends command data longer than 8 bytes in C2HData PDUs whose first one carries an odd number of bytes, so the later ones start at an odd DATAO (NVMe/TCP 1.0 3.6.2.9: DATAO and DATAL shall be dword aligned)",
		set:  func(s *quirkSet) { s.c2hMisaligned = true }},
	{Name: "r2t-misaligned", Kind: QuirkDeviation,
		Does: "asks for a write's data in two R2Ts, one after the other: the first for an odd number of bytes, the second for the rest once that data is in (NVMe/TCP 1.0 3.6.2.10: R2TO and R2TL shall be dword aligned)",
		set:  func(s *quirkSet) { s.r2tMisaligned = true }},
	{Name: "hdgst-fei-zero", Kind: QuirkDeviation,
		Does: "sends the C2HTermReq for a header digest error with FEI 0 instead of the HDGST it received (NVMe/TCP 1.0 3.6.2.5 Fig. 23: for FES 03h the FEI indicates the HDGST that was received)",
		set:  func(s *quirkSet) { s.hdgstFEIZero = true }},
	{Name: "failed-connect-error-logged", Kind: QuirkDeviation,
		Does: "records an I/O queue Connect it refuses for a QID above the queues granted in the Error Information log of the controller it names (NVMe Base 2.2 6.3: for a Connect command that fails, the controller shall not add an entry to the Error Information log page)",
		set:  func(s *quirkSet) { s.connectFailLogged = true }},
	{Name: "discovery-disconnect-accepted", Kind: QuirkDeviation,
		Does: "a discovery controller completes a Disconnect on its admin queue successfully and ends the association (NVMe Base 2.2 3.1.3.3: a Discovery controller shall not support the Disconnect command; 6.4: on an Admin Queue, Invalid Queue Type)",
		set:  func(s *quirkSet) { s.discDisconnectOK = true }},
	{Name: "discovery-non-persistent-keep-alive", Kind: QuirkDeviation,
		Does: "the discovery-non-persistent personality (KAS 0, no EPCSD, Set Features refused), except that Keep Alive completes successfully (NVMe Base 2.2 3.1.3.3: Discovery controllers that do not support explicit persistent connections shall not support Keep Alive commands)",
		set:  func(s *quirkSet) { s.discoveryNonPersist, s.discNonPersistKeepAlive = true, true }},
	{Name: "property-reserved-size-accepted", Kind: QuirkDeviation,
		Does: "takes a reserved Property Get or Set size (ATTRIB bits 2:0 from 010b) for 4 bytes (NVMe Base 2.2 6.5, 6.6: PRS and PUS 010b to 111b are reserved; 1.4.1.6: receipt of reserved coded values in defined fields in commands shall be reported as an error)",
		set:  func(s *quirkSet) { s.propReservedSizeOK = true }},
	{Name: "nvm-entry-port-8009", Kind: QuirkDeviation,
		Does: "gives the discovery log entries of NVM subsystems TRSVCID 8009, the discovery port (NVMe/TCP 1.0 3.1.2: NVMe/TCP I/O controllers should not use TCP port 8009)",
		set:  func(s *quirkSet) { s.nvmEntryPort8009 = true }},
}
