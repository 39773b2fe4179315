package initiator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// Native NVMe multipath, as the Linux host does it (drivers/nvme/host/
// multipath.c, fabrics.c):
//
//   - One Controller per path (address) to the same subsystem.
//   - Path selection follows ANA: an optimized path first (round robin
//     among them), a non-optimized one when no optimized path is left,
//     never an inaccessible, persistent-loss or changing one.
//   - An I/O that fails with a path status (SCT 3, e.g. ANA inaccessible)
//     or a transport error is retried on another path; a path status makes
//     the host re-read that path's ANA log, a transport error starts the
//     path's reconnect. Other errors go to the application.
//   - A lost path reconnects every ReconnectDelay (doubling up to
//     ReconnectDelayMax; equal by default, as Linux's fixed
//     reconnect_delay) until CtrlLossTmo after the loss, when it is deleted.
//   - While no path is usable, I/O waits if some path may come back: a
//     live path (e.g. ANA inaccessible or change) or a reconnecting one whose
//     FastIOFailTmo has not expired. Otherwise it fails with ErrNoPath.
//     FastIOFailTmo < 0 (default, Linux's "off") waits until CtrlLossTmo.

// ErrNoPath is the error of an I/O for which no path is left.
var ErrNoPath = errors.New("initiator: no usable path")

// MultipathOptions configure ConnectMultipath.
type MultipathOptions struct {
	// Options configure each path's controller. Timeout (per command) and
	// KATO decide how soon a stalled path is noticed.
	Options
	// CtrlLossTmo: how long a lost path keeps reconnecting before it is
	// deleted (default 600 s, as nvme-cli's ctrl_loss_tmo); negative:
	// forever.
	CtrlLossTmo time.Duration
	// FastIOFailTmo: how long after a path is lost I/O may wait for it
	// (negative: off, I/O waits until CtrlLossTmo). The zero value means
	// off too; for Linux's fast_io_fail_tmo=0 (fail at once) use 1ns.
	FastIOFailTmo time.Duration
	// ReconnectDelay is the first delay between reconnect attempts
	// (default 10 s, Linux's reconnect_delay); ReconnectDelayMax caps the
	// doubling (default ReconnectDelay: no backoff, as Linux).
	ReconnectDelay, ReconnectDelayMax time.Duration
	// MaxRetries bounds how often one I/O is retried (default 64).
	MaxRetries int
	// OnEvent, if set, is called (on any goroutine) for each path event.
	OnEvent func(PathEvent)
}

func (o MultipathOptions) withDefaults() MultipathOptions {
	if o.CtrlLossTmo == 0 {
		o.CtrlLossTmo = 600 * time.Second
	}
	if o.FastIOFailTmo == 0 {
		o.FastIOFailTmo = -1
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = 10 * time.Second
	}
	if o.ReconnectDelayMax < o.ReconnectDelay {
		o.ReconnectDelayMax = o.ReconnectDelay
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 64
	}
	return o
}

// PathState is the state of one path's controller.
type PathState int

// Path states.
const (
	PathConnecting PathState = iota // lost or not yet connected: reconnecting
	PathLive                        // connected
	PathDeleted                     // gave up (CtrlLossTmo) or closed
)

func (s PathState) String() string {
	switch s {
	case PathLive:
		return "live"
	case PathDeleted:
		return "deleted"
	}
	return "connecting"
}

// PathEvent is a change of a path.
type PathEvent struct {
	Time  time.Time
	Path  int    // index in the address list
	Addr  string // its address
	Event string // "live", "lost", "reconnect failed", "deleted", "ana <group> <state>", "failfast expired"
	Err   error
}

// Path is one path of a Multipath.
type Path struct {
	m    *Multipath
	idx  int
	addr string

	mu       sync.Mutex
	state    PathState
	ctrl     *Controller
	ana      map[uint32]uint8 // ANA group -> state, from the ANA log
	lostAt   time.Time
	failfast bool // FastIOFailTmo expired since the loss

	ios     atomic.Int64 // I/Os completed on this path
	retries atomic.Int64 // I/Os that failed on this path and were retried
}

// Addr is the path's address.
func (p *Path) Addr() string { return p.addr }

// State is the path's state.
func (p *Path) State() PathState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// ANAState is the ANA state of group grp as this path last read it (0
// if unknown).
func (p *Path) ANAState(grp uint32) uint8 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ana[grp]
}

// IOs is the number of I/Os completed on the path.
func (p *Path) IOs() int64 { return p.ios.Load() }

