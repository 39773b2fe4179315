package target

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Every bound in README "Hostile peers" is driven to by a hostile peer in
// these tests (and TestHostilePeers, TestMalformedSequences).

// queueOf connects a queue with sqsize (0's based) and cattr.
func queueOf(t testing.TB, addr net.Addr, subnqn string, qid, cntlid, sqsize uint16, cattr uint8) *client {
	t.Helper()
	c := dial(t, addr, 0)
	r := c.exec(connectSQE(qid, sqsize, 0, cattr), connectData(subnqn, testHost, cntlid), true, nil)
	mustOK(t, r)
	c.cntlid = uint16(r.DW0)
	return c
}

// announce sends n writes of size bytes each to LBA 0 of namespace nsid
// (blocks of 1<<blockShift bytes), whose data would follow an R2T, and
// returns their CIDs.
func (c *client) announce(nsid uint32, n int, size uint32, blockShift uint) []uint16 {
	c.t.Helper()
	var cids []uint16
	for range n {
		w := nvme.WriteCmd(nsid, 0, size>>blockShift)
		nvme.SetDataLength(&w, size)
		c.cid++
		w.CID = c.cid
		if err := c.conn.Send(&tcp.CapsuleCmd{SQE: w}, nil); err != nil {
			c.t.Fatal(err)
		}
		cids = append(cids, w.CID)
	}
	return cids
}

// collectR2Ts reads R2Ts until none comes for quiet.
func (c *client) collectR2Ts(quiet time.Duration) []tcp.R2T {
	c.t.Helper()
	var l []tcp.R2T
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(quiet))
		p, err := c.conn.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
				return l
			}
			c.t.Fatal(err)
		}
		switch v := p.(type) {
		case *tcp.R2T:
			l = append(l, *v)
		case *tcp.TermReq:
			c.t.Fatalf("C2HTermReq FES %d", v.FES)
		default:
			c.t.Fatalf("unexpected %v", p.Type())
		}
	}
}

// hostileConfig is the default configuration's bounds and transfer sizes
// (1 MiB MDTS, 128 KiB H2C data) with test namespaces.
func hostileConfig() Config {
	c := testConfig()
	c.MDTS, c.MaxH2CData, c.InCapsuleDataSize, c.C2HDataSize = "1MiB", "128KiB", "16KiB", "128KiB"
	return c
}

// TestR2TBufferBounded is the review's scenario: a host announces 127
// one-MiB writes on each of 8 I/O queues and sends no data. Only
// r2t_buffer's worth per connection gets R2Ts and buffers (the target
// used to allocate all of it at once: about 1 GiB); the rest waits, and
// gets its R2Ts as earlier writes complete.
func TestR2TBufferBounded(t *testing.T) {
	cfg := hostileConfig()
	cfg.Subsystems[0].Namespaces[0].Size = "8MiB"
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	var qs []*client
	for qid := uint16(1); qid <= 8; qid++ {
		qs = append(qs, queueOf(t, addr, testNQN, qid, a.cntlid, 127, 0))
	}
	m0 := heapAndStacks()
	const per = 127
	for _, q := range qs {
		q.announce(1, per, 1<<20, 9)
	}
	var r2ts [][]tcp.R2T
	for _, q := range qs {
		r2ts = append(r2ts, q.collectR2Ts(300*time.Millisecond))
	}
	m1 := heapAndStacks()
	grew := int64(m1) - int64(m0)
	t.Logf("heap: %+.1f MiB after 8 I/O queues x %d announced 1 MiB writes, no data; R2Ts per queue: %d",
		float64(grew)/(1<<20), per, len(r2ts[0]))
	for i, l := range r2ts {
		if len(l) > 2 { // r2t_buffer 2MiB
			t.Errorf("queue %d: %d R2Ts for 1 MiB writes with a 2 MiB R2T budget", i+1, len(l))
		}
	}
	if grew > 48<<20 {
		t.Errorf("heap grew by %d MiB: more than 8 x r2t_buffer and slack", grew>>20)
	}

	// Queue 1 sends the data of every R2T it gets: all its writes
	// complete, each getting its R2T as budget comes back.
	q := qs[0]
	pending := r2ts[0]
	done := 0
	data := make([]byte, 1<<20)
	for done < per {
		for _, r := range pending {
			for o := uint32(0); o < r.R2TL; o += 128 << 10 {
				h := &tcp.H2CData{CCCID: r.CCCID, TTAG: r.TTAG, DATAO: o, DATAL: 128 << 10, Last: o+128<<10 == r.R2TL}
				if err := q.conn.Send(h, data[:128<<10]); err != nil {
					t.Fatal(err)
				}
			}
		}
		pending = pending[:0]
		p, err := q.conn.Next()
		if err != nil {
			t.Fatalf("after %d writes: %v", done, err)
		}
		switch v := p.(type) {
		case *tcp.R2T:
			pending = append(pending, *v)
		case *tcp.CapsuleResp:
			mustOK(t, v.CQE)
			done++
		default:
			t.Fatalf("unexpected %v", p.Type())
		}
	}
}

