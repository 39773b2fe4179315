package capture

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// sink is a net.Conn that takes every write, so a benchmark measures the
// recording alone.
type sink struct{}

func (sink) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (sink) Write(b []byte) (int, error)      { return len(b), nil }
func (sink) Close() error                     { return nil }
func (sink) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 51234} }
func (sink) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4420} }
func (sink) SetDeadline(time.Time) error      { return nil }
func (sink) SetReadDeadline(time.Time) error  { return nil }
func (sink) SetWriteDeadline(time.Time) error { return nil }

// The cost of recording: what a captured run pays per byte written.
func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			f, err := CreateFile(filepath.Join(b.TempDir(), "b.pcapng"), "")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			nc := f.Record(sink{}, true, "")
			msg := pdu(7, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				nc.Write(msg)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return itoa(n>>20) + "MiB"
	}
	return itoa(n>>10) + "KiB"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
