package initiator_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/faults"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

// heldPath connects a multipath host to the two-port target with path 1
// through a fault proxy (so its host-to-target bytes can be held) and
// path 2 direct and non-optimized (so I/O prefers path 1). Timeout is
// short and KATO 1 s: a hold of up to KATO times out commands on path 1
// and still lets their bytes reach the target while its association
// lives, as NVMe Base 2.1 9.6.2 allows a network to delay a command by up
// to one KATT.
func heldPath(t *testing.T, tweak ...func(*initiator.MultipathOptions)) (*initiator.Multipath, *faults.Proxy, func() []string) {
	t.Helper()
	tg, addrs := twoPortTarget(t)
	if err := tg.SetANAState(2, 1, nvme.ANANonOptimized); err != nil {
		t.Fatal(err)
	}
	px, err := faults.New("127.0.0.1:0", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	var mu sync.Mutex
	var events []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := initiator.MultipathOptions{
		Options: initiator.Options{NrIOQueues: 1, Timeout: 300 * time.Millisecond, KATO: time.Second},
		// Path 1 stays lost for the test once it is lost.
		ReconnectDelay: time.Minute, CtrlLossTmo: 5 * time.Minute,
		OnEvent: func(e initiator.PathEvent) {
			mu.Lock()
			events = append(events, e.Event)
			mu.Unlock()
		},
	}
	for _, f := range tweak {
		f(&o)
	}
	m, err := initiator.ConnectMultipath(ctx, []string{px.Addr().String(), addrs[1]}, target.DefaultSubsystemNQN, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	// The path's watcher enables notices with a command of its own; done
	// here first (it runs once), it is not caught by a hold.
	m.Controller().AsyncEvents()
	return m, px, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), events...)
	}
}

// TestMultipathStaleWriteAfterFailover is the ghost write of the release
// review (#2): a write times out on path 1 while its capsule is still
// held in the network; the host retries it on path 2, the application
// then writes newer data there; later the held capsule reaches the target
// on path 1's association, which is still alive, and runs. Retrying at
// once lost the newer data ("OLD_" read back); the host must hold the
// retry until path 1's controller has quiesced.
func TestMultipathStaleWriteAfterFailover(t *testing.T) {
	m, px, events := heldPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	block := func(s string) []byte { return bytes.Repeat([]byte(s), 128) } // 512 bytes
	if err := m.Write(ctx, 1, 0, 1, block("INIT")); err != nil {
		t.Fatal(err)
	}
	if m.Paths()[0].IOs() != 1 {
		t.Fatalf("the first write went elsewhere than path 1: per-path I/Os %v", pathIOs(m))
	}
	px.SetHold(faults.ToTarget, 800*time.Millisecond)
	start := time.Now()
	if err := m.Write(ctx, 1, 0, 1, block("OLD_")); err != nil {
		t.Fatalf("write OLD_: %v", err)
	}
	t.Logf("write OLD_ acknowledged after %v (retried %d, held %d for %v)", time.Since(start).Round(time.Millisecond),
		m.Retried(), m.Held(), m.HeldTime().Round(time.Millisecond))
	px.SetHold(faults.ToTarget, 0)
	if err := m.Write(ctx, 1, 0, 1, block("NEW_")); err != nil {
		t.Fatalf("write NEW_: %v", err)
	}
	// Whatever path 1 still held reaches the target, then the target gets
	// its CQT (1 s) to run it.
	testbound.Eventually(t, 20*time.Second, "the proxy to deliver what it held", func() bool { return px.Held() == 0 })
	time.Sleep(1500 * time.Millisecond)
	r := make([]byte, 512)
	if err := m.Read(ctx, 1, 0, 1, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r, block("NEW_")) {
		t.Fatalf("DATA LOSS: block 0 reads %q..., not the last acknowledged write NEW_: the stale OLD_ from path 1 landed after it", r[:8])
	}
	if m.Retried() < 1 || m.Held() < 1 {
		t.Fatalf("the write was not failed over and held: retried %d, held %d", m.Retried(), m.Held())
	}
	ev := strings.Join(events(), "; ")
	if !strings.Contains(ev, "quiesce wait") || !strings.Contains(ev, "quiesced") {
		t.Fatalf("no quiesce wait among the path events: %s", ev)
	}
	t.Logf("events: %s", ev)
}

// TestMultipathReadNotHeld: a read outstanding on a lost path changes
// nothing, so it is retried on another path at once (Unrestricted Retry,
// NVMe Base 2.1 9.6.3.2.1), not held like a write.
func TestMultipathReadNotHeld(t *testing.T) {
	m, px, _ := heldPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	px.SetHold(faults.ToTarget, 800*time.Millisecond)
	if err := m.Read(ctx, 1, 0, 1, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	if m.Retried() < 1 || m.Held() != 0 {
		t.Fatalf("read: retried %d (want >= 1), held %d (want 0)", m.Retried(), m.Held())
	}
}

// TestMultipathQuiesceWaitBoundedByContext: the wait for a lost
// controller to quiesce ends with the I/O's context, and the error says
// the write may still land.
func TestMultipathQuiesceWaitBoundedByContext(t *testing.T) {
	m, px, _ := heldPath(t)
	px.SetHold(faults.ToTarget, 800*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := m.Write(ctx, 1, 0, 1, make([]byte, 512))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "may still be run") {
		t.Fatalf("write whose context ends while it is held: %v", err)
	}
	if m.Held() != 1 {
		t.Fatalf("held %d, want 1", m.Held())
	}
}

// TestMultipathCloseWaitsForLostController (review minor): a lost path's
// controller was shut down on a goroutine Close did not wait for, so
// Close could return while it still ran (up to 5 s plus Timeout).
func TestMultipathCloseWaitsForLostController(t *testing.T) {
	m, px, events := heldPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := m.Controller() // path 1's: the optimized one
	px.SetHold(faults.ToTarget, 800*time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Read(ctx, 1, 0, 1, make([]byte, 512))
	}()
	testbound.Eventually(t, 20*time.Second, "path 1 lost", func() bool { return strings.Contains(strings.Join(events(), ";"), "lost") })
	m.Close()
	for _, q := range append(c.IOQueues(), c.Admin()) {
		select {
		case <-q.Dead():
		default:
			t.Fatalf("Multipath.Close returned while the lost controller's queue %d was still open", q.QID())
		}
	}
	<-done
}

// TestMultipathMaxQuiesceWait: a controller's quiesce time (2 or 3 KATT
// plus CQT, which it sets) longer than MaxQuiesceWait is not waited out:
// after MaxQuiesceWait the write's error is returned, not retried, since
// the controller may still run it.
func TestMultipathMaxQuiesceWait(t *testing.T) {
	m, px, _ := heldPath(t, func(o *initiator.MultipathOptions) { o.MaxQuiesceWait = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	px.SetHold(faults.ToTarget, 800*time.Millisecond)
	err := m.Write(ctx, 1, 0, 1, make([]byte, 512))
	if !initiator.IsTransportError(err) || !strings.Contains(err.Error(), "MaxQuiesceWait") || !strings.Contains(err.Error(), "may still be run") {
		t.Fatalf("write held past MaxQuiesceWait: %v", err)
	}
	if m.Retried() != 0 || m.Paths()[1].IOs() != 0 || m.Held() != 1 {
		t.Fatalf("retried %d, path 2 I/Os %d, held %d: want 0, 0, 1", m.Retried(), m.Paths()[1].IOs(), m.Held())
	}
}
