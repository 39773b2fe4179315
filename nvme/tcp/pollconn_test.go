package tcp

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestPollConnReads(t *testing.T) {
	if !canPoll {
		t.Skip("no non-blocking raw reads on this platform")
	}
	a, b := tcpPair(t, false)
	p := NewPollConn(b, 0)
	if _, ok := p.(*PollConn); !ok {
		t.Fatalf("NewPollConn(TCP) = %T, want *PollConn", p)
	}
	// Data that arrives while the reader spins, and data that arrives
	// after it gave up spinning and parked.
	for _, wait := range []time.Duration{0, 20 * time.Millisecond} {
		go func() {
			time.Sleep(wait)
			_, _ = a.Write([]byte("hello"))
		}()
		buf := make([]byte, 16)
		n, err := io.ReadAtLeast(p, buf, 5)
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("after %v: read %q, %v", wait, buf[:n], err)
		}
	}
	// A deadline ends a spinning Read with a timeout.
	_ = p.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := p.Read(make([]byte, 4))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = p.SetReadDeadline(time.Time{})
	// The peer's close is EOF.
	a.Close()
	if _, err := p.Read(make([]byte, 4)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}

func TestPollConnCloseUnblocks(t *testing.T) {
	if !canPoll {
		t.Skip("no non-blocking raw reads on this platform")
	}
	_, b := tcpPair(t, false)
	p := NewPollConn(b, time.Hour) // never parks: only Close can end it
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 4))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a polling Read")
	}
}

func TestPollConnNoAllocs(t *testing.T) {
	if !canPoll {
		t.Skip("no non-blocking raw reads on this platform")
	}
	a, b := tcpPair(t, false)
	p := NewPollConn(b, 0)
	msg, buf := []byte("ping"), make([]byte, 4)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per polled read, want 0", allocs)
	}
}

// A pipe is not a socket: nothing to poll, so it comes back as it was.
func TestPollConnNotASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if p := NewPollConn(a, 0); p != a {
		t.Errorf("NewPollConn(pipe) = %T, want the pipe unchanged", p)
	}
}
