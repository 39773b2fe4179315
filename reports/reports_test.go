package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/net/html"

	"github.com/nvmftest/nvmftest/loadgen"
)

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := sampleRun(t)
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"run.json", "summary.md", "report.html", "bench/fio.json", "bench/randread.hlog", "bench/mixed.hlog",
		"failover/path-down.json", "conformance/junit.xml", "conformance/results.json", "conformance/findings.json", "conformance/summary.md"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v (empty or missing)", f, err)
		}
	}
	for _, p := range []string{dir, filepath.Join(dir, RunFile)} {
		got, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		want := *r
		want.loads = nil
		if !got.Started.Equal(want.Started) {
			t.Errorf("Started %v, want %v", got.Started, want.Started)
		}
		got.Started = want.Started
		// As JSON: an empty list reads back as [] where it was nil.
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(&want)
		if string(a) != string(b) {
			t.Errorf("Load(%s) differs from what was written:\n got %s\nwant %s", p, a, b)
		}
	}
	// The fio JSON is fio's layout, the failover JSON the report.
	var fio loadgen.FioOutput
	mustJSON(t, filepath.Join(dir, "bench/fio.json"), &fio)
	if len(fio.Jobs) != 2 || fio.Jobs[0].JobName != "randread" || fio.Jobs[0].Read.IOPS != r.Bench[0].IOPS {
		t.Errorf("fio.json jobs %+v", fio.Jobs)
	}
	var ju struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "conformance/junit.xml")); err != nil || xml.Unmarshal(b, &ju) != nil {
		t.Fatalf("junit.xml: %v\n%s", err, b)
	}
	if ju.Tests != 4 || ju.Failures != 1 || ju.Skipped != 1 || len(ju.Suites) != 3 || ju.Suites[2].Name != "nvmftest.conformance.transport" ||
		ju.Suites[2].Cases[1].Name != "TCP-PDU-004: A bad header digest ends the connection with a C2HTermReq" || ju.Suites[2].Cases[1].Failure == nil {
		t.Errorf("junit.xml: %+v", ju)
	}
	var fr struct {
		Scenario string `json:"scenario"`
		Events   []any  `json:"events"`
	}
	mustJSON(t, filepath.Join(dir, "failover/path-down.json"), &fr)
	if fr.Scenario != "path-down" || len(fr.Events) != 3 {
		t.Errorf("failover/path-down.json: %+v", fr)
	}
	// The hlog reads back with HdrHistogram's log reader: one histogram
	// per direction, tagged, with every I/O's latency.
	f, err := os.Open(filepath.Join(dir, "bench/mixed.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr := hdrhistogram.NewHistogramLogReader(f)
	var tags []string
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		tags = append(tags, h.Tag())
		want := r.loads[0].Jobs[1].Read.Clat
		if h.Tag() == "write" {
			want = r.loads[0].Jobs[1].Write.Clat
		}
		if h.TotalCount() != want.TotalCount() || h.ValueAtQuantile(99) != want.ValueAtQuantile(99) {
			t.Errorf("hlog %s: %d values p99 %d, want %d p99 %d", h.Tag(), h.TotalCount(), h.ValueAtQuantile(99), want.TotalCount(), want.ValueAtQuantile(99))
		}
	}
	if strings.Join(tags, ",") != "read,write" {
		t.Errorf("hlog tags %v, want read,write", tags)
	}
}

func mustJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestLoadRejectsNonRuns(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Errorf("empty dir: %v", err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"jobs": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(other); err == nil || !strings.Contains(err.Error(), "not a run.json") {
		t.Errorf("other JSON: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path loaded")
	}
}

// TestTracesRelativeToConformanceDir: a trace named relative to
// suites.Run's report directory is rewritten relative to the run
// directory, without touching the caller's Summary.
func TestTracesRelativeToConformanceDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conformance", "traces"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conformance", "traces", "c1.pcapng"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := sampleSummary()
	s.Results[1].Traces = []string{"traces/c1.pcapng", "elsewhere/c2.pcapng"}
	r := NewRun([]string{"nvmftest", "conform"})
	r.AddConformance(s)
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "conformance/traces/c1.pcapng,elsewhere/c2.pcapng"
	if tr := strings.Join(got.Conformance.Results[1].Traces, ","); tr != want {
		t.Errorf("result traces %s, want %s", tr, want)
	}
	if tr := strings.Join(got.Traces, ","); tr != want {
		t.Errorf("run traces %s, want %s", tr, want)
	}
	if s.Results[1].Traces[0] != "traces/c1.pcapng" {
		t.Error("Write changed the caller's Summary")
	}
}

func TestBenchSummary(t *testing.T) {
	r := sampleRun(t)
	if len(r.Bench) != 3 {
		t.Fatalf("%d bench entries, want 3 (randread read, mixed read, mixed write)", len(r.Bench))
	}
	b := r.Bench[0]
	if b.Job != "randread" || b.Dir != "read" || b.IOPS != 100000 || b.LatencyKind != "clat" {
		t.Errorf("bench[0] = %+v", b)
	}
	l := b.Latency
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.P9999 && l.P9999 <= l.Max) || l.P50 < 20000 || l.Max < 400000 {
		t.Errorf("latency not ordered or off: %+v", l)
	}
	d := b.Distribution
	if len(d) < 20 || d[0].Percentile > 1 || d[len(d)-1].Percentile != 100 || d[len(d)-1].Value != l.Max {
		t.Errorf("distribution %v", d)
	}
	if len(b.Series) != 8 || b.Series[0].Elapsed != 250*time.Millisecond {
		t.Errorf("series %v", b.Series)
	}
	if r.Target != "127.0.0.1:4420 nqn.2024-01.io.nvmftest:ref" {
		t.Errorf("target %q", r.Target)
	}
	if strings.Join(r.Traces, ",") != "conformance/traces/TCP-PDU-004-conn1.pcapng,traces/path-down-path1.pcapng" {
		t.Errorf("traces %v", r.Traces)
	}
}

func TestMarkdown(t *testing.T) {
	md := sampleRun(t).Markdown()
	for _, want := range []string{
		"`nvmftest conform -a 127.0.0.1 --bench --report-dir out`",
		"❌ **conformance**: NOT CONFORMANT: 1 mandatory check failed",
		"✅ **bench**: LOAD OK: 2 jobs",
		"✅ **failover**: FAILOVER PASSED: 1 of 1",
		"| TCP-PDU-004 | NVMe/TCP 1.0 3.6.2.4 | mandatory | A bad header digest ends the connection with a C2HTermReq | expected C2HTermReq FES 0x03 &lt;script&gt;alert(1)&lt;/script&gt;, got the socket closed ... | `conformance/traces/TCP-PDU-004-conn1.pcapng` |",
		"| FAB-CONN-002 | NVMe-oF 1.1 3.3 | SCT 1 SC 0x82 | SCT 1 SC 0x84 |",
		"| randread | read | 100k | 390.6 MiB/s |",
		"| path-down | PASS | 123456 | 0 | 17 | 0 | 180ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "TCP-IC-001") {
		t.Error("Markdown lists a passing check among the failures")
	}
}

func changeNamed(c *Comparison, name string) *Change {
	for i := range c.Changes {
		if c.Changes[i].Name == name {
			return &c.Changes[i]
		}
	}
	return nil
}

