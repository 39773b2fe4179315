package tcp

import (
	"net"
	"runtime"
	"syscall"
	"time"
)

// DefaultPollIdle is how long a polling connection spins on its socket
// after the last bytes arrived before it parks in the runtime's poller
// like any other connection.
const DefaultPollIdle = time.Millisecond

// NewPollConn wraps nc so that Read polls: it tries the socket without
// blocking, over and over, instead of parking the goroutine until the
// runtime's poller sees data. That is what SPDK does on every socket and
// what fio's --hipri asks of a kernel queue: no wake-up between a packet's
// arrival and the reader running, at the price of a core that spins. A
// wake-up costs a few microseconds on each side of every exchange, which
// at queue depth 1 is most of the latency.
//
// The spinning stops idle after the last bytes arrived: a connection with
// nothing to read for that long parks as usual until data comes, so an
// idle association does not hold a core. idle <= 0 means DefaultPollIdle.
// Read deadlines and Close work as on nc. A connection that is not a
// socket (a test pipe, a capture wrapper) is returned unchanged.
func NewPollConn(nc net.Conn, idle time.Duration) net.Conn {
	sc, ok := nc.(syscall.Conn)
	if !ok || !canPoll {
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	if idle <= 0 {
		idle = DefaultPollIdle
	}
	c := &PollConn{Conn: nc, rc: rc, idle: idle}
	c.try.fn = c.try.read
	return c
}

// PollConn is a connection whose Read polls (see NewPollConn).
type PollConn struct {
	net.Conn
	rc      syscall.RawConn
	idle    time.Duration
	try     pollRead // Read is never called concurrently
	onEmpty func()
}

// SetOnEmpty has Read call f, on the reading goroutine, each time it finds
// the socket empty and is about to spin (once per Read). A reader that
// holds its sends back while it works through what arrived (tcp.Conn's
// Cork) flushes them there: at the moment it would otherwise wait, and
// not sooner, so at queue depth 32 the sends of a burst that arrives in
// pieces still leave together. Set it before the first Read.
func (c *PollConn) SetOnEmpty(f func()) { c.onEmpty = f }

// SyscallConn gives the socket, so an AsyncWriter over a PollConn still
// writes without a goroutine.
func (c *PollConn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Read implements net.Conn.
func (c *PollConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var since time.Time
	for spins := 0; ; spins++ {
		n, again, err := c.try.run(c.rc, p)
		if !again {
			return n, err
		}
		if spins == 0 && c.onEmpty != nil {
			c.onEmpty()
		}
		// Nothing there yet. Look at the clock only now and then: a
		// try costs a system call, a clock read a good part of one.
		if spins&31 == 31 {
			now := time.Now()
			if since.IsZero() {
				since = now
			} else if now.Sub(since) > c.idle {
				// Idle: block in the poller until data, a deadline or
				// Close.
				return c.Conn.Read(p)
			}
		}
		// Let the goroutines sharing this P run (the writer, timers):
		// with GOMAXPROCS=1 nothing else would.
		runtime.Gosched()
	}
}
