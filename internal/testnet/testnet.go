// Package testnet serves fake peers on loopback for tests: a listener that
// hands every connection to a handler and is torn down, handlers
// included, when the test ends.
package testnet

import (
	"net"
	"sync"
	"testing"
)

// Serve listens on a free loopback port and runs handle on every
// connection it accepts, each in its own goroutine, closing the
// connection when handle returns. When the test ends the listener is
// closed and Serve waits for every handler to return. It returns the
// listener's host:port.
func Serve(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				handle(nc)
			}()
		}
	}()
	return ln.Addr().String()
}

// ClosedPort returns a loopback host:port nothing listens on (it was free
// a moment ago).
func ClosedPort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
