package initiator

import (
	"context"
	"encoding/binary"
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
//   - An I/O for a namespace no path's ANA log lists (yet: a namespace
//     added before its notice was handled, or one that does not exist)
//     goes down any live path, and the controller answers: success, a
//     path status (the log is re-read) or Invalid Namespace.
//
// Communication loss (NVMe Base 2.1 section 9.6). A command outstanding
// on a path that is lost (timed out, connection failed) may still be in
// the network or running on that controller: a Write retried at once on
// another path, followed by a newer Write there, can be overwritten later
// by the original (the "ghost write"). So, per section 9.6.3.2:
//
//   - Unrestricted Retry commands (Read, Compare, Verify, Flush,
//     Reservation Report) are retried on another path at once.
//   - Delayed Retry commands (Write, Write Zeroes, Dataset Management and
//     every other command) are retried, or their error reported, only
//     once the lost controller can no longer run them: after the host has
//     ended the association (closed every connection), plus 3 × KATT when
//     the controller uses Traffic Based Keep Alive (CTRATT.TBKAS), else 2 ×
//     KATT (section 9.6.2 step 2: the network may delay a command by one
//     KATT, the controller detects the loss one or two KATT after the
//     last command it fetched), plus the controller's Command Quiesce
//     Time (Identify Controller CQT; MultipathOptions.DefaultCQT when it
//     reports 0, step 3b). KATT is the KATO the host asked for rounded up
//     to the controller's KAS granularity, or the larger value Get
//     Features Keep Alive Timer returns. The host ending the association
//     is after the last command it sent, so the wait starts later than the
//     spec requires, never earlier. The wait is a "quiesce wait" path
//     event, counted by Multipath.Held and HeldTime, and bounded by the
//     I/O's context and by MaxQuiesceWait (past which the command is not
//     retried: its error says it may still run).
//   - State-Dependent Retry commands (Reservation Register, Acquire,
//     Release and fused commands) are never retried: their transport
//     error is returned, after the same wait.

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
	// DefaultCQT is the command quiesce time assumed for a controller that
	// reports none (Identify Controller CQT 0): how long after it noticed
	// a communication loss it may still run commands it had received.
	// Default 10 s, the example NVMe Base 2.1 section 9.6.2 gives; Linux
	// 6.12's nvmet reports 0, so with it every write outstanding on a lost
	// path waits this long on top of 2 or 3 KATT.
	DefaultCQT time.Duration
	// MaxQuiesceWait bounds the quiesce wait, which the controller sets
	// (KAS, Get Features Keep Alive Timer and CQT can ask for hours). When
	// a path's quiesce time is longer, a write outstanding on it when it
	// is lost is not retried: after MaxQuiesceWait its error is returned,
	// saying the command may still run there. Default 10 minutes, as
	// CtrlLossTmo.
	MaxQuiesceWait time.Duration
	// MaxANALogSize bounds the ANA log page a path reads (default 4 MiB,
	// about a million namespaces). A controller whose log is longer fails
	// to connect on that path, saying so.
	MaxANALogSize int
	// UnsafeRetryWithoutQuiesce retries a write that was outstanding on a
	// lost path on another path at once, as hosts without Command Quiesce
	// Time handling do. It exists to show the stale ("ghost") writes that
	// causes (failover's ghost-write scenario); never set it otherwise.
	UnsafeRetryWithoutQuiesce bool
}

// MaxReconnectDelay is the longest a lost path waits between reconnect
// attempts with these options (ReconnectDelayMax, or ReconnectDelay when
// that is longer, after defaults): a path whose network returns may stay
// unused that long.
func (o MultipathOptions) MaxReconnectDelay() time.Duration {
	return o.withDefaults().ReconnectDelayMax
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
	if o.DefaultCQT <= 0 {
		o.DefaultCQT = DefaultCQT
	}
	if o.MaxANALogSize <= 0 {
		o.MaxANALogSize = 4 << 20
	}
	if o.MaxQuiesceWait <= 0 {
		o.MaxQuiesceWait = 10 * time.Minute
	}
	return o
}

