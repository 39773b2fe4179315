package target

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/syncbuf"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// sendAll sends capsules without waiting, numbering them from the
// client's CID counter, and returns their CIDs. data[i] is sqes[i]'s
// in-capsule data (nil: none).
func (c *client) sendAll(sqes []nvme.SQE, data [][]byte) []uint16 {
	c.t.Helper()
	var cids []uint16
	for i, sqe := range sqes {
		c.cid++
		sqe.CID = c.cid
		sqe.Flags |= nvme.PSDTSGL
		var d []byte
		if i < len(data) && data[i] != nil {
			d = data[i]
			sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(d)), Type: nvme.SGLDataBlockOffset}
		}
		if err := c.conn.Send(&tcp.CapsuleCmd{SQE: sqe}, d); err != nil {
			c.t.Fatal(err)
		}
		cids = append(cids, sqe.CID)
	}
	return cids
}

// responses reads n response capsules, by CID.
func (c *client) responses(n int) map[uint16]nvme.CQE {
	c.t.Helper()
	got := map[uint16]nvme.CQE{}
	for len(got) < n {
		p, err := c.conn.Next()
		if err != nil {
			c.t.Fatalf("after %d of %d responses: %v", len(got), n, err)
		}
		switch v := p.(type) {
		case *tcp.CapsuleResp:
			got[v.CQE.CID] = v.CQE
		case *tcp.TermReq:
			c.t.Fatalf("C2HTermReq FES %d", v.FES)
		}
	}
	return got
}

func fused(first, second nvme.SQE) []nvme.SQE {
	first.Flags |= nvme.FuseFirst
	second.Flags |= nvme.FuseSecond
	return []nvme.SQE{first, second}
}

// errorLog reads the n newest Error Information log entries, newest
// first.
func errorLog(t *testing.T, a *client, n int) []nvme.ErrorLogEntry {
	t.Helper()
	b := make([]byte, n*nvme.ErrorLogEntrySize)
	mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogError, 0xFFFFFFFF, 0, 0, uint32(len(b))), nil, false, b))
	l := make([]nvme.ErrorLogEntry, n)
	for i := range l {
		if err := l[i].Decode(b[i*nvme.ErrorLogEntrySize:]); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// TestFusedNonNVMCommands: FUSE set on Fabrics and admin capsules (a
// fused Connect pair before Connect, fused Keep Alives, Property Gets,
// Identify, on NVM and discovery controllers, and a Disconnect as the
// second half of a Compare) fails those commands with Invalid Field in
// Command at byte 1 (Connect Invalid Parameters for a Connect), and
// never runs them as a pair: the target used to dereference a nil
// namespace and die.
func TestFusedNonNVMCommands(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	good := admin(t, addr, testNQN, 0)
	gq := ioQueue(t, addr, good.cntlid, 1, 0)

	t.Run("fused Connect pair before Connect", func(t *testing.T) {
		c := dial(t, addr, 0)
		d := connectData(testNQN, testHost, nvme.CNTLIDDynamic)
		cids := c.sendAll(fused(connectSQE(0, 31, 0, 0), connectSQE(0, 31, 0, 0)), [][]byte{d, d})
		r := c.responses(2)
		if st := r[cids[0]].Status.Code(); st != nvme.StatusConnectInvalidParameters || r[cids[0]].DW0 != nvme.ConnectInvalidParam(false, 1) {
			t.Fatalf("first: %v dw0 %#x, want Connect Invalid Parameters at SQE byte 1", r[cids[0]].Status, r[cids[0]].DW0)
		}
		if st := r[cids[1]].Status.Code(); st != nvme.StatusAbortFusedFail {
			t.Fatalf("second: %v, want Abort Fused Fail", r[cids[1]].Status)
		}
		// The connection lives: a plain Connect works.
		mustOK(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0))
	})
	for _, nqn := range []string{testNQN, nvme.DiscoveryNQN} {
		t.Run("fused admin commands on "+nqn, func(t *testing.T) {
			a := admin(t, addr, nqn, 0)
			for _, pair := range [][2]nvme.SQE{
				{nvme.KeepAliveCmd(), nvme.KeepAliveCmd()},
				{nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nvme.PropertyGetCmd(0, nvme.PropCSTS, false)},
				{nvme.KeepAliveCmd(), nvme.AsyncEventRequestCmd()},
			} {
				cids := a.sendAll(fused(pair[0], pair[1]), nil)
				r := a.responses(2)
				if r[cids[0]].Status.Code() != nvme.StatusInvalidField || r[cids[1]].Status.Code() != nvme.StatusAbortFusedFail {
					t.Fatalf("opcodes %#x/%#x: %v, %v; want Invalid Field, Abort Fused Fail",
						pair[0].Opcode, pair[1].Opcode, r[cids[0]].Status, r[cids[1]].Status)
				}
			}
			if nqn == testNQN {
				// The last pair: the first's entry points at byte 1.
				if l := errorLog(t, a, 2); l[1].Status.Code() != nvme.StatusInvalidField || l[1].ParamErrorLocation != 1 ||
					l[1].Opcode != nvme.AdminKeepAlive || l[0].Status.Code() != nvme.StatusAbortFusedFail {
					t.Fatalf("error log %+v", l)
				}
			}
			mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
		})
	}
	t.Run("Disconnect fused to a Compare", func(t *testing.T) {
		q := ioQueue(t, addr, good.cntlid, 2, 0)
		cmp := nvme.CompareCmd(1, 0, 1)
		cids := q.sendAll(fused(cmp, nvme.DisconnectCmd(0)), [][]byte{make([]byte, 512)})
		r := q.responses(2)
		if r[cids[0]].Status.Code() != nvme.StatusAbortFusedFail || r[cids[1]].Status.Code() != nvme.StatusInvalidField {
			t.Fatalf("%v, %v; want Abort Fused Fail, Invalid Field", r[cids[0]].Status, r[cids[1]].Status)
		}
	})
	// The target is alive and the good association untouched.
	mustOK(t, good.exec(nvme.KeepAliveCmd(), nil, false, nil))
	mustOK(t, gq.exec(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)))
}

