package target

// authQuirks are the quirks that prove the in-band authentication and
// Connect-validation checks (FAB-AUTH-*, FAB-NQN-*, FAB-CNTLID-*,
// FAB-FCTYPE-*, FAB-ADMDISC-*, DISC-DCON-*) can fail, one field each,
// embedded in quirkSet. Each breaks one rule at one place of the target
// (named in its Does).
type authQuirks struct {
	fctypeReservedInvalidOpcode bool
	adminDisconnectAccepted     bool
	cntlidFFF0Accepted          bool
	hostNQNUnchecked            bool
	hostEqualsSubAccepted       bool
	authGateOpen                bool
	authSECPUnchecked           bool
}

// authQuirkTable lists them, in the format of quirkTable.
var authQuirkTable = []Quirk{
	{Name: "fctype-reserved-invalid-opcode", Kind: QuirkDeviation,
		Does: "answers a Fabrics command with a reserved FCTYPE (e.g. 02h, 07h) with Invalid Command Opcode (NVMe Base 2.2 4.1.2 Fig. 94: a reserved FCTYPE shall be aborted with Invalid Field in Command)",
		set:  func(s *quirkSet) { s.fctypeReservedInvalidOpcode = true }},
	{Name: "admin-disconnect-accepted", Kind: QuirkDeviation,
		Does: "completes a Disconnect on the Admin Queue successfully and deletes it, on I/O and discovery controllers (NVMe Base 2.2 6.4: a Disconnect submitted on an Admin Queue shall be aborted with Invalid Queue Type; Fig. 29: Disconnect is prohibited on Discovery controllers)",
		set:  func(s *quirkSet) { s.adminDisconnectAccepted = true }},
	{Name: "connect-cntlid-fff0-accepted", Kind: QuirkDeviation,
		Does: "takes an admin Connect's CNTLID in FFF0h..FFFDh for FFFFh and allocates any controller (NVMe Base 2.2 6.3: the controller shall abort with Connect Invalid Parameters if the host specifies a Controller ID in the range FFF0h to FFFDh)",
		set:  func(s *quirkSet) { s.cntlidFFF0Accepted = true }},
	{Name: "connect-hostnqn-unchecked", Kind: QuirkDeviation,
		Does: "accepts a Connect whose Host NQN is not a valid NQN (longer than 223 bytes, no NUL terminator in its 256-byte field, no \"nqn.\" prefix) (NVMe Base 2.2 6.3: a syntax error in the Host NQN (section 4.7) shall be aborted with Connect Invalid Parameters)",
		set:  func(s *quirkSet) { s.hostNQNUnchecked = true }},
	{Name: "hostnqn-equals-subnqn-accepted", Kind: QuirkDeviation,
		Does: "accepts a Connect whose Host NQN equals the NVM Subsystem NQN (NVMe Base 2.2 6.3: if the NVM subsystem supports DH-HMAC-CHAP, the controller shall abort it with Connect Invalid Host)",
		set:  func(s *quirkSet) { s.hostEqualsSubAccepted = true }},
	{Name: "auth-gate-open", Kind: QuirkDeviation,
		Does: "serves every command on a queue whose Connect response set AUTHREQ.ATR before DH-HMAC-CHAP has succeeded (NVMe Base 2.2 3.3.2.3: such a controller shall abort all commands other than authentication commands with Authentication Required)",
		set:  func(s *quirkSet) { s.authGateOpen = true }},
	{Name: "auth-secp-unchecked", Kind: QuirkDeviation,
		Does: "ignores the SECP of Authentication Send/Receive and runs DH-HMAC-CHAP whatever its value (NVMe Base 2.2 6.1 Fig. 542, 6.2 Fig. 544: a reserved Security Protocol shall be aborted with Invalid Parameter indicated)",
		set:  func(s *quirkSet) { s.authSECPUnchecked = true }},
}
