package target

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileDeallocatePunchesHole: deallocating part of a file namespace
// gives the space back (it used to write zeroes over the range, so one DSM
// of 256 whole-namespace ranges wrote 256 namespaces of zeroes) and the
// range reads as zeroes, the rest as written.
func TestFileDeallocatePunchesHole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ns.img")
	const size, off, n = 8 << 20, 1 << 20, 4 << 20
	b, err := OpenFileBackend(path, size, 512)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data := bytes.Repeat([]byte{0xAA}, size)
	if _, err := b.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	before := allocated(t, path)
	if err := b.Deallocate(off, n); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	if _, err := b.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := append(append(bytes.Repeat([]byte{0xAA}, off), make([]byte, n)...), bytes.Repeat([]byte{0xAA}, size-off-n)...)
	if !bytes.Equal(got, want) {
		t.Fatal("after Deallocate the file does not read as zeroes inside the range and as written outside it")
	}
	after := allocated(t, path)
	if before-after < n {
		t.Fatalf("Deallocate of %d bytes gave back %d bytes of disk (allocated %d before, %d after): the range was written, not deallocated",
			n, before-after, before, after)
	}
}

// allocated is the disk space a file uses.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}
