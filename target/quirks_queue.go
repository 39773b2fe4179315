package target

import "sync"

// queueQuirks are the quirks that prove the queue-model, Connect-field and
// Disconnect checks of suites/queue_rules.go (issue 19) can fail, one
// field each, embedded in quirkSet.
type queueQuirks struct {
	sqhdFFFFAfterConnect    bool
	disconnectRECFMTIgnored bool
	disconnectWithoutDCS    bool
	adminNVMSETIDChecked    bool
	hostIDFeatureZero       bool
	adminSQSIZEAboveASQSZ   bool
	ioqHostID0Refused       bool
	ioqLossKeepsAssoc       bool
	ioqFatalKeepsQID        bool
	staticCNTLIDOther       bool
	sqhdRarelySent          bool
	ioqOtherSubsystem       bool
	disconnectDropsWaiting  bool
	authRetained            bool
	authReqASCRWithATR      bool
}

// queueQuirkTable lists them, in the format of quirkTable.
var queueQuirkTable = []Quirk{
	{Name: "sqhd-ffff-after-connect", Kind: QuirkDeviation,
		Does: "on a queue whose Connect disabled SQ flow control keeps SQHD FFFFh in every later response instead of clearing it to 0h (NVMe Base 2.2 3.3.2.5: in all subsequent response capsules for that queue pair the controller shall clear the SQHD field to 0h)",
		set:  func(s *quirkSet) { s.sqhdFFFFAfterConnect = true }},
	{Name: "disconnect-recfmt-ignored", Kind: QuirkDeviation,
		Does: "deletes the I/O queue for a Disconnect of any RECFMT instead of failing RECFMT other than 0 with Incompatible Format (NVMe Base 2.2 6.4 Fig. 550)",
		set:  func(s *quirkSet) { s.disconnectRECFMTIgnored = true }},
	{Name: "disconnect-without-dcs", Kind: QuirkDeviation,
		Does: "clears Identify Controller OFCS.DCS yet deletes an I/O queue on Disconnect (NVMe Base 2.2 3.3.2.4: the controller indicates support for deleting an individual I/O queue by setting DCS)",
		set:  func(s *quirkSet) { s.disconnectWithoutDCS = true }},
	{Name: "connect-admin-nvmsetid-checked", Kind: QuirkDeviation,
		Does: "refuses an admin Connect whose NVMSETID is not 0 with Connect Invalid Parameters at NVMSETID (NVMe Base 2.2 Fig. 546: in the Connect command for an Admin Queue the controller shall ignore this field)",
		set:  func(s *quirkSet) { s.adminNVMSETIDChecked = true }},
	{Name: "hostid-feature-zero", Kind: QuirkDeviation,
		Does: "returns a Host Identifier of 0h from Get Features Host Identifier instead of the HOSTID of the admin Connect (NVMe Base 2.2 Fig. 547: a successful admin Connect shall set the current Host Identifier to HOSTID)",
		set:  func(s *quirkSet) { s.hostIDFeatureZero = true }},
	{Name: "admin-sqsize-above-asqsz", Kind: QuirkDeviation,
		Does: "accepts an admin Connect for a queue larger than the ASQSZ (32) of its discovery log entries, up to queue_size (NVMe Base 2.2 3.3.3.1: the Admin Submission Queue is limited by ASQSZ; Fig. 546: a larger SQSIZE gets Connect Invalid Parameters)",
		set:  func(s *quirkSet) { s.adminSQSIZEAboveASQSZ = true }},
	{Name: "ioq-hostid0-refused", Kind: QuirkDeviation,
		Does: "refuses an I/O queue Connect with HOSTID 0h (Connect Invalid Parameters at CNTLID) though its discovery log entries set TREQ.ZHIDS (NVMe Base 2.2 Fig. 547: a HOSTID of 0h on an I/O queue Connect the controller shall ignore)",
		set:  func(s *quirkSet) { s.ioqHostID0Refused = true }},
	{Name: "ioq-loss-keeps-association", Kind: QuirkDeviation,
		Does: "keeps the association when an I/O queue's connection is lost although the admin Connect left CATTR.INDIVIOQDELS clear (NVMe Base 2.2 3.1.2, 3.3.2.4: the association is then terminated)",
		set:  func(s *quirkSet) { s.ioqLossKeepsAssoc = true }},
	{Name: "ioq-fatal-keeps-qid", Kind: QuirkDeviation,
		Does: "after a fatal transport error on an I/O queue of an association that lives on (CATTR.INDIVIOQDELS set) keeps its QID taken: the queue is neither deleted nor the association ended (NVMe Base 2.2 3.3.2.9: delete the I/O queue and its connection, or end the connection and the association)",
		set:  func(s *quirkSet) { s.ioqFatalKeepsQID = true }},
	{Name: "static-cntlid-other", Kind: QuirkDeviation,
		Does: "static controller model, but an admin Connect naming a specific CNTLID gets any free controller (NVMe Base 2.2 6.3 Fig. 549: if a particular controller was specified, the response CNTLID shall contain the same value)",
		set:  func(s *quirkSet) { s.staticModel, s.staticCNTLIDOther = true, true }},
	{Name: "sqhd-rarely-sent", Kind: QuirkDeviation,
		Does: "on I/O queues with SQ flow control ends 8 of every 9 Reads with a C2HData carrying SUCCESS (no response capsule, so no SQHD) (NVMe Base 2.2 3.3.2.7: an SQHD value should be transmitted in at least one of every n response capsules, n 10% of the SQ size)",
		set:  func(s *quirkSet) { s.sqhdRarelySent = true }},
	{Name: "ioq-connect-other-subsystem", Kind: QuirkDeviation,
		Does: "accepts an I/O queue Connect whose SUBNQN names another subsystem of the target than its controller's, by CNTLID alone (NVMe Base 2.2 6.3: Connect Invalid Parameters if the NVM Subsystem NQN for an I/O Queue is not the one of its Admin Queue)",
		set:  func(s *quirkSet) { s.ioqOtherSubsystem = true }},
	{Name: "disconnect-drops-waiting", Kind: QuirkDeviation,
		Does: "on a Disconnect drops the commands still waiting for their data without a completion (the Disconnect's completion still last) (NVMe Base 2.2 3.3.2.4: the controller should not delete the connection until the responses for the commands received before the Disconnect have been sent)",
		set:  func(s *quirkSet) { s.disconnectDropsWaiting = true }},
	{Name: "auth-receive-retained", Kind: QuirkDeviation,
		Does: "keeps the DH-HMAC-CHAP transaction of a queue whose connection was lost before it completed and resumes it on the host's next queue, whose Authentication Receive then returns the Challenge prepared for the lost one (NVMe Base 2.2 6.1: the Authentication Receive command data shall not be retained if there is a loss of communication)",
		set:  func(s *quirkSet) { s.authRetained = true }},
	{Name: "authreq-ascr-with-atr", Kind: QuirkDeviation,
		Does: "answers the Connect of a host it authenticates with AUTHREQ.ASCR and AUTHREQ.ATR both set (and goes on as for ATR alone) (NVMe Base 2.2 Fig. 549: if ASCR is set, authentication followed by secure channel establishment is required and the ATR bit should be cleared to '0')",
		set:  func(s *quirkSet) { s.authReqASCRWithATR = true }},
}

// retainKey and retainedAuth hold the auth-receive-retained quirk's
// transactions of lost queues, per target and host.
type retainKey struct {
	t    *Target
	host string
}

var retainedAuth sync.Map

// sqhdRarely is the sqhd-rarely-sent quirk's choice for a Read about to
// send its data: true (SUCCESS, no response capsule) for 8 of every 9.
// The SQ head it does not report counts as reported, so that the target
// does not take the host's next commands for an overrun of a queue the
// host still believes has room.
func (q *queue) sqhdRarely() bool {
	if !q.t.quirks.sqhdRarelySent || q.qid == 0 || q.flowOff {
		return false
	}
	if q.rareCount.Add(1)%9 == 0 {
		return false
	}
	q.sqhdValue()
	return true
}

// treqZHIDS is Discovery Log Page Entry TREQ bit 3, Zero Host ID Support
// (NVMe Base 2.1 Fig. 294).
const treqZHIDS = 1 << 3
