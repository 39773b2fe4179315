package target

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// scriptedListener hands out what a test or fuzz input scripts: Accept
// errors of every kind and connections, then blocks until closed.
type scriptedListener struct {
	mu     sync.Mutex
	script []acceptEvent
	closed chan struct{}
	once   sync.Once
	calls  atomic.Int32 // Accept calls
}

type acceptEvent struct {
	err error
	nc  net.Conn
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	l.mu.Lock()
	if len(l.script) > 0 {
		e := l.script[0]
		l.script = l.script[1:]
		l.mu.Unlock()
		return e.nc, e.err
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *scriptedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// FuzzAcceptLoop runs the accept loop under a fuzzed sequence of Accept
// errors (descriptor exhaustion, aborted handshakes, unknown errors) and
// connections (well-behaved, sending garbage, closed at once). Every
// well-behaved connection must be served (ICResp) wherever it falls in
// the sequence, one more after it too, and closing the listener must end
// the loop: an accept loop that gave up on an error left the port dead.
func FuzzAcceptLoop(f *testing.F) {
	f.Add([]byte{0, 4})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{3, 3, 3, 3, 3, 3, 3, 3, 4, 0, 4})
	f.Add([]byte{5, 0xff, 4, 6, 2, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		minB, maxB := acceptBackoffMin, acceptBackoffMax
		acceptBackoffMin, acceptBackoffMax = 10*time.Microsecond, time.Millisecond
		defer func() { acceptBackoffMin, acceptBackoffMax = minB, maxB }()
		cfg := testConfig()
		cfg.ICTimeout = 2 * time.Second
		tg, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ln := &scriptedListener{closed: make(chan struct{})}
		var hosts []net.Conn // well-behaved: must get an ICResp
		var others []func()  // what the other host ends do
		for i := 0; i < len(in) && len(ln.script) < 48; i++ {
			switch in[i] % 7 {
			case 0:
				ln.script = append(ln.script, acceptEvent{err: acceptErr(syscall.EMFILE)})
			case 1:
				ln.script = append(ln.script, acceptEvent{err: acceptErr(syscall.ENFILE)})
			case 2:
				ln.script = append(ln.script, acceptEvent{err: acceptErr(syscall.ECONNABORTED)})
			case 3:
				ln.script = append(ln.script, acceptEvent{err: errors.New("accept: something else")})
			case 4:
				tc, hc := net.Pipe()
				hosts = append(hosts, hc)
				ln.script = append(ln.script, acceptEvent{nc: tc})
			case 5: // garbage, then gone
				tc, hc := net.Pipe()
				n := 0
				if i+1 < len(in) {
					i++
					n = int(in[i])
				}
				junk := append([]byte(nil), in[i:min(len(in), i+n)]...)
				others = append(others, func() {
					_ = hc.SetDeadline(time.Now().Add(time.Second))
					_, _ = hc.Write(junk)
					hc.Close()
				})
				ln.script = append(ln.script, acceptEvent{nc: tc})
			case 6: // closed at once
				tc, hc := net.Pipe()
				hc.Close()
				ln.script = append(ln.script, acceptEvent{nc: tc})
			}
		}
		tc, hc := net.Pipe() // the one after the sequence
		hosts = append(hosts, hc)
		ln.script = append(ln.script, acceptEvent{nc: tc})

		startAcceptLoop(tg, tg.ports[0], ln)
		for _, o := range others {
			go o()
		}
		for i, hc := range hosts {
			c := tcp.NewConn(hc, false, tcp.Config{})
			_ = hc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.HostInitialize(tcp.ICReq{}); err != nil {
				t.Fatalf("well-behaved connection %d of %d not served: %v", i+1, len(hosts), err)
			}
			hc.Close()
		}
		ln.Close()
		testbound.Within(t, 10*time.Second, "Close after the listener closed", func() { _ = tg.Close() })
	})
}