func TestCompare(t *testing.T) {
	base := sampleRun(t)

	// Noise: 3% fewer IOPS, 5% slower, the same checks: no regression.
	noise := NewRun(base.Command)
	noise.AddConformance(sampleSummary())
	noise.AddBench(sampleLoad(t, 0.97, 1.05))
	noise.AddFailover(sampleFailover(true, 200*time.Millisecond))
	c := Compare(base, noise, DefaultThresholds())
	var buf bytes.Buffer
	c.WriteText(&buf)
	if c.Regressed() {
		t.Errorf("noise within thresholds flagged:\n%s", buf.String())
	}
	if ch := changeNamed(c, "randread read IOPS"); ch == nil || ch.Regression || ch.Base != "100k" || ch.New != "97k" {
		t.Errorf("randread IOPS change %+v", ch)
	}

	// 20% fewer IOPS, 50% slower, a check that passed now fails, a
	// scenario that passed now fails and stalls far longer.
	worse := NewRun(base.Command)
	s := sampleSummary()
	s.Results[0].State, s.Results[0].Message = "failed", "no ICResp within 5s"
	s.Failed++
	s.MandatoryFailed++
	worse.AddConformance(s)
	worse.AddBench(sampleLoad(t, 0.8, 1.5))
	worse.AddFailover(sampleFailover(false, 2*time.Second))
	c = Compare(base, worse, DefaultThresholds())
	buf.Reset()
	c.WriteText(&buf)
	out := buf.String()
	if !c.Regressed() {
		t.Fatalf("regression not flagged:\n%s", out)
	}
	for _, name := range []string{"randread read IOPS", "mixed write IOPS", "randread read p99 latency", "randread read p50 latency", "TCP-IC-001", "path-down", "path-down longest stall"} {
		if ch := changeNamed(c, name); ch == nil || !ch.Regression {
			t.Errorf("%s: %+v, want a regression", name, ch)
		}
	}
	if ch := changeNamed(c, "TCP-PDU-004"); ch != nil {
		t.Errorf("a check failing in both runs is listed: %+v", ch)
	}
	for _, want := range []string{"randread read IOPS", "100k", "->", "80k", "-20.0%", "REGRESSION", "TCP-IC-001", "passed in base, fails now [mandatory, NVMe/TCP 1.0 3.6.2.1]", "REGRESSED:"} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteText lacks %q:\n%s", want, out)
		}
	}

	// Allowed conformance regressions: only the conformance change is
	// allowed, the rest still counts.
	th := DefaultThresholds()
	th.AllowConformanceRegressions = true
	th.IOPSDrop, th.LatencyRise, th.StallRise = 0.5, 1, 100
	onlyConf := NewRun(base.Command)
	onlyConf.AddConformance(s)
	onlyConf.AddBench(sampleLoad(t, 0.8, 1.5))
	onlyConf.AddFailover(sampleFailover(true, 200*time.Millisecond))
	c = Compare(base, onlyConf, th)
	if c.Regressed() {
		buf.Reset()
		c.WriteText(&buf)
		t.Errorf("allowed conformance regression fails the comparison:\n%s", buf.String())
	}
	if ch := changeNamed(c, "TCP-IC-001"); ch == nil || !ch.Regression || !ch.Allowed {
		t.Errorf("TCP-IC-001 change %+v", ch)
	}
}

