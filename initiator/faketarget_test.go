package initiator

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// fakeTarget is a scripted NVMe/TCP controller with just enough behind it
// for Connect, Identify, Get Log Page, reads and writes. Every decision it
// makes (what ICResp, CAP and Identify say, how each command's data and
// completion go out) comes from choose, so a test can script a hostile
// target and the fuzzer can explore them; choice 0 is always the
// well-behaved one, so an exhausted fuzz input ends in a working target.
//
// Content is a function of what was asked (LBA, log offset), so a host
// that reports success can be checked: its buffer must hold exactly what
// the fake would have sent.
type fakeTarget struct {
	tb testing.TB

	icresp tcp.ICResp
	cap    nvme.CAP
	vs     uint32
	id     nvme.IdentifyController
	nq     uint32 // Set Features Number of Queues, completion dword 0
	// choose returns a decision in [0, n); nil always returns 0.
	choose func(what string, n int) int
	// syncSend makes each connection's reader send its answers itself
	// (blocking while the host does not read), as a target whose receive
	// loop writes; otherwise a sender goroutine per connection does.
	syncSend bool
	// sockBuf, if set, sizes the socket buffers of accepted connections.
	sockBuf int
	// logs, if set, holds real log pages by LID (zero past their end);
	// other log pages are patterned filler.
	logs map[uint8][]byte

	mu     sync.Mutex
	cc     uint32
	katos  []uint32          // KATO of each admin Connect
	writes map[uint64][]byte // data received by LBA, for writes completed with success
	conns  []net.Conn
	wg     sync.WaitGroup
}

// newFakeTarget returns a well-behaved target: MDTS 128 KiB, queue size
// 128, in-capsule data of 8 KiB on I/O queues, one namespace.
func newFakeTarget(tb testing.TB) *fakeTarget {
	f := &fakeTarget{
		tb:     tb,
		icresp: tcp.ICResp{MAXH2CDATA: 128 << 10},
		cap:    nvme.CAP(127 | 2<<24 | 1<<37),
		vs:     nvme.MakeVersion(2, 0, 0),
		nq:     nvme.NumQueuesValue(7, 7),
		writes: map[uint64][]byte{},
	}
	f.id = nvme.IdentifyController{
		VID: 0x1b96, SN: "fake", MN: "fake target", FR: "1",
		MDTS: 5, MAXCMD: 128, NN: 1, SGLS: 1, CNTLID: 1,
		IOCCSZ: (8192 + nvme.SQESize) / 16, IORCSZ: 1,
		SUBNQN: "nqn.2024-01.io.nvmftest:fake",
	}
	return f
}

func (f *fakeTarget) pick(what string, n int) int {
	if f.choose == nil || n <= 1 {
		return 0
	}
	return f.choose(what, n) % n
}

// options returns host options that reach this fake over net.Pipe.
func (f *fakeTarget) options(o Options) Options {
	o.dial = func(ctx context.Context, _ string) (net.Conn, error) {
		a, b := net.Pipe()
		f.mu.Lock()
		f.conns = append(f.conns, b)
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(b)
		}()
		return a, nil
	}
	return o
}

// listen serves the fake on a loopback port until the test ends and
// returns its address.
func (f *fakeTarget) listen(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f.serveListener(ln)
	tb.Cleanup(func() {
		_ = ln.Close()
		f.close()
	})
	return ln.Addr().String()
}

// serveListener accepts connections on ln until it is closed.
func (f *fakeTarget) serveListener(ln net.Listener) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := nc.(*net.TCPConn); ok && f.sockBuf > 0 {
				_ = tc.SetReadBuffer(f.sockBuf)
				_ = tc.SetWriteBuffer(f.sockBuf)
			}
			f.mu.Lock()
			f.conns = append(f.conns, nc)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(nc)
			}()
		}
	}()
}

// close closes every connection and waits for the fake's goroutines.
func (f *fakeTarget) close() {
	f.mu.Lock()
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	f.wg.Wait()
}

