package suites

// transportQuirkExpect is the sensitivity table for target/quirks_transport.go:
// per quirk, the checks that must fail (none for an allowed personality).
func transportQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{}
}
