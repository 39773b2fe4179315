package suites

// fuzzQuirkExpect is the sensitivity table for target/quirks_fuzz.go.
func fuzzQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		// The fuzzer's own proof (fuzz/sensitivity_test.go) shows this
		// quirk is found; a suite run against it would only show which
		// check first sends such a Connect and then an unreachable
		// target, so it is left out like the slow ones.
		"connect-pdo-in-header-dies": {slow: "takes the target down for good at the first Connect with PDO inside its header; fuzz/sensitivity_test.go proves the fuzzer finds it"},
	}
}
