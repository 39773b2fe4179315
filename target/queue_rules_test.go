package target

import (
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// The queue-model and Connect/Disconnect field rules the reference target
// was fixed for (suites/queue_rules.go holds peers to them).

// TestSQHDZeroAfterDISSQFC: the Connect that disables SQ flow control is
// answered with SQHD FFFFh, every later response carries 0h (NVMe Base
// 2.2 3.3.2.5).
func TestSQHDZeroAfterDISSQFC(t *testing.T) {
	tg := startTarget(t, testConfig())
	c := dial(t, tg.Addrs()[0], 0)
	r := c.exec(connectSQE(0, 31, 0, nvme.CATTRDisableSQFlow), connectData(testNQN, testHost, nvme.CNTLIDDynamic), true, nil)
	mustOK(t, r)
	if r.SQHD != 0xFFFF {
		t.Fatalf("Connect response SQHD %#x, want FFFFh", r.SQHD)
	}
	for range 3 {
		r = c.exec(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil, false, nil)
		mustOK(t, r)
		if r.SQHD != 0 {
			t.Fatalf("later response SQHD %#x, want 0", r.SQHD)
		}
	}
}

// TestDisconnectRECFMT: a Disconnect with RECFMT other than 0 fails with
// Incompatible Format and deletes nothing (NVMe Base 2.2 6.4 Fig. 550).
func TestDisconnectRECFMT(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	sqe := nvme.DisconnectCmd(0)
	sqe.CDW10 = 1
	wantStatus(t, q.exec(sqe, nil, false, nil), nvme.StatusConnectIncompatibleFormat)
	mustOK(t, q.exec(nvme.DisconnectCmd(0), nil, false, nil))
}

// TestAdminSQSIZEASQSZ: an admin queue may hold the ASQSZ entries the
// discovery log entries report, no more (NVMe Base 2.2 3.3.3.1).
func TestAdminSQSIZEASQSZ(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	c := dial(t, addr, 0)
	r := c.exec(connectSQE(0, adminASQSZ, 0, 0), connectData(testNQN, testHost, nvme.CNTLIDDynamic), true, nil)
	wantStatus(t, r, nvme.StatusConnectInvalidParameters)
	if in, off := nvme.DecodeConnectInvalidParam(r.DW0); in || off != nvme.ConnectOffSQSIZE {
		t.Fatalf("IPO %d (data %v), want SQSIZE", off, in)
	}
	c = dial(t, addr, 0)
	mustOK(t, c.exec(connectSQE(0, adminASQSZ-1, 0, 0), connectData(testNQN, testHost, nvme.CNTLIDDynamic), true, nil))
}

// TestIOQueueHostIDZero: an I/O queue Connect with HOSTID 0h is taken as
// the admin queue's (NVMe Base 2.2 Fig. 547: the field is ignored); the
// discovery log entries say so with TREQ.ZHIDS.
func TestIOQueueHostIDZero(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := dial(t, addr, 0)
	d := nvme.ConnectData{CNTLID: a.cntlid, SubNQN: testNQN, HostNQN: testHost}
	mustOK(t, q.exec(connectSQE(1, 31, 0, 0), d.Append(nil), true, nil))
	other := testHostID
	other[0] ^= 0xFF
	q = dial(t, addr, 0)
	d.HostID = other
	wantStatus(t, q.exec(connectSQE(2, 31, 0, 0), d.Append(nil), true, nil), nvme.StatusConnectInvalidParameters)
}

// TestIOConnectionLossEndsAssociation: without CATTR.INDIVIOQDELS in the
// admin Connect, losing an I/O queue's connection (a reset) ends the
// association (NVMe Base 2.2 3.1.2, 3.3.2.4); with it, the association
// lives on and the QID is free again. TestIOConnectionCloseKeepsAssociation
// has the orderly close.
func TestIOConnectionLossEndsAssociation(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	for _, indiv := range []bool{false, true} {
		var cattr uint8
		if indiv {
			cattr = cattrIndivIOQDel
		}
		a := adminCATTR(t, addr, testNQN, 0, cattr)
		q := ioQueue(t, addr, a.cntlid, 1, 0)
		if tc, ok := q.nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset: the connection is lost
		}
		_ = q.nc.Close()
		ended := false
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := a.try(nvme.KeepAliveCmd(), nil, false, nil); err != nil {
				ended = true
				break
			}
			if indiv {
				break
			}
		}
		if ended == indiv {
			t.Fatalf("INDIVIOQDELS %v: association ended %v after the I/O connection closed", indiv, ended)
		}
		if indiv {
			var cqe nvme.CQE
			for range 50 {
				q = dial(t, addr, 0)
				if cqe = q.exec(connectSQE(1, 31, 0, 0), connectData(testNQN, testHost, a.cntlid), true, nil); cqe.Status.Success() {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			mustOK(t, cqe)
		}
	}
}

// TestIOConnectionCloseKeepsAssociation: a host that closes an I/O
// connection in an orderly way (a FIN between PDUs) keeps its association
// even without CATTR.INDIVIOQDELS: Linux and SPDK hosts close every I/O
// connection before they shut the controller down on the admin queue.
func TestIOConnectionCloseKeepsAssociation(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := adminCATTR(t, addr, testNQN, 0, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	_ = q.nc.Close()
	time.Sleep(200 * time.Millisecond) // the target has seen the close
	if _, err := a.try(nvme.KeepAliveCmd(), nil, false, nil); err != nil {
		t.Fatalf("the association ended after an orderly close of its I/O connection: %v", err)
	}
}
