package reports

import (
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/suites"
)

var t0 = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

// sampleSummary is a conformance run with a failed mandatory check that
// has a trace, a passing check, a finding and a skip.
func sampleSummary() suites.Summary {
	s := suites.Summary{Target: "127.0.0.1:4420", SubNQN: "nqn.2024-01.io.nvmftest:ref"}
	add := func(r suites.Result) {
		s.Results = append(s.Results, r)
		s.Findings = append(s.Findings, r.Findings...)
		switch r.State {
		case "passed":
			s.Passed++
		case "skipped":
			s.Skipped++
		default:
			s.Failed++
			if r.Level == suites.Mandatory {
				s.MandatoryFailed++
			}
		}
	}
	add(suites.Result{Requirement: suites.Requirement{ID: "TCP-IC-001", Section: "NVMe/TCP 1.0 3.6.2.1", Level: suites.Mandatory, Title: "The target answers ICReq with ICResp"},
		Area: "transport", State: "passed", Duration: 3 * time.Millisecond})
	add(suites.Result{Requirement: suites.Requirement{ID: "TCP-PDU-004", Section: "NVMe/TCP 1.0 3.6.2.4", Level: suites.Mandatory, Title: "A bad header digest ends the connection with a C2HTermReq"},
		Area: "transport", State: "failed", Message: "expected C2HTermReq FES 0x03 <script>alert(1)</script>, got the socket closed\nmore detail", Duration: 12 * time.Millisecond,
		Traces: []string{"conformance/traces/TCP-PDU-004-conn1.pcapng"}})
	add(suites.Result{Requirement: suites.Requirement{ID: "FAB-CONN-002", Section: "NVMe-oF 1.1 3.3", Level: suites.Recommended, Title: "Connect with an unknown host NQN is refused"},
		Area: "fabrics", State: "passed", Findings: []suites.Finding{{ID: "FAB-CONN-002", Section: "NVMe-oF 1.1 3.3", Observed: "SCT 1 SC 0x82", Want: "SCT 1 SC 0x84", Note: "nvmet reports invalid parameters", Profile: "linux-nvmet"}}})
	add(suites.Result{Requirement: suites.Requirement{ID: "ADM-ANA-001", Section: "NVMe Base 2.0 8.1.1", Level: suites.Optional, Title: "ANA log page reports every group"},
		Area: "admin", State: "skipped", Message: "target does not claim ANA"})
	return s
}

func hist(t testing.TB, base int64, n int) *hdrhistogram.Histogram {
	t.Helper()
	h := hdrhistogram.New(1, int64(10*time.Minute), 3)
	for i := range n {
		v := base + int64(i%100)*base/100
		if i%1000 == 999 {
			v = 20 * base // a tail
		}
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// sampleLoad is a load result with a read job and a mixed job, scaled:
// iops multiplies the I/O count, lat the latencies.
func sampleLoad(t testing.TB, iops, lat float64) *loadgen.Result {
	t.Helper()
	rt := 2 * time.Second
	r := loadgen.NewJob("randread")
	m := loadgen.NewJob("mixed")
	m.Write = true
	res := &loadgen.Result{Start: t0, Elapsed: rt}
	n := int64(200000 * iops)
	res.Jobs = []*loadgen.JobResult{
		{Job: r, Runtime: rt, Devices: []loadgen.DeviceInfo{{Name: "nqn.2024-01.io.nvmftest:ref:ns1 @ 127.0.0.1:4420"}},
			Read: loadgen.DirResult{IOs: n, Bytes: n * 4096, Clat: hist(t, int64(20000*lat), 5000)}},
		{Job: m, Runtime: rt,
			Read:  loadgen.DirResult{IOs: n / 2, Bytes: n / 2 * 4096, Clat: hist(t, int64(30000*lat), 3000)},
			Write: loadgen.DirResult{IOs: n / 2, Bytes: n / 2 * 4096, Clat: hist(t, int64(40000*lat), 3000)}},
	}
	for i := 1; i <= 8; i++ {
		at := time.Duration(i) * 250 * time.Millisecond
		for ji := range res.Jobs {
			for _, op := range []loadgen.Op{loadgen.OpRead, loadgen.OpWrite} {
				if op == loadgen.OpWrite && ji == 0 {
					continue
				}
				res.Series = append(res.Series, loadgen.Sample{Job: ji, Op: op, Elapsed: at, Length: 250 * time.Millisecond,
					IOPS: 100000 * iops * (1 + 0.05*float64(i%3)), BW: 4096 * 100000 * iops, P50: int64(20000 * lat), P99: int64(40000 * lat), P999: int64(90000 * lat), Max: int64(400000 * lat)})
			}
		}
	}
	return res
}

// sampleFailover is a path-down scenario; pass decides its verdict.
func sampleFailover(pass bool, stall time.Duration) *failover.Report {
	rep := &failover.Report{Scenario: failover.PathDown, Target: "127.0.0.1:4420 nqn.2024-01.io.nvmftest:ref", Paths: []string{"127.0.0.1:4420", "127.0.0.1:4421"},
		Pass: pass, LongestStall: stall, StallTotal: stall + 10*time.Millisecond, StallThreshold: 50 * time.Millisecond,
		IOs: 123456, Retried: 17, Verified: 4096, MovedAway: true, MovedBack: pass,
		Events: []failover.Event{
			{At: 1000 * time.Millisecond, Who: "scenario", What: "fault: path1 down (proxy refuses and resets)"},
			{At: 1180 * time.Millisecond, Who: "path 1", What: "controller lost: keep-alive timeout"},
			{At: 4000 * time.Millisecond, Who: "scenario", What: "path1 back up"},
		}}
	if !pass {
		rep.Reason = "I/O did not return to path1 after it came back"
	}
	for i := 1; i <= 24; i++ {
		at := time.Duration(i) * 250 * time.Millisecond
		p1, p2 := 20000.0, 20000.0
		if at > time.Second && at <= 4*time.Second {
			p1, p2 = 0, 40000
		}
		rep.Samples = append(rep.Samples, failover.Sample{At: at, IOPS: []float64{p1, p2}})
	}
	return rep
}

func sampleRun(t testing.TB) *Run {
	r := NewRun([]string{"nvmftest", "conform", "-a", "127.0.0.1", "--bench", "--report-dir", "out"})
	r.Started = t0
	r.Elapsed = 95 * time.Second
	r.AddConformance(sampleSummary())
	r.AddBench(sampleLoad(t, 1, 1))
	r.AddFailover(sampleFailover(true, 180*time.Millisecond))
	r.AddTraces("traces/path-down-path1.pcapng")
	return r
}
