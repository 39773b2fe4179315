package reports

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

const chromiumPath = "/usr/bin/chromium"

// needChromium skips the test when chromium is not installed, or fails it
// when NVMFTEST_REQUIRE_TOOLS=1 (CI) says it must be.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("NVMFTEST_REQUIRE_TOOLS") == "1" {
			t.Fatalf("NVMFTEST_REQUIRE_TOOLS=1 but %s is missing: %v", chromiumPath, err)
		}
		t.Skipf("headless Chromium (%s) is not installed; set NVMFTEST_REQUIRE_TOOLS=1 to make this a failure", chromiumPath)
	}
}

// realLoad runs two short jobs against the reference target on loopback.
func realLoad(t *testing.T) *loadgen.Result {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "1GiB", BlockSize: 4096}}
	tg := targettest.Start(t, cfg)
	host, port, _ := net.SplitHostPort(tg.Addrs()[0].String())
	var jobs []*loadgen.Job
	for _, spec := range [][]string{
		{"randread-4k", "rw", "randread", "bs", "4k", "iodepth", "8", "runtime", "800ms", "time_based", "1"},
		{"randrw-16k", "rw", "randrw", "bs", "16k", "iodepth", "4", "runtime", "800ms", "time_based", "1"},
	} {
		j := loadgen.NewJob(spec[0])
		for i := 1; i+1 < len(spec); i += 2 {
			if err := j.Set(spec[i], spec[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		jobs = append(jobs, j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	targets, conn, err := loadgen.Dial(ctx, jobs, loadgen.Address{Addr: host, Port: port, SubNQN: cfg.Subsystems[0].NQN}, initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := loadgen.Run(ctx, targets, loadgen.RunOptions{Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// page is what the browser saw.
type page struct {
	Text     string    `json:"text"`
	Width    float64   `json:"width"`
	ScrollW  float64   `json:"scrollW"`
	Overflow []string  `json:"overflow"`
	Plots    []plotBox `json:"plots"`
	Links    []string  `json:"links"`
}

type plotBox struct {
	Label                      string
	Left, Right, Width, Height float64
	// Texts is how many text elements the plot has; Outside and Overlaps
	// name those drawn past its edges or over one another, as a person
	// would see them: clipped, or unreadable.
	Texts             int
	Outside, Overlaps []string
}

const inspectJS = `(() => {
  const vw = document.documentElement.clientWidth;
  const over = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) over.push(el.tagName + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  const plots = [...document.querySelectorAll('svg')].map(s => {
    const r = s.getBoundingClientRect();
    // A text's box is its glyph cells; eps forgives sub-pixel rounding.
    const eps = 0.5, px = v => Math.round(v) + 'px';
    const texts = [...s.querySelectorAll('text')].map(t => ({s: t.textContent, r: t.getBoundingClientRect()}));
    const outside = texts.filter(t => t.r.left < r.left - eps || t.r.right > r.right + eps || t.r.top < r.top - eps || t.r.bottom > r.bottom + eps)
      .map(t => t.s + ' (inside by ' + [t.r.left - r.left, r.right - t.r.right, t.r.top - r.top, r.bottom - t.r.bottom].map(px).join(' ') + ')');
    const overlaps = [];
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i].r, b = texts[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > eps && h > eps) overlaps.push(texts[i].s + ' / ' + texts[j].s + ' (' + px(w) + ' x ' + px(h) + ')');
    }
    return {Label: s.getAttribute('aria-label') || '', Left: r.left, Right: r.right, Width: r.width, Height: r.height, Texts: texts.length, Outside: outside, Overlaps: overlaps};
  });
  const links = [...document.querySelectorAll('a')].filter(a => a.getBoundingClientRect().width > 0).map(a => a.innerText + ' -> ' + a.href);
  return {text: document.body.innerText, width: vw, scrollW: document.documentElement.scrollWidth, overflow: over.slice(0, 20), plots, links};
})()`

// TestBrowserRendersReport renders report.html of a real run in headless
// Chromium at 1280 px and checks what a person would see.
func TestBrowserRendersReport(t *testing.T) {
	needChromium(t)
	r := NewRun([]string{"nvmftest", "conform", "--bench", "--failover", "path-down", "--report-dir", "out"})
	s := sampleSummary()
	// An unbroken hex dump: the page must wrap it, not scroll sideways.
	s.Results[1].Message += "\nPDU " + strings.Repeat("0a1b2c3d", 60)
	r.AddConformance(s)
	r.AddBench(realLoad(t))
	r.AddFailover(sampleFailover(false, 1500*time.Millisecond))
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	u := (&url.URL{Scheme: "file", Path: filepath.Join(dir, "report.html")}).String()
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u)); err != nil {
		t.Fatal(err)
	}
	p, err := chromedp.Run(bctx, chromedp.Evaluate[page](inspectJS))
	if err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{
		"nvmftest conform --bench --failover path-down --report-dir out",
		"conformance: NOT CONFORMANT: 1 mandatory check failed",
		"bench: LOAD OK: 2 jobs completed without errors",
		"failover: FAILOVER FAILED: 1 of 1 scenarios failed",
		"FAIL TCP-PDU-004",
		"Spec section NVMe/TCP 1.0 3.6.2.4",
		"level mandatory",
		"expected C2HTermReq FES 0x03 <script>alert(1)</script>, got the socket closed",
		"Traces: conformance/traces/TCP-PDU-004-conn1.pcapng",
		"Packet traces\tconformance/traces/TCP-PDU-004-conn1.pcapng (pcapng",
		"FAB-CONN-002", "SCT 1 SC 0x82",
		"randread-4k", "randrw-16k",
		"path-down: FAIL — I/O did not return to path1 after it came back",
		"longest 1.5s",
		"controller lost: keep-alive timeout",
	} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	// The load numbers the page shows are the run's.
	for _, b := range r.Bench {
		row := fmt.Sprintf("%s\t%s\t%s\t%s", b.Job, b.Dir, fmtCount(b.IOPS), fmtBW(b.BW))
		if !strings.Contains(p.Text, row) {
			t.Errorf("the load table lacks the row %q", row)
		}
		if b.IOs == 0 || len(b.Series) == 0 || len(b.Distribution) == 0 {
			t.Errorf("%s: %d I/Os, %d samples, %d distribution points from a real run", b.Name(), b.IOs, len(b.Series), len(b.Distribution))
		}
	}
	if len(p.Plots) != 4 {
		t.Errorf("%d plots, want 4: %+v", len(p.Plots), p.Plots)
	}
	for _, pl := range p.Plots {
		if pl.Width <= 100 || pl.Height <= 50 || pl.Left < 0 || pl.Right > p.Width {
			t.Errorf("plot %q is at %.0f..%.0f, %.0fx%.0f px in a %.0f px viewport", pl.Label, pl.Left, pl.Right, pl.Width, pl.Height, p.Width)
		}
		if pl.Texts < 8 || len(pl.Outside) > 0 || len(pl.Overlaps) > 0 {
			t.Errorf("plot %q: of %d texts, clipped at its edges: %q; drawn over one another: %q", pl.Label, pl.Texts, pl.Outside, pl.Overlaps)
		}
	}
	if p.Width != 1280 && p.Width < 1200 {
		t.Errorf("viewport %v px wide, want about 1280", p.Width)
	}
	if p.ScrollW > p.Width || len(p.Overflow) > 0 {
		t.Errorf("the page is %v px wide in a %v px viewport; overflowing: %v", p.ScrollW, p.Width, p.Overflow)
	}
	wantLink := "conformance/traces/TCP-PDU-004-conn1.pcapng -> " + (&url.URL{Scheme: "file", Path: filepath.Join(dir, "conformance/traces/TCP-PDU-004-conn1.pcapng")}).String()
	// Linked twice: from the failed check and from the header's list.
	if len(p.Links) != 2 || p.Links[0] != wantLink || p.Links[1] != wantLink {
		t.Errorf("links %v, want [%s] twice", p.Links, wantLink)
	}
	if t.Failed() {
		t.Logf("page text:\n%s", p.Text)
	}
}
