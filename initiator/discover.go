package initiator

import (
	"context"
	"errors"
	"fmt"

	"github.com/nvmftest/nvmftest/nvme"
)

// discoveryRetries bounds how often Discover re-reads a log whose
// generation counter changed under it (libnvme uses the same bound).
const discoveryRetries = 10

// Discover connects to the discovery controller at addr, reads the whole
// Discovery log page and disconnects. As libnvme does, it reads the header
// first, then the NUMREC entries, then the header again, and starts over
// if GENCTR changed in between.
func Discover(ctx context.Context, addr string, opts Options) (*nvme.DiscoveryLog, error) {
	c, err := Connect(ctx, addr, nvme.DiscoveryNQN, opts)
	if err != nil {
		return nil, err
	}
	log, err := c.DiscoveryLog(ctx)
	if cerr := c.Close(); err == nil && cerr != nil {
		c.opts.Logger.Warn("discovery controller shutdown", "err", cerr)
	}
	return log, err
}

// DiscoveryLog reads the Discovery log page from a discovery controller.
func (c *Controller) DiscoveryLog(ctx context.Context) (*nvme.DiscoveryLog, error) {
	hdr := make([]byte, nvme.DiscoveryLogHeaderSize)
	for range discoveryRetries {
		if err := c.getLog(ctx, nvme.LogDiscovery, 0, 0, 0, hdr, true); err != nil {
			return nil, fmt.Errorf("get discovery log header: %w", err)
		}
		genctr, numrec, _, err := nvme.DecodeDiscoveryLogHeader(hdr)
		if err != nil {
			return nil, err
		}
		if numrec > 1<<16 {
			return nil, fmt.Errorf("discovery log claims %d records", numrec)
		}
		buf := make([]byte, nvme.DiscoveryLogHeaderSize+int(numrec)*nvme.DiscoveryLogEntrySize)
		copy(buf, hdr)
		if numrec > 0 {
			if err := c.getLog(ctx, nvme.LogDiscovery, 0, 0, nvme.DiscoveryLogHeaderSize, buf[nvme.DiscoveryLogHeaderSize:], true); err != nil {
				return nil, fmt.Errorf("get discovery log entries: %w", err)
			}
		}
		// Re-read the header (clearing RAE) to check nothing changed.
		if err := c.getLog(ctx, nvme.LogDiscovery, 0, 0, 0, hdr, false); err != nil {
			return nil, fmt.Errorf("get discovery log header: %w", err)
		}
		g2, n2, _, _ := nvme.DecodeDiscoveryLogHeader(hdr)
		if g2 != genctr || n2 != numrec {
			c.opts.Logger.Debug("discovery log changed while reading; retrying", "genctr", genctr, "now", g2)
			continue
		}
		return nvme.DecodeDiscoveryLog(buf)
	}
	return nil, errors.New("discovery log kept changing while being read")
}