// TestR2TTimeout: a host that gets an R2T and never sends the data is
// disconnected after r2t_timeout, also while it keeps the connection busy
// with other commands.
func TestR2TTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.R2TTimeout = 300 * time.Millisecond
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	for i, busy := range []bool{false, true} {
		q := ioQueue(t, addr, a.cntlid, uint16(1+i), 0)
		q.announce(1, 1, 4096, 9)
		if l := q.collectR2Ts(100 * time.Millisecond); len(l) != 1 {
			t.Fatalf("%d R2Ts", len(l))
		}
		start := time.Now()
		for busy && time.Since(start) < 2*time.Second {
			if _, err := q.try(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = q.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		q.expectClosed()
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("busy=%v: closed after %v", busy, d)
		}
	}
	// A queue of the same association that behaves is not affected.
	q := ioQueue(t, addr, a.cntlid, 3, 0)
	mustOK(t, q.exec(nvme.WriteCmd(1, 0, 8), make([]byte, 4096), false, nil))
}

// TestAdminDataCappedAtMDTS: an admin command may not move more than MDTS
// (it could move 16 MiB): Get Log Page beyond it fails with Invalid Field
// in Command.
func TestAdminDataCappedAtMDTS(t *testing.T) {
	tg := startTarget(t, testConfig()) // MDTS 128 KiB
	for _, nqn := range []string{testNQN, nvme.DiscoveryNQN} {
		a := admin(t, tg.Addrs()[0], nqn, 0)
		lid := uint8(nvme.LogError)
		if nqn == nvme.DiscoveryNQN {
			lid = nvme.LogDiscovery
		}
		mustOK(t, a.exec(nvme.GetLogPageCmd(lid, 0, 0, 0, 128<<10), nil, false, make([]byte, 128<<10)))
		wantStatus(t, a.exec(nvme.GetLogPageCmd(lid, 0, 0, 0, 128<<10+4), nil, false, make([]byte, 128<<10+4)), nvme.StatusInvalidField)
	}
}

// nonReader is a raw discovery (or NVM) association whose host sends
// commands and never reads a byte.
func nonReader(t *testing.T, addr net.Addr, subnqn string, sqsize uint16) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.(*net.TCPConn).SetReadBuffer(4096)
	a := nvme.Connect{QID: 0, SQSIZE: sqsize}
	sqe := a.SQE(1)
	sqe.Flags |= nvme.PSDTSGL
	d := nvme.ConnectData{HostID: testHostID, CNTLID: nvme.CNTLIDDynamic, SubNQN: subnqn, HostNQN: testHost}
	data := d.Append(nil)
	sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLDataBlockOffset}
	b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
	b = tcp.AppendPDU(b, &tcp.CapsuleCmd{SQE: sqe}, data, tcp.EncodeOptions{})
	en := nvme.PropertySetCmd(2, nvme.PropCC, false, ccEnable)
	en.Flags |= nvme.PSDTSGL
	b = tcp.AppendPDU(b, &tcp.CapsuleCmd{SQE: en}, nil, tcp.EncodeOptions{})
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	return nc
}

