package initiator

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Tests of the host against targets that are buggy or hostile: whatever
// they send, the host neither panics nor hangs, and never reports a
// success it did not get.

func TestFakeTargetWellBehaved(t *testing.T) {
	f := newFakeTarget(t)
	addr := f.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, addr, "nqn.test", Options{NrIOQueues: 1, QueueSize: 8, KATO: -1, Timeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log := make([]byte, 200<<10) // split at MDTS (128 KiB)
	if err := c.GetLogPage(ctx, 0x70, 0, 0, 0, log); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(log, fakeLog(0x70, 0, len(log))) {
		t.Fatal("log page data differs")
	}
	q := c.IOQueues()[0]
	buf := make([]byte, 64<<10)
	if err := q.Read(ctx, 1, 7, 128, buf); err != nil || !bytes.Equal(buf, fakeContent(7, len(buf))) {
		t.Fatalf("read: %v (data equal %v)", err, bytes.Equal(buf, fakeContent(7, len(buf))))
	}
	data := fakeContent(99, 64<<10)
	if err := q.Write(ctx, 1, 9, 128, data); err != nil || !bytes.Equal(f.written(9), data) {
		t.Fatalf("write: %v", err)
	}
}

func fakeLog(lid uint8, off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = fakeData(uint64(lid), off+i)
	}
	return b
}

// Review #10: MDTS and CAP.MPSMIN come from the target; 2^(12+MPSMIN+MDTS)
// overflowed int (MaxTransferSize was -2^63 for MDTS 51) and GetLogPage
// sliced its buffer with it and panicked.
func TestMaxTransferSizeOfHostileIdentify(t *testing.T) {
	for _, tc := range []struct {
		mpsmin, mdts uint8
		want         int
	}{
		{0, 0, 0}, {0, 5, 128 << 10}, {0, 18, 1 << 30}, {0, 19, 0}, {0, 51, 0}, {0, 52, 0},
		{0, 255, 0}, {15, 3, 1 << 30}, {15, 4, 0}, {15, 40, 0}, {15, 255, 0},
	} {
		c := &Controller{cap: nvme.CAP(uint64(tc.mpsmin) << 48), id: &nvme.IdentifyController{MDTS: tc.mdts}}
		if got := c.MaxTransferSize(); got != tc.want {
			t.Errorf("MPSMIN %d MDTS %d: MaxTransferSize %d, want %d", tc.mpsmin, tc.mdts, got, tc.want)
		}
	}
}

