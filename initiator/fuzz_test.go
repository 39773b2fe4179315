package initiator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// fuzzRequests are in flight when the fuzzed bytes arrive, so every
// handler runs against real state: a read (C2HData), a write large enough
// for R2T, an in-capsule write, and a command without data.
func fuzzRequests() []*Request {
	return []*Request{
		{SQE: nvme.ReadCmd(1, 0, 16), Data: make([]byte, 8192), Dir: FromController},
		{SQE: nvme.WriteCmd(1, 16, 32), Data: make([]byte, 16384), Dir: ToController},
		{SQE: nvme.WriteCmd(1, 48, 2), Data: make([]byte, 1024), Dir: ToController},
		{SQE: nvme.FlushCmd(1)},
	}
}

// fuzzSeeds are well-formed controller streams for the requests above
// (CIDs are handed out 0, 1, 2, 3 in submission order).
func fuzzSeeds(o tcp.EncodeOptions) [][]byte {
	data := make([]byte, 8192)
	resp := func(cid uint16, st nvme.Status) []byte {
		return tcp.AppendPDU(nil, &tcp.CapsuleResp{CQE: nvme.CQE{CID: cid, SQID: 1, Status: st}}, nil, o)
	}
	var all []byte
	all = tcp.AppendPDU(all, &tcp.C2HData{CCCID: 0, DATAO: 0, DATAL: 4096}, data[:4096], o)
	all = tcp.AppendPDU(all, &tcp.C2HData{CCCID: 0, DATAO: 4096, DATAL: 4096, Last: true}, data[:4096], o)
	all = append(all, resp(0, 0)...)
	all = tcp.AppendPDU(all, &tcp.R2T{CCCID: 1, TTAG: 7, R2TO: 0, R2TL: 16384}, nil, o)
	all = append(all, resp(1, 0)...)
	all = append(all, resp(2, nvme.StatusLBAOutOfRange)...)
	all = append(all, resp(3, 0)...)
	return [][]byte{
		all,
		tcp.AppendPDU(nil, &tcp.C2HData{CCCID: 0, DATAL: 8192, Last: true, Success: true}, data, o),
		tcp.AppendPDU(nil, &tcp.R2T{CCCID: 1, TTAG: 1, R2TO: 8192, R2TL: 8192}, nil, o),
		tcp.AppendPDU(nil, &tcp.TermReq{FES: tcp.FESInvalidHeaderField, FEI: 2}, make([]byte, 24), tcp.EncodeOptions{}),
		resp(9, 0),
	}
}

// FuzzQueueReader feeds arbitrary bytes, as if from a target, to a queue
// with commands in flight. Whatever arrives, the host must not panic, must
// complete every submitted request exactly once, and Close must return
// with no goroutine of the queue left running.
func FuzzQueueReader(f *testing.F) {
	for mode := range 4 {
		o := tcp.EncodeOptions{Digests: tcp.Digests{Header: mode&1 != 0, Data: mode&2 != 0}}
		for _, s := range fuzzSeeds(o) {
			f.Add(byte(mode), s)
		}
	}
	f.Fuzz(func(t *testing.T, mode byte, stream []byte) {
		a, b := net.Pipe()
		hc := tcp.NewConn(a, false, tcp.Config{})
		cc := tcp.NewConn(b, true, tcp.Config{})
		dg := uint8(mode & 3)
		errc := make(chan error, 1)
		go func() {
			_, err := cc.ControllerInitialize(tcp.ICPolicy{HeaderDigest: true, DataDigest: true, MaxHPDA: 31})
			errc <- err
		}()
		resp, err := hc.HostInitialize(tcp.ICReq{DGST: dg})
		if err != nil || <-errc != nil {
			t.Fatalf("initialization: %v", err)
		}
		q := newQueue(hc, 1, 8, 0, resp, 4096, 0, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

		// The controller side: drain what the host sends (net.Pipe is
		// synchronous), write the fuzzed stream, then hang up.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(io.Discard, b)
		}()

		var done atomic.Int32
		reqs := fuzzRequests()
		submitted := 0
		for _, r := range reqs {
			r.Done = func(*Request) { done.Add(1) }
			if q.Submit(r) == nil {
				submitted++
			}
		}
		_ = cc.SendRaw(stream)
		_ = b.Close()
		closed := make(chan struct{})
		go func() { _ = q.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Queue.Close did not return")
		}
		<-drained
		if got := int(done.Load()); got != submitted {
			t.Fatalf("%d of %d submitted requests completed", got, submitted)
		}
	})
}

