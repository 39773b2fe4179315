package target

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
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
	if s, err := capture.Summarize(first); err != nil || len(s.Comments) == 0 || s.Comments[0] != "nvmftest target: port 1" {
		t.Errorf("first packet comments %q, %v", s.Comments, err)
	}
}

// countFrames counts the frames of a trace written so far (3 handshake,
// ICReq, ICResp, 3 for the close).
func countFrames(t *testing.T, path string) int {
	s, _ := capture.Summarize(path)
	return s.Frames
}
