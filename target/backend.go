package target

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
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

// memChunk is the allocation unit of MemBackend.
const memChunk = 64 << 10

// MemBackend keeps data in memory, allocated in 64 KiB chunks on first
// write, so an unwritten namespace costs nothing.
type MemBackend struct {
	size   int64
	mu     sync.RWMutex // the chunk map
	chunks map[int64]*[memChunk]byte
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
	b.mu.RUnlock()
	return n, nil
}

func (b *MemBackend) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		o := off + int64(n)
		ci, co := o/memChunk, int(o%memChunk)
		m := min(len(p)-n, memChunk-co)
		b.mu.RLock()
		c := b.chunks[ci]
		b.mu.RUnlock()
		if c == nil {
			b.mu.Lock()
			if c = b.chunks[ci]; c == nil {
				c = new([memChunk]byte)
				b.chunks[ci] = c
			}
			b.mu.Unlock()
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

// Deallocate frees whole chunks and zeroes partial ones.
func (b *MemBackend) Deallocate(off, n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for n > 0 {
		ci, co := off/memChunk, off%memChunk
		m := min(n, memChunk-co)
		if c := b.chunks[ci]; c != nil {
			if m == memChunk {
				delete(b.chunks, ci)
			} else {
				s := b.stripe(ci)
				s.Lock()
				clear(c[co : co+m])
				s.Unlock()
			}
		}
		off += m
		n -= m
	}
	return nil
}

func (b *MemBackend) Size() int64 { return b.size }

// Allocated returns the bytes of memory in use.
func (b *MemBackend) Allocated() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return int64(len(b.chunks)) * memChunk
}

func (b *MemBackend) Close() error {
	b.mu.Lock()
	clear(b.chunks)
	b.mu.Unlock()
	return nil
}

// FileBackend stores data in a file with positioned reads and writes.
// Flush is fsync; a FUA write is a write followed by fsync. Its I/O runs on
// worker goroutines.
type FileBackend struct {
	f    *os.File
	size int64
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
	return &FileBackend{f: f, size: size}, nil
}

func (b *FileBackend) ReadAt(p []byte, off int64) (int, error) {
	n, err := b.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		clear(p[n:])
		return len(p), nil
	}
	return n, err
}

func (b *FileBackend) WriteAt(p []byte, off int64) (int, error) { return b.f.WriteAt(p, off) }

// WriteAtFUA writes p and waits for it to reach stable storage.
func (b *FileBackend) WriteAtFUA(p []byte, off int64) (int, error) {
	n, err := b.f.WriteAt(p, off)
	if err == nil {
		err = b.f.Sync()
	}
	return n, err
}

func (b *FileBackend) Flush() error { return b.f.Sync() }

var zeroBlock [64 << 10]byte

func (b *FileBackend) WriteZeroes(off, n int64) error {
	for n > 0 {
		m := min(n, int64(len(zeroBlock)))
		if _, err := b.f.WriteAt(zeroBlock[:m], off); err != nil {
			return err
		}
		off += m
		n -= m
	}
	return nil
}

func (b *FileBackend) Deallocate(off, n int64) error { return b.WriteZeroes(off, n) }
func (b *FileBackend) Size() int64                   { return b.size }
func (b *FileBackend) Close() error {
	// A target that shuts down leaves every completed write durable.
	return errors.Join(b.f.Sync(), b.f.Close())
}

// VolatileCache reports the page cache: writes are durable only after
// Flush or FUA.
func (b *FileBackend) VolatileCache() bool { return true }

// Blocking reports that file I/O may block.
func (b *FileBackend) Blocking() bool { return true }
