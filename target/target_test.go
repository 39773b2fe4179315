package target

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

func TestICDigestsAndIdentify(t *testing.T) {
	tg := startTarget(t, testConfig())
	io := tg.Addrs()[0]
	for _, dg := range []uint8{0, tcp.DgstHeader, tcp.DgstData, tcp.DgstHeader | tcp.DgstData} {
		a := admin(t, io, testNQN, 0)
		q := ioQueue(t, io, a.cntlid, 1, dg)
		if q.resp.DGST != dg || q.resp.MAXH2CDATA != 8192 {
			t.Fatalf("ICResp %+v for dgst %d", q.resp, dg)
		}
		w := bytes.Repeat([]byte{byte(dg + 1)}, 4096)
		mustOK(t, q.exec(nvme.WriteCmd(1, 8, 8), w, true, nil))
		r := make([]byte, 4096)
		mustOK(t, q.exec(nvme.ReadCmd(1, 8, 8), nil, false, r))
		if !bytes.Equal(r, w) {
			t.Fatalf("dgst %d: read back differs", dg)
		}
	}
}

func TestIdentify(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	b := make([]byte, 4096)
	mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, b))
	var id nvme.IdentifyController
	if err := id.Decode(b); err != nil {
		t.Fatal(err)
	}
	if id.CNTLID != a.cntlid || id.SUBNQN != testNQN || id.CNTRLTYPE != nvme.CntrlTypeIO ||
		id.MDTS != 5 || id.NN != MaxNSID || id.IOCCSZ != (64+8192)/16 || id.IORCSZ != 1 ||
		id.MSDBD != 1 || id.SGLS&nvme.SGLSKeyed != 0 || id.SGLS&nvme.SGLSOffset == 0 ||
		id.ONCS != nvme.ONCSCompare|nvme.ONCSDSM|nvme.ONCSWriteZeroes|nvme.ONCSSaveSelect || id.FUSES != 1 ||
		id.VWC != 0 || id.KAS == 0 || id.AERL != 3 || id.SQES != 0x66 || id.CQES != 0x44 {
		t.Fatalf("identify controller %+v", id)
	}
	mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSNamespace, 2, 0), nil, false, b))
	var ns nvme.IdentifyNamespace
	_ = ns.Decode(b)
	if ns.NSZE != (1<<30)/4096 || ns.BlockSize() != 4096 || ns.ANAGRPID != 1 {
		t.Fatalf("identify ns %+v", ns)
	}
	mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSActiveNSList, 0, 0), nil, false, b))
	if l := nvme.DecodeNSList(b); len(l) != 2 || l[0] != 1 || l[1] != 2 {
		t.Fatalf("ns list %v", l)
	}
	mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSActiveNSList, 1, 0), nil, false, b))
	if l := nvme.DecodeNSList(b); len(l) != 1 || l[0] != 2 {
		t.Fatalf("ns list after 1: %v", l)
	}
	mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSNSDescriptorList, 1, 0), nil, false, b))
	ds, err := nvme.DecodeNSDescriptors(b)
	if err != nil || len(ds) != 3 {
		t.Fatalf("descriptors %v %v", ds, err)
	}
	wantStatus(t, a.exec(nvme.IdentifyCmd(nvme.CNSNamespace, 0xFFFFFFFF, 0), nil, false, b), nvme.StatusInvalidNamespace)
	wantStatus(t, a.exec(nvme.IdentifyCmd(0x42, 0, 0), nil, false, b), nvme.StatusInvalidField)
	// Identify with a wrong data length.
	wantStatus(t, a.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, make([]byte, 512)), nvme.StatusSGLInvalidDataLength)
}