// DefaultCQT is MultipathOptions.DefaultCQT's default.
const DefaultCQT = 10 * time.Second

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
	Time time.Time
	Path int    // index in the address list
	Addr string // its address
	// Event is "live", "lost", "reconnect failed", "deleted", "ana <group>
	// <state>", "failfast expired", "quiesce wait <duration>: <how>" (the
	// lost controller's association has ended; writes it had outstanding
	// wait this long) or "quiesced" (they may now be retried).
	Event string
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
	anaSize  int              // bytes of the last ANA log read: the next read's first guess
	lostAt   time.Time
	failfast bool // FastIOFailTmo expired since the loss
	// quiesce is how long after the association with ctrl ended it may
	// still run commands (2 or 3 KATT + CQT), and quiesceHow says why.
	quiesce    time.Duration
	quiesceHow string

	ios        atomic.Int64  // I/Os completed on this path
	queueRR    atomic.Uint64 // round robin over the path's I/O queues
	retries    atomic.Int64  // I/Os that failed on this path and were retried
	anaRefresh atomic.Bool   // a background ANA log read is under way
	anaLearnt  atomic.Int64  // when learnANA last started one, Unix ns
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

// QuiesceTime is how long, once the association with the path's current
// (or last) controller has ended after a loss, a write that was
// outstanding on it waits before it is retried elsewhere: MaxQuiesceWait
// at most (0 before the first connect or with UnsafeRetryWithoutQuiesce).
func (p *Path) QuiesceTime() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return min(p.quiesce, p.m.opts.MaxQuiesceWait)
}

