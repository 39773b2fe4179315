package target

// katoFlowQuirks are the quirks that prove the checks on the association's
// life, keep alive and SQ flow control negotiation can fail (FAB-CONN-031..033,
// FAB-DISC-011, ADM-KA-011), one field each, embedded in quirkSet.
type katoFlowQuirks struct {
	connectKATO0Refused      bool
	setKATO0Accepted         bool
	connectSQHDUnasked       bool
	dissqfcRefused           bool
	disconnectKeepsAssocHost bool
}

// katoFlowQuirkTable lists them, in the format of quirkTable.
var katoFlowQuirkTable = []Quirk{
	{Name: "connect-kato0-invalid-param", Kind: QuirkDeviation,
		Does: "refuses an admin Connect to an I/O controller with KATO 0 with Connect Invalid Parameters at KATO (NVMe Base 2.2 3.9.1: a command that clears KATO to 0h where the transport requires keep alive is aborted with Keep Alive Timeout Invalid)",
		set:  func(s *quirkSet) { s.connectKATO0Refused = true }},
	{Name: "set-kato0-accepted", Kind: QuirkDeviation,
		Does: "accepts Set Features Keep Alive Timer with KATO 0 and turns keep alive off (NVMe Base 2.2 3.9.1: NVMe/TCP requires keep alive, so the command shall be aborted with Keep Alive Timeout Invalid and KATO not changed)",
		set:  func(s *quirkSet) { s.setKATO0Accepted = true }},
	{Name: "connect-sqhd-ffff-unasked", Kind: QuirkDeviation,
		Does: "answers every Connect with SQHD FFFFh, DISSQFC set or not, and keeps SQ flow control (NVMe Base 2.2 6.3: without a DISSQFC request the controller shall not set SQHD to FFFFh in the Connect response)",
		set:  func(s *quirkSet) { s.connectSQHDUnasked = true }},
	{Name: "dissqfc-connect-refused", Kind: QuirkDeviation,
		Does: "refuses a Connect that sets CATTR.DISSQFC with Connect Invalid Parameters at CATTR (NVMe Base 2.2 6.3: a controller that does not agree to disable SQ flow control answers the Connect with an SQHD other than FFFFh)",
		set:  func(s *quirkSet) { s.dissqfcRefused = true }},
	{Name: "disconnect-keeps-association-unasked", Kind: QuirkDeviation,
		Does: "keeps the association alive after a Disconnect deletes an I/O queue although the host's admin Connect left CATTR.INDIVIOQDELS clear (NVMe Base 2.2 3.3.2.4: if either side does not support deleting an individual I/O queue, the deletion terminates the association)",
		set:  func(s *quirkSet) { s.disconnectKeepsAssocHost = true }},
}
