package target

import (
	"context"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// Event mask bits: an event of a kind is not sent again until the host
// reads its log page without RAE.
const (
	maskNSChanged = 1 << iota
	maskANA
	maskDiscovery
	eventKinds = iota // number of mask bits
)

const (
	errorLogEntries = 64
	maxAER          = 4 // AERL+1
)

// controller is one dynamic controller: an association of an admin queue
// and its I/O queues.
type controller struct {
	t      *Target
	sub    *subsystem // nil for a discovery controller
	disc   bool
	port   *port
	cntlid uint16
	host   string
	hostid [16]byte
	remote string // the admin queue's peer address
	// undo is the last completed Write's old data (reset-loses-writes).
	undo atomic.Pointer[undoWrite]
	// discGenRead is the GENCTR at this discovery controller's last read
	// of the Discovery log from offset 0 (discovery-read-after-change-error).
	discGenRead uint64

	// retired is what the association's I/O queues that have ended
	// counted, under Target.mu (stats.go).
	retired IOStats

	enabled atomic.Bool
	// ended is set, under mu, when the association ends (kill): from
	// then on no command of its queues starts, though one already running
	// finishes. Read under mu or, on the I/O path, without it.
	ended atomic.Bool
	// keepAlive says the keep alive timer runs (KATO > 0): it ends the
	// association if the host goes away, so its I/O queues may be silent.
	keepAlive atomic.Bool
	activity  atomic.Bool // a command arrived since the keep alive timer last looked
	// writeThrough is Volatile Write Cache WCE=0 (Set Features 06h): every
	// write through this controller completes only once durable. The
	// feature's scope is the controller; the I/O path reads it lock free.
	writeThrough atomic.Bool

	mu      sync.Mutex
	cc      uint32
	csts    uint32
	queues  []*queue // by QID
	kato    time.Duration
	timer   *time.Timer
	kaGen   uint64    // bumped on every (re)arm and stop: older timer callbacks quit
	kaLast  time.Time // the keep alive timer's latest sight of a command
	aec     uint32
	masked  uint8
	evGen   [eventKinds]uint64 // events raised per kind, sent or swallowed by the mask
	evDW0   [eventKinds]uint32 // the latest event's completion DW0 per kind
	aers    []*command
	events  []uint32
	changed []uint32 // changed namespace list
	ovfl    bool
	errs    [errorLogEntries]nvme.ErrorLogEntry
	errCnt  uint64
	numQ    uint16
	// indivIOQDel is the admin Connect's CATTR.INDIVIOQDELS: the host
	// supports deleting one I/O queue without ending the association.
	indivIOQDel bool
	// connectedAt is when the Connect made the controller (the
	// kato-stale-at-enable quirk times its first keep alive from it).
	connectedAt time.Time

	// nsAtCreation is the active NSIDs when the controller was made, for
	// the active-list-stale quirk only.
	nsAtCreation []uint32
	// capWritten and vsWritten hold what Property Set wrote to the
	// read-only CAP and VS under the readonly-property-writable quirk.
	capWritten, vsWritten *uint64
}

// newController creates and registers a controller, or says why it may
// not (see admitController). cntlid names the controller asked for (the
// static-model quirk), 0 any.
func (t *Target) newController(sub *subsystem, p *port, host string, hostid [16]byte, kato time.Duration, cntlid uint16, remote string) (*controller, admitError) {
	c := &controller{t: t, sub: sub, disc: sub == nil, port: p, host: host, hostid: hostid, remote: remote,
		kato: t.katoFor(kato), numQ: uint16(t.cfg.IOQueues), cntlid: cntlid, connectedAt: time.Now()}
	c.aec = nvme.AECNamespaceAttr | nvme.AECANAChange
	if c.disc {
		c.aec = 0 // a discovery host asks with Set Features
	}
	c.queues = make([]*queue, int(c.numQ)+1)
	if t.quirks.ccInitialNonzero {
		c.cc = 6 << 16 // IOSQES
	}
	if t.quirks.cstsReadyAtConnect {
		c.csts = nvme.CSTSReady
	}
	if t.quirks.activeListStale && !c.disc {
		for _, ns := range sub.table().list() {
			c.nsAtCreation = append(c.nsAtCreation, ns.id)
		}
	}
	t.mu.Lock()
	why := t.admitController(c)
	t.mu.Unlock()
	if why != admitOK {
		return nil, why
	}
	if t.quirks.katoFromConnect {
		c.armTimer()
	}
	return c, admitOK
}

// Keep alive (Base 2.x 3.9). The controller uses traffic based keep
// alive (CTRATT.TBKAS): any command fetched restarts the Keep Alive
// Timeout Interval, a Keep Alive command among them. The spec lets such a
// controller take up to 2×KATT to notice a silent host; this one notices
// within KATT plus one KAS granule (100 ms), and never before KATT.
//
// The receive loops only set the activity flag per command (no clock read
// per I/O). The timer looks every granule while it runs: a sight of the
// flag moves kaLast to that moment, which is at most a granule after the
// command and never before it, and the association ends once kaLast is
// KATT old. The timer runs only while it is active (3.9.2): from
// CC.EN=1 with CSTS.RDY=1 until the controller is disabled or shut down
// (setCC), not from Connect.

// kaGranule is the Keep Alive Timer granularity, reported as Identify KAS
// in 100 ms units (unless the kas-10s quirk reports a coarser one, see
// Target.kas). KATO is rounded up to a multiple of the reported one; the
// timer looks every kaGranule either way.
const kaGranule = 100 * time.Millisecond

// kas10s is the granularity the kas-10s quirk reports, SPDK's.
const kas10s = 10 * time.Second

// roundKATO rounds a keep alive timeout up to the KAS granularity, as
// Base 2.x 5.2.26.1.8 has the controller do with the host's value.
func (t *Target) roundKATO(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + t.kas - 1) / t.kas * t.kas
}