// Multipath is one subsystem reached through several paths.
type Multipath struct {
	subnqn string
	opts   MultipathOptions
	paths  []*Path

	// mu guards the fields below. A goroutine holding a Path's mu may take
	// it (lost registers a fence so), never the reverse.
	mu      sync.Mutex
	change  chan struct{} // closed and replaced on every path change
	nsGroup map[uint32]uint32
	closed  bool
	fences  map[*Controller]*fence // lost controllers not yet quiesced

	rr        atomic.Uint64
	retried   atomic.Int64
	failed    atomic.Int64
	held      atomic.Int64
	heldNanos atomic.Int64

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
	if opts.KATO < 0 {
		// Nothing would bound how long a lost controller may still run a
		// write: it could never be retried safely (NVMe Base 2.1 9.6.2).
		return nil, errors.New("initiator: multipath needs keep-alive: KATO must not be negative (0 means the default)")
	}
	m := &Multipath{subnqn: subnqn, opts: opts.withDefaults(), change: make(chan struct{}), nsGroup: map[uint32]uint32{},
		fences: map[*Controller]*fence{}}
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

// Held is the number of times an I/O outstanding on a lost path waited
// for that path's controller to quiesce before it was retried elsewhere
// (or its error reported).
func (m *Multipath) Held() int64 { return m.held.Load() }

// HeldTime is the total time I/Os waited so.
func (m *Multipath) HeldTime() time.Duration { return time.Duration(m.heldNanos.Load()) }

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
	wait, how, err := m.quiesceTime(ctx, c)
	if err != nil {
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
	p.quiesce, p.quiesceHow = wait, how
	p.mu.Unlock()
	m.emit(p, "live", nil)
	m.changed()
	m.goBG(func() { m.watch(p, c) })
	return nil
}

// goBG runs f as a background goroutine Close waits for, and reports
// whether it did: not once the Multipath is closed.
func (m *Multipath) goBG(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
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
	p.mu.Lock()
	guess := p.anaSize
	p.mu.Unlock()
	cctx, cancel := commandContext(ctx, c.opts.Timeout)
	defer cancel()
	l, size, err := readANALog(cctx, c, id, guess, m.opts.MaxANALogSize)
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
	p.ana, p.anaSize = ana, size
	p.mu.Unlock()
	for g, s := range ana {
		if old[g] != s {
			m.emit(p, fmt.Sprintf("ana %d %s", g, nvme.ANAStateString(s)), nil)
		}
	}
	m.changed()
	return nil
}

// anaReadFirst caps the first read of an ANA log whose Identify counts
// allow a huge one: most logs are a few KiB, a longer one is read again
// at its size.
const anaReadFirst = 64 << 10

// readANALog reads the whole ANA log of c: a first read sized from
// Identify (NANAGRPID groups and MNAN namespaces at most, or guess, the
// size that fitted last time), then, if the log was longer than that,
// again at the size the part read shows, up to limit bytes. GetLogPage
// splits each read at the controller's maximum transfer size (MDTS 0, as
// nvmet reports, means no limit: one read). It returns the log and the
// buffer size that held it.
func readANALog(ctx context.Context, c *Controller, id *nvme.IdentifyController, guess, limit int) (*nvme.ANALog, int, error) {
	nn := uint64(id.MNAN)
	if nn == 0 {
		nn = uint64(id.NN)
	}
	est := uint64(nvme.ANALogHeaderSize) + uint64(max(id.NANAGRPID, 1))*nvme.ANAGroupDescriptorSize + 4*max(nn, 1)
	size := roundUp4(min(max(int(min(est, anaReadFirst)), guess), limit))
	for {
		buf := make([]byte, size)
		if err := c.GetLogPage(ctx, nvme.LogANA, 0, 0, 0, buf); err != nil {
			return nil, 0, err
		}
		l, err := nvme.DecodeANALog(buf)
		if err == nil {
			return l, size, nil
		}
		need := anaLogNeeds(buf)
		if !errors.Is(err, nvme.ErrANALog) || need <= uint64(size) {
			return nil, 0, err
		}
		if size >= limit {
			return nil, 0, fmt.Errorf("the log is at least %d bytes, more than MaxANALogSize %d", need, limit)
		}
		size = roundUp4(int(min(max(need, 2*uint64(size)), uint64(limit))))
	}
}

// anaLogNeeds is the length an ANA log at least has, judged from b, its
// first len(b) bytes: the header's group count and the NSID counts of the
// descriptors b holds.
func anaLogNeeds(b []byte) uint64 {
	if len(b) < nvme.ANALogHeaderSize {
		return nvme.ANALogHeaderSize
	}
	ngrps := uint64(binary.LittleEndian.Uint16(b[8:]))
	off := uint64(nvme.ANALogHeaderSize)
	for i := range ngrps {
		if off+nvme.ANAGroupDescriptorSize > uint64(len(b)) {
			return off + (ngrps-i)*nvme.ANAGroupDescriptorSize
		}
		off += nvme.ANAGroupDescriptorSize + 4*uint64(binary.LittleEndian.Uint32(b[off+4:]))
	}
	return off
}

func roundUp4(n int) int { return (n + 3) &^ 3 }

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

// ctrattTBKAS is Identify Controller CTRATT bit 6, Traffic Based Keep
// Alive Support: any command, not only Keep Alive, restarts the timer.
const ctrattTBKAS = 1 << 6

// quiesceTime is how long after the association with c has ended c may
// still run a command the host had sent (NVMe Base 2.1 section 9.6.2):
// 3 KATT with traffic based keep alive, else 2, plus CQT. KATT is the
// KATO the host asked for rounded up to the controller's KAS granularity,
// or the larger value Get Features Keep Alive Timer reports (SPDK rounds
// up to 10 s); a controller that refuses that Get Features is taken at
// the rounded value.
func (m *Multipath) quiesceTime(ctx context.Context, c *Controller) (time.Duration, string, error) {
	if m.opts.UnsafeRetryWithoutQuiesce {
		return 0, "UnsafeRetryWithoutQuiesce", nil
	}
	id := c.IdentifyData()
	katt := c.opts.KATO.Truncate(time.Millisecond) // Connect sends whole milliseconds
	if id != nil && id.KAS > 0 {
		gran := time.Duration(id.KAS) * 100 * time.Millisecond
		katt = (katt + gran - 1) / gran * gran
	}
	cctx, cancel := commandContext(ctx, c.opts.Timeout)
	dw0, err := c.GetFeatures(cctx, nvme.FeatKeepAliveTimer, 0, nvme.SelCurrent, 0, nil)
	cancel()
	var st nvme.Status
	switch {
	case err == nil:
		katt = max(katt, time.Duration(dw0)*time.Millisecond)
	case !errors.As(err, &st):
		return 0, "", fmt.Errorf("get features keep alive timer: %w", err)
	}
	n := 2
	if id != nil && id.CTRATT&ctrattTBKAS != 0 {
		n = 3
	}
	cqt, src := m.opts.DefaultCQT, "DefaultCQT"
	if id != nil && id.CQT != 0 {
		cqt, src = time.Duration(id.CQT)*time.Millisecond, "CQT"
	}
	return time.Duration(n)*katt + cqt, fmt.Sprintf("%d x KATT %v + %s %v", n, katt, src, cqt), nil
}

// fence is a lost controller until it can no longer run the commands the
// host had sent it: done is closed once its quiesce time has passed since
// the host ended the association.
type fence struct {
	wait  time.Duration
	how   string
	cut   bool // the quiesce time exceeds MaxQuiesceWait: wait is that, and no retry follows
	path  *Path
	mu    sync.Mutex
	until time.Time // zero until the association has ended
	done  chan struct{}
}

func (f *fence) deadline() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.until
}

