// Package targettest starts nvmftest's reference target for tests, as
// net/http/httptest starts servers: one call, closed when the test ends.
package targettest

import (
	"testing"

	"github.com/nvmftest/nvmftest/target"
)

// Start builds the target cfg describes, starts it, and closes it when tb
// and its subtests end (after the test function's own defers). A config or
// listen error fails tb at once.
func Start(tb testing.TB, cfg target.Config, opts ...target.Option) *target.Target {
	tb.Helper()
	tg, err := target.New(cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := tg.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = tg.Close() })
	return tg
}
