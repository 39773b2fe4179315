package initiator

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// fakeCtrl is a scripted controller on the other end of a net.Pipe. Its
// reader hands each command (with in-capsule data) and each H2CData to the
// test's handlers; replies queued with send go out from a separate
// goroutine so the reader always keeps reading, as a real socket's buffers
// would allow.
type fakeCtrl struct {
	t     *testing.T
	conn  *tcp.Conn
	out   chan sendItem
	onCmd func(f *fakeCtrl, sqe nvme.SQE, data []byte)
	onH2C func(f *fakeCtrl, h tcp.H2CData, data []byte)
	// echo answers every command with success straight from the reader
	// goroutine, allocation free (for the allocation tests).
	echo   bool
	resp   tcp.CapsuleResp
	echoCh chan uint16
	done   chan struct{}
	mu     sync.Mutex
	terms  []tcp.TermReq
	cmds   []nvme.SQE
}

type sendItem struct {
	p    tcp.PDU
	data []byte
	raw  []byte
}

type pairOpts struct {
	dgst   uint8
	maxH2C uint32
	inline int
	depth  int
	// reserved CIDs at the end of the queue (the admin queue's AER CID)
	reserved int
	timeout  time.Duration
	echo     bool
	onCmd    func(f *fakeCtrl, sqe nvme.SQE, data []byte)
	onH2C    func(f *fakeCtrl, h tcp.H2CData, data []byte)
}

func newPair(t testing.TB, o pairOpts) (*Queue, *fakeCtrl) {
	a, b := net.Pipe()
	hc := tcp.NewConn(a, false, tcp.Config{})
	cc := tcp.NewConn(b, true, tcp.Config{})
	errc := make(chan error, 1)
	go func() {
		_, err := cc.ControllerInitialize(tcp.ICPolicy{HeaderDigest: true, DataDigest: true, MaxH2CData: o.maxH2C, MaxHPDA: 31})
		errc <- err
	}()
	resp, err := hc.HostInitialize(tcp.ICReq{DGST: o.dgst})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if o.depth == 0 {
		o.depth = 31
	}
	f := &fakeCtrl{conn: cc, out: make(chan sendItem, 4096), onCmd: o.onCmd, onH2C: o.onH2C, echo: o.echo, echoCh: make(chan uint16, 4096), done: make(chan struct{})}
	if tt, ok := t.(*testing.T); ok {
		f.t = tt
	}
	go f.sender()
	go f.reader()
	q := newQueue(hc, 1, o.depth, o.reserved, resp, o.inline, o.timeout, testLogger(t), nil)
	t.Cleanup(func() {
		_ = q.Close()
		_ = cc.Close()
		<-f.done
	})
	return q, f
}

func (f *fakeCtrl) send(p tcp.PDU, data []byte) {
	f.out <- sendItem{p: p, data: append([]byte(nil), data...)}
}

func (f *fakeCtrl) sendRaw(b []byte) { f.out <- sendItem{raw: b} }

func (f *fakeCtrl) respond(cid uint16, st nvme.Status) {
	f.send(&tcp.CapsuleResp{CQE: nvme.CQE{CID: cid, Status: st}}, nil)
}

func (f *fakeCtrl) sender() {
	for {
		var it sendItem
		var ok bool
		select {
		case it, ok = <-f.out:
		case cid := <-f.echoCh:
			f.resp.CQE.CID = cid
			if f.conn.Send(&f.resp, nil) != nil {
				return
			}
			continue
		}
		if !ok {
			return
		}
		var err error
		if it.raw != nil {
			err = f.conn.SendRaw(it.raw)
		} else {
			err = f.conn.Send(it.p, it.data)
		}
		if err != nil {
			return
		}
	}
}

