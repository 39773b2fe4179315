package suites

// discRules2QuirkExpect is the sensitivity table for
// target/quirks_discrules2.go: per quirk, the checks that must fail.
func discRules2QuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"discovery-own-entry-static": {fail: ids("DISC-RULE-008")},
		// Format NVM among them: DISC-CMD-003 owns that one.
		"discovery-prohibited-admin-ok":    {fail: ids("DISC-RULE-009 DISC-CMD-003")},
		"io-queue-admin-ok":                {fail: ids("DISC-RULE-010")},
		"discovery-mandatory-logs-missing": {fail: ids("DISC-RULE-012")},
		// SMART among them: DISC-CMD-002 owns that one.
		"discovery-io-logs-served": {fail: ids("DISC-RULE-011 DISC-CMD-002")},
		// Set Features Number of Queues among them: DISC-CMD-004's.
		"discovery-prohibited-feature-ok":   {fail: ids("DISC-RULE-013 DISC-CMD-004")},
		"discovery-non-persistent-features": {fail: ids("DISC-RULE-013 DISC-RULE-014")},
		"discovery-aer-refused":             {fail: ids("DISC-RULE-015 DISC-AEN-001")},
		"discovery-aec-set-refused":         {fail: ids("DISC-RULE-016")},
		"discovery-epcsd-missing":           {fail: ids("DISC-RULE-017")},
		"discovery-ncc-set":                 {fail: ids("DISC-RULE-018")},
		"discovery-cdc-no-extended":         {fail: ids("DISC-RULE-019")},
		"discovery-index-offset-ignored":    {fail: ids("DISC-RULE-020")},
		// readDiscoveryLog re-reads until header and log agree, so the
		// GENCTR checks (DISC-LOG-012/013) see the new counter.
		"discovery-genctr-lags":             {fail: ids("DISC-RULE-021")},
		"discovery-read-after-change-error": {fail: ids("DISC-RULE-024")},
		"discovery-entry-port-shifted":      {fail: ids("DISC-RULE-022")},
		"discovery-sqfcd-clear":             {fail: ids("DISC-RULE-023")},
		"static-controller-shared":          {fail: ids("DISC-RULE-025")},
		"discovery-genctr-step-two":         {fail: ids("DISC-RULE-026")},
	}
}
