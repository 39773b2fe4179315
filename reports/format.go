package reports

import (
	"fmt"
	"math"
	"strconv"
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

// fmtCount renders IOPS and counts as fio does: 1234, 12.3k, 500k,
// 1.23M (three significant digits from 10000 up).
func fmtCount(v float64) string {
	if math.Abs(v) < 1e4 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmtSI(v)
}

// fmtSI renders v with an SI suffix and three significant digits: 950,
// 12.3k, 500k, 1.23M, 2G.
func fmtSI(v float64) string {
	units := []string{"", "k", "M", "G", "T"}
	i := 0
	for math.Abs(v) >= 999.5 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return sig3(v) + units[i]
}

// trimZeros drops a decimal fraction's trailing zeros: 1.50 -> 1.5, 2.0 -> 2.
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// fmtLatTick renders a latency given in µs as an axis label: 0, 250 µs,
// 1.5 ms, 2 s, at most three significant digits.
func fmtLatTick(us float64) string {
	switch a := math.Abs(us); {
	case a == 0:
		return "0"
	case a < 1:
		return sig3(us*1e3) + " ns"
	case a < 999.5:
		return sig3(us) + " µs"
	case a < 999.5e3:
		return sig3(us/1e3) + " ms"
	}
	return sig3(us/1e6) + " s"
}

// sig3 renders v with at most three significant digits (more for a whole
// number of four or more), without trailing zeros.
func sig3(v float64) string {
	prec := 0
	switch a := math.Abs(v); {
	case a >= 99.95:
	case a >= 9.995:
		prec = 1
	case a >= 0.9995:
		prec = 2
	default:
		prec = 3
	}
	return trimZeros(strconv.FormatFloat(v, 'f', prec, 64))
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
