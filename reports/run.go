// Package reports turns what one nvmftest invocation measured into a run
// directory for people and CI: run.json (everything, machine-readable),
// summary.md (for a CI comment), report.html (one self-contained page with
// plots), the conformance reports suites.Run wrote, fio-compatible JSON and
// HdrHistogram logs of the load, one JSON file per failover scenario, and
// the packet traces. Compare sets two runs side by side and says whether
// the new one regressed.
//
// Run directory layout:
//
//	run.json               the Run (Load reads it back)
//	summary.md             Run.Markdown
//	report.html            Run.WriteHTML
//	conformance/           suites.Run's junit.xml, results.json, findings.json, summary.md ... (Write writes them if missing)
//	bench/fio.json         fio 3.x --output-format=json of the load
//	bench/<job>.hlog       HdrHistogram log: the job's final latency histograms, tagged read/write, in ns
//	failover/<scenario>.json  failover.Report
//	traces ...             wherever the capture put them; Run.Traces names them relative to the run directory
package reports

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/suites"
)

// ResultsSchema is the JSON Schema (draft 2020-12) of a conformance
// run's results.json, which is also run.json's "conformance":
// results.schema.json in this directory.
//
//go:embed results.schema.json
var ResultsSchema []byte

// RunSchema is the JSON Schema (draft 2020-12) of run.json, a Run:
// run.schema.json in this directory. Its "conformance" refers to
// ResultsSchema as "results.schema.json".
//
//go:embed run.schema.json
var RunSchema []byte

// RunFile is the name of the JSON file Write writes and Load reads.
const RunFile = "run.json"

// Run is everything one nvmftest invocation measured. It is JSON
// serialisable: run.json is a Run.
type Run struct {
	// Command is the command line that made the run (the first, when
	// several filled its directory: see Steps).
	Command []string `json:"command"`
	// Started is when NewRun was called; Elapsed how long the run took,
	// to the end of its last step (Write fills it in).
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Steps are the invocations that filled the run directory, in order,
	// when there were several (a CI job's conform, then bench, then
	// failover): the first is Command, Started and its Elapsed then.
	// A run of one command has none.
	Steps []Step `json:"steps,omitempty"`
	// Target names what was tested (address, or address and NQN).
	Target string `json:"target,omitempty"`
	// Conformance is the conformance run, if any. Its results' Traces are
	// relative to the run directory.
	Conformance *suites.Summary `json:"conformance,omitempty"`
	// Bench summarises the load, one entry per job and direction.
	Bench []BenchSummary `json:"bench,omitempty"`
	// BenchInterrupted, when a signal stopped the load before its end,
	// says so and how far it got, e.g. "INTERRUPTED after 2.5s of 30s
	// (signal: interrupt)": Bench holds partial results and there is no
	// verdict on the load.
	BenchInterrupted string `json:"bench_interrupted,omitempty"`
	// Shards are the per-shard rows of a merged sharded load (nvmftest
	// report merge), one per shard, job and direction; Bench is then the
	// merged load.
	Shards []ShardRow `json:"shards,omitempty"`
	// MergeWarnings say where the merged shards' windows, intervals or
	// clocks disagree, or shards are missing or failed.
	MergeWarnings []string `json:"merge_warnings,omitempty"`
	// Failover holds one report per scenario run.
	Failover []*failover.Report `json:"failover,omitempty"`
	// Traces are packet traces (pcapng) relative to the run directory.
	Traces []string `json:"traces,omitempty"`

	// loads are the raw results AddBench was given, for bench/ files.
	loads []*loadgen.Result
}

