package target

import (
	"bytes"
	"errors"
	"path/filepath"
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

// TestResizeNamespace: a namespace grows and shrinks while a controller is
// connected, as an array's volume does. Each change raises a Namespace
// Attribute Changed event with the NSID in the Changed Namespace List,
// Identify Namespace reports the new NSZE and NCAP, blocks that stay keep
// their data, grown blocks read zeroes (also after a shrink and a grow
// over data that was written before), and I/O past the new end fails
// with LBA Out of Range. Mem and file backends both.
func TestResizeNamespace(t *testing.T) {
	for _, kind := range []string{BackendMem, BackendFile} {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig()
			nc := NamespaceConfig{NSID: 3, Backend: kind, Size: "1MiB", BlockSize: 4096}
			if kind == BackendFile {
				nc.Path = filepath.Join(t.TempDir(), "ns3.img")
			}
			cfg.Subsystems[0].Namespaces = append(cfg.Subsystems[0].Namespaces, nc)
			tg := startTarget(t, cfg)
			a := admin(t, tg.Addrs()[0], testNQN, 0)
			q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
			pattern := bytes.Repeat([]byte{0xC3}, 4096)
			for _, lba := range []uint64{0, 255} { // first and last block of 1 MiB
				mustOK(t, q.exec(nvme.WriteCmd(3, lba, 1), pattern, false, nil))
			}

			resize := func(cid uint16, size int64, wantNLBA uint64) {
				t.Helper()
				sendAER(t, a, cid)
				mustOK(t, a.exec(nvme.KeepAliveCmd(), nil, false, nil))
				if err := tg.ResizeNamespace(testNQN, 3, size); err != nil {
					t.Fatal(err)
				}
				r := waitAEN(t, a, cid, nil, "resize")
				if r.DW0 != nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeNSChanged, nvme.LogChangedNSList) {
					t.Fatalf("AEN dw0 %#x, want Namespace Attribute Changed", r.DW0)
				}
				page := make([]byte, 4096)
				mustOK(t, a.exec(nvme.GetLogPageCmd(nvme.LogChangedNSList, 0xFFFFFFFF, 0, 0, 4096), nil, false, page))
				if ids := nvme.DecodeChangedNSList(page); !slices.Equal(ids, []uint32{3}) {
					t.Fatalf("changed list %v, want [3]", ids)
				}
				id := make([]byte, nvme.IdentifyDataSize)
				mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSNamespace, 3, 0), nil, false, id))
				var ns nvme.IdentifyNamespace
				if err := ns.Decode(id); err != nil {
					t.Fatal(err)
				}
				if ns.NSZE != wantNLBA || ns.NCAP != wantNLBA {
					t.Fatalf("after resizing to %d bytes: NSZE %d NCAP %d, want %d", size, ns.NSZE, ns.NCAP, wantNLBA)
				}
			}
			read := func(lba uint64) []byte {
				t.Helper()
				b := make([]byte, 4096)
				mustOK(t, q.exec(nvme.ReadCmd(3, lba, 1), nil, false, b))
				return b
			}
			zero := make([]byte, 4096)

			resize(900, 2<<20, 512)
			if !bytes.Equal(read(0), pattern) || !bytes.Equal(read(255), pattern) {
				t.Fatal("data below the old end changed when the namespace grew")
			}
			if !bytes.Equal(read(511), zero) {
				t.Fatal("a grown block does not read zeroes")
			}
			mustOK(t, q.exec(nvme.WriteCmd(3, 511, 1), pattern, false, nil))

			resize(901, 128<<10, 32)
			if !bytes.Equal(read(0), pattern) {
				t.Fatal("block 0 changed when the namespace shrank")
			}
			wantStatus(t, q.exec(nvme.ReadCmd(3, 32, 1), nil, false, make([]byte, 4096)), nvme.StatusLBAOutOfRange)
			wantStatus(t, q.exec(nvme.WriteCmd(3, 255, 1), pattern, false, nil), nvme.StatusLBAOutOfRange)

			resize(902, 2<<20, 512)
			if !bytes.Equal(read(255), zero) || !bytes.Equal(read(511), zero) {
				t.Fatal("blocks written before a shrink read their old data after growing again, want zeroes")
			}

			if err := tg.ResizeNamespace(testNQN, 3, 1000); err == nil {
				t.Fatal("a size that is not a whole number of blocks was accepted")
			}
			if err := tg.ResizeNamespace(testNQN, 9, 1<<20); err == nil {
				t.Fatal("resizing a namespace that does not exist was accepted")
			}
		})
	}
}
