package interrupt

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestWatch: a SIGINT sent to the process cancels the context with the
// signal as its cause; a context ended otherwise names no signal.
func TestWatch(t *testing.T) {
	ctx, stop := Watch(context.Background())
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not cancel the context")
	}
	if sig := Signal(ctx); sig != syscall.SIGINT || ExitStatus(sig) != 130 {
		t.Fatalf("Signal = %v, ExitStatus %d; want interrupt, 130", sig, ExitStatus(sig))
	}
	other, stop2 := Watch(context.Background())
	stop2()
	if sig := Signal(other); sig != nil {
		t.Fatalf("a stopped watch names signal %v", sig)
	}
	var unset context.Context // a run that never watched (suites keeps one)
	if ExitStatus(syscall.SIGTERM) != 143 || Signal(unset) != nil {
		t.Fatal("SIGTERM is not 143, or an unset context names a signal")
	}
}