func TestPropertiesAndEnable(t *testing.T) {
	tg := startTarget(t, testConfig())
	c := dial(t, tg.Addrs()[0], 0)
	// Nothing but Connect before Connect.
	wantStatus(t, c.exec(nvme.KeepAliveCmd(), nil, false, nil), nvme.StatusCommandSequenceError)
	r := c.connect(testNQN, 0, nvme.CNTLIDDynamic, 0)
	mustOK(t, r)
	if r.SQHD != 1 {
		t.Fatalf("connect SQHD %d", r.SQHD)
	}
	get := func(off uint32, size8 bool) nvme.CQE {
		return c.exec(nvme.PropertyGetCmd(0, off, size8), nil, false, nil)
	}
	capr := get(nvme.PropCAP, true)
	mustOK(t, capr)
	cp := nvme.CAP(nvme.PropertyValue(&capr))
	if cp.MQES() != 127 || cp.CSS()&nvme.CSSNVM == 0 || cp.MPSMIN() != 0 || cp.TO() == 0 {
		t.Fatalf("CAP %#x", uint64(cp))
	}
	if v := get(nvme.PropVS, false); v.DW0 != nvme.MakeVersion(2, 0, 0) {
		t.Fatalf("VS %#x", v.DW0)
	}
	wantStatus(t, get(nvme.PropCAP, false), nvme.StatusInvalidField)
	if v := get(nvme.PropCSTS, false); v.DW0&nvme.CSTSReady != 0 {
		t.Fatal("ready before enable")
	}
	// Admin commands need CC.EN.
	wantStatus(t, c.exec(nvme.IdentifyCmd(1, 0, 0), nil, false, make([]byte, 4096)), nvme.StatusCommandSequenceError)
	wantStatus(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCSTS, false, 1), nil, false, nil), nvme.StatusInvalidField)
	wantStatus(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCAP, true, 1), nil, false, nil), nvme.StatusInvalidField)

	// No I/O queue for a controller that is not enabled: Connect Invalid
	// Parameters (NVMe Base 2.2 6.3).
	early := dial(t, tg.Addrs()[0], 0)
	wantStatus(t, early.exec(connectSQE(1, 31, 0, 0), connectData(testNQN, testHost, uint16(r.DW0)), true, nil),
		nvme.StatusConnectInvalidParameters)

	mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil, false, nil))
	q := ioQueue(t, tg.Addrs()[0], uint16(r.DW0), 1, 0)
	if v := get(nvme.PropCSTS, false); v.DW0&nvme.CSTSReady == 0 {
		t.Fatalf("CSTS %#x after enable", v.DW0)
	}
	if v := get(nvme.PropCC, false); v.DW0 != ccEnable {
		t.Fatalf("CC %#x", v.DW0)
	}
	mustOK(t, q.exec(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)))
	mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable|nvme.CCShnNormal), nil, false, nil))
	if v := get(nvme.PropCSTS, false); v.DW0&nvme.CSTSShstMask != nvme.CSTSShstCmplt {
		t.Fatalf("CSTS %#x after shutdown", v.DW0)
	}
}

func TestConnectErrors(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	c := dial(t, addr, 0)
	r := c.exec(connectSQE(0, 31, 0, 0), connectData("nqn.2014-08.io.nvmftest:nope", testHost, 0xFFFF), true, nil)
	wantStatus(t, r, nvme.StatusConnectInvalidParameters)
	if in, off := nvme.DecodeConnectInvalidParam(r.DW0); !in || off != 256 {
		t.Fatalf("IATTR/IPO %#x", r.DW0)
	}
	r = c.exec(connectSQE(0, 31, 0, 0), connectData(testNQN, testHost, 5), true, nil)
	wantStatus(t, r, nvme.StatusConnectInvalidParameters)
	if in, off := nvme.DecodeConnectInvalidParam(r.DW0); !in || off != 16 {
		t.Fatalf("static cntlid IATTR/IPO %#x", r.DW0)
	}
	r = c.exec(connectSQE(0, 0, 0, 0), connectData(testNQN, testHost, 0xFFFF), true, nil)
	wantStatus(t, r, nvme.StatusConnectInvalidParameters)
	if in, off := nvme.DecodeConnectInvalidParam(r.DW0); in || off != 44 {
		t.Fatalf("sqsize IATTR/IPO %#x", r.DW0)
	}
	wantStatus(t, c.exec(connectSQE(0, 31, 0, 0), connectData("nqn.2014-08.io.nvmftest:private", testHost, 0xFFFF), true, nil),
		nvme.StatusConnectInvalidHost)
	wantStatus(t, c.exec(connectSQE(1, 31, 0, 0), connectData(testNQN, testHost, 77), true, nil), nvme.StatusConnectInvalidParameters)

	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	_ = q
	d := dial(t, addr, 0)
	wantStatus(t, d.exec(connectSQE(1, 31, 0, 0), connectData(testNQN, testHost, a.cntlid), true, nil), nvme.StatusCommandSequenceError)
	r = d.exec(connectSQE(9, 31, 0, 0), connectData(testNQN, testHost, a.cntlid), true, nil)
	if in, off := nvme.DecodeConnectInvalidParam(r.DW0); r.Status.Code() != nvme.StatusConnectInvalidParameters || in || off != 42 {
		t.Fatalf("qid 9: %v %#x", r.Status, r.DW0)
	}
	// Another host may not join the association.
	wantStatus(t, d.exec(connectSQE(2, 31, 0, 0), func() []byte {
		x := nvme.ConnectData{HostID: testHostID, CNTLID: a.cntlid, SubNQN: testNQN, HostNQN: "nqn.2014-08.io.nvmftest:other"}
		return x.Append(nil)
	}(), true, nil), nvme.StatusConnectInvalidParameters)
	// Connect data through R2T works too.
	mustOK(t, d.exec(connectSQE(2, 31, 0, 0), connectData(testNQN, testHost, a.cntlid), false, nil))
	// Discovery-only port does not serve NVM subsystems.
	e := dial(t, tg.Addrs()[1], 0)
	wantStatus(t, e.exec(connectSQE(0, 31, 0, 0), connectData(testNQN, testHost, 0xFFFF), true, nil), nvme.StatusConnectInvalidParameters)
}

