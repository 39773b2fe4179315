package initiator_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// Review #8: the Asynchronous Event Request was re-armed by its Done, on
// the admin queue's reader, with Submit. With more goroutines issuing
// admin commands than the queue has CIDs, the CID the AEN freed went to
// one of them and the reader blocked in Submit: no completion was read
// again, and after the command timeout the admin queue (the association)
// died. The AER now has a CID of its own.
func TestAERReArmDoesNotStallBusyAdminQueue(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.Subsystems[0].Namespaces[0].Size = "1MiB"
	tg := targettest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := initiator.Connect(ctx, tg.Addrs()[0].String(), target.DefaultSubsystemNQN,
		initiator.Options{NrIOQueues: -1, KATO: -1, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	events := c.AsyncEvents()

	var completed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 200 { // many more than the admin queue's 31 CIDs
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.GetLogPage(ctx, nvme.LogANA, 0, 0, 0, buf); err != nil {
					return
				}
				completed.Add(1)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	for i, state := range []uint8{nvme.ANANonOptimized, nvme.ANAOptimized} {
		for start := completed.Load(); completed.Load() < start+500; {
			if err := c.Admin().Err(); err != nil {
				t.Fatalf("before event %d: %v", i, err)
			}
			time.Sleep(time.Millisecond)
		}
		if err := tg.SetANAState(1, 1, state); err != nil {
			t.Fatal(err)
		}
		select {
		case <-events:
		case <-time.After(20 * time.Second):
			t.Fatalf("event %d: no AEN (admin queue: %v)", i, c.Admin().Err())
		}
		// Admin commands go on completing, for longer than the command
		// timeout (which a stalled reader would have run into).
		deadline := time.Now().Add(20 * time.Second)
		for start := completed.Load(); completed.Load() < start+2000; {
			if err := c.Admin().Err(); err != nil {
				t.Fatalf("after event %d: admin queue failed: %v", i, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("after event %d: admin commands stopped completing (%d since)", i, completed.Load()-start)
			}
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(4 * time.Second) // past the 3 s command timeout
	if err := c.Admin().Err(); err != nil {
		t.Fatalf("admin queue failed: %v", err)
	}
}