// TestCompareMissing: what the base has and the new run lacks fails the
// gate (a renamed job, a step that did not run, a check now skipped),
// unless AllowMissing says partial runs are expected.
func TestCompareMissing(t *testing.T) {
	base := sampleRun(t)
	cur := NewRun(base.Command)
	s := sampleSummary()
	s.Results[0].State, s.Results[0].Message = "skipped", "target does not answer ICReq in time\nmore"
	// FAB-CONN-002 (passed in base) and ADM-ANA-001 (skipped in base: no
	// loss) did not run.
	s.Results = s.Results[:2]
	cur.AddConformance(s)
	load := sampleLoad(t, 1, 1)
	load.Jobs = load.Jobs[:1] // "mixed" is gone
	cur.AddBench(load)
	// No failover scenario.

	c := Compare(base, cur, DefaultThresholds())
	var buf bytes.Buffer
	c.WriteText(&buf)
	if !c.Regressed() {
		t.Fatalf("missing results pass the gate:\n%s", buf.String())
	}
	for name, note := range map[string]string{
		"mixed read IOPS":  "in base, not in the new run",
		"mixed write IOPS": "in base, not in the new run",
		"TCP-IC-001":       "passed in base, skipped now: target does not answer ICReq in time ...",
		"FAB-CONN-002":     "passed in base, not run now",
		"path-down":        "in base, not in the new run",
	} {
		if ch := changeNamed(c, name); ch == nil || !ch.Regression || !ch.Missing || ch.Allowed || ch.Note != note {
			t.Errorf("%s: %+v, want a missing regression noted %q", name, ch, note)
		}
	}
	if ch := changeNamed(c, "ADM-ANA-001"); ch != nil {
		t.Errorf("a check skipped in base and not run now is listed: %+v", ch)
	}

	th := DefaultThresholds()
	th.AllowMissing = true
	if c := Compare(base, cur, th); c.Regressed() {
		buf.Reset()
		c.WriteText(&buf)
		t.Errorf("AllowMissing still fails the gate:\n%s", buf.String())
	}
	// No conformance at all.
	c = Compare(base, NewRun(nil), DefaultThresholds())
	if ch := changeNamed(c, "conformance run"); ch == nil || !ch.Missing || ch.Base != "2 pass 1 fail (1 mandatory)" {
		t.Errorf("conformance run change %+v", ch)
	}
}

func TestCompareNewMandatoryFailure(t *testing.T) {
	base := NewRun(nil)
	s := sampleSummary()
	s.Results = s.Results[:1] // only TCP-IC-001 ran
	base.AddConformance(s)
	cur := NewRun(nil)
	cur.AddConformance(sampleSummary())
	c := Compare(base, cur, DefaultThresholds())
	if ch := changeNamed(c, "TCP-PDU-004"); ch == nil || !ch.Regression || !strings.Contains(ch.Note, "new mandatory failure") {
		t.Errorf("new mandatory failure: %+v", ch)
	}
	if !c.Regressed() {
		t.Error("a new mandatory failure is not a regression")
	}
}

// TestHTML: report.html parses as balanced HTML, shows what matters and
// fetches nothing from elsewhere.
func TestHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleRun(t).WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	checkSelfContainedHTML(t, page)
	for _, want := range []string{"NOT CONFORMANT", "TCP-PDU-004", "NVMe/TCP 1.0 3.6.2.4", `href="conformance/traces/TCP-PDU-004-conn1.pcapng"`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", "FAILOVER PASSED", "controller lost: keep-alive timeout", "100k"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Errorf("%d plots, want 4 (latency distribution, IOPS, latency over time, failover)", n)
	}
	for _, l := range []string{">0%<", ">90%<", ">99%<", ">99.9%<"} {
		if !strings.Contains(page, l) {
			t.Errorf("percentile axis lacks label %s", l)
		}
	}
}

var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// checkSelfContainedHTML tokenizes page: every element is closed in order,
// there is no script, no external stylesheet and no src/href to another
// site.
func checkSelfContainedHTML(t *testing.T, page string) {
	t.Helper()
	if _, err := html.Parse(strings.NewReader(page)); err != nil {
		t.Fatal(err)
	}
	z := html.NewTokenizer(strings.NewReader(page))
	var stack []string
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatal(z.Err())
			}
			break
		}
		tok := z.Token()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			switch tok.Data {
			case "script", "link", "iframe", "object", "img":
				t.Errorf("<%s> in a self-contained report", tok.Data)
			}
			for _, a := range tok.Attr {
				v := strings.ToLower(strings.TrimSpace(a.Val))
				if (a.Key == "src" || a.Key == "href" || strings.HasSuffix(a.Key, ":href") || a.Key == "action") &&
					(strings.HasPrefix(v, "http:") || strings.HasPrefix(v, "https:") || strings.HasPrefix(v, "//")) {
					t.Errorf("<%s %s=%q> fetches from elsewhere", tok.Data, a.Key, a.Val)
				}
			}
			if tt == html.StartTagToken && !voidElements[tok.Data] {
				stack = append(stack, tok.Data)
			}
		case html.EndTagToken:
			if len(stack) == 0 || stack[len(stack)-1] != tok.Data {
				t.Fatalf("</%s> does not close the open element (open: %v)", tok.Data, stack)
			}
			stack = stack[:len(stack)-1]
		case html.TextToken:
			if len(stack) > 0 && stack[len(stack)-1] == "style" && stylesheetFetches(tok.Data) {
				t.Error("the stylesheet fetches something")
			}
		}
	}
	if len(stack) != 0 {
		t.Errorf("unclosed elements %v", stack)
	}
}

