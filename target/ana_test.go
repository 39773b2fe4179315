package target

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// anaConfig: two I/O ports, namespace 1 in group 1, namespace 2 in group 2,
// group 2 non-optimized on port 2.
func anaConfig() Config {
	c := testConfig()
	c.Listeners = []ListenerConfig{
		{Address: "127.0.0.1:0", PortID: 1, Serve: ServeAll},
		{Address: "127.0.0.1:0", PortID: 2, Serve: ServeIO, ANAStates: map[uint32]string{2: "non-optimized"}},
	}
	c.Subsystems[0].Namespaces[1].ANAGroup = 2
	return c
}

func readANA(t *testing.T, a *client) nvme.ANALog {
	t.Helper()
	b := make([]byte, 4096)
	mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogANA, 0, 0, 0, 4096), nil, false, b))
	l, err := nvme.DecodeANALog(b)
	if err != nil {
		t.Fatal(err)
	}
	return *l
}

func groupState(l nvme.ANALog, g uint32) (uint8, uint64) {
	for _, d := range l.Groups {
		if d.ANAGRPID == g {
			return d.State, d.CHGCNT
		}
	}
	return 0, 0
}

func TestANAGroupsAndStates(t *testing.T) {
	tg := startTarget(t, anaConfig())
	a1 := admin(t, tg.Addrs()[0], testNQN, 0)
	a2 := admin(t, tg.Addrs()[1], testNQN, 0)

	// Identify: ANA capabilities and the namespace's group.
	b := make([]byte, 4096)
	mustOK(t, a1.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, b))
	var id nvme.IdentifyController
	if err := id.Decode(b); err != nil || id.ANAGRPMAX != MaxANAGroups || id.ANACAP&0x1F != 0x1F {
		t.Fatalf("identify ANA fields %d %#x %v", id.ANAGRPMAX, id.ANACAP, err)
	}
	mustOK(t, a1.exec(nvme.IdentifyCmd(nvme.CNSNamespace, 2, 0), nil, false, b))
	var ns nvme.IdentifyNamespace
	if err := ns.Decode(b); err != nil || ns.ANAGRPID != 2 {
		t.Fatalf("namespace 2 ANAGRPID %d %v", ns.ANAGRPID, err)
	}

	l1, l2 := readANA(t, a1), readANA(t, a2)
	if len(l1.Groups) != 2 {
		t.Fatalf("groups %+v", l1)
	}
	if s, _ := groupState(l1, 2); s != nvme.ANAOptimized {
		t.Fatalf("port 1 group 2 state %#x", s)
	}
	if s, _ := groupState(l2, 2); s != nvme.ANANonOptimized {
		t.Fatalf("port 2 group 2 state %#x", s)
	}

	// An AER waits on port 1; group 1 becomes inaccessible there.
	aer := nvme.AsyncEventRequestCmd()
	aer.CID = 900
	_ = a1.conn.Send(&tcp.CapsuleCmd{SQE: aer}, nil)
	mustOK(t, a1.exec(nvme.KeepAliveCmd(), nil, false, nil))
	q1 := ioQueue(t, tg.Addrs()[0], a1.cntlid, 1, 0)
	q2 := ioQueue(t, tg.Addrs()[1], a2.cntlid, 1, 0)
	buf := make([]byte, 512)
	mustOK(t, q1.exec(nvme.ReadCmd(1, 0, 1), nil, false, buf))
	if err := tg.SetANAState(1, 1, nvme.ANAInaccessible); err != nil {
		t.Fatal(err)
	}
	r, err := a1.wait(900, nil, nil)
	if err != nil || r.DW0 != nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeANAChange, nvme.LogANA) {
		t.Fatalf("AEN %+v %v", r, err)
	}
	n1 := readANA(t, a1)
	if s, c := groupState(n1, 1); s != nvme.ANAInaccessible || c == 0 || n1.CHGCNT <= l1.CHGCNT || c > n1.CHGCNT {
		t.Fatalf("after change: %+v (before CHGCNT %d)", n1, l1.CHGCNT)
	}
	// Path statuses, without DNR, on port 1 only.
	r = q1.exec(nvme.ReadCmd(1, 0, 1), nil, false, buf)
	if r.Status.Code() != nvme.StatusANAInaccessible || r.Status&nvme.StatusDNR != 0 {
		t.Fatalf("read on inaccessible path: %v", r.Status)
	}
	mustOK(t, q1.exec(nvme.ReadCmd(2, 0, 1), nil, false, make([]byte, 4096)))
	mustOK(t, q2.exec(nvme.ReadCmd(1, 0, 1), nil, false, buf))
	for _, c := range []struct {
		state uint8
		want  nvme.Status
	}{{nvme.ANAPersistentLoss, nvme.StatusANAPersistentLoss}, {nvme.ANAChange, nvme.StatusANATransition}} {
		if err := tg.SetANAState(1, 1, c.state); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, q1.exec(nvme.WriteCmd(1, 0, 1), buf, true, nil), c.want)
	}
	// Back to optimized: I/O flows, CHGCNT still grows.
	if err := tg.SetANAState(1, 1, nvme.ANAOptimized); err != nil {
		t.Fatal(err)
	}
	mustOK(t, q1.exec(nvme.WriteCmd(1, 0, 1), buf, true, nil))
	if n := readANA(t, a1); n.CHGCNT <= n1.CHGCNT {
		t.Fatalf("CHGCNT %d after %d", n.CHGCNT, n1.CHGCNT)
	}
	// RGO: groups without NSIDs.
	mustOK(t, a1.exec(nvme.GetLogPageCmd(nvme.LogANA, 0, nvme.ANALogRGO, 0, 4096), nil, false, b))
	if l, err := nvme.DecodeANALog(b); err != nil || len(l.Groups) != 2 || len(l.Groups[0].NSIDs) != 0 {
		t.Fatalf("RGO %+v %v", l, err)
	}
	if tg.SetANAState(9, 1, nvme.ANAOptimized) == nil || tg.SetANAState(1, 0, nvme.ANAOptimized) == nil || tg.SetANAState(1, 1, 7) == nil {
		t.Fatal("bad SetANAState arguments accepted")
	}
}

