package target

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Each accepted connection gets its own trace, labelled with its port,
// complete once the connection is closed.
func TestCaptureDir(t *testing.T) {
	cfg := testConfig()
	cfg.Capture = filepath.Join(t.TempDir(), "traces")
	tg := startTarget(t, cfg)
	for range 2 {
		c := dial(t, tg.Addrs()[0], tcp.DgstHeader|tcp.DgstData)
		c.nc.Close()
	}
	// The target sees each close on its reader goroutine; wait for both
	// traces to end with the FIN exchange rather than racing it.
	deadline := time.Now().Add(10 * time.Second)
	var first string
	for {
		ents, _ := os.ReadDir(cfg.Capture)
		done := 0
		for _, e := range ents {
			if n := countFrames(t, filepath.Join(cfg.Capture, e.Name())); n >= 8 {
				done++
			}
		}
		if len(ents) == 2 && done == 2 {
			for i, e := range ents {
				if !strings.HasPrefix(e.Name(), []string{"0001-127.0.0.1_", "0002-127.0.0.1_"}[i]) {
					t.Errorf("trace name %s", e.Name())
				}
			}
			first = filepath.Join(cfg.Capture, ents[0].Name())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("traces %v, %d complete", ents, done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f, err := os.Open(first)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	_, _, opts, err := r.ReadPacketDataWithOptions()
	if err != nil || len(opts.Comments) != 1 || opts.Comments[0] != "nvmftest target: port 1" {
		t.Errorf("first packet comments %q, %v", opts.Comments, err)
	}
}

// countFrames counts the frames of a trace written so far (3 handshake,
// ICReq, ICResp, 3 for the close).
func countFrames(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return 0
	}
	n := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			if err != io.EOF && n == 0 {
				return 0
			}
			return n
		}
		n++
	}
}
