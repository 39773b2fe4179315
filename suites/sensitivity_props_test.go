package suites

// propsQuirkExpect is the sensitivity table for target/quirks_props.go:
// per quirk, the checks that must fail.
func propsQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		"cap-reserved-bit-set":          {fail: ids("FAB-PROP-027")},
		"reserved-property-aqa":         {fail: ids("FAB-PROP-028")},
		"crto-refused":                  {fail: ids("FAB-PROP-029")},
		"cap-dstrd-nonzero":             {fail: ids("FAB-PROP-030")},
		"discovery-cap-mps":             {fail: ids("FAB-PROP-031")},
		"discovery-cap-css-iocss":       {fail: ids("FAB-PROP-032")},
		"discovery-cc-entry-sizes-kept": {fail: ids("FAB-PROP-033")},
		"vs-upper-bytes-set":            {fail: ids("FAB-PROP-034")},
		"mixed-controller-model":        {fail: ids("FAB-CTRL-001")},
		"reset-loses-writes":            {fail: ids("FAB-CTRL-002")},
		"disabled-write-applied":        {fail: ids("FAB-CTRL-003")},
		"reset-keeps-shst":              {fail: ids("FAB-CTRL-004")},
		"enable-keeps-shst":             {fail: ids("FAB-CTRL-005")},
		"log-offset-unaligned-literal":  {fail: ids("FAB-CTRL-006")},
		"fabrics-psdt-sgl-only":         {fail: ids("FAB-CTRL-007")},
		"ioq-property-set-applied":      {fail: ids("FAB-CTRL-008")},
	}
}
