package target

import (
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Command slot states. The receive goroutine changes them, except that
// R2T grants (stateR2TWait to stateData) may happen on any goroutine that
// completes a command: those transitions, and every read of a state that
// may be stateData, are under queue.r2tMu.
const (
	stateFree    = iota
	stateR2TWait // needs data; waits for R2T budget (no buffer, no R2T yet)
	stateData    // waiting for H2CData after an R2T
	stateExec    // executing or completing
	stateAbort   // being aborted by a Disconnect
)

// adminCapsuleData is the in-capsule data accepted on an admin queue (and
// before Connect), as the Linux host's NVME_TCP_ADMIN_CCSZ.
const adminCapsuleData = 8192

// slotBufKeep is the largest data buffer a command slot keeps between
// commands: 4 KiB I/O, the common case, needs no pool. Larger buffers
// come from dataPools and go back after every command, so a queue that
// has gone idle keeps almost nothing (slots used to keep up to 128 KiB
// each: 32 MiB per idle I/O queue).
const slotBufKeep = 4 << 10

// preConnectSlots bounds the commands outstanding before Connect.
const preConnectSlots = 32

// command is one command slot. Its index is the R2T transfer tag.
type command struct {
	q     *queue
	ttag  uint16
	state uint8
	sqe   nvme.SQE

	buf      []byte // data, len == xfer
	own      []byte // the slot's own small buffer, reused
	big      *[]byte
	bigClass int
	xfer     uint32
	h2c      bool
	recvd    uint32
	ddgst    bool

	// R2T flow (under q.r2tMu): budget held, when the R2T went out, and
	// the links of q.r2tWait or q.r2tOut.
	held       uint32
	r2tAt      time.Time
	prev, next *command
	grantNext  *command // commands one release granted, to send R2Ts for

	ns       *namespace
	st       *nsStats      // I/O queues: the counters the command goes to
	start    time.Duration // I/O queues: when the command arrived, since the target started (monotonic: one clock read, where time.Now takes two)
	dw0, dw1 uint32
	ploc     uint16 // parameter error location for the error log

	// fused operations
	peer      *command
	fuseReady bool
	fuseAbort nvme.Status

	resp tcp.CapsuleResp
	c2h  tcp.C2HData
	r2t  tcp.R2T
}

// dataPools hold data buffers by size class: pool i holds *[]byte of
// capacity 1<<i. The runtime empties pools over two garbage collections,
// so what a burst needed does not stay with an idle target, while a busy
// one reuses its buffers without allocating.
var dataPools [31]sync.Pool

func (c *command) setBuf(n uint32) {
	if n <= slotBufKeep {
		if c.own == nil {
			c.own = make([]byte, slotBufKeep)
		}
		c.buf = c.own[:n]
		return
	}
	class := bits.Len32(n - 1)
	p, _ := dataPools[class].Get().(*[]byte)
	if p == nil {
		b := make([]byte, 1<<class)
		p = &b
	}
	c.big, c.bigClass = p, class
	c.buf = (*p)[:n]
}

func (c *command) releaseBuf() {
	if c.big != nil {
		dataPools[c.bigClass].Put(c.big)
		c.big = nil
	}
	c.buf = nil
	if c.held > 0 {
		c.q.releaseR2T(c)
	}
}

// cmdList is a list of commands linked through prev and next.
type cmdList struct{ head, tail *command }

func (l *cmdList) push(c *command) {
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *cmdList) remove(c *command) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// queue is one connection: before Connect nothing, after it an admin or an
// I/O queue of one controller.
type queue struct {
	t    *Target
	port *port
	nc   net.Conn // closing it ends the connection at once
	w    *tcp.AsyncWriter
	conn *tcp.Conn // writes through w

	ctrl    *controller
	qid     uint16
	size    uint32 // entries (SQSIZE+1)
	flowOff bool
	// maxR2T is the host's ICReq MAXR2T (0's based), for the
	// r2t-window-repeats quirk.
	maxR2T uint32
	// flowOffAnswered: the Connect that turned SQ flow control off has
	// had its response (FFFFh); later responses carry SQHD 0.
	flowOffAnswered atomic.Bool
	// fatalEnd: the queue ends after a fatal transport error (terminate).
	fatalEnd bool
	// hostClosed: the host closed the connection in an orderly way
	// between PDUs (EOF), as hosts do to each I/O queue before they shut
	// the controller down.
	hostClosed bool
	// corked: the receive loop holds responses back while it works
	// through what one read brought in; polled: the connection is a
	// tcp.PollConn, whose OnEmpty (flushHeld) ends the cork. Receive
	// goroutine only.
	corked, polled bool
	// countedIO: install counted this queue in Target.ioQueues.
	countedIO bool
	// keepAssoc: the sq-overrun-connection-only quirk ended this queue;
	// its association lives on whatever the admin Connect said.
	keepAssoc bool
	// rareCount counts the Reads the sqhd-rarely-sent quirk has seen.
	rareCount atomic.Uint32
	// fetched counts the capsules fetched since Connect (which is the
	// first): SQHD is fetched mod size. reported is the largest fetched
	// value an SQHD sent to the host has reflected: with SQ flow control
	// the host may not be more than size-1 capsules ahead of it.
	fetched  atomic.Uint64
	reported atomic.Uint64

	// Command slots: cmds by TTAG (the receive goroutine adds to it), the
	// free ones on a LIFO stack so few slots stay warm, made on demand up
	// to slotCap.
	cmds        []*command
	slotMu      sync.Mutex
	slotFree    []*command
	slotWait    sync.Cond // for a slot a completion is about to free
	slotCap     int
	outstanding atomic.Int32

	fuseFirst    *command // waiting for its second command
	fuseFailNext bool

	// R2T data budget (r2t_buffer): commands asking for more than is left
	// wait in r2tWait, without buffer or R2T; r2tOut holds those whose
	// R2T went out, oldest first, for r2t_timeout.
	r2tMu   sync.Mutex
	r2tFree int
	r2tWait cmdList
	r2tOut  cmdList
	r2tOutN atomic.Int32 // commands in r2tOut
	r2tStop bool         // Disconnect: no more grants

	work     chan *command
	workers  sync.WaitGroup
	wstarted bool

	stopped    bool // Disconnect done: the receive loop ends
	queueEnded bool // endQueue ran (receive goroutine only)
	endAssoc   bool // a violation that ends the association, not only this connection

	scratch []byte // admin data, receive goroutine only

	auth *authState // DH-HMAC-CHAP, when the host must authenticate

	// Counters per namespace (stats.go): the receive goroutine adds to
	// stats under statMu, which readers take.
	statMu   sync.Mutex
	stats    []*nsStats
	lastStat *nsStats // receive goroutine only

	lastWrite atomic.Pointer[staleWrite] // the stale-write-after-loss quirk
	// statCtrl and statQID are ctrl and qid for readers on other
	// goroutines (Stats), set once by install.
	statCtrl atomic.Pointer[controller]
	statQID  atomic.Uint32
}

func newQueue(t *Target, p *port, nc net.Conn) *queue {
	w := tcp.NewAsyncWriter(nc, t.writeBacklog)
	w.SetStallTimeout(t.writeStall())
	q := &queue{t: t, port: p, nc: nc, w: w,
		conn:    tcp.NewConn(w, true, tcp.Config{ReadBufferSize: readBuffer, MaxPending: t.writeBacklog}),
		slotCap: preConnectSlots, r2tFree: t.r2tBuffer}
	q.slotWait.L = &q.slotMu
	return q
}

// writeStall is how long a peer may take none of what the target queued
// for it: write_timeout, or idle_timeout if that is shorter.
func (t *Target) writeStall() time.Duration {
	d := t.cfg.WriteTimeout
	if i := t.cfg.IdleTimeout; i > 0 && (d == 0 || i < d) {
		d = i
	}
	return d
}

// get takes a free slot, making one if the queue has fewer than slotCap.
// The caller has checked that fewer than slotCap commands are outstanding,
// so at worst a completion is between counting itself done and putting
// its slot back: get waits for that.
func (q *queue) get() *command {
	q.slotMu.Lock()
	for {
		if n := len(q.slotFree); n > 0 {
			c := q.slotFree[n-1]
			q.slotFree = q.slotFree[:n-1]
			q.slotMu.Unlock()
			return c
		}
		if len(q.cmds) < q.slotCap {
			c := &command{q: q, ttag: uint16(len(q.cmds))}
			q.cmds = append(q.cmds, c)
			if cap(q.slotFree) < len(q.cmds) {
				// Room for every slot, so put never allocates.
				q.slotFree = slices.Grow(q.slotFree, 2*len(q.cmds))
			}
			q.slotMu.Unlock()
			return c
		}
		q.slotWait.Wait()
	}
}

func (q *queue) put(c *command) {
	c.releaseBuf()
	c.peer = nil
	q.slotMu.Lock()
	q.slotFree = append(q.slotFree, c)
	q.slotWait.Signal()
	q.slotMu.Unlock()
}

// readBuffer is a connection's receive buffer. 16 KiB holds a QD32 burst
// of capsules and keeps an idle connection small (1000 idle associations
// are one of the limits tests); data larger than the buffer is read
// straight into the command's buffer anyway.
const readBuffer = 16 << 10

// errClose ends the connection without a TermReq (Disconnect).
var errClose = errors.New("target: close")

// errR2TTimeout ends a connection whose host did not send the data of an
// R2T within r2t_timeout.
var errR2TTimeout = errors.New("target: no data for an R2T within r2t_timeout")

func (q *queue) serve() {
	defer q.cleanup()
	defer q.recoverPanic()
	cfg := &q.t.cfg
	// ICTimeout bounds the set-up: ICReq and then a successful Connect
	// must both arrive in time, so a peer that stops half way through (or
	// never connects a queue) does not hold a connection for ever.
	var setupDeadline time.Time
	if cfg.ICTimeout > 0 {
		setupDeadline = time.Now().Add(cfg.ICTimeout)
		_ = q.nc.SetReadDeadline(setupDeadline)
	}
	pol := tcp.ICPolicy{CPDA: cfg.CPDA, MaxH2CData: q.t.maxH2C, HeaderDigest: cfg.HeaderDigest,
		DataDigest: cfg.DataDigest, MaxHPDA: cfg.MaxHPDA}
	qk := &q.t.quirks
	if qk.icrespPFV1 {
		pol.PFV = 1
	}
	if qk.icrespCPDA32 {
		pol.CPDA = 32
	}
	pol.HeaderDigest = pol.HeaderDigest && !qk.hdgstRefusedSent
	pol.DataDigest = pol.DataDigest && !qk.ddgstRefusedSent
	pol.Deviate = qk.deviateIC()
	req, err := q.conn.ControllerInitialize(pol)
	if err != nil {
		if qk.feiNotLowest {
			err = feiNotLowest(req, err)
		}
		q.fail(err)
		return
	}
	q.maxR2T = req.MAXR2T
	if qk.hpdaIgnored || qk.hdgstRefusedSent || qk.ddgstRefusedSent {
		// Digests the ICResp refused used anyway; or the host's
		// alignment ignored.
		d, hpda := q.conn.Rules().Digests, req.HPDA
		d.Header = d.Header || qk.hdgstRefusedSent && req.DGST&tcp.DgstHeader != 0
		d.Data = d.Data || qk.ddgstRefusedSent && req.DGST&tcp.DgstData != 0
		if qk.hpdaIgnored {
			hpda = 0
		}
		q.conn.Negotiated(d, pol.CPDA, hpda)
	}
	deadline := setupDeadline
	_ = q.nc.SetReadDeadline(deadline)
	q.conn.SetLimits(max(adminCapsuleData, q.t.icd), q.t.maxH2C)
	// Everything sent while PDUs that arrived together are handled goes
	// out in one write when the last of them is done: the connection is
	// corked from the PDU a read returned until no whole PDU is left in
	// the receive buffer, just before the loop could wait for the
	// network. Corking only when more was buffered before the read sent
	// the first command of every burst on its own (three writes per
	// burst at QD32 instead of one).
	if pc, ok := q.nc.(*tcp.PollConn); ok {
		// Polling (poll:): flush held responses when the socket turns
		// out empty, not whenever no whole PDU is buffered, so a burst
		// that arrives in pieces is still answered in one write.
		q.polled = true
		pc.SetOnEmpty(q.flushHeld)
	}
	defer func() {
		// A return from the loop (Disconnect done, the host's TermReq)
		// must not leave its last response held back.
		if q.corked {
			_ = q.conn.Uncork()
		}
	}()
	for {
		if q.corked && !q.polled && !q.conn.PDUBuffered() {
			_ = q.conn.Uncork()
			q.corked = false
		}
		if q.conn.Buffered() == 0 {
			// About to block: the read deadline is the earliest of the
			// set-up deadline (until Connect), the idle timeout and the
			// data of the oldest R2T.
			var d time.Time
			if q.ctrl == nil {
				d = setupDeadline
			}
			if cfg.IdleTimeout > 0 {
				d = earliest(d, time.Now().Add(cfg.IdleTimeout))
			}
			if q.r2tOutN.Load() > 0 && cfg.R2TTimeout > 0 {
				d = earliest(d, q.oldestR2T().Add(cfg.R2TTimeout))
			}
			if !d.Equal(deadline) {
				deadline = d
				_ = q.nc.SetReadDeadline(d)
			}
		}
		if q.r2tOutN.Load() > 0 && cfg.R2TTimeout > 0 && time.Since(q.oldestR2T()) > cfg.R2TTimeout {
			// Checked here too, for a host that keeps sending other
			// PDUs while it holds back the data.
			q.fail(errR2TTimeout)
			return
		}
		p, err := q.conn.Next()
		if err == nil && !q.corked {
			q.conn.Cork()
			q.corked = true
		}
		if err == nil {
			switch v := p.(type) {
			case *tcp.CapsuleCmd:
				err = q.onCapsule(&v.SQE)
			case *tcp.H2CData:
				err = q.onH2CData(v)
			case *tcp.TermReq:
				if q.t.quirks.h2cTermReqIgnored {
					continue
				}
				q.t.log.Info("host terminated the connection", append(q.logAttrs(), "fes", v.FES, "fei", v.FEI)...)
				if q.t.quirks.h2cTermReqAnswered {
					_ = q.conn.SendRaw(tcp.AppendPDU(nil, &tcp.TermReq{FES: tcp.FESPDUSequenceError}, nil, tcp.EncodeOptions{}))
				}
				return
			}
		}
		if err == nil && q.stopped {
			return
		}
		if err != nil {
			if q.corked {
				_ = q.conn.Uncork()
			}
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			if timeout && q.r2tOutN.Load() > 0 && cfg.R2TTimeout > 0 &&
				time.Since(q.oldestR2T()) > cfg.R2TTimeout {
				err = errR2TTimeout
			} else if timeout && q.conn.Idle() && q.mayBeQuiet() {
				// idle_timeout passed between PDUs on an I/O queue whose
				// association keep alive covers: a host may leave a queue
				// silent as long as it likes (Linux does).
				continue
			} else if q.t.quirks.processAfterFatal && q.keepGoingAfter(err) {
				q.corked = false // uncorked above
				continue
			}
			// An orderly close by the host between PDUs (a FIN, not a
			// reset or a half-sent PDU) is the host ending the queue, not
			// a lost connection: see endQueue.
			q.hostClosed = errors.Is(err, io.EOF) && q.conn.Idle()
			q.fail(err)
			return
		}
	}
}

// flushHeld is a polling connection's OnEmpty: the receive loop found the
// socket empty, so the responses it held back go out now.
func (q *queue) flushHeld() {
	if q.corked {
		q.corked = false
		_ = q.conn.Uncork()
	}
}

// keepGoingAfter is the process-after-fatal quirk: it sends the
// C2HTermReq a fatal error calls for and reports true, so the receive loop
// goes on with the PDUs that follow, as a controller breaking NVMe/TCP 1.0
// 3.5.1 would.
func (q *queue) keepGoingAfter(err error) bool {
	var fe *tcp.FatalError
	if !errors.As(err, &fe) || badTermReqPLEN(fe) && !q.t.quirks.h2cTermReqBadPLENFatal {
		return false
	}
	t := tcp.TermReq{FES: fe.FES, FEI: fe.FEI}
	if q.t.quirks.termReqFESUnsupported {
		t.FES = tcp.FESUnsupportedParameter
	}
	var hdr []byte
	if !q.t.quirks.termReqNoHeader {
		hdr = fe.Header
	}
	return q.conn.SendRaw(tcp.AppendPDU(nil, &t, hdr, tcp.EncodeOptions{})) == nil
}

// mayBeQuiet reports whether the connection may stay silent between PDUs
// beyond idle_timeout: an I/O queue of an association with a keep alive
// timer, which ends the association (and so this connection) if the host
// goes away. A connection without an association, an admin queue and the
// I/O queues of an association with KATO 0 may not; nor may any
// connection part way through a PDU.
func (q *queue) mayBeQuiet() bool {
	return q.qid != 0 && q.ctrl != nil && q.ctrl.keepAlive.Load()
}

// earliest returns the earlier of a and b, where zero means none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// fail ends the connection on err. For a fatal transport error that
// means the C2HTermReq and the wait of NVMe/TCP 1.0 3.5.1 (terminate);
// the deferred cleanup then closes the connection.
func (q *queue) fail(err error) {
	var fe *tcp.FatalError
	switch {
	case errors.As(err, &fe) && badTermReqPLEN(fe) && !q.t.quirks.h2cTermReqBadPLENFatal:
		// NVMe/TCP 1.0 3.5.1: "the controller shall ignore a H2CTermReq
		// PDU with a PDU length (PLEN) that exceeds 152 bytes ... [or]
		// less than 24 bytes and shall terminate the connection
		// immediately": no C2HTermReq, no wait for the host.
		q.t.log.Warn("H2CTermReq with an invalid PLEN; closing the connection", append(q.logAttrs(), "err", fe.Error())...)
	case errors.As(err, &fe):
		q.t.log.Warn("fatal transport error", append(q.logAttrs(), "err", fe.Error())...)
		if q.t.diesOn(fe) {
			go q.t.die()
		}
		if q.t.quirks.fatalStreakRefuses {
			q.t.fatalStreak.Add(1)
		}
		if q.t.quirks.fatalEndsAll {
			q.t.killOthers(q.ctrl, "a fatal transport error on another connection")
		}
		q.terminate(fe)
	case errors.Is(err, errR2TTimeout), errors.Is(err, tcp.ErrWriteStalled):
		q.t.log.Warn("peer stalled; closing the connection", append(q.logAttrs(), "err", err)...)
	case errors.Is(err, errClose), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		q.t.log.Debug("connection ended", "remote", q.nc.RemoteAddr().String(), "err", err)
	}
}

// badTermReqPLEN reports whether fe is the host's H2CTermReq with a PLEN
// outside 24..152, which the controller ignores (NVMe/TCP 1.0 3.5.1).
func badTermReqPLEN(fe *tcp.FatalError) bool {
	const offPLEN = 4
	return len(fe.Header) > 0 && tcp.PDUType(fe.Header[0]) == tcp.TypeH2CTermReq &&
		fe.FES == tcp.FESInvalidHeaderField && fe.FEI == offPLEN
}

// logAttrs are the attributes that say which connection a log line is
// about: the peer, and once connected the controller, queue, host and
// subsystem. Receive goroutine only.
func (q *queue) logAttrs() []any {
	l := []any{"remote", q.nc.RemoteAddr().String(), "port_id", q.port.cfg.PortID}
	if c := q.ctrl; c != nil {
		l = append(l, "cntlid", c.cntlid, "qid", q.qid, "host", c.host, "subnqn", c.subNQN())
	}
	return l
}

func (q *queue) cleanup() {
	q.conn.Close()
	q.endQueue()
}

// endQueue stops the queue's workers and takes it out of its controller:
// closing an admin queue (or overrunning any queue) ends the association,
// closing an I/O queue frees its QID. It runs once, when the connection
// closes or, after a fatal error, as soon as the C2HTermReq is out: the
// association must not wait for the host to close (terminate).
func (q *queue) endQueue() {
	if q.queueEnded {
		return
	}
	q.queueEnded = true
	q.stopWorkers()
	if q.countedIO {
		q.countedIO = false
		q.t.ioQueuesChanged(-1)
	}
	if q.t.quirks.authRetained && q.auth != nil && !q.auth.done {
		retainedAuth.Store(retainKey{q.t, q.auth.h.nqn}, *q.auth)
	}
	if c := q.ctrl; c != nil {
		// Out of c.queues first, so that kill, which closes the
		// connections of the association's queues, leaves this one to
		// its caller (it may be waiting for the host to close it).
		if !(q.fatalEnd && q.qid != 0 && q.t.quirks.ioqFatalKeepsQID) {
			c.removeQueue(q)
		}
		switch {
		case q.qid == 0 && q.t.quirks.adminLossKeepsAssoc && c.hasIOQueues():
			// The deviation: the association outlives its admin queue
			// while it has I/O queues (it ends with the last of them, so
			// the quirk leaks no controller).
			c.stopTimer()
		case q.qid != 0 && q.t.quirks.adminLossKeepsAssoc && !c.hasQueues():
			c.kill("last queue closed after the admin queue")
		case q.qid == 0:
			c.kill("admin queue closed")
		case q.endAssoc:
			c.kill("submission queue overrun")
		case !q.stopped && !c.ended.Load():
			// An I/O connection lost on its own (not by Disconnect, not
			// with its association).
			if q.t.quirks.staleWriteAfterLoss {
				q.replayStaleWrite()
			}
			c.mu.Lock()
			indiv := c.indivIOQDel
			c.mu.Unlock()
			if !indiv && !q.hostClosed && !q.t.quirks.ioqLossKeepsAssoc && !q.keepAssoc {
				// NVMe Base 2.2 3.1.2: an association is terminated if
				// "an NVMe Transport connection is lost ... for any I/O
				// Queue and the host or controller does not support
				// individual I/O Queue deletion"; 3.3.2.4 likewise. The
				// host said it does not (CATTR.INDIVIOQDELS clear in its
				// admin Connect; suites FAB-IOQ-014). A connection the
				// host closed in an orderly way is not lost: Linux
				// (nvme_tcp_teardown_ctrl) and SPDK (nvme_ctrlr_destruct)
				// close every I/O connection before they shut the
				// controller down on the admin queue, which must still
				// work then.
				c.kill("I/O queue connection lost; the admin Connect did not set CATTR.INDIVIOQDELS")
			}
		}
	}
}

// terminate reacts to a fatal transport error as NVMe/TCP 1.0 3.5.1 has
// the controller do: stop processing PDUs, send a C2HTermReq, and leave
// closing the connection to the host ("In response to a C2HTermReq PDU,
// the host shall terminate the connection"), closing it only if the host
// has not within fatal_close_wait ("the controller may terminate the
// connection" after 30 seconds). Meanwhile whatever arrives is read and
// thrown away, so the host's writes do not block, and the association
// ends at once (endQueue). The caller closes the connection afterwards.
func (q *queue) terminate(fe *tcp.FatalError) {
	qk := &q.t.quirks
	q.fatalEnd = true
	if qk.noTermReq {
		return
	}
	if qk.termReqFESUnsupported || qk.termReqNoHeader || qk.hdgstFEIZero && fe.FES == tcp.FESHeaderDigestError {
		x := *fe
		if qk.termReqFESUnsupported {
			x.FES = tcp.FESUnsupportedParameter
		}
		if qk.hdgstFEIZero && fe.FES == tcp.FESHeaderDigestError {
			x.FEI = 0
		}
		if qk.termReqNoHeader {
			x.Header = nil
		}
		fe = &x
	}
	if qk.termReqDataCHOnly || qk.termReqFEIReserved {
		fe = tcp2TermReq(qk, fe)
	}
	if qk.termReqPLENWrong {
		b := tcp.AppendPDU(nil, &tcp.TermReq{FES: fe.FES, FEI: fe.FEI}, fe.Header, tcp.EncodeOptions{})
		binary.LittleEndian.PutUint32(b[4:], termReqBadPLEN)
		if q.conn.SendRaw(b) != nil {
			return
		}
	} else if q.conn.SendTermReq(fe) != nil {
		return // the host is gone already
	}
	wait := q.t.cfg.FatalCloseWait
	if qk.closeAfterTermReq || wait <= 0 {
		return
	}
	q.endQueue()
	q.discardUntilClosed(wait)
}

// discardUntilClosed reads and drops what the host sends until it closes
// the connection, the target closes it (Close, PortDown) or wait passes.
// It reads the socket directly: the bytes still in the PDU reader's buffer
// are dropped with it, unprocessed.
func (q *queue) discardUntilClosed(wait time.Duration) {
	_ = q.nc.SetReadDeadline(time.Now().Add(wait))
	var buf [4096]byte
	for {
		if _, err := q.nc.Read(buf[:]); err != nil {
			return
		}
	}
}

// stopWorkers lets the workers finish what was queued for them and waits.
func (q *queue) stopWorkers() {
	if q.work != nil {
		close(q.work)
		q.workers.Wait()
		q.work = nil
	}
}

// fatalf builds a fatal error against the current PDU's header.
func (q *queue) fatalf(fes uint16, fei uint32, reason string) *tcp.FatalError {
	h := q.conn.RawHeader()
	return &tcp.FatalError{FES: fes, FEI: fei, Reason: reason, Header: append([]byte(nil), h[:min(len(h), tcp.MaxTermReqData)]...)}
}

// Byte offsets in H2CData for FEI.
const (
	offCCCID = 8
	offTTAG  = 10
)

// overrun handles a host that submitted beyond what the submission queue
// holds: NVMe Base 2.1 3.3.2.5/3.3.2.6 have the controller stop, set
// CSTS.CFS, terminate the connection and end the association. The
// connection ends with a C2HTermReq (PDU sequence error).
func (q *queue) overrun(reason string) error {
	if q.t.quirks.sqOverrunConnOnly {
		q.keepAssoc = true // the deviation: not even the I/O-loss rule ends it
		return q.fatalf(tcp.FESPDUSequenceError, 0, reason)
	}
	q.endAssoc = true
	ctrl := q.ctrl
	ctrl.mu.Lock()
	ctrl.csts |= nvme.CSTSFatal
	ctrl.mu.Unlock()
	return q.fatalf(tcp.FESPDUSequenceError, 0, reason)
}

// admit checks that the host may have one more command outstanding. With
// SQ flow control disabled the host must keep fewer than the queue size
// outstanding (NVMe Base 2.1 3.3.2.5); with it, it must not submit to a
// full queue, one that holds size-1 capsules after the last SQHD reported
// (3.3.2.6). Either way at most slotCap commands are held (MAXCMD, or
// twice the queue size if that is more, plus the AERs): a host that
// stays within the queue rules and MAXCMD never meets that bound.
func (q *queue) admit() error {
	n := int(q.outstanding.Load())
	if q.size > 0 {
		if q.flowOff {
			if n+1 >= int(q.size) {
				return q.overrun("more commands outstanding than the queue size allows (SQ flow control disabled)")
			}
		} else if q.fetched.Load()-q.reported.Load() >= uint64(q.size) {
			return q.overrun("command submitted to a full submission queue")
		}
	}
	if n >= q.slotCap {
		return q.fatalf(tcp.FESPDUSequenceError, 0, "more commands outstanding than the target holds")
	}
	return nil
}

// testHookCapsule, if set by a test before the target starts, runs as
// each capsule arrives, before anything else looks at it.
var testHookCapsule func(q *queue, sqe *nvme.SQE)

func (q *queue) onCapsule(sqe *nvme.SQE) error {
	if testHookCapsule != nil {
		testHookCapsule(q, sqe)
	}
	if ctrl := q.ctrl; ctrl != nil {
		if ctrl.ended.Load() {
			// The association has ended (keep-alive expiry, its admin
			// queue lost, a port taken down): capsules still buffered from
			// the host are not run. This is what the Command Quiesce Time
			// the target reports rests on: a host that retries a write on
			// another path after KATO and CQT must never have it
			// overwritten later by the original (NVMe Base 2.1 9.6).
			return errClose
		}
		// Most commands find the flag already set: a load keeps the
		// cache line the controller's queues share clean.
		if !ctrl.activity.Load() && (!q.t.quirks.tcp2Traffic() || q.countsAsTraffic(sqe)) {
			ctrl.activity.Store(true)
		}
	}
	if q.size > 0 {
		q.fetched.Add(1)
	}
	if err := q.admit(); err != nil {
		return err
	}
	c := q.get()
	q.outstanding.Add(1)
	c.sqe = *sqe
	c.state = stateExec
	c.dw0, c.dw1, c.ploc = 0, 0, 0
	c.ns = nil
	c.st = nil
	if q.qid != 0 {
		c.start = time.Since(q.t.started0)
	}
	c.ddgst = false
	c.fuseReady = false
	c.fuseAbort = 0
	c.peer = nil
	c.xfer, c.recvd = 0, 0
	inLen := uint32(q.conn.DataLen())

	// Fused operations: the second command must follow the first.
	fuse := sqe.Fuse()
	if f := q.fuseFirst; f != nil && fuse != nvme.FuseSecond {
		q.fuseFirst = nil
		q.orphan(f, nvme.StatusAbortFusedMissing)
	}
	if fuse == nvme.FuseSecond && q.fuseFirst == nil {
		st := nvme.StatusAbortFusedMissing
		if q.fuseFailNext {
			st = nvme.StatusAbortFusedFail
		}
		q.fuseFailNext = false
		q.complete(c, st)
		return nil
	}
	q.fuseFailNext = false

	st := q.prepare(c, inLen)
	if q.qid != 0 && q.ctrl != nil {
		c.st = q.statFor(c.ns)
	}
	if st == statusMDTSClose {
		return q.fatalf(tcp.FESDataLimitExceeded, 0, "mdts-close quirk: a command longer than MDTS")
	}
	if st != 0 {
		switch fuse {
		case nvme.FuseFirst:
			q.fuseFailNext = true
		case nvme.FuseSecond:
			f := q.fuseFirst
			q.fuseFirst = nil
			q.orphan(f, nvme.StatusAbortFusedFail)
		}
		q.complete(c, st)
		return nil
	}
	switch fuse {
	case nvme.FuseFirst:
		q.fuseFirst = c
	case nvme.FuseSecond:
		c.peer = q.fuseFirst
		q.fuseFirst.peer = c
		q.fuseFirst = nil
	}
	if c.xfer > 0 && c.h2c {
		if inLen == 0 {
			if q.t.quirks.noR2TSmallWrite && q.qid != 0 && c.xfer <= q.t.icd {
				return nil // the command waits for ever
			}
			return q.askData(c)
		}
		c.setBuf(max(c.xfer, inLen))
		if err := q.conn.ReadData(c.buf); err != nil && !(q.t.quirks.dataDigestIgnored && errors.Is(err, tcp.ErrDataDigest)) {
			if errors.Is(err, tcp.ErrDataDigest) {
				if q.t.dataDigestFatal {
					return err
				}
				q.dataDigestError(c)
				return nil
			}
			return err
		}
	}
	if inLen > c.xfer && c.h2c { // icd-overrun-shifted or -accept (checkSGL)
		if q.t.quirks.icdOverrunShifted {
			copy(c.buf, c.buf[inLen-c.xfer:])
		}
		c.buf = c.buf[:c.xfer]
	}
	// Data for the host gets its buffer when the command runs (ready),
	// not here: a host that announces many reads pins nothing while they
	// wait for a worker.
	q.ready(c)
	return nil
}

// askData sends the R2T for c's data if the R2T budget allows it, and
// otherwise queues c until completions return enough budget. A command
// larger than the whole budget goes when nothing else holds any, and the
// second command of a fused pair whose first already has its data (or
// budget) never waits: the pair holds its budget until both run.
func (q *queue) askData(c *command) error {
	q.r2tMu.Lock()
	if q.r2tWait.head == nil && q.r2tFits(c) {
		q.grantLocked(c)
		q.r2tMu.Unlock()
		return q.sendR2T(c)
	}
	c.state = stateR2TWait
	q.r2tWait.push(c)
	q.r2tMu.Unlock()
	return nil
}

func (q *queue) r2tFits(c *command) bool {
	if int(c.xfer) <= q.r2tFree || q.r2tFree >= q.t.r2tBuffer {
		return true
	}
	p := c.peer
	return c.sqe.Fuse() == nvme.FuseSecond && p != nil && p.state != stateR2TWait
}

// grantLocked gives c its budget and buffer and makes it wait for data.
func (q *queue) grantLocked(c *command) {
	q.r2tFree -= int(c.xfer)
	c.held = c.xfer
	c.setBuf(c.xfer)
	c.state = stateData
	if q.t.cfg.R2TTimeout > 0 {
		c.r2tAt = time.Now()
	}
	q.r2tOut.push(c)
	q.r2tOutN.Add(1)
}

func (q *queue) sendR2T(c *command) error {
	c.r2t = tcp.R2T{CCCID: c.sqe.CID, TTAG: c.ttag, R2TO: 0, R2TL: c.xfer}
	if q.t.quirks.r2tCCCIDWrong {
		c.r2t.CCCID++
	}
	if q.t.quirks.r2tPastMAXR2T && c.xfer >= 8 {
		// Two R2Ts at once, each for half of the data; onH2CData takes
		// each half as a transfer of its own.
		c.r2t.R2TL = c.xfer / 2 &^ 3
		second := tcp.R2T{CCCID: c.r2t.CCCID, TTAG: c.ttag, R2TO: c.r2t.R2TL, R2TL: c.xfer - c.r2t.R2TL}
		return q.conn.SendPair(&c.r2t, nil, &second, nil)
	}
	if q.t.quirks.r2tMisaligned && c.xfer >= 8 {
		// The first R2T asks for an odd number of bytes; onH2CData
		// sends the second, for the rest, once they are in.
		c.r2t.R2TL = c.xfer/2 | 1
	}
	if q.t.quirks.r2tWindowRepeats && q.maxR2T > 0 {
		dup := c.r2t // a second R2T asking for the same data again
		return q.conn.SendPair(&c.r2t, nil, &dup, nil)
	}
	if q.t.quirks.r2tReservedSet {
		return q.sendR2TReservedSet(&c.r2t)
	}
	return q.conn.Send(&c.r2t, nil)
}

// releaseR2T returns c's budget and sends the R2Ts it makes room for. It
// runs on whichever goroutine completes c.
func (q *queue) releaseR2T(c *command) {
	var granted *command
	q.r2tMu.Lock()
	q.r2tFree += int(c.held)
	c.held = 0
	for !q.r2tStop && q.r2tWait.head != nil && q.r2tFits(q.r2tWait.head) {
		w := q.r2tWait.head
		q.r2tWait.remove(w)
		q.grantLocked(w)
		w.grantNext = granted
		granted = w
	}
	q.r2tMu.Unlock()
	for granted != nil {
		w := granted
		granted, w.grantNext = w.grantNext, nil
		_ = q.sendR2T(w) // an error ends the connection: the receive loop sees it
	}
}

// oldestR2T returns when the oldest R2T still waiting for data went out.
func (q *queue) oldestR2T() time.Time {
	q.r2tMu.Lock()
	defer q.r2tMu.Unlock()
	if q.r2tOut.head == nil {
		return time.Now()
	}
	return q.r2tOut.head.r2tAt
}

// dataDigestError fails a command whose data arrived damaged.
func (q *queue) dataDigestError(c *command) {
	if c.peer != nil {
		p := c.peer
		c.peer, p.peer = nil, nil
		q.orphan(p, nvme.StatusAbortFusedFail)
	}
	if q.fuseFirst == c {
		q.fuseFirst = nil
		q.fuseFailNext = true
	}
	q.complete(c, nvme.StatusTransientTransport)
	if q.t.quirks.digestErrorCloses {
		q.stopped = true
		_ = q.conn.Uncork()
		_ = q.conn.Close()
	}
}

// orphan fails a fused command whose partner failed or never came.
func (q *queue) orphan(f *command, st nvme.Status) {
	if f == nil {
		return
	}
	f.peer = nil
	q.r2tMu.Lock()
	switch f.state {
	case stateData:
		f.fuseAbort = st // completes when its data is in
		q.r2tMu.Unlock()
		return
	case stateR2TWait:
		// No R2T went out for it: it fails now, with no data to wait for.
		q.r2tWait.remove(f)
		f.state = stateExec
	}
	q.r2tMu.Unlock()
	q.complete(f, st)
}

func (q *queue) onH2CData(d *tcp.H2CData) error {
	if int(d.TTAG) >= len(q.cmds) {
		return q.fatalf(tcp.FESInvalidHeaderField, offTTAG, "H2CData for an unknown transfer tag")
	}
	c := q.cmds[d.TTAG]
	q.r2tMu.Lock()
	st := c.state
	q.r2tMu.Unlock()
	if st != stateData {
		if q.t.quirks.h2cAfterLastIgnored && c.xfer > 0 && c.recvd == c.xfer && c.sqe.CID == d.CCCID {
			return nil // Next discards its data
		}
		return q.fatalf(tcp.FESInvalidHeaderField, offTTAG, "H2CData for an unknown transfer tag")
	}
	if q.t.quirks.r2tInOrderOnly && q.olderR2TOutstanding(c) {
		return q.fatalf(tcp.FESPDUSequenceError, 0, "H2CData for an R2T sent after one still unanswered")
	}
	if c.sqe.CID != d.CCCID && !q.t.quirks.r2tCCCIDWrong {
		return q.fatalf(tcp.FESInvalidHeaderField, offCCCID, "H2CData CCCID does not match the R2T")
	}
	// The one R2T asks for the whole transfer (R2TO 0, R2TL xfer), so
	// data outside [0, xfer) is out of its range (FES 04h), and data
	// inside it that does not continue where the last PDU ended is a
	// non-contiguous H2CData PDU: PDU Sequence Error (NVMe/TCP 1.0
	// 3.3.2.2).
	if uint64(d.DATAO)+uint64(d.DATAL) > uint64(c.xfer) {
		return q.fatalf(tcp.FESDataOutOfRange, 0, "H2CData outside the data the R2T asked for")
	}
	half := c.r2t.R2TL // the end of the first R2T under r2t-exceeds-maxr2t or r2t-misaligned
	split := (q.t.quirks.r2tPastMAXR2T || q.t.quirks.r2tMisaligned) && half < c.xfer
	if split && d.DATAO < half && d.DATAO+d.DATAL > half {
		return q.fatalf(tcp.FESDataOutOfRange, 0, "H2CData outside the data the R2T asked for")
	}
	if d.DATAO != c.recvd {
		return q.fatalf(tcp.FESPDUSequenceError, 0, "H2CData not contiguous with the data before it")
	}
	if err := q.conn.ReadData(c.buf[d.DATAO : d.DATAO+d.DATAL]); err != nil {
		if !errors.Is(err, tcp.ErrDataDigest) || q.t.dataDigestFatal {
			return err
		}
		c.ddgst = !q.t.quirks.dataDigestIgnored
	}
	c.recvd += d.DATAL
	done := c.recvd == c.xfer
	if q.t.quirks.shortH2CDataFails && !d.Last && d.DATAL < q.t.maxH2C {
		c.fuseAbort = nvme.StatusDataTransferError // completes with it once the data is in
	}
	if d.Last != (done || split && c.recvd == half) {
		return q.fatalf(tcp.FESInvalidHeaderField, 1, "H2CData LAST_PDU flag does not match the end of the data")
	}
	if !done {
		if split && q.t.quirks.r2tMisaligned && c.recvd == half {
			second := tcp.R2T{CCCID: c.r2t.CCCID, TTAG: c.ttag, R2TO: half, R2TL: c.xfer - half}
			return q.conn.Send(&second, nil)
		}
		return nil
	}
	q.r2tMu.Lock()
	q.r2tOut.remove(c)
	q.r2tOutN.Add(-1)
	c.state = stateExec
	q.r2tMu.Unlock()
	if c.ddgst {
		q.dataDigestError(c)
		return nil
	}
	if c.fuseAbort != 0 {
		q.complete(c, c.fuseAbort)
		return nil
	}
	q.ready(c)
	return nil
}

// ready runs a command whose data is all in.
func (q *queue) ready(c *command) {
	switch c.sqe.Fuse() {
	case nvme.FuseFirst, nvme.FuseSecond:
		c.fuseReady = true
		p := c.peer
		if p == nil || !p.fuseReady {
			return
		}
		first, second := c, p
		if c.sqe.Fuse() == nvme.FuseSecond {
			first, second = p, c
		}
		if first.ns == nil || second.ns == nil {
			// Only NVM commands with a namespace fuse (prepare refuses
			// the rest); never run a pair without one.
			first.peer, second.peer = nil, nil
			first.ploc = 1
			q.complete(first, nvme.StatusInvalidField)
			q.complete(second, nvme.StatusAbortFusedFail)
			return
		}
		first.peer = second
		q.dispatch(first)
		return
	}
	if c.sqe.Opcode == nvme.AdminFabrics {
		q.needBuf(c)
		q.execFabrics(c)
		return
	}
	if q.qid == 0 {
		q.needBuf(c)
		q.execAdmin(c)
		return
	}
	q.dispatch(c)
}

// needBuf gives a command that sends data to the host its buffer, just
// before it runs.
func (q *queue) needBuf(c *command) {
	if c.xfer > 0 && c.buf == nil {
		c.setBuf(c.xfer)
	}
}

// dispatch runs an I/O command inline, or on a worker if its backend may
// block.
func (q *queue) dispatch(c *command) {
	if q.abortIfEnded(c) {
		return
	}
	if c.ns != nil && c.ns.blocking {
		if !q.wstarted {
			q.wstarted = true
			q.work = make(chan *command, q.slotCap)
			for range 4 {
				q.workers.Add(1)
				go q.worker()
			}
		}
		q.work <- c
		return
	}
	q.needBuf(c)
	if p := c.peer; p != nil {
		q.needBuf(p)
	}
	q.execIO(c)
}

func (q *queue) worker() {
	defer q.workers.Done()
	for c := range q.work {
		q.runOnWorker(c)
	}
}

func (q *queue) runOnWorker(c *command) {
	defer q.recoverPanic()
	if q.abortIfEnded(c) {
		return
	}
	q.needBuf(c)
	if p := c.peer; p != nil {
		q.needBuf(p)
	}
	q.execIO(c)
}

// abortIfEnded completes c (and its fused partner) as aborted, without
// running it, once its association has ended: an I/O command whose data
// arrived just before, or one waiting for a worker, must not change the
// namespace afterwards (see onCapsule). A command already running
// finishes; the CQT the target reports covers that.
func (q *queue) abortIfEnded(c *command) bool {
	if q.ctrl == nil || !q.ctrl.ended.Load() {
		return false
	}
	if p := c.peer; p != nil {
		c.peer = nil
		q.complete(p, nvme.StatusAbortSQDeleted)
	}
	q.complete(c, nvme.StatusAbortSQDeleted)
	return true
}

func (q *queue) sqhdValue() uint16 {
	if q.flowOff {
		// NVMe Base 2.2 3.3.2.5: FFFFh in the Connect response says SQ
		// flow control is off; "in all subsequent response capsules for
		// that queue pair, the controller shall clear the SQHD field to
		// 0h" (suites FAB-CONN-034).
		if q.flowOffAnswered.Load() && !q.t.quirks.sqhdFFFFAfterConnect {
			return 0
		}
		return 0xFFFF
	}
	if q.size == 0 {
		return 0
	}
	f := q.fetched.Load()
	for {
		r := q.reported.Load()
		if f <= r || q.reported.CompareAndSwap(r, f) {
			break
		}
	}
	if q.t.quirks.sqhdFrozen && q.qid != 0 {
		// The head reported never moves; the target still counts the
		// entries freed as reported, so it does not take a host that
		// trusts them for one that overran the queue.
		return 0
	}
	return uint16(f % uint64(q.size))
}

// Statuses that may succeed when retried go without DNR.
func withDNR(st nvme.Status) nvme.Status {
	switch st.Code() {
	case nvme.StatusSuccess, nvme.StatusTransientTransport, nvme.StatusAbortRequested,
		nvme.StatusNamespaceNotReady, nvme.StatusCommandInterrupted:
		return st
	}
	if st.SCT() == nvme.SCTPath {
		return st
	}
	return st | nvme.StatusDNR
}

// complete sends the response capsule and frees the slot.
func (q *queue) complete(c *command, st nvme.Status) {
	st = withDNR(st)
	if !st.Success() {
		st = q.failed(c, st)
	}
	c.resp.CQE = nvme.CQE{DW0: c.dw0, DW1: c.dw1, SQHD: q.sqhdValue(), SQID: q.qid, CID: c.sqe.CID, Status: st}
	if c.st != nil {
		c.st.record(c, st)
	}
	q.outstanding.Add(-1)
	_ = q.conn.Send(&c.resp, nil)
	q.put(c)
}

// failed records a failed command in the Error Information log of its
// controller and returns the status to send: with the More bit set when
// there is an entry to find (NVMe Base 2.1: More "more status information
// for this command as part of the Error Information log"). Commands
// before Connect have no controller, hence no log and no More.
func (q *queue) failed(c *command, st nvme.Status) nvme.Status {
	qk := &q.t.quirks
	if qk.connectNoDNR && c.sqe.Opcode == nvme.AdminFabrics && c.sqe.FCType() == nvme.FabricsConnect {
		st &^= nvme.StatusDNR
	}
	switch code := st.Code(); {
	case qk.lbaRangeInvalidField && code == nvme.StatusLBAOutOfRange,
		qk.invalidNSInvalidField && code == nvme.StatusInvalidNamespace,
		qk.ioOpcodeInvalidField && code == nvme.StatusInvalidOpcode && q.qid != 0:
		st = st&^0x7FF | nvme.StatusInvalidField
	}
	if q.ctrl == nil {
		return st
	}
	if !qk.noErrorLog {
		q.ctrl.logError(q.qid, &c.sqe, st, c.ploc)
	}
	if qk.errorLogWithoutMore {
		return st
	}
	return st | nvme.StatusMore
}

// sendData sends data to the host in C2HData PDUs of at most c2hSize
// bytes. With success set the last one carries SUCCESS and no response
// follows.
func (q *queue) sendData(c *command, data []byte, success bool) error {
	max := int(q.t.c2hSize)
	for off, n := 0, 0; off < len(data); off += n {
		n = min(max, len(data)-off)
		if off == 0 && q.t.quirks.c2hMisaligned && len(data) > 8 {
			n = min(n, len(data)/2|1) // odd: neither DATAL nor the next DATAO a dword multiple
		}
		last := off+n == len(data)
		c.c2h = tcp.C2HData{CCCID: c.sqe.CID, DATAO: uint32(off), DATAL: uint32(n), Last: last && !q.t.quirks.c2hNoLastPDU, Success: last && success}
		if err := q.conn.Send(&c.c2h, data[off:off+n]); err != nil {
			return err
		}
	}
	return nil
}

// checkSGL validates the data pointer against the data the command moves
// (want bytes, h2c direction) and the in-capsule data received.
func (q *queue) checkSGL(c *command, want uint32, h2c bool, inLen uint32) nvme.Status {
	d := &c.sqe.DPTR
	if c.sqe.Opcode == nvme.AdminFabrics && !q.fabricsPSDTOK(c.sqe.Flags) ||
		c.sqe.Opcode != nvme.AdminFabrics && c.sqe.Flags&nvme.PSDTMask != nvme.PSDTSGL {
		c.ploc = 1
		return nvme.StatusInvalidField
	}
	c.ploc = 24
	if want == 0 {
		if inLen > 0 {
			return nvme.StatusSGLInvalidDataLength
		}
		return 0
	}
	switch d.Type {
	case nvme.SGLDataBlockOffset:
		if !h2c {
			return nvme.StatusInvalidField
		}
		if d.Addr != 0 && !q.t.quirks.sglOffsetIgnored {
			return nvme.StatusSGLInvalidOffset
		}
		if d.Length != inLen && !(d.Length < inLen && (q.t.quirks.icdOverrunShifted || q.t.quirks.icdOverrunAccept)) {
			return nvme.StatusSGLInvalidDataLength
		}
	case nvme.SGLTransportDataBlock:
		if inLen > 0 {
			return nvme.StatusSGLInvalidDataLength
		}
	default:
		// NVMe/TCP 1.0 3.3.2: the two descriptors above are the ones the
		// transport supports; anything else is SGL Descriptor Type
		// Invalid, unless the sgl-unsupported-type-accepted quirk takes
		// it for a Transport SGL Data Block.
		if !q.t.quirks.sglAnyType {
			return nvme.StatusSGLInvalidType
		}
		if inLen > 0 {
			return nvme.StatusSGLInvalidDataLength
		}
	}
	// A data SGL longer than the transfer is processed normally (SGLS bit
	// 18, LLDTS, is set): only want bytes move. Hosts rely on it; Linux
	// sends a Dataset Management of one range with a 4 KiB buffer, so a
	// target that refuses it fails every discard, fstrim and mkfs.
	switch qk := &q.t.quirks; {
	case d.Length > want && qk.sglLongerWrongStatus:
		return nvme.StatusInvalidField
	case d.Length > want && qk.sglLongerRefused:
		return nvme.StatusSGLInvalidDataLength
	case d.Length >= want:
	case !h2c && qk.sglShortAccepted:
	default:
		return nvme.StatusSGLInvalidDataLength
	}
	c.ploc = 0
	c.xfer = want
	c.h2c = h2c
	return 0
}

// prepare checks a command before any data moves and sets c.xfer.
//
// Only NVM commands fuse (Compare and Write, checked in prepareIO): FUSE
// set on a Fabrics or admin command is an Invalid Field in Command with
// the flags byte (1) as the parameter error location, refused here before
// onCapsule would take it for half of a pair. A Connect may not fail with
// Invalid Field (NVMe Base 2.1 6.3), so a fused Connect gets Connect
// Invalid Parameters pointing at the same byte.
func (q *queue) prepare(c *command, inLen uint32) nvme.Status {
	s := &c.sqe
	if s.Opcode == nvme.AdminFabrics {
		if s.Fuse() != 0 {
			c.ploc = offFlags
			if s.FCType() == nvme.FabricsConnect {
				c.dw0 = nvme.ConnectInvalidParam(false, offFlags)
				return nvme.StatusConnectInvalidParameters
			}
			return nvme.StatusInvalidField
		}
		return q.prepareFabrics(c, inLen)
	}
	if q.ctrl == nil {
		if q.t.quirks.preConnectCommandsOK && s.Opcode == nvme.AdminIdentify {
			return q.checkSGL(c, nvme.IdentifyDataSize, false, inLen)
		}
		return nvme.StatusCommandSequenceError
	}
	if q.authPending() {
		return nvme.StatusAuthenticationRequired
	}
	if !q.ctrl.enabled.Load() && !(q.qid == 0 && q.t.quirks.adminBeforeEnable) && !(q.qid != 0 && q.t.quirks.ioqRunsDisabled) &&
		!(q.qid != 0 && q.t.quirks.disabledWriteApplied && s.Opcode == nvme.CmdWrite) {
		return nvme.StatusCommandSequenceError
	}
	if q.qid == 0 {
		if s.Fuse() != 0 {
			c.ploc = offFlags
			return nvme.StatusInvalidField
		}
		return q.prepareAdmin(c, inLen)
	}
	return q.prepareIO(c, inLen)
}

// offFlags is the SQE byte of FUSE and PSDT.
const offFlags = 1

func (q *queue) prepareFabrics(c *command, inLen uint32) nvme.Status {
	switch c.sqe.FCType() {
	case nvme.FabricsConnect:
		if q.ctrl != nil && !q.t.quirks.connectDuplicateAccepted {
			return nvme.StatusCommandSequenceError
		}
		st := q.checkSGL(c, nvme.ConnectDataSize, true, inLen)
		if st == nvme.StatusSGLInvalidDataLength && q.t.quirks.connectShortInvalidField {
			st = nvme.StatusInvalidField // as SPDK answers Connect data of the wrong length
		}
		return st
	case nvme.FabricsPropertyGet, nvme.FabricsPropertySet:
		if q.ctrl == nil {
			if q.t.quirks.preConnectCommandsOK && c.sqe.FCType() == nvme.FabricsPropertyGet {
				return q.checkSGL(c, 0, false, inLen)
			}
			return nvme.StatusCommandSequenceError
		}
		if q.qid != 0 && !(c.sqe.FCType() == nvme.FabricsPropertyGet && q.t.quirks.ioqPropertyGetOK) &&
			!(c.sqe.FCType() == nvme.FabricsPropertySet && q.t.quirks.ioqPropertySetOK) {
			// NVMe Base 2.2 6, Fig. 541 note 3: a Fabrics command not
			// supported on an I/O queue "shall be aborted with a status
			// code of Invalid Field in Command" (suites FAB-IOQ-011).
			return nvme.StatusInvalidField
		}
		if q.authPending() {
			return nvme.StatusAuthenticationRequired
		}
		return q.checkSGL(c, 0, false, inLen)
	case nvme.FabricsDisconnect:
		if q.ctrl == nil {
			return nvme.StatusCommandSequenceError
		}
		if q.qid == 0 && !q.t.quirks.adminDisconnectAccepted && !(q.ctrl.disc && q.t.quirks.discDisconnectOK) {
			// NVMe Base 2.2 6.4: "If a Disconnect command is submitted on
			// an Admin Queue, then the controller shall abort the command
			// with a status code of Invalid Queue Type" (a discovery
			// controller has only its Admin Queue).
			return nvme.StatusInvalidQueueType
		}
		if q.authPending() {
			// 3.3.2.3: all commands but the authentication ones.
			return nvme.StatusAuthenticationRequired
		}
		if recfmt := uint16(c.sqe.CDW10); recfmt != 0 && !q.t.quirks.disconnectRECFMTIgnored {
			// NVMe Base 2.2 6.4 Fig. 550: "If the NVM subsystem does not
			// support the value specified, then a status code of
			// Incompatible Format shall be returned" (suites FAB-DCON-001).
			c.ploc = nvme.ConnectOffRECFMT
			return nvme.StatusConnectIncompatibleFormat
		}
		return q.checkSGL(c, 0, false, inLen)
	case nvme.FabricsAuthSend, nvme.FabricsAuthReceive:
		return q.prepareAuth(c, inLen)
	}
	if q.ctrl == nil {
		return nvme.StatusCommandSequenceError
	}
	c.ploc = 4
	if c.sqe.FCType() >= fctypeVendorSpecific || q.t.quirks.fctypeReservedInvalidOpcode {
		return nvme.StatusInvalidOpcode // a vendor specific command we do not have
	}
	// NVMe Base 2.2 4.1.2 Fig. 94: "If this field is set to a reserved
	// value, then the command shall be aborted with a status code of
	// Invalid Field in Command."
	return nvme.StatusInvalidField
}

// fctypeVendorSpecific is the first vendor specific Fabrics Command Type
// (NVMe Base 2.2 Fig. 541: C0h to FFh); the other unlisted ones are
// reserved.
const fctypeVendorSpecific = 0xC0