// fakeData is the content the fake sends for byte off of the data of a
// read at lba (or of a log page, lba being the log page identifier).
func fakeData(lba uint64, off int) byte {
	x := (lba*4096 + uint64(off)) * 0x9E3779B1
	return byte(x>>24) ^ byte(off)
}

func fakeContent(lba uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = fakeData(lba, i)
	}
	return b
}

// fakeConn is one connection's state; only its reader touches it.
type fakeConn struct {
	f       *fakeTarget
	conn    *tcp.Conn
	enc     tcp.EncodeOptions
	qid     uint16
	flowOff bool

	sendMu sync.Mutex
	sendC  *sync.Cond
	queue  []sendItem
	closed bool

	writes map[uint16]*fakeWrite
}

type fakeWrite struct {
	sqe  nvme.SQE
	data []byte
	got  int
	// r2ts left to send, as (offset, length)
	plan [][2]uint32
	cur  [2]uint32
}

func (f *fakeTarget) serve(nc net.Conn) {
	c := &fakeConn{f: f, conn: tcp.NewConn(nc, true, tcp.Config{}), writes: map[uint16]*fakeWrite{}}
	c.sendC = sync.NewCond(&c.sendMu)
	defer c.conn.Close()
	p, err := c.conn.Next()
	if err != nil {
		return
	}
	req, ok := p.(*tcp.ICReq)
	if !ok {
		return
	}
	hpda := req.HPDA
	resp := f.icresp
	switch f.pick("icresp", 8) {
	case 1:
		resp.DGST = req.DGST // grant what was asked
	case 2:
		resp.DGST = tcp.DgstHeader | tcp.DgstData // enable what was not asked
	case 3:
		resp.MAXH2CDATA = uint32(f.pick("maxh2c", 3)) * 4097
	case 4:
		resp.CPDA = uint8(f.pick("cpda", 40))
	case 5:
		resp.PFV = 1
	case 6:
		resp.MAXH2CDATA = 4096
		resp.CPDA = 31
	}
	if err := c.conn.Send(&resp, nil); err != nil {
		return
	}
	dg := tcp.Digests{Header: resp.DGST&tcp.DgstHeader != 0, Data: resp.DGST&tcp.DgstData != 0}
	c.conn.Negotiated(dg, resp.CPDA, hpda)
	c.conn.SetLimits(64<<20, max(resp.MAXH2CDATA, tcp.MinMaxH2CData))
	c.enc = tcp.EncodeOptions{Digests: dg, PDA: hpda}
	if !f.syncSend {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c.sender()
		}()
		defer c.stopSender()
	}
	for {
		p, err := c.conn.Next()
		if err != nil {
			return
		}
		var data []byte
		if n := c.conn.DataLen(); n > 0 {
			data = make([]byte, n)
			if err := c.conn.ReadData(data); err != nil && err != tcp.ErrDataDigest {
				return
			}
		}
		switch v := p.(type) {
		case *tcp.CapsuleCmd:
			c.command(v.SQE, data)
		case *tcp.H2CData:
			c.h2c(*v, data)
		case *tcp.TermReq:
			return
		}
	}
}

func (c *fakeConn) sender() {
	for {
		c.sendMu.Lock()
		for len(c.queue) == 0 && !c.closed {
			c.sendC.Wait()
		}
		if c.closed {
			c.sendMu.Unlock()
			return
		}
		it := c.queue[0]
		c.queue = c.queue[1:]
		c.sendMu.Unlock()
		if c.write(it) != nil {
			_ = c.conn.Close()
			return
		}
	}
}

func (c *fakeConn) stopSender() {
	c.sendMu.Lock()
	c.closed = true
	c.sendC.Broadcast()
	c.sendMu.Unlock()
}

func (c *fakeConn) write(it sendItem) error {
	if it.raw != nil {
		return c.conn.SendRaw(it.raw)
	}
	return c.conn.Send(it.p, it.data)
}

// send queues (or, with syncSend, writes) p with data.
func (c *fakeConn) send(p tcp.PDU, data []byte) {
	c.out(sendItem{p: p, data: data})
}

