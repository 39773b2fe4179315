package suites

// fabricsQuirkExpect is the sensitivity table for target/quirks_fabrics.go:
// per quirk, the checks that must fail (none for an allowed personality).
func fabricsQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"discovery-numqueues-accepted":     {fail: ids("DISC-CMD-004")},
		"discovery-kato0-refused":          {fail: ids("DISC-CONN-001 DISC-CONN-002")},
		"discovery-ioq-accepted":           {fail: ids("DISC-CONN-003")},
		"discovery-log-recfmt-1":           {fail: ids("DISC-LOG-001")},
		"discovery-log-offset-ignored":     {fail: ids("DISC-LOG-009 DISC-LOG-010 DISC-RULE-020")},
		"discovery-genctr-frozen":          {fail: ids("DISC-LOG-012 DISC-LOG-013")},
		"discovery-referral-dangling":      {fail: ids("DISC-REF-001")},
		"connect-cid-truncated":            {fail: ids("FAB-CONN-002")},
		"admin-sqsize-unbounded":           {fail: ids("FAB-CONN-007 FAB-CONN-037")},
		"pre-connect-commands-ok":          {fail: ids("FAB-CONN-010 FAB-CONN-011")},
		"connect-duplicate-accepted":       {fail: ids("FAB-CONN-012 FAB-IOQ-004 TCP-IC-021")},
		"kato-above-60s-refused":           {fail: ids("FAB-CONN-013")},
		"connect-short-data-invalid-field": {fail: ids("FAB-CONN-014")},
		"cntlid-shared":                    {fail: ids("FAB-CONN-016")},
		"disconnect-stray-response":        {fail: ids("FAB-DISC-001")},
		"disconnect-ends-association":      {fail: ids("FAB-DISC-002")},
		"ioq-connect-dw0-zero":             {fail: ids("FAB-IOQ-001")},
		"ioq-qid-unbounded":                {fail: ids("FAB-IOQ-003")},
		"cap-css-none":                     {fail: ids("FAB-PROP-005 FAB-PROP-032")},
		"cap-mpsmin-above-mpsmax":          {fail: ids("FAB-PROP-006 FAB-PROP-031")},
		"cc-readback-en-only":              {fail: ids("FAB-PROP-011")},
		"property-mid-offset":              {fail: ids("FAB-PROP-016")},
		"readonly-property-writable":       {fail: ids("FAB-PROP-017 FAB-PROP-018")},
		"cc-entry-sizes-unchecked":         {fail: ids("FAB-PROP-025")},
		// A Read that fails: FAB-IOQ-010 and IO-RW-006 judge that a Read
		// completes with its block; every other check that reads as a step
		// skips, naming them (readStep).
		"reads-fail": {fail: ids("FAB-IOQ-010 IO-RW-006")},

		"vs-get-refused":  {fail: ids("FAB-PROP-007")},
		"cap-get-refused": {fail: ids("FAB-PROP-001")},
		"cap-mqes-zero":   {fail: ids("FAB-PROP-002")},
		// The host library gives up at CAP.TO: its checks skip, naming
		// FAB-PROP-010; the raw ones wait longer and go on.
		"ready-after-cap-to": {fail: ids("FAB-PROP-010")},

		// Allowed personalities: nothing may fail.
		"static-model": {},
	}
}
