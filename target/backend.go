package target

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Backend stores a namespace's blocks. Offsets and lengths are in bytes and
// always whole blocks inside Size.
type Backend interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Flush makes completed writes durable.
	Flush() error
	// WriteZeroes makes n bytes at off read as zeroes.
	WriteZeroes(off, n int64) error
	// Deallocate releases n bytes at off; they read as zeroes afterwards.
	Deallocate(off, n int64) error
	Size() int64
	Close() error
}

// Optional Backend behaviour.
type (
	// volatileCacher reports a volatile write cache (Identify VWC).
	volatileCacher interface{ VolatileCache() bool }
	// fuaWriter writes durably (Force Unit Access).
	fuaWriter interface {
		WriteAtFUA(p []byte, off int64) (int, error)
	}
	// blocker says its I/O may block, so it runs off the receive loop.
	blocker interface{ Blocking() bool }
	// resizer changes the size (Target.ResizeNamespace): blocks below
	// the new size keep their data, blocks added read as zeroes. The
	// caller holds off writes while it runs.
	resizer interface{ Resize(size int64) error }
)

// NewBackend opens the backend a namespace configuration asks for.
func NewBackend(cfg NamespaceConfig) (Backend, error) {
	size := int64(cfg.Size.mustBytes())
	switch cfg.Backend {
	case BackendNull:
		return &NullBackend{size: size}, nil
	case BackendMem:
		return NewMemBackend(size), nil
	case BackendFile:
		return OpenFileBackend(cfg.Path, size, int64(cfg.BlockSize))
	}
	return nil, fmt.Errorf("target: unknown backend %q", cfg.Backend)
}

// NullBackend reads zeroes and drops writes.
type NullBackend struct{ size int64 }

// NewNullBackend returns a null backend of size bytes.
func NewNullBackend(size int64) *NullBackend { return &NullBackend{size: size} }

func (b *NullBackend) ReadAt(p []byte, _ int64) (int, error) { clear(p); return len(p), nil }
func (b *NullBackend) WriteAt(p []byte, _ int64) (int, error) {
	return len(p), nil
}
func (b *NullBackend) Flush() error                 { return nil }
func (b *NullBackend) WriteZeroes(_, _ int64) error { return nil }
func (b *NullBackend) Deallocate(_, _ int64) error  { return nil }
func (b *NullBackend) Size() int64                  { return b.size }
func (b *NullBackend) Close() error                 { return nil }
func (b *NullBackend) Resize(size int64) error      { b.size = size; return nil }

// errBackendClosed is what a closed memory backend answers (a namespace
// removed while a command was in flight).
var errBackendClosed = fmt.Errorf("target: backend closed: %w", os.ErrClosed)

// memChunk is the allocation unit of MemBackend.
const memChunk = 64 << 10

// memDeallocBatch bounds the chunks one hold of MemBackend.mu drops, so a
// deallocation of a huge range never stalls the namespace's other
// commands for long.
const memDeallocBatch = 4096

// MemBackend keeps data in memory, allocated in 64 KiB chunks on first
// write, so an unwritten namespace costs nothing.
type MemBackend struct {
	size   int64
	mu     sync.RWMutex // the chunk map and closed
	chunks map[int64]*[memChunk]byte
	closed bool
	// stripes order copies into and out of a chunk: concurrent commands
	// on the same blocks (which NVMe leaves unordered) must still not race
	// in Go's memory model.
	stripes [64]sync.RWMutex
}

func (b *MemBackend) stripe(ci int64) *sync.RWMutex {
	return &b.stripes[uint64(ci)%uint64(len(b.stripes))]
}

// NewMemBackend returns an empty memory backend of size bytes.
func NewMemBackend(size int64) *MemBackend {
	return &MemBackend{size: size, chunks: make(map[int64]*[memChunk]byte)}
}

func (b *MemBackend) ReadAt(p []byte, off int64) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, errBackendClosed
	}
	n := 0
	for n < len(p) {
		o := off + int64(n)
		ci, co := o/memChunk, int(o%memChunk)
		m := min(len(p)-n, memChunk-co)
		if c := b.chunks[ci]; c != nil {
			s := b.stripe(ci)
			s.RLock()
			copy(p[n:n+m], c[co:co+m])
			s.RUnlock()
		} else {
			clear(p[n : n+m])
		}
		n += m
	}
	return n, nil
}

