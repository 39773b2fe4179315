// Package testbound turns a hang into a test failure. Its bounds are
// generous on purpose (the project's machines are two shared cores, and
// tests run with the race detector): they say "this must not block for
// ever", never "this must be fast". Tests never assert on speed.
package testbound

import (
	"runtime"
	"testing"
	"time"
)

// Within runs f and fails tb, with every goroutine's stack, if f has not
// returned after d. f keeps running if it hangs: the test binary ends it.
func Within(tb testing.TB, d time.Duration, what string, f func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		tb.Fatalf("%s: still blocked after %v\n%s", what, d, buf[:runtime.Stack(buf, true)])
	}
}

// Eventually polls cond every few milliseconds and fails tb if it has not
// held within d.
func Eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
