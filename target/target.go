// Package target is nvmftest's reference NVMe/TCP target: NVM subsystems
// with null, memory or file namespaces, a discovery subsystem, dynamic
// controllers with keep alive, asynchronous events and the admin and NVM
// command sets a Linux host uses.
//
// One goroutine per connection reads PDUs and runs commands; file I/O runs
// on a few worker goroutines per queue so a slow disk does not stall the
// connection. Fatal transport errors end only the connection they happen
// on (a C2HTermReq, then nothing more is processed, and the connection
// closes when the host closes it or after fatal_close_wait, NVMe/TCP 1.0
// 3.5.1); ending an admin queue ends its association, at the error.
package target

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// Option configures a Target.
type Option func(*Target)

// WithLogger sends the target's log to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(t *Target) { t.log = l } }

// WithIOQueueHook calls f with the number of I/O queues connected to the
// target, whole target, each time it changes. It runs on the goroutine of
// the connection that changed it, one call at a time, so it must be quick. The command line
// uses it to keep GOMAXPROCS at one P per busy queue (see
// cmd/nvmftest: target without --cpus).
func WithIOQueueHook(f func(n int)) Option { return func(t *Target) { t.ioQueueHook = f } }

// Target serves NVMe/TCP.
type Target struct {
	cfg Config
	log *slog.Logger

	ioQueueMu   sync.Mutex // orders ioQueues' changes and the hook's calls
	ioQueues    int
	ioQueueHook func(int)

	// derived limits
	icd, maxH2C, c2hSize, mdts uint32
	vs                         uint32
	r2tBuffer, writeBacklog    int
	kas                        time.Duration // KATO granularity reported as Identify KAS
	dataDigestFatal            bool          // data_digest_fatal or the digest-error-fatal quirk
	quirks                     quirkSet

	mu              sync.Mutex
	ports           []*port
	subsys          []*subsystem
	ctrls           map[uint16]*controller
	nextCntlid      uint16
	queues          map[*queue]struct{}
	addrConns       map[string]int      // open connections by remote IP
	adding          map[string]struct{} // subsystem NQNs AddSubsystem is opening
	started         bool
	closed          bool
	genctr          uint64
	discGENCTRShown uint64 // discovery-genctr-lags: the GENCTR the last read showed
	anaChg          uint64 // ANA state changes (ana.go)

	done      chan struct{} // closed by Close: ends accept back-offs
	refusedAt atomic.Int64  // when a refused connection was last logged (unix ns)
	refused   atomic.Int64  // connections refused since then
	// fatalStreak counts fatal transport errors since the last successful
	// Connect (the fatal-streak-refuses quirk only).
	fatalStreak atomic.Int32

	wg sync.WaitGroup

	capture *capture.Dir // nil: no packet traces

	// Counters (stats.go). retired is what queues that have ended
	// counted, under mu.
	started0     time.Time
	accepted     atomic.Uint64 // connections accepted
	associations atomic.Uint64 // controllers created
	retired      IOStats
	statsMu      sync.Mutex
	refusedBy    map[string]uint64 // refused connections and Connects by reason
}

type port struct {
	cfg   ListenerConfig
	ln    net.Listener // under Target.mu; each accept goroutine has its own
	conns int          // open connections, under Target.mu
	anaPort
}

