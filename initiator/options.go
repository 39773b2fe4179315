// Package initiator is the NVMe/TCP host of nvmftest: it discovers
// subsystems, connects controllers with an admin queue and I/O queues, and
// submits commands asynchronously with many in flight and no allocation per
// I/O. A raw mode (DialRaw) sends any PDU, legal or not, for conformance
// suites.
//
// The controller bring-up follows the Linux kernel host (drivers/nvme/host
// tcp.c, fabrics.c, core.c): ICReq, Connect on the admin queue with a
// dynamic controller ID, Property Get CAP and VS, CC enable and wait for
// CSTS.RDY, Identify Controller, Set Features Number of Queues, then one TCP
// connection per I/O queue, each with its own ICReq and Connect carrying the
// controller's CNTLID. Keep-alive commands go out every KATO/2. Close shuts
// the controller down with CC.SHN as Linux does; Linux sends no Disconnect
// command and neither does Close.
package initiator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// Defaults, as the Linux host uses them.
const (
	// DefaultKATO is the keep-alive timeout of I/O controllers
	// (NVME_DEFAULT_KATO). Discovery controllers get none.
	DefaultKATO = 5 * time.Second
	// DefaultQueueSize is the I/O queue size (NVMF_DEF_QUEUE_SIZE).
	DefaultQueueSize = 128
	// AdminQueueSize is the admin queue size (NVME_AQ_DEPTH).
	AdminQueueSize = 32
	// DefaultTimeout bounds every command (the kernel's I/O timeout).
	DefaultTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds each TCP connect. Without a bound a
	// host that drops SYNs (down, firewalled, a wrong address) holds a
	// dial for the kernel's SYN retries, over two minutes. 10 s lets the
	// SYN be retransmitted three times (at 1, 3 and 7 s), so a lossy but
	// working network still connects, and matches the 10 s the Linux host
	// gives the other half of connection set-up, the ICResp
	// (nvme_tcp_init_connection).
	DefaultConnectTimeout = 10 * time.Second
	// AdminInlineData is the in-capsule data limit on the admin queue
	// (NVME_TCP_ADMIN_CCSZ).
	AdminInlineData = 8192
)

// Options configure Connect, Discover and DialRaw. The zero value works:
// see each field for its default.
type Options struct {
	// HostNQN identifies the host. Default: DefaultHostNQN().
	HostNQN string
	// HostID is the 128-bit host identifier sent in Connect. Default:
	// /etc/nvme/hostid if present, else derived from HostNQN.
	HostID [16]byte
	// HeaderDigest and DataDigest request CRC32C digests in ICReq.
	HeaderDigest, DataDigest bool
	// KATO is the keep-alive timeout. Zero means DefaultKATO for I/O
	// controllers and none for discovery controllers; negative disables
	// keep-alive. Connect sends it in whole milliseconds, so it is rounded
	// up to one (a KATO under 1 ms would read as 0, keep-alive off, on the
	// target while the host still sent keep-alives) and capped at
	// 2^32-1 ms (about 49 days).
	KATO time.Duration
	// NrIOQueues is the number of I/O queues to ask for (default: the
	// number of CPUs, as Linux). Negative means none.
	NrIOQueues int
	// QueueSize is the number of entries of each I/O queue (default 128);
	// up to QueueSize-1 commands are in flight per queue.
	QueueSize int
	// HPDA is the host PDU data alignment asked in ICReq (0's based dwords).
	HPDA uint8
	// Timeout bounds each command (default 30 s). A command that times out
	// fails its queue and everything in flight on it, as Linux's error
	// recovery does. Negative disables command timeouts. Connection
	// initialization (ICReq/ICResp) is bounded by Timeout too, or by
	// DefaultTimeout when Timeout is negative: NVMe/TCP 1.0 3.1 has the
	// host end a connection whose establishment times out.
	Timeout time.Duration
	// ConnectTimeout bounds each TCP connect the host makes: the admin
	// and every I/O queue, discovery, DialRaw, and a Multipath's
	// reconnects. Zero means DefaultConnectTimeout, or Timeout when that
	// is positive and shorter (no step of connecting waits longer than a
	// command may); negative means no bound but the context's. A connect
	// that gets no answer in time fails with a *ConnectTimeoutError.
	ConnectTimeout time.Duration
	// DHCHAPSecret is the host's DH-HMAC-CHAP secret ("DHHC-1:hh:...:",
	// as nvme connect --dhchap-secret), used on every queue whose Connect
	// response asks for authentication. DHCHAPCtrlSecret, if set, makes
	// the host authenticate the controller too (--dhchap-ctrl-secret).
	DHCHAPSecret, DHCHAPCtrlSecret string
	// DisableSQFlowControl sets CATTR bit 2 in Connect on I/O queues.
	DisableSQFlowControl bool
	// Logger receives debug and warning messages (default: discard).
	Logger *slog.Logger
	// Poll makes each I/O queue's reader poll its socket instead of
	// sleeping until the target answers (fio's --hipri): no wake-up per
	// completion, at the price of a core that spins while I/O is in
	// flight. A queue with nothing to read for PollIdle (default 1ms)
	// sleeps as usual.
	Poll     bool
	PollIdle time.Duration
	// Capture, if set, records every connection (admin, I/O, discovery,
	// raw) as a packet trace; nil records nothing and costs nothing.
	Capture capture.Recorder
	// HostTraddr, if set, is the local IP address every TCP connection
	// is made from (nvme connect -w/--host-traddr): which NIC, and which
	// source address the target sees, on a multi-homed host.
	HostTraddr string
	// HostIface, if set, binds every TCP connection to this network
	// interface (nvme connect -f/--host-iface; SO_BINDTODEVICE, Linux
	// only).
	HostIface string
	// TOS, if positive, is the IP type of service of every TCP
	// connection (nvme connect -T/--tos); 0 leaves the system default.
	TOS int

	// Deviations names host deviations (HostDeviations) the host is to
	// have: departures from the specifications on purpose, for testing
	// host conformance checks. Empty (the default) follows the spec.
	Deviations []string

	// dial, if set, replaces the TCP dialer (tests connect over net.Pipe).
	dial func(ctx context.Context, addr string) (net.Conn, error)
	// dev is Deviations parsed (by Connect); nil for none.
	dev *deviations
}