// Step is one invocation that added to a run.
type Step struct {
	Command []string      `json:"command"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// NewRun starts a run record for command (usually os.Args), stamped now.
func NewRun(command []string) *Run {
	return &Run{Command: append([]string(nil), command...), Started: time.Now().UTC()}
}

// Continue starts another step of a loaded run: command (usually os.Args)
// adds to the run directory, stamped now. Write then times the run to the
// end of this step.
func (r *Run) Continue(command []string) {
	if len(r.Steps) == 0 {
		r.Steps = []Step{{Command: r.Command, Started: r.Started, Elapsed: r.Elapsed}}
	}
	r.Steps = append(r.Steps, Step{Command: append([]string(nil), command...), Started: time.Now().UTC()})
}

// AddConformance records a conformance run. s is normally what suites.Run
// returned after writing its reports into <dir>/conformance/; if those
// files are missing, Write writes junit.xml, results.json, findings.json
// and summary.md there itself. The traces of failed checks are added to
// r.Traces. Trace paths are relative to the run directory; Write also
// accepts them relative to <dir>/conformance/ (suites.Run's report
// directory) and rewrites those to the run directory.
func (r *Run) AddConformance(s suites.Summary) {
	c := s
	c.Results = append([]suites.Result(nil), s.Results...)
	for i := range c.Results {
		c.Results[i].Traces = append([]string(nil), c.Results[i].Traces...)
	}
	c.Findings = append([]suites.Finding(nil), s.Findings...)
	r.Conformance = &c
	if r.Target == "" {
		r.Target = targetName(s.Target, s.SubNQN)
	}
	for _, res := range c.Results {
		r.AddTraces(res.Traces...)
	}
}

func targetName(addr, nqn string) string {
	switch {
	case addr == "":
		return nqn
	case nqn == "":
		return addr
	}
	return addr + " " + nqn
}

// AddBench records a load run: it summarises every job and direction into
// r.Bench and keeps res so Write can write bench/fio.json and the
// HdrHistogram logs. Call it once per load run; several calls append.
func (r *Run) AddBench(res *loadgen.Result) {
	if res == nil {
		return
	}
	r.loads = append(r.loads, res)
	r.Bench = append(r.Bench, summariseBench(res)...)
	if r.Target == "" {
		for _, j := range res.Jobs {
			if len(j.Devices) > 0 {
				r.Target = j.Devices[0].Name
				break
			}
		}
	}
}

// AddFailover records a failover scenario; Write writes it to
// failover/<scenario>.json.
func (r *Run) AddFailover(rep *failover.Report) {
	if rep == nil {
		return
	}
	// Lists are [] in run.json and failover/<scenario>.json, never null.
	if rep.Paths == nil {
		rep.Paths = []string{}
	}
	if rep.Events == nil {
		rep.Events = []failover.Event{}
	}
	if rep.Samples == nil {
		rep.Samples = []failover.Sample{}
	}
	r.Failover = append(r.Failover, rep)
	if r.Target == "" {
		r.Target = rep.Target
	}
}

// AddTraces records packet traces, given relative to the run directory.
// Duplicates are dropped.
func (r *Run) AddTraces(paths ...string) {
	seen := map[string]bool{}
	for _, p := range r.Traces {
		seen[p] = true
	}
	for _, p := range paths {
		p = filepath.ToSlash(filepath.Clean(p))
		if p == "." || seen[p] {
			continue
		}
		seen[p] = true
		r.Traces = append(r.Traces, p)
	}
}

// AddTraceFiles records packet traces given as file paths (a capture
// directory's, say), linked relative to the run directory dir: a trace
// outside it is reached with ../, or by its absolute path where no
// relative one exists.
func (r *Run) AddTraceFiles(dir string, files ...string) {
	absDir, derr := filepath.Abs(dir)
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			abs = f
		}
		if derr == nil {
			if rel, err := filepath.Rel(absDir, abs); err == nil {
				abs = rel
			}
		}
		r.AddTraces(abs)
	}
}

// FreeName is base+ext, or base-2+ext, base-3+ext ..., the first name not
// yet in dir: a file of this invocation's that must not overwrite an
// earlier one's in a shared run directory.
func FreeName(dir, base, ext string) string {
	return freeName(dir, map[string]int{}, base, ext)
}

// Write writes the run directory dir (created if needed): run.json,
// summary.md, report.html, bench/fio.json and bench/<job>.hlog for the
// load AddBench recorded, failover/<scenario>.json, and the conformance
// files (junit.xml, results.json ...) if suites.Run did not write them.
// The last step, if not yet timed, ends now, and Elapsed with it.
func (r *Run) Write(dir string) error {
	if n := len(r.Steps); n > 0 {
		last := &r.Steps[n-1]
		if last.Elapsed == 0 {
			last.Elapsed = time.Since(last.Started)
		}
		r.Elapsed = last.Started.Add(last.Elapsed).Sub(r.Started)
	} else if r.Elapsed == 0 && !r.Started.IsZero() {
		r.Elapsed = time.Since(r.Started)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	r.resolveTraces(dir)
	var errs []error
	if r.Conformance != nil {
		cdir := filepath.Join(dir, "conformance")
		if _, err := os.Stat(filepath.Join(cdir, "results.json")); errors.Is(err, os.ErrNotExist) {
			err = os.MkdirAll(cdir, 0o755)
			if err == nil {
				err = r.Conformance.WriteFiles(cdir)
			}
			errs = append(errs, err)
			// WriteFiles took the traces as relative to cdir; here
			// they are relative to the run directory.
			errs = append(errs, r.Conformance.WriteJUnitFile(filepath.Join(cdir, "junit.xml"), dir))
		} else if _, err := os.Stat(filepath.Join(cdir, "junit.xml")); errors.Is(err, os.ErrNotExist) {
			errs = append(errs, r.Conformance.WriteJUnitFile(filepath.Join(cdir, "junit.xml"), dir))
		}
	}
	if len(r.loads) > 0 {
		errs = append(errs, writeBenchFiles(filepath.Join(dir, "bench"), r.loads))
	}
	if len(r.Failover) > 0 {
		fdir := filepath.Join(dir, "failover")
		if err := os.MkdirAll(fdir, 0o755); err != nil {
			errs = append(errs, err)
		} else {
			names := map[string]int{}
			for _, rep := range r.Failover {
				name := uniqueName(names, fileName(rep.Scenario))
				errs = append(errs, writeFile(filepath.Join(fdir, name+".json"), func(f *os.File) error { return failover.WriteJSON(f, rep) }))
			}
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, RunFile), append(b, '\n'), 0o644)
	}
	errs = append(errs, err, r.Rerender(dir))
	return errors.Join(errs...)
}

// resolveTraces makes the conformance results' trace paths relative to the
// run directory: a path that names no file under dir but does under
// dir/conformance (suites.Run's report directory) gets the "conformance/"
// prefix, in the results and in r.Traces.
func (r *Run) resolveTraces(dir string) {
	if r.Conformance == nil {
		return
	}
	exists := func(p string) bool {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p)))
		return err == nil
	}
	moved := map[string]string{}
	for i := range r.Conformance.Results {
		res := &r.Conformance.Results[i]
		for j, p := range res.Traces {
			p = filepath.ToSlash(filepath.Clean(p))
			if q := "conformance/" + p; !exists(p) && exists(q) {
				moved[p] = q
				res.Traces[j] = q
			}
		}
	}
	for i, p := range r.Traces {
		if q, ok := moved[p]; ok {
			r.Traces[i] = q
		}
	}
}

// Rerender writes summary.md and report.html in dir from r, typically a
// Run that Load read from dir; nothing else there is touched.
func (r *Run) Rerender(dir string) error {
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "summary.md"), []byte(r.Markdown()), 0o644),
		writeFile(filepath.Join(dir, "report.html"), func(f *os.File) error { return r.WriteHTML(f) }),
	)
}

func writeFile(path string, fill func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileName makes s safe as a file name.
func fileName(s string) string {
	s = unsafeName.ReplaceAllString(s, "_")
	if s == "" || s == "." || s == ".." {
		s = "unnamed"
	}
	return s
}

// uniqueName returns name, or name-2, name-3 ... when already used.
func uniqueName(used map[string]int, name string) string {
	used[name]++
	if n := used[name]; n > 1 {
		return fmt.Sprintf("%s-%d", name, n)
	}
	return name
}

// Load reads a run from path, a run directory or its run.json.
func Load(path string) (*Run, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	file := path
	if fi.IsDir() {
		file = filepath.Join(path, RunFile)
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("load run: %s is a directory without %s: not a run directory", path, RunFile)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("load run: %s is not a run.json: %v", file, err)
	}
	if r.Started.IsZero() && r.Command == nil {
		return nil, fmt.Errorf("load run: %s is not a run.json: no command or start time", file)
	}
	if r.Conformance != nil {
		r.Conformance.Recount() // a run.json of before the snake_case keys compares too
	}
	return &r, nil
}

// Verdict is one line of a run's overall outcome.
type Verdict struct {
	// Area is "conformance", "bench" or "failover".
	Area string `json:"area"`
	// Pass is false when the area failed (a mandatory conformance check,
	// a load job's error, a failover scenario).
	Pass bool `json:"pass"`
	// Text says it for people, e.g. "NOT CONFORMANT: 2 mandatory checks failed".
	Text string `json:"text"`
	// Untested, on a conformance verdict that passed, counts the
	// mandatory checks not run for lack of an option: a pass with a
	// caveat, which the HTML report shows apart from a plain pass.
	Untested int `json:"untested,omitempty"`
}

// Verdicts returns the outcome of each area the run has.
func (r *Run) Verdicts() []Verdict {
	var v []Verdict
	if s := r.Conformance; s != nil {
		cv := s.Verdict()
		n := 0
		for _, u := range cv.Untested {
			n += len(u.IDs)
		}
		v = append(v, Verdict{Area: "conformance", Pass: cv.Verdict == suites.Conformant, Text: cv.Text, Untested: n})
	}
	if len(r.Bench) > 0 {
		jobs := map[string]bool{}
		var failed []string
		for _, b := range r.Bench {
			if b.Error != "" && !jobs[b.Job] {
				failed = append(failed, b.Job)
			}
			jobs[b.Job] = true
		}
		switch {
		case len(failed) > 0:
			sort.Strings(failed)
			text := fmt.Sprintf("LOAD FAILED: %d of %d jobs reported errors (%v)", len(failed), len(jobs), failed)
			if r.BenchInterrupted != "" {
				text += "; then " + r.BenchInterrupted
			}
			v = append(v, Verdict{Area: "bench", Text: text})
		case r.BenchInterrupted != "":
			v = append(v, Verdict{Area: "bench", Text: fmt.Sprintf("%s: partial results of %d jobs, no verdict on the load", r.BenchInterrupted, len(jobs))})
		default:
			v = append(v, Verdict{Area: "bench", Pass: true, Text: fmt.Sprintf("LOAD OK: %d jobs completed without errors", len(jobs))})
		}
	}
	if len(r.Failover) > 0 {
		var failed []string
		for _, f := range r.Failover {
			if !f.Pass {
				failed = append(failed, f.Scenario)
			}
		}
		if len(failed) > 0 {
			v = append(v, Verdict{Area: "failover", Text: fmt.Sprintf("FAILOVER FAILED: %d of %d scenarios failed (%v)", len(failed), len(r.Failover), failed)})
		} else {
			v = append(v, Verdict{Area: "failover", Pass: true, Text: fmt.Sprintf("FAILOVER PASSED: %d of %d scenarios", len(r.Failover), len(r.Failover))})
		}
	}
	return v
}

// Passed reports whether every verdict passed.
func (r *Run) Passed() bool {
	for _, v := range r.Verdicts() {
		if !v.Pass {
			return false
		}
	}
	return true
}
