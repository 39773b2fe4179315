package initiator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// CC fields the host sets when enabling a controller (NVMe Base 2.0,
// figure 41).
const (
	ccCSSShift    = 4
	ccCSSNVM      = 0
	ccCSSCSI      = 6
	ccCSSAdmin    = 7
	ccIOSQESShift = 16
	ccIOCQESShift = 20
	ccIOSQES      = 6 << ccIOSQESShift // 64-byte SQEs
	ccIOCQES      = 4 << ccIOCQESShift // 16-byte CQEs
)

// shutdownTimeout is how long Close waits for CSTS.SHST (Linux's default
// shutdown_timeout).
const shutdownTimeout = 5 * time.Second

// Controller is one association with an NVMe controller over NVMe/TCP: the
// admin queue and the I/O queues, plus the keep-alive and asynchronous
// event machinery. Its methods are safe for concurrent use.
type Controller struct {
	opts      Options
	addr      string
	subnqn    string
	discovery bool

	admin  *Queue
	io     []*Queue
	cntlid uint16
	cap    nvme.CAP
	vs     uint32
	cc     uint32
	id     *nvme.IdentifyController

	kaStop chan struct{}
	kaDone chan struct{}

	aerOnce sync.Once
	aerCh   chan uint32
	aerDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Connect creates an association with subsystem subnqn at addr
// ("host:port"): admin queue, controller enable, Identify, Number of
// Queues, I/O queues, keep-alive. ctx bounds the whole bring-up.
func Connect(ctx context.Context, addr, subnqn string, opts Options) (*Controller, error) {
	c := &Controller{addr: addr, subnqn: subnqn, discovery: subnqn == nvme.DiscoveryNQN}
	c.opts = opts.withDefaults(c.discovery)
	dev, err := parseDeviations(c.opts.Deviations)
	if err != nil {
		return nil, err
	}
	c.opts.dev = dev
	if dev != nil && dev.katoZero {
		c.opts.KATO = 0
	}
	if err := c.setup(ctx); err != nil {
		c.teardown()
		return nil, err
	}
	return c, nil
}

func (c *Controller) setup(ctx context.Context) error {
	o := &c.opts
	label := "nvmftest host: admin queue"
	if c.discovery {
		label = "nvmftest host: discovery"
	}
	// One admin CID is kept for the Asynchronous Event Request.
	admin, err := dialQueue(ctx, c.addr, 0, AdminQueueSize-1, aerCIDs, AdminInlineData, o, label)
	if err != nil {
		return err
	}
	c.admin = admin
	want := uint16(nvme.CNTLIDDynamic)
	if o.dev != nil && o.dev.connectCNTLIDStatic {
		want = 1
	}
	cntlid, err := connectQueue(ctx, admin, o, c.subnqn, want, AdminQueueSize-1, 0, katoMillis(o.KATO))
	if refusedCNTLID(err) {
		// A static-model subsystem refuses FFFFh at CNTLID; FFFEh asks
		// it for any available static controller (NVMe Base 2.2 6.3).
		cntlid, err = connectQueue(ctx, admin, o, c.subnqn, nvme.CNTLIDStatic, AdminQueueSize-1, 0, katoMillis(o.KATO))
	}
	if err != nil {
		return fmt.Errorf("connect admin queue: %w", err)
	}
	c.cntlid = cntlid
	v, err := c.PropertyGet(ctx, nvme.PropCAP, true)
	if err != nil {
		return fmt.Errorf("property get CAP: %w", err)
	}
	c.cap = nvme.CAP(v)
	v, err = c.PropertyGet(ctx, nvme.PropVS, false)
	if err != nil {
		return fmt.Errorf("property get VS: %w", err)
	}
	c.vs = uint32(v)
	if o.dev != nil && o.dev.identifyBeforeReady {
		_, _ = c.Identify(ctx)
	}
	if err := c.enable(ctx); err != nil {
		return err
	}
	id, err := c.Identify(ctx)
	if err != nil {
		return fmt.Errorf("identify controller: %w", err)
	}
	c.id = id
	if id.ICDOFF != 0 {
		return fmt.Errorf("controller ICDOFF %d not supported (NVMe/TCP hosts need 0)", id.ICDOFF)
	}
	if o.KATO > 0 {
		c.kaStop, c.kaDone = make(chan struct{}), make(chan struct{})
		go c.keepAlive()
	}
	if c.discovery || o.NrIOQueues == 0 {
		return nil
	}
	return c.setupIOQueues(ctx)
}

func (c *Controller) setupIOQueues(ctx context.Context) error {
	o := &c.opts
	n := min(o.NrIOQueues, 0xFFFF)
	dw0, err := c.SetFeatures(ctx, nvme.FeatNumQueues, 0, nvme.NumQueuesValue(uint16(n), uint16(n)), false, nil)
	if err != nil {
		var st nvme.Status
		if errors.As(err, &st) {
			// As Linux: a controller that refuses gets no I/O queues.
			o.Logger.Warn("could not set queue count", "err", err)
			return nil
		}
		return fmt.Errorf("set features number of queues: %w", err)
	}
	nsq, ncq := nvme.DecodeNumQueues(dw0)
	n = min(n, int(nsq), int(ncq))
	qs := min(o.QueueSize, int(c.cap.MQES())+1)
	if c.id.MAXCMD != 0 {
		qs = min(qs, int(c.id.MAXCMD))
	}
	if o.dev != nil && o.dev.sqsizeBeyondMQES {
		qs = int(c.cap.MQES()) + 2
	}
	if qs < 2 {
		return fmt.Errorf("controller allows queue size %d", qs)
	}
	inline := 0
	if c.id.IOCCSZ > 4 {
		// IOCCSZ comes from the wire: 32 bits of 16-byte units. Data
		// beyond 1 GiB never goes in a capsule, whatever it says (on a
		// 32-bit int the product would overflow).
		inline = int(min(uint64(c.id.IOCCSZ)*16-nvme.SQESize, maxInlineData))
	}
	var cattr uint8
	if o.DisableSQFlowControl {
		cattr = nvme.CATTRDisableSQFlow
	}
	for i := 1; i <= n; i++ {
		q, err := dialQueue(ctx, c.addr, uint16(i), qs-1, 0, inline, o, fmt.Sprintf("nvmftest host: I/O queue %d", i))
		if err != nil {
			return err
		}
		c.io = append(c.io, q)
		if _, err := connectQueue(ctx, q, o, c.subnqn, c.cntlid, uint16(qs-1), cattr, 0); err != nil {
			return fmt.Errorf("connect I/O queue %d: %w", i, err)
		}
		if o.dev != nil && o.dev.connectTwice {
			_, _ = connectQueue(ctx, q, o, c.subnqn, c.cntlid, uint16(qs-1), cattr, 0)
		}
	}
	return nil
}

// Limits on what the host takes from a controller's Identify data.
const (
	// maxInlineData caps the in-capsule data a write may carry, whatever
	// IOCCSZ says.
	maxInlineData = 1 << 30
	// maxTransferShift: a limit of 2^31 bytes or more (MDTS with MPSMIN)
	// is taken as no limit, see MaxTransferSize.
	maxTransferShift = 30
	// maxLogChunk caps one Get Log Page command of a split read.
	maxLogChunk = 1 << 30
)

// aerCIDs is how many admin CIDs are kept for Asynchronous Event
// Requests (Linux's NVME_NR_AEN_COMMANDS).
const aerCIDs = 1

// dialQueue opens a TCP connection and runs ICReq/ICResp. label names the
// connection in a packet trace. The exchange ends with ctx (its deadline,
// and its cancellation at once) and after the initialization timeout at
// the latest: NVMe/TCP 1.0 3.1 has the host end a connection whose
// establishment times out.
func dialQueue(ctx context.Context, addr string, qid uint16, depth, reserved, inline int, o *Options, label string) (*Queue, error) {
	nc, err := o.dialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	if o.Capture != nil {
		nc = o.Capture.Record(nc, true, label)
	}
	if o.Poll && qid > 0 {
		nc = tcp.NewPollConn(nc, o.PollIdle)
	}
	// The reader answers R2Ts with H2CData; through an AsyncWriter it never
	// blocks on a target that is itself blocked writing to us. The limit
	// grows with the transfers submitted (Queue.growBacklog).
	conn := tcp.NewConn(tcp.NewAsyncWriter(nc, minWriteBacklog), false, tcp.Config{ReadBufferSize: readBufferSize(qid)})
	start := time.Now()
	dl := start.Add(o.initTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = nc.SetDeadline(dl)
	// A deadline in the past wakes the blocked read at once.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	var dg uint8
	if o.HeaderDigest {
		dg |= tcp.DgstHeader
	}
	if o.DataDigest {
		dg |= tcp.DgstData
	}
	icreq := tcp.ICReq{HPDA: o.HPDA, DGST: dg, MAXR2T: 0}
	var resp *tcp.ICResp
	if o.dev != nil {
		o.dev.icreq(&icreq)
		resp, err = o.dev.initialize(conn, icreq)
	} else {
		resp, err = conn.HostInitialize(icreq)
	}
	if !stop() {
		// ctx ended: whatever the exchange gave, the deadline may be
		// set under us.
		_ = conn.Close()
		return nil, fmt.Errorf("queue %d connection initialization: %w", qid, context.Cause(ctx))
	}
	if err != nil {
		var fe *tcp.FatalError
		if errors.As(err, &fe) {
			_ = conn.Terminate(fe)
		} else {
			_ = conn.Close()
		}
		return nil, fmt.Errorf("queue %d connection initialization: %w", qid, icError(err, addr, conn.Idle(), dl.Sub(start).Round(time.Millisecond)))
	}
	_ = nc.SetDeadline(time.Time{})
	return newQueue(conn, qid, depth, reserved, resp, inline, o.Timeout, o.Logger, o.dev), nil
}

// connectQueue sends the Fabrics Connect command and returns the CNTLID.
// cntlidRefusedError is connectQueue's error for a Connect refused with
// Connect Invalid Parameters at the CNTLID of the Connect data.
type cntlidRefusedError struct{ error }

func (e cntlidRefusedError) Unwrap() error { return e.error }

// refusedCNTLID reports whether err says the controller ID asked for was
// refused: what a static-model subsystem answers to FFFFh.
func refusedCNTLID(err error) bool {
	var r cntlidRefusedError
	return errors.As(err, &r)
}

func connectQueue(ctx context.Context, q *Queue, o *Options, subnqn string, cntlid, sqsize uint16, cattr uint8, katoMS uint32) (uint16, error) {
	cd := nvme.ConnectData{HostID: o.HostID, CNTLID: cntlid, SubNQN: subnqn, HostNQN: o.HostNQN}
	if o.dev != nil && o.dev.ioqHostIDDiffers && q.qid != 0 {
		cd.HostID[15] ^= 0xFF
	}
	if o.dev != nil && o.dev.cmdBeforeConnect && q.qid == 0 {
		_, _ = q.Exec(ctx, nvme.KeepAliveCmd(), nil, NoData)
	}
	data := cd.Append(make([]byte, 0, nvme.ConnectDataSize))
	cmd := nvme.Connect{QID: q.qid, SQSIZE: sqsize, CATTR: cattr, KATO: katoMS}
	cqe, err := q.Exec(ctx, cmd.SQE(0), data, ToController)
	if err != nil {
		var st nvme.Status
		if errors.As(err, &st) && st.Code() == nvme.StatusConnectInvalidParameters {
			in, off := nvme.DecodeConnectInvalidParam(cqe.DW0)
			var werr error = &ConnectInvalidParamError{Status: st, InData: in, Offset: off}
			if nvme.ConnectRefusedAtCNTLID(cqe, err) {
				werr = cntlidRefusedError{werr}
			}
			return 0, werr
		}
		return 0, err
	}
	if cqe.DW0&nvme.ConnectAuthReqASCR != 0 {
		return 0, fmt.Errorf("controller requires secure channel concatenation (AUTHREQ %#x), which this host does not support", cqe.DW0>>16)
	}
	if cqe.DW0&nvme.ConnectAuthReqATR != 0 {
		if o.dev != nil && o.dev.authCmdBefore && q.qid == 0 {
			_, _ = q.Exec(ctx, nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil, NoData)
		}
		if err := authenticate(ctx, q, o, subnqn); err != nil {
			if o.dev != nil && o.dev.authFailureIgnored && q.qid == 0 && !IsTransportError(err) {
				_, _ = q.Exec(ctx, nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil, NoData)
			}
			return 0, err
		}
	}
	return uint16(cqe.DW0), nil
}

// enable sets CC as Linux's nvme_enable_ctrl does (CC without EN, CAP
// again, then CC.EN) and waits for CSTS.RDY within CAP.TO.
func (c *Controller) enable(ctx context.Context) error {
	css := uint32(ccCSSNVM)
	switch {
	case c.cap.CSS()&nvme.CSSIOCS != 0:
		css = ccCSSCSI
	case c.cap.CSS()&nvme.CSSAdminOnly != 0 && c.cap.CSS()&nvme.CSSNVM == 0:
		css = ccCSSAdmin
	}
	cc := css<<ccCSSShift | ccIOSQES | ccIOCQES
	if err := c.PropertySet(ctx, nvme.PropCC, false, uint64(cc)); err != nil {
		return fmt.Errorf("property set CC: %w", err)
	}
	if v, err := c.PropertyGet(ctx, nvme.PropCAP, true); err == nil {
		c.cap = nvme.CAP(v)
	}
	cc |= nvme.CCEnable
	if err := c.PropertySet(ctx, nvme.PropCC, false, uint64(cc)); err != nil {
		return fmt.Errorf("property set CC.EN: %w", err)
	}
	c.cc = cc
	to := time.Duration(max(int(c.cap.TO()), 1)) * 500 * time.Millisecond // at most 127.5 s
	if err := c.waitCSTS(ctx, to, nvme.CSTSReady, nvme.CSTSReady); err != nil {
		return fmt.Errorf("waiting for CSTS.RDY: %w", err)
	}
	return nil
}

// waitCSTS polls CSTS until CSTS&mask == want.
func (c *Controller) waitCSTS(ctx context.Context, timeout time.Duration, mask, want uint32) error {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		v, err := c.PropertyGet(ctx, nvme.PropCSTS, false)
		if err != nil {
			return err
		}
		csts := uint32(v)
		if csts&nvme.CSTSFatal != 0 {
			return fmt.Errorf("controller fatal status (CSTS %#x)", csts)
		}
		if csts&mask == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v (CSTS %#x)", timeout, csts)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func (c *Controller) keepAlive() {
	defer close(c.kaDone)
	period, timeout := c.opts.KATO/2, c.opts.KATO
	ctx := context.Background()
	d := c.opts.dev
	if d != nil {
		if d.keepaliveLate {
			period = c.opts.KATO * 3 / 2
		}
		if d.keepaliveTimeoutIgnored {
			// No bound but Close: a Keep Alive nobody answers is
			// waited for until the controller is closed.
			timeout = -1
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-c.kaStop:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
	}
	t := time.NewTicker(period)
	defer t.Stop()
	r := &Request{wait: make(chan struct{}, 1)}
	for {
		select {
		case <-c.kaStop:
			return
		case <-c.admin.Dead():
			return
		case <-t.C:
			if d != nil && d.keepaliveTrafficBased && c.ioInflight() {
				continue
			}
			r.SQE, r.Data, r.Dir, r.Timeout = nvme.KeepAliveCmd(), nil, NoData, timeout
			if err := c.admin.Do(ctx, r); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.opts.Logger.Warn("keep-alive failed", "cntlid", c.cntlid, "err", err)
				if IsTransportError(err) {
					return
				}
			}
		}
	}
}

// ioInflight reports whether any I/O queue has a command in flight (for
// the keepalive-traffic-based deviation).
func (c *Controller) ioInflight() bool {
	for _, q := range c.io {
		if q.Inflight() > 0 {
			return true
		}
	}
	return false
}

// AsyncEvents enables the asynchronous events the controller supports
// (OAES) and keeps an Asynchronous Event Request outstanding; each
// completion's dword 0 (see nvme.AEN) is delivered on the channel, which is
// closed when the admin queue ends. Events the caller does not receive in
// time are dropped (with a warning). Reading the log page the event names
// re-arms that event type on the controller.
func (c *Controller) AsyncEvents() <-chan uint32 {
	c.aerOnce.Do(func() {
		c.aerCh = make(chan uint32, 16)
		c.aerDone = make(chan struct{})
		if aec := c.id.OAES & (nvme.AECNamespaceAttr | nvme.AECFirmwareAct | nvme.AECANAChange | nvme.AECDiscovery); aec != 0 {
			ctx, cancel := commandContext(context.Background(), c.opts.Timeout)
			if _, err := c.SetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, aec, false, nil); err != nil {
				c.opts.Logger.Warn("set async event configuration", "err", err)
			}
			cancel()
		}
		r := &Request{SQE: nvme.AsyncEventRequestCmd(), Timeout: -1}
		// The request always uses the admin queue's reserved CID, so
		// re-arming it from Done (on the reader) never waits.
		cid, _ := c.admin.reservedCID(0)
		r.Done = func(r *Request) {
			if r.Err == nil {
				select {
				case c.aerCh <- r.CQE.DW0:
				default:
					c.opts.Logger.Warn("async event dropped", "dw0", r.CQE.DW0)
				}
				if c.admin.submitReserved(r, cid) == nil {
					return
				}
			} else if !IsTransportError(r.Err) {
				c.opts.Logger.Warn("async event request failed", "err", r.Err)
			}
			close(c.aerCh)
			close(c.aerDone)
		}
		if err := c.admin.submitReserved(r, cid); err != nil {
			if !IsTransportError(err) {
				c.opts.Logger.Warn("async event request not sent", "err", err)
			}
			close(c.aerCh)
			close(c.aerDone)
		}
	})
	return c.aerCh
}

// Close ends the association as Linux does: keep-alive stops, the I/O
// queues are closed (their commands in flight fail), the controller is
// shut down with CC.SHN = normal and CSTS.SHST awaited, and the admin
// connection is closed. No goroutine is left behind.
func (c *Controller) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.teardown() })
	return c.closeErr
}

