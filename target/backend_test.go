package target

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// TestFileBackendBlockAtomic: with AWUN 0 one logical block is atomic
// with respect to other commands, so a read racing a write of the same
// blocks sees each 512-byte block whole, old or new, never half of each
// (review #16: the page cache gives no such guarantee between pread and
// pwrite).
func TestFileBackendBlockAtomic(t *testing.T) {
	b, err := OpenFileBackend(filepath.Join(t.TempDir(), "f"), 1<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const size = 128 << 10
	old, neu := bytes.Repeat([]byte{0xAA}, size), bytes.Repeat([]byte{0x55}, size)
	if _, err := b.WriteAt(old, 0); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			p := old
			if i&1 == 1 {
				p = neu
			}
			if _, err := b.WriteAt(p, 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer wg.Wait()
	defer stop.Store(true)
	buf := make([]byte, size)
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 200000 && time.Now().Before(deadline); i++ {
		if _, err := b.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		for blk := 0; blk < size; blk += 512 {
			x := buf[blk : blk+512]
			if !bytes.Equal(x, old[:512]) && !bytes.Equal(x, neu[:512]) {
				t.Fatalf("read %d: block %d is torn (first byte %#x, last byte %#x)", i, blk/512, x[0], x[511])
			}
		}
	}
}

// BenchmarkFileBackend measures 4 KiB random I/O on the file backend from
// several goroutines (the queue workers), page cache only: the cost of its
// block atomicity (stripe locks) shows here, not disk latency.
func BenchmarkFileBackend(b *testing.B) {
	const size = 64 << 20
	fb, err := OpenFileBackend(filepath.Join(b.TempDir(), "f"), size, 512)
	if err != nil {
		b.Fatal(err)
	}
	defer fb.Close()
	// Fill the file so reads hit written pages.
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		if _, err := fb.WriteAt(chunk, off); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []string{"read", "write", "mixed"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(4096)
			b.SetParallelism(2) // 2 goroutines per P, as queue workers
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 1))
				buf := make([]byte, 4096)
				for i := 0; pb.Next(); i++ {
					off := int64(r.IntN(size/4096)) * 4096
					write := mode == "write" || mode == "mixed" && i&1 == 1
					var err error
					if write {
						_, err = fb.WriteAt(buf, off)
					} else {
						_, err = fb.ReadAt(buf, off)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// TestMemDeallocateHugeRange: deallocating a range far larger than what
// is allocated costs what is allocated, not the range's length (review
// #18: 256 ranges of a 1 TiB namespace took 13 s of a receive loop). The
// range here is 1 PiB: 2^34 chunks, hours of walking for the old code.
func TestMemDeallocateHugeRange(t *testing.T) {
	const size = 1 << 50
	b := NewMemBackend(size)
	block := bytes.Repeat([]byte{0x77}, 512)
	offs := []int64{0, memChunk + 512, 7 << 40, size - 512}
	for _, off := range offs {
		if _, err := b.WriteAt(block, off); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- b.Deallocate(512, size-1024) }() // all but the first and last block
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deallocating a 1 PiB range did not finish in 10 s")
	}
	got := make([]byte, 512)
	for _, c := range []struct {
		off  int64
		want byte
	}{{0, 0x77}, {memChunk + 512, 0}, {7 << 40, 0}, {size - 512, 0x77}} {
		if _, err := b.ReadAt(got, c.off); err != nil {
			t.Fatal(err)
		}
		if got[0] != c.want || got[511] != c.want {
			t.Fatalf("offset %#x reads %#x, want %#x", c.off, got[0], c.want)
		}
	}
	if a := b.Allocated(); a != 2*memChunk {
		t.Fatalf("%d bytes still allocated, want the two chunks holding the kept blocks", a)
	}
}

// TestMemDeallocateRanges checks deallocation against a model: whole
// chunks freed, partial ones zeroed, everything outside the range kept,
// for ranges walked chunk by chunk and ranges larger than the allocation.
func TestMemDeallocateRanges(t *testing.T) {
	const size = 64 * memChunk
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		b := NewMemBackend(size)
		model := make([]byte, size)
		for range r.IntN(20) + 1 {
			off := int64(r.IntN(size/512)) * 512
			n := min(int64(r.IntN(3*memChunk/512)+1)*512, size-off)
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(i + j%251 + 1)
			}
			b.WriteAt(p, off)
			copy(model[off:], p)
		}
		off := int64(r.IntN(size/512)) * 512
		n := int64(r.IntN(int(size-off)/512)+1) * 512
		if err := b.Deallocate(off, n); err != nil {
			t.Fatal(err)
		}
		clear(model[off : off+n])
		got := make([]byte, size)
		b.ReadAt(got, 0)
		if !bytes.Equal(got, model) {
			t.Fatalf("trial %d: deallocate [%#x,+%#x) differs from the model", i, off, n)
		}
		if first, last := (off+memChunk-1)/memChunk, (off+n)/memChunk; last > first {
			b.mu.RLock()
			for ci := first; ci < last; ci++ {
				if b.chunks[ci] != nil {
					t.Fatalf("trial %d: chunk %d inside [%#x,+%#x) still allocated", i, ci, off, n)
				}
			}
			b.mu.RUnlock()
		}
	}
}

// BenchmarkMemDeallocate1TiB deallocates a whole 1 TiB namespace with a
// few chunks allocated: one DSM range of the review's stall.
func BenchmarkMemDeallocate1TiB(b *testing.B) {
	const size = 1 << 40
	m := NewMemBackend(size)
	block := make([]byte, 512)
	for b.Loop() {
		b.StopTimer()
		for i := range int64(16) {
			m.WriteAt(block, i*(size/16))
		}
		b.StartTimer()
		m.Deallocate(0, size)
	}
}

// fileConfig serves one file namespace (NSID 1, 1 MiB, 512-byte blocks).
func fileConfig(t testing.TB) Config {
	cfg := testConfig()
	cfg.Subsystems = cfg.Subsystems[:1]
	cfg.Subsystems[0].Namespaces = []NamespaceConfig{
		{NSID: 1, Backend: BackendFile, Path: filepath.Join(t.TempDir(), "ns1"), Size: "1MiB", BlockSize: 512},
	}
	return cfg
}

// failingFile is a file whose first failSyncs fsyncs fail, as after a disk
// error, and whose later fsyncs succeed although the dirty pages are gone
// (Linux reports a writeback error to fsync once).
type failingFile struct {
	*os.File
	mu        sync.Mutex
	failSyncs int
	syncs     int
}

func (f *failingFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	if f.failSyncs > 0 {
		f.failSyncs--
		return errors.New("fsync: input/output error")
	}
	return f.File.Sync()
}

// TestFlushErrorSticky: after one failed fsync, every later Flush, FUA
// write and write of that namespace fails: a retried Flush never reports
// lost data as durable. Reads still work.
func TestFlushErrorSticky(t *testing.T) {
	tg, err := New(fileConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	fb := tg.subsys[0].table().get(1).b.(*FileBackend)
	ff := &failingFile{File: fb.f.(*os.File), failSyncs: 1}
	fb.f = ff
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)

	data := bytes.Repeat([]byte{0x5A}, 512)
	w := nvme.WriteCmd(1, 0, 1)
	nvme.SetInCapsule(&w, 512)
	mustOK(t, q.exec(w, data, true, nil))
	wantStatus(t, q.exec(nvme.FlushCmd(1), nil, false, nil), nvme.StatusWriteFault)
	// The retry: the file's fsync now succeeds, the data it lost does not
	// come back, so the answer must stay Write Fault.
	wantStatus(t, q.exec(nvme.FlushCmd(1), nil, false, nil), nvme.StatusWriteFault)
	wantStatus(t, q.exec(nvme.FlushCmd(0xFFFFFFFF), nil, false, nil), nvme.StatusWriteFault)
	fw := w
	nvme.SetFUA(&fw)
	wantStatus(t, q.exec(fw, data, true, nil), nvme.StatusWriteFault)
	wantStatus(t, q.exec(w, data, true, nil), nvme.StatusWriteFault)
	wantStatus(t, q.exec(nvme.WriteZeroesCmd(1, 0, 1, false), nil, false, nil), nvme.StatusWriteFault)
	r := nvme.ReadCmd(1, 0, 1)
	nvme.SetDataLength(&r, 512)
	got := make([]byte, 512)
	mustOK(t, q.exec(r, nil, false, got))
	if !bytes.Equal(got, data) {
		t.Fatal("read after the failure returned other data")
	}
}