// Multipath is one subsystem reached through several paths.
type Multipath struct {
	subnqn string
	opts   MultipathOptions
	paths  []*Path

	mu      sync.Mutex
	change  chan struct{} // closed and replaced on every path change
	nsGroup map[uint32]uint32
	closed  bool

	rr      atomic.Uint64
	retried atomic.Int64
	failed  atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ConnectMultipath connects to subsystem subnqn through every address. It
// returns once each path connected or failed its first attempt, with an
// error only when no path connected; failed paths keep reconnecting.
func ConnectMultipath(ctx context.Context, addrs []string, subnqn string, opts MultipathOptions) (*Multipath, error) {
	if len(addrs) == 0 {
		return nil, errors.New("initiator: multipath needs at least one address")
	}
	m := &Multipath{subnqn: subnqn, opts: opts.withDefaults(), change: make(chan struct{}), nsGroup: map[uint32]uint32{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for i, a := range addrs {
		m.paths = append(m.paths, &Path{m: m, idx: i, addr: a, ana: map[uint32]uint8{}})
	}
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, p := range m.paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.connectPath(ctx, p)
		}()
	}
	wg.Wait()
	live := 0
	for i, p := range m.paths {
		if errs[i] == nil {
			live++
			continue
		}
		p.mu.Lock()
		p.lostAt = time.Now()
		p.mu.Unlock()
		m.emit(p, "connect failed", errs[i])
		m.goBG(func() { m.reconnect(p) })
	}
	if live == 0 {
		m.Close()
		return nil, fmt.Errorf("initiator: multipath: no path connected: %w", errors.Join(errs...))
	}
	return m, nil
}

// Paths returns the paths in address order.
func (m *Multipath) Paths() []*Path { return m.paths }

// Retried is the number of I/O attempts retried on another path.
func (m *Multipath) Retried() int64 { return m.retried.Load() }

// Failed is the number of I/Os failed to the caller.
func (m *Multipath) Failed() int64 { return m.failed.Load() }

// Controller returns a live path's controller (for Identify and the like),
// or nil.
func (m *Multipath) Controller() *Controller {
	for _, p := range m.paths {
		p.mu.Lock()
		c, st := p.ctrl, p.state
		p.mu.Unlock()
		if st == PathLive {
			return c
		}
	}
	return nil
}

func (m *Multipath) emit(p *Path, ev string, err error) {
	if f := m.opts.OnEvent; f != nil {
		f(PathEvent{Time: time.Now(), Path: p.idx, Addr: p.addr, Event: ev, Err: err})
	}
}

// changed wakes I/O waiting for a path.
func (m *Multipath) changed() {
	m.mu.Lock()
	close(m.change)
	m.change = make(chan struct{})
	m.mu.Unlock()
}

func (m *Multipath) connectPath(ctx context.Context, p *Path) error {
	c, err := Connect(ctx, p.addr, m.subnqn, m.opts.Options)
	if err != nil {
		return err
	}
	if err := m.readANA(ctx, p, c); err != nil {
		c.Close()
		return err
	}
	p.mu.Lock()
	if m.isClosed() {
		p.mu.Unlock()
		c.Close()
		return ErrClosed
	}
	p.ctrl, p.state, p.failfast = c, PathLive, false
	p.mu.Unlock()
	m.emit(p, "live", nil)
	m.changed()
	m.goBG(func() { m.watch(p, c) })
	return nil
}

// goBG runs f as a background goroutine Close waits for, unless closed.
func (m *Multipath) goBG(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

func (m *Multipath) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// readANA reads the path's ANA log into its group states and the
// namespace-to-group map.
func (m *Multipath) readANA(ctx context.Context, p *Path, c *Controller) error {
	id := c.IdentifyData()
	if id == nil || id.CMIC&nvme.CMICANA == 0 {
		p.mu.Lock()
		p.ana = map[uint32]uint8{0: nvme.ANAOptimized}
		p.mu.Unlock()
		return nil
	}
	nn := max(id.MNAN, 1)
	size := nvme.ANALogHeaderSize + int(max(id.NANAGRPID, 1))*nvme.ANAGroupDescriptorSize + 4*int(min(nn, 1<<16))
	size = (size + 3) &^ 3
	buf := make([]byte, min(size, c.MaxTransferSize()))
	if len(buf) < nvme.ANALogHeaderSize {
		buf = make([]byte, 4096)
	}
	cctx, cancel := commandContext(ctx, c.opts.Timeout)
	defer cancel()
	if err := c.GetLogPage(cctx, nvme.LogANA, 0, 0, 0, buf); err != nil {
		return fmt.Errorf("ANA log: %w", err)
	}
	l, err := nvme.DecodeANALog(buf)
	if err != nil {
		return fmt.Errorf("ANA log: %w", err)
	}
	ana := map[uint32]uint8{}
	m.mu.Lock()
	for _, g := range l.Groups {
		ana[g.ANAGRPID] = g.State & 0xF
		for _, n := range g.NSIDs {
			m.nsGroup[n] = g.ANAGRPID
		}
	}
	m.mu.Unlock()
	p.mu.Lock()
	old := p.ana
	p.ana = ana
	p.mu.Unlock()
	for g, s := range ana {
		if old[g] != s {
			m.emit(p, fmt.Sprintf("ana %d %s", g, nvme.ANAStateString(s)), nil)
		}
	}
	m.changed()
	return nil
}

// watch follows a live path: ANA change events re-read the ANA log; the
// death of any of its queues makes it lost.
func (m *Multipath) watch(p *Path, c *Controller) {
	dead := make(chan struct{})
	var once sync.Once
	for _, q := range append([]*Queue{c.Admin()}, c.IOQueues()...) {
		go func() {
			select {
			case <-q.Dead():
				once.Do(func() { close(dead) })
			case <-m.ctx.Done():
			}
		}()
	}
	aen := c.AsyncEvents()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-dead:
			m.lost(p, c, errors.New("connection lost"))
			return
		case ev, ok := <-aen:
			if !ok {
				aen = nil
				continue
			}
			// ANA change, or a namespace added or removed (its group is in
			// the ANA log): re-read the log.
			if info := uint8(ev >> 8); ev&0x7 == nvme.AENTypeNotice && (info == nvme.AENNoticeANAChange || info == nvme.AENNoticeNSChanged) {
				if err := m.readANA(m.ctx, p, c); err != nil && IsTransportError(err) {
					m.lost(p, c, err)
					return
				}
			}
		}
	}
}

