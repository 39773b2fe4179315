package perf

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// startNullTarget serves one null namespace (512-byte blocks) on a free
// loopback port: reads cost the target nothing but the protocol.
func startNullTarget(tb testing.TB) (addr, nqn string) {
	tb.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "64GiB", BlockSize: 512}}
	t := targettest.Start(tb, cfg)
	return t.Addrs()[0].String(), cfg.Subsystems[0].NQN
}

// readLoad connects numjobs queues at depth qd (SQ flow control disabled,
// as the Linux host asks when the target allows: a 4 KiB read is then one
// C2HData with SUCCESS, the ping-pong's exact message shape) and returns
// the targets of a 4 KiB random-read job of ops reads per queue.
func readLoad(tb testing.TB, addr, nqn string, qd, numjobs, ops int) ([]loadgen.Target, func()) {
	tb.Helper()
	host, port, _ := net.SplitHostPort(addr)
	j := loadgen.NewJob("randread")
	for _, kv := range [][2]string{{"rw", "randread"}, {"bs", "4k"}, {"iodepth", fmt.Sprint(qd)}, {"numjobs", fmt.Sprint(numjobs)}} {
		if err := j.Set(kv[0], kv[1]); err != nil {
			tb.Fatal(err)
		}
	}
	j.Size = int64(ops) * 4096
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts, conn, err := loadgen.Dial(ctx, []*loadgen.Job{j}, loadgen.Address{Addr: host, Port: port, SubNQN: nqn},
		initiator.Options{DisableSQFlowControl: true})
	if err != nil {
		tb.Fatal(err)
	}
	return ts, func() { _ = conn.Close() }
}

func runLoad(tb testing.TB, ts []loadgen.Target) *loadgen.JobResult {
	tb.Helper()
	res, err := loadgen.Run(context.Background(), ts, loadgen.RunOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return res.Jobs[0]
}

func usec(h *hdrhistogram.Histogram, q float64) float64 {
	return float64(h.ValueAtQuantile(q)) / 1e3
}

// BenchmarkRead4K measures 4 KiB random reads from our initiator to our
// target (null backend, loopback, one queue) at queue depth 1 and 32,
// driven by the load generator (loadgen), against the ping-pong baseline
// with the same number of operations in the same run. One benchmark op is
// one read. Metrics: IOPS and p50/p99 latency of both, and the ratios that
// BENCHMARKS.md tracks.
//
// The machines are shared and noisy, so the two are measured in
// alternating rounds (baseline, ours, baseline, ours, ...) and summed:
// a burst of outside load then hits both rather than one.
func BenchmarkRead4K(b *testing.B) {
	const rounds = 4
	for _, qd := range []int{1, 32} {
		b.Run(fmt.Sprintf("QD%d", qd), func(b *testing.B) {
			addr, nqn := startNullTarget(b)
			pp, err := StartPingPongServer("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer pp.Close()
			per := max(b.N/rounds, qd)

			b.StopTimer()
			// Warm both up so neither pays for first-use costs.
			if _, err := RunPingPong(pp.Addr(), qd, 2*qd+100); err != nil {
				b.Fatal(err)
			}
			warm, closeWarm := readLoad(b, addr, nqn, qd, 1, 2*qd+100)
			runLoad(b, warm)
			closeWarm()

			bh := hdrhistogram.New(1, int64(10*time.Second), 3)
			ours := hdrhistogram.New(1, int64(10*time.Second), 3)
			var baseOps, ourOps int64
			var baseTime, ourTime time.Duration
			b.ReportAllocs()
			for range rounds {
				base, err := RunPingPong(pp.Addr(), qd, per)
				if err != nil {
					b.Fatal(err)
				}
				for _, l := range base.Latencies {
					_ = bh.RecordValue(int64(l))
				}
				baseOps += int64(base.Ops)
				baseTime += base.Elapsed
				ts, closeLoad := readLoad(b, addr, nqn, qd, 1, per)
				b.StartTimer()
				res := runLoad(b, ts)
				b.StopTimer()
				closeLoad()
				ours.Merge(res.Read.Clat)
				ourOps += res.Read.IOs
				ourTime += res.Runtime
			}
			iops := float64(ourOps) / ourTime.Seconds()
			baseIOPS := float64(baseOps) / baseTime.Seconds()
			b.ReportMetric(iops, "IOPS")
			b.ReportMetric(usec(ours, 50), "p50-us")
			b.ReportMetric(usec(ours, 99), "p99-us")
			b.ReportMetric(baseIOPS, "pingpong-IOPS")
			b.ReportMetric(usec(bh, 50), "pingpong-p50-us")
			b.ReportMetric(iops/baseIOPS, "x-pingpong")
			b.ReportMetric(usec(ours, 50)/usec(bh, 50), "x-pingpong-p50")
		})
	}
}

// BenchmarkReadScaling: 4 KiB random reads at QD32 on 1, 2 and 4 queues
// (each its own TCP connection), against the same number of ping-pong
// connections in parallel in the same run. One op is one read in total.
func BenchmarkReadScaling(b *testing.B) {
	for _, nq := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("queues%d", nq), func(b *testing.B) {
			const qd = 32
			addr, nqn := startNullTarget(b)
			pp, err := StartPingPongServer("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer pp.Close()
			per := max(b.N/nq, qd)
			b.StopTimer()
			base, err := parallelPingPong(pp.Addr(), nq, qd, per)
			if err != nil {
				b.Fatal(err)
			}
			ts, closeLoad := readLoad(b, addr, nqn, qd, nq, per)
			defer closeLoad()
			b.ReportAllocs()
			b.StartTimer()
			res := runLoad(b, ts)
			b.StopTimer()
			iops := res.Read.IOPS(res.Runtime)
			b.ReportMetric(iops, "IOPS")
			b.ReportMetric(usec(res.Read.Clat, 99), "p99-us")
			b.ReportMetric(base, "pingpong-IOPS")
			b.ReportMetric(iops/base, "x-pingpong")
		})
	}
}

// parallelPingPong runs n ping-pong connections at once and returns their
// combined rate.
func parallelPingPong(addr string, n, depth, ops int) (float64, error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() { _, errs[i] = RunPingPong(addr, depth, ops) })
	}
	wg.Wait()
	el := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(n*ops) / el.Seconds(), nil
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

// TestReadLoadCompletes checks the load loop over a real queue: every read
// issued completes and each one is timed.
func TestReadLoadCompletes(t *testing.T) {
	addr, nqn := startNullTarget(t)
	ts, closeLoad := readLoad(t, addr, nqn, 8, 2, 2000)
	defer closeLoad()
	res := runLoad(t, ts)
	if res.Read.IOs != 4000 || res.Read.Clat.TotalCount() != 4000 {
		t.Fatalf("ops %d, latencies %d; want 4000 each", res.Read.IOs, res.Read.Clat.TotalCount())
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
