package suites

// katoFlowQuirkExpect is the sensitivity table for target/quirks_assoc.go:
// per quirk, the checks that must fail.
func katoFlowQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		// Only FAB-CONN-031 sends an admin Connect with KATO 0 to the
		// subsystem under test: every raw admin Connect carries a KATO.
		"connect-kato0-invalid-param":          {fail: ids("FAB-CONN-031")},
		"set-kato0-accepted":                   {fail: ids("ADM-KA-011")},
		"connect-sqhd-ffff-unasked":            {fail: ids("FAB-CONN-032")},
		"dissqfc-connect-refused":              {fail: ids("FAB-CONN-033")},
		"disconnect-keeps-association-unasked": {fail: ids("FAB-DISC-011")},
	}
}