// ConnectTimeoutError is the error of a TCP connect that got no answer
// within Options.ConnectTimeout: the host at Addr is down, drops SYNs
// (a firewall) or is not reachable on this network.
type ConnectTimeoutError struct {
	Addr  string
	After time.Duration // the connect timeout that expired
}

func (e *ConnectTimeoutError) Error() string {
	return fmt.Sprintf("no answer from %s within %v (connect timeout)", e.Addr, e.After)
}

// Timeout reports true, as net.Error's timeouts do.
func (e *ConnectTimeoutError) Timeout() bool { return true }

// Unwrap makes errors.Is(err, os.ErrDeadlineExceeded) hold, as for a
// net.Dialer's own timeout.
func (e *ConnectTimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// errConnectTimeout is the cause of a dial context ended by the connect
// timeout, telling it from the caller's own deadline.
var errConnectTimeout = errors.New("connect timeout")

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// connectTimeout is ConnectTimeout with its default; 0 means none.
func (o *Options) connectTimeout() time.Duration {
	switch {
	case o.ConnectTimeout < 0:
		return 0
	case o.ConnectTimeout > 0:
		return o.ConnectTimeout
	case o.Timeout > 0 && o.Timeout < DefaultConnectTimeout:
		return o.Timeout
	}
	return DefaultConnectTimeout
}

// dialContext opens the connection to addr, within the connect timeout.
func (o *Options) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	dial := o.dial
	if dial == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			d, err := o.dialer()
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	d := o.connectTimeout()
	deadline := time.Now().Add(d)
	if pd, ok := ctx.Deadline(); d <= 0 || ok && !pd.After(deadline) {
		// No bound, or the caller's deadline comes first: its error.
		return dial(ctx, addr)
	}
	// The connection outlives dctx: a net.Dialer watches its context
	// only while it connects.
	dctx, cancel := context.WithDeadlineCause(ctx, deadline, errConnectTimeout)
	defer cancel()
	nc, err := dial(dctx, addr)
	// A net.Dialer times out on its own at dctx's deadline ("i/o
	// timeout"), maybe a moment before dctx's timer fires. When ctx
	// ended first (Ctrl-C), the caller gets its own error back.
	ours := context.Cause(dctx) == errConnectTimeout || isTimeout(err) && !time.Now().Before(deadline)
	if err != nil && ctx.Err() == nil && ours {
		return nil, &ConnectTimeoutError{Addr: addr, After: d}
	}
	return nc, err
}