func (c *Controller) teardown() error {
	if c.kaStop != nil {
		close(c.kaStop)
		<-c.kaDone
	}
	for _, q := range c.io {
		_ = q.Close()
	}
	var err error
	if c.admin != nil {
		if c.admin.Err() == nil && c.cc&nvme.CCEnable != 0 {
			err = c.shutdown()
		}
		_ = c.admin.Close()
		// AsyncEvents may be starting on another goroutine (multipath's
		// watcher): Do waits for it, so aerDone is read after it is set,
		// and an AsyncEvents from now on gets a closed channel: the admin
		// queue has ended.
		c.aerOnce.Do(func() {
			c.aerCh = make(chan uint32)
			close(c.aerCh)
		})
		if c.aerDone != nil {
			<-c.aerDone
		}
	}
	return err
}

func (c *Controller) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout+max(c.opts.Timeout, 0))
	defer cancel()
	v, err := c.PropertyGet(ctx, nvme.PropCC, false)
	if err != nil {
		return fmt.Errorf("shutdown: property get CC: %w", err)
	}
	cc := uint32(v)&^nvme.CCShnMask | nvme.CCShnNormal
	if err := c.PropertySet(ctx, nvme.PropCC, false, uint64(cc)); err != nil {
		return fmt.Errorf("shutdown: property set CC.SHN: %w", err)
	}
	if err := c.waitCSTS(ctx, shutdownTimeout, nvme.CSTSShstMask, nvme.CSTSShstCmplt); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Admin returns the admin queue.
