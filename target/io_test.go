package target

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// syncCounter wraps a namespace's backend and records which calls made
// data durable: dirty is set by every call that leaves data only in a
// volatile cache (WriteAt, WriteZeroes, Deallocate) and cleared by Flush.
// WriteAtFUA is durable by itself and leaves dirty alone.
type syncCounter struct {
	Backend
	mu                                               sync.Mutex
	writeAt, writeAtFUA, flush, writeZeroes, dealloc int
	dirty                                            bool
}

func (b *syncCounter) WriteAt(p []byte, off int64) (int, error) {
	n, err := b.Backend.WriteAt(p, off)
	b.mu.Lock()
	b.writeAt++
	b.dirty = true
	b.mu.Unlock()
	return n, err
}

func (b *syncCounter) WriteAtFUA(p []byte, off int64) (int, error) {
	n, err := b.Backend.(fuaWriter).WriteAtFUA(p, off)
	b.mu.Lock()
	b.writeAtFUA++
	b.mu.Unlock()
	return n, err
}

func (b *syncCounter) Flush() error {
	b.mu.Lock()
	b.flush++
	b.dirty = false
	b.mu.Unlock()
	return b.Backend.Flush()
}

func (b *syncCounter) WriteZeroes(off, n int64) error {
	b.mu.Lock()
	b.writeZeroes++
	b.dirty = true
	b.mu.Unlock()
	return b.Backend.WriteZeroes(off, n)
}

func (b *syncCounter) Deallocate(off, n int64) error {
	b.mu.Lock()
	b.dealloc++
	b.dirty = true
	b.mu.Unlock()
	return b.Backend.Deallocate(off, n)
}

func (b *syncCounter) state() (writeAt, writeAtFUA, flush int, dirty bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writeAt, b.writeAtFUA, b.flush, b.dirty
}

// wrapBackend replaces namespace nsid's backend (before Start) with wrap
// of it, keeping what the namespace learnt from the original.
func wrapBackend(t testing.TB, tg *Target, nsid uint32, wrap func(Backend) Backend) Backend {
	t.Helper()
	ns := tg.subsys[0].table().get(nsid)
	w := wrap(ns.b)
	ns.b = w
	if f, ok := w.(fuaWriter); ok {
		ns.fua = f
	}
	return w
}