func TestReadWritePaths(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, tcp.DgstHeader|tcp.DgstData)
	w := make([]byte, 64<<10) // R2T, split into 8 KiB H2CData
	for i := range w {
		w[i] = byte(i * 7)
	}
	mustOK(t, q.exec(nvme.WriteCmd(1, 100, 128), w, false, nil))
	r := make([]byte, len(w)) // C2HData in 16 KiB PDUs
	mustOK(t, q.exec(nvme.ReadCmd(1, 100, 128), nil, false, r))
	if !bytes.Equal(r, w) {
		t.Fatal("R2T write read back differs")
	}
	// In-capsule write over part of it.
	small := bytes.Repeat([]byte{0xEE}, 1024)
	mustOK(t, q.exec(nvme.WriteCmd(1, 101, 2), small, true, nil))
	mustOK(t, q.exec(nvme.ReadCmd(1, 100, 4), nil, false, r[:2048]))
	if !bytes.Equal(r[:512], w[:512]) || !bytes.Equal(r[512:1536], small) || !bytes.Equal(r[1536:2048], w[1536:2048]) {
		t.Fatal("in-capsule write read back differs")
	}
	// Null namespace reads zeroes.
	z := bytes.Repeat([]byte{1}, 4096)
	mustOK(t, q.exec(nvme.WriteCmd(2, 0, 1), z, true, nil))
	mustOK(t, q.exec(nvme.ReadCmd(2, 0, 1), nil, false, z))
	if !bytes.Equal(z, make([]byte, 4096)) {
		t.Fatal("null read not zero")
	}
	mustOK(t, q.exec(nvme.FlushCmd(1), nil, false, nil))
}

func TestIOErrors(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	buf := make([]byte, 512)
	wantStatus(t, q.exec(nvme.ReadCmd(1, 2048, 1), nil, false, buf), nvme.StatusLBAOutOfRange)
	wantStatus(t, q.exec(nvme.ReadCmd(1, 2047, 2), nil, false, make([]byte, 1024)), nvme.StatusLBAOutOfRange)
	wantStatus(t, q.exec(nvme.ReadCmd(7, 0, 1), nil, false, buf), nvme.StatusInvalidNamespace)
	wantStatus(t, q.exec(nvme.ReadCmd(1, 0, 512), nil, false, make([]byte, 256<<10)), nvme.StatusInvalidField) // > MDTS
	wantStatus(t, q.exec(nvme.ReadCmd(1, 0, 2), nil, false, buf), nvme.StatusSGLInvalidDataLength)
	wantStatus(t, q.exec(nvme.WriteCmd(1, 0, 2), buf, true, nil), nvme.StatusSGLInvalidDataLength)
	wantStatus(t, q.exec(nvme.SQE{Opcode: 0x55, NSID: 1}, nil, false, nil), nvme.StatusInvalidOpcode)
	wantStatus(t, q.exec(nvme.WriteZeroesCmd(1, 4000, 1, false), nil, false, nil), nvme.StatusLBAOutOfRange)
	// The error log has them, newest first.
	b := make([]byte, 4096)
	mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogError, 0xFFFFFFFF, 0, 0, 4096), nil, false, b))
	var e nvme.ErrorLogEntry
	_ = e.Decode(b)
	if e.ErrorCount != 8 || e.SQID != 1 || e.Status.Code() != nvme.StatusLBAOutOfRange || e.Opcode != nvme.CmdWriteZeroes {
		t.Fatalf("error log %+v", e)
	}
	// The queue still works.
	mustOK(t, q.exec(nvme.ReadCmd(1, 0, 1), nil, false, buf))
}

