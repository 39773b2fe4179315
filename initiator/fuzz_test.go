package initiator

import (
	"io"
	"log/slog"
	"net"
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
		q := newQueue(hc, 1, 8, resp, 4096, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))

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