func (c *fakeConn) out(it sendItem) {
	if c.f.syncSend {
		_ = c.write(it)
		return
	}
	c.sendMu.Lock()
	c.queue = append(c.queue, it)
	c.sendC.Signal()
	c.sendMu.Unlock()
}

func (c *fakeConn) respond(sqe *nvme.SQE, st nvme.Status, dw0, dw1 uint32) {
	cqe := nvme.CQE{CID: sqe.CID, SQID: c.qid, Status: st, DW0: dw0, DW1: dw1, SQHD: 1}
	if c.flowOff {
		cqe.SQHD = 0xFFFF
	}
	c.send(&tcp.CapsuleResp{CQE: cqe}, nil)
}

func (c *fakeConn) command(sqe nvme.SQE, data []byte) {
	f := c.f
	if sqe.Opcode == nvme.AdminFabrics {
		c.fabrics(&sqe, data)
		return
	}
	if c.qid == 0 {
		switch sqe.Opcode {
		case nvme.AdminIdentify:
			var content []byte
			if uint8(sqe.CDW10) == nvme.CNSController {
				content = f.id.Append(nil)
			}
			c.deliver(&sqe, content)
		case nvme.AdminGetLogPage:
			lid := uint64(uint8(sqe.CDW10))
			off := int(uint64(sqe.CDW13)<<32 | uint64(sqe.CDW12))
			n := int(sqe.DPTR.Length)
			if n > 64<<20 {
				c.respond(&sqe, nvme.StatusInvalidField|nvme.StatusDNR, 0, 0)
				return
			}
			b := make([]byte, n)
			if page, ok := f.logs[uint8(lid)]; ok {
				if off < len(page) {
					copy(b, page[off:])
				}
			} else {
				for i := range b {
					b[i] = fakeData(lid, off+i)
				}
			}
			c.deliver(&sqe, b)
		case nvme.AdminSetFeatures:
			dw0 := uint32(0)
			if nvme.FeatureID(&sqe) == nvme.FeatNumQueues {
				dw0 = f.nq
				if f.pick("nq", 3) == 1 {
					dw0 = 0xFFFFFFFF
				}
			}
			c.respond(&sqe, c.status("setfeatures"), dw0, 0)
		case nvme.AdminAsyncEventReq:
			if f.pick("aer", 4) == 1 {
				c.respond(&sqe, 0, 0x0003_0002, 0) // ANA change notice
			}
		default:
			c.respond(&sqe, c.status("admin"), 0, 0)
		}
		return
	}
	switch sqe.Opcode {
	case nvme.CmdRead:
		n := int(sqe.DPTR.Length)
		if n > 64<<20 {
			c.respond(&sqe, nvme.StatusInvalidField|nvme.StatusDNR, 0, 0)
			return
		}
		c.deliver(&sqe, fakeContent(sqe.SLBA(), n))
	case nvme.CmdWrite:
		c.write1(&sqe, data)
	default:
		c.respond(&sqe, c.status("io"), 0, 0)
	}
}

// status is a completion status: mostly success.
func (c *fakeConn) status(what string) nvme.Status {
	switch c.f.pick(what, 6) {
	case 1:
		return nvme.StatusInvalidField | nvme.StatusDNR
	case 2:
		return nvme.StatusDataTransferError
	}
	return 0
}

