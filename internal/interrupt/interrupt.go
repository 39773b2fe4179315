// Package interrupt turns SIGINT and SIGTERM into the cancellation of a
// context, so that whoever runs under it can tell "stopped by the user"
// from any other end and name the signal: the command line (exit status
// 128 + the signal's number) and the conformance run (which records the
// interruption instead of failing the check it stopped).
package interrupt

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// caught is the cancel cause of Watch's context.
type caught struct{ sig os.Signal }

func (c caught) Error() string { return "interrupted by signal (" + c.sig.String() + ")" }

// Watch returns a child of parent that is cancelled, with the signal as
// its cause, on the first SIGINT or SIGTERM. Only the first is caught:
// after it a second one does what it would without Watch (ends the
// process unless someone else listens), as users expect of a second
// Ctrl-C. stop ends the watch and cancels the context.
func Watch(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(caught{s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// Signal is the signal that cancelled ctx (a context from Watch, or one
// derived from it), or nil.
func Signal(ctx context.Context) os.Signal {
	if ctx == nil {
		return nil
	}
	var c caught
	if errors.As(context.Cause(ctx), &c) {
		return c.sig
	}
	return nil
}

// ExitStatus is the exit status of a process cut short by sig, as shells
// report it: 128 plus the signal's number (130 for SIGINT, 143 for
// SIGTERM).
func ExitStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}
