package suites

// discRulesQuirkExpect is the sensitivity table for
// target/quirks_discrules.go: per quirk, the checks that must fail.
func discRulesQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"discovery-kato-no-aen":           {fail: ids("DISC-RULE-001")},
		"discovery-oaes-no-log-change":    {fail: ids("DISC-RULE-002")},
		"discovery-entry-cntlid-specific": {fail: ids("DISC-RULE-003")},
		"io-discovery-log-served":         {fail: ids("DISC-RULE-004")},
		"sgl-unsupported-type-accepted":   {fail: ids("TCP-SGL-001")},
		"sgl-offset-ignored":              {fail: ids("IO-SGLOFF-001")},
		"c2h-misaligned":                  {fail: ids("TCP-ALIGN-001")},
		"r2t-misaligned":                  {fail: ids("TCP-ALIGN-002")},
		"hdgst-fei-zero":                  {fail: ids("TCP-HDGST-001")},
		"failed-connect-error-logged":     {fail: ids("FAB-ERRLOG-001")},
		"discovery-disconnect-accepted":   {fail: ids("DISC-DCON-001")},
		// Non-persistent otherwise: DISC-CMD-005 skips, as it must.
		"discovery-non-persistent-keep-alive": {fail: ids("DISC-RULE-006")},
		"property-reserved-size-accepted":     {fail: ids("FAB-PROPRSV-001 FAB-PROPRSV-002")},
		"nvm-entry-port-8009":                 {fail: ids("DISC-RULE-007 DISC-RULE-022")},
	}
}