func TestGetLogPageWithHugeMDTS(t *testing.T) {
	for _, tc := range []struct{ mpsmin, mdts uint8 }{{0, 51}, {15, 40}, {0, 52}, {15, 255}} {
		f := newFakeTarget(t)
		f.cap |= nvme.CAP(uint64(tc.mpsmin) << 48)
		f.id.MDTS = tc.mdts
		addr := f.listen(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := Connect(ctx, addr, "nqn.test", Options{NrIOQueues: -1, KATO: -1, Timeout: 5 * time.Second, Logger: testLogger(t)})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if n := c.MaxTransferSize(); n < 0 {
			t.Errorf("MPSMIN %d MDTS %d: MaxTransferSize %d", tc.mpsmin, tc.mdts, n)
		}
		buf := make([]byte, 8192)
		if err := c.GetLogPage(ctx, 2, 0, 0, 0, buf); err != nil || !bytes.Equal(buf, fakeLog(2, 0, len(buf))) {
			t.Errorf("MPSMIN %d MDTS %d: GetLogPage %v", tc.mpsmin, tc.mdts, err)
		}
		c.Close()
		cancel()
	}
}

// Review #15: a read the target completes with success without sending
// all of its data must not succeed: the caller's buffer would keep stale
// bytes.
func TestReadWithoutAllItsDataFails(t *testing.T) {
	src := pattern(4096, 4)
	for _, tc := range []struct {
		name string
		send func(f *fakeCtrl, cid uint16)
	}{
		{"no data, then success", func(f *fakeCtrl, cid uint16) { f.respond(cid, 0) }},
		{"half, then success", func(f *fakeCtrl, cid uint16) {
			f.send(&tcp.C2HData{CCCID: cid, DATAL: 2048}, src[:2048])
			f.respond(cid, 0)
		}},
		{"half with LAST_PDU, then success", func(f *fakeCtrl, cid uint16) {
			f.send(&tcp.C2HData{CCCID: cid, DATAL: 2048, Last: true}, src[:2048])
			f.respond(cid, 0)
		}},
		{"half with SUCCESS", func(f *fakeCtrl, cid uint16) {
			f.send(&tcp.C2HData{CCCID: cid, DATAL: 2048, Last: true, Success: true}, src[:2048])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
				if sqe.Opcode != nvme.CmdRead {
					f.respond(sqe.CID, 0)
					return
				}
				tc.send(f, sqe.CID)
			}})
			buf := bytes.Repeat([]byte{0xEE}, 4096)
			err := q.Read(context.Background(), 1, 0, 8, buf)
			var st nvme.Status
			if err == nil || !errors.As(err, &st) || st.Code() != nvme.StatusDataTransferError {
				t.Fatalf("read answered with less than its 4096 bytes: err %v, want Data Transfer Error", err)
			}
			if q.Err() != nil {
				t.Fatalf("the queue died: %v", q.Err())
			}
			// The queue still works.
			if err := q.Flush(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A write the target completes with success without asking for all its
// data (R2T) has not been written.
func TestWriteWithoutAllItsDataFails(t *testing.T) {
	q, _ := newPair(t, pairOpts{inline: 1024, onCmd: func(f *fakeCtrl, sqe nvme.SQE, data []byte) {
		f.send(&tcp.R2T{CCCID: sqe.CID, R2TL: 4096}, nil)
	}, onH2C: func(f *fakeCtrl, h tcp.H2CData, _ []byte) {
		if h.Last {
			f.respond(h.CCCID, 0)
		}
	}})
	err := q.Write(context.Background(), 1, 0, 16, make([]byte, 8192))
	var st nvme.Status
	if !errors.As(err, &st) || st.Code() != nvme.StatusDataTransferError {
		t.Fatalf("write whose R2Ts asked for 4096 of 8192 bytes: err %v, want Data Transfer Error", err)
	}
}

// NVMe/TCP 1.0 3.3.2.1: a C2HData after the LAST_PDU of the same command
// is unexpected: a fatal PDU Sequence Error, not more data.
func TestC2HDataAfterLastPDUIsFatal(t *testing.T) {
	src := pattern(4096, 8)
	q, f := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		f.send(&tcp.C2HData{CCCID: sqe.CID, DATAL: 2048, Last: true}, src[:2048])
		f.send(&tcp.C2HData{CCCID: sqe.CID, DATAO: 2048, DATAL: 2048, Last: true}, src[2048:])
		f.respond(sqe.CID, 0)
	}})
	err := q.Read(context.Background(), 1, 0, 8, make([]byte, 4096))
	if !IsTransportError(err) {
		t.Fatalf("err %v, want a transport error", err)
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.terms) != 1 || f.terms[0].FES != tcp.FESPDUSequenceError {
		t.Fatalf("H2CTermReq %+v, want FES PDU Sequence Error", f.terms)
	}
}

