package initiator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// reader goroutine (or on the goroutine that failed it). It may submit
	// again, this request included; it must not block for long.
	Done func(*Request)
	// Tag is for the caller's use.
	Tag any

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
	wait     chan struct{}
}

// Status returns the NVMe status of the completed request.
func (r *Request) Status() nvme.Status { return r.CQE.Status }

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

	slots []atomic.Pointer[Request]
	free  chan uint16

	dead       chan struct{}
	isDead     atomic.Bool
	failOnce   sync.Once
	deadErr    *TransportError
	readerDone chan struct{}
	watchDone  chan struct{}

	// reader goroutine state
	corked bool
	h2c    tcp.H2CData
}

// newQueue wraps an initialized connection and starts its reader (and,
// with a timeout, its watchdog).
func newQueue(conn *tcp.Conn, qid uint16, depth int, icresp *tcp.ICResp, inline int, timeout time.Duration, log *slog.Logger) *Queue {
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
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
		watchDone:  make(chan struct{}),
	}
	for i := range depth {
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

// Depth returns how many commands may be in flight at once.
func (q *Queue) Depth() int { return len(q.slots) }

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
func (q *Queue) Inflight() int { return len(q.slots) - len(q.free) }

func (q *Queue) now() int64 { return int64(time.Since(q.epoch)) + 1 }

// Submit sends req. It blocks only while Depth commands are in flight. It
// never allocates. When it returns an error (the queue is dead) Done is not
// called; otherwise Done is called exactly once.
func (q *Queue) Submit(req *Request) error {
	cid, err := q.getCID()
	if err != nil {
		return err
	}
	data := q.prepare(req, cid)
	if err := q.conn.Send(&req.cmd, data); err != nil {
		q.fail(err)
	}
	return q.published(req, cid)
}

// SubmitFused sends first and second back to back, as a fused operation
// needs (set nvme.FuseFirst and nvme.FuseSecond in their SQE flags). If it
// returns an error neither Done is called.
func (q *Queue) SubmitFused(first, second *Request) error {
	cid1, err := q.getCID()
	if err != nil {
		return err
	}
	cid2, err := q.getCID()
	if err != nil {
		q.free <- cid1
		return err
	}
	d1 := q.prepare(first, cid1)
	d2 := q.prepare(second, cid2)
	q.conn.Cork()
	err = q.conn.Send(&first.cmd, d1)
	if err == nil {
		err = q.conn.Send(&second.cmd, d2)
	}
	if uerr := q.conn.Uncork(); err == nil {
		err = uerr
	}
	if err != nil {
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

func (q *Queue) getCID() (uint16, error) {
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
	}
}

// prepare fills in the capsule and publishes req in its slot; it returns
// the in-capsule data.
func (q *Queue) prepare(req *Request, cid uint16) []byte {
	req.CQE = nvme.CQE{}
	req.Err = nil
	req.rcvd, req.sent = 0, 0
	req.inline, req.ddgstErr = false, false
	s := &req.cmd.SQE
	*s = req.SQE
	s.CID = cid
	s.Flags = s.Flags&^nvme.PSDTMask | nvme.PSDTSGL
	n := len(req.Data)
	if req.Dir == NoData {
		n = 0
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
// queue died meanwhile; if the reader has not taken req it is taken back.
func (q *Queue) published(req *Request, cid uint16) error {
	if !q.isDead.Load() {
		return nil
	}
	if q.slots[cid].CompareAndSwap(req, nil) {
		q.free <- cid
		return q.deadErr
	}
	return nil
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

func (q *Queue) readLoop() {
	defer close(q.readerDone)
	err := q.readPDUs()
	q.fail(err)
	if q.corked {
		q.corked = false
		_ = q.conn.Uncork()
	}
	for i := range q.slots {
		if r := q.slots[i].Swap(nil); r != nil {
			q.finish(r, uint16(i), q.deadErr)
		}
	}
}

func (q *Queue) readPDUs() error {
	for {
		if q.corked && q.conn.Buffered() == 0 {
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
				_ = q.conn.Terminate(fe)
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
	_ = q.conn.Terminate(fe)
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
	}
	q.finish(req, cid, err)
	return nil
}

func (q *Queue) handleC2H(v *tcp.C2HData) error {
	req := q.lookup(v.CCCID)
	if req == nil {
		return q.fatal(tcp.FESInvalidHeaderField, offCCCID, "C2HData for CID %d not in flight", v.CCCID)
	}
	if req.Dir != FromController {
		return q.fatal(tcp.FESPDUSequenceError, 0, "C2HData for CID %d which reads no data", v.CCCID)
	}
	end := uint64(v.DATAO) + uint64(v.DATAL)
	if end > uint64(len(req.Data)) {
		return q.fatal(tcp.FESDataOutOfRange, 0, "C2HData CID %d DATAO %d DATAL %d beyond %d bytes", v.CCCID, v.DATAO, v.DATAL, len(req.Data))
	}
	if v.DATAO != req.rcvd {
		return q.fatal(tcp.FESInvalidHeaderField, offDATAO, "C2HData CID %d DATAO %d, expected %d", v.CCCID, v.DATAO, req.rcvd)
	}
	// No flush here even if the data is still on its way: the target sends
	// it whatever we do, and flushing mid-PDU would split the batch of
	// commands the completions are building (measured: 3.5x the write
	// syscalls of the ping-pong baseline, instead of about 1x).
	if err := q.conn.ReadData(req.Data[v.DATAO:end]); err != nil {
		if !errors.Is(err, tcp.ErrDataDigest) {
			return err
		}
		req.ddgstErr = true
		q.log.Warn("data digest error", "qid", q.qid, "cid", v.CCCID)
	}
	req.rcvd = uint32(end)
	if v.Success {
		if q.slots[v.CCCID].Swap(nil) != req {
			return q.fatal(tcp.FESInvalidHeaderField, offCCCID, "C2HData SUCCESS for CID %d raced", v.CCCID)
		}
		req.CQE = nvme.CQE{CID: v.CCCID, SQID: q.qid}
		var err error
		if req.ddgstErr {
			req.CQE.Status = nvme.StatusDataTransferError
			err = req.CQE.Status
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
	if v.R2TO < req.sent {
		return q.fatal(tcp.FESInvalidHeaderField, offDATAO, "R2T CID %d R2TO %d below %d already sent", v.CCCID, v.R2TO, req.sent)
	}
	maxData := q.maxH2C
	if maxData == 0 {
		maxData = tcp.MinMaxH2CData
	}
	for off := v.R2TO; uint64(off) < end; {
		n := min(uint32(end)-off, maxData)
		q.h2c = tcp.H2CData{CCCID: v.CCCID, TTAG: v.TTAG, DATAO: off, DATAL: n, Last: uint64(off+n) == end}
		if err := q.conn.Send(&q.h2c, req.Data[off:off+n]); err != nil {
			return err
		}
		off += n
	}
	req.sent = uint32(end)
	return nil
}

// finish frees the CID and hands the request back.
func (q *Queue) finish(req *Request, cid uint16, err error) {
	req.Err = err
	q.free <- cid
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
// replaced. If ctx ends first the queue is failed (as a command timeout
// is: NVMe/TCP has no way to take one command back), the request is waited
// for, and ctx.Err() is returned.
func (q *Queue) Do(ctx context.Context, req *Request) error {
	if req.wait == nil {
		req.wait = make(chan struct{}, 1)
	}
	req.Done = signalDone
	if err := q.Submit(req); err != nil {
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
	r.Data, r.Done, r.Tag, r.Timeout = nil, nil, nil, 0
	reqPool.Put(r)
}

// Exec submits sqe with data moving in direction dir and waits for it.
func (q *Queue) Exec(ctx context.Context, sqe nvme.SQE, data []byte, dir Dir) (nvme.CQE, error) {
	r := getReq()
	r.SQE, r.Data, r.Dir = sqe, data, dir
	err := q.Do(ctx, r)
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
	if err := q.SubmitFused(c, w); err != nil {
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