// New checks cfg and opens the namespaces' backends. Nothing listens until
// Start.
func New(cfg Config, opts ...Option) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Target{
		cfg:        cfg,
		log:        slog.New(slog.DiscardHandler),
		ctrls:      make(map[uint16]*controller),
		queues:     make(map[*queue]struct{}),
		addrConns:  make(map[string]int),
		adding:     make(map[string]struct{}),
		done:       make(chan struct{}),
		nextCntlid: 1,
		started0:   time.Now(),
		refusedBy:  map[string]uint64{},
		icd:        uint32(cfg.InCapsuleDataSize.mustBytes()),
		maxH2C:     uint32(cfg.MaxH2CData.mustBytes()),
		c2hSize:    uint32(cfg.C2HDataSize.mustBytes()),
		mdts:       uint32(cfg.MDTS.mustBytes()),
		vs:         nvme.MakeVersion(2, 0, 0),

		r2tBuffer:    int(cfg.R2TBuffer.mustBytes()),
		writeBacklog: int(cfg.WriteBacklog.mustBytes()),
		kas:          kaGranule,
		quirks:       newQuirkSet(cfg.Quirks),
	}
	t.dataDigestFatal = cfg.DataDigestFatal || t.quirks.digestErrorFatal
	if t.quirks.kas10s {
		t.kas = kas10s
	}
	if len(cfg.Quirks) > 0 {
		defer func() { t.log.Warn("quirks on: the target departs from its default behaviour", "quirks", cfg.Quirks) }()
	}
	if cfg.Version == "1.4" {
		t.vs = nvme.MakeVersion(1, 4, 0)
	}
	if t.quirks.vs11 {
		t.vs = nvme.MakeVersion(1, 1, 0)
	}
	for _, o := range opts {
		o(t)
	}
	if cfg.Capture != "" {
		d, err := capture.NewDir(cfg.Capture)
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		t.capture = d
	}
	for i := range cfg.Listeners {
		p := &port{cfg: cfg.Listeners[i]}
		p.initANA()
		t.ports = append(t.ports, p)
	}
	for i := range cfg.Subsystems {
		s, err := t.newSubsystem(cfg.Subsystems[i])
		if err != nil {
			t.closeBackends()
			return nil, err
		}
		t.subsys = append(t.subsys, s)
	}
	return t, nil
}

// Config returns the validated configuration.
func (t *Target) Config() Config { return t.cfg }

// Start listens on every configured address and serves in the background.
func (t *Target) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.closed {
		return errors.New("target: already started")
	}
	for _, p := range t.ports {
		ln, err := net.Listen("tcp", p.cfg.Address)
		if err != nil {
			for _, q := range t.ports {
				if q.ln != nil {
					q.ln.Close()
				}
			}
			return fmt.Errorf("target: listen %s: %w", p.cfg.Address, err)
		}
		p.ln = ln
	}
	t.started = true
	for _, p := range t.ports {
		t.wg.Add(1)
		go t.accept(p, p.ln)
		t.log.Info("listening", "addr", p.ln.Addr().String(), "port_id", p.cfg.PortID, "serve", p.cfg.Serve)
	}
	return nil
}

// Addrs returns the listening addresses, in configuration order.
func (t *Target) Addrs() []net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	var a []net.Addr
	for _, p := range t.ports {
		if p.ln != nil {
			a = append(a, p.ln.Addr())
		}
	}
	return a
}

// accept serves the connections ln accepts until ln is closed. Each
// accept goroutine owns the listener it was started with: PortDown closes
// it (ending this goroutine) and PortUp starts a new goroutine with a new
// one, so p.ln is never read here.
//
// Any other Accept error (EMFILE when descriptors run out, ENFILE,
// ECONNABORTED, ENOBUFS, ...) is retried after a back-off that doubles
// from 5 ms to 1 s, as net/http.Server.Serve does: a flood that exhausts
// descriptors must not leave the port dead once it is over.
func (t *Target) accept(p *port, ln net.Listener) {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			t.log.Error("accept failed; retrying", "port_id", p.cfg.PortID, "err", err, "backoff", backoff)
			tm := time.NewTimer(backoff)
			select {
			case <-tm.C:
			case <-t.done:
				tm.Stop()
				return
			}
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if t.capture != nil {
			nc = t.capture.Record(nc, false, fmt.Sprintf("nvmftest target: port %d", p.cfg.PortID))
		}
		t.Serve(nc, p.cfg.PortID)
	}
}

