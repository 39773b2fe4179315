package main

import (
	"strings"
	"testing"
)

// A bad --cpus is a usage error naming the flag, before anything runs;
// valid ones pin in a child process only (pinning the test binary would
// slow every other test), see internal/cpuset.
func TestCPUsFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"target", "--cpus", "x"}, "--cpus: CPU list \"x\""},
		{[]string{"target", "--cpus", "0x0"}, "--cpus: CPU mask"},
		{[]string{"target", "--cpus", "4000"}, "CPU 4000 is not available"},
		{[]string{"bench", "--embedded", "null:64MiB", "--cpus", "3-1", "--runtime", "1"}, "--cpus: CPU list \"3-1\""},
	} {
		code, _, errs := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, errs, tc.want)
		}
	}
}