// katoFor is the Keep Alive Timeout a controller uses for the one a host
// asked for (Connect or Set Features): raised to min_kato if below it
// ("the controller sets the Keep Alive Timeout value to that minimum
// value", NVMe Base 2.2 3.9.1), then rounded up to the KAS granularity.
// 0 (no keep alive) stays 0: it is not a timeout below the minimum.
func (t *Target) katoFor(d time.Duration) time.Duration {
	if d > 0 && d < t.cfg.MinKATO {
		d = t.cfg.MinKATO
	}
	return t.roundKATO(d)
}

// armTimer (re)starts the keep alive timer for the current KATO: a
// Keep Alive Timeout Interval starts now (Connect, Set Features KATO).
func (c *controller) armTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kaGen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.keepAlive.Store(c.kato > 0 && !c.ended.Load())
	if c.kato <= 0 || c.ended.Load() {
		return
	}
	gen := c.kaGen
	c.kaLast = time.Now()
	if c.t.quirks.katoStaleAtEnable && gen == 1 && time.Since(c.connectedAt) >= c.kato {
		// The first activation, timed from the Connect: already expired.
		// The connections close now, not when the kill goroutine gets a
		// core: on a loaded machine the host could otherwise use the
		// association first.
		for _, q := range c.queues {
			if q != nil {
				q.nc.Close()
			}
		}
		go c.kill("keep alive timeout")
		return
	}
	c.timer = time.AfterFunc(min(kaGranule, c.kato), func() { c.keepAliveCheck(gen) })
}