// lost marks a path lost (once per controller), fences the controller and
// starts the path's reconnect.
func (m *Multipath) lost(p *Path, c *Controller, why error) {
	p.mu.Lock()
	if p.ctrl != c || p.state != PathLive {
		p.mu.Unlock()
		return
	}
	p.state, p.lostAt, p.failfast = PathConnecting, time.Now(), false
	var f *fence
	if p.quiesce > 0 {
		// Registered before the path stops being live, so an I/O that
		// failed on c finds it (a Path's mu may be held taking m.mu).
		f = &fence{wait: p.quiesce, how: p.quiesceHow, path: p, done: make(chan struct{})}
		if f.wait > m.opts.MaxQuiesceWait {
			f.wait, f.cut = m.opts.MaxQuiesceWait, true
			f.how = fmt.Sprintf("MaxQuiesceWait; the controller's quiesce time is %v (%s), so writes held are not retried", p.quiesce, p.quiesceHow)
		}
		m.mu.Lock()
		m.fences[c] = f
		m.mu.Unlock()
	}
	p.mu.Unlock()
	m.emit(p, "lost", why)
	m.changed()
	// Its queues are dead or dying: the shutdown is best effort, but
	// Close waits for it, and the quiesce time counts from its end.
	if !m.goBG(func() { m.quiesce(c, f) }) {
		c.Close()
	}
	m.goBG(func() { m.reconnect(p) })
}

// quiesce ends the association with the lost controller c and, after its
// quiesce time, releases the I/O its fence holds.
func (m *Multipath) quiesce(c *Controller, f *fence) {
	c.Close()
	if f == nil {
		return
	}
	f.mu.Lock()
	f.until = time.Now().Add(f.wait)
	f.mu.Unlock()
	m.emit(f.path, fmt.Sprintf("quiesce wait %v: %s", f.wait, f.how), nil)
	t := time.NewTimer(f.wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.ctx.Done():
		return // Do's waits end with the Multipath
	}
	m.mu.Lock()
	delete(m.fences, c)
	m.mu.Unlock()
	close(f.done)
	m.emit(f.path, "quiesced", nil)
}

