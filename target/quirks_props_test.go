package target

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// execPSDT is client.exec with the SQE's PSDT as given (exec sets 01b):
// out, if any, goes in-capsule.
func execPSDT(t *testing.T, c *client, sqe nvme.SQE, out []byte) nvme.CQE {
	t.Helper()
	c.cid++
	sqe.CID = c.cid
	if out != nil {
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(out)), Type: nvme.SGLDataBlockOffset}
	}
	if err := c.conn.Send(&tcp.CapsuleCmd{SQE: sqe}, out); err != nil {
		t.Fatal(err)
	}
	cqe, err := c.wait(sqe.CID, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cqe
}

// propGetOK is a Property Get on c that must succeed; it returns the CQE.
func propGetOK(t *testing.T, c *client, off uint32, size8 bool) nvme.CQE {
	t.Helper()
	r := c.exec(nvme.PropertyGetCmd(0, off, size8), nil, false, nil)
	mustOK(t, r)
	return r
}

// TestCRTO: CRTO (68h) is mandatory for I/O controllers (NVMe Base 2.2
// Fig. 33, since 2.0), with CRTO.CRWMT equal to CAP.TO; the target
// reports VS 2.0, so it answers it. A 1.4 controller has no CRTO: the
// offset is reserved there, and crto-refused refuses it on 2.0.
func TestCRTO(t *testing.T) {
	tg := startTarget(t, testConfig())
	c := admin(t, tg.Addrs()[0], testNQN, 0)
	cp := nvme.CAP(nvme.PropertyValue(ptr(propGetOK(t, c, nvme.PropCAP, true))))
	if r := propGetOK(t, c, propCRTO, false); r.DW0&0xFFFF != uint32(cp.TO()) || r.DW1 != 0 {
		t.Fatalf("CRTO DW0 %#x DW1 %#x, want CRWMT %d (CAP.TO)", r.DW0, r.DW1, cp.TO())
	}

	cfg := testConfig()
	cfg.Version = "1.4"
	c14 := admin(t, startTarget(t, cfg).Addrs()[0], testNQN, 0)
	wantStatus(t, c14.exec(nvme.PropertyGetCmd(0, propCRTO, false), nil, false, nil), nvme.StatusInvalidField)

	cfg = testConfig()
	cfg.Quirks = []string{"crto-refused"}
	cq := admin(t, startTarget(t, cfg).Addrs()[0], testNQN, 0)
	wantStatus(t, cq.exec(nvme.PropertyGetCmd(0, propCRTO, false), nil, false, nil), nvme.StatusInvalidField)
}

func ptr[T any](v T) *T { return &v }

// TestDiscoveryCCEntrySizesZero: a discovery controller has no I/O
// queues, so CC.IOCQES and CC.IOSQES are "read-only with a value of 0h"
// (NVMe Base 2.2 Fig. 41): written as Linux hosts write them, they read
// back 0, and enabling with them 0 (as a host keeping reserved fields 0
// writes CC) makes the controller ready, not fatal.
func TestDiscoveryCCEntrySizesZero(t *testing.T) {
	tg := startTarget(t, testConfig())
	disc := tg.Addrs()[1]
	c := dial(t, disc, 0)
	mustOK(t, c.connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0))
	mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable&^nvme.CCEnable), nil, false, nil))
	if r := propGetOK(t, c, nvme.PropCC, false); r.DW0 != 0 {
		t.Fatalf("discovery CC %#x after writing IOCQES 4 IOSQES 6, want 0", r.DW0)
	}
	mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, nvme.CCEnable), nil, false, nil))
	if r := propGetOK(t, c, nvme.PropCSTS, false); r.DW0&(nvme.CSTSReady|nvme.CSTSFatal) != nvme.CSTSReady {
		t.Fatalf("discovery CSTS %#x after CC.EN=1 with entry sizes 0, want RDY", r.DW0)
	}

	cfg := testConfig()
	cfg.Quirks = []string{"discovery-cc-entry-sizes-kept"}
	cq := dial(t, startTarget(t, cfg).Addrs()[1], 0)
	mustOK(t, cq.connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0))
	mustOK(t, cq.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable&^nvme.CCEnable), nil, false, nil))
	if r := propGetOK(t, cq, nvme.PropCC, false); r.DW0 != ccEnable&^nvme.CCEnable {
		t.Fatalf("discovery-cc-entry-sizes-kept: CC %#x", r.DW0)
	}
}

// TestFabricsPSDT: a Fabrics command's PSDT may be 00b ("If this value is
// used for Fabrics commands that transfer data, then SGLs are used") or
// 10b (NVMe Base 2.2 Fig. 95): a Connect and a Property Get with either
// succeed; fabrics-psdt-sgl-only refuses them.
func TestFabricsPSDT(t *testing.T) {
	for _, psdt := range []uint8{0x00, 0x80} {
		tg := startTarget(t, testConfig())
		c := dial(t, tg.Addrs()[0], 0)
		sqe := connectSQE(0, 31, 0, 0)
		sqe.Flags = sqe.Flags&^nvme.PSDTMask | psdt
		mustOK(t, execPSDT(t, c, sqe, connectData(testNQN, testHost, nvme.CNTLIDDynamic)))
		get := nvme.PropertyGetCmd(0, nvme.PropVS, false)
		get.Flags = get.Flags&^nvme.PSDTMask | psdt
		mustOK(t, execPSDT(t, c, get, nil))
	}
	cfg := testConfig()
	cfg.Quirks = []string{"fabrics-psdt-sgl-only"}
	c := dial(t, startTarget(t, cfg).Addrs()[0], 0)
	sqe := connectSQE(0, 31, 0, 0)
	sqe.Flags &^= nvme.PSDTMask
	if r := execPSDT(t, c, sqe, connectData(testNQN, testHost, nvme.CNTLIDDynamic)); r.Status.Success() {
		t.Fatal("fabrics-psdt-sgl-only: Connect with PSDT 00b succeeded")
	}
}

// TestResetClearsSHST: a Controller Reset (CC.EN 1 to 0) after a
// completed controller shutdown clears CSTS.SHST to 00b, CSTS.ST being 0
// (NVMe Base 2.2 Fig. 42), even with CC.SHN left at 01b;
// reset-keeps-shst leaves it at 10b.
func TestResetClearsSHST(t *testing.T) {
	for _, q := range []string{"", "reset-keeps-shst"} {
		cfg := testConfig()
		if q != "" {
			cfg.Quirks = []string{q}
		}
		c := admin(t, startTarget(t, cfg).Addrs()[0], testNQN, 0)
		mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable|nvme.CCShnNormal), nil, false, nil))
		if r := propGetOK(t, c, nvme.PropCSTS, false); r.DW0&nvme.CSTSShstMask != nvme.CSTSShstCmplt {
			t.Fatalf("%q: CSTS %#x after CC.SHN=01b, want SHST 10b", q, r.DW0)
		}
		mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, (ccEnable|nvme.CCShnNormal)&^nvme.CCEnable), nil, false, nil))
		want := uint32(0)
		if q != "" {
			want = nvme.CSTSShstCmplt
		}
		if r := propGetOK(t, c, nvme.PropCSTS, false); r.DW0&nvme.CSTSShstMask != want {
			t.Fatalf("%q: CSTS %#x after CC.EN=0, want SHST %#x", q, r.DW0, want)
		}
	}
}
