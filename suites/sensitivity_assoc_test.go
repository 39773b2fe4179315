package suites

// assocQuirkExpect is the sensitivity table for target/quirks_assoc.go:
// per quirk, the checks that must fail.
func assocQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"h2ctermreq-bad-plen-fatal":    {fail: ids("TCP-TERM-002 TCP-TERM-003")},
		"sq-overrun-connection-only":   {fail: ids("FAB-ASSOC-001 FAB-ASSOC-002")},
		"admin-loss-keeps-association": {fail: ids("FAB-ASSOC-003")},
		"kato-from-connect":            {fail: ids("FAB-ASSOC-004")},
		"disconnect-completes-first":   {fail: ids("FAB-ASSOC-005 FAB-DCON-003")},
		"ioq-runs-while-disabled":      {fail: ids("FAB-ASSOC-006 FAB-CTRL-003")},
		"stale-write-after-loss":       {fail: ids("FAB-ASSOC-007")},
	}
}
