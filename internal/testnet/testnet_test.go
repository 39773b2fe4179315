package testnet

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestServeAndClosedPort(t *testing.T) {
	addr := Serve(t, func(nc net.Conn) { _, _ = io.WriteString(nc, "hi") })
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, _ := io.ReadAll(nc) // the handler's return closes the connection
	if string(b) != "hi" {
		t.Errorf("read %q, want the handler's \"hi\"", b)
	}
	if c, err := net.Dial("tcp", ClosedPort(t)); err == nil {
		c.Close()
		t.Error("ClosedPort accepted a connection")
	}
}

func TestSYNDrop(t *testing.T) {
	addr := SYNDrop(t)
	// Not refused, not accepted: the dial ends only at its own timeout.
	nc, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err == nil {
		nc.Close()
		t.Fatal("a dial to SYNDrop's address was answered")
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("dial: %v, want a timeout", err)
	}
}
