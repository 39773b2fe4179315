package target

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/nvme"
)

// The target reports a Command Quiesce Time (Identify CQT): once an
// association has ended, none of its commands that had not started may
// change a namespace, or a host that retries a write on another path after
// KATO and CQT has it overwritten by the original later (NVMe Base 2.1
// 9.6, the "ghost write"). These tests end an association while commands
// are buffered or waiting for a worker, and check none of them runs.

// TestEndedAssociationRunsNoBufferedCapsule: a write capsule the receive
// loop reads after the association ended is not run.
func TestEndedAssociationRunsNoBufferedCapsule(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	tg.mu.Lock()
	ctrl := tg.ctrls[a.cntlid]
	tg.mu.Unlock()
	testHookCapsule = func(q *queue, sqe *nvme.SQE) {
		if q.qid == 1 && sqe.Opcode == nvme.CmdWrite {
			// As if keep alive expired just after the capsule reached
			// the target's receive buffer.
			q.ctrl.kill("test: association ended")
		}
	}
	t.Cleanup(func() { testHookCapsule = nil })
	q.sendAll([]nvme.SQE{nvme.WriteCmd(1, 0, 1)}, [][]byte{bytes.Repeat([]byte{0xAB}, 512)})
	testbound.Eventually(t, 15*time.Second, "the association to end", func() bool { return ctrl.ended.Load() })
	testHookCapsule = nil

	b := admin(t, addr, testNQN, 0)
	bq := ioQueue(t, addr, b.cntlid, 1, 0)
	got := make([]byte, 512)
	mustOK(t, bq.exec(nvme.ReadCmd(1, 0, 1), nil, false, got))
	if !bytes.Equal(got, make([]byte, 512)) {
		t.Fatalf("block 0 reads %x...: a write read after its association ended was run", got[:4])
	}
}

// gateBackend blocks writes until released and counts them.
type gateBackend struct {
	Backend
	entered, done atomic.Int32
	release       chan struct{}
}

func (b *gateBackend) WriteAt(p []byte, off int64) (int, error) {
	b.entered.Add(1)
	<-b.release
	defer b.done.Add(1)
	return b.Backend.WriteAt(p, off)
}

// TestEndedAssociationRunsNoQueuedWorkerCommand: commands waiting for a
// worker when the association ends are aborted, not run; those already
// running finish.
func TestEndedAssociationRunsNoQueuedWorkerCommand(t *testing.T) {
	tg, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := tg.subsys[0].table().get(1)
	gate := &gateBackend{Backend: ns.b, release: make(chan struct{})}
	ns.b, ns.blocking = gate, true
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	const n = 8
	var sqes []nvme.SQE
	var data [][]byte
	for i := range n {
		sqes = append(sqes, nvme.WriteCmd(1, uint64(i), 1))
		data = append(data, bytes.Repeat([]byte{byte(i + 1)}, 512))
	}
	q.sendAll(sqes, data)
	tq := func() *queue {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		for x := range tg.queues {
			if x.qid == 1 && x.ctrl != nil && x.ctrl.cntlid == a.cntlid {
				return x
			}
		}
		return nil
	}
	// Every write is in: some in the workers (blocked in the backend),
	// the rest queued for them.
	testbound.Eventually(t, 15*time.Second, "all writes to reach the workers", func() bool {
		x := tq()
		return x != nil && x.outstanding.Load() == n && gate.entered.Load() > 0
	})
	running := gate.entered.Load()
	tg.mu.Lock()
	ctrl := tg.ctrls[a.cntlid]
	tg.mu.Unlock()
	ctrl.kill("test: association ended")
	close(gate.release)
	testbound.Eventually(t, 15*time.Second, "the I/O queue to end", func() bool { return tq() == nil })
	if got := gate.done.Load(); got != running {
		t.Fatalf("%d writes ran in the backend; only the %d already running when the association ended may", got, running)
	}
	if running == n {
		t.Fatalf("all %d writes were running at once: the test needs some queued for a worker", n)
	}
}
