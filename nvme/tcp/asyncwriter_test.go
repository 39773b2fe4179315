package tcp

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
)

// tcpPair returns both ends of a loopback TCP connection, with small
// socket buffers if small (a peer that does not read fills them quickly).
func tcpPair(t *testing.T, small bool) (local, peer *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := <-acc
	if p == nil {
		t.Fatal("accept failed")
	}
	local, peer = c.(*net.TCPConn), p.(*net.TCPConn)
	if small {
		_ = local.SetWriteBuffer(8 << 10)
		_ = peer.SetReadBuffer(8 << 10)
	}
	t.Cleanup(func() { local.Close(); peer.Close() })
	return local, peer
}

// TestAsyncWriterStallTimeout: a peer that stops reading leaves Write
// waiting for at most the stall timeout; then Write fails with
// ErrWriteStalled and the connection is closed, so a reader blocked on it
// (the receive loop) ends too, and Close does not wait.
func TestAsyncWriterStallTimeout(t *testing.T) {
	for _, kind := range []string{"tcp", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			var local net.Conn
			if kind == "tcp" {
				local, _ = tcpPair(t, true)
			} else {
				a, b := net.Pipe() // b never reads
				t.Cleanup(func() { a.Close(); b.Close() })
				local = a
			}
			w := NewAsyncWriter(local, 64<<10)
			w.SetStallTimeout(200 * time.Millisecond)
			readerDone := make(chan error, 1)
			go func() {
				_, err := local.Read(make([]byte, 1))
				readerDone <- err
			}()
			chunk := make([]byte, 16<<10)
			var werr error
			testbound.Within(t, 15*time.Second, "Write to a peer that does not read", func() {
				for werr == nil {
					_, werr = w.Write(chunk)
				}
			})
			if !errors.Is(werr, ErrWriteStalled) {
				t.Fatalf("Write: %v, want ErrWriteStalled", werr)
			}
			select {
			case <-readerDone:
			case <-time.After(10 * time.Second):
				t.Fatal("a reader blocked on the stalled connection was not woken")
			}
			testbound.Within(t, 10*time.Second, "Close", func() { _ = w.Close() })
		})
	}
}

// TestAsyncWriterSlowReaderNotStalled: a peer that reads slowly but keeps
// reading is never cut off, however long the whole transfer takes.
func TestAsyncWriterSlowReaderNotStalled(t *testing.T) {
	// Default socket buffers: tiny ones make loopback TCP stall on its
	// own (zero-window probes back off from 200 ms).
	local, peer := tcpPair(t, false)
	w := NewAsyncWriter(local, 32<<10)
	w.SetStallTimeout(300 * time.Millisecond)
	const total = 16 << 20
	got := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 128<<10)
		for n < total {
			time.Sleep(10 * time.Millisecond) // at most 12.8 MB/s: over a second in all
			m, err := peer.Read(buf)
			n += m
			if err != nil {
				break
			}
		}
		got <- n
	}()
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < total; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatalf("after %d bytes: %v", sent, err)
		}
	}
	select {
	case n := <-got:
		if n != total {
			t.Fatalf("peer read %d bytes, want %d", n, total)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("slow reader did not get everything")
	}
	_ = w.Close()
}

// TestTerminateBounded: Terminate gives a peer that does not read
// LingerTimeout to take the TermReq, also while another goroutine is
// blocked sending to it, and then closes: it never waits for ever.
func TestTerminateBounded(t *testing.T) {
	a, b := net.Pipe() // b never reads
	t.Cleanup(func() { a.Close(); b.Close() })
	c := NewConn(a, true, Config{})
	sendDone := make(chan error, 1)
	go func() { sendDone <- c.Send(&CapsuleResp{}, make([]byte, 0)) }() // blocks: nobody reads
	time.Sleep(50 * time.Millisecond)
	testbound.Within(t, 10*LingerTimeout, "Terminate", func() {
		_ = c.Terminate(&FatalError{FES: FESPDUSequenceError})
	})
	select {
	case <-sendDone:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked on the peer still waits after Terminate")
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF && err != io.ErrClosedPipe {
		t.Logf("peer read after Terminate: %v", err)
	}
}
