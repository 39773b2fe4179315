package initiator_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// twoPortTarget serves the default subsystem (4 MiB) on two I/O ports, 1 and 2.
func twoPortTarget(t *testing.T) (*target.Target, []string) {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}, {Address: "127.0.0.1:0", PortID: 2, Serve: target.ServeIO}}
	cfg.Subsystems[0].Namespaces[0].Size = "4MiB"
	tg := targettest.Start(t, cfg)
	var addrs []string
	for _, a := range tg.Addrs() {
		addrs = append(addrs, a.String())
	}
	return tg, addrs
}

func mpOpts(events *[]initiator.PathEvent, mu *sync.Mutex) initiator.MultipathOptions {
	return initiator.MultipathOptions{
		Options:        initiator.Options{NrIOQueues: 2, Timeout: 3 * time.Second, KATO: 2 * time.Second},
		ReconnectDelay: 20 * time.Millisecond, ReconnectDelayMax: 200 * time.Millisecond,
		CtrlLossTmo: 30 * time.Second,
		OnEvent: func(e initiator.PathEvent) {
			mu.Lock()
			*events = append(*events, e)
			mu.Unlock()
		},
	}
}

// ios writes and reads back n blocks, counting I/Os per path.
func ios(t *testing.T, ctx context.Context, m *initiator.Multipath, n int, fill byte) {
	t.Helper()
	w := bytes.Repeat([]byte{fill}, 512)
	r := make([]byte, 512)
	for i := range n {
		if err := m.Write(ctx, 1, uint64(i), 1, w); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if err := m.Read(ctx, 1, uint64(i), 1, r); err != nil || !bytes.Equal(r, w) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
}

func pathIOs(m *initiator.Multipath) []int64 {
	var l []int64
	for _, p := range m.Paths() {
		l = append(l, p.IOs())
	}
	return l
}

func TestMultipathANA(t *testing.T) {
	tg, addrs := twoPortTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	// Port 2 non-optimized: everything goes to port 1.
	if err := tg.SetANAState(2, 1, nvme.ANANonOptimized); err != nil {
		t.Fatal(err)
	}
	m, err := initiator.ConnectMultipath(ctx, addrs, target.DefaultSubsystemNQN, mpOpts(&events, &mu))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ios(t, ctx, m, 20, 1)
	if c := pathIOs(m); c[0] != 40 || c[1] != 0 {
		t.Fatalf("optimized first: per-path I/Os %v", c)
	}
	// Port 1 inaccessible: I/O moves to the non-optimized path. The first
	// I/O may hit the path status and be retried.
	if err := tg.SetANAState(1, 1, nvme.ANAInaccessible); err != nil {
		t.Fatal(err)
	}
	ios(t, ctx, m, 20, 2)
	if c := pathIOs(m); c[1] != 40 {
		t.Fatalf("after inaccessible: per-path I/Os %v", c)
	}
	// Back: optimized again (the ANA change event or a path status tells).
	if err := tg.SetANAState(1, 1, nvme.ANAOptimized); err != nil {
		t.Fatal(err)
	}
	testbound.Eventually(t, 20*time.Second, "path 1 optimized", func() bool { return m.Paths()[0].ANAState(1) == nvme.ANAOptimized })
	ios(t, ctx, m, 20, 3)
	if c := pathIOs(m); c[0] != 80 {
		t.Fatalf("after failback: per-path I/Os %v", c)
	}
	// Both inaccessible: I/O waits (a live path may come back), then flows.
	_ = tg.SetANAState(2, 1, nvme.ANAInaccessible)
	_ = tg.SetANAState(1, 1, nvme.ANAInaccessible)
	testbound.Eventually(t, 20*time.Second, "both inaccessible", func() bool {
		return m.Paths()[0].ANAState(1) == nvme.ANAInaccessible && m.Paths()[1].ANAState(1) == nvme.ANAInaccessible
	})
	done := make(chan error, 1)
	go func() { done <- m.Write(ctx, 1, 0, 1, make([]byte, 512)) }()
	select {
	case err := <-done:
		t.Fatalf("I/O with no accessible path completed: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	_ = tg.SetANAState(2, 1, nvme.ANAOptimized)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m.Failed() != 0 {
		t.Fatalf("failed %d", m.Failed())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 4 {
		t.Fatalf("events %+v", events)
	}
}

func TestMultipathPortDownReconnect(t *testing.T) {
	tg, addrs := twoPortTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	m, err := initiator.ConnectMultipath(ctx, addrs, target.DefaultSubsystemNQN, mpOpts(&events, &mu))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ios(t, ctx, m, 10, 1)
	before := pathIOs(m)
	if before[0] == 0 || before[1] == 0 {
		t.Fatalf("round robin over two optimized paths: %v", before)
	}
	if err := tg.PortDown(1); err != nil {
		t.Fatal(err)
	}
	ios(t, ctx, m, 20, 2) // no I/O fails: retried on port 2
	if m.Failed() != 0 {
		t.Fatalf("failed %d", m.Failed())
	}
	testbound.Eventually(t, 20*time.Second, "path 1 not live", func() bool { return m.Paths()[0].State() != initiator.PathLive })
	if err := tg.PortUp(1); err != nil {
		t.Fatal(err)
	}
	testbound.Eventually(t, 20*time.Second, "path 1 reconnected", func() bool { return m.Paths()[0].State() == initiator.PathLive })
	mid := pathIOs(m)
	ios(t, ctx, m, 10, 3)
	if after := pathIOs(m); after[0] == mid[0] {
		t.Fatalf("I/O did not move back: %v -> %v", mid, after)
	}
}

func TestMultipathCtrlLossAndFastFail(t *testing.T) {
	tg, addrs := twoPortTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	o := mpOpts(&events, &mu)
	o.FastIOFailTmo = 100 * time.Millisecond
	o.CtrlLossTmo = 600 * time.Millisecond
	m, err := initiator.ConnectMultipath(ctx, addrs[:1], target.DefaultSubsystemNQN, o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ios(t, ctx, m, 2, 1)
	_ = tg.PortDown(1)
	// Before fast_io_fail_tmo, I/O waits; after it, it fails.
	start := time.Now()
	err = m.Write(ctx, 1, 0, 1, make([]byte, 512))
	if !errors.Is(err, initiator.ErrNoPath) {
		t.Fatalf("write with the only path down: %v, want ErrNoPath", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	testbound.Eventually(t, 20*time.Second, "path deleted after ctrl_loss_tmo", func() bool { return m.Paths()[0].State() == initiator.PathDeleted })
	_ = tg.PortUp(1)
	time.Sleep(100 * time.Millisecond)
	if m.Paths()[0].State() != initiator.PathDeleted || m.Failed() != 1 {
		t.Fatalf("deleted path came back (%v) or failed %d", m.Paths()[0].State(), m.Failed())
	}
	mu.Lock()
	defer mu.Unlock()
	var seen []string
	for _, e := range events {
		seen = append(seen, e.Event)
	}
	t.Logf("events %q", seen)
}

// TestMultipathNamespaceAdded: a namespace added at run time in another
// ANA group is reachable once the namespace-change event arrives.
func TestMultipathNamespaceAdded(t *testing.T) {
	tg, addrs := twoPortTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	m, err := initiator.ConnectMultipath(ctx, addrs, target.DefaultSubsystemNQN, mpOpts(&events, &mu))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := tg.AddNamespace(target.DefaultSubsystemNQN, target.NamespaceConfig{NSID: 7, Backend: target.BackendMem, Size: "1MiB", ANAGroup: 3}); err != nil {
		t.Fatal(err)
	}
	_ = tg.SetANAState(1, 3, nvme.ANANonOptimized)
	// Port 2's states did not change: only the namespace-change event
	// makes path 2 learn group 3.
	testbound.Eventually(t, 20*time.Second, "group 3 known on both paths", func() bool {
		return m.Paths()[1].ANAState(3) == nvme.ANAOptimized && m.Paths()[0].ANAState(3) == nvme.ANANonOptimized
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := m.Write(wctx, 7, 0, 1, make([]byte, 512)); err != nil {
		t.Fatalf("write to the added namespace: %v", err)
	}
	if m.Paths()[1].ANAState(3) != nvme.ANAOptimized || m.Paths()[1].IOs() != 1 {
		t.Fatalf("group 3: path 2 state %#x, I/Os %v", m.Paths()[1].ANAState(3), pathIOs(m))
	}
}
