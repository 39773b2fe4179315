package initiator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Dir is the direction of a command's data.
type Dir uint8

// Data directions.
const (
	NoData         Dir = iota // no data transfer
	ToController              // host to controller (write): in-capsule or R2T/H2CData
	FromController            // controller to host (read): C2HData
)

// ErrClosed is the transport error of requests failed because their queue
// was closed by the host.
var ErrClosed = errors.New("initiator: queue closed")

// ErrTimeout is the transport error of a queue on which a command timed
// out.
var ErrTimeout = errors.New("initiator: command timed out")

// ShortTransferError is the error of a command the controller completed
// successfully without moving all of its data: a read whose C2HData did
// not cover the buffer, or a write whose R2Ts did not ask for all of it.
// NVMe/TCP 1.0 3.3.2.1 and 3.3.2.2 have a transfer run "to the end of the
// Command Data Buffer", so the host cannot report success: the buffer
// would hold stale bytes, or the target never had the data. The
// connection is fine, so only the command fails; its CQE status is set
// to Data Transfer Error (as for a data digest error), which Unwrap
// returns. A command whose data length is an allocation length (the
// controller may return less) sets Request.AllowShort instead.
type ShortTransferError struct {
	QID, CID  uint16
	Dir       Dir
	Got, Want int
}

func (e *ShortTransferError) Error() string {
	what := "received"
	if e.Dir == ToController {
		what = "requested by R2T"
	}
	return fmt.Sprintf("nvme/tcp queue %d: command cid %d completed with success but only %d of its %d data bytes were %s", e.QID, e.CID, e.Got, e.Want, what)
}

// Unwrap returns the status the host gives the command.
func (e *ShortTransferError) Unwrap() error { return nvme.StatusDataTransferError }

// ErrFusedDepth is returned by SubmitFused on a queue that can never have
// the two commands of a fused operation in flight at once.
var ErrFusedDepth = errors.New("initiator: queue depth below 2 cannot hold a fused pair")

