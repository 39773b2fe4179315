package initiator

import (
	"context"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// With as many paths as I/O queues per path, path selection and queue
// selection used one round-robin counter, so each path only ever used one
// of its queues (path 1 queue 1, path 2 queue 2): the rest sat idle, and
// a target with idle_timeout closed them.
func TestMultipathUsesEveryQueueOfEveryPath(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}, {Address: "127.0.0.1:0", PortID: 2, Serve: target.ServeIO}}
	cfg.Subsystems[0].Namespaces[0].Size = "1MiB"
	tg := targettest.Start(t, cfg)
	var addrs []string
	for _, a := range tg.Addrs() {
		addrs = append(addrs, a.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := ConnectMultipath(ctx, addrs, target.DefaultSubsystemNQN,
		MultipathOptions{Options: Options{NrIOQueues: 2, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	used := map[*Queue]bool{}
	for range 64 {
		p, _, q, _ := m.pick(1)
		if p == nil {
			t.Fatal("no path picked")
		}
		used[q] = true
	}
	for _, p := range m.Paths() {
		for _, q := range p.ctrl.IOQueues() {
			if !used[q] {
				t.Errorf("path %d I/O queue %d never picked in 64 I/Os", p.idx+1, q.QID())
			}
		}
	}
}
