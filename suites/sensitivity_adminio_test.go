package suites

// adminIOQuirkExpect is the sensitivity table for target/quirks_adminio.go:
// per quirk, the checks that must fail (none for an allowed personality).
func adminIOQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		// Deviations.
		"abort-not-found-clears-ianp": {fail: ids("ADM-ABRT-001")},
		"numqueues-ffff":              {fail: ids("ADM-FEAT-001")},
		"kato-exact":                  {fail: ids("ADM-FEAT-002 ADM-FEAT-003")},
		"kato-set-ignored":            {fail: ids("ADM-FEAT-003")},
		"aec-readback-wrong":          {fail: ids("ADM-FEAT-004")},
		"vwc-inconsistent":            {fail: ids("ADM-FEAT-005")},
		"iorcsz-wrong":                {fail: ids("ADM-ID-009")},
		"smart-reads-static":          {fail: ids("ADM-LOG-004")},
		"smart-zero":                  {fail: ids("ADM-LOG-003 ADM-LOG-004")},
		"changed-ns-log-bad":          {fail: ids("ADM-LOG-006")},
		"effects-log-no-read":         {fail: ids("ADM-LOG-007")},
		"effects-log-no-dsm":          {fail: ids("ADM-LOG-008")},
		"ana-grpid-mismatch":          {fail: ids("ADM-LOG-009")},
		"log-offset-ignored":          {fail: ids("ADM-LOG-011")},
		"flbas-beyond-nlbaf":          {fail: ids("ADM-NS-002")},
		"active-list-from-start":      {fail: ids("ADM-NS-006")},
		"active-list-stale":           {fail: ids("ADM-NS-010")},
		"ns-descriptors-missing":      {fail: ids("ADM-NS-008")},
		"nguid-mismatch":              {fail: ids("ADM-NS-009")},
		"dsm-wrong-fill":              {fail: ids("IO-DSM-001")},
		"mdts-close":                  {fail: ids("IO-ERR-003")},
		"last-lba-read-fails":         {fail: ids("IO-RW-006")},
		"icd-overrun-shifted":         {fail: ids("IO-SGL-001")},
		"sgl-short-accepted":          {fail: ids("IO-SGL-002")},
		"sgl-longer-refused":          {fail: ids("IO-SGL-003")},
		"sgl-longer-wrong-status":     {fail: ids("IO-SGL-004")},
		"inactive-nsid-read-ok":       {fail: ids("IO-ERR-004")},
		"sqhd-frozen":                 {fail: ids("IO-SQHD-001")},

		// Allowed personalities: nothing may fail.
		"icd-overrun-accept":          {},
		"sgl-longer-unclaimed":        {},
		"error-log-without-more":      {},
		"inactive-nsid-invalid-field": {},
	}
}