// awaitQuiesce waits until the lost controller c can no longer run what
// it was sent, bounded by ctx. Without a fence it has already quiesced.
// A fence cut at MaxQuiesceWait gives failure, the command's error, once
// it ends: the command must not be retried.
func (m *Multipath) awaitQuiesce(ctx context.Context, c *Controller, failure error) error {
	m.mu.Lock()
	f := m.fences[c]
	m.mu.Unlock()
	if f == nil {
		return nil
	}
	m.held.Add(1)
	start := time.Now()
	defer func() { m.heldNanos.Add(int64(time.Since(start))) }()
	select {
	case <-f.done:
		if f.cut {
			return mayStillRun(fmt.Errorf("%w (not retried: its controller's quiesce time exceeds MaxQuiesceWait %v)", failure, m.opts.MaxQuiesceWait), f.path, time.Time{})
		}
		return nil
	case <-m.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return mayStillRun(ctx.Err(), f.path, f.deadline())
	}
}

// mayStillRun says, with err, that a command given up on may still be run
// by the lost controller of path p until it quiesces.
func mayStillRun(err error, p *Path, until time.Time) error {
	when := "its quiesce time after the association ends"
	if !until.IsZero() {
		when = until.Format("15:04:05.000")
	}
	return fmt.Errorf("%w: the command may still be run by the controller of path %d (%s) until %s (NVMe Base 2.1 9.6.2)",
		err, p.idx+1, p.addr, when)
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

// Pick tiers: a path whose ANA log puts nsid's group in an optimized
// state, in a non-optimized one, or a live path whose log does not list
// nsid (yet): the controller answers for it.
const (
	tierOptimized = iota
	tierNonOptimized
	tierUnknown
)

// pick chooses a live path for nsid by ANA and one of its I/O queues, and
// says whether nsid's ANA group was unknown on that path.
func (m *Multipath) pick(nsid uint32) (*Path, *Controller, *Queue, bool) {
	m.mu.Lock()
	grp, known := m.nsGroup[nsid]
	m.mu.Unlock()
	n := uint64(len(m.paths))
	start := m.rr.Add(1)
	for tier := tierOptimized; tier <= tierUnknown; tier++ {
		for i := range n {
			p := m.paths[(start+i)%n]
			p.mu.Lock()
			st, ctrl := p.state, p.ctrl
			s, ok := p.ana[grp]
			if len(p.ana) == 1 && p.ana[0] != 0 {
				s, ok = p.ana[0], true // no ANA reporting: every namespace optimized
			}
			p.mu.Unlock()
			if st != PathLive || len(ctrl.IOQueues()) == 0 {
				continue
			}
			var t int
			switch {
			case !known || !ok:
				t = tierUnknown
			case s == nvme.ANAOptimized:
				t = tierOptimized
			case s == nvme.ANANonOptimized:
				t = tierNonOptimized
			default:
				continue // inaccessible, persistent loss, change
			}
			if t == tier {
				// The queue has a counter of its own: taken from start, with
				// as many paths as queues each path would always get the
				// same queue.
				qs := ctrl.IOQueues()
				return p, ctrl, qs[p.queueRR.Add(1)%uint64(len(qs))], t == tierUnknown
			}
		}
	}
	return nil, nil, nil, false
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

// learnANA re-reads p's ANA log in the background, one read at a time
// and at most one a second: an I/O to a namespace its log did not list has
// just succeeded there.
func (m *Multipath) learnANA(p *Path, c *Controller) {
	now := time.Now().UnixNano()
	if now-p.anaLearnt.Load() < int64(time.Second) || !p.anaRefresh.CompareAndSwap(false, true) {
		return
	}
	p.anaLearnt.Store(now)
	if !m.goBG(func() {
		defer p.anaRefresh.Store(false)
		if err := m.readANA(m.ctx, p, c); err != nil && IsTransportError(err) {
			m.lost(p, c, err)
		}
	}) {
		p.anaRefresh.Store(false)
	}
}

// retryClass is how a command outstanding on a lost path may be retried
// on another (NVMe Base 2.1 section 9.6.3.2).
type retryClass uint8

const (
	// retryUnrestricted: idempotent, changes no user data or state (Read):
	// retried at once.
	retryUnrestricted retryClass = iota
	// retryDelayed: idempotent but changes user data (Write): retried once
	// the lost controller has quiesced.
	retryDelayed
	// retryStateDependent: not idempotent, or able to change what other
	// hosts see (reservations, fused operations): not retried; its error
	// is reported once the lost controller has quiesced.
	retryStateDependent
)

// NVM command set opcodes the nvme package does not name.
const (
	opVerify          = 0x0C
	opResvRegister    = 0x0D
	opResvReport      = 0x0E
	opResvAcquire     = 0x11
	opResvRelease     = 0x15
	opZoneAppend      = 0x7D
	opZoneMgmtReceive = 0x7A
)

// classify sorts a command into its retry class. Anything not known to
// leave user data alone is a Delayed Retry command: waiting is always safe.
func classify(sqe *nvme.SQE) retryClass {
	if sqe.Fuse() != 0 {
		return retryStateDependent
	}
	switch sqe.Opcode {
	case nvme.CmdRead, nvme.CmdCompare, opVerify, opResvReport, opZoneMgmtReceive:
		return retryUnrestricted
	case nvme.CmdFlush:
		// Makes completed writes durable; running it twice changes nothing.
		return retryUnrestricted
	case opResvRegister, opResvAcquire, opResvRelease:
		return retryStateDependent
	case opZoneAppend:
		// Not idempotent: each append lands at a new LBA.
		return retryStateDependent
	}
	return retryDelayed // Write, Write Zeroes, DSM, Write Uncorrectable, Copy, Zone Send, ...
}

// Do runs one I/O command on namespace sqe.NSID through the best path,
// retrying path and transport failures on another path, waiting (bounded
// by ctx) while no path is usable but one may come back. A command that
// changes data and was outstanding on a path that was lost is retried, or
// its error returned, only once that path's controller can no longer run
// it (see the package's communication loss notes); if ctx ends first the
// error says the command may still run there.
func (m *Multipath) Do(ctx context.Context, sqe nvme.SQE, data []byte, dir Dir) (nvme.CQE, error) {
	class := classify(&sqe)
	var lastErr error
	for attempt := 0; ; attempt++ {
		if m.isClosed() {
			m.failed.Add(1)
			return nvme.CQE{}, ErrClosed
		}
		m.mu.Lock()
		change := m.change
		m.mu.Unlock()
		p, c, q, guess := m.pick(sqe.NSID)
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
			if guess {
				m.learnANA(p, c)
			}
			return cqe, nil
		}
		lost := IsTransportError(err) || errors.Is(err, ErrClosed)
		if ctx.Err() != nil {
			m.failed.Add(1)
			if class != retryUnrestricted && (lost || errors.Is(err, ctx.Err())) {
				// Given up on while outstanding: the queue was failed, the
				// controller may not have seen the end yet.
				return cqe, mayStillRun(ctx.Err(), p, time.Time{})
			}
			return cqe, ctx.Err()
		}
		lastErr = err
		var st nvme.Status
		switch {
		case lost:
			m.lost(p, c, err)
			if class == retryUnrestricted {
				break
			}
			if werr := m.awaitQuiesce(ctx, c, err); werr != nil {
				m.failed.Add(1)
				return cqe, werr
			}
			if class == retryStateDependent {
				m.failed.Add(1)
				return cqe, fmt.Errorf("%w (not retried on another path: opcode %#02x is not idempotent or affects other hosts, NVMe Base 2.1 9.6.3.2.3)", err, sqe.Opcode)
			}
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
		switch {
		case c != nil && st == PathLive:
			errs = append(errs, c.Close())
		case c != nil:
			// A controller lost as Close began may still be closing on the
			// goroutine that lost it: wait for that (Close runs once).
			_ = c.Close()
		}
	}
	m.changed()
	return errors.Join(errs...)
}