func TestCompareFusedZeroesDSM(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	old := bytes.Repeat([]byte{0xAB}, 1024)
	mustOK(t, q.exec(nvme.WriteCmd(1, 10, 2), old, true, nil))
	mustOK(t, q.exec(nvme.CompareCmd(1, 10, 2), old, true, nil))
	wantStatus(t, q.exec(nvme.CompareCmd(1, 10, 2), make([]byte, 1024), false, nil), nvme.StatusCompareFailure)

	fused := func(cmp, data []byte) (nvme.CQE, nvme.CQE) {
		c1 := nvme.CompareCmd(1, 10, 2)
		c1.Flags |= nvme.FuseFirst | nvme.PSDTSGL
		c1.CID = 100
		nvme.SetInCapsule(&c1, 1024)
		c2 := nvme.WriteCmd(1, 10, 2)
		c2.Flags |= nvme.FuseSecond | nvme.PSDTSGL
		c2.CID = 101
		nvme.SetDataLength(&c2, 1024) // second goes through R2T
		_ = q.conn.Send(&tcp.CapsuleCmd{SQE: c1}, cmp)
		_ = q.conn.Send(&tcp.CapsuleCmd{SQE: c2}, nil)
		var r [2]nvme.CQE
		for n := 0; n < 2; {
			p, err := q.conn.Next()
			if err != nil {
				t.Fatal(err)
			}
			switch v := p.(type) {
			case *tcp.R2T:
				_ = q.conn.Send(&tcp.H2CData{CCCID: v.CCCID, TTAG: v.TTAG, DATAL: v.R2TL, Last: true}, data)
			case *tcp.CapsuleResp:
				r[v.CQE.CID-100] = v.CQE
				n++
			}
		}
		return r[0], r[1]
	}
	nw := bytes.Repeat([]byte{0xCD}, 1024)
	r1, r2 := fused(old, nw)
	mustOK(t, r1)
	mustOK(t, r2)
	r1, r2 = fused(old, old) // compare fails now
	wantStatus(t, r1, nvme.StatusCompareFailure)
	wantStatus(t, r2, nvme.StatusAbortFusedFail)
	got := make([]byte, 1024)
	mustOK(t, q.exec(nvme.ReadCmd(1, 10, 2), nil, false, got))
	if !bytes.Equal(got, nw) {
		t.Fatal("fused write not applied")
	}
	// A lone second command.
	c2 := nvme.WriteCmd(1, 10, 2)
	c2.Flags |= nvme.FuseSecond
	wantStatus(t, q.exec(c2, nw, true, nil), nvme.StatusAbortFusedMissing)

	// Write Zeroes and DSM deallocate read back as zeroes.
	mustOK(t, q.exec(nvme.WriteZeroesCmd(1, 10, 1, true), nil, false, nil))
	mustOK(t, q.exec(nvme.ReadCmd(1, 10, 2), nil, false, got))
	if !bytes.Equal(got[:512], make([]byte, 512)) || !bytes.Equal(got[512:], nw[512:]) {
		t.Fatal("write zeroes")
	}
	rng := (&nvme.DSMRange{SLBA: 11, NLB: 1}).Append(nil)
	mustOK(t, q.exec(nvme.DSMCmd(1, 1, true), rng, true, nil))
	mustOK(t, q.exec(nvme.ReadCmd(1, 10, 2), nil, false, got))
	if !bytes.Equal(got, make([]byte, 1024)) {
		t.Fatal("dsm deallocate")
	}
	bad := (&nvme.DSMRange{SLBA: 5000, NLB: 1}).Append(nil)
	wantStatus(t, q.exec(nvme.DSMCmd(1, 1, true), bad, true, nil), nvme.StatusLBAOutOfRange)
}