// Back-off bounds of a failing Accept (variables so that the accept
// fuzzer can make them short).
var (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// remoteIP is the key connections are counted by per remote address: the
// IP without the port (the whole address for other kinds of connection).
func remoteIP(nc net.Conn) string {
	a := nc.RemoteAddr()
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return string(ta.IP.To16())
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// refuse closes a connection over a bound, logging at most once a second
// (with how many were refused) so that a flood does not flood the log.
func (t *Target) refuse(nc net.Conn, portID uint16, why string) {
	nc.Close()
	t.countRefused(why)
	n := t.refused.Add(1)
	now := time.Now().UnixNano()
	last := t.refusedAt.Load()
	if now-last < int64(time.Second) || !t.refusedAt.CompareAndSwap(last, now) {
		return
	}
	t.refused.Add(-n)
	t.log.Warn("connection refused", "port_id", portID, "remote", nc.RemoteAddr().String(), "why", why, "refused", n)
}

// Serve runs the target side of one connection that arrived on the
// listener with the given port ID (for tests and in-process use, e.g.
// over net.Pipe). It returns at once; Close ends the connection.
func (t *Target) Serve(nc net.Conn, portID uint16) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		nc.Close()
		return
	}
	var p *port
	for _, x := range t.ports {
		if x.cfg.PortID == portID {
			p = x
		}
	}
	if p == nil {
		p = t.ports[0]
	}
	if p.down {
		t.mu.Unlock()
		nc.Close()
		return
	}
	ip := remoteIP(nc)
	switch {
	case t.cfg.MaxConnections > 0 && p.conns >= t.cfg.MaxConnections:
		t.mu.Unlock()
		t.refuse(nc, portID, "max_connections")
		return
	case t.cfg.MaxConnectionsPerAddress > 0 && t.addrConns[ip] >= t.cfg.MaxConnectionsPerAddress:
		t.mu.Unlock()
		t.refuse(nc, portID, "max_connections_per_address")
		return
	}
	p.conns++
	t.addrConns[ip]++
	if t.cfg.Poll {
		nc = tcp.NewPollConn(nc, t.cfg.PollIdle)
	}
	q := newQueue(t, p, nc)
	t.queues[q] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	t.accepted.Add(1)
	t.log.Debug("connection accepted", "remote", nc.RemoteAddr().String(), "port_id", portID)
	go func() {
		defer t.wg.Done()
		q.serve()
		t.mu.Lock()
		t.retireQueue(q)
		delete(t.queues, q)
		p.conns--
		if t.addrConns[ip]--; t.addrConns[ip] <= 0 {
			delete(t.addrConns, ip)
		}
		t.mu.Unlock()
		t.log.Debug("connection closed", q.logAttrs()...)
	}()
}

// Reasons admitController refuses a new controller.
type admitError int

const (
	admitOK             admitError = iota
	admitRemoved                   // the subsystem was removed meanwhile
	admitHostLimit                 // max_associations_per_host reached
	admitNoControllerID            // every CNTLID is in use
)

// admitController registers c under a free controller ID unless its
// subsystem was removed, its host holds max_associations_per_host
// associations already or no ID is free. Called with t.mu held, so the
// checks and the registration are one step: a Connect that races
// RemoveSubsystem either sees the subsystem removed or is among the
// controllers RemoveSubsystem ends.
//
// The ID search makes at most one pass over the 0xFFEF usable IDs,
// starting after the last one given (the spec asks not to reuse IDs
// aggressively), so a full table fails the Connect instead of spinning
// with t.mu held.
func (t *Target) admitController(c *controller) admitError {
	if c.sub != nil && c.sub.removed {
		return admitRemoved
	}
	if limit := t.cfg.MaxAssociationsPerHost; limit > 0 {
		n := 0
		for _, o := range t.ctrls {
			if o.host == c.host {
				n++
			}
		}
		if n >= limit {
			return admitHostLimit
		}
	}
	first, last := uint16(1), uint16(maxCNTLID)
	if t.quirks.cntlidReserved {
		first, last = maxCNTLID+1, nvme.CNTLIDStatic-1
	}
	if c.cntlid != 0 { // a specific static controller: busy while associated
		if t.ctrls[c.cntlid] != nil && !t.quirks.staticCtrlShared {
			return admitNoControllerID
		}
		t.ctrls[c.cntlid] = c
		return admitOK
	}
	if t.quirks.cntlidShared {
		c.cntlid = first
		t.ctrls[first] = c // the older controller of that ID is alive but no longer found
		return admitOK
	}
	id := t.nextCntlid
	for range last - first + 1 {
		if id < first || id > last {
			id = first
		}
		if t.ctrls[id] == nil {
			c.cntlid = id
			t.nextCntlid = id + 1
			t.ctrls[id] = c
			return admitOK
		}
		id++
	}
	return admitNoControllerID
}