// dialer is the net.Dialer of HostTraddr, HostIface and TOS.
func (o *Options) dialer() (*net.Dialer, error) {
	d := &net.Dialer{}
	if o.HostTraddr != "" {
		ip := net.ParseIP(o.HostTraddr)
		if ip == nil {
			return nil, fmt.Errorf("host address %q is not an IP address", o.HostTraddr)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if o.HostIface != "" || o.TOS > 0 {
		iface, tos := o.HostIface, o.TOS
		d.Control = func(network, _ string, rc syscall.RawConn) error {
			return setSockopts(rc, network, iface, tos)
		}
	}
	return d, nil
}

// initTimeout bounds one ICReq/ICResp exchange.
func (o *Options) initTimeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// katoMillis is KATO as Connect carries it (KATO is already whole
// milliseconds within range, see withDefaults).
func katoMillis(kato time.Duration) uint32 {
	return uint32(min(max(kato, 0)/time.Millisecond, math.MaxUint32))
}

// commandContext bounds one host-initiated command by d, the way
// Options.Timeout bounds each command: d <= 0 means "no timeout", so the
// parent is returned as it is (with a cancel function, for symmetry).
// context.WithTimeout with a negative d would give a context that has
// already expired, and a queue whose command is abandoned fails as a whole.
func commandContext(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, d)
}

func (o Options) withDefaults(discovery bool) Options {
	if o.HostNQN == "" {
		o.HostNQN = DefaultHostNQN()
	}
	if o.HostID == ([16]byte{}) {
		o.HostID = defaultHostID(o.HostNQN)
	}
	if o.KATO == 0 && !discovery {
		o.KATO = DefaultKATO
	}
	if o.KATO < 0 {
		o.KATO = 0
	}
	if o.KATO > 0 {
		ms := o.KATO / time.Millisecond
		if o.KATO%time.Millisecond != 0 {
			ms++
		}
		o.KATO = min(ms, math.MaxUint32) * time.Millisecond
	}
	if o.NrIOQueues == 0 {
		o.NrIOQueues = runtime.NumCPU()
	}
	if o.NrIOQueues < 0 || discovery {
		o.NrIOQueues = 0
	}
	if o.QueueSize <= 1 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// DefaultHostNQN returns the host NQN nvme-cli would use: the contents of
// /etc/nvme/hostnqn if present, else a stable
// nqn.2014-08.org.nvmexpress:uuid:<uuid> derived from the machine ID (or
// the host name).
func DefaultHostNQN() string {
	if b, err := os.ReadFile("/etc/nvme/hostnqn"); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
	}
	seed := ""
	for _, f := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(f); err == nil {
			seed = strings.TrimSpace(string(b))
			break
		}
	}
	if seed == "" {
		seed, _ = os.Hostname()
	}
	id := uuidFrom("nvmftest-hostnqn:" + seed)
	return "nqn.2014-08.org.nvmexpress:uuid:" + formatUUID(id)
}

// defaultHostID reads /etc/nvme/hostid when the NQN is the system's, else
// takes the UUID from a uuid NQN, else derives one from the NQN.
func defaultHostID(nqn string) [16]byte {
	if b, err := os.ReadFile("/etc/nvme/hostid"); err == nil {
		if sys, err := os.ReadFile("/etc/nvme/hostnqn"); err == nil && strings.TrimSpace(string(sys)) == nqn {
			if id, ok := parseUUID(strings.TrimSpace(string(b))); ok {
				return id
			}
		}
	}
	if i := strings.LastIndex(nqn, ":uuid:"); i >= 0 {
		if id, ok := parseUUID(nqn[i+6:]); ok {
			return id
		}
	}
	return uuidFrom("nvmftest-hostid:" + nqn)
}

// ParseHostID parses a host identifier written as a UUID.
func ParseHostID(s string) ([16]byte, error) {
	id, ok := parseUUID(s)
	if !ok {
		return id, fmt.Errorf("host ID %q is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s)
	}
	return id, nil
}

func uuidFrom(seed string) [16]byte {
	h := sha256.Sum256([]byte(seed))
	var id [16]byte
	copy(id[:], h[:16])
	id[6] = id[6]&0x0F | 0x50 // version 5 style (name based)
	id[8] = id[8]&0x3F | 0x80 // RFC 4122 variant
	return id
}

func formatUUID(id [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

func parseUUID(s string) ([16]byte, bool) {
	var id [16]byte
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return id, false
	}
	for i := range 16 {
		var v byte
		for _, c := range []byte(s[2*i : 2*i+2]) {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= c - '0'
			case c >= 'a' && c <= 'f':
				v |= c - 'a' + 10
			case c >= 'A' && c <= 'F':
				v |= c - 'A' + 10
			default:
				return id, false
			}
		}
		id[i] = v
	}
	return id, true
}