func TestDiscoveryLog(t *testing.T) {
	tg := startTarget(t, testConfig())
	d := admin(t, tg.Addrs()[1], nvme.DiscoveryNQN, 0)
	b := make([]byte, 4096)
	mustOK(t, d.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, b))
	var id nvme.IdentifyController
	_ = id.Decode(b)
	if id.CNTRLTYPE != nvme.CntrlTypeDiscovery || id.SUBNQN != nvme.DiscoveryNQN {
		t.Fatalf("discovery identify %+v", id)
	}
	// Header first, then the whole log, then one entry by offset.
	hdr := make([]byte, 1024)
	mustOK(t, d.exec(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, 1024), nil, false, hdr))
	gen, numrec, _, _ := nvme.DecodeDiscoveryLogHeader(hdr)
	// testNQN on port 1 (the private subsystem is not ours), and the
	// current discovery subsystem on ports 1 and 2.
	if numrec != 3 {
		t.Fatalf("numrec %d", numrec)
	}
	all := make([]byte, 1024*(1+numrec))
	mustOK(t, d.exec(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, uint32(len(all))), nil, false, all))
	l, err := nvme.DecodeDiscoveryLog(all)
	if err != nil || l.GENCTR != gen || len(l.Entries) != 3 {
		t.Fatalf("log %+v %v", l, err)
	}
	e := l.Entries[0]
	port := tg.Addrs()[0].(interface{ String() string }).String()
	if e.SUBTYPE != nvme.SubtypeNVM || e.SUBNQN != testNQN || e.TRTYPE != nvme.TRTypeTCP || e.ADRFAM != 1 ||
		e.TRADDR+":"+e.TRSVCID != port || e.PORTID != 1 || e.CNTLID != 0xFFFF {
		t.Fatalf("entry 0 %+v (want %s)", e, port)
	}
	if l.Entries[1].SUBTYPE != nvme.SubtypeCurrentDiscovery || l.Entries[2].PORTID != 2 {
		t.Fatalf("entries %+v", l.Entries[1:])
	}
	one := make([]byte, 1024)
	mustOK(t, d.exec(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 2048, 1024), nil, false, one))
	if !bytes.Equal(one, all[2048:3072]) {
		t.Fatal("paged entry differs")
	}
	wantStatus(t, d.exec(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 1<<20, 1024), nil, false, one), nvme.StatusInvalidField)
	wantStatus(t, d.exec(nvme.GetLogPageCmd(nvme.LogSMART, 0, 0, 0, 512), nil, false, make([]byte, 512)), nvme.StatusInvalidField)

	// A discovery change bumps GENCTR and raises the AEN.
	mustOK(t, d.exec(nvme.SetAsyncEventConfigCmd(nvme.AECDiscovery), nil, false, nil))
	d.cid++
	aer := nvme.AsyncEventRequestCmd()
	aer.CID = 500
	_ = d.conn.Send(&tcp.CapsuleCmd{SQE: aer}, nil)
	sub := DefaultSubsystem("nqn.2014-08.io.nvmftest:added")
	if err := tg.AddSubsystem(sub); err != nil {
		t.Fatal(err)
	}
	r, err := d.wait(500, nil, nil)
	if err != nil || r.DW0 != nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeDiscoveryChange, nvme.LogDiscovery) {
		t.Fatalf("AEN %+v %v", r, err)
	}
	mustOK(t, d.exec(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, 1024), nil, false, hdr))
	if g, n, _, _ := nvme.DecodeDiscoveryLogHeader(hdr); g != gen+1 || n != 4 {
		t.Fatalf("after add: genctr %d numrec %d", g, n)
	}
}

