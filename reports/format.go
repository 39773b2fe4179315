package reports

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/suites"
)

// fmtNs renders a latency in ns with a unit people read: ns, µs, ms, s.
func fmtNs(ns float64) string {
	switch a := math.Abs(ns); {
	case a < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case a < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case a < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

// fmtCount renders IOPS and counts: 1234, 12.3k, 1.23M.
func fmtCount(v float64) string {
	switch a := math.Abs(v); {
	case a < 1e4:
		return fmt.Sprintf("%.0f", v)
	case a < 1e6:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.2fM", v/1e6)
}

// fmtBW renders bytes per second in binary units, as fio does.
func fmtBW(v float64) string {
	switch a := math.Abs(v); {
	case a < 1<<20:
		return fmt.Sprintf("%.1f KiB/s", v/(1<<10))
	case a < 1<<30:
		return fmt.Sprintf("%.1f MiB/s", v/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB/s", v/(1<<30))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.String()
}

// fmtPct renders a relative change as +12.3% / -4.0%.
func fmtPct(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", 100*f)
}

// verdictWord is the one word a conformance result gets.
func verdictWord(state string, findings int) string {
	switch {
	case state == "passed" && findings > 0:
		return "FINDING"
	case state == "passed":
		return "PASS"
	case state == "skipped":
		return "SKIP"
	case state == suites.StateNotRun:
		return "NOT RUN"
	case state == suites.StateInterrupted:
		return "INTERRUPTED"
	}
	return "FAIL"
}

// verdict is a failover scenario's outcome in a word.
func verdict(r *failover.Report) string {
	if r.Pass {
		return "PASS"
	}
	return "FAIL"
}

// mdCell makes s one Markdown table cell: no line breaks, pipes escaped,
// and no raw HTML (a CI comment renderer would drop or run it).
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", "", "<", "&lt;", ">", "&gt;").Replace(strings.TrimSpace(s))
}

// firstLine is s up to its first line break, with " ..." when cut.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}