func (f *fakeCtrl) reader() {
	defer close(f.done)
	defer close(f.out)
	buf := make([]byte, 1<<20)
	for {
		p, err := f.conn.Next()
		if err != nil {
			return
		}
		var data []byte
		if n := f.conn.DataLen(); n > 0 {
			data = buf[:n]
			if err := f.conn.ReadData(data); err != nil {
				return
			}
		}
		switch v := p.(type) {
		case *tcp.CapsuleCmd:
			if f.echo {
				f.echoCh <- v.SQE.CID
				continue
			}
			f.mu.Lock()
			f.cmds = append(f.cmds, v.SQE)
			f.mu.Unlock()
			if f.onCmd != nil {
				f.onCmd(f, v.SQE, append([]byte(nil), data...))
			}
		case *tcp.H2CData:
			if f.onH2C != nil {
				f.onH2C(f, *v, append([]byte(nil), data...))
			}
		case *tcp.TermReq:
			f.mu.Lock()
			f.terms = append(f.terms, *v)
			f.mu.Unlock()
			return
		}
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

var digestCases = []struct {
	name string
	dgst uint8
}{{"nodigest", 0}, {"hdgst", tcp.DgstHeader}, {"ddgst", tcp.DgstData}, {"both", tcp.DgstHeader | tcp.DgstData}}

func TestReadReassemblesC2HData(t *testing.T) {
	for _, dc := range digestCases {
		t.Run(dc.name, func(t *testing.T) {
			src := pattern(10000, 3)
			q, _ := newPair(t, pairOpts{dgst: dc.dgst, onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
				if sqe.DPTR.Type != nvme.SGLTransportDataBlock || sqe.DPTR.Length != 10000 {
					t.Errorf("read DPTR %+v", sqe.DPTR)
				}
				for off := 0; off < len(src); off += 4096 {
					end := min(off+4096, len(src))
					f.send(&tcp.C2HData{CCCID: sqe.CID, DATAO: uint32(off), DATAL: uint32(end - off), Last: end == len(src)}, src[off:end])
				}
				f.respond(sqe.CID, 0)
			}})
			buf := make([]byte, len(src))
			if err := q.Read(context.Background(), 1, 0, 20, buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, src) {
				t.Fatal("read data differs")
			}
		})
	}
}

func TestReadSuccessFlagCompletes(t *testing.T) {
	src := pattern(4096, 9)
	q, _ := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		f.send(&tcp.C2HData{CCCID: sqe.CID, DATAL: 4096, Last: true, Success: true}, src)
	}})
	buf := make([]byte, 4096)
	for range 3 { // the CID must be free again after each
		if err := q.Read(context.Background(), 1, 0, 1, buf); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(buf, src) {
		t.Fatal("data differs")
	}
	if q.Inflight() != 0 {
		t.Fatalf("inflight %d", q.Inflight())
	}
}

func TestWriteR2TSplitsAtMaxH2CData(t *testing.T) {
	for _, dc := range digestCases {
		t.Run(dc.name, func(t *testing.T) {
			src := pattern(20000, 5)
			got := make([]byte, len(src))
			var mu sync.Mutex
			var pdus []tcp.H2CData
			q, _ := newPair(t, pairOpts{dgst: dc.dgst, maxH2C: 4096, inline: 1024,
				onCmd: func(f *fakeCtrl, sqe nvme.SQE, data []byte) {
					if len(data) != 0 || sqe.DPTR.Type != nvme.SGLTransportDataBlock {
						t.Errorf("large write sent in capsule: %+v", sqe.DPTR)
					}
					f.send(&tcp.R2T{CCCID: sqe.CID, TTAG: 7, R2TO: 0, R2TL: 12000}, nil)
				},
				onH2C: func(f *fakeCtrl, h tcp.H2CData, data []byte) {
					mu.Lock()
					pdus = append(pdus, h)
					mu.Unlock()
					copy(got[h.DATAO:], data)
					if h.Last && h.DATAO+h.DATAL == 12000 {
						f.send(&tcp.R2T{CCCID: h.CCCID, TTAG: 8, R2TO: 12000, R2TL: 8000}, nil)
					} else if h.Last {
						f.respond(h.CCCID, 0)
					}
				}})
			if err := q.Write(context.Background(), 1, 0, 40, src); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, src) {
				t.Fatal("written data differs")
			}
			want := []struct {
				o, l uint32
				last bool
				ttag uint16
			}{{0, 4096, false, 7}, {4096, 4096, false, 7}, {8192, 3808, true, 7}, {12000, 4096, false, 8}, {16096, 3904, true, 8}}
			if len(pdus) != len(want) {
				t.Fatalf("%d H2CData PDUs, want %d: %+v", len(pdus), len(want), pdus)
			}
			for i, w := range want {
				p := pdus[i]
				if p.DATAO != w.o || p.DATAL != w.l || p.Last != w.last || p.TTAG != w.ttag {
					t.Errorf("H2CData %d = %+v, want %+v", i, p, w)
				}
			}
		})
	}
}