func (b *MemBackend) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		o := off + int64(n)
		ci, co := o/memChunk, int(o%memChunk)
		m := min(len(p)-n, memChunk-co)
		b.mu.RLock()
		c, closed := b.chunks[ci], b.closed
		b.mu.RUnlock()
		if closed {
			return n, errBackendClosed
		}
		if c == nil {
			b.mu.Lock()
			if c = b.chunks[ci]; c == nil && !b.closed {
				c = new([memChunk]byte)
				b.chunks[ci] = c
			}
			b.mu.Unlock()
			if c == nil {
				return n, errBackendClosed
			}
		}
		s := b.stripe(ci)
		s.Lock()
		copy(c[co:co+m], p[n:n+m])
		s.Unlock()
		n += m
	}
	return n, nil
}

func (b *MemBackend) Flush() error { return nil }

func (b *MemBackend) WriteZeroes(off, n int64) error { return b.Deallocate(off, n) }

// Deallocate zeroes the partial chunks at either end of the range and
// drops the whole chunks between them.
func (b *MemBackend) Deallocate(off, n int64) error {
	lo, hi := off, off+n
	if lo%memChunk != 0 {
		e := min(hi, (lo/memChunk+1)*memChunk)
		if err := b.zero(lo, e-lo); err != nil {
			return err
		}
		lo = e
	}
	if lo < hi && hi%memChunk != 0 {
		s := max(lo, hi/memChunk*memChunk)
		if err := b.zero(s, hi-s); err != nil {
			return err
		}
		hi = s
	}
	if lo >= hi {
		return nil
	}
	return b.drop(lo/memChunk, hi/memChunk)
}

// zero clears n bytes at off, all inside one chunk.
func (b *MemBackend) zero(off, n int64) error {
	ci, co := off/memChunk, off%memChunk
	b.mu.RLock()
	c, closed := b.chunks[ci], b.closed
	b.mu.RUnlock()
	if closed {
		return errBackendClosed
	}
	if c != nil {
		s := b.stripe(ci)
		s.Lock()
		clear(c[co : co+n])
		s.Unlock()
	}
	return nil
}

// drop frees chunks [from, to). It visits whichever is smaller, the range
// or the allocated chunks, and drops them in batches, releasing b.mu in
// between: a DSM range of a whole 1 TiB namespace costs what is
// allocated, not 16 million map lookups under the lock.
func (b *MemBackend) drop(from, to int64) error {
	b.mu.RLock()
	closed, allocated := b.closed, int64(len(b.chunks))
	var victims []int64
	if !closed && to-from > allocated {
		for ci := range b.chunks {
			if ci >= from && ci < to {
				victims = append(victims, ci)
			}
		}
	}
	b.mu.RUnlock()
	if closed {
		return errBackendClosed
	}
	if to-from > allocated {
		for len(victims) > 0 {
			batch := victims[:min(len(victims), memDeallocBatch)]
			victims = victims[len(batch):]
			b.mu.Lock()
			for _, ci := range batch {
				delete(b.chunks, ci)
			}
			b.mu.Unlock()
		}
		return nil
	}
	for ci := from; ci < to; {
		end := min(to, ci+memDeallocBatch)
		b.mu.Lock()
		for ; ci < end; ci++ {
			delete(b.chunks, ci)
		}
		b.mu.Unlock()
	}
	return nil
}

func (b *MemBackend) Size() int64 { return b.size }

// Resize drops the data past a smaller size, so that growing again later
// reads zeroes there.
func (b *MemBackend) Resize(size int64) error {
	if size < b.size {
		if err := b.Deallocate(size, b.size-size); err != nil {
			return err
		}
	}
	b.size = size
	return nil
}

// Allocated returns the bytes of memory in use.
func (b *MemBackend) Allocated() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return int64(len(b.chunks)) * memChunk
}

// Close frees the data; later I/O fails with an error wrapping
// os.ErrClosed.
func (b *MemBackend) Close() error {
	b.mu.Lock()
	clear(b.chunks)
	b.closed = true
	b.mu.Unlock()
	return nil
}