// panicBackend panics on reads: a stand-in for any bug that panics while
// serving a command.
type panicBackend struct{ Backend }

func (panicBackend) ReadAt([]byte, int64) (int, error) { panic("injected backend panic") }

// TestPanicEndsOnlyItsConnection injects a panic while a command runs,
// on the receive goroutine (memory namespace) and on a worker (a
// namespace whose backend blocks): the panic is logged with its stack,
// that connection ends, and the process, its association's admin queue
// and other hosts go on.
func TestPanicEndsOnlyItsConnection(t *testing.T) {
	var logs syncbuf.Buffer
	tg, err := New(testConfig(), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	tbl := tg.subsys[0].table()
	tbl.get(1).b = panicBackend{tbl.get(1).b} // inline
	tbl.get(2).b = panicBackend{tbl.get(2).b}
	tbl.get(2).blocking = true // on a worker
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	addr := tg.Addrs()[0]
	other := admin(t, addr, testNQN, 0)
	oq := ioQueue(t, addr, other.cntlid, 1, 0)
	mustOK(t, oq.exec(nvme.WriteCmd(1, 0, 1), make([]byte, 512), true, nil))

	a := admin(t, addr, testNQN, 0)
	for i, ns := range []struct {
		nsid uint32
		bs   int
	}{{1, 512}, {2, 4096}} {
		nsid := ns.nsid
		q := ioQueue(t, addr, a.cntlid, uint16(1+i), 0)
		if _, err := q.try(nvme.ReadCmd(nsid, 0, 1), nil, false, make([]byte, ns.bs)); err == nil {
			t.Fatalf("namespace %d: the read that panicked was answered", nsid)
		}
		q.expectClosed()
		if !strings.Contains(logs.String(), "injected backend panic") || !strings.Contains(logs.String(), "goroutine") {
			t.Fatalf("namespace %d: panic not logged with its stack:\n%s", nsid, logs.String())
		}
		// Only that connection ended.
		mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
	}
	mustOK(t, other.exec(nvme.KeepAliveCmd(), nil, false, nil))
	mustOK(t, oq.exec(nvme.WriteCmd(1, 1, 1), make([]byte, 512), true, nil))
}

// TestPortFlapWhileConnecting takes a port down and up again while hosts
// keep connecting: no crash, no data race on the listener (run with
// -race), exactly one accept goroutine per port afterwards, and the port
// serves.
func TestPortFlapWhileConnecting(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0].String()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					nc.Close()
				}
			}
		}()
	}
	for range 200 {
		if err := tg.PortDown(1); err != nil {
			t.Fatal(err)
		}
		if err := tg.PortUp(1); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for acceptGoroutines() != len(tg.ports) {
		if time.Now().After(deadline) {
			t.Fatalf("%d accept goroutines for %d ports", acceptGoroutines(), len(tg.ports))
		}
		time.Sleep(5 * time.Millisecond)
	}
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
}