// TransportError reports that a command failed because its queue's
// connection failed (or timed out, or was closed), not because the
// controller completed it with an error status. Every command in flight on
// the queue fails with the same *TransportError, and the queue is dead.
type TransportError struct {
	QID uint16
	Err error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("nvme/tcp queue %d: %v", e.QID, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// IsTransportError reports whether err is a transport failure rather than
// an NVMe status.
func IsTransportError(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// Request is one command on a Queue. The caller owns it and may reuse it
// once it has completed: set SQE, Data, Dir and Done, call Queue.Submit,
// and read CQE and Err in Done. A Request in flight must not be touched.
type Request struct {
	// SQE is the command. Submit fills in CID, PSDT and DPTR (SGL) from
	// Data and Dir; everything else is sent as given.
	SQE nvme.SQE
	// Data is the buffer: written from for ToController, read into for
	// FromController. Its length is the transfer length.
	Data []byte
	// Dir says which way Data moves.
	Dir Dir
	// Timeout overrides the queue's Options.Timeout for this request;
	// negative means none (for Asynchronous Event Requests).
	Timeout time.Duration
	// Done, if set, is called once the request completes, on the queue's
	// reader goroutine (or on the goroutine that failed it). It must not
	// block: while it runs no completion is read. It may submit again,
	// this request included, but Submit waits for a free command
	// identifier, which only the reader frees: submit from Done only when
	// no other goroutine can take the identifier this completion freed
	// (as the load generator, which keeps at most Depth requests), or use
	// TrySubmit.
	Done func(*Request)
	// Tag is for the caller's use.
	Tag any
	// AllowShort accepts a successful completion that moved less data
	// than len(Data) (Received says how much): for commands whose length
	// is an allocation length, such as Authentication Receive. Otherwise
	// such a completion fails with *ShortTransferError.
	AllowShort bool

	// CQE is the completion (zero but for CID when a C2HData PDU with
	// the SUCCESS flag completed the command).
	CQE nvme.CQE
	// Err is nil on success, an nvme.Status when the controller reported
	// an error, or a *TransportError.
	Err error

	cmd      tcp.CapsuleCmd
	deadline atomic.Int64 // queue clock, ns; 0 = none
	rcvd     uint32       // C2HData bytes received
	sent     uint32       // H2CData bytes sent
	inline   bool
	ddgstErr bool
	c2hLast  bool // a C2HData with LAST_PDU arrived: no more may follow
	wait     chan struct{}
}

// Status returns the NVMe status of the completed request.
func (r *Request) Status() nvme.Status { return r.CQE.Status }

// Received returns how many data bytes the controller sent for a
// completed FromController request.
func (r *Request) Received() int { return int(r.rcvd) }

// Queue is one NVMe/TCP queue pair on its own TCP connection: the admin
// queue (QID 0) or an I/O queue. Submit is safe for concurrent use and up
// to Depth commands may be in flight.
type Queue struct {
	qid     uint16
	conn    *tcp.Conn
	log     *slog.Logger
	timeout time.Duration
	inline  int    // in-capsule data limit for writes
	maxH2C  uint32 // MAXH2CDATA
	icresp  tcp.ICResp
	epoch   time.Time
	// dev is the host deviations (deviations.go); nil, the default, for
	// none: the I/O path tests only that.
	dev *deviations

	slots []atomic.Pointer[Request]
	free  chan uint16
	// general is how many CIDs (0..general-1) Submit hands out; the rest,
	// up to len(slots), are reserved for the controller's own long-lived
	// commands (the Asynchronous Event Request) and never wait in free.
	general int
	// fused lets one SubmitFused at a time hold a CID while it waits for
	// the second one.
	fused chan struct{}

	dead       chan struct{}
	isDead     atomic.Bool
	failOnce   sync.Once
	deadErr    *TransportError
	sweeping   atomic.Bool // the reader has stopped reading and fails what is in flight
	readerDone chan struct{}
	watchDone  chan struct{}

	// The write backlog (see growBacklog); aw is nil when the connection
	// does not write through a tcp.AsyncWriter.
	aw         *tcp.AsyncWriter
	backlogMu  sync.Mutex
	backlogFor atomic.Int64 // the largest transfer the backlog limit covers

	// reader goroutine state
	corked bool
	polled bool // the connection is a tcp.PollConn: flushHeld uncorks
	h2c    tcp.H2CData
}

// newQueue wraps an initialized connection and starts its reader (and,
// with a timeout, its watchdog). Of its depth CIDs, the last reserved are
// kept out of Submit's reach (see submitReserved).
func newQueue(conn *tcp.Conn, qid uint16, depth, reserved int, icresp *tcp.ICResp, inline int, timeout time.Duration, log *slog.Logger, dev *deviations) *Queue {
	reserved = min(max(reserved, 0), depth)
	q := &Queue{
		qid:        qid,
		conn:       conn,
		log:        log,
		timeout:    timeout,
		inline:     inline,
		maxH2C:     icresp.MAXH2CDATA,
		icresp:     *icresp,
		epoch:      time.Now(),
		slots:      make([]atomic.Pointer[Request], depth),
		free:       make(chan uint16, depth),
		general:    depth - reserved,
		fused:      make(chan struct{}, 1),
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
		watchDone:  make(chan struct{}),
		dev:        dev,
	}
	if dev != nil && dev.ignoreMAXH2CDATA {
		q.maxH2C = 1 << 20
	}
	if dev != nil && dev.inlineIgnoresIOCCSZ && qid != 0 {
		q.inline = 64 << 10
	}
	q.aw, _ = conn.NetConn().(*tcp.AsyncWriter)
	if q.aw != nil {
		if pc, ok := q.aw.Conn.(*tcp.PollConn); ok {
			// Polling (Options.Poll): flush held sends when the socket is
			// found empty, not whenever the buffer is (see readPDUs).
			q.polled = true
			pc.SetOnEmpty(q.flushHeld)
		}
	}
	for i := range q.general {
		q.free <- uint16(i)
	}
	go q.readLoop()
	if timeout > 0 {
		go q.watchdog()
	} else {
		close(q.watchDone)
	}
	return q
}

// QID returns the queue identifier (0 for the admin queue).
func (q *Queue) QID() uint16 { return q.qid }

// Depth returns how many commands Submit may have in flight at once (the
// admin queue keeps one more for the Asynchronous Event Request).
func (q *Queue) Depth() int { return q.general }

// InlineDataSize returns the largest write sent as in-capsule data; larger
// writes wait for R2T.
func (q *Queue) InlineDataSize() int { return q.inline }

// ICResp returns what the controller answered in connection
// initialization: CPDA, digests and MAXH2CDATA.
func (q *Queue) ICResp() tcp.ICResp { return q.icresp }

// Digests returns the digests in use on the connection.
func (q *Queue) Digests() tcp.Digests {
	return tcp.Digests{Header: q.icresp.DGST&tcp.DgstHeader != 0, Data: q.icresp.DGST&tcp.DgstData != 0}
}

// Conn returns the underlying connection, for tests and traces.
func (q *Queue) Conn() *tcp.Conn { return q.conn }

// Err returns nil while the queue works, else the *TransportError that
// killed it.
func (q *Queue) Err() error {
	if q.isDead.Load() {
		return q.deadErr
	}
	return nil
}

// Dead is closed when the queue fails or is closed.
func (q *Queue) Dead() <-chan struct{} { return q.dead }

// Inflight returns the number of commands in flight.
func (q *Queue) Inflight() int {
	n := q.general - len(q.free)
	for i := q.general; i < len(q.slots); i++ {
		if q.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

func (q *Queue) now() int64 { return int64(time.Since(q.epoch)) + 1 }

// Submit sends req. It blocks only while Depth commands are in flight. It
// never allocates. When it returns an error (the queue is dead) Done is not
// called; otherwise Done is called exactly once.
func (q *Queue) Submit(req *Request) error {
	return q.submit(context.Background(), req)
}

// TrySubmit is Submit that never waits: with Depth commands in flight it
// returns false (and nil) at once. Done callbacks, which run on the
// queue's reader, submit again with it: the reader must not wait for a
// command identifier that only the reader can free.
func (q *Queue) TrySubmit(req *Request) (bool, error) {
	select {
	case cid := <-q.free:
		return true, q.send(req, cid)
	default:
	}
	if q.isDead.Load() {
		return false, q.deadErr
	}
	return false, nil
}

// submit is Submit whose wait for a CID also ends with ctx.
func (q *Queue) submit(ctx context.Context, req *Request) error {
	cid, err := q.getCID(ctx)
	if err != nil {
		return err
	}
	return q.send(req, cid)
}

// submitReserved sends req with reserved CID cid (one of the last
// Depth..len(slots)-1), which the caller owns: it never waits, so it is
// safe on the reader goroutine. The controller's Asynchronous Event
// Request, re-armed from its Done, is sent this way, as Linux reserves
// NVME_NR_AEN_COMMANDS tags: with every ordinary CID taken by waiting
// goroutines the reader would otherwise block in Submit and no completion
// would ever be read again.
func (q *Queue) submitReserved(req *Request, cid uint16) error {
	if int(cid) < q.general || int(cid) >= len(q.slots) {
		return fmt.Errorf("initiator: queue %d: CID %d is not reserved", q.qid, cid)
	}
	return q.send(req, cid)
}

// reservedCID returns the i-th reserved CID, if the queue has one.
func (q *Queue) reservedCID(i int) (uint16, bool) {
	cid := q.general + i
	return uint16(cid), cid < len(q.slots)
}

func (q *Queue) send(req *Request, cid uint16) error {
	data := q.prepare(req, cid)
	if err := q.conn.Send(&req.cmd, data); err != nil {
		q.fail(err)
	}
	return q.published(req, cid)
}

// SubmitFused sends first and second back to back, as a fused operation
// needs (set nvme.FuseFirst and nvme.FuseSecond in their SQE flags). If it
// returns an error neither Done is called. A queue of depth 1 can never
// hold both: it fails with ErrFusedDepth.
func (q *Queue) SubmitFused(first, second *Request) error {
	return q.submitFused(context.Background(), first, second)
}

func (q *Queue) submitFused(ctx context.Context, first, second *Request) error {
	if q.general < 2 {
		return fmt.Errorf("queue %d of depth %d: %w", q.qid, q.general, ErrFusedDepth)
	}
	// Holding one CID while waiting for another deadlocks as soon as two
	// callers do it and hold every CID between them (two fused callers on
	// a queue of depth 2, or one of depth 1). One at a time, the holder
	// waits only for commands already in flight, which complete or time
	// out.
	select {
	case q.fused <- struct{}{}:
	case <-q.dead:
		return q.deadErr
	case <-ctx.Done():
		return ctx.Err()
	}
	cid1, err := q.getCID(ctx)
	if err != nil {
		<-q.fused
		return err
	}
	cid2, err := q.getCID(ctx)
	<-q.fused
	if err != nil {
		q.release(cid1)
		return err
	}
	d1 := q.prepare(first, cid1)
	d2 := q.prepare(second, cid2)
	// One call: a command another goroutine submits must not come
	// between the two capsules.
	if err = q.conn.SendPair(&first.cmd, d1, &second.cmd, d2); err != nil {
		q.fail(err)
	}
	err1 := q.published(first, cid1)
	err2 := q.published(second, cid2)
	if err1 != nil && err2 == nil || err1 == nil && err2 != nil {
		// One was failed by the reader (its Done runs), the other not:
		// report success so the caller waits on both Done calls; the one
		// we took back gets its Done here.
		if err1 != nil {
			first.Err = err1
			if first.Done != nil {
				first.Done(first)
			}
		} else {
			second.Err = err2
			if second.Done != nil {
				second.Done(second)
			}
		}
		return nil
	}
	return errors.Join(err1, err2)
}

// getCID takes a free CID, waiting while every one is in flight until one
// is freed, the queue dies or ctx ends.
func (q *Queue) getCID(ctx context.Context) (uint16, error) {
	select {
	case cid := <-q.free:
		return cid, nil
	default:
	}
	select {
	case cid := <-q.free:
		return cid, nil
	case <-q.dead:
		return 0, q.deadErr
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// release makes cid free again; reserved CIDs stay with their owner.
func (q *Queue) release(cid uint16) {
	if int(cid) < q.general {
		q.free <- cid
	}
}

// prepare fills in the capsule and publishes req in its slot; it returns
// the in-capsule data.
func (q *Queue) prepare(req *Request, cid uint16) []byte {
	req.CQE = nvme.CQE{}
	req.Err = nil
	req.rcvd, req.sent = 0, 0
	req.inline, req.ddgstErr, req.c2hLast = false, false, false
	s := &req.cmd.SQE
	*s = req.SQE
	s.CID = cid
	s.Flags = s.Flags&^nvme.PSDTMask | nvme.PSDTSGL
	n := len(req.Data)
	if req.Dir == NoData {
		n = 0
	}
	if q.aw != nil && int64(n) > q.backlogFor.Load() {
		q.growBacklog(n)
	}
	var inline []byte
	if req.Dir == ToController && n > 0 && n <= q.inline {
		// ICDOFF is 0 on NVMe/TCP (Linux refuses anything else).
		s.DPTR = nvme.SGLDescriptor{Addr: 0, Length: uint32(n), Type: nvme.SGLDataBlockOffset}
		req.inline = true
		inline = req.Data[:n]
	} else {
		s.DPTR = nvme.SGLDescriptor{Length: uint32(n), Type: nvme.SGLTransportDataBlock}
	}
	if q.dev != nil {
		q.dev.capsule(q, s, req.inline)
	}
	t := req.Timeout
	if t == 0 {
		t = q.timeout
	}
	if t > 0 {
		req.deadline.Store(q.now() + int64(t))
	} else {
		req.deadline.Store(0)
	}
	q.slots[cid].Store(req)
	return inline
}

// published checks, after req was made visible to the reader, whether the
// queue died meanwhile. Until the reader begins its final sweep it may be
// in the middle of a PDU for req (copying C2HData into req.Data), so req
// stays with it and the sweep completes it. Only once the sweep has begun
// may req be taken back, by whichever of the two takes it first: then
// Submit fails and Done is not called.
func (q *Queue) published(req *Request, cid uint16) error {
	if !q.isDead.Load() || !q.sweeping.Load() {
		// The sweep comes after our store to the slot (both atomic): it
		// will find req.
		return nil
	}
	if q.slots[cid].CompareAndSwap(req, nil) {
		q.release(cid)
		return q.deadErr
	}
	return nil
}

// Bounds of the write backlog (see growBacklog).
const (
	// minWriteBacklog is the backlog limit before any large transfer.
	minWriteBacklog = 4 << 20
	// capsuleOverhead bounds the capsule of one command with its digests
	// and padding.
	capsuleOverhead = 4 << 10
)

// writeBacklogLimit is how many bytes may wait in the AsyncWriter for
// depth commands of up to n data bytes each, saturating at MaxInt: the
// data, an H2CData header with digests and padding (under 256 bytes) per
// 4 KiB of it (MAXH2CDATA is at least 4 KiB), and the capsule.
func writeBacklogLimit(depth, n int) int {
	per := n + n/16 + capsuleOverhead
	if per < n || depth > 0 && per > math.MaxInt/depth {
		return math.MaxInt
	}
	return max(minWriteBacklog, depth*per)
}

// growBacklog raises the write backlog limit to cover n-byte transfers on
// every CID. The reader answers R2Ts with H2CData through the AsyncWriter;
// if it had to wait there while the target waits for it to read C2HData,
// the association would hang (TestLargeTransfersDoNotDeadlockWriter). All
// it queues belongs to commands in flight (each byte at most once: each
// R2T must continue where the last ended), so depth times the largest
// transfer submitted bounds it. A target's MDTS would not do: it may be
// 0, no limit (nvmet), and the limit must hold before a write is refused.
func (q *Queue) growBacklog(n int) {
	q.backlogMu.Lock()
	defer q.backlogMu.Unlock()
	if int64(n) <= q.backlogFor.Load() {
		return
	}
	q.backlogFor.Store(int64(n))
	q.aw.SetLimit(writeBacklogLimit(len(q.slots), n))
}

// fail marks the queue dead with cause err and closes the connection; the
// reader then fails everything in flight.
func (q *Queue) fail(err error) {
	q.failOnce.Do(func() {
		te, ok := err.(*TransportError)
		if !ok {
			te = &TransportError{QID: q.qid, Err: err}
		}
		q.deadErr = te
		q.isDead.Store(true)
		close(q.dead)
		_ = q.conn.Close()
		if !errors.Is(err, ErrClosed) {
			q.log.Warn("nvme/tcp queue failed", "qid", q.qid, "err", err)
		}
	})
}

// Close fails everything in flight with ErrClosed, closes the connection
// and waits for the queue's goroutines to end.
func (q *Queue) Close() error {
	q.fail(ErrClosed)
	<-q.readerDone
	<-q.watchDone
	return nil
}

// uncork ends the reader's cork and sends what it held back. The
// connection writes through a tcp.AsyncWriter, so this never waits for a
// target that is not reading.
func (q *Queue) uncork() error {
	q.corked = false
	return q.conn.Uncork()
}

// flushHeld is a polling connection's OnEmpty: the reader found the
// socket empty, so what it held back goes out now. A write error is
// sticky: the next send or read reports it.
func (q *Queue) flushHeld() {
	if q.corked {
		_ = q.uncork()
	}
}

func (q *Queue) readLoop() {
	defer close(q.readerDone)
	err := q.readPDUs()
	q.fail(err)
	if q.corked {
		q.corked = false
		_ = q.conn.Uncork()
	}
	q.sweeping.Store(true)
	for i := range q.slots {
		if r := q.slots[i].Swap(nil); r != nil {
			q.finish(r, uint16(i), q.deadErr)
		}
	}
}

func (q *Queue) readPDUs() error {
	for {
		// Sends held back while handling what arrived go out before the
		// reader could wait for more. A polling reader learns that it
		// would wait only when the socket turns out empty (flushHeld),
		// which keeps a burst that arrives in pieces together: flushing
		// whenever the buffer ran dry sent one write per completion at
		// queue depth 32.
		if q.corked && q.conn.Buffered() == 0 && !q.polled {
			if err := q.uncork(); err != nil {
				return err
			}
		}
		p, err := q.conn.Next()
		if err != nil {
			if q.isDead.Load() {
				return q.deadErr
			}
			var fe *tcp.FatalError
			if errors.As(err, &fe) {
				q.terminate(fe)
			}
			return err
		}
		if !q.corked {
			q.conn.Cork()
			q.corked = true
		}
		switch v := p.(type) {
		case *tcp.CapsuleResp:
			err = q.handleResp(&v.CQE)
		case *tcp.C2HData:
			err = q.handleC2H(v)
		case *tcp.R2T:
			err = q.handleR2T(v)
		case *tcp.TermReq:
			if q.dev != nil && q.dev.termReqIgnored {
				continue
			}
			return &tcp.PeerTerminated{FES: v.FES, FEI: v.FEI}
		default:
			err = q.fatal(tcp.FESInvalidHeaderField, 0, "unexpected %v", p.Type())
		}
		if err != nil {
			return err
		}
	}
}

// fatal terminates the connection with an H2CTermReq, as the host must on
// a fatal transport error, and returns the error for fail.
func (q *Queue) fatal(fes uint16, fei uint32, format string, args ...any) error {
	fe := &tcp.FatalError{FES: fes, FEI: fei, Reason: fmt.Sprintf(format, args...)}
	fe.Header = append([]byte(nil), q.conn.RawHeader()...)
	if q.corked {
		q.corked = false
		_ = q.conn.Uncork()
	}
	q.terminate(fe)
	return fe
}

// Byte offsets in received PDUs, for FEI.
const (
	offCCCID = 8
	offDATAO = 12
	offR2TL  = 20
	offCQCID = 8 + 12
)

func (q *Queue) lookup(cid uint16) *Request {
	if int(cid) >= len(q.slots) {
		return nil
	}
	return q.slots[cid].Load()
}

func (q *Queue) handleResp(cqe *nvme.CQE) error {
	cid := cqe.CID
	if int(cid) >= len(q.slots) {
		return q.fatal(tcp.FESInvalidHeaderField, offCQCID, "CapsuleResp for unknown CID %d", cid)
	}
	req := q.slots[cid].Swap(nil)
	if req == nil {
		return q.fatal(tcp.FESInvalidHeaderField, offCQCID, "CapsuleResp for CID %d not in flight", cid)
	}
	req.CQE = *cqe
	var err error
	switch {
	case !cqe.Status.Success():
		err = cqe.Status
	case req.ddgstErr:
		// As Linux: a data digest error fails just the command.
		req.CQE.Status = nvme.StatusDataTransferError
		err = req.CQE.Status
	default:
		err = q.checkTransfer(req, cid)
	}
	q.finish(req, cid, err)
	return nil
}

// checkTransfer returns the error of a command the controller completed
// with success: nil if all its data moved, else *ShortTransferError.
func (q *Queue) checkTransfer(req *Request, cid uint16) error {
	if req.AllowShort {
		return nil
	}
	want := len(req.Data)
	got := want
	switch req.Dir {
	case FromController:
		got = int(req.rcvd)
	case ToController:
		if !req.inline {
			got = int(req.sent)
		}
	}
	if got == want {
		return nil
	}
	req.CQE.Status = nvme.StatusDataTransferError
	q.log.Warn("command completed with success without all its data", "qid", q.qid, "cid", cid, "bytes", got, "of", want)
	return &ShortTransferError{QID: q.qid, CID: cid, Dir: req.Dir, Got: got, Want: want}
}

func (q *Queue) handleC2H(v *tcp.C2HData) error {
	req := q.lookup(v.CCCID)
	if req == nil {
		return q.fatal(tcp.FESInvalidHeaderField, offCCCID, "C2HData for CID %d not in flight", v.CCCID)
	}
	// NVMe/TCP 1.0 3.3.2.1 names the FES of each of these.
	if req.Dir != FromController || req.c2hLast {
		return q.fatal(tcp.FESPDUSequenceError, 0, "unexpected C2HData for CID %d (no data to read, or after LAST_PDU)", v.CCCID)
	}
	end := uint64(v.DATAO) + uint64(v.DATAL)
	if end > uint64(len(req.Data)) {
		return q.fatal(tcp.FESDataOutOfRange, 0, "C2HData CID %d DATAO %d DATAL %d beyond %d bytes", v.CCCID, v.DATAO, v.DATAL, len(req.Data))
	}
	if v.DATAO != req.rcvd && (q.dev == nil || !q.dev.c2hDATAOUnchecked) {
		return q.fatal(tcp.FESPDUSequenceError, 0, "C2HData CID %d DATAO %d, expected %d", v.CCCID, v.DATAO, req.rcvd)
	}
	// No flush here even if the data is still on its way: the target sends
	// it whatever we do, and flushing mid-PDU would split the batch of
	// commands the completions are building (measured: 3.5x the write
	// syscalls of the ping-pong baseline, instead of about 1x).
	if err := q.conn.ReadData(req.Data[v.DATAO:end]); err != nil {
		if !errors.Is(err, tcp.ErrDataDigest) {
			return err
		}
		req.ddgstErr = q.dev == nil || !q.dev.ddgstUnchecked
		q.log.Warn("data digest error", "qid", q.qid, "cid", v.CCCID)
	}
	req.rcvd = uint32(end)
	req.c2hLast = v.Last
	// SUCCESS (the decoder has checked it comes with LAST_PDU) is taken on
	// any queue, SQ flow control or not: NVMe/TCP 1.0 3.3.2.1 allows it
	// from a controller that supports disabling SQHD updates, and NVMe Base
	// 2.1 3.3.2.7 lets a transport omit the SQHD of successful completions
	// on a queue with SQ flow control. SPDK sends it on every queue, admin
	// included, and Linux takes it; a conformance check (TCP-DATA-001)
	// judges the controller, the host does not refuse it.
	if v.Success && (q.dev == nil || !q.dev.c2hSuccessIgnored) {
		if q.slots[v.CCCID].Swap(nil) != req {
			return q.fatal(tcp.FESInvalidHeaderField, offCCCID, "C2HData SUCCESS for CID %d raced", v.CCCID)
		}
		req.CQE = nvme.CQE{CID: v.CCCID, SQID: q.qid}
		var err error
		if req.ddgstErr {
			req.CQE.Status = nvme.StatusDataTransferError
			err = req.CQE.Status
		} else {
			err = q.checkTransfer(req, v.CCCID)
		}
		q.finish(req, v.CCCID, err)
	}
	return nil
}

func (q *Queue) handleR2T(v *tcp.R2T) error {
	req := q.lookup(v.CCCID)
	if req == nil {
		return q.fatal(tcp.FESInvalidHeaderField, offCCCID, "R2T for CID %d not in flight", v.CCCID)
	}
	if req.Dir != ToController || req.inline {
		return q.fatal(tcp.FESPDUSequenceError, 0, "R2T for CID %d which has no data to transfer", v.CCCID)
	}
	if v.R2TL == 0 {
		return q.fatal(tcp.FESInvalidHeaderField, offR2TL, "R2T CID %d with R2TL 0", v.CCCID)
	}
	end := uint64(v.R2TO) + uint64(v.R2TL)
	if end > uint64(len(req.Data)) {
		return q.fatal(tcp.FESDataOutOfRange, 0, "R2T CID %d R2TO %d R2TL %d beyond %d bytes", v.CCCID, v.R2TO, v.R2TL, len(req.Data))
	}
	if v.R2TO != req.sent && (q.dev == nil || !q.dev.r2tUnchecked) {
		// Each R2T continues where the last one ended (NVMe/TCP 1.0
		// 3.3.2.2); this host allows one outstanding (MAXR2T 0).
		return q.fatal(tcp.FESPDUSequenceError, 0, "R2T CID %d R2TO %d, expected %d", v.CCCID, v.R2TO, req.sent)
	}
	maxData := q.maxH2C
	if maxData == 0 {
		maxData = tcp.MinMaxH2CData
	}
	for off := v.R2TO; uint64(off) < end; {
		n := min(uint32(end)-off, maxData)
		q.h2c = tcp.H2CData{CCCID: v.CCCID, TTAG: v.TTAG, DATAO: off, DATAL: n, Last: uint64(off+n) == end}
		if q.dev != nil {
			q.dev.h2cData(&q.h2c, v)
		}
		if err := q.conn.Send(&q.h2c, req.Data[off:off+n]); err != nil {
			return err
		}
		if q.dev != nil && q.dev.h2cRepeatLast && uint64(off+n) == end {
			if err := q.conn.Send(&q.h2c, req.Data[off:off+n]); err != nil {
				return err
			}
		}
		off += n
	}
	req.sent = uint32(end)
	return nil
}

// finish frees the CID and hands the request back.
func (q *Queue) finish(req *Request, cid uint16, err error) {
	req.Err = err
	q.release(cid)
	if req.Done != nil {
		req.Done(req)
	}
}

func (q *Queue) watchdog() {
	defer close(q.watchDone)
	iv := min(max(q.timeout/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-q.dead:
			return
		case <-t.C:
			now := q.now()
			for i := range q.slots {
				r := q.slots[i].Load()
				if r == nil {
					continue
				}
				if d := r.deadline.Load(); d != 0 && now > d {
					q.fail(fmt.Errorf("%w: cid %d", ErrTimeout, i))
					return
				}
			}
		}
	}
}

func signalDone(r *Request) { r.wait <- struct{}{} }

// Do submits req and waits for it, returning req.Err. req.Done is
// replaced. If ctx ends while req waits for a free command identifier,
// nothing was sent and ctx.Err() is returned. If it ends once req is in
// flight the queue is failed (as a command timeout is: NVMe/TCP has no way
// to take one command back), the request is waited for, and ctx.Err() is
// returned.
func (q *Queue) Do(ctx context.Context, req *Request) error {
	if req.wait == nil {
		req.wait = make(chan struct{}, 1)
	}
	req.Done = signalDone
	if err := q.submit(ctx, req); err != nil {
		return err
	}
	select {
	case <-req.wait:
		return req.Err
	case <-ctx.Done():
		q.fail(fmt.Errorf("command cid %d abandoned: %w", req.cmd.SQE.CID, ctx.Err()))
		<-req.wait
		if req.Err == nil || IsTransportError(req.Err) {
			return ctx.Err()
		}
		return req.Err
	}
}

var reqPool = sync.Pool{New: func() any { return &Request{wait: make(chan struct{}, 1)} }}

func getReq() *Request { return reqPool.Get().(*Request) }

func putReq(r *Request) {
	r.Data, r.Done, r.Tag, r.Timeout, r.AllowShort = nil, nil, nil, 0, false
	reqPool.Put(r)
}

// Exec submits sqe with data moving in direction dir and waits for it.
func (q *Queue) Exec(ctx context.Context, sqe nvme.SQE, data []byte, dir Dir) (nvme.CQE, error) {
	r := getReq()
	r.SQE, r.Data, r.Dir = sqe, data, dir
	err := q.Do(ctx, r)
	if q.dev != nil && q.qid != 0 && err != nil && (q.dev.retryDNR && r.CQE.Status.DNR() ||
		q.dev.retryPathInaccessible && r.CQE.Status.Code() == nvme.StatusANAInaccessible) {
		r.SQE = sqe
		err = q.Do(ctx, r)
	}
	cqe := r.CQE
	putReq(r)
	return cqe, err
}

// Read reads nlb blocks from slba of namespace nsid into buf, whose length
// is the transfer length.
func (q *Queue) Read(ctx context.Context, nsid uint32, slba uint64, nlb uint32, buf []byte) error {
	_, err := q.Exec(ctx, nvme.ReadCmd(nsid, slba, nlb), buf, FromController)
	return err
}

// Write writes buf as nlb blocks at slba of namespace nsid.
func (q *Queue) Write(ctx context.Context, nsid uint32, slba uint64, nlb uint32, buf []byte) error {
	_, err := q.Exec(ctx, nvme.WriteCmd(nsid, slba, nlb), buf, ToController)
	return err
}

// Flush commits volatile write cache contents of namespace nsid.
func (q *Queue) Flush(ctx context.Context, nsid uint32) error {
	_, err := q.Exec(ctx, nvme.FlushCmd(nsid), nil, NoData)
	return err
}

// WriteZeroes zeroes nlb blocks at slba, deallocating them if deallocate.
func (q *Queue) WriteZeroes(ctx context.Context, nsid uint32, slba uint64, nlb uint32, deallocate bool) error {
	_, err := q.Exec(ctx, nvme.WriteZeroesCmd(nsid, slba, nlb, deallocate), nil, NoData)
	return err
}

// Deallocate sends Dataset Management with the Deallocate attribute for
// ranges (1 to 256).
func (q *Queue) Deallocate(ctx context.Context, nsid uint32, ranges []nvme.DSMRange) error {
	if len(ranges) == 0 || len(ranges) > 256 {
		return fmt.Errorf("initiator: Deallocate needs 1..256 ranges, got %d", len(ranges))
	}
	buf := make([]byte, 0, len(ranges)*nvme.DSMRangeSize)
	for i := range ranges {
		buf = ranges[i].Append(buf)
	}
	_, err := q.Exec(ctx, nvme.DSMCmd(nsid, len(ranges), true), buf, ToController)
	return err
}

// Compare compares nlb blocks at slba with buf; a mismatch returns
// nvme.StatusCompareFailure.
func (q *Queue) Compare(ctx context.Context, nsid uint32, slba uint64, nlb uint32, buf []byte) error {
	_, err := q.Exec(ctx, nvme.CompareCmd(nsid, slba, nlb), buf, ToController)
	return err
}

// CompareAndWrite sends a fused Compare (cmp) and Write (data) of nlb
// blocks at slba: the write happens only if the compare matches. It
// returns the compare's error if it failed, else the write's.
func (q *Queue) CompareAndWrite(ctx context.Context, nsid uint32, slba uint64, nlb uint32, cmp, data []byte) error {
	c, w := getReq(), getReq()
	defer putReq(c)
	defer putReq(w)
	c.SQE, c.Data, c.Dir, c.Done = nvme.CompareCmd(nsid, slba, nlb), cmp, ToController, signalDone
	c.SQE.Flags |= nvme.FuseFirst
	w.SQE, w.Data, w.Dir, w.Done = nvme.WriteCmd(nsid, slba, nlb), data, ToController, signalDone
	w.SQE.Flags |= nvme.FuseSecond
	if err := q.submitFused(ctx, c, w); err != nil {
		return err
	}
	for _, r := range []*Request{c, w} {
		select {
		case <-r.wait:
		case <-ctx.Done():
			q.fail(fmt.Errorf("fused command abandoned: %w", ctx.Err()))
			<-r.wait
		}
	}
	if ctx.Err() != nil && (c.Err == nil || IsTransportError(c.Err)) {
		return ctx.Err()
	}
	if c.Err != nil {
		return c.Err
	}
	return w.Err
}