// stylesheetFetches reports whether CSS imports or refers to anything but
// a data: URL (the plots' embedded font is one).
func stylesheetFetches(css string) bool {
	if strings.Contains(css, "@import") {
		return true
	}
	for rest := css; ; {
		i := strings.Index(rest, "url(")
		if i < 0 {
			return false
		}
		rest = strings.TrimLeft(rest[i+len("url("):], ` "'`)
		if !strings.HasPrefix(rest, "data:") {
			return true
		}
	}
}

// TestEmptyRun: a run with nothing in it still renders, loads and
// compares.
func TestEmptyRun(t *testing.T) {
	r := NewRun(nil)
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	checkSelfContainedHTML(t, buf.String())
	if !strings.Contains(buf.String(), "nothing was run") || strings.Contains(buf.String(), "<svg") {
		t.Error("an empty run shows verdicts or plots")
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c := Compare(got, r, DefaultThresholds()); c.Regressed() || len(c.Changes) != 0 {
		t.Errorf("empty runs compare with changes %+v", c.Changes)
	}
	if !r.Passed() || !strings.Contains(r.Markdown(), "# nvmftest run") {
		t.Error("empty run verdict or Markdown")
	}
}

// TestWriteAgainAddsLoad: a second invocation filling the same run
// directory (Load, AddBench, Write) keeps the first one's load files and
// writes its own beside them.
func TestWriteAgainAddsLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := sampleRun(t)
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(dir, "bench", "fio.json"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := len(again.Bench)
	again.AddBench(sampleLoad(t, 50000, 200e3))
	if err := again.Write(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bench", "fio.json")); err != nil || string(b) != string(first) {
		t.Errorf("the first invocation's fio.json changed (%v)", err)
	}
	for _, f := range []string{"fio-2.json", "randread-2.hlog"} {
		if _, err := os.Stat(filepath.Join(dir, "bench", f)); err != nil {
			t.Errorf("the second invocation's %s: %v", f, err)
		}
	}
	got, err := Load(dir)
	if err != nil || len(got.Bench) <= n {
		t.Errorf("run.json: %d bench entries after the second load, had %d (%v)", len(got.Bench), n, err)
	}
}

// TestGroupEvents: failover events whose labels would touch share one
// label; one far enough away keeps its own.
func TestGroupEvents(t *testing.T) {
	width := func(s string) float64 { return 0.1 * float64(len([]rune(s))) } // 0.1 s a character
	for _, tc := range []struct {
		ats  []float64
		want []eventLabel
	}{
		{nil, nil},
		{[]float64{1}, []eventLabel{{"1", 1}}},
		{[]float64{0, 0, 0.001, 2, 2.05, 5}, []eventLabel{{"1–3", 0.0005}, {"4–5", 2.025}, {"6", 5}}},
		// Each label touches the one before: a chain becomes one label.
		{[]float64{0, 0.15, 0.3}, []eventLabel{{"1–3", 0.15}}},
	} {
		if got := groupEvents(tc.ats, width); !slices.Equal(got, tc.want) {
			t.Errorf("groupEvents(%v) = %v, want %v", tc.ats, got, tc.want)
		}
	}
}

func TestStylesheetFetches(t *testing.T) {
	for css, want := range map[string]bool{
		`body{color:red}`: false,
		`@font-face{font-family:"Go";src:url(data:font/ttf;base64,AAAA) format("truetype")}`: false,
		`a{background:url( 'data:image/png;base64,AA')}`:                                     false,
		`a{background:url(https://example.com/x.png)}`:                                       true,
		`@font-face{src:url(data:font/ttf;base64,AA)} b{background:url("x.png")}`:            true,
		`@import "x.css";`: true,
	} {
		if got := stylesheetFetches(css); got != want {
			t.Errorf("stylesheetFetches(%q) = %v, want %v", css, got, want)
		}
	}
}

// TestRunSteps: commands that fill one run directory in turn are each a
// step; the run lasts from the first's start to the last's end, and the
// report names every command.
func TestRunSteps(t *testing.T) {
	dir := t.TempDir()
	r := NewRun([]string{"nvmftest", "conform"})
	r.Started, r.Elapsed = t0, 10*time.Second
	r.AddConformance(sampleSummary())
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	if r.Elapsed != 10*time.Second {
		t.Errorf("one step: elapsed %v, want 10s", r.Elapsed)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Continue([]string{"nvmftest", "bench", "--rw", "randread"})
	r.Steps[1].Started, r.Steps[1].Elapsed = t0.Add(time.Minute), 30*time.Second
	r.AddBench(sampleLoad(t, 1, 1))
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	if r.Elapsed != 90*time.Second || len(r.Steps) != 2 {
		t.Errorf("two steps: elapsed %v, %d steps; want 1m30s, 2", r.Elapsed, len(r.Steps))
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	page, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !strings.Contains(string(md), "`nvmftest conform`, then `nvmftest bench --rw randread`") || !strings.Contains(string(md), "took 1m30s") {
		t.Errorf("summary.md:\n%s", md)
	}
	if !strings.Contains(string(page), "<th>Commands</th><td><code>nvmftest conform</code> <span class=\"meta\">(10s)</span><br><code>nvmftest bench --rw randread</code>") {
		t.Error("report.html does not list both commands")
	}

	// A run.json from before steps: its one command becomes the first.
	old := &Run{Command: []string{"nvmftest", "conform"}, Started: t0, Elapsed: 5 * time.Second}
	old.Continue([]string{"nvmftest", "bench"})
	if len(old.Steps) != 2 || old.Steps[0].Elapsed != 5*time.Second || old.Steps[1].Command[1] != "bench" {
		t.Errorf("steps of an old run: %+v", old.Steps)
	}
}

// TestManyTraces: a long trace list is grouped by directory, in the page
// (folded) and in summary.md.
func TestManyTraces(t *testing.T) {
	r := NewRun(nil)
	for _, s := range []string{"path-down", "flap"} {
		for i := 1; i <= 3; i++ {
			r.AddTraces(fmt.Sprintf("../fo/%s/%04d.pcapng", s, i))
		}
	}
	r.AddTraces("smoke.pcapng")
	g := GroupTraces(r.Traces)
	if len(g) != 3 || g[0].Dir != "../fo/path-down/" || len(g[0].Files) != 3 || g[0].Files[1] != (TraceFile{"../fo/path-down/0002.pcapng", "0002.pcapng"}) || g[2].Dir != "./" {
		t.Errorf("groups %+v", g)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<summary>7 traces in 3 directories</summary>", `<code>../fo/flap/</code> (3): <a href="../fo/flap/0001.pcapng">0001.pcapng</a>`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if md := r.Markdown(); !strings.Contains(md, "Packet traces: 7, in `../fo/path-down/` (3), `../fo/flap/` (3), `./` (1)") {
		t.Errorf("summary.md:\n%s", md)
	}
}
