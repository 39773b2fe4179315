package hostconform

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/initiator"
)

// ownIOHost is a host control shaped like SPDK's (fixtures/spdk
// HostControl): connect keeps a controller, but every io connects a
// controller of its own with the connect's arguments, runs the I/O on it
// and disconnects it when done.
type ownIOHost struct {
	devs []string

	mu      sync.Mutex
	connect map[string]string
	main    *SelfHost
}

func (h *ownIOHost) self() *SelfHost {
	return &SelfHost{Options: initiator.Options{Deviations: h.devs, Timeout: 10 * time.Second, KATO: 5 * time.Second}}
}

func (h *ownIOHost) Do(ctx context.Context, a control.Action) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch a.Verb {
	case VerbConnect:
		h.connect, h.main = a.Args, h.self()
		return h.main.Do(ctx, a)
	case VerbDisconnect:
		if h.main != nil {
			h.main.Close()
		}
		return nil
	case VerbIO:
		io := h.self()
		defer io.Close()
		if err := io.Do(ctx, control.Action{Verb: VerbConnect, Args: h.connect}); err != nil {
			return err
		}
		return io.Do(ctx, a)
	}
	return control.ErrUnsupported
}

// TestDataDigestErrorOwnIOController: a host whose io runs on a controller
// of its own, which it disconnects when the io ends, is not taken for one
// that closed the connection on a data digest error (HOST-DDGST-001 failed
// SPDK's initiator that way); without the deviation it passes, with
// ddgst-unchecked it still fails.
func TestDataDigestErrorOwnIOController(t *testing.T) {
	for _, dev := range []string{"", "ddgst-unchecked"} {
		t.Run("deviation="+dev, func(t *testing.T) {
			h := &ownIOHost{}
			if dev != "" {
				h.devs = []string{dev}
			}
			cfg, self := selfConfig()
			self.Close()
			cfg.Control = h
			sum, err := Run(context.Background(), cfg, nil, RunOptions{Only: []string{"HOST-DDGST-001"}})
			if err != nil {
				t.Fatal(err)
			}
			r := sum.Results[0]
			if dev == "" && r.State != "passed" {
				t.Errorf("%s against a conformant host whose io has a controller of its own: %s: %s", r.ID, r.State, r.Message)
			}
			if dev != "" && !r.Failed() {
				t.Errorf("%s passed a host with deviation %s: %s", r.ID, dev, r.Message)
			}
			t.Logf("%s %s: %s %v", r.ID, r.State, r.Message, r.Details)
		})
	}
}
