package initiator_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

// TestMultipathUnknownNSID (review #11): I/O to a namespace no ANA log
// lists used to wait for a path for ever (every live path's state for
// group 0 is "unknown"); it must go down a live path and come back with
// the controller's Invalid Namespace, as on a plain queue.
func TestMultipathUnknownNSID(t *testing.T) {
	_, addrs := twoPortTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	m, err := initiator.ConnectMultipath(ctx, addrs, target.DefaultSubsystemNQN, mpOpts(&events, &mu))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	err = m.Read(rctx, 7, 0, 1, make([]byte, 512))
	var st nvme.Status
	if !errors.As(err, &st) || st.Code() != nvme.StatusInvalidNamespace {
		t.Fatalf("multipath read of NSID 7, which does not exist: %v, want Invalid Namespace", err)
	}
	if m.Failed() != 1 {
		t.Fatalf("failed %d, want 1", m.Failed())
	}
}

// TestMultipathNamespaceBeforeNotice (review #11): a namespace added while
// the host has not (yet) handled its Namespace Attribute Changed notice
// is reachable at once: the I/O goes down a live path, and the path
// learns the namespace's ANA group from it. Here the notice never comes:
// the host turned notices off on the controller.
func TestMultipathNamespaceBeforeNotice(t *testing.T) {
	tg, addrs := twoPortTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	m, err := initiator.ConnectMultipath(ctx, addrs[:1], target.DefaultSubsystemNQN, mpOpts(&events, &mu))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// AsyncEvents enables the notices once (the path's watcher calls it
	// too, and waits for this call); then they are turned off for good.
	c := m.Controller()
	c.AsyncEvents()
	if _, err := c.SetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, 0, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := tg.AddNamespace(target.DefaultSubsystemNQN, target.NamespaceConfig{NSID: 7, Backend: target.BackendMem, Size: "1MiB", ANAGroup: 3}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := m.Write(wctx, 7, 0, 1, make([]byte, 512)); err != nil {
		t.Fatalf("write to a namespace added before its notice: %v", err)
	}
	testbound.Eventually(t, 20*time.Second, "path 1 to learn group 3", func() bool { return m.Paths()[0].ANAState(3) == nvme.ANAOptimized })
}