// keepAliveCheck is the timer's look: it records a command seen since the
// last look and ends the association once KATO passed without one, or
// looks again in a granule (or at the deadline, if that is sooner).
func (c *controller) keepAliveCheck(gen uint64) {
	c.mu.Lock()
	if c.ended.Load() || gen != c.kaGen || c.kato <= 0 {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	if c.activity.Swap(false) {
		c.kaLast = now
	}
	kato := c.kato
	if left := kato - now.Sub(c.kaLast); left > 0 || c.t.quirks.katoNeverExpires {
		if left <= 0 {
			left = kaGranule
		}
		c.timer.Reset(min(left, kaGranule))
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.t.log.Warn("keep alive timeout", "cntlid", c.cntlid, "host", c.host, "kato", kato)
	c.kill("keep alive timeout")
}

func (c *controller) stopTimer() {
	c.mu.Lock()
	c.kaGen++
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
}

// kill ends the association: every queue's connection is closed.
func (c *controller) kill(why string) {
	c.mu.Lock()
	if c.ended.Load() {
		c.mu.Unlock()
		return
	}
	c.ended.Store(true)
	if c.timer != nil {
		c.timer.Stop()
	}
	qs := append([]*queue(nil), c.queues...)
	if c.t.quirks.katoKeepsIOQueues && why == "keep alive timeout" {
		qs = qs[:1]
	}
	c.aers = nil
	c.mu.Unlock()
	c.t.mu.Lock()
	if c.t.ctrls[c.cntlid] == c {
		delete(c.t.ctrls, c.cntlid)
	}
	c.t.mu.Unlock()
	lvl := slog.LevelInfo
	if c.disc {
		lvl = slog.LevelDebug
	}
	c.t.log.Log(context.Background(), lvl, "association ended", "cntlid", c.cntlid, "subnqn", c.subNQN(), "host", c.host, "remote", c.remote, "why", why)
	for _, q := range qs {
		if q != nil {
			q.nc.Close()
		}
	}
}

// removeQueue forgets an I/O queue whose connection ended.
func (c *controller) removeQueue(q *queue) {
	c.mu.Lock()
	if int(q.qid) < len(c.queues) && c.queues[q.qid] == q {
		c.queues[q.qid] = nil
	}
	c.mu.Unlock()
}

// hasIOQueues reports whether any I/O queue of the association is
// connected.
func (c *controller) hasIOQueues() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for qid, q := range c.queues {
		if qid != 0 && q != nil {
			return true
		}
	}
	return false
}

// hasQueues reports whether any queue of the association, admin or I/O,
// is connected.
func (c *controller) hasQueues() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.queues {
		if q != nil {
			return true
		}
	}
	return false
}

func (c *controller) logError(sqid uint16, s *nvme.SQE, st nvme.Status, ploc uint16) {
	c.mu.Lock()
	c.errCnt++
	copy(c.errs[1:], c.errs[:errorLogEntries-1])
	c.errs[0] = nvme.ErrorLogEntry{ErrorCount: c.errCnt, SQID: sqid, CID: s.CID, Status: st,
		ParamErrorLocation: ploc, NSID: s.NSID, TRTYPE: nvme.TRTypeTCP, Opcode: s.Opcode}
	if sqid != 0 && (s.Opcode == nvme.CmdRead || s.Opcode == nvme.CmdWrite || s.Opcode == nvme.CmdCompare) {
		c.errs[0].LBA = s.SLBA()
	}
	c.mu.Unlock()
}

// nsChanged records a namespace change and raises the event.
func (c *controller) nsChanged(nsid uint32) {
	c.mu.Lock()
	if !c.ovfl && !containsU32(c.changed, nsid) {
		if len(c.changed) >= nvme.MaxNSList {
			c.ovfl = true
			c.changed = nil
		} else {
			c.changed = append(c.changed, nsid)
		}
	}
	c.mu.Unlock()
	if c.t.quirks.noNSChangeAEN {
		return
	}
	c.event(nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeNSChanged, nvme.LogChangedNSList), maskNSChanged)
}

func containsU32(l []uint32, v uint32) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func aecBit(mask uint8) uint32 {
	switch mask {
	case maskNSChanged:
		return nvme.AECNamespaceAttr
	case maskANA:
		return nvme.AECANAChange
	case maskDiscovery:
		return nvme.AECDiscovery
	}
	return 0
}

// eventKind returns the index of an event mask bit.
func eventKind(mask uint8) int { return bits.TrailingZeros8(mask) }

// event completes an outstanding Asynchronous Event Request with dw0, or
// keeps it until one arrives, unless the host masked the event kind by not
// yet reading its log page. A masked event is still counted, so unmask
// can tell that the page the host read may be older than the event.
func (c *controller) event(dw0 uint32, mask uint8) {
	c.mu.Lock()
	if c.ended.Load() || c.aec&aecBit(mask) == 0 {
		c.mu.Unlock()
		return
	}
	k := eventKind(mask)
	c.evGen[k]++
	c.evDW0[k] = dw0
	if c.masked&mask != 0 {
		c.mu.Unlock()
		return
	}
	cmd := c.raiseLocked(dw0, mask)
	c.mu.Unlock()
	if cmd != nil {
		cmd.q.complete(cmd, nvme.StatusSuccess)
	}
}