func TestAENOnAddNamespace(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	aer := nvme.AsyncEventRequestCmd()
	aer.CID = 900
	_ = a.conn.Send(&tcp.CapsuleCmd{SQE: aer}, nil)
	// Keep alive still completes while the AER waits.
	mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
	if err := tg.AddNamespace(testNQN, NamespaceConfig{Backend: BackendMem, Size: "4MiB"}); err != nil {
		t.Fatal(err)
	}
	r, err := a.wait(900, nil, nil)
	if err != nil || r.DW0 != nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeNSChanged, nvme.LogChangedNSList) {
		t.Fatalf("AEN %+v %v", r, err)
	}
	b := make([]byte, 4096)
	mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogChangedNSList, 0xFFFFFFFF, 0, 0, 4096), nil, false, b))
	if l := nvme.DecodeChangedNSList(b); len(l) != 1 || l[0] != 3 {
		t.Fatalf("changed list %v", l)
	}
	mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogChangedNSList, 0xFFFFFFFF, 0, 0, 4096), nil, false, b))
	if l := nvme.DecodeChangedNSList(b); len(l) != 0 {
		t.Fatalf("changed list not cleared: %v", l)
	}
	// Removal raises it again (the log was read, so it is unmasked).
	aer.CID = 901
	_ = a.conn.Send(&tcp.CapsuleCmd{SQE: aer}, nil)
	if err := tg.RemoveNamespace(testNQN, 2); err != nil {
		t.Fatal(err)
	}
	if r, err := a.wait(901, nil, nil); err != nil || r.DW0&0xFF00 != 0 {
		t.Fatalf("AEN %+v %v", r, err)
	}
	// ANA log lists namespaces 1 and 3 in group 1.
	mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogANA, 0, 0, 0, 64), nil, false, b[:64]))
	l, err := nvme.DecodeANALog(b[:64])
	if err != nil || len(l.Groups) != 1 || len(l.Groups[0].NSIDs) != 2 || l.Groups[0].State != nvme.ANAOptimized {
		t.Fatalf("ANA %+v %v", l, err)
	}
	// Unknown log page: Invalid Field, as nvmet.
	wantStatus(t, a.exec(nvme.GetLogPageCmd(0x7E, 0, 0, 0, 512), nil, false, make([]byte, 512)), nvme.StatusInvalidField)
	// Features.
	r = a.exec(nvme.SQE{Opcode: nvme.AdminSetFeatures, CDW10: nvme.FeatNumQueues, CDW11: nvme.NumQueuesValue(64, 64)}, nil, false, nil)
	if nsq, _ := nvme.DecodeNumQueues(r.DW0); nsq != 8 {
		t.Fatalf("number of queues %d", nsq)
	}
	mustOK(t, a.exec(nvme.SQE{Opcode: nvme.AdminGetFeatures, CDW10: nvme.FeatArbitration}, nil, false, nil))
	mustOK(t, a.exec(nvme.SQE{Opcode: nvme.AdminGetFeatures, CDW10: nvme.FeatPowerManagement}, nil, false, nil))
	if r := a.exec(nvme.AbortCmd(0, 1), nil, false, nil); r.DW0&1 != 1 {
		t.Fatalf("abort %+v", r)
	}
}

func TestKeepAliveExpiry(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 50) // 50 ms
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
	a.expectClosed()
	q.expectClosed()
	// The controller is gone: a new I/O queue cannot join it.
	c := dial(t, tg.Addrs()[0], 0)
	wantStatus(t, c.exec(connectSQE(1, 31, 0, 0), connectData(testNQN, testHost, a.cntlid), true, nil), nvme.StatusConnectInvalidParameters)
}

func TestSQFlowControlDisabled(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := dial(t, tg.Addrs()[0], 0)
	r := q.exec(connectSQE(1, 31, 0, nvme.CATTRDisableSQFlow), connectData(testNQN, testHost, a.cntlid), true, nil)
	mustOK(t, r)
	if r.SQHD != 0xFFFF {
		t.Fatalf("SQHD %#x", r.SQHD)
	}
	b := make([]byte, 4096)
	// The read ends with a SUCCESS C2HData, no response capsule.
	r = q.exec(nvme.ReadCmd(1, 0, 8), nil, false, b)
	if r.SQHD != 0xFFFF {
		t.Fatal("expected C2HData SUCCESS")
	}
	mustOK(t, q.exec(nvme.FlushCmd(1), nil, false, nil))
}

