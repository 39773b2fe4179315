package target

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// TestCNTLIDExhaustion: with every controller ID in use an admin Connect
// fails with Controller Busy after one pass over the IDs, instead of
// spinning for ever with Target.mu held (which hung the whole target);
// once an ID is free again, Connect gets it.
func TestCNTLIDExhaustion(t *testing.T) {
	tg := startTarget(t, testConfig())
	tg.mu.Lock()
	for id := uint16(1); id <= 0xFFEF; id++ {
		tg.ctrls[id] = &controller{t: tg, cntlid: id, host: "nqn.2014-08.io.nvmftest:filler"}
	}
	tg.mu.Unlock()
	c := dial(t, tg.Addrs()[0], 0)
	_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
	wantStatus(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0), nvme.StatusConnectControllerBusy)
	testbound.Within(t, 10*time.Second, "GenCtr (takes Target.mu)", func() { tg.GenCtr() })

	tg.mu.Lock()
	delete(tg.ctrls, 500)
	tg.mu.Unlock()
	r := c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0)
	mustOK(t, r)
	if r.DW0&0xFFFF != 500 {
		t.Fatalf("CNTLID %d, want the free one, 500", r.DW0&0xFFFF)
	}
}

// TestConnectRacingRemoveSubsystem removes the subsystem between a
// Connect's lookup and its controller's registration: the Connect must
// fail (Connect Invalid Parameters, SUBNQN) instead of creating a live
// controller on a removed subsystem whose backends are closed.
func TestConnectRacingRemoveSubsystem(t *testing.T) {
	tg := startTarget(t, testConfig())
	const nqn = "nqn.2014-08.io.nvmftest:doomed"
	sc := DefaultSubsystem(nqn)
	sc.Namespaces[0].Size = "1MiB"
	if err := tg.AddSubsystem(sc); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	testHookConnectLookedUp = func() {
		once.Do(func() {
			if err := tg.RemoveSubsystem(nqn); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(func() { testHookConnectLookedUp = nil })
	c := dial(t, tg.Addrs()[0], 0)
	r := c.connect(nqn, 0, nvme.CNTLIDDynamic, 0)
	if r.Status.Success() {
		t.Fatalf("Connect to a subsystem removed meanwhile succeeded (CNTLID %d)", r.DW0)
	}
	wantStatus(t, r, nvme.StatusConnectInvalidParameters)
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for id, ctrl := range tg.ctrls {
		if ctrl.sub != nil && ctrl.sub.nqn == nqn {
			t.Fatalf("controller %d lives on the removed subsystem", id)
		}
	}
}

// TestAddSubsystemConcurrentDuplicate: of concurrent AddSubsystem calls
// with one NQN exactly one succeeds.
func TestAddSubsystemConcurrentDuplicate(t *testing.T) {
	tg := startTarget(t, testConfig())
	const nqn = "nqn.2014-08.io.nvmftest:twin"
	sc := DefaultSubsystem(nqn)
	// A file namespace: opening it takes long enough for the adds to
	// overlap.
	sc.Namespaces[0] = NamespaceConfig{NSID: 1, Backend: BackendFile, Path: t.TempDir() + "/twin", Size: "1MiB", BlockSize: 512}
	for round := range 50 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if tg.AddSubsystem(sc) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok != 1 {
			t.Fatalf("round %d: %d of 8 concurrent adds of one NQN succeeded", round, ok)
		}
		n := 0
		tg.mu.Lock()
		for _, s := range tg.subsys {
			if s.nqn == nqn {
				n++
			}
		}
		tg.mu.Unlock()
		if n != 1 {
			t.Fatalf("round %d: %d subsystems named %s", round, n, nqn)
		}
		if err := tg.RemoveSubsystem(nqn); err != nil {
			t.Fatal(err)
		}
	}
}

// slowBackend makes writes take d, on a worker (as a file would).
type slowBackend struct {
	Backend
	d time.Duration
}

func (b slowBackend) WriteAt(p []byte, off int64) (int, error) {
	time.Sleep(b.d)
	return b.Backend.WriteAt(p, off)
}

// TestDisconnectCompletesLast: the Disconnect's completion is the last on
// its queue (NVMe Base 2.1 6.4). A write running on a worker completes
// first (it used to be dropped silently), a write waiting for its R2T
// data is aborted (SQ deletion), then the Disconnect completes and the
// connection closes.
func TestDisconnectCompletesLast(t *testing.T) {
	tg, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := tg.subsys[0].table().get(1)
	ns.b = slowBackend{ns.b, 300 * time.Millisecond}
	ns.blocking = true
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	a := adminCATTR(t, tg.Addrs()[0], testNQN, 0, 0) // INDIVIOQDELS clear
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
	w := nvme.WriteCmd(1, 0, 1)
	announced := nvme.WriteCmd(1, 8, 1)
	nvme.SetDataLength(&announced, 512) // its data waits for an R2T answer that never comes
	cids := q.sendAll([]nvme.SQE{w, announced, nvme.DisconnectCmd(0)}, [][]byte{make([]byte, 512), nil, nil})
	var order []uint16
	got := map[uint16]nvme.Status{}
	for {
		p, err := q.conn.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("connection not closed after Disconnect")
				}
			}
			break
		}
		if r, ok := p.(*tcp.CapsuleResp); ok {
			order = append(order, r.CQE.CID)
			got[r.CQE.CID] = r.CQE.Status.Code()
		}
	}
	if len(order) != 3 || order[2] != cids[2] {
		t.Fatalf("completions %v (CIDs write %d, announced %d, Disconnect %d): the Disconnect must come last",
			order, cids[0], cids[1], cids[2])
	}
	if got[cids[0]] != nvme.StatusSuccess || got[cids[1]] != nvme.StatusAbortSQDeleted || got[cids[2]] != nvme.StatusSuccess {
		t.Fatalf("statuses %v", got)
	}
	// The admin Connect left CATTR.INDIVIOQDELS clear, so deleting the
	// I/O queue ends the association (Base 2.2 3.3.2.4): the admin queue
	// answers no more.
	// The association ends as the Disconnect completes; a command the
	// admin queue received before that may still be answered.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cqe, err := a.try(nvme.KeepAliveCmd(), nil, false, nil)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin queue still answers (%v) 10s after a Disconnect without INDIVIOQDELS", cqe.Status)
		}
	}
}
