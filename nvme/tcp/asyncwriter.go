package tcp

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// LingerTimeout bounds how long closing an AsyncWriter waits for queued
// bytes (a Disconnect's response, a TermReq) to reach a peer that does not
// read them.
const LingerTimeout = time.Second

// ErrWriteStalled is the error of an AsyncWriter whose peer took none of
// the queued bytes for the stall timeout (see SetStallTimeout): the peer
// stopped reading, and the connection has been closed.
var ErrWriteStalled = errors.New("nvme/tcp: peer stopped reading: write stalled")

// AsyncWriter is a net.Conn whose Write never waits for a peer that is not
// reading, up to a bound: it writes what the socket takes at once (a
// non-blocking write, so a write that fits costs one system call as
// before) and queues the rest for a writer goroutine that exists only while
// something is queued. Give it to NewConn as the connection.
//
// Both sides need it because each runs a receive loop that also sends:
// the target flushes responses and C2HData, the host answers R2Ts with
// H2CData. Had a loop blocked writing to a peer whose own loop is blocked
// writing back (both socket buffers full, each side waiting for the other
// to read), the association would hang; TestStressMixedLargeIO in
// initiator reproduces exactly that without it. A well-behaved peer has at
// most a queue's worth of data outstanding, so what waits here is bounded
// by the limit; a peer that sends more without reading gets back-pressure:
// Write then waits. With a stall timeout (SetStallTimeout) that wait, and
// every wait for the peer, is bounded: a peer that takes no byte for that
// long is cut off (ErrWriteStalled) and the connection closed, so neither
// Write nor Close waits for ever on a peer that stopped reading.
type AsyncWriter struct {
	net.Conn
	rc syscall.RawConn // nil: every write goes through the writer goroutine

	mu      sync.Mutex
	drained sync.Cond // signalled when the writer makes progress or stops
	backlog []byte    // accepted, not yet written, in order
	spare   []byte
	writing bool // the writer goroutine is running
	err     error
	limit   int
	closed  bool
	stall   time.Duration // 0: wait for the peer as long as it takes
	linger  time.Time     // set by Close: the drain gives up then

	// state of tryWrite's callback, set up once so a write allocates
	// nothing (Write is never called concurrently)
	try tryState
}

// keepBacklog is the largest backlog buffer kept once drained.
const keepBacklog = 1 << 20

// NewAsyncWriter wraps nc; limit bounds the bytes queued for the writer
// goroutine before Write waits.
func NewAsyncWriter(nc net.Conn, limit int) *AsyncWriter {
	w := &AsyncWriter{Conn: nc, limit: limit}
	w.drained.L = &w.mu
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && canTryWrite {
			w.rc = rc
			w.try.fn = w.try.write
		}
	}
	return w
}

// SetLimit changes how much may wait for the writer goroutine.
func (w *AsyncWriter) SetLimit(n int) {
	w.mu.Lock()
	w.limit = n
	w.drained.Broadcast()
	w.mu.Unlock()
}

// SetStallTimeout bounds how long the writer goroutine waits for a peer
// that takes none of the queued bytes (0, the default: no bound). A peer
// that reads slowly but keeps reading is not stalled: the bound restarts
// with every byte it takes. When it expires the writer fails with
// ErrWriteStalled and closes the connection, which also ends a reader
// blocked on it.
func (w *AsyncWriter) SetStallTimeout(d time.Duration) {
	w.mu.Lock()
	w.stall = d
	w.mu.Unlock()
}

// Write accepts all of b unless the connection failed. It must not be
// called from two goroutines at once (Conn never does).
func (w *AsyncWriter) Write(b []byte) (int, error) {
	total := len(b)
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	if len(w.backlog) == 0 && !w.writing && w.rc != nil {
		w.mu.Unlock()
		n, err := w.try.run(w.rc, b)
		if err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
			return n, err
		}
		if n == len(b) {
			return n, nil
		}
		b = b[n:]
		w.mu.Lock()
	}
	// Wait while what is queued and b together exceed the limit, so the
	// backlog stays within max(limit, len(b)); an empty backlog always
	// takes b, or a b larger than the limit would never go.
	for w.err == nil && w.writing && len(w.backlog) > 0 && len(w.backlog)+len(b) > w.limit {
		w.drained.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return total - len(b), err
	}
	w.backlog = append(w.backlog, b...)
	if !w.writing {
		w.writing = true
		go w.drain()
	}
	w.mu.Unlock()
	return total, nil
}

// drain writes the backlog out, blocking, and ends when it is empty.
func (w *AsyncWriter) drain() {
	w.mu.Lock()
	for len(w.backlog) > 0 && w.err == nil {
		out := w.backlog
		w.backlog = w.spare[:0]
		err := w.writeOut(out)
		w.spare = out[:0]
		if err != nil && w.err == nil {
			w.err = err
		}
		w.drained.Broadcast()
	}
	if cap(w.backlog) > keepBacklog {
		w.backlog = nil
	}
	if cap(w.spare) > keepBacklog {
		w.spare = nil
	}
	stalled := errors.Is(w.err, ErrWriteStalled)
	if w.stall > 0 && !w.closed && !stalled {
		// The non-blocking writes in Write check the deadline too: one
		// left behind would fail the next of them.
		_ = w.Conn.SetWriteDeadline(time.Time{})
	}
	w.writing = false
	w.drained.Broadcast()
	w.mu.Unlock()
	if stalled {
		// Wake a reader blocked on the connection: it is over.
		_ = w.Conn.Close()
	}
}

// writeOut writes out in full, blocking; called and returns with w.mu
// held, which it releases while writing. With a stall timeout each write
// gets a deadline that moves on as long as the peer takes bytes; after
// Close, the linger deadline is final.
func (w *AsyncWriter) writeOut(out []byte) error {
	for len(out) > 0 {
		var dl time.Time
		switch {
		case w.closed:
			dl = w.linger
		case w.stall > 0:
			dl = time.Now().Add(w.stall)
		}
		if !dl.IsZero() {
			// Under w.mu, so Close's linger deadline is never overwritten
			// by a later, longer one.
			_ = w.Conn.SetWriteDeadline(dl)
		}
		w.mu.Unlock()
		n, err := w.Conn.Write(out)
		w.mu.Lock()
		out = out[n:]
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if w.closed {
			return err // lingered long enough
		}
		if n == 0 {
			return ErrWriteStalled
		}
		// The peer took some: it is slow, not stalled.
	}
	return nil
}

// Close gives queued bytes up to LingerTimeout to go out, then closes the
// connection and waits for the writer goroutine to end.
func (w *AsyncWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.linger = time.Now().Add(LingerTimeout)
	if w.writing && w.err == nil {
		_ = w.Conn.SetWriteDeadline(w.linger)
	}
	for w.writing {
		w.drained.Wait()
	}
	if w.err == nil {
		w.err = net.ErrClosed
	}
	w.mu.Unlock()
	return w.Conn.Close()
}