// getLogs sends n Get Log Page commands of size bytes each.
func getLogs(t *testing.T, nc net.Conn, lid uint8, n int, size uint32) {
	t.Helper()
	var b []byte
	for i := range n {
		g := nvme.GetLogPageCmd(lid, 0, 0, 0, size)
		g.CID = uint16(10 + i)
		g.Flags |= nvme.PSDTSGL
		nvme.SetDataLength(&g, size)
		b = tcp.AppendPDU(b, &tcp.CapsuleCmd{SQE: g}, nil, tcp.EncodeOptions{})
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestNonReadingPeer is the review's second scenario: an anonymous peer
// on the discovery subsystem (SQSIZE 127, KATO 0) asks for log pages and
// never reads. A 16 MiB page is refused (MDTS); MDTS-sized pages fill at
// most about three write backlogs, and write_timeout closes the
// connection, which used to stay (with 180 MiB) for good.
func TestNonReadingPeer(t *testing.T) {
	cfg := hostileConfig()
	cfg.WriteTimeout = time.Second
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[1] // discovery only
	ra := newRawAssoc(testNQN, testHost)
	warm, _, _ := ra.open(tg.Addrs()[0].String(), make([]byte, 256))
	warm.Close()
	waitCounts(t, tg, 0, 0)

	m0 := heapAndStacks()
	nc := nonReader(t, addr, nvme.DiscoveryNQN, 127)
	getLogs(t, nc, nvme.LogDiscovery, 12, 16<<20)
	time.Sleep(300 * time.Millisecond)
	m16 := heapAndStacks()
	t.Logf("heap: %+.1f MiB after 12 x 16 MiB discovery Get Log Page, not read", float64(int64(m16)-int64(m0))/(1<<20))

	getLogs(t, nc, nvme.LogDiscovery, 100, 1<<20)
	time.Sleep(300 * time.Millisecond)
	m1 := heapAndStacks()
	grew := int64(m1) - int64(m0)
	t.Logf("heap: %+.1f MiB after 100 more 1 MiB (MDTS) pages, not read", float64(grew)/(1<<20))
	if grew > 16<<20 {
		t.Errorf("a peer that does not read pins %d MiB (write_backlog 2MiB)", grew>>20)
	}
	// Still not reading: write_timeout ends the connection.
	start := time.Now()
	waitCounts(t, tg, 0, 0)
	t.Logf("closed %v later (write_timeout %v); heap %+.1f MiB", time.Since(start).Round(time.Millisecond),
		cfg.WriteTimeout, float64(int64(heapAndStacks())-int64(m0))/(1<<20))
}

// TestConnectionLimits drives a peer to max_connections (per listener),
// max_connections_per_address (whole target) and
// max_associations_per_host: the connection over the first two is closed
// at once (no ICResp), the admin Connect over the third fails with
// Controller Busy; freeing one lets the next in.
func TestConnectionLimits(t *testing.T) {
	refused := func(t *testing.T, addr net.Addr) {
		t.Helper()
		nc, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_, _ = nc.Write(tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{}))
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := nc.Read(make([]byte, 128)); err == nil {
			t.Fatalf("connection over the bound answered (%d bytes)", n)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection over the bound left open")
		}
	}
	t.Run("max_connections", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxConnections = 3
		tg := startTarget(t, cfg)
		var cs []*client
		for range 3 {
			cs = append(cs, dial(t, tg.Addrs()[0], 0))
		}
		refused(t, tg.Addrs()[0])
		mustOK(t, dial(t, tg.Addrs()[1], 0).connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0)) // other listener
		cs[0].nc.Close()
		waitCounts(t, tg, 3, 1)
		mustOK(t, dial(t, tg.Addrs()[0], 0).connect(testNQN, 0, nvme.CNTLIDDynamic, 0))
	})
	t.Run("max_connections_per_address", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxConnectionsPerAddress = 3
		tg := startTarget(t, cfg)
		c1 := dial(t, tg.Addrs()[0], 0)
		dial(t, tg.Addrs()[0], 0)
		dial(t, tg.Addrs()[1], 0)
		refused(t, tg.Addrs()[1])
		refused(t, tg.Addrs()[0])
		c1.nc.Close()
		waitCounts(t, tg, 2, 0)
		mustOK(t, dial(t, tg.Addrs()[1], 0).connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0))
	})
	t.Run("max_associations_per_host", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxAssociationsPerHost = 2
		tg := startTarget(t, cfg)
		a1 := dial(t, tg.Addrs()[0], 0)
		mustOK(t, a1.connect(testNQN, 0, nvme.CNTLIDDynamic, 0))
		mustOK(t, dial(t, tg.Addrs()[1], 0).connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0))
		c := dial(t, tg.Addrs()[0], 0)
		wantStatus(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0), nvme.StatusConnectControllerBusy)
		other := c.exec(connectSQE(0, 31, 0, 0), connectData(testNQN, "nqn.2014-08.io.nvmftest:host2", nvme.CNTLIDDynamic), true, nil)
		mustOK(t, other) // another host is not counted against this one
		a1.nc.Close()
		waitCounts(t, tg, 2, 2)
		mustOK(t, dial(t, tg.Addrs()[0], 0).connect(testNQN, 0, nvme.CNTLIDDynamic, 0))
	})
}