// File backend block atomicity: reads and writes lock the stripes their
// range covers, readers shared and writers exclusive, so a read never sees
// a block half written (AWUN 0: one logical block is atomic with respect to
// other commands; the page cache gives no such guarantee between pread and
// pwrite). A stripe unit is 64 KiB of the file; unit u maps to stripe
// u mod 64. Locks are taken in stripe order, so overlapping commands
// cannot deadlock, and never across an fsync.
const (
	fileStripeShift = 16
	fileStripes     = 64
)

// fileStripeMask returns the stripes [off, off+n) covers, bit i for stripe i.
func fileStripeMask(off, n int64) uint64 {
	if n <= 0 {
		return 0
	}
	first, last := off>>fileStripeShift, (off+n-1)>>fileStripeShift
	if last-first >= fileStripes-1 {
		return ^uint64(0)
	}
	var m uint64
	for u := first; u <= last; u++ {
		m |= 1 << (uint64(u) % fileStripes)
	}
	return m
}

// FileBackend stores data in a file with positioned reads and writes.
// Flush is fsync; a FUA write is a write followed by fsync. Its I/O runs on
// worker goroutines.
//
// The first write or fsync error is permanent: every later write, FUA
// write, Write Zeroes and Flush fails with it (reads still work). After a
// failed fsync Linux may drop the dirty pages and report success to the
// next fsync, so a retried Flush must not be believed.
type FileBackend struct {
	f       fileIO
	size    int64
	stripes [fileStripes]paddedRWMutex
	syncs   fileSyncer
	failed  atomic.Pointer[fileFailure]
}

// paddedRWMutex fills a cache line, so workers on different stripes do
// not contend for one.
type paddedRWMutex struct {
	sync.RWMutex
	_ [64 - unsafe.Sizeof(sync.RWMutex{})%64]byte
}

// fileIO is what FileBackend uses of *os.File (tests inject faults here).
type fileIO interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

// fileFailure is the error a FileBackend latched.
type fileFailure struct{ err error }

func (f *fileFailure) Error() string {
	return "target: file backend failed earlier, nothing written since is durable: " + f.err.Error()
}
func (f *fileFailure) Unwrap() error { return f.err }

// fileSyncer runs one fsync at a time for a file; callers that arrive
// during an fsync share the next one (group commit). One at a time matters
// for correctness: Linux reports a writeback error to only one fsync of an
// open file, so of two concurrent fsyncs one could report success for data
// the other was told was lost, before the failure is latched.
type fileSyncer struct {
	mu            sync.Mutex
	cond          sync.Cond
	running       bool
	started, done uint64 // fsyncs started and finished
	err           error  // of the last fsync that finished
}

// OpenFileBackend opens (creating if needed) the file at path. A size of 0
// uses the file's size, rounded down to whole blocks; otherwise the file is
// extended to size.
func OpenFileBackend(path string, size, blockSize int64) (*FileBackend, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if size == 0 {
		size = st.Size() / blockSize * blockSize
		if size == 0 {
			f.Close()
			return nil, fmt.Errorf("target: %s is empty (give the namespace a size)", path)
		}
	} else if st.Size() < size {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, err
		}
	}
	b := &FileBackend{f: f, size: size}
	b.syncs.cond.L = &b.syncs.mu
	return b, nil
}

func (b *FileBackend) lock(m uint64) {
	for ; m != 0; m &= m - 1 {
		b.stripes[bits.TrailingZeros64(m)].Lock()
	}
}

func (b *FileBackend) unlock(m uint64) {
	for ; m != 0; m &= m - 1 {
		b.stripes[bits.TrailingZeros64(m)].Unlock()
	}
}

func (b *FileBackend) rlock(m uint64) {
	for ; m != 0; m &= m - 1 {
		b.stripes[bits.TrailingZeros64(m)].RLock()
	}
}

func (b *FileBackend) runlock(m uint64) {
	for ; m != 0; m &= m - 1 {
		b.stripes[bits.TrailingZeros64(m)].RUnlock()
	}
}

func (b *FileBackend) ReadAt(p []byte, off int64) (int, error) {
	m := fileStripeMask(off, int64(len(p)))
	b.rlock(m)
	n, err := b.f.ReadAt(p, off)
	b.runlock(m)
	if errors.Is(err, io.EOF) {
		clear(p[n:])
		return len(p), nil
	}
	return n, err
}

