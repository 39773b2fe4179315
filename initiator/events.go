package initiator

import (
	"context"
	"fmt"

	"github.com/nvmftest/nvmftest/nvme"
)

// changedNSListSize is the Changed Namespace List log page's size.
const changedNSListSize = 4096

// nsidAll names every namespace (a controller-wide log page, as Linux
// reads the Changed Namespace List).
const nsidAll = 0xFFFFFFFF

// HandleEvents makes the host react to the controller's asynchronous
// events as a host operating system does (Linux's nvme core, after
// nvme_handle_aen_notice): it keeps an Asynchronous Event Request
// outstanding (AsyncEvents) and, for each notice, reads the log page the
// event names with Retain Asynchronous Event cleared, which clears the
// event so the controller reports the next one (NVMe Base 2.1 Figure
// 151), and acts on it:
//
//   - Attached Namespace Attribute Changed: the Changed Namespace List,
//     then a rescan (the Active Namespace ID list and the Identify
//     Namespace data of each active namespace);
//   - Asymmetric Namespace Access Change: the ANA log;
//   - Discovery Log Page Change: the Discovery log.
//
// on, if not nil, is called with each event and the error of handling
// it, on the handling goroutine. HandleEvents returns at once; handling
// ends with the admin queue. Use it or AsyncEvents, not both (the
// events arrive on one channel); Multipath uses AsyncEvents itself.
func (c *Controller) HandleEvents(on func(ev uint32, err error)) {
	if c.opts.dev != nil && c.opts.dev.aerNone {
		return
	}
	events := c.AsyncEvents()
	go func() {
		for ev := range events {
			err := c.handleEvent(ev)
			if err != nil {
				c.opts.Logger.Warn("asynchronous event", "dw0", fmt.Sprintf("%#x", ev), "err", err)
			}
			if on != nil {
				on(ev, err)
			}
		}
	}()
}

func (c *Controller) handleEvent(ev uint32) error {
	if ev&7 != nvme.AENTypeNotice {
		return nil
	}
	ctx, cancel := commandContext(context.Background(), c.opts.Timeout)
	defer cancel()
	d := c.opts.dev
	switch uint8(ev >> 8) {
	case nvme.AENNoticeNSChanged:
		if d != nil && d.aenNSIgnored {
			return nil
		}
		buf := make([]byte, changedNSListSize)
		if err := c.GetLogPage(ctx, nvme.LogChangedNSList, nsidAll, 0, 0, buf); err != nil {
			return fmt.Errorf("changed namespace list: %w", err)
		}
		nsids, err := c.ActiveNamespaces(ctx)
		if err != nil {
			return fmt.Errorf("rescan: %w", err)
		}
		for _, n := range nsids {
			if _, err := c.IdentifyNamespace(ctx, n); err != nil {
				return fmt.Errorf("rescan namespace %d: %w", n, err)
			}
		}
	case nvme.AENNoticeANAChange:
		if d != nil && d.aenANAIgnored {
			return nil
		}
		if _, _, err := readANALog(ctx, c, c.id, 0, 4<<20); err != nil {
			return fmt.Errorf("ANA log: %w", err)
		}
	case nvme.AENNoticeDiscoveryChange:
		if c.discovery && (d == nil || !d.aenDiscoveryIgnored) {
			if _, err := c.DiscoveryLog(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}
