package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/internal/testnet"
)

// A target host that drops SYNs held discover, connect, id-ctrl and bench
// for the kernel's SYN retries (about 135 s), whatever --timeout said.
// Now --connect-timeout bounds each TCP connect (by default 10 s, or
// --timeout if shorter) and the one line says what happened.
func TestConnectTimeoutFlag(t *testing.T) {
	addr := testnet.SYNDrop(t)
	h, p, _ := net.SplitHostPort(addr)
	target := []string{"-t", "tcp", "-a", h, "-s", p}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"discover", "--connect-timeout", "300ms"}, "failed to discover " + addr + ": no answer from " + addr + " within 300ms (connect timeout)"},
		{[]string{"discover", "--timeout", "400ms"}, "no answer from " + addr + " within 400ms (connect timeout)"},
		{[]string{"connect", "-n", "nqn.x", "--connect-timeout", "300ms"}, "no answer from " + addr + " within 300ms (connect timeout)"},
		{[]string{"id-ctrl", "-n", "nqn.x", "--timeout", "300ms"}, "no answer from " + addr + " within 300ms (connect timeout)"},
		{[]string{"bench", "-n", "nqn.x", "--rw", "randread", "--runtime", "1", "--connect-timeout", "300ms"}, "no answer from " + addr + " within 300ms (connect timeout)"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var code int
			var stderr string
			testbound.Within(t, 30*time.Second, strings.Join(tc.args, " "), func() {
				code, _, stderr = runCLI(t, "", append(tc.args, target...)...)
			})
			if code != 3 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 3 (unreachable target) and one line with %q", code, stderr, tc.want)
			}
		})
	}
	if code, _, stderr := runCLI(t, "", append([]string{"discover", "--connect-timeout", "-1s"}, target...)...); code != 2 || !strings.Contains(stderr, "--connect-timeout") {
		t.Errorf("negative --connect-timeout: exit %d, %q; want a usage error (2) naming the flag", code, stderr)
	}
}