func (b *FileBackend) WriteAt(p []byte, off int64) (int, error) {
	if f := b.failed.Load(); f != nil {
		return 0, f
	}
	m := fileStripeMask(off, int64(len(p)))
	b.lock(m)
	n, err := b.f.WriteAt(p, off)
	b.unlock(m)
	if err != nil {
		b.fail(err)
	}
	return n, err
}

// WriteAtFUA writes p and waits for it to reach stable storage.
func (b *FileBackend) WriteAtFUA(p []byte, off int64) (int, error) {
	n, err := b.WriteAt(p, off)
	if err != nil {
		return n, err
	}
	return n, b.sync()
}

func (b *FileBackend) Flush() error { return b.sync() }

// sync waits for an fsync that starts after the call, and fails if the
// file failed before or then.
func (b *FileBackend) sync() error {
	s := &b.syncs
	s.mu.Lock()
	defer s.mu.Unlock()
	need := s.started + 1
	for s.done < need {
		if s.running {
			s.cond.Wait()
			continue
		}
		if f := b.failed.Load(); f != nil {
			return f // no fsync can make up for what was lost
		}
		s.running = true
		s.started++
		seq := s.started
		s.mu.Unlock()
		err := b.f.Sync()
		if err != nil {
			b.fail(err) // before done moves, so every waiter sees it
		}
		s.mu.Lock()
		s.running = false
		s.done, s.err = seq, err
		s.cond.Broadcast()
	}
	if f := b.failed.Load(); f != nil {
		return f
	}
	return s.err
}

// fail latches err unless it only says the file was closed (the namespace
// went away; nothing was lost).
func (b *FileBackend) fail(err error) {
	if errors.Is(err, os.ErrClosed) {
		return
	}
	b.failed.CompareAndSwap(nil, &fileFailure{err: err})
}

var zeroBlock [1 << fileStripeShift]byte

// WriteZeroes writes zeroes one stripe unit at a time, so a large range
// never holds every stripe.
func (b *FileBackend) WriteZeroes(off, n int64) error {
	if f := b.failed.Load(); f != nil {
		return f
	}
	for n > 0 {
		m := min(n, int64(len(zeroBlock))-off%int64(len(zeroBlock)))
		mask := fileStripeMask(off, m)
		b.lock(mask)
		_, err := b.f.WriteAt(zeroBlock[:m], off)
		b.unlock(mask)
		if err != nil {
			b.fail(err)
			return err
		}
		off += m
		n -= m
	}
	return nil
}

// errNoPunchHole says the file system (or platform) cannot deallocate
// part of a file: Deallocate writes zeroes instead.
var errNoPunchHole = errors.New("target: punching holes is not supported here")

// Deallocate punches a hole where the file system can, so the blocks read
// as zeroes and use no space; elsewhere it writes zeroes.
func (b *FileBackend) Deallocate(off, n int64) error {
	if f := b.failed.Load(); f != nil {
		return f
	}
	mask := fileStripeMask(off, n)
	b.lock(mask)
	err := punchHole(b.f, off, n)
	b.unlock(mask)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoPunchHole):
		return b.WriteZeroes(off, n)
	}
	b.fail(err)
	return err
}

func (b *FileBackend) Size() int64 { return b.size }

// Resize truncates or extends the file: a grown file reads zeroes in its
// new part, and a shrunk one loses what was past its new end.
func (b *FileBackend) Resize(size int64) error {
	t, ok := b.f.(interface{ Truncate(int64) error })
	if !ok {
		return errors.New("file backend cannot be truncated")
	}
	if err := t.Truncate(size); err != nil {
		return err
	}
	b.size = size
	return nil
}

func (b *FileBackend) Close() error {
	// A target that shuts down leaves every completed write durable.
	return errors.Join(b.sync(), b.f.Close())
}

// VolatileCache reports the page cache: writes are durable only after
// Flush or FUA.
func (b *FileBackend) VolatileCache() bool { return true }

// Blocking reports that file I/O may block.
func (b *FileBackend) Blocking() bool { return true }
