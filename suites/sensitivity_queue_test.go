package suites

// queueQuirkExpect is the sensitivity table for target/quirks_queue.go:
// per quirk, the checks that must fail.
func queueQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"sqhd-ffff-after-connect":        {fail: ids("FAB-CONN-034")},
		"disconnect-recfmt-ignored":      {fail: ids("FAB-DCON-001")},
		"disconnect-without-dcs":         {fail: ids("FAB-DCON-002")},
		"connect-admin-nvmsetid-checked": {fail: ids("FAB-CONN-035")},
		"hostid-feature-zero":            {fail: ids("FAB-CONN-036")},
		"admin-sqsize-above-asqsz":       {fail: ids("FAB-CONN-037")},
		"ioq-hostid0-refused":            {fail: ids("FAB-IOQ-013")},
		"ioq-loss-keeps-association":     {fail: ids("FAB-IOQ-014")},
		"ioq-fatal-keeps-qid":            {fail: ids("FAB-IOQ-015")},
		"static-cntlid-other":            {fail: ids("FAB-CONN-038")},
		"sqhd-rarely-sent":               {fail: ids("FAB-IOQ-016")},
		"ioq-connect-other-subsystem":    {fail: ids("FAB-IOQ-017")},
		"disconnect-drops-waiting":       {fail: ids("FAB-DCON-003")},
		"auth-receive-retained":          {fail: ids("FAB-CONN-039")},
		"authreq-ascr-with-atr":          {fail: ids("FAB-CONN-040")},
	}
}