// maxCmd is MAXCMD, the commands a queue processes at one time that a
// host may plan for: the largest queue size, which must fit 16 bits.
func (t *Target) maxCmd() int { return min(t.cfg.QueueSize, 0xFFFF) }

// maxCNTLID is the largest controller ID a Connect can give: FFF0h to
// FFFFh are reserved (NVMe Base 2.1 6.3).
const maxCNTLID = 0xFFEF

// recoverPanic ends, with a logged stack, a connection whose goroutine
// panicked: one bad command must never take the whole target down. Call
// it deferred, directly. Closing the connection ends the receive loop;
// its clean-up then ends the association if this is an admin queue.
func (q *queue) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	q.t.log.Error("panic serving a connection; closing it", "remote", q.nc.RemoteAddr().String(),
		"qid", q.qid, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	q.nc.Close()
}

// killOthers ends every association but except's (the
// fatal-ends-all-associations quirk; the connection with the fatal error
// still sends its C2HTermReq).
func (t *Target) killOthers(except *controller, why string) {
	t.mu.Lock()
	ctrls := make([]*controller, 0, len(t.ctrls))
	for _, c := range t.ctrls {
		if c != except {
			ctrls = append(ctrls, c)
		}
	}
	t.mu.Unlock()
	for _, c := range ctrls {
		c.kill(why)
	}
}

// Close stops listening, ends every connection and association, waits for
// their goroutines and closes the backends.
func (t *Target) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	for _, p := range t.ports {
		if p.ln != nil {
			p.ln.Close()
		}
	}
	ctrls := make([]*controller, 0, len(t.ctrls))
	for _, c := range t.ctrls {
		ctrls = append(ctrls, c)
	}
	qs := make([]*queue, 0, len(t.queues))
	for q := range t.queues {
		qs = append(qs, q)
	}
	t.mu.Unlock()
	for _, c := range ctrls {
		c.stopTimer()
	}
	for _, q := range qs {
		q.nc.Close()
	}
	t.wg.Wait()
	return t.closeBackends()
}

func (t *Target) closeBackends() error {
	var errs []error
	for _, s := range t.subsys {
		for _, ns := range s.table().list() {
			errs = append(errs, ns.b.Close())
		}
	}
	return errors.Join(errs...)
}

// subsystem is one NVM subsystem.
type subsystem struct {
	t      *Target
	nqn    string
	serial string
	model  string
	any    bool
	hosts  map[string]bool
	ports  map[uint16]bool // empty: every I/O port

	nsMu   sync.Mutex // serializes namespace changes
	ns     atomic.Pointer[nsTable]
	anaChg atomic.Uint64

	removed bool // by RemoveSubsystem, under Target.mu: admit no controller
}

func (t *Target) newSubsystem(c SubsystemConfig) (*subsystem, error) {
	s := &subsystem{t: t, nqn: c.NQN, serial: c.Serial, model: c.Model, any: c.AllowAnyHost,
		hosts: map[string]bool{}, ports: map[uint16]bool{}}
	if s.serial == "" {
		h := fnv.New64a()
		h.Write([]byte(c.NQN))
		s.serial = fmt.Sprintf("%016x", h.Sum64())
	}
	if s.model == "" {
		s.model = "nvmftest"
	}
	for _, h := range c.Hosts {
		s.hosts[h] = true
	}
	for _, p := range c.Ports {
		s.ports[p] = true
	}
	// Namespaces without an NSID get the lowest ones free once every
	// explicit NSID is taken: a namespace listed before "nsid: 1" must not
	// get 1 and then be replaced by it.
	taken := &nsTable{}
	for _, nc := range c.Namespaces {
		if nc.NSID != 0 {
			taken = taken.with(&namespace{id: nc.NSID})
		}
	}
	tbl := &nsTable{}
	for _, nc := range c.Namespaces {
		if nc.NSID == 0 {
			nc.NSID = taken.free()
			taken = taken.with(&namespace{id: nc.NSID})
		}
		ns, err := openNamespace(c.NQN, nc)
		if err != nil {
			for _, o := range tbl.list() {
				o.b.Close()
			}
			return nil, fmt.Errorf("target: subsystem %s namespace %d: %w", c.NQN, nc.NSID, err)
		}
		tbl = tbl.with(ns)
	}
	s.ns.Store(tbl)
	return s, nil
}

