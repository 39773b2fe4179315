package target

import (
	"context"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
)

func fileTargetConfig(path string) Config {
	c := testConfig()
	c.Listeners = c.Listeners[:1]
	c.Subsystems = []SubsystemConfig{{NQN: testNQN, AllowAnyHost: true,
		Namespaces: []NamespaceConfig{{NSID: 1, Backend: BackendFile, Path: path, Size: "1MiB", BlockSize: 512}}}}
	return c
}

// TestGracefulShutdown closes the target while a host has a full queue of
// verified writes (plain and FUA) and Flushes in flight on two queues:
// Close returns, every command completes or fails (none hangs), the host
// sees its queues fail, and a new target on the same file holds every
// acknowledged write.
func TestGracefulShutdown(t *testing.T) {
	path := t.TempDir() + "/ns.img"
	const slots = 48
	s := newSlotState(slots)
	for round := range 4 {
		tg := startTarget(t, fileTargetConfig(path))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := initiator.Connect(ctx, tg.Addrs()[0].String(), testNQN, initiator.Options{NrIOQueues: 2, QueueSize: 33})
		if err != nil {
			t.Fatal(err)
		}
		gens, err := readSlots(ctx, c.IOQueues()[0], 1, slots)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.check(gens, false); err != nil {
			t.Fatalf("round %d, after restart: %v", round, err)
		}
		if round == 3 { // the last restart only verifies
			c.Close()
			cancel()
			tg.Close()
			break
		}
		s.from(gens)
		done := make(chan struct{})
		go func() {
			writeSlots(c, 1, s, 5*time.Millisecond, nil)
			close(done)
		}()
		time.Sleep(200 * time.Millisecond)
		closed := make(chan error, 1)
		go func() { closed <- tg.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Close hangs with commands in flight")
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("commands in flight neither completed nor failed after Close")
		}
		c.Close()
		cancel()
		s.mu.Lock()
		var acked uint64
		for _, g := range s.acked {
			acked += g
		}
		t.Logf("round %d: %d writes acknowledged in all, %d commands failed at shutdown", round, acked, s.errs)
		s.mu.Unlock()
	}
	checkNoTargetGoroutines(t)
}
