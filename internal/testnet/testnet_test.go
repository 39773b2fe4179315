package testnet

import (
	"io"
	"net"
	"testing"
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
