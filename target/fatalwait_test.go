package target

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// badTTAG sends an H2CData for a transfer tag the target never issued on
// c, a fatal Invalid PDU Header Field (NVMe/TCP 1.0 3.6.2.8), and reads
// the C2HTermReq.
func badTTAG(t *testing.T, c *client) {
	t.Helper()
	_ = c.conn.Send(&tcp.H2CData{CCCID: 9, TTAG: 999, DATAL: 512, Last: true}, make([]byte, 512))
	p, err := c.conn.Next()
	if err != nil {
		t.Fatalf("want C2HTermReq, got %v", err)
	}
	if tr, ok := p.(*tcp.TermReq); !ok || tr.FES != tcp.FESInvalidHeaderField {
		t.Fatalf("want C2HTermReq FES 1, got %v %+v", p.Type(), p)
	}
}

// TestFatalErrorWaitsForHost: after a C2HTermReq the target keeps the
// connection open and silent, processing nothing the host still sends,
// until the host closes it (NVMe/TCP 1.0 3.5.1); the association ends at
// the error, not when the connection closes, and the connection keeps
// counting against max_connections meanwhile.
func TestFatalErrorWaitsForHost(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnections = 3
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	bad := ioQueue(t, addr, a.cntlid, 1, 0)
	badTTAG(t, bad)

	// Commands after the error are not processed: no answer, no close.
	for i := range 3 {
		sqe := nvme.ReadCmd(1, 0, 1)
		sqe.CID = uint16(40 + i)
		if err := bad.conn.Send(&tcp.CapsuleCmd{SQE: sqe}, nil); err != nil {
			t.Fatalf("send after the C2HTermReq: %v", err)
		}
	}
	_ = bad.conn.SendRaw([]byte("garbage that is no PDU at all"))
	_ = bad.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if p, err := bad.conn.Next(); err == nil {
		t.Fatalf("%v after the C2HTermReq", p.Type())
	} else if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connection closed before the host closed it: %v", err)
	}

	// The I/O queue left its controller at the error: its QID is free,
	// and the association goes on.
	q1 := ioQueue(t, addr, a.cntlid, 1, 0)
	mustOK(t, q1.exec(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)))
	mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))

	// The waiting connection still counts: a, q1 and it fill the port.
	extra := dialRaw(t, addr)
	_ = extra.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := extra.nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a fourth connection was served with max_connections 3")
	}

	// The host closes: the target lets go of the connection.
	bad.nc.Close()
	waitCounts(t, tg, 2, 1)
}

// TestFatalErrorOnAdminQueueEndsAssociationAtOnce: a fatal error on an
// admin queue ends the association when the C2HTermReq goes out; the I/O
// queues close then, without waiting for the host to close the admin
// queue's connection.
func TestFatalErrorOnAdminQueueEndsAssociationAtOnce(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	badTTAG(t, a)
	q.expectClosed()
	if _, ctrls := tg.counts(); ctrls != 0 {
		t.Fatalf("%d controllers after the admin queue's fatal error", ctrls)
	}
	if err := a.silentAfterTerm(); err != nil {
		t.Fatal(err)
	}
	// A new Connect to the ended controller's ID fails: it is gone.
	c := dial(t, addr, 0)
	wantStatus(t, c.exec(connectSQE(1, 31, 0, 0), connectData(testNQN, testHost, a.cntlid), true, nil), nvme.StatusConnectInvalidParameters)
}

// TestFatalCloseWait: a host that does not close after the C2HTermReq has
// the target close the connection once fatal_close_wait has passed, and
// with fatal_close_wait 0 (or the close-after-termreq quirk) at once.
func TestFatalCloseWait(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		after time.Duration // the close comes no sooner
	}{
		{"fatal_close_wait 300ms", func(c *Config) { c.FatalCloseWait = 300 * time.Millisecond }, 250 * time.Millisecond},
		{"fatal_close_wait 0", func(c *Config) { c.FatalCloseWait = 0 }, 0},
		{"close-after-termreq", func(c *Config) { c.Quirks = []string{"close-after-termreq"} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.edit(&cfg)
			tg := startTarget(t, cfg)
			addr := tg.Addrs()[0]
			a := admin(t, addr, testNQN, 0)
			bad := ioQueue(t, addr, a.cntlid, 1, 0)
			start := time.Now()
			badTTAG(t, bad)
			bad.expectClosed()
			if d := time.Since(start); d < tc.after {
				t.Fatalf("closed after %v, want no sooner than %v", d, tc.after)
			}
			waitCounts(t, tg, 1, 1)
		})
	}
}

// TestFatalWaitEndsWithTarget: Close does not wait for hosts that keep
// connections open after a C2HTermReq.
func TestFatalWaitEndsWithTarget(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	badTTAG(t, a)
	done := make(chan error, 1)
	go func() { done <- tg.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for the connection that got a C2HTermReq")
	}
	a.expectClosed()
}
