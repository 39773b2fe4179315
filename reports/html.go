package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/suites"
)

//go:embed report.html.tmpl
var reportTemplate string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ns":  func(v int64) string { return fmtNs(float64(v)) },
	"nsf": fmtNs,
	"count": func(v any) string {
		switch v := v.(type) {
		case int64:
			return fmtCount(float64(v))
		case int:
			return fmtCount(float64(v))
		case float64:
			return fmtCount(v)
		}
		return fmt.Sprint(v)
	},
	"bw":    fmtBW,
	"dur":   fmtDur,
	"secs":  func(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) },
	"join":  strings.Join,
	"inc":   func(i int) int { return i + 1 },
	"lower": strings.ToLower,
	// word is a check's verdict as the console prints it, with the
	// detailed state where it adds something (FAIL (timedout)).
	"word": func(r suites.Result) string {
		w := verdictWord(r.State, len(r.Findings))
		if w == "FAIL" && r.State != "failed" {
			w += " (" + r.State + ")"
		}
		return w
	},
}).Parse(reportTemplate))

// htmlView is what the template renders.
type htmlView struct {
	*Run
	When     string
	Verdicts []Verdict
	// Untested are the mandatory checks not run for lack of an option.
	Untested    []suites.Untested
	Areas       []areaRow
	Failed      []suites.Result
	Conf        []suites.Result
	LatDistPlot template.HTML
	IOPSPlot    template.HTML
	LatPlot     template.HTML
	Scenarios   []scenarioView
	// TraceGroups are the run's traces by directory, for a long list.
	TraceGroups []TraceGroup
	// PlotFont is the @font-face rule for the plots' text, set when there
	// are plots.
	PlotFont template.CSS
	// Spread is the per-shard spread of a merged sharded load.
	Spread []SpreadRow
}

type areaRow struct {
	Name                                 string
	Checks, Pass, Fail, Skip, NotRun, Fd int
	Total                                bool
}

type scenarioView struct {
	Verdict string
	Plot    template.HTML
	Rep     *failover.Report
}

// WriteHTML writes the run as one self-contained HTML page: inline CSS,
// inline SVG plots, no scripts and nothing fetched from elsewhere. Links
// to traces are relative to the run directory.
func (r *Run) WriteHTML(w io.Writer) error {
	v := htmlView{Run: r, When: r.Started.UTC().Format("2006-01-02 15:04:05 MST"), Verdicts: r.Verdicts()}
	v.TraceGroups = GroupTraces(r.Traces)
	v.Spread = shardSpread(r.Shards)
	if len(r.Bench) > 0 || len(r.Failover) > 0 {
		if err := registerPlotFont(); err != nil {
			return err
		}
		v.PlotFont = plotFontCSS()
	}
	if s := r.Conformance; s != nil {
		v.Areas = areaRows(s.Results)
		for _, res := range s.Results {
			if res.Failed() {
				v.Failed = append(v.Failed, res)
			}
		}
		v.Conf = s.Results
		v.Untested = s.Verdict().Untested
	}
	if len(r.Bench) > 0 {
		for _, pl := range []struct {
			dst   *template.HTML
			make  func([]BenchSummary) (*plot.Plot, error)
			label string
		}{
			{&v.LatDistPlot, latencyDistributionPlot, "Latency by percentile"},
			{&v.IOPSPlot, iopsPlot, "IOPS over time"},
			{&v.LatPlot, latencyOverTimePlot, "Latency over time"},
		} {
			p, err := pl.make(r.Bench)
			if err == nil {
				*pl.dst, err = renderSVG(p, pl.label)
			}
			if err != nil {
				return fmt.Errorf("%s plot: %w", pl.label, err)
			}
		}
	}
	for _, rep := range r.Failover {
		sv := scenarioView{Verdict: verdict(rep), Rep: rep}
		p, err := failoverPlot(rep)
		if err == nil {
			sv.Plot, err = renderSVG(p, "Per-path IOPS, "+rep.Scenario)
		}
		if err != nil {
			return fmt.Errorf("failover %s plot: %w", rep.Scenario, err)
		}
		v.Scenarios = append(v.Scenarios, sv)
	}
	return reportTmpl.Execute(w, v)
}

// TraceGroup is the traces of one directory: a failover scenario's, a
// bench's, the failed conformance checks'.
type TraceGroup struct {
	// Dir is the directory, relative to the run directory, with a
	// trailing slash ("./" for the run directory itself).
	Dir   string
	Files []TraceFile
}

// TraceFile is one trace: its Path relative to the run directory and its
// file Name.
type TraceFile struct{ Path, Name string }

// GroupTraces groups trace paths by directory, in order of first
// appearance.
func GroupTraces(traces []string) []TraceGroup {
	var groups []TraceGroup
	at := map[string]int{}
	for _, t := range traces {
		d, name := path.Split(t)
		if d == "" {
			d = "./"
		}
		i, ok := at[d]
		if !ok {
			i = len(groups)
			at[d] = i
			groups = append(groups, TraceGroup{Dir: d})
		}
		groups[i].Files = append(groups[i].Files, TraceFile{Path: t, Name: name})
	}
	return groups
}

func areaRows(results []suites.Result) []areaRow {
	by := map[string]*areaRow{}
	var names []string
	levels := map[string]*areaRow{}
	total := &areaRow{Name: "total", Total: true}
	for _, res := range results {
		row := by[res.Area]
		if row == nil {
			row = &areaRow{Name: res.Area}
			by[res.Area] = row
			names = append(names, res.Area)
		}
		lv := levels[string(res.Level)]
		if lv == nil {
			lv = &areaRow{Name: string(res.Level), Total: true}
			levels[string(res.Level)] = lv
		}
		for _, t := range []*areaRow{row, lv, total} {
			t.Checks++
			switch verdictWord(res.State, len(res.Findings)) {
			case "PASS":
				t.Pass++
			case "FINDING":
				t.Pass++
				t.Fd++
			case "SKIP":
				t.Skip++
			case "NOT RUN", "INTERRUPTED":
				t.NotRun++
			default:
				t.Fail++
			}
		}
	}
	sort.Strings(names)
	var rows []areaRow
	for _, n := range names {
		rows = append(rows, *by[n])
	}
	for _, l := range []suites.Level{suites.Mandatory, suites.Recommended, suites.Optional} {
		if t := levels[string(l)]; t != nil {
			rows = append(rows, *t)
		}
	}
	return append(rows, *total)
}
