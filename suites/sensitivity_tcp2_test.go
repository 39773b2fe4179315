package suites

// tcp2QuirkExpect is the sensitivity table for target/quirks_tcp2.go: per
// quirk, the checks that must fail (suites/keepalive_rules.go and
// suites/transport_rules2.go). TCP-IC-021 is proven by
// connect-duplicate-accepted (sensitivity_fabrics_test.go), the quirk of
// the one rule it enforces.
func tcp2QuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"tbkas-keep-alive-only": {fail: ids("ADM-KA-012")},
		"set-kato-no-restart":   {fail: ids("ADM-KA-013")},
		// A timer counted from the Connect has run out by the time it
		// becomes active: ADM-KA-014 sees the association end before KATT,
		// FAB-ASSOC-004 sees it unusable right after CC.EN=1.
		"kato-stale-at-enable":            {fail: ids("ADM-KA-014 FAB-ASSOC-004")},
		"kato-keeps-io-queues":            {fail: ids("ADM-KA-015")},
		"keep-alive-late":                 {fail: ids("ADM-KA-017")},
		"kato-max-1h":                     {fail: ids("ADM-KA-016")},
		"termreq-data-common-header-only": {fail: ids("TCP-FATAL-007")},
		"termreq-fei-reserved-set":        {fail: ids("TCP-TERM-004")},
		"r2t-reserved-set":                {fail: ids("TCP-PDU-031")},
		"h2cdata-after-last-ignored":      {fail: ids("TCP-DATA-032")},
		"r2t-in-order-only":               {fail: ids("TCP-DATA-033")},
		"admin-in-capsule-4k":             {fail: ids("TCP-PDU-030")},
		"r2t-window-repeats":              {fail: ids("TCP-DATA-034")},
		"fei-not-lowest":                  {fail: ids("TCP-TERM-005")},
		"kato-default-zero":               {fail: ids("ADM-KA-018")},
	}
}
