package initiator_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
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
	waitFor(t, "path 1 to learn group 3", func() bool { return m.Paths()[0].ANAState(3) == nvme.ANAOptimized })
}

// TestMultipathANALogMDTSZero (review minor): with MDTS 0 (no limit, as
// nvmet reports) the host read the ANA log into a 4 KiB buffer, so a
// subsystem with about 1000 namespaces had a truncated log and no path
// connected. The host sizes the read from NANAGRPID and MNAN and reads
// the whole log.
func TestMultipathANALogMDTSZero(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.MDTS = "4KiB" // reported as MDTS 0: no limit
	ns := cfg.Subsystems[0].Namespaces[0]
	ns.Size = "64KiB"
	cfg.Subsystems[0].Namespaces = nil
	for i := range uint32(target.MaxNSID) {
		ns.NSID = i + 1
		cfg.Subsystems[0].Namespaces = append(cfg.Subsystems[0].Namespaces, ns)
	}
	tg := targettest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	m, err := initiator.ConnectMultipath(ctx, []string{tg.Addrs()[0].String()}, target.DefaultSubsystemNQN, mpOpts(&events, &mu))
	if err != nil {
		t.Fatalf("ANA log of %d namespaces with MDTS 0: %v", target.MaxNSID, err)
	}
	defer m.Close()
	if mts := m.Controller().MaxTransferSize(); mts > 0 {
		t.Fatalf("the target reports MDTS %d (max transfer %d): the test needs 0", m.Controller().IdentifyData().MDTS, mts)
	}
	if err := m.Write(ctx, target.MaxNSID, 0, 1, make([]byte, 512)); err != nil {
		t.Fatalf("write to the last namespace: %v", err)
	}
	if m.Paths()[0].IOs() != 1 {
		t.Fatalf("per-path I/Os %v", pathIOs(m))
	}
}
