package initiator

import (
	"context"
	"net"
	"time"
)

// SetDial replaces o's TCP dialer, for the external tests: a dial that
// hangs stands in for a host that drops SYNs.
func SetDial(o *Options, dial func(ctx context.Context, addr string) (net.Conn, error)) {
	o.dial = dial
}

// EffectiveConnectTimeout is the bound each dial gets (0: none).
func (o Options) EffectiveConnectTimeout() time.Duration { return o.connectTimeout() }
