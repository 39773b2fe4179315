package hostconform

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/target"
)

// Setup is how a check shapes the test controller before the host
// connects: the reference target's configuration (CPDA, MAXH2CDATA, the
// digests it grants, in-capsule data size ...) and hooks on the wire that
// change, drop or add PDUs (a split R2T, a corrupted digest, a C2HData
// with a CCCID nobody sent). Hooks run on the target's own goroutines, one
// per direction and connection.
type Setup struct {
	Config   *target.Config
	ToHost   Hook
	FromHost Hook
	// HostNQN is the host NQN the run connects with (Config.HostNQN;
	// empty: the host's own), for a controller that configures the
	// host (its DH-HMAC-CHAP secret).
	HostNQN string
}

// Controller is the test controller of one check: nvmftest's reference
// target behind a tap on every connection.
type Controller struct {
	tgt    *target.Target
	trace  *capture.File
	label  string // names the check in the trace's packet comments
	setup  Setup
	notify chan struct{}

	mu    sync.Mutex
	conns []*Conn
}

// baseConfig is the test controller's target: one subsystem with one
// writable 64 MiB namespace, open to any host, on addr.
func baseConfig(addr, subnqn string) target.Config {
	c := target.DefaultConfig()
	c.Listeners = []target.ListenerConfig{{Address: addr, PortID: 1, Serve: target.ServeAll}}
	s := target.DefaultSubsystem(subnqn)
	s.Namespaces[0].Size = "64MiB"
	c.Subsystems = []target.SubsystemConfig{s}
	c.IOQueues = 4
	// A host that has done something fatal gets its connection closed
	// soon: the checks judge the host's close, not the controller's wait.
	c.FatalCloseWait = 5 * time.Second
	return c
}

// startController makes the test controller of one check; the run's
// listener hands it connections (serve). trace, if not nil, records them
// as pcapng.
func startController(label string, cfg target.Config, setup Setup, trace *capture.File) (*Controller, error) {
	tgt, err := target.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("test controller: %w", err)
	}
	return &Controller{tgt: tgt, trace: trace, label: label, setup: setup, notify: make(chan struct{}, 1)}, nil
}

// serve taps one accepted connection and gives it to the target.
func (c *Controller) serve(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.mu.Lock()
	id := len(c.conns) + 1
	if c.trace != nil {
		nc = c.trace.Record(nc, false, fmt.Sprintf("%s: test controller connection %d", c.label, id))
	}
	w := newConn(nc, id, c.setup.ToHost, c.setup.FromHost, c.notify)
	c.conns = append(c.conns, w)
	c.mu.Unlock()
	c.tgt.Serve(w, 1)
	c.poke()
}

func (c *Controller) poke() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Conns returns the connections accepted so far, in order.
func (c *Controller) Conns() []*Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Conn(nil), c.conns...)
}

// Target is the reference target behind the taps (to change namespaces,
// ANA states ... while a check runs).
func (c *Controller) Target() *target.Target { return c.tgt }

// WaitFor polls cond whenever a PDU or a connection comes or goes, until
// it holds (true) or ctx ends (false).
func (c *Controller) WaitFor(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-c.notify:
		case <-tick.C:
		}
	}
}

// close ends the target and every connection.
func (c *Controller) close() {
	_ = c.tgt.Close()
	for _, w := range c.Conns() {
		_ = w.Close()
	}
}
