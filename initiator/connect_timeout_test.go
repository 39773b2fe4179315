package initiator_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/target"
)

// hangingDial is a dialer to a host that drops every SYN: it answers only
// when its context ends.
func hangingDial(ctx context.Context, _ string) (net.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// wantConnectTimeout checks that err is the connect timeout of addr after d.
func wantConnectTimeout(t *testing.T, err error, addr string, d time.Duration) {
	t.Helper()
	var cte *initiator.ConnectTimeoutError
	if !errors.As(err, &cte) || cte.Addr != addr || cte.After != d {
		t.Fatalf("error %v (%T), want a ConnectTimeoutError for %s after %v", err, err, addr, d)
	}
	if want := "no answer from " + addr + " within " + d.String() + " (connect timeout)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("error %q is not one line", err)
	}
}

// A host that drops SYNs made every dial wait for the kernel's SYN
// retries (about 135 s): neither Timeout nor anything else bounded the
// TCP connect. Now ConnectTimeout does (by default 10 s, or Timeout if
// shorter), for Connect, Discover and DialRaw alike, and the error says
// what happened. The dial here hangs until its context ends; the tests'
// own bound (20 s) is what turns the old hang into a failure.
func TestConnectTimeoutBoundsTheDial(t *testing.T) {
	const addr = "192.0.2.1:4420" // never dialled: the hook answers
	for _, tc := range []struct {
		name string
		opts initiator.Options
		want time.Duration
	}{
		{"Timeout shorter than the default", initiator.Options{Timeout: 300 * time.Millisecond}, 300 * time.Millisecond},
		{"ConnectTimeout", initiator.Options{ConnectTimeout: 200 * time.Millisecond, Timeout: time.Minute}, 200 * time.Millisecond},
	} {
		for _, call := range []struct {
			name string
			do   func(initiator.Options) error
		}{
			{"Connect", func(o initiator.Options) error {
				_, err := initiator.Connect(context.Background(), addr, target.DefaultSubsystemNQN, o)
				return err
			}},
			{"Discover", func(o initiator.Options) error {
				_, err := initiator.Discover(context.Background(), addr, o)
				return err
			}},
			{"DialRaw", func(o initiator.Options) error {
				r, err := initiator.DialRaw(context.Background(), addr, o)
				if err == nil {
					r.Close()
				}
				return err
			}},
		} {
			t.Run(tc.name+"/"+call.name, func(t *testing.T) {
				o := tc.opts
				initiator.SetDial(&o, hangingDial)
				var err error
				start := time.Now()
				testbound.Within(t, 20*time.Second, call.name+" to a host that drops SYNs", func() { err = call.do(o) })
				if el := time.Since(start); el < tc.want {
					t.Errorf("gave up after %v, before the connect timeout of %v", el, tc.want)
				}
				wantConnectTimeout(t, err, addr, tc.want)
			})
		}
	}
}

func TestConnectTimeoutDefaults(t *testing.T) {
	for _, tc := range []struct {
		o    initiator.Options
		want time.Duration
	}{
		{initiator.Options{}, initiator.DefaultConnectTimeout},
		{initiator.Options{Timeout: time.Hour}, initiator.DefaultConnectTimeout},
		{initiator.Options{Timeout: -1}, initiator.DefaultConnectTimeout},
		{initiator.Options{Timeout: 2 * time.Second}, 2 * time.Second},
		{initiator.Options{Timeout: 2 * time.Second, ConnectTimeout: 5 * time.Second}, 5 * time.Second},
		{initiator.Options{ConnectTimeout: -1}, 0},
	} {
		if got := tc.o.EffectiveConnectTimeout(); got != tc.want {
			t.Errorf("%+v: connect timeout %v, want %v", tc.o, got, tc.want)
		}
	}
}

// The caller's context still rules: cancelled (Ctrl-C) or expired first,
// its error is returned, not a connect timeout (a negative ConnectTimeout
// leaves the dial to the context alone).
func TestConnectTimeoutLeavesTheContextAlone(t *testing.T) {
	const addr = "192.0.2.1:4420"
	o := initiator.Options{ConnectTimeout: time.Minute}
	initiator.SetDial(&o, hangingDial)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	var err error
	testbound.Within(t, 20*time.Second, "cancelled Connect", func() {
		_, err = initiator.Connect(ctx, addr, target.DefaultSubsystemNQN, o)
	})
	var cte *initiator.ConnectTimeoutError
	if !errors.Is(err, context.Canceled) || errors.As(err, &cte) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}

	for _, ct := range []time.Duration{-1, time.Minute} {
		o.ConnectTimeout = ct
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		testbound.Within(t, 20*time.Second, "Connect with a context deadline", func() {
			_, err = initiator.Connect(ctx, addr, target.DefaultSubsystemNQN, o)
		})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &cte) {
			t.Errorf("ConnectTimeout %v, context deadline first: %v, want context.DeadlineExceeded", ct, err)
		}
	}
}

// A real SYN drop on loopback (a listener whose accept queue is full):
// the kernel's dialer, not a hook, is what the connect timeout bounds. A
// net.Dialer times out on its own at the deadline, racing the context's
// timer: a few rounds, so both orders are seen.
func TestConnectTimeoutSYNDrop(t *testing.T) {
	addr := testnet.SYNDrop(t)
	for i := range 3 {
		var err error
		testbound.Within(t, 30*time.Second, "Connect to a port that drops SYNs", func() {
			_, err = initiator.Connect(context.Background(), addr, target.DefaultSubsystemNQN,
				initiator.Options{ConnectTimeout: 300 * time.Millisecond})
		})
		wantConnectTimeout(t, err, addr, 300*time.Millisecond)
		testbound.Within(t, 30*time.Second, "Discover from a port that drops SYNs", func() {
			_, err = initiator.Discover(context.Background(), addr, initiator.Options{Timeout: 200 * time.Millisecond})
		})
		if t.Failed() {
			t.Fatalf("round %d", i)
		}
		wantConnectTimeout(t, err, addr, 200*time.Millisecond)
	}
}

// Multipath reconnects go through the same bounded dial: a path whose
// host stops answering SYNs reports a connect timeout on each attempt,
// and reconnects once it answers again.
func TestConnectTimeoutMultipathReconnect(t *testing.T) {
	tg, addrs := twoPortTarget(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []initiator.PathEvent
	o := mpOpts(&events, &mu)
	o.ConnectTimeout = 300 * time.Millisecond
	var drop atomic.Bool // path 1 drops SYNs
	initiator.SetDial(&o.Options, func(ctx context.Context, a string) (net.Conn, error) {
		if a == addrs[0] && drop.Load() {
			return hangingDial(ctx, a)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a)
	})
	m, err := initiator.ConnectMultipath(ctx, addrs, target.DefaultSubsystemNQN, o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	drop.Store(true)
	if err := tg.PortDown(1); err != nil {
		t.Fatal(err)
	}
	var failed error
	testbound.Eventually(t, 30*time.Second, "a reconnect of path 1 that failed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Path == 0 && e.Event == "reconnect failed" {
				failed = e.Err
				return true
			}
		}
		return false
	})
	wantConnectTimeout(t, failed, addrs[0], 300*time.Millisecond)
	drop.Store(false)
	if err := tg.PortUp(1); err != nil {
		t.Fatal(err)
	}
	testbound.Eventually(t, 30*time.Second, "path 1 reconnected", func() bool { return m.Paths()[0].State() == initiator.PathLive })
}