func (c *fakeConn) fabrics(sqe *nvme.SQE, data []byte) {
	f := c.f
	switch sqe.FCType() {
	case nvme.FabricsConnect:
		cmd := nvme.DecodeConnect(sqe)
		c.qid = cmd.QID
		if cmd.QID == 0 {
			f.mu.Lock()
			f.katos = append(f.katos, cmd.KATO)
			f.mu.Unlock()
		}
		c.flowOff = cmd.CATTR&nvme.CATTRDisableSQFlow != 0 && f.pick("sqfc", 2) == 0
		switch f.pick("connect", 6) {
		case 1:
			c.respond(sqe, nvme.StatusConnectInvalidParameters|nvme.StatusDNR, 0, 0)
		case 2:
			c.respond(sqe, 0, 1|nvme.ConnectAuthReqATR, 0)
		case 3:
			c.respond(sqe, 0, 1|nvme.ConnectAuthReqASCR, 0)
		default:
			c.respond(sqe, 0, 1, 0)
		}
	case nvme.FabricsPropertyGet:
		off, _, _ := nvme.DecodeProperty(sqe)
		var v uint64
		f.mu.Lock()
		cc := f.cc
		f.mu.Unlock()
		switch off {
		case nvme.PropCAP:
			v = uint64(f.cap)
		case nvme.PropVS:
			v = uint64(f.vs)
		case nvme.PropCC:
			v = uint64(cc)
		case nvme.PropCSTS:
			if cc&nvme.CCEnable != 0 {
				v |= nvme.CSTSReady
			}
			if cc&nvme.CCShnMask != 0 {
				v |= nvme.CSTSShstCmplt
			}
			if f.pick("csts", 8) == 1 {
				v |= nvme.CSTSFatal
			}
		}
		c.respond(sqe, c.status("propget"), uint32(v), uint32(v>>32))
	case nvme.FabricsPropertySet:
		off, _, v := nvme.DecodeProperty(sqe)
		if off == nvme.PropCC {
			f.mu.Lock()
			f.cc = uint32(v)
			f.mu.Unlock()
		}
		c.respond(sqe, 0, 0, 0)
	default:
		c.respond(sqe, nvme.StatusInvalidOpcode|nvme.StatusDNR, 0, 0)
	}
}

// deliver answers a command that reads content (len(content) may differ
// from the host's buffer, sqe.DPTR.Length, e.g. for an unknown CNS).
func (c *fakeConn) deliver(sqe *nvme.SQE, content []byte) {
	n := int(sqe.DPTR.Length)
	if len(content) < n {
		content = append(content, make([]byte, n-len(content))...)
	}
	content = content[:n]
	cid := sqe.CID
	c2h := func(off, l int, last, success bool) {
		c.send(&tcp.C2HData{CCCID: cid, DATAO: uint32(off), DATAL: uint32(l), Last: last, Success: success}, content[off:off+l])
	}
	ok := func() { c.respond(sqe, 0, 0, 0) }
	mode := c.f.pick("c2h", 14)
	if n == 0 && mode < 5 {
		ok()
		return
	}
	switch mode {
	case 0: // one PDU, then the response
		c2h(0, n, true, false)
		ok()
	case 1: // several PDUs, the last with SUCCESS (on any queue)
		half := n / 2
		if half > 0 {
			c2h(0, half, false, false)
		}
		c2h(half, n-half, true, true)
	case 2: // the first half with LAST_PDU, then success
		c2h(0, max(n/2, 1), true, false)
		ok()
	case 3: // the first half without LAST_PDU, then success
		c2h(0, max(n/2, 1), false, false)
		ok()
	case 4: // no data at all, success
		ok()
	case 5: // beyond the buffer
		c.send(&tcp.C2HData{CCCID: cid, DATAL: uint32(n + 4), Last: true}, make([]byte, n+4))
		ok()
	case 6:
		c.respond(sqe, nvme.StatusInvalidField|nvme.StatusDNR, 0, 0)
	case 7: // a gap
		if n > 4 {
			c2h(4, n-4, true, false)
		}
		ok()
	case 8: // SUCCESS without LAST_PDU
		b := tcp.AppendPDU(nil, &tcp.C2HData{CCCID: cid, DATAL: uint32(n), Last: true, Success: true}, content, c.enc)
		b[1] &^= tcp.FlagLastPDU
		c.out(sendItem{raw: b})
	case 9: // all, the response, then one more PDU
		if n > 0 {
			c2h(0, n, true, false)
		}
		ok()
		c.send(&tcp.C2HData{CCCID: cid, DATAO: 1, DATAL: 1, Last: true}, []byte{0})
	case 10: // SUCCESS, and a response all the same
		if n > 0 {
			c2h(0, n, true, true)
		}
		ok()
	case 11: // nothing (the host times out)
	case 12: // data for a command identifier never in flight
		c.send(&tcp.C2HData{CCCID: 0xFFF0, DATAL: uint32(max(n, 1)), Last: true}, make([]byte, max(n, 1)))
	case 13: // early LAST_PDU, then more data
		if n > 1 {
			c2h(0, n/2, true, false)
			c2h(n/2, n-n/2, true, false)
		}
		ok()
	}
}