// raiseLocked masks the kind and hands dw0 to an outstanding AER, which
// it returns for the caller to complete without c.mu, or queues it.
func (c *controller) raiseLocked(dw0 uint32, mask uint8) *command {
	c.masked |= mask
	if len(c.aers) == 0 {
		c.events = append(c.events, dw0)
		return nil
	}
	cmd := c.aers[0]
	c.aers = c.aers[1:]
	cmd.dw0 = dw0
	return cmd
}

// eventGen returns how many events of a kind were raised so far. A log
// page read takes it before it builds the page.
func (c *controller) eventGen(mask uint8) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evGen[eventKind(mask)]
}

// unmask re-enables an event kind after its log page was read without
// RAE. seen is the kind's eventGen from before the page was built: an
// event raised since then may be missing from the page, and the mask
// swallowed its notice, so it is raised again now (at worst the host
// reads a page with nothing new).
func (c *controller) unmask(mask uint8, seen uint64) {
	c.mu.Lock()
	c.masked &^= mask
	var cmd *command
	k := eventKind(mask)
	if c.evGen[k] != seen && !c.ended.Load() && c.aec&aecBit(mask) != 0 {
		cmd = c.raiseLocked(c.evDW0[k], mask)
	}
	c.mu.Unlock()
	if cmd != nil {
		cmd.q.complete(cmd, nvme.StatusSuccess)
	}
}

// aer queues an Asynchronous Event Request; it reports false when the
// request completed at once or must fail.
func (c *controller) aer(cmd *command) (pending bool, st nvme.Status) {
	c.mu.Lock()
	if len(c.events) > 0 {
		cmd.dw0 = c.events[0]
		c.events = c.events[1:]
		c.mu.Unlock()
		return false, nvme.StatusSuccess
	}
	if len(c.aers) >= maxAER && !c.t.quirks.aerLimitIgnored {
		c.mu.Unlock()
		return false, nvme.StatusAsyncEventLimit
	}
	c.aers = append(c.aers, cmd)
	c.mu.Unlock()
	return true, 0
}

// cap returns the CAP property.
func (c *controller) capReg() uint64 {
	to := uint8(15)
	if c.t.quirks.capTOZero {
		to = 0
	}
	if c.t.quirks.readyAfterCAPTO {
		to = 1 // 500 ms, and ready after readyLate
	}
	css := uint8(nvme.CSSNVM)
	if c.t.quirks.capCSSNone {
		css = 0
	}
	v := nvme.MakeCAP(uint16(c.t.cfg.QueueSize-1), to, css) | nvme.CAPCQR
	if c.t.quirks.capCQRClear {
		v &^= nvme.CAPCQR
	}
	if c.t.quirks.capMQESZero {
		v &^= 0xFFFF // MQES 0: queues of one entry
	}
	if c.t.quirks.capMPSMINAboveMax {
		v = v&^(0xFF<<48) | 1<<48 // MPSMIN 1 (bits 51:48), MPSMAX 0 (bits 55:52)
	}
	if c.t.vs >= nvme.MakeVersion(2, 0, 0) && !c.disc {
		// CAP.CRMS.CRWMS (bit 59): "shall be set to '1' on controllers
		// compliant with NVM Express Base Specification, Revision 2.0
		// and later" (NVMe Base 2.2 Fig. 36); CRTO answers for it. Not
		// on a discovery controller, which has no media and no CRTO
		// (Fig. 33): a host that sees CRWMS reads CRTO (Linux
		// nvme_enable_ctrl), and Linux's discover fails when that read
		// is refused.
		v |= capCRWMS
	}
	return c.propsCAP(uint64(v))
}

// capCRWMS is CAP.CRMS.CRWMS, Controller Ready With Media Support.
const capCRWMS = 1 << 59

// readyLate is when an I/O controller becomes ready after CC.EN=1 under
// the ready-after-cap-to quirk: later than the CAP.TO (500 ms) it reports.
const readyLate = 600 * time.Millisecond

