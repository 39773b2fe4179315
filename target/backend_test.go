package target

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

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
