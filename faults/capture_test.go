package faults

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// comments reads every packet comment of a pcapng trace.
func comments(t *testing.T, path string) []string {
	t.Helper()
	s, err := capture.Summarize(path)
	if err != nil {
		t.Fatal(err)
	}
	return s.Comments
}

// Every fault applied shows in the host side's trace where it happened.
func TestCaptureAnnotatesFaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.pcapng")
	f, err := capture.CreateFile(path, "faults")
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, echo(t))
	p.SetCapture(f)
	c := dial(t, p)
	pdu := make([]byte, 64)
	pdu[0], pdu[2], pdu[4] = 7, 24, 64
	if err := roundTrip(c, pdu, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetDelay(ToHost, time.Millisecond, 0)
	if err := p.Corrupt(ToHost, Corruption{PDUType: 7, Offset: 30}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(pdu)
	back := make([]byte, len(pdu))
	if _, err := io.ReadFull(c, back); err != nil || bytes.Equal(back, pdu) {
		t.Fatalf("corrupted echo: %v", err)
	}
	p.SetBlackhole(true)
	p.SetBlackhole(false)
	p.SetDrop(ToTarget, true)
	p.SetDrop(ToTarget, false)
	p.Reset()
	for p.Conns() > 0 {
		time.Sleep(time.Millisecond)
	}
	// Down and up: a connection while down is reset at once, the first
	// after it came back carries the note.
	p.SetDown(true)
	// The reset may come before the dial returns.
	if down, err := net.Dial("tcp", p.Addr().String()); err == nil {
		if _, err := down.Read(make([]byte, 1)); err == nil {
			t.Fatal("read through a down path")
		}
		down.Close()
	}
	p.SetDown(false)
	c2 := dial(t, p)
	if err := roundTrip(c2, pdu, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	for p.Conns() > 0 {
		time.Sleep(time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(comments(t, path), "\n")
	for _, want := range []string{
		"nvmftest proxy: host side, forwarded to ",
		"fault: delay to-host 1ms jitter 0s",
		"fault: corruption armed to-host: PDU type 7 offset 30",
		"fault: byte flipped at PDU offset 30 (PDU type 0x07, mask 0xff, to-host)",
		"fault: blackhole: both directions stall",
		"fault: blackhole off",
		"fault: drop to-target: bytes discarded",
		"fault: drop to-target off",
		"fault: reset: connection ended with RST",
		"fault: path down: connection reset at once",
		"fault: path up at ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no comment %q in:\n%s", want, got)
		}
	}
}
