package suites

// adminIOQuirkExpect is the sensitivity table for target/quirks_adminio.go:
// per quirk, the checks that must fail (none for an allowed personality).
func adminIOQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{}
}
