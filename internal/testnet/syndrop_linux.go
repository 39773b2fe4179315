//go:build linux

package testnet

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// SYNDrop returns a loopback host:port where the kernel drops every SYN:
// a listener that never accepts, with a backlog of 0 and its accept queue
// filled. A dial to it hangs as one to a host that is down or behind a
// firewall does (the kernel retries its SYN for about two minutes) rather
// than being refused, without root or a real network. It is torn down
// when the test ends.
func SYNDrop(tb testing.TB) string {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	// net.Listen would ask for the system's largest backlog.
	if err := syscall.Listen(fd, 0); err != nil {
		tb.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue (Linux takes backlog+1 connections) until a
	// connect gets no answer: from then on SYNs are dropped.
	for range 64 {
		nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		tb.Cleanup(func() { _ = nc.Close() })
	}
	tb.Fatalf("testnet: %s still accepts connections after 64 with a backlog of 0", addr)
	return ""
}
