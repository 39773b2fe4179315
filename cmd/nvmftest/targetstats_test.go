package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nvmftest/nvmftest/target"
)

// TestTargetStatsMetricsSummary: an operator's view of a running target
// (review item 11): `target stats` (table and JSON) and the ctl socket's
// stats count the I/O done, /metrics serves them in the Prometheus
// format, refused connects are counted by reason, and stopping the
// target prints a summary of what it served.
func TestTargetStatsMetricsSummary(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	f := &targetFlags{listen: []string{"127.0.0.1:0"}, ns: []string{"mem:4MiB"}, ctlSocket: sock, metrics: "127.0.0.1:0"}
	rt := startTarget(t, f)
	tg, tout := rt.tg, rt.out
	h, p, _ := net.SplitHostPort(tg.Addrs()[0].String())
	withNQN := []string{"-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN}

	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, bytes.Repeat([]byte{7}, 1024), 0o644)
	for range 3 {
		if code, _, errs := runCLI(t, "", append([]string{"write", "-S", "0", "-c", "1", "-d", in}, withNQN...)...); code != 0 {
			t.Fatalf("write: %d %s", code, errs)
		}
	}
	if code, _, _ := runCLI(t, "", "read", "-t", "tcp", "-a", h, "-s", p, "-n", "nqn.2014-08.io.nvmftest:nosuch"); code == 0 {
		t.Fatal("read from an unknown subsystem succeeded")
	}

	code, out, errs := runCLI(t, "", "target", "stats", "--socket", sock)
	if code != 0 || !strings.Contains(out, target.DefaultSubsystemNQN+"/1") || !strings.Contains(out, "unknown subsystem: 1") {
		t.Errorf("target stats: %d %s %s", code, out, errs)
	}
	code, out, _ = runCLI(t, "", "target", "stats", "--socket", sock, "-o", "json")
	var st target.Stats
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("target stats -o json: %d %s", code, out)
	}
	if n := st.Subsystems[0].Namespaces[0]; n.Writes != 3 || n.BytesWritten != 3*1024 || n.Latency["write"].Count != 3 {
		t.Errorf("namespace stats %+v", n)
	}
	code, out, _ = runCLI(t, "", "target", "ctl", "--socket", sock, "stats")
	if code != 0 || !strings.Contains(out, `"bytes_written":3072`) {
		t.Errorf("ctl stats: %d %s", code, out)
	}

	var maddr string
	for l := range strings.SplitSeq(tout.String(), "\n") {
		if a, ok := strings.CutPrefix(l, "metrics on http://"); ok {
			maddr = strings.TrimSuffix(a, "/metrics")
		}
	}
	if maddr == "" {
		t.Fatalf("banner does not give the metrics address:\n%s", tout.String())
	}
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) float64 {
		for _, m := range fams[name].GetMetric() {
			ok := true
			for _, l := range m.GetLabel() {
				if v, want := labels[l.GetName()]; want && v != l.GetValue() {
					ok = false
				}
			}
			if ok {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
		return -1
	}
	ns1 := map[string]string{"subnqn": target.DefaultSubsystemNQN, "nsid": "1"}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nvmftest_target_commands_total", with(ns1, "op", "write"), 3},
		{"nvmftest_target_bytes_total", with(ns1, "direction", "write"), 3072},
		{"nvmftest_target_latency_seconds", with(ns1, "op", "write"), 3},
		{"nvmftest_target_refused_connects_total", map[string]string{"reason": "unknown subsystem"}, 1},
		{"nvmftest_target_controllers", nil, 0},
	} {
		if got := value(tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if fams["nvmftest_target_latency_seconds"].GetType().String() != "HISTOGRAM" {
		t.Errorf("latency is %v, want a histogram", fams["nvmftest_target_latency_seconds"].GetType())
	}

	if err := rt.stop(); err != nil {
		t.Fatal(err)
	}
	summary := tout.String()
	for _, want := range []string{"served for ", "association(s)", "3 write", "3.0 KiB written", "1 refused connect(s) (unknown subsystem: 1)"} {
		if !strings.Contains(summary, want) {
			t.Errorf("shutdown summary lacks %q:\n%s", want, summary)
		}
	}
}

func with(m map[string]string, k, v string) map[string]string {
	n := map[string]string{k: v}
	for a, b := range m {
		n[a] = b
	}
	return n
}
