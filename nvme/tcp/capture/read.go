package capture

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket/pcapgo"
)

// Summary is what a trace holds so far: its frames and packet comments.
type Summary struct {
	Frames   int
	Comments []string // in frame order
}

// Summarize reads the pcapng trace at path. A trace still being written
// may end in a partial block: what precedes it is returned without error,
// so a test can poll a live trace.
func Summarize(path string) (Summary, error) {
	var s Summary
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return s, fmt.Errorf("capture: %s: %w", path, err)
	}
	for {
		_, _, opts, err := r.ReadPacketDataWithOptions()
		switch {
		case err == nil:
			s.Frames++
			s.Comments = append(s.Comments, opts.Comments...)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return s, nil
		default:
			return s, fmt.Errorf("capture: %s: frame %d: %w", path, s.Frames+1, err)
		}
	}
}
