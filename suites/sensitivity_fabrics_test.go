package suites

// fabricsQuirkExpect is the sensitivity table for target/quirks_fabrics.go:
// per quirk, the checks that must fail (none for an allowed personality).
func fabricsQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{}
}