func (s *subsystem) table() *nsTable { return s.ns.Load() }

func (s *subsystem) hostAllowed(hostnqn string) bool {
	return s.any || s.hosts[hostnqn] || s.t.quirks.acceptForeignHost
}

func (s *subsystem) onPort(p *port) bool {
	if !p.cfg.servesIO() {
		return false
	}
	return len(s.ports) == 0 || s.ports[p.cfg.PortID]
}

// nsTable is an immutable namespace table, replaced on every change, so
// the I/O path looks namespaces up without locks.
type nsTable struct {
	byID []*namespace // index NSID
}

func (t *nsTable) get(nsid uint32) *namespace {
	if int64(nsid) >= int64(len(t.byID)) {
		return nil
	}
	return t.byID[nsid]
}

func (t *nsTable) list() []*namespace {
	var l []*namespace
	for _, ns := range t.byID {
		if ns != nil {
			l = append(l, ns)
		}
	}
	return l
}

func (t *nsTable) free() uint32 {
	for i := uint32(1); i <= MaxNSID; i++ {
		if t.get(i) == nil {
			return i
		}
	}
	return 0
}

func (t *nsTable) with(ns *namespace) *nsTable {
	n := &nsTable{byID: slices.Clone(t.byID)}
	for len(n.byID) <= int(ns.id) {
		n.byID = append(n.byID, nil)
	}
	n.byID[ns.id] = ns
	return n
}

func (t *nsTable) without(nsid uint32) *nsTable {
	n := &nsTable{byID: slices.Clone(t.byID)}
	n.byID[nsid] = nil
	return n
}

// namespace is one namespace and its backend.
type namespace struct {
	id       uint32
	cfg      NamespaceConfig
	b        Backend
	bs       uint32
	shift    uint
	nlba     uint64
	blocking bool
	vwc      bool
	fua      fuaWriter
	uuid     [16]byte
	nguid    [16]byte
	// cw makes fused Compare and Write atomic: writes hold it shared, a
	// fused pair exclusively. A pointer, so the namespace a resize puts in
	// its place shares it with commands still running on this one.
	cw *sync.RWMutex
	// st is the namespace's counters of queues that have ended; shared,
	// like cw, with the namespace a resize puts in its place.
	st *nsTotals
}

func openNamespace(subnqn string, c NamespaceConfig) (*namespace, error) {
	b, err := NewBackend(c)
	if err != nil {
		return nil, err
	}
	ns := &namespace{id: c.NSID, cfg: c, b: b, bs: c.BlockSize, cw: new(sync.RWMutex), st: new(nsTotals)}
	for 1<<ns.shift < ns.bs {
		ns.shift++
	}
	ns.nlba = uint64(b.Size()) >> ns.shift
	if x, ok := b.(blocker); ok && x.Blocking() {
		ns.blocking = true
	}
	if x, ok := b.(volatileCacher); ok && x.VolatileCache() {
		ns.vwc = true
	}
	ns.fua, _ = b.(fuaWriter)
	h := fnv.New128a()
	fmt.Fprintf(h, "%s/%d", subnqn, c.NSID)
	h.Sum(ns.nguid[:0])
	copy(ns.uuid[:], ns.nguid[:])
	ns.uuid[6] = ns.uuid[6]&0x0F | 0x80 // version 8 (custom)
	ns.uuid[8] = ns.uuid[8]&0x3F | 0x80
	return ns, nil
}

