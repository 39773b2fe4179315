package perf

import (
	"context"
	"fmt"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/target"
)

// startNullTarget serves one 1 GiB null namespace (512-byte blocks) on a
// free loopback port: reads cost the target nothing but the protocol.
func startNullTarget(tb testing.TB) (addr, nqn string) {
	tb.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "1GiB", BlockSize: 512}}
	t, err := target.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := t.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = t.Close() })
	return t.Addrs()[0].String(), cfg.Subsystems[0].NQN
}

func connect(tb testing.TB, addr, nqn string, depth int) *initiator.Controller {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := initiator.Connect(ctx, addr, nqn, initiator.Options{NrIOQueues: 1, QueueSize: depth + 1, DisableSQFlowControl: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func usec(h *hdrhistogram.Histogram, q float64) float64 {
	return float64(h.ValueAtQuantile(q)) / 1e3
}

// BenchmarkRead4K measures 4 KiB random reads from our initiator to our
// target (null backend, loopback, one queue) at queue depth 1 and 32, and,
// untimed in the same run, the ping-pong baseline with the same number of
// operations. One benchmark op is one read. Metrics: IOPS and p50/p99
// latency of both, and the ratios that BENCHMARKS.md tracks.
func BenchmarkRead4K(b *testing.B) {
	for _, qd := range []int{1, 32} {
		b.Run(fmt.Sprintf("QD%d", qd), func(b *testing.B) {
			addr, nqn := startNullTarget(b)
			ctrl := connect(b, addr, nqn, qd)
			pp, err := StartPingPongServer("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer pp.Close()
			ops := max(b.N, qd)
			job := ReadJob{Queue: ctrl.IOQueues()[0], NSID: 1, BlockSize: 512, Blocks: (1 << 30) / 512,
				IOSize: 4096, Depth: qd, Ops: ops, Seed: 1}

			b.StopTimer()
			// Warm both up so neither pays for first-use costs.
			if _, err := RunPingPong(pp.Addr(), qd, 2*qd+100); err != nil {
				b.Fatal(err)
			}
			warm := job
			warm.Ops = 2*qd + 100
			if _, err := warm.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			base, err := RunPingPong(pp.Addr(), qd, ops)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.StartTimer()
			res, err := job.Run(context.Background())
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			bh := hdrhistogram.New(1, int64(10*time.Second), 3)
			for _, l := range base.Latencies {
				_ = bh.RecordValue(int64(l))
			}
			b.ReportMetric(res.IOPS(), "IOPS")
			b.ReportMetric(usec(res.Latency, 50), "p50-us")
			b.ReportMetric(usec(res.Latency, 99), "p99-us")
			b.ReportMetric(base.IOPS(), "pingpong-IOPS")
			b.ReportMetric(usec(bh, 50), "pingpong-p50-us")
			b.ReportMetric(res.IOPS()/base.IOPS(), "x-pingpong")
		})
	}
}

// BenchmarkPingPong is the baseline alone, for profiling it.
func BenchmarkPingPong(b *testing.B) {
	for _, qd := range []int{1, 32} {
		b.Run(fmt.Sprintf("QD%d", qd), func(b *testing.B) {
			pp, err := StartPingPongServer("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer pp.Close()
			b.ResetTimer()
			res, err := RunPingPong(pp.Addr(), qd, max(b.N, qd))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.IOPS(), "IOPS")
		})
	}
}

// TestReadJobCompletes checks the load loop itself: every read issued
// completes, each one is timed, and allocation stays off the hot path.
func TestReadJobCompletes(t *testing.T) {
	addr, nqn := startNullTarget(t)
	ctrl := connect(t, addr, nqn, 8)
	job := ReadJob{Queue: ctrl.IOQueues()[0], NSID: 1, BlockSize: 512, Blocks: (1 << 30) / 512,
		IOSize: 4096, Depth: 8, Ops: 2000, Seed: 7}
	res, err := job.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 2000 || res.Latency.TotalCount() != 2000 {
		t.Fatalf("ops %d, latencies %d; want 2000 each", res.Ops, res.Latency.TotalCount())
	}
	if _, err := (ReadJob{Queue: ctrl.IOQueues()[0], BlockSize: 512, IOSize: 100, Depth: 1, Ops: 1}).Run(context.Background()); err == nil {
		t.Fatal("IOSize not a multiple of the block size was accepted")
	}
}

func TestPingPong(t *testing.T) {
	pp, err := StartPingPongServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Close()
	res, err := RunPingPong(pp.Addr(), 4, 100)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 100 || len(res.Latencies) != 100 {
		t.Fatalf("got %d ops, %d latencies", res.Ops, len(res.Latencies))
	}
}