// NVMe/TCP 1.0 3.3.2.1 and 3.3.2.2: a non-contiguous C2HData, or an R2T
// that does not continue where the last one ended, is a PDU Sequence
// Error.
func TestNonContiguousTransfersArePDUSequenceErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write bool
		onCmd func(f *fakeCtrl, sqe nvme.SQE, _ []byte)
	}{
		{"C2HData gap", false, func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
			f.send(&tcp.C2HData{CCCID: sqe.CID, DATAO: 1024, DATAL: 1024, Last: true}, make([]byte, 1024))
		}},
		{"R2T gap", true, func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
			f.send(&tcp.R2T{CCCID: sqe.CID, R2TO: 1024, R2TL: 1024}, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, f := newPair(t, pairOpts{timeout: 10 * time.Second, onCmd: tc.onCmd})
			var err error
			if tc.write {
				err = q.Write(context.Background(), 1, 0, 4, make([]byte, 2048))
			} else {
				err = q.Read(context.Background(), 1, 0, 4, make([]byte, 2048))
			}
			if !IsTransportError(err) {
				t.Fatalf("err %v", err)
			}
			<-f.done
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.terms) != 1 || f.terms[0].FES != tcp.FESPDUSequenceError {
				t.Fatalf("H2CTermReq %+v, want FES PDU Sequence Error", f.terms)
			}
		})
	}
}

// Review #9: SubmitFused held one CID while waiting for a second: on a
// queue of depth 1 it waited for ever, and N callers on depth N each held
// one and waited for ever.
func TestSubmitFusedOnDepthOneIsRefused(t *testing.T) {
	q, _ := newPair(t, pairOpts{depth: 1, onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) { f.respond(sqe.CID, 0) }})
	testbound.Within(t, 10*time.Second, "CompareAndWrite on a queue of depth 1", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err := q.CompareAndWrite(ctx, 1, 0, 1, make([]byte, 512), make([]byte, 512))
		if !errors.Is(err, ErrFusedDepth) {
			t.Errorf("err %v, want ErrFusedDepth", err)
		}
	})
}