func (c *Controller) Admin() *Queue { return c.admin }

// IOQueues returns the I/O queues (QID 1..n).
func (c *Controller) IOQueues() []*Queue { return c.io }

// CNTLID returns the controller ID the Connect response assigned.
func (c *Controller) CNTLID() uint16 { return c.cntlid }

// CAP returns the Controller Capabilities property.
func (c *Controller) CAP() nvme.CAP { return c.cap }

// Version returns the Version property (see nvme.VersionString).
func (c *Controller) Version() uint32 { return c.vs }

// IdentifyData returns the Identify Controller data read at connect time.
func (c *Controller) IdentifyData() *nvme.IdentifyController { return c.id }

// Options returns the options in effect, defaults filled in.
func (c *Controller) Options() Options { return c.opts }

// SubNQN returns the subsystem NQN connected to.
func (c *Controller) SubNQN() string { return c.subnqn }

// MaxTransferSize returns the largest data transfer of one command in
// bytes, 2^(12+CAP.MPSMIN+MDTS), or 0 for no limit (MDTS 0, or no
// Identify data yet). The result is never negative and is at most 1 GiB:
// MDTS and MPSMIN come from the target (up to 2^(12+15+255)), and a limit
// of 2 GiB or more is reported as 0 too, since it bounds nothing a host
// sends and no int could hold every such value.
func (c *Controller) MaxTransferSize() int {
	if c.id == nil || c.id.MDTS == 0 {
		return 0
	}
	shift := 12 + int(c.cap.MPSMIN()) + int(c.id.MDTS)
	if shift > maxTransferShift {
		return 0
	}
	return 1 << shift
}