// TestVWCDisabledHonoured: with the volatile write cache disabled
// (Set Features 06h WCE=0), every write, Write Zeroes and deallocation
// through that controller completes only once it is durable (Base 2.x
// 5.2.26.1.4: "the user data written by any command to a namespace shall
// be persistent"). Another controller keeps its own (enabled) cache: the
// feature's scope is the controller. Write Zeroes with FUA syncs whatever
// the cache setting, as a FUA Write does.
func TestVWCDisabledHonoured(t *testing.T) {
	tg, err := New(fileConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	sc := wrapBackend(t, tg, 1, func(b Backend) Backend { return &syncCounter{Backend: b} }).(*syncCounter)
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	a2 := admin(t, addr, testNQN, 0)
	q2 := ioQueue(t, addr, a2.cntlid, 1, 0)

	mustOK(t, a.exec(nvme.SetFeaturesCmd(nvme.FeatVolatileWC, 0, 0, false), nil, false, nil))
	if r := a.exec(nvme.GetFeaturesCmd(nvme.FeatVolatileWC, 0, nvme.SelCurrent), nil, false, nil); r.DW0&1 != 0 {
		t.Fatalf("Get Features VWC after WCE=0: dw0 %#x", r.DW0)
	}
	if r := a2.exec(nvme.GetFeaturesCmd(nvme.FeatVolatileWC, 0, nvme.SelCurrent), nil, false, nil); r.DW0&1 != 1 {
		t.Fatalf("other controller's VWC: dw0 %#x, want enabled", r.DW0)
	}
	mustOK(t, q.exec(nvme.FlushCmd(1), nil, false, nil))

	durable := func(what string) {
		t.Helper()
		if wa, fua, fl, dirty := sc.state(); dirty {
			t.Fatalf("%s acknowledged with WCE=0 but not durable: WriteAt=%d WriteAtFUA=%d Flush=%d", what, wa, fua, fl)
		}
	}
	data := bytes.Repeat([]byte{0xA5}, 4096)
	w := nvme.WriteCmd(1, 0, 8)
	nvme.SetInCapsule(&w, 4096)
	mustOK(t, q.exec(w, data, true, nil))
	durable("4 KiB Write")
	mustOK(t, q.exec(nvme.WriteZeroesCmd(1, 8, 8, false), nil, false, nil))
	durable("Write Zeroes")
	mustOK(t, q.exec(nvme.WriteZeroesCmd(1, 16, 8, true), nil, false, nil))
	durable("Write Zeroes with DEAC")
	rng := make([]byte, nvme.DSMRangeSize)
	(&nvme.DSMRange{NLB: 8, SLBA: 24}).Put(rng)
	mustOK(t, q.exec(nvme.DSMCmd(1, 1, true), rng, true, nil))
	durable("Dataset Management deallocate")

	// The other controller's cache is still enabled: a plain write there
	// is cached (no sync), and a Write Zeroes with FUA syncs.
	_, fua0, fl0, _ := sc.state()
	mustOK(t, q2.exec(w, data, true, nil))
	if _, fua, fl, dirty := sc.state(); !dirty || fua != fua0 || fl != fl0 {
		t.Fatalf("write through a controller with WCE=1 was synced (FUA %d->%d, Flush %d->%d)", fua0, fua, fl0, fl)
	}
	wz := nvme.WriteZeroesCmd(1, 32, 8, false)
	nvme.SetFUA(&wz)
	mustOK(t, q2.exec(wz, nil, false, nil))
	durable("Write Zeroes with FUA (WCE=1)")

	// Back to WCE=1: writes are cached again.
	mustOK(t, a.exec(nvme.SetFeaturesCmd(nvme.FeatVolatileWC, 0, 1, false), nil, false, nil))
	mustOK(t, q.exec(w, data, true, nil))
	if _, _, _, dirty := sc.state(); !dirty {
		t.Fatal("write with WCE=1 was synced")
	}
}

// TestVWCAbsent: without a volatile write cache (memory and null
// namespaces) the feature does not exist: Set and Get Features 06h fail
// with Invalid Field in Command (Base 2.x 5.2.26.1.4).
func TestVWCAbsent(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	wantStatus(t, a.exec(nvme.SetFeaturesCmd(nvme.FeatVolatileWC, 0, 0, false), nil, false, nil), nvme.StatusInvalidField)
	wantStatus(t, a.exec(nvme.GetFeaturesCmd(nvme.FeatVolatileWC, 0, nvme.SelCurrent), nil, false, nil), nvme.StatusInvalidField)
}

// blockingReads wraps a backend so that a read waits for release before it
// goes to the backend, and says so on entered.
type blockingReads struct {
	Backend
	entered chan struct{}
	release chan struct{}
	closed  chan struct{}
}

func (b *blockingReads) ReadAt(p []byte, off int64) (int, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Backend.ReadAt(p, off)
}

func (b *blockingReads) Close() error {
	err := b.Backend.Close()
	close(b.closed)
	return err
}

func (b *blockingReads) WriteAtFUA(p []byte, off int64) (int, error) {
	return b.Backend.(fuaWriter).WriteAtFUA(p, off)
}

// TestRemoveNamespaceInFlight: a command on a namespace that is removed
// while it is in flight completes as a command to an inactive NSID would
// (Invalid Namespace or Format, as prepareIO answers), not with a media
// error (Base 2.x 8.1.16: "Previously submitted but uncompleted ...
// commands to the affected NSID are handled by the controller as if they
// were issued to an inactive NSID").
func TestRemoveNamespaceInFlight(t *testing.T) {
	tg, err := New(fileConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	br := wrapBackend(t, tg, 1, func(b Backend) Backend {
		return &blockingReads{Backend: b, entered: make(chan struct{}, 1), release: make(chan struct{}), closed: make(chan struct{})}
	}).(*blockingReads)
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)

	r := nvme.ReadCmd(1, 0, 1)
	nvme.SetDataLength(&r, 512)
	r.CID = 77
	if err := q.conn.Send(&tcp.CapsuleCmd{SQE: r}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-br.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("read never reached the backend")
	}
	removed := make(chan error, 1)
	go func() { removed <- tg.RemoveNamespace(testNQN, 1) }()
	select {
	case <-br.closed:
	case err := <-removed:
		t.Fatalf("RemoveNamespace returned (%v) without closing the backend", err)
	case <-time.After(10 * time.Second):
		t.Fatal("RemoveNamespace did not close the backend")
	}
	close(br.release)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	cqe, err := q.wait(77, nil, make([]byte, 512))
	if err != nil {
		t.Fatal(err)
	}
	if cqe.Status.Code() != nvme.StatusInvalidNamespace {
		t.Fatalf("read in flight on a removed namespace: %v, want Invalid Namespace or Format", cqe.Status)
	}
	// A Flush of every namespace no longer sees it.
	mustOK(t, q.exec(nvme.FlushCmd(0xFFFFFFFF), nil, false, nil))
}

// TestDSMAllOrNothing: a Dataset Management deallocate whose last range is
// out of range fails with LBA Out of Range and deallocates nothing (review
// #18: it used to deallocate the ranges before the bad one).
func TestDSMAllOrNothing(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
	data := bytes.Repeat([]byte{0x5A}, 4096)
	w := nvme.WriteCmd(1, 0, 8)
	nvme.SetInCapsule(&w, 4096)
	mustOK(t, q.exec(w, data, true, nil))

	const nlba = 2048 // namespace 1: 1 MiB of 512-byte blocks
	rng := make([]byte, 2*nvme.DSMRangeSize)
	(&nvme.DSMRange{NLB: 8, SLBA: 0}).Put(rng)
	(&nvme.DSMRange{NLB: 1, SLBA: nlba}).Put(rng[nvme.DSMRangeSize:])
	wantStatus(t, q.exec(nvme.DSMCmd(1, 2, true), rng, true, nil), nvme.StatusLBAOutOfRange)

	r := nvme.ReadCmd(1, 0, 8)
	nvme.SetDataLength(&r, 4096)
	got := make([]byte, 4096)
	mustOK(t, q.exec(r, nil, false, got))
	if !bytes.Equal(got, data) {
		t.Fatalf("blocks 0-7 read %#x... after a failed deallocate, want 0x5a", got[:4])
	}
}

// TestDataSGLLongerThanTransfer: a data SGL longer than the command's
// transfer is processed normally, in both directions, as Identify's SGLS
// bit 18 (LLDTS) promises. The case that matters is the Linux host's
// discard: one Dataset Management range (NR 0) in a 4 KiB in-capsule
// buffer; refusing it with Data SGL Length Invalid failed every blkdiscard,
// fstrim and mkfs on this target. Bytes past what the command needs are
// ignored (the second range in the buffer is not deallocated), and an SGL
// shorter than the command needs is still refused.
func TestDataSGLLongerThanTransfer(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	ctrl := a.identifyController()
	if ctrl.SGLS&nvme.SGLSLongerThanData == 0 {
		t.Errorf("Identify Controller SGLS %#x lacks bit 18 (LLDTS)", ctrl.SGLS)
	}
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
	data := bytes.Repeat([]byte{0x5A}, 16*512)
	w := nvme.WriteCmd(1, 0, 16)
	mustOK(t, q.exec(w, data, false, nil))

	page := make([]byte, 4096)
	(&nvme.DSMRange{NLB: 8, SLBA: 0}).Put(page)
	(&nvme.DSMRange{NLB: 8, SLBA: 8}).Put(page[nvme.DSMRangeSize:]) // past NR: ignored
	mustOK(t, q.exec(nvme.DSMCmd(1, 1, true), page, true, nil))
	got := make([]byte, 16*512)
	mustOK(t, q.exec(nvme.ReadCmd(1, 0, 16), nil, false, got))
	if !bytes.Equal(got[:8*512], make([]byte, 8*512)) {
		t.Errorf("blocks 0-7 read %#x... after the one-range discard, want zeroes", got[:4])
	}
	if !bytes.Equal(got[8*512:], data[8*512:]) {
		t.Errorf("blocks 8-15 read %#x... though only NR+1 = 1 range was sent, want 0x5a", got[8*512:8*512+4])
	}

	// The same buffer through R2T: the target asks for the 16 bytes of
	// the one range only (the client answers whatever the R2T asks).
	(&nvme.DSMRange{NLB: 4, SLBA: 8}).Put(page)
	mustOK(t, q.exec(nvme.DSMCmd(1, 1, true), page, false, nil))
	mustOK(t, q.exec(nvme.ReadCmd(1, 0, 16), nil, false, got))
	if !bytes.Equal(got[8*512:12*512], make([]byte, 4*512)) || !bytes.Equal(got[12*512:], data[12*512:]) {
		t.Errorf("blocks 8-15 after a one-range discard of 8-11 through R2T: %#x..., %#x...", got[8*512:8*512+4], got[12*512:12*512+4])
	}

	// A Read of one block into a two-block SGL moves one block; a Write
	// of one block from a two-block SGL writes the first one.
	two := make([]byte, 1024)
	mustOK(t, q.exec(nvme.ReadCmd(1, 15, 1), nil, false, two))
	if !bytes.Equal(two[:512], data[:512]) || !bytes.Equal(two[512:], make([]byte, 512)) {
		t.Errorf("one-block Read into a two-block SGL got %#x... / %#x...", two[:4], two[512:516])
	}
	src := append(bytes.Repeat([]byte{0xA5}, 512), bytes.Repeat([]byte{0x3C}, 512)...)
	mustOK(t, q.exec(nvme.WriteCmd(1, 20, 1), src, false, nil))
	mustOK(t, q.exec(nvme.WriteCmd(1, 21, 1), src, true, nil))
	mustOK(t, q.exec(nvme.ReadCmd(1, 20, 3), nil, false, got[:3*512]))
	if !bytes.Equal(got[:512], src[:512]) || !bytes.Equal(got[512:1024], src[:512]) || !bytes.Equal(got[1024:1536], make([]byte, 512)) {
		t.Errorf("one-block Writes from two-block SGLs (R2T, in-capsule) wrote %#x / %#x / %#x", got[:4], got[512:516], got[1024:1028])
	}

	// Shorter than the command needs stays Data SGL Length Invalid.
	wantStatus(t, q.exec(nvme.DSMCmd(1, 2, true), page[:nvme.DSMRangeSize], true, nil), nvme.StatusSGLInvalidDataLength)
	wantStatus(t, q.exec(nvme.ReadCmd(1, 0, 2), nil, false, got[:512]), nvme.StatusSGLInvalidDataLength)
}