// readyNow sets CSTS.RDY if the controller is still being enabled (the
// ready-after-cap-to quirk's late transition).
func (c *controller) readyNow() {
	c.mu.Lock()
	ready := c.cc&nvme.CCEnable != 0 && c.csts&(nvme.CSTSFatal|nvme.CSTSShstMask) == 0 && !c.ended.Load()
	if ready {
		c.csts |= nvme.CSTSReady
		c.enabled.Store(true)
	}
	c.mu.Unlock()
	if ready {
		c.armTimer() // the keep alive timer becomes active (setCC)
	}
}

// setCC applies a Property Set of CC. The keep alive timer follows: NVMe
// Base 2.2 3.9.2 has it active only while CC.EN and CSTS.RDY are 1 and
// no shutdown is requested or reported (otherwise "a Keep Alive Timeout
// ... shall not occur"), and enabling a Fabrics controller whose Connect
// gave a KATO "shall initialize the Keep Alive Timer".
func (c *controller) setCC(v uint32) {
	c.mu.Lock()
	wasActive := c.timerActiveLocked()
	c.setCCLocked(v)
	active := c.timerActiveLocked()
	c.mu.Unlock()
	switch {
	case active && !wasActive:
		c.armTimer()
	case !active && wasActive && !c.t.quirks.katoFromConnect:
		c.stopTimer()
	}
}

// timerActiveLocked reports whether the keep alive timer is active as
// NVMe Base 2.2 3.9.2 defines it (KATO non-zero aside: armTimer checks
// that). c.mu is held.
func (c *controller) timerActiveLocked() bool {
	return c.cc&nvme.CCEnable != 0 && c.csts&nvme.CSTSReady != 0 &&
		c.cc&nvme.CCShnMask == 0 && c.csts&nvme.CSTSShstMask == 0
}

func (c *controller) setCCLocked(v uint32) {
	old := c.cc
	if c.disc && !c.t.quirks.discCCEntrySizesKept {
		// A discovery controller has no I/O queues: IOCQES and IOSQES
		// are "read-only with a value of 0h" (NVMe Base 2.2 Fig. 41).
		v &^= ccEntrySizes
	}
	c.cc = v
	if v&nvme.CCEnable != 0 && old&nvme.CCEnable == 0 {
		if c.t.quirks.resetKeepsSHST {
			c.csts &^= nvme.CSTSShstMask // late, but before RDY
		}
		// IOSQES 6 and IOCQES 4 are the only legal entry sizes (of an
		// I/O controller: a discovery controller has none).
		if ((v>>16)&0xF != 6 || (v>>20)&0xF != 4) && !c.t.quirks.ccEntrySizesUnchecked && !c.disc || (v>>7)&0xF != 0 {
			c.csts |= nvme.CSTSFatal
		} else if c.t.quirks.readyAfterCAPTO && !c.disc {
			time.AfterFunc(readyLate, c.readyNow)
		} else {
			c.csts |= nvme.CSTSReady
			c.enabled.Store(true)
		}
	}
	if v&nvme.CCEnable == 0 && old&nvme.CCEnable != 0 {
		c.csts &^= nvme.CSTSFatal
		// A Controller Reset ends a reported controller shutdown: "If
		// this field is set to 10b when a CLR is initiated by a method
		// other than NVM Subsystem Reset and ... CSTS.ST is cleared to
		// '0', then that CLR shall clear this field to 00b" (NVMe Base
		// 2.2 Fig. 42). A shutdown asked in the same write follows.
		if !c.t.quirks.resetKeepsSHST {
			c.csts &^= nvme.CSTSShstMask
		}
		c.undoLastWrite()
		if !c.t.quirks.disableKeepsReady {
			c.csts &^= nvme.CSTSReady
		}
		c.enabled.Store(false)
	}
	if v&nvme.CCShnMask != 0 && old&nvme.CCShnMask == 0 {
		// As nvmet: shutting down also clears the controller.
		c.csts = nvme.CSTSShstCmplt
		if c.t.quirks.shutdownNever {
			c.csts = 1 << 2 // SHST 01b: shutdown processing occurring
		}
		c.enabled.Store(false)
	}
	if v&nvme.CCShnMask == 0 && old&nvme.CCShnMask != 0 && !c.t.quirks.resetKeepsSHST &&
		!(c.t.quirks.enableKeepsSHST && v&nvme.CCEnable != 0 && old&nvme.CCEnable == 0) {
		c.csts &^= nvme.CSTSShstMask
	}
}