// Submit executes sqe on q with data moving in direction dir and waits
// for the completion.
func (c *Controller) Submit(ctx context.Context, q *Queue, sqe nvme.SQE, data []byte, dir Dir) (nvme.CQE, error) {
	return q.Exec(ctx, sqe, data, dir)
}

// PropertyGet reads a controller property (nvme.PropCAP etc.); size8
// selects an 8-byte property.
func (c *Controller) PropertyGet(ctx context.Context, offset uint32, size8 bool) (uint64, error) {
	cqe, err := c.admin.Exec(ctx, nvme.PropertyGetCmd(0, offset, size8), nil, NoData)
	if err != nil {
		return 0, err
	}
	v := nvme.PropertyValue(&cqe)
	if !size8 {
		v &= 0xFFFFFFFF
	}
	return v, nil
}

// PropertySet writes a controller property.
func (c *Controller) PropertySet(ctx context.Context, offset uint32, size8 bool, value uint64) error {
	_, err := c.admin.Exec(ctx, nvme.PropertySetCmd(0, offset, size8, value), nil, NoData)
	return err
}

// Identify reads the Identify Controller data structure.
func (c *Controller) Identify(ctx context.Context) (*nvme.IdentifyController, error) {
	buf := make([]byte, nvme.IdentifyDataSize)
	if _, err := c.admin.Exec(ctx, nvme.IdentifyCmd(nvme.CNSController, 0, 0), buf, FromController); err != nil {
		return nil, err
	}
	id := new(nvme.IdentifyController)
	if err := id.Decode(buf); err != nil {
		return nil, err
	}
	return id, nil
}