// hostParams turns the fuzzer's first input into the fake target's
// configuration and the host's options. Each byte is XORed with its
// default, so zero bytes (or a short input) leave the target well
// behaved.
type hostParams struct {
	opts                 Options
	readLen, logLen      int
	smallWrite, bigWrite int
}

var (
	fuzzReadLens  = []int{4096, 512, 128 << 10, 64<<10 + 512, 1 << 20}
	fuzzLogLens   = []int{8192, 4, 4096, 200 << 10, 1 << 20}
	fuzzWriteLens = []int{16 << 10, 512, 128 << 10, 1 << 20}
)

func fuzzParams(f *fakeTarget, p []byte) hostParams {
	at := func(i int, def byte) byte {
		if i < len(p) {
			return p[i] ^ def
		}
		return def
	}
	flags := at(0, 0)
	hp := hostParams{opts: Options{
		HeaderDigest:         flags&1 != 0,
		DataDigest:           flags&2 != 0,
		DisableSQFlowControl: flags&4 != 0,
		KATO:                 []time.Duration{-1, 1, time.Millisecond, 10 * time.Millisecond}[flags>>3&3],
		QueueSize:            int(at(1, 8)),
		NrIOQueues:           1 + int(at(22, 0))%3,
		Timeout:              200 * time.Millisecond,
		Logger:               slog.New(slog.DiscardHandler),
	}}
	mqes := uint64(at(2, 127)) | uint64(at(3, 0))<<8
	f.cap = nvme.CAP(mqes | uint64(at(4, 2))<<24 | uint64(at(6, 1))<<37 | uint64(at(5, 0)&0xF)<<48)
	f.id.MDTS = at(7, 5)
	f.id.MAXCMD = uint16(at(8, 128)) | uint16(at(9, 0))<<8
	f.id.IOCCSZ = uint32(at(10, 0x04)) | uint32(at(11, 0x02))<<8 | uint32(at(12, 0))<<16 | uint32(at(13, 0))<<24
	f.id.ICDOFF = uint16(at(14, 0))
	f.id.OAES = uint32(at(15, 0)) << 8
	f.id.CMIC = at(16, 0)
	f.nq = nvme.NumQueuesValue(uint16(at(17, 7)), uint16(at(18, 7)))
	hp.readLen = fuzzReadLens[int(at(19, 0))%len(fuzzReadLens)]
	hp.logLen = fuzzLogLens[int(at(20, 0))%len(fuzzLogLens)]
	hp.smallWrite = 512
	hp.bigWrite = fuzzWriteLens[int(at(21, 0))%len(fuzzWriteLens)]
	return hp
}

// runHostScenario connects to a fake target configured by params whose
// decisions come from choices, and runs Identify (inside Connect), Get Log
// Page, a read and two writes, then Close. It returns what the host did
// wrong: a success without the right data, or not returning within a
// bound. record, if set, sees every decision the fake makes.
func runHostScenario(params, choices []byte, record func(string)) error {
	f := newFakeTarget(nil)
	fc := &fuzzChoices{b: choices}
	f.choose = func(what string, n int) int {
		if record != nil {
			record(what)
		}
		return fc.choose(what, n)
	}
	hp := fuzzParams(f, params)
	opts := f.options(hp.opts)
	defer f.close()

	errc := make(chan error, 1)
	go func() { errc <- hostScenario(f, hp, opts) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		return fmt.Errorf("the host did not return within 20 s\n%s", buf[:runtime.Stack(buf, true)])
	}
}