// TestIdleQueueKeepsNoBuffers: after bursts of 128 KiB writes (one at a
// time, and 32 at once) an idle I/O queue holds almost nothing; its
// slots used to keep a buffer each, 32 MiB per 128-entry queue.
func TestIdleQueueKeepsNoBuffers(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := queueOf(t, tg.Addrs()[0], testNQN, 1, a.cntlid, 127, 0)
	data := make([]byte, 128<<10)
	mustOK(t, q.exec(nvme.WriteCmd(2, 0, 32), data, false, nil)) // warm up
	m0 := heapAndStacks()
	for i := range 256 {
		mustOK(t, q.exec(nvme.WriteCmd(2, uint64(i*32), 32), data, false, nil))
	}
	// 32 at once: R2Ts for up to r2t_buffer, the rest as they complete.
	cids := q.announce(2, 32, 128<<10, 12)
	left := len(cids)
	for left > 0 {
		p, err := q.conn.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch v := p.(type) {
		case *tcp.R2T:
			for o := uint32(0); o < v.R2TL; o += 8192 {
				h := &tcp.H2CData{CCCID: v.CCCID, TTAG: v.TTAG, DATAO: o, DATAL: 8192, Last: o+8192 == v.R2TL}
				if err := q.conn.Send(h, data[:8192]); err != nil {
					t.Fatal(err)
				}
			}
		case *tcp.CapsuleResp:
			mustOK(t, v.CQE)
			left--
		}
	}
	grew := int64(heapAndStacks()) - int64(m0)
	t.Logf("idle I/O queue after 256 sequential and 32 concurrent 128 KiB writes: heap %+d KiB", grew>>10)
	if grew > 2<<20 {
		t.Errorf("an idle I/O queue keeps %d KiB", grew>>10)
	}
}