// lost marks a path lost (once per controller) and starts its reconnect.
func (m *Multipath) lost(p *Path, c *Controller, why error) {
	p.mu.Lock()
	if p.ctrl != c || p.state != PathLive {
		p.mu.Unlock()
		return
	}
	p.state, p.lostAt, p.failfast = PathConnecting, time.Now(), false
	p.mu.Unlock()
	m.emit(p, "lost", why)
	m.changed()
	go c.Close() // its queues are dead or dying; shutdown is best effort
	m.goBG(func() { m.reconnect(p) })
}

// reconnect retries a lost path with backoff until it connects, its
// CtrlLossTmo expires or the Multipath closes.
func (m *Multipath) reconnect(p *Path) {
	o := &m.opts
	p.mu.Lock()
	lostAt := p.lostAt
	p.mu.Unlock()
	delay := o.ReconnectDelay
	var ff <-chan time.Time
	if o.FastIOFailTmo >= 0 {
		t := time.NewTimer(o.FastIOFailTmo)
		defer t.Stop()
		ff = t.C
	}
	for {
		wait := delay
		if o.CtrlLossTmo >= 0 {
			left := time.Until(lostAt.Add(o.CtrlLossTmo))
			if left <= 0 {
				p.mu.Lock()
				p.state = PathDeleted
				p.mu.Unlock()
				m.emit(p, "deleted", errors.New("ctrl_loss_tmo expired"))
				m.changed()
				return
			}
			wait = min(wait, left)
		}
		t := time.NewTimer(wait)
		for waiting := true; waiting; {
			select {
			case <-m.ctx.Done():
				t.Stop()
				return
			case <-ff:
				ff = nil
				p.mu.Lock()
				p.failfast = true
				p.mu.Unlock()
				m.emit(p, "failfast expired", nil)
				m.changed()
			case <-t.C:
				waiting = false
			}
		}
		if o.CtrlLossTmo >= 0 && time.Since(lostAt) >= o.CtrlLossTmo {
			continue // deleted above
		}
		ctx, cancel := context.WithTimeout(m.ctx, max(o.Timeout, 5*time.Second))
		err := m.connectPath(ctx, p)
		cancel()
		if err == nil {
			return
		}
		m.emit(p, "reconnect failed", err)
		delay = min(delay*2, o.ReconnectDelayMax)
	}
}

