package suites

// authQuirkExpect is the sensitivity table for target/quirks_auth.go: per
// quirk, the checks that must fail.
func authQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"fctype-reserved-invalid-opcode": {fail: ids("FAB-FCTYPE-001")},
		// The same rule at the Admin Queue of I/O and discovery
		// controllers.
		"admin-disconnect-accepted":      {fail: ids("FAB-ADMDISC-001 DISC-DCON-001")},
		"connect-cntlid-fff0-accepted":   {fail: ids("FAB-CNTLID-001")},
		"connect-hostnqn-unchecked":      {fail: ids("FAB-NQN-001 FAB-NQN-002 FAB-NQN-003")},
		"hostnqn-equals-subnqn-accepted": {fail: ids("FAB-AUTH-006")},
		// The gate on the admin queue and on an I/O queue.
		"auth-gate-open":      {fail: ids("FAB-AUTH-001 FAB-AUTH-002")},
		"auth-secp-unchecked": {fail: ids("FAB-AUTH-004 FAB-AUTH-005")},
	}
}