func TestSubmitFusedConcurrentCallersDoNotDeadlock(t *testing.T) {
	// Two Flushes fill a queue of depth 2 and are held; two CompareAndWrite
	// callers then wait for CIDs. When the Flushes complete, each waiter
	// used to get one CID and wait for a second for ever.
	held := make(chan uint16, 2)
	q, f := newPair(t, pairOpts{depth: 2, inline: 8192, onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		if sqe.Opcode == nvme.CmdFlush {
			held <- sqe.CID
			return
		}
		f.respond(sqe.CID, 0)
	}})
	for range 2 {
		if err := q.Submit(&Request{SQE: nvme.FlushCmd(1), Done: func(*Request) {}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.CompareAndWrite(context.Background(), 1, 0, 1, make([]byte, 512), make([]byte, 512)); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // both callers wait for CIDs
	f.respond(<-held, 0)
	f.respond(<-held, 0)
	testbound.Within(t, 20*time.Second, "2 CompareAndWrite callers on a queue of depth 2", wg.Wait)
}

// A command waiting for a free CID (every one in flight, timeouts off)
// ends with its context, and the queue lives on: nothing was sent.
func TestDoEndsWithContextWhileWaitingForCID(t *testing.T) {
	q, _ := newPair(t, pairOpts{depth: 1, onCmd: func(*fakeCtrl, nvme.SQE, []byte) {}})
	if err := q.Submit(&Request{SQE: nvme.FlushCmd(1), Done: func(*Request) {}}); err != nil {
		t.Fatal(err)
	}
	testbound.Within(t, 10*time.Second, "Do waiting for a CID", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := q.Flush(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want context.DeadlineExceeded", err)
		}
	})
	if err := q.Err(); err != nil {
		t.Fatalf("the queue died: %v", err)
	}
}

// holdCloseConn is a net.Conn whose Close does not interrupt a blocked
// Read until release: it lets a test hold the host's reader in the middle
// of a PDU after the queue was failed.
type holdCloseConn struct {
	net.Conn
	once    sync.Once
	release chan struct{}
}

func (c *holdCloseConn) Close() error {
	c.once.Do(func() {
		go func() {
			<-c.release
			_ = c.Conn.Close()
		}()
	})
	return nil
}

// Review #20: published() took back a request the reader was still
// filling with C2HData once the queue had died; a multipath retry would
// then reuse the buffer while the old reader still wrote into it. A
// request the reader may be handling stays with the reader, whose final
// sweep completes it.
func TestDeadQueueLeavesRequestWithItsReader(t *testing.T) {
	a, b := net.Pipe()
	hold := &holdCloseConn{Conn: a, release: make(chan struct{})}
	hc := tcp.NewConn(hold, false, tcp.Config{})
	cc := tcp.NewConn(b, true, tcp.Config{})
	errc := make(chan error, 1)
	go func() {
		_, err := cc.ControllerInitialize(tcp.ICPolicy{})
		errc <- err
	}()
	resp, err := hc.HostInitialize(tcp.ICReq{})
	if err != nil || <-errc != nil {
		t.Fatal("initialization", err)
	}
	q := newQueue(hc, 1, 4, 0, resp, 0, 0, testLogger(t), nil)
	var done atomic.Int32
	req := &Request{SQE: nvme.ReadCmd(1, 0, 16), Data: make([]byte, 8192), Dir: FromController, Done: func(*Request) { done.Add(1) }}
	cmd := make(chan uint16, 1)
	go func() { // net.Pipe: Submit's write waits for this read
		if p, err := cc.Next(); err == nil {
			cmd <- p.(*tcp.CapsuleCmd).SQE.CID
		}
		close(cmd)
	}()
	if err := q.Submit(req); err != nil {
		t.Fatal(err)
	}
	cid, ok := <-cmd
	if !ok {
		t.Fatal("no command")
	}
	pdu := tcp.AppendPDU(nil, &tcp.C2HData{CCCID: cid, DATAL: 8192, Last: true}, pattern(8192, 1), tcp.EncodeOptions{})
	// net.Pipe: SendRaw returns once the reader has taken the bytes, so
	// the reader is now in ReadData, waiting for the rest.
	if err := cc.SendRaw(pdu[:1000]); err != nil {
		t.Fatal(err)
	}
	q.fail(errors.New("test: queue failed while a C2HData is half read"))
	if err := q.published(req, cid); err != nil {
		t.Fatalf("published handed back a request the reader is filling: %v", err)
	}
	go func() { _ = cc.SendRaw(pdu[1000:]) }()
	close(hold.release)
	testbound.Within(t, 10*time.Second, "Close", func() { _ = q.Close() })
	_ = cc.Close()
	if n := done.Load(); n != 1 {
		t.Fatalf("Done called %d times, want 1", n)
	}
}

// A request whose length is an allocation length takes what comes.
func TestAllowShortAcceptsLessData(t *testing.T) {
	src := pattern(100, 3)
	q, _ := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		f.send(&tcp.C2HData{CCCID: sqe.CID, DATAL: 100, Last: true, Success: true}, src)
	}})
	r := &Request{SQE: nvme.AuthReceiveCmd(0, 4096), Data: make([]byte, 4096), Dir: FromController, AllowShort: true}
	if err := q.Do(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Received() != 100 || !bytes.Equal(r.Data[:100], src) {
		t.Fatalf("received %d bytes", r.Received())
	}
}

// Minor (review 22): a cancelled context did not end ICReq/ICResp (only
// its deadline did), and with Timeout < 0 nothing did.
func TestConnectEndsWithContextDuringICResp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, nc) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, nc := range held {
			nc.Close()
		}
		mu.Unlock()
	}()
	for _, timeout := range []time.Duration{0, -1} {
		testbound.Within(t, 10*time.Second, "Connect to a target that never answers ICReq, context cancelled", func() {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			_, err := Connect(ctx, ln.Addr().String(), "nqn.test", Options{Timeout: timeout, Logger: testLogger(t)})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Timeout %v: err %v, want context.Canceled", timeout, err)
			}
		})
	}
}