// startAcceptLoop serves what ln accepts as port p's connections.
func startAcceptLoop(tg *Target, p *port, ln net.Listener) {
	tg.wg.Add(1)
	go tg.accept(p, ln)
}

func acceptGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "target.(*Target).accept(")
}

// TestAcceptRetriesErrors: Accept errors other than a closed listener
// (EMFILE when descriptors run out, ECONNABORTED, ...) are retried with a
// back-off; the loop used to end at the first and the port stayed dead.
func TestAcceptRetriesErrors(t *testing.T) {
	tg := startTarget(t, testConfig())
	tc, hc := net.Pipe()
	t.Cleanup(func() { hc.Close() })
	ln := &scriptedListener{closed: make(chan struct{})}
	for _, err := range []error{
		acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.ECONNABORTED), acceptErr(syscall.ENOBUFS),
		errors.New("some other accept error"),
	} {
		ln.script = append(ln.script, acceptEvent{err: err})
	}
	ln.script = append(ln.script, acceptEvent{nc: tc})
	startAcceptLoop(tg, tg.ports[0], ln)
	t.Cleanup(func() { ln.Close() })
	c := &client{t: t, nc: hc, conn: tcp.NewConn(hc, false, tcp.Config{})}
	_ = hc.SetDeadline(time.Now().Add(20 * time.Second))
	r, err := c.conn.HostInitialize(tcp.ICReq{})
	if err != nil {
		t.Fatalf("the connection accepted after 5 errors was not served: %v", err)
	}
	c.resp = r
	mustOK(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0))
	if n := ln.calls.Load(); n < 6 {
		t.Fatalf("%d Accept calls", n)
	}
}

// emfileChildEnv makes TestEMFILEChild serve (see TestAcceptSurvivesEMFILE).
const emfileChildEnv = "NVMFTEST_EMFILE_CHILD"

// TestEMFILEChild is not a test: TestAcceptSurvivesEMFILE runs the test
// binary again with only this test and emfileChildEnv set; the child
// lowers its open-file limit, serves on a free port, prints it and waits.
func TestEMFILEChild(t *testing.T) {
	if os.Getenv(emfileChildEnv) == "" {
		t.Skip("run by TestAcceptSurvivesEMFILE")
	}
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Listeners = cfg.Listeners[:1]
	cfg.ICTimeout = time.Minute
	tg, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", tg.Addrs()[0])
	select {}
}

// TestAcceptSurvivesEMFILE runs a target as a child process with 64
// descriptors, opens connections until it runs out (Accept fails with
// EMFILE), closes them all, and checks that the port serves again.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var stderr syncbuf.Buffer
	_, addr := startChildTarget(t, "TestEMFILEChild", emfileChildEnv+"=1", &stderr)
	ra := newRawAssoc(testNQN, testHost)
	if nc, st, err := ra.open(addr, make([]byte, 256)); err != nil || st != nvme.StatusSuccess {
		t.Fatalf("before the flood: %v %v", st, err)
	} else {
		nc.Close()
	}
	var flood []net.Conn
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "too many open files") {
		if time.Now().After(deadline) {
			t.Fatalf("the child never ran out of descriptors:\n%s", stderr.String())
		}
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			flood = append(flood, nc)
		}
		if len(flood) > 1000 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, nc := range flood {
		nc.Close()
	}
	// The child closes its ends as it reads EOF; then it serves again.
	deadline = time.Now().Add(20 * time.Second)
	for {
		nc, st, err := ra.open(addr, make([]byte, 256))
		if err == nil && st == nvme.StatusSuccess {
			nc.Close()
			break
		}
		if nc != nil {
			nc.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flood (%d connections): %v %v\n%s", len(flood), st, err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