func TestDataDigestError(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, tcp.DgstData)
	sqe := nvme.WriteCmd(1, 0, 1)
	sqe.CID = 77
	nvme.SetInCapsule(&sqe, 512)
	pdu := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, make([]byte, 512), tcp.EncodeOptions{Digests: tcp.Digests{Data: true}})
	pdu[len(pdu)-1] ^= 0xFF
	_ = q.conn.SendRaw(pdu)
	r, err := q.wait(77, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, r, nvme.StatusTransientTransport)
	mustOK(t, q.exec(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)))
}

func TestMalformedPDUs(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	good := admin(t, addr, testNQN, 0)
	gq := ioQueue(t, addr, good.cntlid, 1, 0)

	hdr := func(typ, hlen uint8, plen uint32) []byte {
		b := make([]byte, 8, 72)
		b[0], b[2] = typ, hlen
		binary.LittleEndian.PutUint32(b[4:], plen)
		return append(b, make([]byte, int(hlen)-8)...)
	}
	t.Run("wrong hlen", func(t *testing.T) {
		c := dial(t, addr, 0)
		_ = c.conn.SendRaw(hdr(byte(tcp.TypeCapsuleCmd), 70, 70))
		c.expectTerm(tcp.FESInvalidHeaderField, 2)
	})
	t.Run("unknown type", func(t *testing.T) {
		c := dial(t, addr, 0)
		_ = c.conn.SendRaw(hdr(0x0A, 24, 24))
		c.expectTerm(tcp.FESInvalidHeaderField, 0)
	})
	t.Run("second ICReq", func(t *testing.T) {
		c := dial(t, addr, 0)
		_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{}))
		c.expectTerm(tcp.FESPDUSequenceError, 0)
	})
	t.Run("bad header digest", func(t *testing.T) {
		c := dial(t, addr, tcp.DgstHeader)
		sqe := nvme.KeepAliveCmd()
		b := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, nil, tcp.EncodeOptions{Digests: tcp.Digests{Header: true}})
		b[len(b)-1] ^= 1
		_ = c.conn.SendRaw(b)
		// FEI: the HDGST as received (NVMe/TCP 1.0 3.6.2.5).
		c.expectTerm(tcp.FESHeaderDigestError, binary.LittleEndian.Uint32(b[len(b)-tcp.DigestSize:]))
	})
	t.Run("H2CData bad offset", func(t *testing.T) {
		c := ioQueue(t, addr, good.cntlid, 2, 0)
		w := nvme.WriteCmd(1, 0, 32)
		w.CID = 9
		nvme.SetDataLength(&w, 16384)
		_ = c.conn.Send(&tcp.CapsuleCmd{SQE: w}, nil)
		p, err := c.conn.Next()
		if err != nil {
			t.Fatal(err)
		}
		r := p.(*tcp.R2T)
		// Inside the R2T's range but not where the data stopped: a
		// non-contiguous H2CData PDU (NVMe/TCP 1.0 3.3.2.2).
		_ = c.conn.Send(&tcp.H2CData{CCCID: 9, TTAG: r.TTAG, DATAO: 512, DATAL: 512}, make([]byte, 512))
		c.expectTerm(tcp.FESPDUSequenceError, 0)
	})
	t.Run("H2CData beyond the R2T", func(t *testing.T) {
		c := ioQueue(t, addr, good.cntlid, 2, 0)
		w := nvme.WriteCmd(1, 0, 32)
		w.CID = 9
		nvme.SetDataLength(&w, 16384)
		_ = c.conn.Send(&tcp.CapsuleCmd{SQE: w}, nil)
		p, err := c.conn.Next()
		if err != nil {
			t.Fatal(err)
		}
		r := p.(*tcp.R2T)
		_ = c.conn.Send(&tcp.H2CData{CCCID: 9, TTAG: r.TTAG, DATAO: 16384 - 512, DATAL: 1024}, make([]byte, 1024))
		c.expectTerm(tcp.FESDataOutOfRange, 0)
	})
	t.Run("H2CData unknown TTAG", func(t *testing.T) {
		c := ioQueue(t, addr, good.cntlid, 3, 0)
		_ = c.conn.Send(&tcp.H2CData{CCCID: 9, TTAG: 999, DATAL: 512, Last: true}, make([]byte, 512))
		c.expectTerm(tcp.FESInvalidHeaderField, 10)
	})
	t.Run("too many outstanding", func(t *testing.T) {
		// The overrun ends its association: not the good one.
		other := admin(t, addr, testNQN, 0)
		c := dial(t, addr, 0)
		mustOK(t, c.exec(connectSQE(4, 1, 0, 0), connectData(testNQN, testHost, other.cntlid), true, nil))
		// Queue of 2 entries: a full queue holds one; the second is a
		// violation.
		w := nvme.WriteCmd(1, 0, 1)
		nvme.SetDataLength(&w, 512) // waits for H2CData, so stays outstanding
		for i := range 3 {
			w.CID = uint16(i)
			_ = c.conn.Send(&tcp.CapsuleCmd{SQE: w}, nil)
		}
		c.expectTerm(tcp.FESPDUSequenceError, 0)
	})
	// The association that behaved is untouched.
	mustOK(t, good.exec(nvme.KeepAliveCmd(), nil, false, nil))
	mustOK(t, gq.exec(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)))
}

