package target

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Command slot states; only the receive goroutine changes them.
const (
	stateFree = iota
	stateData // waiting for H2CData after an R2T
	stateExec // executing or completing
)

// adminCapsuleData is the in-capsule data accepted on an admin queue (and
// before Connect), as the Linux host's NVME_TCP_ADMIN_CCSZ.
const adminCapsuleData = 8192

// bufKeep is the largest data buffer a command slot keeps between
// commands; larger ones go back to a shared pool.
const bufKeep = 128 << 10

// command is one preallocated command slot. Its index is the R2T transfer
// tag.
type command struct {
	q     *queue
	ttag  uint16
	state uint8
	sqe   nvme.SQE

	buf   []byte // data, len == xfer
	own   []byte // the slot's own buffer, reused
	big   *[]byte
	xfer  uint32
	h2c   bool
	recvd uint32
	ddgst bool

	ns       *namespace
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

var bigPool sync.Pool // *[]byte of varying capacity

func (c *command) setBuf(n uint32) {
	if n <= bufKeep {
		if uint32(cap(c.own)) < n {
			c.own = make([]byte, n, max(n, 4096))
		}
		c.buf = c.own[:n]
		return
	}
	if p, _ := bigPool.Get().(*[]byte); p != nil && uint32(cap(*p)) >= n {
		c.big = p
	} else {
		b := make([]byte, n)
		c.big = &b
	}
	c.buf = (*c.big)[:n]
}

func (c *command) releaseBuf() {
	if c.big != nil {
		bigPool.Put(c.big)
		c.big = nil
	}
	c.buf = nil
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
	sqhd    atomic.Uint32
	flowOff bool

	cmds        []*command
	free        chan *command
	outstanding atomic.Int32
	limit       int32

	fuseFirst    *command // waiting for its second command
	fuseFailNext bool

	work     chan *command
	workers  sync.WaitGroup
	wstarted bool

	scratch []byte // admin data, receive goroutine only

	auth *authState // DH-HMAC-CHAP, when the host must authenticate

	// statistics for the SMART log
	readCmds, writeCmds, bytesRead, bytesWritten atomic.Uint64
}

func newQueue(t *Target, p *port, nc net.Conn) *queue {
	w := tcp.NewAsyncWriter(nc, minBacklog)
	q := &queue{t: t, port: p, nc: nc, w: w, conn: tcp.NewConn(w, true, tcp.Config{ReadBufferSize: readBuffer}), limit: 32}
	q.grow(32)
	return q
}

// grow makes the queue hold n command slots (twice the queue size, as
// nvmet: completed slots go back to the free list just after the response
// is queued, so a host that reuses a slot at once still finds one).
func (q *queue) grow(n int) {
	free := make(chan *command, n)
	if q.free != nil {
	drain:
		for {
			select {
			case c := <-q.free:
				free <- c
			default:
				break drain
			}
		}
	}
	for len(q.cmds) < n {
		c := &command{q: q, ttag: uint16(len(q.cmds))}
		q.cmds = append(q.cmds, c)
		free <- c
	}
	q.free = free
}

func (q *queue) get() *command {
	select {
	case c := <-q.free:
		return c
	default:
		return nil
	}
}

func (q *queue) put(c *command) {
	c.releaseBuf()
	c.peer = nil
	select {
	case q.free <- c:
	default:
	}
}

// readBuffer is a connection's receive buffer. 16 KiB holds a QD32 burst
// of capsules and keeps an idle connection small (1000 idle associations
// are one of the limits tests); data larger than the buffer is read
// straight into the command's buffer anyway.
const readBuffer = 16 << 10

// minBacklog is the least a connection queues for a host that is slow to
// read before its receive loop waits (see tcp.AsyncWriter).
const minBacklog = 4 << 20

// errClose ends the connection without a TermReq (Disconnect).
var errClose = errors.New("target: close")

func (q *queue) serve() {
	defer q.cleanup()
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
	if _, err := q.conn.ControllerInitialize(pol); err != nil {
		q.fail(err)
		return
	}
	_ = q.nc.SetReadDeadline(setupDeadline)
	q.conn.SetLimits(max(adminCapsuleData, q.t.icd), q.t.maxH2C)
	corked := false
	for {
		if q.conn.Buffered() > 0 {
			if !corked {
				q.conn.Cork()
				corked = true
			}
		} else {
			if corked {
				_ = q.conn.Uncork()
				corked = false
			}
			switch {
			case q.ctrl == nil && !setupDeadline.IsZero():
				// still bounded by the set-up deadline
			case cfg.IdleTimeout > 0:
				_ = q.nc.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
			case !setupDeadline.IsZero():
				_ = q.nc.SetReadDeadline(time.Time{})
				setupDeadline = time.Time{}
			}
		}
		p, err := q.conn.Next()
		if err == nil {
			switch v := p.(type) {
			case *tcp.CapsuleCmd:
				err = q.onCapsule(&v.SQE)
			case *tcp.H2CData:
				err = q.onH2CData(v)
			case *tcp.TermReq:
				q.t.log.Info("host terminated the connection", "fes", v.FES, "fei", v.FEI)
				return
			}
		}
		if err != nil {
			if corked {
				_ = q.conn.Uncork()
			}
			q.fail(err)
			return
		}
	}
}

func (q *queue) fail(err error) {
	var fe *tcp.FatalError
	switch {
	case errors.As(err, &fe):
		q.t.log.Warn("fatal transport error", "remote", q.nc.RemoteAddr().String(), "err", fe.Error())
		_ = q.conn.Terminate(fe)
	case errors.Is(err, errClose), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		q.t.log.Debug("connection ended", "remote", q.nc.RemoteAddr().String(), "err", err)
	}
}

func (q *queue) cleanup() {
	q.conn.Close()
	if q.work != nil {
		close(q.work)
		q.workers.Wait()
	}
	if c := q.ctrl; c != nil {
		if q.qid == 0 {
			c.kill("admin queue closed")
		} else {
			c.removeQueue(q)
		}
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

func (q *queue) advanceSQHD() {
	if q.size == 0 {
		return
	}
	h := q.sqhd.Load() + 1
	if h >= q.size {
		h = 0
	}
	q.sqhd.Store(h)
}

func (q *queue) onCapsule(sqe *nvme.SQE) error {
	q.advanceSQHD()
	if q.outstanding.Load() >= q.limit {
		// The host submitted more commands than the queue holds: a PDU
		// sequence error (the spec leaves the reaction to the controller).
		return q.fatalf(tcp.FESPDUSequenceError, 0, "more outstanding commands than the queue size")
	}
	c := q.get()
	if c == nil {
		// There are twice as many slots as the queue holds and fewer
		// than limit are outstanding, so a worker is about to free one.
		c = <-q.free
	}
	q.outstanding.Add(1)
	c.sqe = *sqe
	c.state = stateExec
	c.dw0, c.dw1, c.ploc = 0, 0, 0
	c.ns = nil
	c.ddgst = false
	c.fuseReady = false
	c.fuseAbort = 0
	c.peer = nil
	c.xfer, c.recvd = 0, 0
	if q.ctrl != nil {
		q.ctrl.activity.Store(true)
	}
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
	if c.xfer > 0 {
		c.setBuf(c.xfer)
		if c.h2c {
			if inLen > 0 {
				if err := q.conn.ReadData(c.buf); err != nil {
					if errors.Is(err, tcp.ErrDataDigest) {
						if q.t.cfg.DataDigestFatal {
							return err
						}
						q.dataDigestError(c)
						return nil
					}
					return err
				}
			} else {
				c.state = stateData
				c.r2t = tcp.R2T{CCCID: sqe.CID, TTAG: c.ttag, R2TO: 0, R2TL: c.xfer}
				return q.conn.Send(&c.r2t, nil)
			}
		}
	}
	q.ready(c)
	return nil
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
}

// orphan fails a fused command whose partner failed or never came.
func (q *queue) orphan(f *command, st nvme.Status) {
	if f == nil {
		return
	}
	f.peer = nil
	if f.state == stateData {
		f.fuseAbort = st // completes when its data is in
		return
	}
	q.complete(f, st)
}

func (q *queue) onH2CData(d *tcp.H2CData) error {
	if int(d.TTAG) >= len(q.cmds) || q.cmds[d.TTAG].state != stateData {
		return q.fatalf(tcp.FESInvalidHeaderField, offTTAG, "H2CData for an unknown transfer tag")
	}
	c := q.cmds[d.TTAG]
	if c.sqe.CID != d.CCCID {
		return q.fatalf(tcp.FESInvalidHeaderField, offCCCID, "H2CData CCCID does not match the R2T")
	}
	if d.DATAO != c.recvd || uint64(d.DATAO)+uint64(d.DATAL) > uint64(c.xfer) {
		return q.fatalf(tcp.FESDataOutOfRange, 0, "H2CData outside the data the R2T asked for")
	}
	if err := q.conn.ReadData(c.buf[d.DATAO : d.DATAO+d.DATAL]); err != nil {
		if !errors.Is(err, tcp.ErrDataDigest) || q.t.cfg.DataDigestFatal {
			return err
		}
		c.ddgst = true
	}
	c.recvd += d.DATAL
	done := c.recvd == c.xfer
	if d.Last != done {
		return q.fatalf(tcp.FESInvalidHeaderField, 1, "H2CData LAST_PDU flag does not match the end of the data")
	}
	if !done {
		return nil
	}
	c.state = stateExec
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
		first.peer = second
		q.dispatch(first)
		return
	}
	if c.sqe.Opcode == nvme.AdminFabrics {
		q.execFabrics(c)
		return
	}
	if q.qid == 0 {
		q.execAdmin(c)
		return
	}
	q.dispatch(c)
}

// dispatch runs an I/O command inline, or on a worker if its backend may
// block.
func (q *queue) dispatch(c *command) {
	if c.ns != nil && c.ns.blocking {
		if !q.wstarted {
			q.wstarted = true
			q.work = make(chan *command, len(q.cmds))
			for range 4 {
				q.workers.Add(1)
				go q.worker()
			}
		}
		q.work <- c
		return
	}
	q.execIO(c)
}

func (q *queue) worker() {
	defer q.workers.Done()
	for c := range q.work {
		q.execIO(c)
	}
}

func (q *queue) sqhdValue() uint16 {
	if q.flowOff {
		return 0xFFFF
	}
	return uint16(q.sqhd.Load())
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
	c.resp.CQE = nvme.CQE{DW0: c.dw0, DW1: c.dw1, SQHD: q.sqhdValue(), SQID: q.qid, CID: c.sqe.CID, Status: st}
	if !st.Success() && q.ctrl != nil {
		q.ctrl.logError(q.qid, &c.sqe, st, c.ploc)
	}
	q.outstanding.Add(-1)
	_ = q.conn.Send(&c.resp, nil)
	q.put(c)
}

// sendData sends data to the host in C2HData PDUs of at most c2hSize
// bytes. With success set the last one carries SUCCESS and no response
// follows.
func (q *queue) sendData(c *command, data []byte, success bool) error {
	max := int(q.t.c2hSize)
	for off := 0; off < len(data); off += max {
		n := min(max, len(data)-off)
		last := off+n == len(data)
		c.c2h = tcp.C2HData{CCCID: c.sqe.CID, DATAO: uint32(off), DATAL: uint32(n), Last: last, Success: last && success}
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
	if c.sqe.Flags&nvme.PSDTMask != nvme.PSDTSGL {
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
		if d.Addr != 0 {
			return nvme.StatusSGLInvalidOffset
		}
		if d.Length != inLen {
			return nvme.StatusSGLInvalidDataLength
		}
	case nvme.SGLTransportDataBlock:
		if inLen > 0 {
			return nvme.StatusSGLInvalidDataLength
		}
	default:
		return nvme.StatusSGLInvalidType
	}
	if d.Length != want {
		return nvme.StatusSGLInvalidDataLength
	}
	c.ploc = 0
	c.xfer = want
	c.h2c = h2c
	return 0
}

// prepare checks a command before any data moves and sets c.xfer.
func (q *queue) prepare(c *command, inLen uint32) nvme.Status {
	s := &c.sqe
	if s.Opcode == nvme.AdminFabrics {
		return q.prepareFabrics(c, inLen)
	}
	if q.ctrl == nil {
		return nvme.StatusCommandSequenceError
	}
	if q.authPending() {
		return nvme.StatusAuthenticationRequired
	}
	if !q.ctrl.enabled.Load() {
		return nvme.StatusCommandSequenceError
	}
	if q.qid == 0 {
		return q.prepareAdmin(c, inLen)
	}
	return q.prepareIO(c, inLen)
}

func (q *queue) prepareFabrics(c *command, inLen uint32) nvme.Status {
	switch c.sqe.FCType() {
	case nvme.FabricsConnect:
		if q.ctrl != nil {
			return nvme.StatusCommandSequenceError
		}
		return q.checkSGL(c, nvme.ConnectDataSize, true, inLen)
	case nvme.FabricsPropertyGet, nvme.FabricsPropertySet:
		if q.ctrl == nil {
			return nvme.StatusCommandSequenceError
		}
		if q.qid != 0 {
			return nvme.StatusInvalidOpcode
		}
		if q.authPending() {
			return nvme.StatusAuthenticationRequired
		}
		return q.checkSGL(c, 0, false, inLen)
	case nvme.FabricsDisconnect:
		if q.ctrl == nil {
			return nvme.StatusCommandSequenceError
		}
		return q.checkSGL(c, 0, false, inLen)
	case nvme.FabricsAuthSend, nvme.FabricsAuthReceive:
		return q.prepareAuth(c, inLen)
	}
	if q.ctrl == nil {
		return nvme.StatusCommandSequenceError
	}
	c.ploc = 4
	return nvme.StatusInvalidOpcode
}
