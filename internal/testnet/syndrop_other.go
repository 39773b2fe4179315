//go:build !linux

package testnet

import "testing"

// SYNDrop skips the test: filling a listener's accept queue to make the
// kernel drop SYNs is what Linux does; other systems may answer with a
// reset instead.
func SYNDrop(tb testing.TB) string {
	tb.Helper()
	tb.Skip("testnet.SYNDrop needs Linux")
	return ""
}