func TestPortDownUp(t *testing.T) {
	tg := startTarget(t, anaConfig())
	addr := tg.Addrs()[1]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	if err := tg.PortDown(2); err != nil {
		t.Fatal(err)
	}
	a.expectClosed()
	q.expectClosed()
	if !tg.PortIsDown(2) || len(tg.Addrs()) != 1 {
		t.Fatalf("port 2 still up: %v", tg.Addrs())
	}
	if err := tg.PortUp(2); err != nil {
		t.Fatal(err)
	}
	a = admin(t, addr, testNQN, 0)
	mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
	var seen bool
	for _, p := range tg.Ports() {
		if p.PortID == 2 {
			seen = !p.Down && p.Address == addr.String() && p.ANA[2] == "non-optimized"
		}
	}
	if !seen {
		t.Fatalf("ports %+v", tg.Ports())
	}
}

func TestANAConfigValidation(t *testing.T) {
	c := anaConfig()
	c.Listeners[1].ANAStates = map[uint32]string{1: "sideways"}
	if err := c.Validate(); err == nil {
		t.Fatal("bad state accepted")
	}
	c = anaConfig()
	c.Subsystems[0].Namespaces[0].ANAGroup = MaxANAGroups + 1
	if err := c.Validate(); err == nil {
		t.Fatal("bad group accepted")
	}
	for _, s := range []string{"optimized", "non-optimized", "inaccessible", "persistent-loss", "change"} {
		st, err := ParseANAState(s)
		if err != nil || nvme.ANAStateString(st) != s {
			t.Fatalf("%s: %#x %v", s, st, err)
		}
	}
}
