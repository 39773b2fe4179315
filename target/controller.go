package target

import (
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

	enabled  atomic.Bool
	activity atomic.Bool // a command arrived since the keep alive timer last fired

	mu      sync.Mutex
	cc      uint32
	csts    uint32
	queues  []*queue // by QID
	kato    time.Duration
	timer   *time.Timer
	dead    bool
	aec     uint32
	masked  uint8
	aers    []*command
	events  []uint32
	changed []uint32 // changed namespace list
	ovfl    bool
	errs    [errorLogEntries]nvme.ErrorLogEntry
	errCnt  uint64
	numQ    uint16
	vwce    bool
}

// newController creates and registers a controller, or says why it may
// not (see admitController).
func (t *Target) newController(sub *subsystem, p *port, host string, hostid [16]byte, kato time.Duration) (*controller, admitError) {
	c := &controller{t: t, sub: sub, disc: sub == nil, port: p, host: host, hostid: hostid,
		kato: kato, numQ: uint16(t.cfg.IOQueues)}
	c.aec = nvme.AECNamespaceAttr | nvme.AECANAChange
	if c.disc {
		c.aec = 0 // a discovery host asks with Set Features
	}
	c.queues = make([]*queue, int(c.numQ)+1)
	c.vwce = true
	t.mu.Lock()
	why := t.admitController(c)
	t.mu.Unlock()
	if why != admitOK {
		return nil, why
	}
	c.armTimer()
	return c, admitOK
}

// armTimer (re)starts the keep alive timer for the current KATO. With
// traffic based keep alive (CTRATT.TBKAS) any command counts: the timer
// fires every KATO and ends the association only if nothing arrived since
// the previous firing.
func (c *controller) armTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.kato <= 0 || c.dead {
		return
	}
	c.timer = time.AfterFunc(c.kato, c.keepAliveCheck)
}

func (c *controller) keepAliveCheck() {
	if c.activity.Swap(false) {
		c.mu.Lock()
		if !c.dead && c.timer != nil {
			c.timer.Reset(c.kato)
		}
		c.mu.Unlock()
		return
	}
	c.t.log.Warn("keep alive timeout", "cntlid", c.cntlid, "host", c.host, "kato", c.kato)
	c.kill("keep alive timeout")
}

func (c *controller) stopTimer() {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
}

// kill ends the association: every queue's connection is closed.
func (c *controller) kill(why string) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	if c.timer != nil {
		c.timer.Stop()
	}
	qs := append([]*queue(nil), c.queues...)
	c.aers = nil
	c.mu.Unlock()
	c.t.mu.Lock()
	if c.t.ctrls[c.cntlid] == c {
		delete(c.t.ctrls, c.cntlid)
	}
	c.t.mu.Unlock()
	c.t.log.Info("association ended", "cntlid", c.cntlid, "host", c.host, "why", why)
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

// event completes an outstanding Asynchronous Event Request with dw0, or
// keeps it until one arrives, unless the host masked the event.
func (c *controller) event(dw0 uint32, mask uint8) {
	c.mu.Lock()
	if c.dead || c.aec&aecBit(mask) == 0 || c.masked&mask != 0 {
		c.mu.Unlock()
		return
	}
	c.masked |= mask
	if len(c.aers) == 0 {
		c.events = append(c.events, dw0)
		c.mu.Unlock()
		return
	}
	cmd := c.aers[0]
	c.aers = c.aers[1:]
	c.mu.Unlock()
	cmd.dw0 = dw0
	cmd.q.complete(cmd, nvme.StatusSuccess)
}

// unmask re-enables an event kind after its log page was read.
func (c *controller) unmask(mask uint8) {
	c.mu.Lock()
	c.masked &^= mask
	c.mu.Unlock()
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
	if len(c.aers) >= maxAER {
		c.mu.Unlock()
		return false, nvme.StatusAsyncEventLimit
	}
	c.aers = append(c.aers, cmd)
	c.mu.Unlock()
	return true, 0
}

// cap returns the CAP property.
func (c *controller) capReg() uint64 {
	v := nvme.MakeCAP(uint16(c.t.cfg.QueueSize-1), 15, nvme.CSSNVM) | nvme.CAPCQR
	return uint64(v)
}

// setCC applies a Property Set of CC.
func (c *controller) setCC(v uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cc
	c.cc = v
	if v&nvme.CCEnable != 0 && old&nvme.CCEnable == 0 {
		// IOSQES 6 and IOCQES 4 are the only legal entry sizes.
		if (v>>16)&0xF != 6 || (v>>20)&0xF != 4 || (v>>7)&0xF != 0 {
			c.csts |= nvme.CSTSFatal
		} else {
			c.csts |= nvme.CSTSReady
			c.enabled.Store(true)
		}
	}
	if v&nvme.CCEnable == 0 && old&nvme.CCEnable != 0 {
		c.csts &^= nvme.CSTSReady | nvme.CSTSFatal
		c.enabled.Store(false)
	}
	if v&nvme.CCShnMask != 0 && old&nvme.CCShnMask == 0 {
		// As nvmet: shutting down also clears the controller.
		c.csts = nvme.CSTSShstCmplt
		c.enabled.Store(false)
	}
	if v&nvme.CCShnMask == 0 && old&nvme.CCShnMask != 0 {
		c.csts &^= nvme.CSTSShstMask
	}
}