func (t *Target) findSubsystem(nqn string) *subsystem {
	for _, s := range t.subsys {
		if s.nqn == nqn {
			return s
		}
	}
	return nil
}

// subsystem looks nqn up for the runtime API, or says it is unknown.
func (t *Target) subsystem(nqn string) (*subsystem, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.findSubsystem(nqn); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("target: no subsystem %q", nqn)
}

// AddNamespace adds a namespace to a running subsystem; every controller
// of the subsystem gets a Namespace Attribute Changed event and the NSID in
// its Changed Namespace List.
func (t *Target) AddNamespace(subnqn string, nc NamespaceConfig) error {
	s, err := t.subsystem(subnqn)
	if err != nil {
		return err
	}
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	tbl := s.table()
	if nc.NSID == 0 {
		nc.NSID = tbl.free()
		if nc.NSID == 0 {
			return fmt.Errorf("target: subsystem %s has no free NSID", subnqn)
		}
	}
	if err := nc.validate("namespace"); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if tbl.get(nc.NSID) != nil {
		return fmt.Errorf("target: subsystem %s already has namespace %d", subnqn, nc.NSID)
	}
	ns, err := openNamespace(subnqn, nc)
	if err != nil {
		return err
	}
	s.ns.Store(tbl.with(ns))
	s.anaChg.Add(1)
	t.nsChanged(s, nc.NSID)
	return nil
}

// RemoveNamespace removes a namespace from a running subsystem, with the
// same notifications as AddNamespace.
func (t *Target) RemoveNamespace(subnqn string, nsid uint32) error {
	s, err := t.subsystem(subnqn)
	if err != nil {
		return err
	}
	s.nsMu.Lock()
	tbl := s.table()
	ns := tbl.get(nsid)
	if ns == nil {
		s.nsMu.Unlock()
		return fmt.Errorf("target: subsystem %s has no namespace %d", subnqn, nsid)
	}
	s.ns.Store(tbl.without(nsid))
	s.anaChg.Add(1)
	s.nsMu.Unlock()
	t.nsChanged(s, nsid)
	// Writers and fused pairs in flight finish before the backend closes,
	// so Close makes every write that completed durable. Reads and
	// Flushes need no wait: one that reaches the closed backend completes
	// as a command to an inactive NSID would (queue.ioError).
	ns.cw.Lock()
	defer ns.cw.Unlock()
	return ns.b.Close()
}

// ResizeNamespace changes the capacity of a namespace of a running
// subsystem to size bytes (a whole number of its blocks), as an array's
// volume grow does: blocks that stay keep their data, new ones read as
// zeroes. Every controller of the subsystem gets a Namespace Attribute
// Changed event with the NSID in its Changed Namespace List (Identify
// Namespace NSZE and NCAP changed), which is how a host learns the new
// size.
func (t *Target) ResizeNamespace(subnqn string, nsid uint32, size int64) error {
	s, err := t.subsystem(subnqn)
	if err != nil {
		return err
	}
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	tbl := s.table()
	ns := tbl.get(nsid)
	if ns == nil {
		return fmt.Errorf("target: subsystem %s has no namespace %d", subnqn, nsid)
	}
	if size <= 0 || size%int64(ns.bs) != 0 {
		return fmt.Errorf("target: namespace %d: size %d is not a positive multiple of its %d-byte blocks", nsid, size, ns.bs)
	}
	r, ok := ns.b.(resizer)
	if !ok {
		return fmt.Errorf("target: namespace %d: its backend cannot change size", nsid)
	}
	// No write or fused pair runs while the size changes: a write past a
	// new, smaller end would otherwise land in blocks that are gone.
	ns.cw.Lock()
	defer ns.cw.Unlock()
	if err := r.Resize(size); err != nil {
		return fmt.Errorf("target: namespace %d: %w", nsid, err)
	}
	resized := *ns
	resized.nlba = uint64(size) >> ns.shift
	resized.cfg.Size = Size(strconv.FormatInt(size, 10))
	s.ns.Store(tbl.with(&resized))
	t.nsChanged(s, nsid)
	return nil
}