func TestWriteInCapsule(t *testing.T) {
	src := pattern(4096, 1)
	var got []byte
	q, _ := newPair(t, pairOpts{inline: 8192, onCmd: func(f *fakeCtrl, sqe nvme.SQE, data []byte) {
		if sqe.DPTR.Type != nvme.SGLDataBlockOffset || sqe.DPTR.Length != 4096 || sqe.Flags&nvme.PSDTMask != nvme.PSDTSGL {
			t.Errorf("in-capsule SQE %v DPTR %+v", sqe.String(), sqe.DPTR)
		}
		got = data
		f.respond(sqe.CID, 0)
	}})
	if err := q.Write(context.Background(), 1, 8, 8, src); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("in-capsule data differs")
	}
}

func TestStatusIsReturned(t *testing.T) {
	q, _ := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		f.respond(sqe.CID, nvme.StatusLBAOutOfRange|nvme.StatusDNR)
	}})
	err := q.Flush(context.Background(), 1)
	var st nvme.Status
	if !errors.As(err, &st) || st.Code() != nvme.StatusLBAOutOfRange || IsTransportError(err) {
		t.Fatalf("err %v, want LBA out of range status", err)
	}
	if q.Err() != nil {
		t.Fatal("a status must not kill the queue")
	}
}

func TestDataDigestErrorFailsCommandOnly(t *testing.T) {
	src := pattern(4096, 2)
	q, _ := newPair(t, pairOpts{dgst: tcp.DgstData, onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		b := tcp.AppendPDU(nil, &tcp.C2HData{CCCID: sqe.CID, DATAL: 4096, Last: true}, src, tcp.EncodeOptions{Digests: tcp.Digests{Data: true}})
		b[len(b)-1] ^= 0xFF
		f.sendRaw(b)
		f.respond(sqe.CID, 0)
	}})
	buf := make([]byte, 4096)
	err := q.Read(context.Background(), 1, 0, 1, buf)
	var st nvme.Status
	if !errors.As(err, &st) || st.Code() != nvme.StatusDataTransferError {
		t.Fatalf("err %v, want data transfer error", err)
	}
	if q.Err() != nil {
		t.Fatalf("queue died: %v", q.Err())
	}
}

func TestTransportFailureFailsInflight(t *testing.T) {
	var mu sync.Mutex
	n := 0
	q, _ := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		mu.Lock()
		n++
		if n == 5 {
			_ = f.conn.Close()
		}
		mu.Unlock()
	}})
	reqs := make([]*Request, 5)
	done := make(chan *Request, 5)
	for i := range reqs {
		reqs[i] = &Request{SQE: nvme.FlushCmd(1), Done: func(r *Request) { done <- r }}
		if err := q.Submit(reqs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for range reqs {
		r := <-done
		if !IsTransportError(r.Err) {
			t.Fatalf("request err %v, want transport error", r.Err)
		}
	}
	if err := q.Submit(&Request{SQE: nvme.FlushCmd(1)}); !IsTransportError(err) {
		t.Fatalf("submit on dead queue: %v", err)
	}
}

func TestTimeoutFailsQueue(t *testing.T) {
	q, _ := newPair(t, pairOpts{timeout: 30 * time.Millisecond, onCmd: func(*fakeCtrl, nvme.SQE, []byte) {}})
	err := q.Flush(context.Background(), 1)
	if !errors.Is(err, ErrTimeout) || !IsTransportError(err) {
		t.Fatalf("err %v, want timeout transport error", err)
	}
}

func TestC2HOutOfRangeTerminates(t *testing.T) {
	q, f := newPair(t, pairOpts{onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		f.send(&tcp.C2HData{CCCID: sqe.CID, DATAO: 4096, DATAL: 4096, Last: true}, make([]byte, 4096))
	}})
	err := q.Read(context.Background(), 1, 0, 1, make([]byte, 4096))
	if !IsTransportError(err) {
		t.Fatalf("err %v", err)
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.terms) != 1 || f.terms[0].FES != tcp.FESDataOutOfRange {
		t.Fatalf("H2CTermReq %+v, want FES data out of range", f.terms)
	}
}

