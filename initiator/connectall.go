package initiator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/nvmftest/nvmftest/nvme"
)

// Bounds of ConnectAll.
const (
	// maxReferralDepth bounds how deep ConnectAll follows referrals
	// (a discovery service referring to itself, or a loop of them, ends).
	maxReferralDepth = 4
	// maxDiscoveryRestarts bounds how often one entry's Connect answered
	// Connect Restart Discovery restarts discovery.
	maxDiscoveryRestarts = 3
)

// ErrSecureChannelRequired is the error of a discovery log entry whose
// TREQ requires a fabric secure channel (TLS), which this host does not
// have: it does not connect to it in the clear.
var ErrSecureChannelRequired = errors.New("the entry requires a secure channel (TREQ.TSC 01b), which this host does not support")

// ConnectAll does what nvme connect-all does: it reads the Discovery log
// of the discovery controller at addr, follows its referrals to other
// discovery services, and connects to every NVM subsystem entry whose
// transport is TCP. Where the specifications tell the host what to do, it
// does it: an entry requiring a secure channel is not connected in the
// clear (NVMe Base 2.1 Figure 294: TSC "Indicates whether connections
// shall be made over a fabric secure channel"), and a Connect answered
// Connect Restart Discovery restarts discovery (NVMe Base 2.2 Figure
// 105: "The host should restart the discovery process"). It returns the
// controllers it connected and, joined, the error of each entry it could
// not connect.
func ConnectAll(ctx context.Context, addr string, opts Options) ([]*Controller, error) {
	dev, err := parseDeviations(opts.Deviations)
	if err != nil {
		return nil, err
	}
	a := &connectAll{opts: opts, dev: dev, seenDisc: map[string]bool{}, seenNVM: map[string]bool{}}
	a.discover(ctx, addr, 0)
	return a.ctrls, errors.Join(a.errs...)
}

type connectAll struct {
	opts     Options
	dev      *deviations
	seenDisc map[string]bool
	seenNVM  map[string]bool
	ctrls    []*Controller
	errs     []error
}

func (a *connectAll) discover(ctx context.Context, addr string, depth int) {
	if a.seenDisc[addr] || depth > maxReferralDepth {
		return
	}
	a.seenDisc[addr] = true
	log, err := Discover(ctx, addr, a.opts)
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("discovery at %s: %w", addr, err))
		return
	}
	for _, e := range log.Entries {
		if e.TRTYPE != nvme.TRTypeTCP {
			continue
		}
		to := net.JoinHostPort(strings.TrimSpace(e.TRADDR), strings.TrimSpace(e.TRSVCID))
		switch e.SUBTYPE {
		case nvme.SubtypeReferral:
			if a.dev == nil || !a.dev.referralIgnored {
				a.discover(ctx, to, depth+1)
			}
		case nvme.SubtypeNVM:
			a.connect(ctx, addr, to, e)
		}
	}
}

// connect connects one NVM subsystem entry that the discovery service at
// disc listed.
func (a *connectAll) connect(ctx context.Context, disc, to string, e nvme.DiscoveryLogEntry) {
	key := to + " " + e.SUBNQN
	if a.seenNVM[key] {
		return
	}
	a.seenNVM[key] = true
	if e.TREQ&nvme.TREQSecureMask == nvme.TREQRequired && (a.dev == nil || !a.dev.treqTSCIgnored) {
		a.errs = append(a.errs, fmt.Errorf("%s at %s: %w", e.SUBNQN, to, ErrSecureChannelRequired))
		return
	}
	for restarts := 0; ; restarts++ {
		c, err := Connect(ctx, to, e.SUBNQN, a.opts)
		if err == nil {
			a.ctrls = append(a.ctrls, c)
			return
		}
		var st nvme.Status
		restart := errors.As(err, &st) && st.Code() == nvme.StatusConnectRestartDiscovery
		if !restart || restarts >= maxDiscoveryRestarts || (a.dev != nil && a.dev.restartDiscoveryIgnored) {
			a.errs = append(a.errs, fmt.Errorf("%s at %s: %w", e.SUBNQN, to, err))
			return
		}
		// The subsystem is not available there now: read the log
		// again and connect to what it lists for this subsystem.
		log, derr := Discover(ctx, disc, a.opts)
		if derr != nil {
			a.errs = append(a.errs, fmt.Errorf("%s at %s: %w (restarting discovery at %s: %v)", e.SUBNQN, to, err, disc, derr))
			return
		}
		found := false
		for _, n := range log.Entries {
			if n.TRTYPE == nvme.TRTypeTCP && n.SUBTYPE == nvme.SubtypeNVM && n.SUBNQN == e.SUBNQN {
				to, e, found = net.JoinHostPort(strings.TrimSpace(n.TRADDR), strings.TrimSpace(n.TRSVCID)), n, true
				break
			}
		}
		if !found {
			a.errs = append(a.errs, fmt.Errorf("%s: gone from the discovery log after Connect Restart Discovery", e.SUBNQN))
			return
		}
	}
}
