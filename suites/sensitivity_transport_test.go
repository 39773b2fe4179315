package suites

// transportQuirkExpect is the sensitivity table for target/quirks_transport.go:
// per quirk, the checks that must fail (none for an allowed personality).
func transportQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		// Two parts of the C2HData rule, one check: LAST_PDU on the last
		// PDU, and SUCCESS only from a controller that can disable SQ flow
		// control.
		"c2h-success-keeps-sq-flow-control": {fail: ids("TCP-DATA-001 TCP-DATA-031")},
		"c2h-no-last-pdu":                   {fail: ids("TCP-DATA-001 TCP-DATA-031")},
		"r2t-cccid-wrong": {fail: ids("TCP-DATA-002"),
			// The one write in the suite that the host library moves by
			// R2T: the library refuses the R2T, as a host must, and the
			// write check fails on what TCP-DATA-002 judges.
			checkBugs: ids("IO-RW-002")},
		"r2t-exceeds-maxr2t":             {fail: ids("TCP-DATA-003")},
		"write-short-h2cdata-fails":      {fail: ids("TCP-DATA-010")},
		"no-r2t-small-write":             {fail: ids("TCP-DATA-011")},
		"digest-error-closes":            {fail: ids("TCP-DGST-003 TCP-DGST-005")},
		"termreq-plen-wrong":             {fail: ids("TCP-FATAL-001")},
		"fatal-streak-refuses":           {fail: ids("TCP-FATAL-004")},
		"fatal-ends-all-associations":    {fail: ids("TCP-FATAL-005")},
		"icresp-flags-set":               {fail: ids("TCP-IC-002")},
		"icresp-cpda-32":                 {fail: ids("TCP-IC-003")},
		"icresp-digest-unasked":          {fail: ids("TCP-IC-005")},
		"hpda-ignored":                   {fail: ids("TCP-IC-007")},
		"header-digest-refused-but-sent": {fail: ids("TCP-IC-011 TCP-IC-013")},
		"data-digest-refused-but-sent":   {fail: ids("TCP-IC-012 TCP-IC-013")},
		"maxr2t-invalid-field":           {fail: ids("TCP-IC-019")},
		"h2ctermreq-ignored": {fail: ids("TCP-PDU-020"),
			slow: "TCP-PDU-020 waits the 30 s a host grants the controller to close"},
	}
}