// Minor (review 22): the keep-alive ticker (KATO/2) panicked for KATO
// under 2 ns, and a KATO under 1 ms went out as 0 (keep-alive off on the
// target) while the host still sent keep-alives.
func TestTinyKATO(t *testing.T) {
	f := newFakeTarget(t)
	addr := f.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, kato := range []time.Duration{1, time.Microsecond, 1500 * time.Microsecond} {
		c, err := Connect(ctx, addr, "nqn.test", Options{NrIOQueues: -1, KATO: kato, Timeout: 5 * time.Second, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // a few keep-alives
		if err := c.Admin().Err(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []uint32{1, 1, 2}; len(f.katos) != 3 || f.katos[0] != want[0] || f.katos[1] != want[1] || f.katos[2] != want[2] {
		t.Fatalf("Connect KATO %v ms, want %v", f.katos, want)
	}
}

// Minor (review 22): the host's write backlog limit assumed transfers of
// at most 1 MiB. A target with a larger (or no) MDTS whose receive loop
// writes C2HData itself then deadlocks with the host: the host's reader
// waits to queue H2CData while the target waits for the host to read.
func TestLargeTransfersDoNotDeadlockWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 32 MiB")
	}
	const size = 16 << 20
	f := newFakeTarget(t)
	f.id.MDTS = 0
	f.syncSend = true
	f.sockBuf = 128 << 10
	addr := f.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, addr, "nqn.test", Options{NrIOQueues: 1, QueueSize: 3, KATO: -1, Timeout: 20 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := c.IOQueues()[0]
	if tc, ok := q.Conn().NetConn().(*tcp.AsyncWriter).Conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(128 << 10)
		_ = tc.SetWriteBuffer(128 << 10)
	}
	wdata := fakeContent(1, size)
	rbuf := make([]byte, size)
	testbound.Within(t, 25*time.Second, "a 16 MiB write and a 16 MiB read at once", func() {
		w := &Request{SQE: nvme.WriteCmd(1, 0, size/512), Data: wdata, Dir: ToController, wait: make(chan struct{}, 1), Done: signalDone}
		r := &Request{SQE: nvme.ReadCmd(1, 5, size/512), Data: rbuf, Dir: FromController, wait: make(chan struct{}, 1), Done: signalDone}
		if err := q.Submit(w); err != nil {
			t.Error(err)
			return
		}
		if err := q.Submit(r); err != nil {
			t.Error(err)
			return
		}
		<-w.wait
		<-r.wait
		if w.Err != nil || r.Err != nil {
			t.Errorf("write %v, read %v", w.Err, r.Err)
		}
	})
	if !bytes.Equal(rbuf, fakeContent(5, size)) || !bytes.Equal(f.written(0), wdata) {
		t.Fatal("data differs")
	}
}

// initiatorGoroutines lists this package's goroutines (and the tcp
// writers it starts), for leak checks.
func initiatorGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "initiator.(*") && !strings.Contains(g, "_test.go") || strings.Contains(g, "(*AsyncWriter).drain") {
			out = append(out, g)
		}
	}
	return out
}

func noLeak(t testing.TB) {
	t.Helper()
	var left []string
	for range 200 {
		if left = initiatorGoroutines(); len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d host goroutines left:\n%s", len(left), strings.Join(left, "\n\n"))
}

// TrySubmit never waits: a Done callback (on the reader) re-submits with
// it.
func TestTrySubmitDoesNotWait(t *testing.T) {
	held := make(chan uint16, 1)
	q, f := newPair(t, pairOpts{depth: 1, onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) { held <- sqe.CID }})
	done := make(chan *Request, 2)
	r1 := &Request{SQE: nvme.FlushCmd(1), Done: func(r *Request) { done <- r }}
	r2 := &Request{SQE: nvme.FlushCmd(1), Done: func(r *Request) { done <- r }}
	if ok, err := q.TrySubmit(r1); !ok || err != nil {
		t.Fatalf("first TrySubmit: %v %v", ok, err)
	}
	if ok, err := q.TrySubmit(r2); ok || err != nil {
		t.Fatalf("TrySubmit with every CID in flight: %v %v, want false, nil", ok, err)
	}
	f.respond(<-held, 0)
	<-done
	if ok, err := q.TrySubmit(r2); !ok || err != nil {
		t.Fatalf("TrySubmit after a completion: %v %v", ok, err)
	}
	f.respond(<-held, 0)
	<-done
}
