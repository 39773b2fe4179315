package target

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// hookLogPage makes getLogPage call f (once) between building a page of
// log lid and unmasking its event kind.
func hookLogPage(t *testing.T, lid uint8, f func()) {
	var once atomic.Bool
	h := func(l uint8) {
		if l == lid && once.CompareAndSwap(false, true) {
			f()
		}
	}
	testHookLogPage.Store(&h)
	t.Cleanup(func() { testHookLogPage.Store(nil) })
}

// logAndEvents sends a Get Log Page of lid (RAE clear) and reads until its
// completion, collecting any AER completions that arrive meanwhile.
func logAndEvents(t *testing.T, a *client, lid uint8, n uint32) (page []byte, aens []nvme.CQE) {
	t.Helper()
	s := nvme.GetLogPageCmd(lid, 0, 0, 0, n)
	a.cid++
	s.CID = a.cid
	if err := a.conn.Send(&tcp.CapsuleCmd{SQE: s}, nil); err != nil {
		t.Fatal(err)
	}
	page = make([]byte, n)
	for {
		p, err := a.conn.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch v := p.(type) {
		case *tcp.C2HData:
			if err := a.conn.ReadData(page[v.DATAO : v.DATAO+v.DATAL]); err != nil {
				t.Fatal(err)
			}
		case *tcp.CapsuleResp:
			if v.CQE.CID != s.CID {
				aens = append(aens, v.CQE)
				continue
			}
			mustOK(t, v.CQE)
			return page, aens
		default:
			t.Fatalf("unexpected PDU %v", p.Type())
		}
	}
}

// waitAEN waits (bounded) for the completion of the AER with the given
// CID, unless it already came in got.
func waitAEN(t *testing.T, a *client, cid uint16, got []nvme.CQE, what string) nvme.CQE {
	t.Helper()
	for _, c := range got {
		if c.CID == cid {
			return c
		}
	}
	_ = a.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer a.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	r, err := a.wait(cid, nil, nil)
	if err != nil {
		t.Fatalf("%s: no Asynchronous Event Notification (%v)", what, err)
	}
	return r
}

func sendAER(t *testing.T, a *client, cid uint16) {
	t.Helper()
	s := nvme.AsyncEventRequestCmd()
	s.CID = cid
	if err := a.conn.Send(&tcp.CapsuleCmd{SQE: s}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestANAEventDuringLogRead: an ANA change that happens after the host's
// log read built its page but before the event kind is unmasked must
// still reach the host (review #12). The hook makes the race happen on
// every run.
func TestANAEventDuringLogRead(t *testing.T) {
	tg := startTarget(t, anaConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	sendAER(t, a, 900)
	mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil)) // the AER is in
	if err := tg.SetANAState(1, 1, nvme.ANAInaccessible); err != nil {
		t.Fatal(err)
	}
	waitAEN(t, a, 900, nil, "first change")

	// The host re-arms and reads the log; the second change lands between
	// the page and the unmask.
	sendAER(t, a, 901)
	hookLogPage(t, nvme.LogANA, func() {
		if err := tg.SetANAState(1, 1, nvme.ANANonOptimized); err != nil {
			t.Error(err)
		}
	})
	page, aens := logAndEvents(t, a, nvme.LogANA, 4096)
	l, err := nvme.DecodeANALog(page)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := groupState(*l, 1); s != nvme.ANAInaccessible {
		t.Fatalf("the page was built after the second change (state %#x): the hook ran too late", s)
	}
	r := waitAEN(t, a, 901, aens, "ANA change during the log read")
	if r.DW0 != nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeANAChange, nvme.LogANA) {
		t.Fatalf("AEN dw0 %#x", r.DW0)
	}
	if s, _ := groupState(readANA(t, a), 1); s != nvme.ANANonOptimized {
		t.Fatalf("re-read state %#x, want non-optimized", s)
	}
}

// TestNSChangedEventDuringLogRead: the same race for the Changed
// Namespace List: a namespace added after the list was read and cleared
// but before the unmask gets its Namespace Attribute Changed notice.
func TestNSChangedEventDuringLogRead(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	sendAER(t, a, 900)
	mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
	if err := tg.AddNamespace(testNQN, NamespaceConfig{NSID: 5, Backend: BackendNull, Size: "1MiB"}); err != nil {
		t.Fatal(err)
	}
	waitAEN(t, a, 900, nil, "first namespace")

	sendAER(t, a, 901)
	hookLogPage(t, nvme.LogChangedNSList, func() {
		if err := tg.AddNamespace(testNQN, NamespaceConfig{NSID: 6, Backend: BackendNull, Size: "1MiB"}); err != nil {
			t.Error(err)
		}
	})
	page, aens := logAndEvents(t, a, nvme.LogChangedNSList, 4096)
	if ids := nvme.DecodeChangedNSList(page); !slices.Equal(ids, []uint32{5}) {
		t.Fatalf("changed list %v, want [5]", ids)
	}
	r := waitAEN(t, a, 901, aens, "namespace added during the log read")
	if r.DW0 != nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeNSChanged, nvme.LogChangedNSList) {
		t.Fatalf("AEN dw0 %#x", r.DW0)
	}
	page, _ = logAndEvents(t, a, nvme.LogChangedNSList, 4096)
	if ids := nvme.DecodeChangedNSList(page); !slices.Equal(ids, []uint32{6}) {
		t.Fatalf("changed list %v, want [6]", ids)
	}
}

// TestNoSpuriousEventAfterLogRead: a log read with nothing new since it
// started unmasks without raising an event.
func TestNoSpuriousEventAfterLogRead(t *testing.T) {
	tg := startTarget(t, anaConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	sendAER(t, a, 900)
	mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
	if err := tg.SetANAState(1, 1, nvme.ANAInaccessible); err != nil {
		t.Fatal(err)
	}
	waitAEN(t, a, 900, nil, "change")
	sendAER(t, a, 901)
	_, aens := logAndEvents(t, a, nvme.LogANA, 4096)
	if len(aens) != 0 {
		t.Fatalf("AEN without a change: %+v", aens)
	}
	_ = a.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if r, err := a.wait(901, nil, nil); err == nil {
		t.Fatalf("AEN without a change: %+v", r)
	} else if !isTimeout(err) {
		t.Fatal(err)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