// write1 answers a Write: in-capsule data at once, else through R2Ts.
func (c *fakeConn) write1(sqe *nvme.SQE, data []byte) {
	n := int(sqe.DPTR.Length)
	if sqe.DPTR.Type == nvme.SGLDataBlockOffset {
		st := c.status("incapsule")
		if st == 0 {
			c.record(sqe.SLBA(), data)
		}
		c.respond(sqe, st, 0, 0)
		return
	}
	w := &fakeWrite{sqe: *sqe, data: make([]byte, n)}
	switch c.f.pick("r2t", 10) {
	case 0:
		w.plan = [][2]uint32{{0, uint32(n)}}
	case 1:
		h := uint32(max(n/2, 1))
		w.plan = [][2]uint32{{0, h}}
		if int(h) < n {
			w.plan = append(w.plan, [2]uint32{h, uint32(n) - h})
		}
	case 2: // beyond the data
		w.plan = [][2]uint32{{0, uint32(n) + 1}}
	case 3: // R2TL 0
		w.plan = [][2]uint32{{0, 0}}
	case 4: // a gap
		w.plan = [][2]uint32{{1, uint32(max(n-1, 1))}}
	case 5: // success without asking for the data
		c.respond(sqe, 0, 0, 0)
		return
	case 6: // an R2T for a command identifier never in flight
		c.send(&tcp.R2T{CCCID: 0xFFF0, TTAG: 1, R2TL: uint32(max(n, 1))}, nil)
		return
	case 7:
		c.respond(sqe, nvme.StatusInvalidField|nvme.StatusDNR, 0, 0)
		return
	case 8: // read data for a write
		c.send(&tcp.C2HData{CCCID: sqe.CID, DATAL: 4, Last: true}, make([]byte, 4))
		return
	case 9: // nothing
		return
	}
	c.writes[sqe.CID] = w
	c.nextR2T(w)
}

func (c *fakeConn) nextR2T(w *fakeWrite) {
	w.cur, w.plan = w.plan[0], w.plan[1:]
	c.send(&tcp.R2T{CCCID: w.sqe.CID, TTAG: uint16(w.cur[0]), R2TO: w.cur[0], R2TL: w.cur[1]}, nil)
}

func (c *fakeConn) h2c(h tcp.H2CData, data []byte) {
	w := c.writes[h.CCCID]
	if w == nil || uint64(h.DATAO)+uint64(len(data)) > uint64(len(w.data)) {
		return
	}
	copy(w.data[h.DATAO:], data)
	w.got += len(data)
	if !h.Last {
		return
	}
	if len(w.plan) > 0 {
		c.nextR2T(w)
		return
	}
	delete(c.writes, h.CCCID)
	st := c.status("write")
	if st == 0 && w.got == len(w.data) {
		c.record(w.sqe.SLBA(), w.data)
	}
	c.respond(&w.sqe, st, 0, 0)
}

func (c *fakeConn) record(lba uint64, data []byte) {
	c.f.mu.Lock()
	c.f.writes[lba] = append([]byte(nil), data...)
	c.f.mu.Unlock()
}

// written returns the data of the last successful write at lba.
func (f *fakeTarget) written(lba uint64) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[lba]
}

// fuzzChoices turns fuzz bytes into fakeTarget decisions: one byte each,
// 0 once they run out.
type fuzzChoices struct {
	mu sync.Mutex
	b  []byte
}

func (c *fuzzChoices) choose(_ string, n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	return v % n
}
