package target

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// raiseNOFILE lifts the soft open-file limit to the hard one so that a test
// holding both ends of many connections in one process has descriptors.
func raiseNOFILE(t testing.TB, need uint64) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	if r.Cur < need {
		t.Skipf("RLIMIT_NOFILE %d < %d", r.Cur, need)
	}
}

// openFDs counts this process's open descriptors (-1 where /proc is absent).
func openFDs() int {
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(d)
}

// heapAndStacks is the memory the Go runtime holds for live objects and
// goroutine stacks after a collection.
func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// rawAssoc is the smallest host there is: the bytes of an ICReq and an
// admin Connect written at once, the ICResp and Connect response read into
// a shared buffer. It costs a socket and nothing else, so a memory figure
// taken over many of them is (almost) all the target's.
type rawAssoc struct {
	icreq, connect []byte
}

func newRawAssoc(subnqn, hostnqn string) *rawAssoc {
	a := nvme.Connect{QID: 0, SQSIZE: 31}
	sqe := a.SQE(1)
	sqe.Flags |= nvme.PSDTSGL
	d := nvme.ConnectData{HostID: testHostID, CNTLID: nvme.CNTLIDDynamic, SubNQN: subnqn, HostNQN: hostnqn}
	data := d.Append(nil)
	sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLDataBlockOffset}
	return &rawAssoc{
		icreq:   tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{}),
		connect: tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, data, tcp.EncodeOptions{}),
	}
}

// open dials addr and sets up an admin queue; it returns the socket and the
// Connect status.
func (r *rawAssoc) open(addr string, buf []byte) (net.Conn, nvme.Status, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write(append(append([]byte(nil), r.icreq...), r.connect...)); err != nil {
		nc.Close()
		return nil, 0, err
	}
	if _, err := io.ReadFull(nc, buf[:128+24]); err != nil {
		nc.Close()
		return nil, 0, err
	}
	if buf[0] != byte(tcp.TypeICResp) || buf[128] != byte(tcp.TypeCapsuleResp) {
		nc.Close()
		return nil, 0, fmt.Errorf("unexpected PDUs %#x %#x", buf[0], buf[128])
	}
	st := nvme.Status(binary.LittleEndian.Uint16(buf[128+8+14:]) >> 1)
	_ = nc.SetDeadline(time.Time{})
	return nc, st, nil
}

func limitsConfig() Config {
	c := testConfig()
	// 1000 associations on one target, all from 127.0.0.1 and one host
	// NQN, and a long IC timeout so that a slow machine does not close
	// connections the test is still setting up.
	c.ICTimeout = time.Minute
	c.MaxConnections, c.MaxConnectionsPerAddress, c.MaxAssociationsPerHost = 0, 0, 0
	return c
}

func (tg *Target) counts() (queues, ctrls int) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.queues), len(tg.ctrls)
}

