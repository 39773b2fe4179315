package capture

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// FlushInterval bounds how long a recorded packet may wait in memory
// before it reaches the file, so a trace of a run that hangs or is killed
// still shows what led up to it.
const FlushInterval = time.Second

// maxComment keeps a comment within a pcapng option's 16-bit length.
const maxComment = 60000

// pcapFile is one pcapng file that packets of one or more connections are
// appended to. Every method is safe for concurrent use; once writing fails
// the file stops recording (the failure is logged once) and connections
// carry on untouched.
type pcapFile struct {
	path string

	mu     sync.Mutex
	f      *os.File
	bw     *bufio.Writer
	ng     *pcapgo.NgWriter
	timer  *time.Timer // pending periodic flush; nil when nothing waits
	err    error
	closed bool
}

func createPcap(path, comment string) (*pcapFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	// NgWriter keeps a bufio.Writer it is given as is when large enough,
	// so this one buffer is the only copy between packet and file.
	bw := bufio.NewWriterSize(f, 256<<10)
	intf := pcapgo.DefaultNgInterface
	intf.Name = "nvmftest"
	intf.Description = "synthesized from NVMe/TCP socket reads and writes"
	intf.LinkType = layers.LinkTypeEthernet
	opts := pcapgo.DefaultNgWriterOptions
	opts.SectionInfo.Application = "nvmftest"
	opts.SectionInfo.Comment = truncate(comment)
	ng, err := pcapgo.NewNgWriterInterface(bw, intf, opts)
	if err == nil {
		err = ng.Flush()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pcapFile{path: path, f: f, bw: bw, ng: ng}, nil
}

func truncate(s string) string {
	if len(s) > maxComment {
		return s[:maxComment]
	}
	return s
}

// write appends one frame; comments become opt_comment options of its
// Enhanced Packet Block.
func (p *pcapFile) write(ts time.Time, frame []byte, comments []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.err != nil {
		return
	}
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}
	err := p.ng.WritePacketWithOptions(ci, frame, pcapgo.NgPacketOptions{Comments: comments})
	if err != nil {
		p.fail(err)
		return
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(FlushInterval, p.flush)
	}
}

// fail stops recording into p. Called with p.mu held.
func (p *pcapFile) fail(err error) {
	p.err = err
	slog.Warn("packet capture stopped", "file", p.path, "err", err)
}

func (p *pcapFile) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.closed || p.err != nil {
		return
	}
	if err := p.ng.Flush(); err != nil {
		p.fail(err)
	}
}

// close flushes what is buffered and closes the file.
func (p *pcapFile) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	err := p.err
	if err == nil {
		err = p.ng.Flush()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("capture %s: %w", p.path, err)
	}
	return nil
}