// TestSQFlowControlBounds: the bound on what a host submits is the one
// NVMe Base 2.1 sets. With SQ flow control a host may not submit to a
// full queue (size-1 capsules past the last SQHD it was sent), however
// many commands are outstanding (here 5 on a 4-entry queue: a completion
// reported the head); without it, it must keep fewer than the queue size
// outstanding. A violation ends the connection (C2HTermReq, PDU sequence
// error) and the association.
func TestSQFlowControlBounds(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	t.Run("flow control", func(t *testing.T) {
		a := admin(t, addr, testNQN, 0)
		q := queueOf(t, addr, testNQN, 1, a.cntlid, 3, 0) // 4 entries
		q.announce(1, 3, 512, 9)                          // SQ full: 3 past SQHD 1
		r2ts := q.collectR2Ts(100 * time.Millisecond)
		if len(r2ts) != 3 {
			t.Fatalf("%d R2Ts", len(r2ts))
		}
		h := &tcp.H2CData{CCCID: r2ts[0].CCCID, TTAG: r2ts[0].TTAG, DATAL: 512, Last: true}
		_ = q.conn.Send(h, make([]byte, 512))
		cqe, err := q.wait(r2ts[0].CCCID, nil, nil)
		if err != nil || cqe.SQHD != 0 { // 4 fetched: head 4 mod 4
			t.Fatalf("completion %+v %v", cqe, err)
		}
		q.announce(1, 3, 512, 9) // 5 outstanding, the queue full again: allowed
		if l := q.collectR2Ts(100 * time.Millisecond); len(l) != 3 {
			t.Fatalf("%d R2Ts after the head moved", len(l))
		}
		q.announce(1, 1, 512, 9) // to a full queue
		q.expectTerm(tcp.FESPDUSequenceError, 0)
		a.expectClosed() // the association ended
	})
	t.Run("flow control disabled", func(t *testing.T) {
		a := admin(t, addr, testNQN, 0)
		q := queueOf(t, addr, testNQN, 1, a.cntlid, 3, nvme.CATTRDisableSQFlow)
		q.announce(1, 3, 512, 9) // 3 outstanding: fewer than 4
		if l := q.collectR2Ts(100 * time.Millisecond); len(l) != 3 {
			t.Fatalf("%d R2Ts", len(l))
		}
		q.announce(1, 1, 512, 9) // 4 outstanding on a 4-entry queue
		q.expectTerm(tcp.FESPDUSequenceError, 0)
		a.expectClosed()
	})
	// Other associations go on.
	g := admin(t, addr, testNQN, 0)
	mustOK(t, g.exec(nvme.KeepAliveCmd(), nil, false, nil))
}

// TestMAXCMD: MAXCMD is the largest queue size, which no longer wraps to
// 0 for queue_size 65536.
func TestMAXCMD(t *testing.T) {
	for _, qs := range []int{128, 65536} {
		cfg := testConfig()
		cfg.QueueSize = qs
		tg := startTarget(t, cfg)
		a := admin(t, tg.Addrs()[0], testNQN, 0)
		b := make([]byte, 4096)
		mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, b))
		if got, want := binary.LittleEndian.Uint16(b[514:]), min(qs, 0xFFFF); int(got) != want {
			t.Fatalf("queue_size %d: MAXCMD %d, want %d", qs, got, want)
		}
	}
}

// TestDiscoveryKATO: a discovery association whose Connect asks for no
// keep alive gets discovery_kato (the Discovery controller activity
// timeout), reported by Get Features and enforced: an anonymous peer that
// goes silent is ended. An NVM association's KATO 0 is left as asked.
func TestDiscoveryKATO(t *testing.T) {
	cfg := testConfig()
	cfg.DiscoveryKATO = 300 * time.Millisecond
	tg := startTarget(t, cfg)
	d := admin(t, tg.Addrs()[1], nvme.DiscoveryNQN, 0)
	if r := d.exec(nvme.GetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, 0), nil, false, nil); r.DW0 != 300 {
		t.Fatalf("discovery KATO %d ms, want 300", r.DW0)
	}
	n := admin(t, tg.Addrs()[0], testNQN, 0)
	if r := n.exec(nvme.GetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, 0), nil, false, nil); r.DW0 != 0 {
		t.Fatalf("NVM KATO %d ms, want 0", r.DW0)
	}
	start := time.Now()
	_ = d.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	d.expectClosed()
	t.Logf("silent discovery association ended after %v", time.Since(start))
	mustOK(t, n.exec(nvme.KeepAliveCmd(), nil, false, nil))
}