func hostScenario(f *fakeTarget, hp hostParams, opts Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := Connect(ctx, "fake", "nqn.test", opts)
	if err != nil {
		return nil
	}
	defer c.Close()
	if got, want := c.IdentifyData().Append(nil), f.id.Append(nil); !bytes.Equal(got, want) {
		return errors.New("Connect succeeded with Identify data the target did not send")
	}
	if n := c.MaxTransferSize(); n < 0 || n > 1<<30 {
		return fmt.Errorf("MaxTransferSize %d", n)
	}
	log := bytes.Repeat([]byte{0xEE}, hp.logLen)
	if err := c.GetLogPage(ctx, 2, 0, 0, 0, log); err == nil && !bytes.Equal(log, fakeLog(2, 0, hp.logLen)) {
		return fmt.Errorf("GetLogPage of %d bytes succeeded with data the target did not send", hp.logLen)
	}
	if len(c.IOQueues()) == 0 {
		return nil
	}
	q := c.IOQueues()[0]
	want := fakeContent(3, hp.readLen)
	buf := make([]byte, hp.readLen)
	for i := range buf {
		buf[i] = ^want[i]
	}
	if err := q.Read(ctx, 1, 3, uint32(hp.readLen/512), buf); err == nil && !bytes.Equal(buf, want) {
		return fmt.Errorf("a read of %d bytes succeeded with data the target did not send", hp.readLen)
	}
	for i, n := range []int{hp.smallWrite, hp.bigWrite} {
		lba := uint64(100 + i)
		data := fakeContent(lba+50, n)
		if err := q.Write(ctx, 1, lba, uint32(n/512), data); err == nil && !bytes.Equal(f.written(lba), data) {
			return fmt.Errorf("a write of %d bytes succeeded but the target did not get its data", n)
		}
	}
	return nil
}

// hostFuzzSeeds are the review's cases and, from a recording of a
// well-behaved run, every misbehaviour of the fake at the first place it
// can occur.
func hostFuzzSeeds(tb testing.TB) [][2][]byte {
	xor := func(pairs ...int) []byte { // (index, value) pairs, XORed with the defaults
		def := make([]byte, 23)
		def[1], def[2], def[4], def[6], def[7], def[8], def[10], def[11], def[17], def[18] = 8, 127, 2, 1, 5, 128, 0x04, 0x02, 7, 7
		p := make([]byte, 23)
		for i := 0; i < len(pairs); i += 2 {
			p[pairs[i]] = byte(pairs[i+1]) ^ def[pairs[i]]
		}
		return p
	}
	seeds := [][2][]byte{
		{nil, nil},
		{xor(7, 51), nil},         // MDTS 51: 2^63 overflowed to a negative size
		{xor(5, 15, 7, 40), nil},  // MPSMIN 15 + MDTS 40
		{xor(7, 0, 21, 3), nil},   // no MDTS, a 1 MiB write
		{xor(0, 4), nil},          // SQ flow control disabled
		{xor(0, 1<<3, 1, 2), nil}, // KATO 1 ns, queue size 2
		{xor(10, 0xFF, 11, 0xFF, 12, 0xFF, 13, 0xFF), nil}, // IOCCSZ 2^32-1
	}
	var names []string
	if err := runHostScenario(nil, nil, func(what string) { names = append(names, what) }); err != nil {
		tb.Fatalf("well-behaved target: %v", err)
	}
	modes := map[string]int{"icresp": 7, "connect": 6, "c2h": 14, "r2t": 10, "csts": 2, "nq": 3, "sqfc": 2}
	seen := map[string]int{}
	for i, what := range names {
		n, ok := modes[what]
		if !ok || seen[what] >= 3 { // the first three of each kind
			continue
		}
		seen[what]++
		for m := 1; m < n; m++ {
			ch := make([]byte, i+1)
			ch[i] = byte(m)
			seeds = append(seeds, [2][]byte{nil, ch})
		}
	}
	return seeds
}

// FuzzHostAgainstTarget runs the host against a fake target whose every
// decision comes from the fuzzer: ICResp fields, the Connect response,
// CAP (MQES, TO, CSS, MPSMIN), Identify (MDTS, MAXCMD, IOCCSZ, ICDOFF,
// OAES, CMIC), the Number of Queues answer, and how each command's data
// and completion go out (short, long, absent, out of order, SUCCESS on any
// queue, R2Ts beyond the transfer or with gaps, stalls). Connect, Get Log
// Page, a read and two writes must each either succeed with the right
// data or fail, within a bound; nothing may panic, and Close must leave
// no goroutine of the host running.
func FuzzHostAgainstTarget(f *testing.F) {
	for _, s := range hostFuzzSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, params, choices []byte) {
		if err := runHostScenario(params, choices, nil); err != nil {
			t.Fatal(err)
		}
		noLeak(t)
	})
}
