package target

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// ioLoop runs n 4 KiB commands at queue depth qd without allocating on the
// host side, so allocations counted are the target's.
func ioLoop(tb testing.TB, q *client, write bool, n, qd int) {
	cmds := make([]tcp.CapsuleCmd, qd)
	buf := make([]byte, 4096)
	for i := range cmds {
		s := nvme.ReadCmd(2, uint64(i*8), 8)
		if write {
			s = nvme.WriteCmd(1, uint64(i*8), 8)
			nvme.SetInCapsule(&s, 4096)
		} else {
			s.NSID = 1
			nvme.SetDataLength(&s, 4096)
		}
		s.CID = uint16(i)
		cmds[i].SQE = s
	}
	send := func(i int) {
		var data []byte
		if write {
			data = buf
		}
		if err := q.conn.Send(&cmds[i], data); err != nil {
			tb.Fatal(err)
		}
	}
	inflight := 0
	for i := 0; i < qd && i < n; i++ {
		send(i)
		inflight++
	}
	sent := inflight
	for inflight > 0 {
		p, err := q.conn.Next()
		if err != nil {
			tb.Fatal(err)
		}
		switch v := p.(type) {
		case *tcp.C2HData:
			if err := q.conn.ReadData(buf[:v.DATAL]); err != nil {
				tb.Fatal(err)
			}
		case *tcp.CapsuleResp:
			if !v.CQE.Status.Success() {
				tb.Fatal(v.CQE.Status)
			}
			inflight--
			if sent < n {
				send(int(v.CQE.CID))
				sent++
				inflight++
			}
		}
	}
}

func benchIO(b *testing.B, write bool, qd int) {
	tg := startTarget(b, testConfig())
	a := admin(b, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(b, tg.Addrs()[0], a.cntlid, 1, 0)
	ioLoop(b, q, write, 1000, qd) // warm up slots and buffers
	b.ReportAllocs()
	b.SetBytes(4096)
	b.ResetTimer()
	ioLoop(b, q, write, b.N, qd)
}

func BenchmarkTargetRead4K(b *testing.B)      { benchIO(b, false, 1) }
func BenchmarkTargetRead4KQD32(b *testing.B)  { benchIO(b, false, 32) }
func BenchmarkTargetWrite4KQD32(b *testing.B) { benchIO(b, true, 32) }

// TestHotPathAllocs checks that 4 KiB reads and writes on the memory
// backend allocate nothing per I/O in steady state, sleeping and polling.
func TestHotPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, poll := range []bool{false, true} {
		cfg := testConfig()
		cfg.Poll = poll // target --poll: the polling read path allocates nothing either
		tg := startTarget(t, cfg)
		a := admin(t, tg.Addrs()[0], testNQN, 0)
		q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
		for _, write := range []bool{false, true} {
			ioLoop(t, q, write, 2000, 16)
			avg := testing.AllocsPerRun(5, func() { ioLoop(t, q, write, 1000, 16) })
			if per := avg / 1000; per > 0.05 {
				t.Errorf("poll=%v write=%v: %.3f allocations per I/O", poll, write, per)
			}
		}
	}
}
