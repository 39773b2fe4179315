package main

import (
	"strings"
	"testing"
	"time"
)

func TestListenAddr(t *testing.T) {
	for line, want := range map[string]string{
		"listening on 127.0.0.1:4420 (I/O and discovery)": "127.0.0.1:4420",
		"  port 1: 127.0.0.1:39001, serves all":           "127.0.0.1:39001",
		"127.0.0.1:0 is not an address yet":               "",
		"nothing here":                                    "",
	} {
		if got := listenAddr(line, ""); got != want {
			t.Errorf("listenAddr(%q) = %q, want %q", line, got, want)
		}
	}
	if got := listenAddr("pingpong listening on 127.0.0.1:5", "pingpong listening on "); got != "127.0.0.1:5" {
		t.Errorf("with a prefix: %q", got)
	}
}

func TestParseFioJSON(t *testing.T) {
	m, err := parseFioJSON([]byte(`{"jobs":[{"read":{"iops":123456.7,"clat_ns":{"percentile":{"50.000000":41000,"99.000000":99000}}}}]}`))
	if err != nil || m.IOPS != 123456.7 || m.P50us != 41 || m.P99us != 99 {
		t.Errorf("got %+v, %v", m, err)
	}
	if _, err := parseFioJSON([]byte(`{"jobs":[]}`)); err == nil {
		t.Error("no jobs accepted")
	}
	if _, err := parseFioJSON([]byte(`not json`)); err == nil {
		t.Error("garbage accepted")
	}
}

// The goals are judged within each round: a pair that is faster than the
// anchor in one round and slower in the other meets the goal in one.
func TestReportGoals(t *testing.T) {
	r := report{When: time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC), Commit: "abc1234", Machine: "2 CPUs", Seconds: 5, Rounds: 2, QDs: []int{32, 1}, Queues: 1, TargetCPUs: "0", HostCPUs: "1"}
	add := func(pair string, round, qd int, iops, p50 float64) {
		r.Runs = append(r.Runs, Measurement{Pair: pair, Round: round, QD: qd, IOPS: iops, P50us: p50})
	}
	add("spdk-spdk", 1, 32, 400e3, 60)
	add("spdk-spdk", 2, 32, 500e3, 55)
	add("bench-spdk", 1, 32, 420e3, 58)
	add("bench-spdk", 2, 32, 450e3, 70)
	add("spdk-spdk", 1, 1, 70e3, 12)
	add("spdk-spdk", 2, 1, 70e3, 12)
	add("bench-spdk", 1, 1, 60e3, 13)
	add("bench-spdk", 2, 1, 60e3, 13)
	md := r.markdown()
	for _, want := range []string{
		"at commit abc1234",
		"| spdk_nvme_perf -> SPDK nvmf_tgt (the anchor) | 400K - 500K, p50 55 - 60 us | 70K, p50 12 us |",
		"| bench -> SPDK target, QD32 IOPS >= 1.0x spdk_nvme_perf's | 1.05, 0.90 | in 1 of 2 rounds |",
		"| bench -> SPDK target, QD1 p50 <= 1.1x spdk_nvme_perf's | 1.08, 1.08 | yes |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Goals whose pairs did not run are left out, not failed.
	if strings.Contains(md, "ping-pong") {
		t.Errorf("a goal of a pair that did not run:\n%s", md)
	}
}

func TestSplice(t *testing.T) {
	doc := "# B\n\nbefore\n" + beginMarker + "\nold table\n" + endMarker + "\nafter\n"
	got, err := splice(doc, "new table\n")
	if err != nil || got != "# B\n\nbefore\n"+beginMarker+"\nnew table\n"+endMarker+"\nafter\n" {
		t.Errorf("splice: %q, %v", got, err)
	}
	for _, bad := range []string{"no markers", endMarker + beginMarker, beginMarker + beginMarker + endMarker} {
		if _, err := splice(bad, "x"); err == nil {
			t.Errorf("splice accepted %q", bad)
		}
	}
}