// IdentifyNamespace reads the Identify Namespace data structure of nsid.
func (c *Controller) IdentifyNamespace(ctx context.Context, nsid uint32) (*nvme.IdentifyNamespace, error) {
	buf := make([]byte, nvme.IdentifyDataSize)
	if _, err := c.admin.Exec(ctx, nvme.IdentifyCmd(nvme.CNSNamespace, nsid, 0), buf, FromController); err != nil {
		return nil, err
	}
	ns := new(nvme.IdentifyNamespace)
	if err := ns.Decode(buf); err != nil {
		return nil, err
	}
	return ns, nil
}

// ActiveNamespaces returns every active namespace ID, reading successive
// Active Namespace ID lists while they come back full.
func (c *Controller) ActiveNamespaces(ctx context.Context) ([]uint32, error) {
	var all []uint32
	var start uint32
	buf := make([]byte, nvme.IdentifyDataSize)
	for {
		clear(buf)
		if _, err := c.admin.Exec(ctx, nvme.IdentifyCmd(nvme.CNSActiveNSList, start, 0), buf, FromController); err != nil {
			return nil, err
		}
		l := nvme.DecodeNSList(buf)
		all = append(all, l...)
		if len(l) < nvme.IdentifyDataSize/4 || l[len(l)-1] >= 0xFFFFFFFE {
			return all, nil
		}
		start = l[len(l)-1]
	}
}