func TestICTimeoutAndClose(t *testing.T) {
	cfg := testConfig()
	cfg.ICTimeout = 20 * time.Millisecond
	tg := startTarget(t, cfg)
	c := dialRaw(t, tg.Addrs()[0])
	buf := make([]byte, 1)
	if _, err := c.nc.Read(buf); err == nil {
		t.Fatal("silent connection not closed")
	}
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	a.expectClosed()
}

func TestFileBackend(t *testing.T) {
	cfg := testConfig()
	path := t.TempDir() + "/ns.img"
	cfg.Subsystems[0].Namespaces = append(cfg.Subsystems[0].Namespaces,
		NamespaceConfig{NSID: 3, Backend: BackendFile, Path: path, Size: "2MiB", BlockSize: 4096})
	tg := startTarget(t, cfg)
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
	w := bytes.Repeat([]byte("nvmftest"), 1024)
	wr := nvme.WriteCmd(3, 5, 2)
	nvme.SetFUA(&wr)
	mustOK(t, q.exec(wr, w, false, nil))
	r := make([]byte, len(w))
	mustOK(t, q.exec(nvme.ReadCmd(3, 5, 2), nil, false, r))
	if !bytes.Equal(r, w) {
		t.Fatal("file read back differs")
	}
	mustOK(t, q.exec(nvme.FlushCmd(3), nil, false, nil))
	b := make([]byte, 4096)
	mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, b))
	var id nvme.IdentifyController
	_ = id.Decode(b)
	if id.VWC&nvme.VWCPresent == 0 {
		t.Fatal("file backend must report a volatile write cache")
	}
}

func TestMemBackendLazy(t *testing.T) {
	b := NewMemBackend(1 << 40)
	if b.Allocated() != 0 {
		t.Fatal("allocated up front")
	}
	_, _ = b.WriteAt(make([]byte, 4096), 1<<39)
	if b.Allocated() != memChunk {
		t.Fatalf("allocated %d", b.Allocated())
	}
	_ = b.Deallocate(1<<39-memChunk*0, memChunk)
	if b.Allocated() != 0 {
		t.Fatal("deallocate kept the chunk")
	}
}

// TestSMARTControllerWideOnly: the SMART / Health Information log is kept
// for the controller as a whole, so Identify Controller does not claim
// it per namespace (LPA bit 0), and a Get Log Page of it for one
// namespace fails with Invalid Field in Command instead of passing the
// controller's counters off as that namespace's (or a namespace that does
// not exist). NSID FFFFFFFFh and 0 read the controller's page.
func TestSMARTControllerWideOnly(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	ctrl := a.identifyController()
	if ctrl.LPA&1 != 0 {
		t.Errorf("LPA %#x claims a per-namespace SMART log", ctrl.LPA)
	}
	b := make([]byte, nvme.SMARTLogSize)
	for _, nsid := range []uint32{0xFFFFFFFF, 0} {
		mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogSMART, nsid, 0, 0, nvme.SMARTLogSize), nil, false, b))
	}
	for _, nsid := range []uint32{1, 2, 0x4d} {
		wantStatus(t, a.exec(nvme.GetLogPageCmd(nvme.LogSMART, nsid, 0, 0, nvme.SMARTLogSize), nil, false, b), nvme.StatusInvalidField)
	}
}