func waitCounts(t testing.TB, tg *Target, queues, ctrls int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		q, c := tg.counts()
		if q == queues && c == ctrls {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("target holds %d queues and %d controllers, want %d and %d", q, c, queues, ctrls)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGoroutines waits for the goroutine count to fall to at most n.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, targetGoroutines())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitFDs(t testing.TB, n int) {
	t.Helper()
	if n < 0 {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for openFDs() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d open descriptors, want at most %d", openFDs(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// maxIdleConnBytes bounds what one idle association (connection, queue,
// controller) may cost. Measured: about 31 KiB, of which 16 KiB is the
// connection's read buffer (readBuffer), the rest the receive goroutine's
// stack, the few command slots used (made on demand), the controller (its
// error log) and both ends' socket objects (0.6 KiB). A queue's write
// backlog and data buffers are allocated only while used.
const maxIdleConnBytes = 64 << 10

// TestThousandConnections holds 1000 idle associations (ICReq and admin
// Connect done, nothing else) on one target, measures the memory each costs,
// checks that a live host is still served at full function, and that
// closing them all leaves no goroutine, descriptor, queue or controller.
func TestThousandConnections(t *testing.T) {
	const n = 1000
	raiseNOFILE(t, 2*n+256)
	tg := startTarget(t, limitsConfig())
	addr := tg.Addrs()[0].String()
	ra := newRawAssoc(testNQN, testHost)

	// Warm up (first connection allocates the listener's and runtime's
	// lazily built state), then take the baseline.
	warm, _, err := ra.open(addr, make([]byte, 256))
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()
	waitCounts(t, tg, 0, 0)
	g0, fd0 := runtime.NumGoroutine(), openFDs()
	m0 := heapAndStacks()

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	const dialers = 16
	for w := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for i := w; i < n; i += dialers {
				nc, st, err := ra.open(addr, buf)
				if err == nil && st != nvme.StatusSuccess {
					err = fmt.Errorf("connect status %v", st)
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = nc
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitCounts(t, tg, n, n)
	m1 := heapAndStacks()
	per := (int64(m1) - int64(m0)) / n
	t.Logf("%d idle associations: %d goroutines (+%d), %d descriptors (+%d), %.1f KiB each (heap + stacks, both socket ends included)",
		n, runtime.NumGoroutine(), runtime.NumGoroutine()-g0, openFDs(), openFDs()-fd0, float64(per)/1024)
	if per > maxIdleConnBytes {
		t.Errorf("an idle association costs %d bytes, bound %d", per, maxIdleConnBytes)
	}

	// For scale: the same number of bare TCP connections (both ends held,
	// nothing sent) to a listener that only accepts.
	sock := socketCost(t, n)
	t.Logf("of which the two socket ends (bare TCP baseline): %.1f KiB; the target's own state: %.1f KiB",
		float64(sock)/1024, float64(per-sock)/1024)

	// A host that comes now is served in full.
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, tcp.DgstHeader|tcp.DgstData)
	w := make([]byte, 4096)
	for i := range w {
		w[i] = byte(i * 7)
	}
	mustOK(t, q.exec(nvme.WriteCmd(1, 0, 8), w, false, nil))
	r := make([]byte, 4096)
	mustOK(t, q.exec(nvme.ReadCmd(1, 0, 8), nil, false, r))
	if string(r) != string(w) {
		t.Fatal("read back differs with 1000 idle associations")
	}
	a.nc.Close()
	q.nc.Close()

	for _, nc := range conns {
		nc.Close()
	}
	waitCounts(t, tg, 0, 0)
	waitGoroutines(t, g0)
	waitFDs(t, fd0)
}

// TestConnectionStorm connects and disconnects in loops from several
// goroutines, in every way a host leaves: Disconnect, closing the socket
// after Connect, closing in the middle of a PDU, never sending ICReq, and
// I/O queues whose admin queue goes first. Afterwards the target holds no
// queue, controller, goroutine or descriptor more than before, and its
// memory is back near where it started.
func TestConnectionStorm(t *testing.T) {
	raiseNOFILE(t, 1024)
	cfg := limitsConfig()
	cfg.ICTimeout = 200 * time.Millisecond // the silent ones
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[0]
	ra := newRawAssoc(testNQN, testHost)
	warm, _, err := ra.open(addr.String(), make([]byte, 256))
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()
	waitCounts(t, tg, 0, 0)
	g0, fd0 := runtime.NumGoroutine(), openFDs()
	m0 := heapAndStacks()

	const workers, rounds = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for i := range rounds {
				if err := stormRound(addr.String(), ra, (w+i)%5, buf); err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitCounts(t, tg, 0, 0)
	waitGoroutines(t, g0)
	waitFDs(t, fd0)
	m1 := heapAndStacks()
	t.Logf("storm of %d connections: goroutines %d -> %d, descriptors %d -> %d, heap+stacks %+d KiB",
		workers*rounds, g0, runtime.NumGoroutine(), fd0, openFDs(), (int64(m1)-int64(m0))/1024)
	if int64(m1)-int64(m0) > 8<<20 {
		t.Errorf("memory grew by %d bytes over the storm", int64(m1)-int64(m0))
	}
}

func stormRound(addr string, ra *rawAssoc, kind int, buf []byte) error {
	switch kind {
	case 0: // Connect, then a Disconnect the admin queue refuses, then close
		nc, st, err := ra.open(addr, buf)
		if err != nil {
			return err
		}
		defer nc.Close()
		if st != nvme.StatusSuccess {
			return fmt.Errorf("connect %v", st)
		}
		sqe := nvme.DisconnectCmd(2)
		if _, err := nc.Write(tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, nil, tcp.EncodeOptions{})); err != nil {
			return err
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(nc, buf[:24]); err != nil {
			return fmt.Errorf("disconnect response: %w", err)
		}
		// NVMe Base 2.2 6.4: a Disconnect on an Admin Queue is aborted
		// with Invalid Queue Type; the host then drops the connection.
		if st := nvme.Status(binary.LittleEndian.Uint16(buf[8+14:]) >> 1); st.Code() != nvme.StatusInvalidQueueType {
			return fmt.Errorf("admin-queue Disconnect: %v", st)
		}
	case 1: // Connect, then drop the socket
		nc, _, err := ra.open(addr, buf)
		if err != nil {
			return err
		}
		nc.Close()
	case 2: // half a Connect capsule, then drop
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		_, _ = nc.Write(ra.icreq)
		_, _ = nc.Write(ra.connect[:40])
		nc.Close()
	case 3: // never send ICReq: the IC timeout closes it
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Read(buf); err == nil {
			return fmt.Errorf("silent connection got data")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return fmt.Errorf("silent connection not closed by the IC timeout")
		}
	case 4: // admin and an I/O queue; the admin queue goes first
		nc, st, err := ra.open(addr, buf)
		if err != nil {
			return err
		}
		if st != nvme.StatusSuccess {
			nc.Close()
			return fmt.Errorf("connect %v", st)
		}
		cntlid := binary.LittleEndian.Uint16(buf[128+8:])
		// Enable the controller: I/O queues need CC.EN.
		en := nvme.PropertySetCmd(2, nvme.PropCC, false, ccEnable)
		if _, err := nc.Write(tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: en}, nil, tcp.EncodeOptions{})); err != nil {
			nc.Close()
			return err
		}
		if _, err := io.ReadFull(nc, buf[:24]); err != nil {
			nc.Close()
			return fmt.Errorf("property set: %w", err)
		}
		io1, err := net.Dial("tcp", addr)
		if err != nil {
			nc.Close()
			return err
		}
		defer io1.Close()
		a := nvme.Connect{QID: 1, SQSIZE: 31}
		sqe := a.SQE(1)
		sqe.Flags |= nvme.PSDTSGL
		d := nvme.ConnectData{HostID: testHostID, CNTLID: cntlid, SubNQN: testNQN, HostNQN: testHost}
		data := d.Append(nil)
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLDataBlockOffset}
		_, _ = io1.Write(append(append([]byte(nil), ra.icreq...), tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, data, tcp.EncodeOptions{})...))
		_ = io1.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(io1, buf[:128+24]); err != nil {
			nc.Close()
			return fmt.Errorf("I/O queue connect: %w", err)
		}
		if st := nvme.Status(binary.LittleEndian.Uint16(buf[128+8+14:]) >> 1); st != nvme.StatusSuccess {
			nc.Close()
			return fmt.Errorf("I/O queue connect: %v", st)
		}
		nc.Close()
		// Ending the association ends its I/O queues.
		if err := readEOF(io1, buf); err != nil {
			return fmt.Errorf("I/O queue after its admin queue closed: %w", err)
		}
	}
	return nil
}

// readEOF expects the peer to close nc.
func readEOF(nc net.Conn, buf []byte) error {
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := nc.Read(buf)
	switch ne, ok := err.(net.Error); {
	case err == nil:
		return fmt.Errorf("%d unexpected bytes", n)
	case ok && ne.Timeout():
		return fmt.Errorf("not closed")
	}
	return nil
}

// TestHostilePeers: every way a peer can hold a connection without making
// progress is bounded by a configured timeout or limit.
func TestHostilePeers(t *testing.T) {
	cfg := testConfig()
	cfg.ICTimeout = 100 * time.Millisecond
	cfg.IdleTimeout = 300 * time.Millisecond
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[0]
	ra := newRawAssoc(testNQN, testHost)
	buf := make([]byte, 256)

	t.Run("no ICReq", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := readEOF(nc, buf); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("half an ICReq", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_, _ = nc.Write(ra.icreq[:60])
		if err := readEOF(nc, buf); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ICReq but no Connect", func(t *testing.T) {
		c := dial(t, addr, 0)
		start := time.Now()
		c.expectClosed()
		if time.Since(start) > 5*time.Second {
			t.Fatal("closed late")
		}
	})
	t.Run("refused Connect then silence", func(t *testing.T) {
		c := dial(t, addr, 0)
		wantStatus(t, c.exec(connectSQE(0, 31, 0, 0), connectData("nqn.2014-08.io.nvmftest:nope", testHost, nvme.CNTLIDDynamic), true, nil),
			nvme.StatusConnectInvalidParameters)
		c.expectClosed()
	})
	t.Run("partial PDU after Connect", func(t *testing.T) {
		c := dial(t, addr, 0)
		mustOK(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0))
		b := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.KeepAliveCmd()}, nil, tcp.EncodeOptions{})
		_ = c.conn.SendRaw(b[:30])
		c.expectClosed()
	})
	t.Run("KATO 0 and silent", func(t *testing.T) {
		// No keep alive timer: the idle timeout ends the association.
		c := dial(t, addr, 0)
		mustOK(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0))
		c.expectClosed()
	})
	t.Run("idle I/O queue of a kept-alive association", func(t *testing.T) {
		// Keep alive covers the association, and a host may leave an I/O
		// queue silent (Linux does): idle_timeout must not close it.
		a := admin(t, addr, testNQN, 2000)
		q := ioQueue(t, addr, a.cntlid, 1, 0)
		for range 6 { // 1.2 s: four idle timeouts; the admin queue talks
			time.Sleep(200 * time.Millisecond)
			mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
		}
		mustOK(t, q.exec(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)))
	})
	t.Run("partial PDU on an I/O queue of a kept-alive association", func(t *testing.T) {
		a := admin(t, addr, testNQN, 2000)
		q := ioQueue(t, addr, a.cntlid, 1, 0)
		b := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.ReadCmd(1, 0, 1)}, nil, tcp.EncodeOptions{})
		_ = q.conn.SendRaw(b[:30])
		done := make(chan struct{})
		go func() { // the host stays alive meanwhile
			for {
				select {
				case <-done:
					return
				case <-time.After(200 * time.Millisecond):
					_, _ = a.try(nvme.KeepAliveCmd(), nil, false, nil)
				}
			}
		}()
		defer close(done)
		q.expectClosed()
	})
	t.Run("KATO above max_kato", func(t *testing.T) {
		// A KATO below min_kato is raised to it, not refused:
		// TestKATORaisedToMinKATO.
		cfg := testConfig()
		cfg.MinKATO, cfg.MaxKATO = time.Second, time.Minute
		tg := startTarget(t, cfg)
		c := dial(t, tg.Addrs()[0], 0)
		wantStatus(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, 3600000), nvme.StatusConnectInvalidParameters)
	})
	// Exceeding the queue depth and H2CData outside an R2T are fatal
	// errors (C2HTermReq): TestMalformedPDUs.

	// A host that keeps talking is not cut off.
	a := admin(t, addr, testNQN, 0)
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
	}
}

// socketCost measures what n bare loopback connections cost per
// connection, both ends held in this process.
func socketCost(t *testing.T, n int) int64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var server []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			server = append(server, c)
		}
	}()
	m0 := heapAndStacks()
	client := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		client = append(client, c)
	}
	<-done
	m1 := heapAndStacks()
	for _, c := range append(client, server...) {
		c.Close()
	}
	return (int64(m1) - int64(m0)) / int64(n)
}