// NamespaceDescriptors reads the Namespace Identification Descriptor list
// of nsid.
func (c *Controller) NamespaceDescriptors(ctx context.Context, nsid uint32) ([]nvme.NSDescriptor, error) {
	buf := make([]byte, nvme.IdentifyDataSize)
	if _, err := c.admin.Exec(ctx, nvme.IdentifyCmd(nvme.CNSNSDescriptorList, nsid, 0), buf, FromController); err != nil {
		return nil, err
	}
	return nvme.DecodeNSDescriptors(buf)
}

// GetLogPage reads len(buf) bytes of log page lid from byte offset,
// splitting the read at the controller's maximum transfer size.
func (c *Controller) GetLogPage(ctx context.Context, lid uint8, nsid uint32, lsp uint8, offset uint64, buf []byte) error {
	return c.getLog(ctx, lid, nsid, lsp, offset, buf, false)
}

func (c *Controller) getLog(ctx context.Context, lid uint8, nsid uint32, lsp uint8, offset uint64, buf []byte, rae bool) error {
	if len(buf) == 0 || len(buf)%4 != 0 {
		return fmt.Errorf("initiator: log page length %d is not a positive multiple of 4", len(buf))
	}
	chunk := c.MaxTransferSize()
	if chunk <= 0 {
		chunk = len(buf)
	}
	chunk = min(chunk, maxLogChunk)
	for done := 0; done < len(buf); {
		n := min(chunk, len(buf)-done)
		sqe := nvme.GetLogPageCmd(lid, nsid, lsp, offset+uint64(done), uint32(n))
		if rae || done+n < len(buf) {
			nvme.SetRAE(&sqe)
		}
		if _, err := c.admin.Exec(ctx, sqe, buf[done:done+n], FromController); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// GetFeatures reads feature fid (sel: nvme.SelCurrent etc.) and returns
// completion dword 0; data, if any, receives the feature's data structure.
func (c *Controller) GetFeatures(ctx context.Context, fid uint8, nsid uint32, sel uint8, cdw11 uint32, data []byte) (uint32, error) {
	sqe := nvme.GetFeaturesCmd(fid, nsid, sel)
	sqe.CDW11 = cdw11
	dir := NoData
	if len(data) > 0 {
		dir = FromController
	}
	cqe, err := c.admin.Exec(ctx, sqe, data, dir)
	return cqe.DW0, err
}

// SetFeatures sets feature fid to cdw11 (and data, if any) and returns
// completion dword 0.
func (c *Controller) SetFeatures(ctx context.Context, fid uint8, nsid uint32, cdw11 uint32, save bool, data []byte) (uint32, error) {
	dir := NoData
	if len(data) > 0 {
		dir = ToController
	}
	cqe, err := c.admin.Exec(ctx, nvme.SetFeaturesCmd(fid, nsid, cdw11, save), data, dir)
	return cqe.DW0, err
}

// readBufferSize is a queue's receive buffer: the default 64 KiB for the
// admin queue, 256 KiB for an I/O queue, enough for a burst of 32 reads of
// 4 KiB with their headers (about 132 KiB) in one read system call.
// Smaller, the reader needed three reads a burst at queue depth 32.
func readBufferSize(qid uint16) int {
	if qid == 0 {
		return 64 << 10
	}
	return 256 << 10
}