func (t *Target) nsChanged(s *subsystem, nsid uint32) {
	for _, c := range t.controllersOf(s) {
		c.nsChanged(nsid)
	}
}

func (t *Target) controllersOf(s *subsystem) []*controller {
	t.mu.Lock()
	defer t.mu.Unlock()
	var l []*controller
	for _, c := range t.ctrls {
		if c.sub == s {
			l = append(l, c)
		}
	}
	return l
}

// AddSubsystem adds an NVM subsystem at run time. Discovery controllers
// see a new GENCTR and get a Discovery Log Page Change event.
func (t *Target) AddSubsystem(c SubsystemConfig) error {
	ids := map[uint16]bool{}
	for _, p := range t.ports {
		ids[p.cfg.PortID] = true
	}
	if err := validateSubsystem("subsystem", &c, ids); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	// The NQN is reserved while the backends open (outside t.mu: that may
	// take a while), so two concurrent adds of one NQN cannot both win.
	t.mu.Lock()
	_, busy := t.adding[c.NQN]
	if busy || t.findSubsystem(c.NQN) != nil {
		t.mu.Unlock()
		return fmt.Errorf("target: subsystem %q exists", c.NQN)
	}
	t.adding[c.NQN] = struct{}{}
	t.mu.Unlock()
	s, err := t.newSubsystem(c)
	t.mu.Lock()
	delete(t.adding, c.NQN)
	if err == nil {
		t.subsys = append(t.subsys, s)
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	t.discoveryChanged()
	return nil
}

// RemoveSubsystem removes an NVM subsystem, ending its associations.
func (t *Target) RemoveSubsystem(nqn string) error {
	t.mu.Lock()
	s := t.findSubsystem(nqn)
	if s == nil {
		t.mu.Unlock()
		return fmt.Errorf("target: no subsystem %q", nqn)
	}
	t.subsys = slices.DeleteFunc(t.subsys, func(x *subsystem) bool { return x == s })
	s.removed = true // before controllersOf below: see admitController
	t.mu.Unlock()
	for _, c := range t.controllersOf(s) {
		c.kill("subsystem removed")
	}
	t.discoveryChanged()
	var errs []error
	for _, ns := range s.table().list() {
		errs = append(errs, ns.b.Close())
	}
	return errors.Join(errs...)
}

// discoveryChanged bumps GENCTR and tells the discovery controllers.
func (t *Target) discoveryChanged() {
	t.mu.Lock()
	if !t.quirks.discGENCTRFrozen {
		t.genctr++
	}
	if t.quirks.discGENCTRStepTwo {
		t.genctr++
	}
	var l []*controller
	for _, c := range t.ctrls {
		if c.disc {
			l = append(l, c)
		}
	}
	t.mu.Unlock()
	for _, c := range l {
		if t.quirks.noDiscChangeAEN {
			break
		}
		c.event(nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeDiscoveryChange, nvme.LogDiscovery), maskDiscovery)
	}
}

// GenCtr returns the discovery log generation counter.
func (t *Target) GenCtr() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.genctr
}

// Namespaces returns the configuration of the namespaces subnqn has now,
// by NSID, each with the NSID it was given (nil for an unknown subsystem).
func (t *Target) Namespaces(subnqn string) []NamespaceConfig {
	s, err := t.subsystem(subnqn)
	if err != nil {
		return nil
	}
	var l []NamespaceConfig
	for _, ns := range s.table().list() {
		c := ns.cfg
		c.NSID = ns.id
		l = append(l, c)
	}
	return l
}

// ioQueuesChanged counts an I/O queue in (+1) or out (-1). The hook sees
// the counts in the order they happened.
func (t *Target) ioQueuesChanged(d int) {
	t.ioQueueMu.Lock()
	t.ioQueues += d
	if t.ioQueueHook != nil {
		t.ioQueueHook(t.ioQueues)
	}
	t.ioQueueMu.Unlock()
}
