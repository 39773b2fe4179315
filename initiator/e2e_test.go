package initiator_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// startTarget serves target.DefaultConfig on 127.0.0.1:0 and returns its
// address.
func startTarget(t testing.TB) string {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	tg := targettest.Start(t, cfg)
	return tg.Addrs()[0].String()
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// initiatorGoroutines lists goroutines running initiator code.
func initiatorGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "nvmftest/initiator.") && !strings.Contains(g, "initiator_test.") {
			out = append(out, g)
		}
	}
	return out
}

func checkNoLeak(t *testing.T) {
	t.Helper()
	var left []string
	for range 50 {
		if left = initiatorGoroutines(); len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d initiator goroutines left:\n%s", len(left), strings.Join(left, "\n\n"))
}

func TestE2EDiscover(t *testing.T) {
	addr := startTarget(t)
	log, err := initiator.Discover(ctx(t), addr, initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range log.Entries {
		if e.SUBNQN == target.DefaultSubsystemNQN && e.SUBTYPE == nvme.SubtypeNVM && e.TRTYPE == nvme.TRTypeTCP {
			found = true
		}
	}
	if !found || log.NUMREC != uint64(len(log.Entries)) {
		t.Fatalf("discovery log %+v lacks %s", log, target.DefaultSubsystemNQN)
	}
	checkNoLeak(t)
}

func TestE2EConnectReadWrite(t *testing.T) {
	addr := startTarget(t)
	for _, tc := range []struct {
		name     string
		hdr, dat bool
	}{{"nodigest", false, false}, {"digests", true, true}, {"hdgst", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := initiator.Connect(ctx(t), addr, target.DefaultSubsystemNQN, initiator.Options{
				HeaderDigest: tc.hdr, DataDigest: tc.dat, NrIOQueues: 2, QueueSize: 64,
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := c.IOQueues()[0].Digests(); d.Header != tc.hdr || d.Data != tc.dat {
				t.Fatalf("digests %+v", d)
			}
			id, err := c.Identify(ctx(t))
			if err != nil || id.SUBNQN != target.DefaultSubsystemNQN || id.CNTLID != c.CNTLID() {
				t.Fatalf("identify %v %+v", err, id)
			}
			nsids, err := c.ActiveNamespaces(ctx(t))
			if err != nil || len(nsids) == 0 || nsids[0] != 1 {
				t.Fatalf("active namespaces %v %v", nsids, err)
			}
			ns, err := c.IdentifyNamespace(ctx(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			bs := int(ns.BlockSize())
			q := c.IOQueues()[1]
			// In-capsule (small), R2T (larger than the in-capsule limit)
			// and multi-PDU (larger than MAXH2CDATA) writes.
			for _, size := range []int{bs, 4096, q.InlineDataSize() + bs, 512 << 10} {
				size = size / bs * bs
				data := bytes.Repeat([]byte{byte(size), byte(size >> 8), 0x5A, 0xA5}, size/4)
				slba := uint64(size / bs)
				if err := q.Write(ctx(t), 1, slba, uint32(size/bs), data); err != nil {
					t.Fatalf("write %d: %v", size, err)
				}
				got := make([]byte, size)
				if err := q.Read(ctx(t), 1, slba, uint32(size/bs), got); err != nil {
					t.Fatalf("read %d: %v", size, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes differs", size)
				}
				if err := q.Compare(ctx(t), 1, slba, uint32(size/bs), data); err != nil {
					t.Fatalf("compare %d: %v", size, err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			checkNoLeak(t)
		})
	}
}

func TestE2EQueueDepth32(t *testing.T) {
	addr := startTarget(t)
	c, err := initiator.Connect(ctx(t), addr, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: 1, QueueSize: 33})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := c.IOQueues()[0]
	if q.Depth() < 32 {
		t.Fatalf("depth %d", q.Depth())
	}
	const n = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxInflight := 0
	reqs := make([]*initiator.Request, n)
	bufs := make([][]byte, n)
	for i := range reqs {
		bufs[i] = bytes.Repeat([]byte{byte(i)}, 4096)
		reqs[i] = &initiator.Request{SQE: nvme.WriteCmd(1, uint64(i*8), 8), Data: bufs[i], Dir: initiator.ToController,
			Done: func(r *initiator.Request) { wg.Done() }}
	}
	wg.Add(n)
	for _, r := range reqs {
		if err := q.Submit(r); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		maxInflight = max(maxInflight, q.Inflight())
		mu.Unlock()
	}
	wg.Wait()
	for i, r := range reqs {
		if r.Err != nil {
			t.Fatalf("write %d: %v", i, r.Err)
		}
	}
	// Read them all back concurrently.
	wg.Add(n)
	for i, r := range reqs {
		r.SQE, r.Data, r.Dir = nvme.ReadCmd(1, uint64(i*8), 8), make([]byte, 4096), initiator.FromController
		if err := q.Submit(r); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, r := range reqs {
		if r.Err != nil || !bytes.Equal(r.Data, bufs[i]) {
			t.Fatalf("read %d: %v", i, r.Err)
		}
	}
	t.Logf("max in flight observed: %d", maxInflight)
}

func TestE2ECompareAndWrite(t *testing.T) {
	addr := startTarget(t)
	c, err := initiator.Connect(ctx(t), addr, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := c.IOQueues()[0]
	ns, err := c.IdentifyNamespace(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	bs := int(ns.BlockSize())
	old := bytes.Repeat([]byte{1}, bs)
	neu := bytes.Repeat([]byte{2}, bs)
	if err := q.Write(ctx(t), 1, 100, 1, old); err != nil {
		t.Fatal(err)
	}
	if err := q.CompareAndWrite(ctx(t), 1, 100, 1, old, neu); err != nil {
		t.Fatalf("matching compare-and-write: %v", err)
	}
	err = q.CompareAndWrite(ctx(t), 1, 100, 1, old, old)
	var st nvme.Status
	if !errors.As(err, &st) || st.Code() != nvme.StatusCompareFailure {
		t.Fatalf("mismatching compare-and-write: %v, want compare failure", err)
	}
	got := make([]byte, bs)
	if err := q.Read(ctx(t), 1, 100, 1, got); err != nil || !bytes.Equal(got, neu) {
		t.Fatalf("after compare-and-write: %v %x", err, got[:4])
	}
}

func TestE2EAdminCommands(t *testing.T) {
	addr := startTarget(t)
	c, err := initiator.Connect(ctx(t), addr, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	smart := make([]byte, 512)
	if err := c.GetLogPage(ctx(t), nvme.LogSMART, 0xFFFFFFFF, 0, 0, smart); err != nil {
		t.Fatalf("smart log: %v", err)
	}
	v, err := c.GetFeatures(ctx(t), nvme.FeatNumQueues, 0, nvme.SelCurrent, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nsq, _ := nvme.DecodeNumQueues(v); int(nsq) < len(c.IOQueues()) {
		t.Fatalf("number of queues %#x", v)
	}
	if _, err := c.NamespaceDescriptors(ctx(t), 1); err != nil {
		t.Fatalf("ns descriptors: %v", err)
	}
	csts, err := c.PropertyGet(ctx(t), nvme.PropCSTS, false)
	if err != nil || csts&nvme.CSTSReady == 0 {
		t.Fatalf("CSTS %#x %v", csts, err)
	}
	err = c.GetLogPage(ctx(t), 0xBF, 0, 0, 0, make([]byte, 512))
	var st nvme.Status
	if !errors.As(err, &st) || initiator.IsTransportError(err) {
		t.Fatalf("unknown log page: %v, want an NVMe status", err)
	}
}

func TestE2EKeepAlive(t *testing.T) {
	addr := startTarget(t)
	c, err := initiator.Connect(ctx(t), addr, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: 1, KATO: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // well past KATO: keep-alives must hold it
	if err := c.IOQueues()[0].Flush(ctx(t), 1); err != nil {
		t.Fatalf("after 2.5 KATO: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t)
}

func TestE2ERaw(t *testing.T) {
	addr := startTarget(t)
	r, err := initiator.DialRaw(ctx(t), addr, initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Initialize(tcp.ICReq{DGST: tcp.DgstHeader}); err != nil {
		t.Fatal(err)
	}
	cqe, err := r.ConnectAdmin(target.DefaultSubsystemNQN, "")
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if uint16(cqe.DW0) == 0xFFFF {
		t.Fatalf("CNTLID %#x", cqe.DW0)
	}
	if _, _, err := r.Command(nvme.PropertySetCmd(0, nvme.PropCC, false, 0x460001), nil); err != nil {
		t.Fatalf("enable: %v", err)
	}
	for i := 0; ; i++ {
		cqe, _, err := r.Command(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cqe.DW0&nvme.CSTSReady != 0 {
			break
		}
		if i > 100 {
			t.Fatal("CSTS.RDY not set")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sqe := nvme.IdentifyCmd(nvme.CNSController, 0, 0)
	sqe.DPTR = nvme.SGLDescriptor{} // let Command fill it: a read of 4096
	sqe.DPTR.Length = nvme.IdentifyDataSize
	_, data, err := r.Command(sqe, nil)
	if err != nil || len(data) != nvme.IdentifyDataSize {
		t.Fatalf("identify: %v (%d bytes)", err, len(data))
	}
	// A CapsuleResp is a controller-to-host PDU: the target must answer
	// with a C2HTermReq or close the connection.
	if err := r.SendPDU(&tcp.CapsuleResp{}, nil, r.Encoding()); err != nil {
		t.Fatal(err)
	}
	p, _, _, err := r.Recv(5 * time.Second)
	if err == nil {
		if _, ok := p.(*tcp.TermReq); !ok {
			t.Fatalf("answer to an illegal PDU: %v", p.Type())
		}
	}
}

// AsyncEvents starting while another goroutine closes the controller (as
// multipath's watcher and a lost path do) must neither race nor hang. The
// race detector caught that race (rarely) in
// TestMultipathCtrlLossAndFastFail; this makes the overlap more likely.
func TestE2EAsyncEventsDuringClose(t *testing.T) {
	addr := startTarget(t)
	for range 5 {
		c, err := initiator.Connect(ctx(t), addr, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: 1})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range c.AsyncEvents() {
			}
		}()
		c.Close()
		<-done
		if _, open := <-c.AsyncEvents(); open {
			t.Fatal("AsyncEvents after Close is open")
		}
	}
}

// TestE2EPolling runs I/O with both sides polling their sockets (bench
// --hipri against target --poll): writes and reads of one block and of
// several R2Ts' worth, a pause long enough for both to stop spinning and
// sleep, then I/O again, which must wake them.
func TestE2EPolling(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	cfg.Poll, cfg.PollIdle = true, 100*time.Microsecond
	addr := targettest.Start(t, cfg).Addrs()[0].String()
	c, err := initiator.Connect(ctx(t), addr, target.DefaultSubsystemNQN,
		initiator.Options{NrIOQueues: 1, QueueSize: 9, Poll: true, PollIdle: 100 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	q := c.IOQueues()[0]
	for round := range 2 {
		for _, nlb := range []uint32{8, 512} { // 4 KiB and 256 KiB
			data := bytes.Repeat([]byte{byte(round + 1), byte(nlb)}, int(nlb)*256)
			if err := q.Write(ctx(t), 1, uint64(round)*1024, nlb, data); err != nil {
				t.Fatalf("round %d: write of %d blocks: %v", round, nlb, err)
			}
			got := make([]byte, len(data))
			if err := q.Read(ctx(t), 1, uint64(round)*1024, nlb, got); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("round %d: read of %d blocks: %v (equal %v)", round, nlb, err, bytes.Equal(got, data))
			}
		}
		time.Sleep(20 * time.Millisecond) // both sides go back to sleeping
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t)
}
