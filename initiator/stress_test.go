package initiator_test

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/target"
)

// startStressTarget serves a target whose accepted connections get
// socket buffers of sockBuf bytes (0: the kernel's defaults) and returns
// its address.
func startStressTarget(t *testing.T, sockBuf int) string {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.Subsystems = []target.SubsystemConfig{{
		NQN: target.DefaultSubsystemNQN, AllowAnyHost: true,
		Namespaces: []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "4GiB", BlockSize: 4096}},
	}}
	tg, err := target.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			tc := nc.(*net.TCPConn)
			_ = tc.SetNoDelay(true)
			setSockBuf(tc, sockBuf)
			tg.Serve(nc, 1)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		tg.Close()
	})
	return ln.Addr().String()
}

func setSockBuf(tc *net.TCPConn, n int) {
	if n > 0 {
		_ = tc.SetReadBuffer(n)
		_ = tc.SetWriteBuffer(n)
	}
}

// TestStressMixedLargeIO drives 2 I/O queues at queue depth 64 with a
// 50/50 mix of reads and writes, half of them 1 MiB and half 4 KiB, so
// that both directions carry megabytes at once: C2HData from the target
// and H2CData (after R2T) from the host. Each side's receive loop also
// writes; if either blocked writing while its peer blocked writing too,
// nobody would read and the association would hang. Before the target
// queued its writes (target/writer.go) this hung within seconds: the
// host's reader blocked in handleR2T flushing H2CData while the target's
// receive loop blocked flushing C2HData. Five seconds without a completion
// fails the test with every goroutine's stack instead of hanging CI.
//
// The small buffers are set after the connection is up and stay above
// the loopback MSS (64 KiB): with a few KiB the kernel itself stalls the
// connection, which says nothing about our code.
func TestStressMixedLargeIO(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	for _, tc := range []struct {
		name    string
		sockBuf int
		capture bool
		dur     time.Duration
	}{
		{"default-buffers", 0, false, 2 * time.Second},
		{"small-buffers", 128 << 10, false, 2 * time.Second},
		// A recorded connection has no syscall.Conn, so every write goes
		// through the AsyncWriter's goroutine: the same must hold. Short,
		// as every byte is also written to the trace.
		{"small-buffers-captured", 128 << 10, true, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec capture.Recorder
			if tc.capture {
				f, err := capture.CreateFile(filepath.Join(t.TempDir(), "stress.pcapng"), tc.name)
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := f.Close(); err != nil {
						t.Error(err)
					}
				}()
				rec = f
			}
			runStress(t, tc.sockBuf, tc.dur, rec)
		})
	}
}

func runStress(t *testing.T, sockBuf int, dur time.Duration, rec capture.Recorder) {
	addr := startStressTarget(t, sockBuf)
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := initiator.Connect(cctx, addr, target.DefaultSubsystemNQN, initiator.Options{
		NrIOQueues: 2, QueueSize: 128, KATO: -1, Timeout: 30 * time.Second, Capture: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range c.IOQueues() {
		// Queues write through a tcp.AsyncWriter; the socket is inside,
		// under the recorder when capturing.
		nc := q.Conn().NetConn().(*tcp.AsyncWriter).Conn
		if rc, ok := nc.(*capture.Conn); ok {
			nc = rc.NetConn()
		}
		setSockBuf(nc.(*net.TCPConn), sockBuf)
	}

	const depth = 64
	const big, small = 1 << 20, 4 << 10
	ctx, cancelIO := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancelIO()
	stop := time.Now().Add(dur)
	var ops, bytes atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for qi, q := range c.IOQueues() {
		for w := range depth {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, big)
				for i := 0; time.Now().Before(stop); i++ {
					n := small
					if (i+w)%2 == 0 {
						n = big
					}
					slba := uint64((qi*depth+w)*256 + i%64)
					var err error
					if (i/2+w)%2 == 0 {
						_, err = q.Exec(ctx, nvme.ReadCmd(1, slba, uint32(n/4096)), buf[:n], initiator.FromController)
					} else {
						_, err = q.Exec(ctx, nvme.WriteCmd(1, slba, uint32(n/4096)), buf[:n], initiator.ToController)
					}
					if err != nil {
						select {
						case errc <- err:
						default:
						}
						return
					}
					ops.Add(1)
					bytes.Add(int64(n))
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// No completion for stall seconds is a hang: fail with every
	// goroutine's stack before the command timeouts tear the queues down.
	const stall = 5 * time.Second
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := int64(-1), time.Now()
wait:
	for {
		select {
		case <-done:
			break wait
		case now := <-tick.C:
			if n := ops.Load(); n != last {
				last, lastChange = n, now
			} else if now.Sub(lastChange) > stall {
				buf := make([]byte, 8<<20)
				t.Fatalf("no I/O completed for %v after %d ops: hung; goroutines:\n%s", stall, n, buf[:runtime.Stack(buf, true)])
			}
		}
	}
	select {
	case err := <-errc:
		t.Fatalf("after %d ops: %v", ops.Load(), err)
	default:
	}
	t.Logf("%d ops, %d MiB in %v (socket buffers %d)", ops.Load(), bytes.Load()>>20, dur, sockBuf)
	if ops.Load() == 0 {
		t.Fatal("no I/O completed")
	}
}