func TestFusedSentBackToBack(t *testing.T) {
	q, f := newPair(t, pairOpts{inline: 8192, onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		f.respond(sqe.CID, 0)
	}})
	if err := q.CompareAndWrite(context.Background(), 1, 0, 1, make([]byte, 512), make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cmds) != 2 || f.cmds[0].Fuse() != nvme.FuseFirst || f.cmds[1].Fuse() != nvme.FuseSecond ||
		f.cmds[0].Opcode != nvme.CmdCompare || f.cmds[1].Opcode != nvme.CmdWrite {
		t.Fatalf("fused commands %v", f.cmds)
	}
}

func TestManyInFlight(t *testing.T) {
	var mu sync.Mutex
	var held []uint16
	q, _ := newPair(t, pairOpts{depth: 32, onCmd: func(f *fakeCtrl, sqe nvme.SQE, _ []byte) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, sqe.CID)
		if len(held) == 32 { // all in flight at once: answer in reverse
			for i := len(held) - 1; i >= 0; i-- {
				f.send(&tcp.C2HData{CCCID: held[i], DATAL: 8, Last: true, Success: true}, binary.LittleEndian.AppendUint64(nil, uint64(held[i])))
			}
		}
	}})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8)
			r := &Request{SQE: nvme.ReadCmd(1, 0, 1), Data: buf, Dir: FromController}
			if err := q.Do(context.Background(), r); err != nil {
				t.Error(err)
			}
			if binary.LittleEndian.Uint64(buf) != uint64(r.CQE.CID) {
				t.Errorf("request got data %x for CID %d", buf, r.CQE.CID)
			}
		}()
	}
	wg.Wait()
}

func TestSubmitCompleteAllocatesNothing(t *testing.T) {
	q, _ := newPair(t, pairOpts{echo: true})
	r := &Request{SQE: nvme.FlushCmd(1), wait: make(chan struct{}, 1), Done: signalDone}
	run := func() {
		if err := q.Submit(r); err != nil {
			t.Fatal(err)
		}
		<-r.wait
	}
	for range 100 {
		run()
	}
	if a := testing.AllocsPerRun(1000, run); a != 0 {
		t.Fatalf("%v allocations per submit/complete, want 0", a)
	}
}

// BenchmarkQueueQD32 keeps 32 commands in flight on a net.Pipe against an
// echoing fake controller, resubmitting from Done.
func BenchmarkQueueQD32(b *testing.B) {
	q, _ := newPair(b, pairOpts{echo: true, depth: 32})
	var wg sync.WaitGroup
	var left int64
	var mu sync.Mutex
	next := func(r *Request) {
		mu.Lock()
		more := left > 0
		left--
		mu.Unlock()
		if more {
			if err := q.Submit(r); err != nil {
				b.Error(err)
				wg.Done()
			}
			return
		}
		wg.Done()
	}
	reqs := make([]*Request, 32)
	for i := range reqs {
		reqs[i] = &Request{SQE: nvme.FlushCmd(1), Done: next}
	}
	b.ReportAllocs()
	b.ResetTimer()
	left = int64(b.N) - 32
	for _, r := range reqs {
		wg.Add(1)
		if err := q.Submit(r); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
}