// pick chooses a live path for nsid by ANA and one of its I/O queues.
func (m *Multipath) pick(nsid uint32) (*Path, *Controller, *Queue) {
	m.mu.Lock()
	grp := m.nsGroup[nsid]
	m.mu.Unlock()
	n := uint64(len(m.paths))
	start := m.rr.Add(1)
	var best *Path
	var bestC *Controller
	for _, want := range []uint8{nvme.ANAOptimized, nvme.ANANonOptimized} {
		for i := range n {
			p := m.paths[(start+i)%n]
			p.mu.Lock()
			st, ctrl, s := p.state, p.ctrl, p.ana[grp]
			if len(p.ana) == 1 && p.ana[0] != 0 {
				s = p.ana[0] // no ANA reporting: every namespace optimized
			}
			p.mu.Unlock()
			if st == PathLive && s == want && len(ctrl.IOQueues()) > 0 {
				best, bestC = p, ctrl
				break
			}
		}
		if best != nil {
			break
		}
	}
	if best == nil {
		return nil, nil, nil
	}
	qs := bestC.IOQueues()
	return best, bestC, qs[start%uint64(len(qs))]
}

// available reports whether a path may still serve nsid: a live one
// (whose ANA state may change) or a reconnecting one before its fast I/O
// fail timeout. A live path whose group is persistently lost does not count.
func (m *Multipath) available(nsid uint32) bool {
	m.mu.Lock()
	grp := m.nsGroup[nsid]
	m.mu.Unlock()
	for _, p := range m.paths {
		p.mu.Lock()
		st, ff, s := p.state, p.failfast, p.ana[grp]
		p.mu.Unlock()
		switch {
		case st == PathLive && s != nvme.ANAPersistentLoss:
			return true
		case st == PathConnecting && !ff:
			return true
		}
	}
	return false
}

// Do runs one I/O command on namespace sqe.NSID through the best path,
// retrying path and transport failures on another path, waiting (bounded
// by ctx) while no path is usable but one may come back.
func (m *Multipath) Do(ctx context.Context, sqe nvme.SQE, data []byte, dir Dir) (nvme.CQE, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		if m.isClosed() {
			m.failed.Add(1)
			return nvme.CQE{}, ErrClosed
		}
		m.mu.Lock()
		change := m.change
		m.mu.Unlock()
		p, c, q := m.pick(sqe.NSID)
		if p == nil {
			if !m.available(sqe.NSID) {
				m.failed.Add(1)
				if lastErr != nil {
					return nvme.CQE{}, fmt.Errorf("%w (last error: %v)", ErrNoPath, lastErr)
				}
				return nvme.CQE{}, ErrNoPath
			}
			select {
			case <-change:
			case <-time.After(50 * time.Millisecond): // ANA may change without an event
			case <-ctx.Done():
				m.failed.Add(1)
				return nvme.CQE{}, ctx.Err()
			}
			attempt--
			continue
		}
		cqe, err := q.Exec(ctx, sqe, data, dir)
		if err == nil {
			p.ios.Add(1)
			return cqe, nil
		}
		if ctx.Err() != nil {
			m.failed.Add(1)
			return cqe, ctx.Err()
		}
		lastErr = err
		var st nvme.Status
		switch {
		case IsTransportError(err) || errors.Is(err, ErrClosed):
			m.lost(p, c, err)
		case errors.As(err, &st) && st.SCT() == nvme.SCTPath:
			// Re-read the ANA log before the retry (nvme_update_ana).
			actx, cancel := commandContext(ctx, c.opts.Timeout)
			if e := m.readANA(actx, p, c); e != nil && IsTransportError(e) {
				m.lost(p, c, e)
			}
			cancel()
		case errors.As(err, &st) && !st.DNR() && (st.Code() == nvme.StatusTransientTransport || st.Code() == nvme.StatusDataTransferError):
			// A digest error on either side: the transfer, not the command,
			// failed; retry as Linux's error recovery does.
		default:
			m.failed.Add(1)
			return cqe, err
		}
		if attempt >= m.opts.MaxRetries {
			m.failed.Add(1)
			return cqe, err
		}
		p.retries.Add(1)
		m.retried.Add(1)
	}
}

// Read reads nlb blocks at slba of nsid into buf through the best path.
func (m *Multipath) Read(ctx context.Context, nsid uint32, slba uint64, nlb uint32, buf []byte) error {
	_, err := m.Do(ctx, nvme.ReadCmd(nsid, slba, nlb), buf, FromController)
	return err
}

// Write writes buf as nlb blocks at slba of nsid through the best path.
func (m *Multipath) Write(ctx context.Context, nsid uint32, slba uint64, nlb uint32, buf []byte) error {
	_, err := m.Do(ctx, nvme.WriteCmd(nsid, slba, nlb), buf, ToController)
	return err
}

// Close ends every path and stops reconnecting.
func (m *Multipath) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	var errs []error
	for _, p := range m.paths {
		p.mu.Lock()
		c, st := p.ctrl, p.state
		p.state = PathDeleted
		p.mu.Unlock()
		if c != nil && st == PathLive {
			errs = append(errs, c.Close())
		}
	}
	m.changed()
	return errors.Join(errs...)
}
