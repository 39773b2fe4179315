package suites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/nvmftest/nvmftest/internal/interrupt"
)

// RunOptions shape one run of the suites.
type RunOptions struct {
	// LabelFilter selects checks by Ginkgo label expression: areas
	// ("transport", "fabrics" ...), levels ("mandatory" ...) and IDs,
	// e.g. "fabrics && mandatory" or "!TCP-IC-007".
	LabelFilter string
	// ReportDir receives junit.xml, report.json (Ginkgo's JSON report),
	// results.json, findings.json, summary.md and traces/ID.pcapng (see
	// Traces); empty writes none.
	ReportDir string
	// Timeout bounds the whole run (default 1 hour).
	Timeout time.Duration
	// Out receives the human output: one line per check, then a summary
	// by area and level. Nil writes nothing.
	Out io.Writer
	// Quiet silences Ginkgo's own console reporter (the CLI uses Out
	// instead); `go test` leaves it on.
	Quiet bool
	// Strict makes recommended and optional failures fail the run too.
	Strict bool
	// Traces says which checks keep a pcapng of their connections
	// (default TracesFailed).
	Traces TraceMode
	// TraceDir is where they go, as ID.pcapng (default ReportDir/traces;
	// with neither, nothing is recorded).
	TraceDir string
}

// Result is the verdict on one requirement. Its JSON (results.json,
// run.json) is described by reports/results.schema.json: snake_case keys,
// lists always present ([] when empty), and "verdict", the one word a CI
// gate reads.
type Result struct {
	Requirement
	// Area is the suite area (transport, fabrics, discovery, admin, io).
	Area string `json:"area"`
	// State is "passed", "failed" or "skipped" (also "timedout",
	// "panicked" ... from Ginkgo: those count as failed), "interrupted"
	// (StateInterrupted: a signal stopped the run while the check ran; it
	// did not fail), or "notrun" (StateNotRun): the target had become
	// unreachable, or the run was interrupted, before the check's turn,
	// so it was never tried. Verdict says the same in fewer words.
	State string `json:"state"`
	// Message is the failure or the reason for skipping.
	Message  string        `json:"message,omitempty"`
	Findings []Finding     `json:"findings"`
	Duration time.Duration `json:"duration_ns"`
	// Traces are the pcapng files of the check's connections, relative to
	// RunOptions.ReportDir, as RunOptions.Traces keeps them.
	Traces []string `json:"traces"`
	// Unreachable, on the check after which the target stopped answering
	// the liveness probe, is the probe's failure.
	Unreachable string `json:"unreachable,omitempty"`
	// Needs, on a check skipped because the run lacked what only the user
	// can give, names it: "--allow-writes NSID", "--control CMD",
	// "--restricted-nqn NQN", "a --control that can VERB". Such a check
	// applies to the target but was not tested (see Summary.Untested).
	Needs string `json:"needs,omitempty"`
	// Details are what the check recorded on the way (report entries
	// named "observed", "detail", "capability"), in order.
	Details []Detail `json:"details"`
}

// Detail is one thing a check recorded: Name is "observed", "detail" or
// "capability".
type Detail struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Per-check verdicts (Result.Verdict, "verdict" in results.json).
const (
	VerdictPass        = "pass"        // passed (with findings: a documented divergence, FINDING on the console)
	VerdictFail        = "fail"        // failed, timed out or panicked
	VerdictSkip        = "skip"        // not applicable, or not runnable without an option (Needs)
	VerdictNotRun      = "notrun"      // never tried: the target became unreachable, or a signal stopped the run first
	VerdictInterrupted = "interrupted" // a signal stopped the run while it ran: no result
)

// Verdict is the check's outcome in one of the Verdict* words.
func (r Result) Verdict() string {
	switch {
	case r.State == "passed":
		return VerdictPass
	case r.State == "skipped":
		return VerdictSkip
	case r.State == StateNotRun:
		return VerdictNotRun
	case r.State == StateInterrupted:
		return VerdictInterrupted
	}
	return VerdictFail
}

// MarshalJSON writes the result with its verdict, and its lists as []
// rather than null.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result // without this method
	p := plain(r)
	if p.Findings == nil {
		p.Findings = []Finding{}
	}
	if p.Traces == nil {
		p.Traces = []string{}
	}
	if p.Details == nil {
		p.Details = []Detail{}
	}
	return json.Marshal(struct {
		plain
		Verdict string `json:"verdict"`
	}{p, r.Verdict()})
}

// StateNotRun is the State of a check that was never tried because the
// target had become unreachable (Summary.Unreachable says after which
// check).
const StateNotRun = "notrun"

// StateInterrupted is the State of the check a signal (Ctrl-C, SIGTERM)
// stopped while it ran: it has no result (Summary.Interrupted says more).
const StateInterrupted = "interrupted"

// Failed reports whether the check failed (including a check a timeout cut
// short); a check that was not run, or that a signal interrupted, did not
// fail.
func (r Result) Failed() bool {
	return r.State != "passed" && r.State != "skipped" && r.State != StateNotRun && r.State != StateInterrupted
}

// Summary is the outcome of a run. Its JSON is results.json (and the
// "conformance" of run.json): see reports/results.schema.json.
type Summary struct {
	Target  string `json:"target"`
	SubNQN  string `json:"subnqn"`
	Profile string `json:"profile,omitempty"`
	// Strict is RunOptions.Strict: recommended and optional failures
	// fail the run too.
	Strict   bool      `json:"strict"`
	Results  []Result  `json:"results"`
	Findings []Finding `json:"findings"`
	// Counts by state.
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// NotRun counts the checks not tried because the target had become
	// unreachable or the run was interrupted (the interrupted check
	// included).
	NotRun int `json:"not_run"`
	// MandatoryFailed counts failed mandatory checks.
	MandatoryFailed int `json:"mandatory_failed"`
	// Unreachable is set when the target stopped answering during the
	// run: the run has no verdict.
	Unreachable *Unreachable `json:"unreachable,omitempty"`
	// Interrupted is set when a signal (Ctrl-C, SIGTERM) stopped the run
	// before its end: the run has no verdict.
	Interrupted *Interrupted `json:"interrupted,omitempty"`
}

// Run verdicts (RunVerdict.Verdict, "verdict" in results.json).
const (
	// Conformant: every mandatory check that ran passed (strict: every
	// check). Untested mandatory checks (RunVerdict.Untested) do not
	// change it, but the verdict's text names them.
	Conformant = "conformant"
	// NotConformant: a mandatory check failed (strict: any check).
	NotConformant = "not_conformant"
	// NoVerdict: the run did not finish (interrupted, or the target
	// became unreachable).
	NoVerdict = "no_verdict"
)

// RunVerdict is a run's outcome.
type RunVerdict struct {
	// Verdict is Conformant, NotConformant or NoVerdict.
	Verdict string `json:"verdict"`
	// Text says it in one line, as the console, summary.md and the HTML
	// report print it, e.g. "CONFORMANT (3 mandatory checks not run: give
	// --control CMD (2), --restricted-nqn NQN (1))".
	Text string `json:"text"`
	// Untested are the mandatory checks that applied but were skipped
	// for lack of an option, by what they need.
	Untested []Untested `json:"untested"`
}

// Untested is the mandatory checks a run skipped for lack of one thing
// only the user can give.
type Untested struct {
	// Needs is the option, e.g. "--allow-writes NSID".
	Needs string `json:"needs"`
	// IDs are the checks, in ID order.
	IDs []string `json:"ids"`
}

// Verdict is the run's outcome. A mandatory check skipped for lack of
// an option (--allow-writes, --control, --restricted-nqn) is no failure
// (the exit status stays 0), but a CONFORMANT verdict says how many were
// not run and what would run them, so it never reads as unqualified.
func (s Summary) Verdict() RunVerdict {
	v := RunVerdict{Untested: s.untested()}
	n := 0
	var parts []string
	for _, u := range v.Untested {
		n += len(u.IDs)
		parts = append(parts, fmt.Sprintf("%s (%d)", u.Needs, len(u.IDs)))
	}
	qualify := ""
	if n > 0 {
		qualify = fmt.Sprintf(" (%s not run: give %s)", plural(n, "mandatory check"), strings.Join(parts, ", "))
	}
	switch {
	case s.Interrupted != nil:
		v.Verdict = NoVerdict
		v.Text = fmt.Sprintf("NO VERDICT: %s; of the checks that ran, %d passed, %d failed (%d mandatory), %d skipped", s.Interrupted, s.Passed, s.Failed, s.MandatoryFailed, s.Skipped)
	case s.Unreachable != nil:
		// Not a verdict on the target's conformance: the run is
		// incomplete, and the check it names is the finding.
		v.Verdict = NoVerdict
		v.Text = fmt.Sprintf("NO VERDICT: %s; %d checks not run (%d passed, %d failed, %d skipped before)", s.Unreachable, s.NotRun, s.Passed, s.Failed, s.Skipped)
	case s.MandatoryFailed > 0:
		v.Verdict = NotConformant
		v.Text = fmt.Sprintf("NOT CONFORMANT: %s failed (%d passed, %d failed, %d skipped)", plural(s.MandatoryFailed, "mandatory check"), s.Passed, s.Failed, s.Skipped)
	case s.Failed > 0 && s.Strict:
		v.Verdict = NotConformant
		v.Text = fmt.Sprintf("NOT CONFORMANT (--strict): %s recommended/optional failed (%d passed, %d skipped)", plural(s.Failed, "check"), s.Passed, s.Skipped)
	case s.Failed > 0:
		v.Verdict = Conformant
		v.Text = fmt.Sprintf("CONFORMANT to every mandatory check tried%s; %s recommended/optional failed (%d passed, %d skipped)", qualify, plural(s.Failed, "check"), s.Passed, s.Skipped)
	default:
		v.Verdict = Conformant
		v.Text = fmt.Sprintf("CONFORMANT%s: every check tried passed (%d passed, %d skipped)", qualify, s.Passed, s.Skipped)
	}
	return v
}

// untested groups the skipped mandatory checks that name what they need.
func (s Summary) untested() []Untested {
	var out []Untested
	at := map[string]int{}
	for _, r := range s.Results {
		if r.State != "skipped" || r.Needs == "" || r.Level != Mandatory {
			continue
		}
		i, ok := at[r.Needs]
		if !ok {
			i = len(out)
			at[r.Needs] = i
			out = append(out, Untested{Needs: r.Needs})
		}
		out[i].IDs = append(out[i].IDs, r.ID)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Needs < out[j].Needs })
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// MarshalJSON writes the summary with the run's verdict ("verdict",
// "verdict_text", "untested"), and its lists as [] rather than null.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary // without this method
	p := plain(s)
	if p.Results == nil {
		p.Results = []Result{}
	}
	if p.Findings == nil {
		p.Findings = []Finding{}
	}
	v := s.Verdict()
	if v.Untested == nil {
		v.Untested = []Untested{}
	}
	return json.Marshal(struct {
		plain
		Verdict     string     `json:"verdict"`
		VerdictText string     `json:"verdict_text"`
		Untested    []Untested `json:"untested"`
	}{p, v.Verdict, v.Text, v.Untested})
}

// Interrupted records that a signal stopped a run before its end.
type Interrupted struct {
	// Signal names it ("interrupt" for SIGINT, "terminated" for SIGTERM)
	// and SignalNumber numbers it (2, 15).
	Signal       string `json:"signal"`
	SignalNumber int    `json:"signal_number"`
	// During is the check that was running (empty between checks).
	During string `json:"during,omitempty"`
	// Ran counts the checks that ended with a result; Total the checks
	// the run selected. Total-Ran were not run.
	Ran   int `json:"ran"`
	Total int `json:"total"`
}

// String says it in one line, e.g. "INTERRUPTED after 25 of 216 checks;
// 191 not run (signal: interrupt, during ADM-KA-003)".
func (i *Interrupted) String() string {
	s := fmt.Sprintf("INTERRUPTED after %d of %d checks; %d not run (signal: %s", i.Ran, i.Total, i.Total-i.Ran, i.Signal)
	if i.During != "" {
		s += ", during " + i.During
	}
	return s + ")"
}

// Exit statuses of a conformance run.
const (
	ExitConformant    = 0 // every mandatory check (strict: every check) passed
	ExitNotConformant = 1 // a mandatory check (strict: any check) failed
	ExitUnreachable   = 3 // the target stopped answering: no verdict
	// ExitInterrupted (130 for SIGINT; 128 + the signal's number in
	// general, as shells report it) is a run a signal stopped: no verdict.
	ExitInterrupted = 130
)

// ExitCode is 128 plus the signal's number (ExitInterrupted for SIGINT)
// when a signal stopped the run, ExitUnreachable when the target stopped
// answering during the run, ExitNotConformant when a mandatory check
// failed (or, strict, any check), ExitConformant otherwise.
func (s Summary) ExitCode(strict bool) int {
	switch {
	case s.Interrupted != nil:
		if s.Interrupted.SignalNumber > 0 {
			return 128 + s.Interrupted.SignalNumber
		}
		return ExitInterrupted
	case s.Unreachable != nil:
		return ExitUnreachable
	case s.MandatoryFailed > 0 || strict && s.Failed > 0:
		return ExitNotConformant
	}
	return ExitConformant
}

// run state shared with the report nodes below (one RunSpecs per process).
var (
	runMu   sync.Mutex
	runOpts RunOptions
	runSum  *Summary
	runErr  error
)

// Run runs the conformance suites against the target cfg describes, with
// profile (may be nil) stating its known divergences. It may be called
// once per process (Ginkgo's RunSpecs); t gets Fail() when any check
// fails. Reports go to opts.ReportDir.
func Run(t GinkgoTestingT, cfg Config, profile *Profile, opts RunOptions) (Summary, error) {
	if err := CheckLabelFilter(opts.LabelFilter); err != nil {
		return Summary{}, err
	}
	loadRegistry()
	nextBuild()
	if opts.Timeout <= 0 {
		opts.Timeout = time.Hour
	}
	if opts.Traces == "" {
		opts.Traces = TracesFailed
	}
	if opts.TraceDir != "" {
		dir, err := filepath.Abs(opts.TraceDir)
		if err != nil {
			return Summary{}, err
		}
		opts.TraceDir = dir
	}
	sc, rc := GinkgoConfiguration()
	sc.LabelFilter = opts.LabelFilter
	sc.Timeout = opts.Timeout
	sc.RandomizeAllSpecs = false
	sc.RandomSeed = 1 // stable order, stable output
	sc.FailFast = false
	sc.ParallelTotal, sc.ParallelProcess = 1, 1
	rc.NoColor = true
	rc.JUnitReport, rc.JSONReport = "", ""
	if opts.ReportDir != "" {
		dir, err := filepath.Abs(opts.ReportDir)
		if err != nil {
			return Summary{}, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Summary{}, fmt.Errorf("report directory: %w", err)
		}
		opts.ReportDir = dir
		// junit.xml is ours (WriteFiles), written from the Summary.
		rc.JSONReport = filepath.Join(dir, "report.json")
	}
	if opts.Quiet {
		saved := formatter.ColorableStdOut
		formatter.ColorableStdOut = io.Discard
		defer func() { formatter.ColorableStdOut = saved }()
	}
	setCurrent(&Target{Config: cfg, Profile: profile})
	defer setCurrent(nil)
	runMu.Lock()
	runOpts, runSum, runErr = opts, &Summary{Target: cfg.Address, SubNQN: cfg.SubNQN, Strict: opts.Strict}, nil
	// Ginkgo handles the interrupt itself; this lets the liveness probe
	// know, to stay out of its way, and the summary say which signal
	// stopped the run.
	interrupted, stopSignals := interrupt.Watch(context.Background())
	defer stopSignals()
	runDead, runLastCheck, runInterrupted = nil, "", interrupted
	runFilter = nil
	if opts.LabelFilter != "" {
		// CheckLabelFilter parsed it above.
		runFilter, _ = types.ParseLabelFilter(opts.LabelFilter)
	}
	if profile != nil {
		runSum.Profile = profile.Name
	}
	runMu.Unlock()

	gomega.RegisterFailHandler(Fail)
	RunSpecs(t, "nvmftest conformance", sc, rc)

	runMu.Lock()
	defer runMu.Unlock()
	sum := *runSum
	if opts.Out != nil {
		sum.WriteText(opts.Out)
	}
	return sum, runErr
}

// CheckLabelFilter checks a --label-filter expression the way Run will
// read it (an empty one selects every check), so a caller can refuse a
// bad one before touching the target: a syntax error, or a filter that
// selects no check (a run of zero checks must never pass).
func CheckLabelFilter(filter string) error {
	if filter == "" {
		return nil
	}
	f, err := types.ParseLabelFilter(filter)
	if err != nil {
		return fmt.Errorf("label filter %q: %s", filter, plainError(err))
	}
	if matchesNone(f) {
		// Zero checks run is no verdict: never a green CONFORMANT.
		return fmt.Errorf("label filter %q selects no check: use areas (transport, fabrics, discovery, admin, io), levels (mandatory, recommended, optional) or IDs from `nvmftest conform --list`", filter)
	}
	return nil
}

// reportLive prints a check's line as it ends (a top-level ReportAfterEach
// would not survive Ginkgo's suite cloning, so Check defers this).
func reportLive() {
	runMu.Lock()
	defer runMu.Unlock()
	if runSum == nil || runOpts.Out == nil {
		return
	}
	sr := CurrentSpecReport()
	if sr.State == types.SpecStateInvalid || sr.State == types.SpecStatePending {
		sr.State = types.SpecStatePassed // still running: nothing failed or skipped it
	}
	res, ok := resultOf(sr)
	if !ok || res.State == StateNotRun {
		return // not-run checks are counted in the summary, not listed one by one
	}
	writeLine(runOpts.Out, res)
	if res.Unreachable != "" {
		fmt.Fprintf(runOpts.Out, "TARGET UNREACHABLE after %s: %s\n        -> the remaining checks are not run\n", res.ID, res.Unreachable)
	}
}

var _ = ReportAfterSuite("nvmftest conformance summary", func(r Report) {
	runMu.Lock()
	defer runMu.Unlock()
	if runSum == nil {
		return
	}
	if runInterrupted != nil && interrupt.Signal(runInterrupted) == nil && ginkgoInterrupted(r) {
		// Ginkgo caught the signal; ours is on its way.
		select {
		case <-runInterrupted.Done():
		case <-time.After(2 * time.Second):
		}
	}
	for _, sr := range r.SpecReports {
		if res, ok := resultOf(sr); ok {
			runSum.add(res)
		}
	}
	sort.SliceStable(runSum.Results, func(i, j int) bool { return runSum.Results[i].ID < runSum.Results[j].ID })
	runSum.Unreachable = runDead
	if sig := interrupt.Signal(runInterrupted); sig != nil {
		in := &Interrupted{Signal: sig.String(), Total: len(runSum.Results)}
		if n, ok := sig.(syscall.Signal); ok {
			in.SignalNumber = int(n)
		}
		for _, res := range runSum.Results {
			switch res.State {
			case StateInterrupted:
				in.During = res.ID
			case StateNotRun:
			default:
				in.Ran++
			}
		}
		runSum.Interrupted = in
	}
	if runOpts.ReportDir != "" {
		runErr = runSum.WriteFiles(runOpts.ReportDir)
	}
})

// ginkgoInterrupted reports whether Ginkgo says a signal stopped the run.
func ginkgoInterrupted(r Report) bool {
	for _, reason := range r.SpecialSuiteFailureReasons {
		if strings.Contains(reason, "Interrupted by User") {
			return true
		}
	}
	return false
}

// resultOf turns a Ginkgo spec report into a Result; specs that are not
// requirements, or were filtered out, give false.
func resultOf(sr SpecReport) (Result, bool) {
	if sr.LeafNodeType != types.NodeTypeIt {
		return Result{}, false
	}
	var req Requirement
	found := false
	regMu.Lock()
	for _, l := range sr.Labels() {
		if r, ok := registry[l]; ok {
			req, found = r, true
			break
		}
	}
	regMu.Unlock()
	if !found {
		return Result{}, false
	}
	res := Result{Requirement: req, Duration: sr.RunTime}
	if len(sr.ContainerHierarchyTexts) > 0 {
		res.Area = strings.ToLower(sr.ContainerHierarchyTexts[0])
	}
	interrupted := interrupt.Signal(runInterrupted)
	switch sr.State {
	case types.SpecStatePassed:
		res.State = "passed"
	case types.SpecStateSkipped, types.SpecStatePending:
		if sr.Failure.Message == "" && sr.RunTime == 0 {
			if interrupted != nil && (runFilter == nil || runFilter(sr.Labels())) {
				// Ginkgo skips every check after an interrupt the way it
				// skips those the filter left out: this one was selected.
				res.State = StateNotRun
				res.Message = fmt.Sprintf("not run: the run was interrupted (signal: %v)", interrupted)
				return res, true
			}
			return Result{}, false // filtered out by labels: not part of this run
		}
		res.State = "skipped"
		res.Message = sr.Failure.Message
	case types.SpecStateInterrupted:
		// Ginkgo's "Interrupted by User" is no verdict on the target.
		res.State = StateInterrupted
		res.Message = "interrupted while running: no result"
		if interrupted != nil {
			res.Message = fmt.Sprintf("interrupted while running (signal: %v): no result", interrupted)
		}
	default:
		res.State = strings.ReplaceAll(sr.State.String(), " ", "")
		res.Message = sr.Failure.Message
	}
	for _, e := range sr.ReportEntries {
		switch e.Name {
		case notRunEntry:
			res.State = StateNotRun
			continue
		case unreachableEntry:
			res.Unreachable = entryString(e)
			continue
		case needsEntry:
			res.Needs = entryString(e)
			continue
		case "observed", "detail", "capability":
			res.Details = append(res.Details, Detail{Name: e.Name, Value: entryString(e)})
			continue
		}
		if e.Name == "trace" {
			if p, ok := e.GetRawValue().(string); ok {
				res.Traces = append(res.Traces, p)
			} else if err := json.Unmarshal([]byte(e.Value.AsJSON), &p); err == nil {
				res.Traces = append(res.Traces, p)
			}
			continue
		}
		if e.Name != "finding" {
			continue
		}
		if f, ok := e.GetRawValue().(Finding); ok {
			res.Findings = append(res.Findings, f)
			continue
		}
		var f Finding
		if err := json.Unmarshal([]byte(e.Value.AsJSON), &f); err == nil {
			res.Findings = append(res.Findings, f)
		}
	}
	return res, true
}

// needsEntry, on a check Spec.SkipNeeds skipped, names what it needs.
const needsEntry = "needs"

// entryString is a report entry's string value, live or read back.
func entryString(e types.ReportEntry) string {
	if v, ok := e.GetRawValue().(string); ok {
		return v
	}
	var v string
	if err := json.Unmarshal([]byte(e.Value.AsJSON), &v); err == nil {
		return v
	}
	return e.StringRepresentation()
}

func (s *Summary) add(r Result) {
	s.Results = append(s.Results, r)
	s.Findings = append(s.Findings, r.Findings...)
	s.count(r)
}

// Recount sets the counts (Passed, Failed, Skipped, NotRun,
// MandatoryFailed) from Results, from which they derive. A results.json
// or run.json written before its keys became snake_case reads back
// whole with it: encoding/json matches "ID" to "id" but not
// "MandatoryFailed" to "mandatory_failed".
func (s *Summary) Recount() {
	s.Passed, s.Failed, s.Skipped, s.NotRun, s.MandatoryFailed = 0, 0, 0, 0, 0
	for _, r := range s.Results {
		s.count(r)
	}
}

func (s *Summary) count(r Result) {
	switch {
	case r.State == "passed":
		s.Passed++
	case r.State == "skipped":
		s.Skipped++
	case r.State == StateNotRun || r.State == StateInterrupted:
		s.NotRun++
	default:
		s.Failed++
		if r.Level == Mandatory {
			s.MandatoryFailed++
		}
	}
}

// verdict is the word a human line starts with.
func verdict(r Result) string {
	switch {
	case r.State == "passed" && len(r.Findings) > 0:
		return "FINDING"
	case r.State == "passed":
		return "PASS"
	case r.State == "skipped":
		return "SKIP"
	case r.State == StateNotRun:
		return "NOT RUN"
	case r.State == StateInterrupted:
		return "INTERRUPTED"
	}
	return "FAIL"
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

func writeLine(w io.Writer, r Result) {
	v := verdict(r)
	fmt.Fprintf(w, "%-7s %-14s %-11s %s", v, r.ID, r.Level, r.Title)
	switch v {
	case "FAIL":
		fmt.Fprintf(w, "\n        -> %s", oneLine(r.Message))
	case "SKIP", "NOT RUN", "INTERRUPTED":
		fmt.Fprintf(w, "\n        -> %s", oneLine(r.Message))
	case "FINDING":
		for _, f := range r.Findings {
			fmt.Fprintf(w, "\n        -> observed %q, spec %q: %s", f.Observed, f.Want, f.Note)
		}
	}
	fmt.Fprintln(w)
}

type tally struct{ pass, fail, skip, find, notRun int }

func (t *tally) add(r Result) {
	switch verdict(r) {
	case "PASS":
		t.pass++
	case "FINDING":
		t.pass++
		t.find++
	case "SKIP":
		t.skip++
	case "NOT RUN", "INTERRUPTED":
		t.notRun++
	default:
		t.fail++
	}
}

// WriteText writes the summary: counts by area and level, the failed
// mandatory checks, the findings and the verdict.
func (s Summary) WriteText(w io.Writer) {
	areas := map[string]*tally{}
	levels := map[Level]*tally{}
	var names []string
	for _, r := range s.Results {
		if areas[r.Area] == nil {
			areas[r.Area] = &tally{}
			names = append(names, r.Area)
		}
		areas[r.Area].add(r)
		if levels[r.Level] == nil {
			levels[r.Level] = &tally{}
		}
		levels[r.Level].add(r)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nconformance of %s (%s)", s.SubNQN, s.Target)
	if s.Profile != "" {
		fmt.Fprintf(w, " with profile %s", s.Profile)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The "not run" column shows only when the target died under the run.
	if s.NotRun > 0 {
		fmt.Fprintln(tw, "\tchecks\tpass\tfail\tskip\tnot run\tfindings\t")
	} else {
		fmt.Fprintln(tw, "\tchecks\tpass\tfail\tskip\tfindings\t")
	}
	row := func(name string, t *tally) {
		if s.NotRun > 0 {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, t.pass+t.fail+t.skip+t.notRun, t.pass, t.fail, t.skip, t.notRun, t.find)
			return
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", name, t.pass+t.fail+t.skip, t.pass, t.fail, t.skip, t.find)
	}
	for _, n := range names {
		row(n, areas[n])
	}
	for _, l := range []Level{Mandatory, Recommended, Optional} {
		if t := levels[l]; t != nil {
			row(string(l), t)
		}
	}
	all := &tally{}
	for _, r := range s.Results {
		all.add(r)
	}
	row("total", all)
	_ = tw.Flush()
	if len(s.Findings) > 0 {
		fmt.Fprintf(w, "\n%d findings (documented divergences from the spec):\n", len(s.Findings))
		for _, f := range s.Findings {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	var failed []string
	for _, r := range s.Results {
		if r.Failed() {
			failed = append(failed, fmt.Sprintf("  %s [%s] %s", r.ID, r.Level, r.Title))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nfailed:\n%s\n", strings.Join(failed, "\n"))
	}
	if s.Unreachable != nil && s.Interrupted == nil {
		fmt.Fprintf(w, "\nNO VERDICT: %s.\n%d checks not run; of those that ran, %d mandatory checks failed.\n",
			s.Unreachable, s.NotRun, s.MandatoryFailed)
		return
	}
	v := s.Verdict()
	fmt.Fprintf(w, "\n%s\n", v.Text)
	for _, u := range v.Untested {
		fmt.Fprintf(w, "  not run for lack of %s: %s\n", u.Needs, strings.Join(u.IDs, " "))
	}
}

// WriteFiles writes results.json, findings.json, summary.md and
// junit.xml to dir; the results' Traces are relative to dir.
func (s Summary) WriteFiles(dir string) error {
	var errs []error
	write := func(name string, v any) {
		b, err := json.MarshalIndent(v, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644)
		}
		errs = append(errs, err)
	}
	findings := s.Findings
	if findings == nil {
		findings = []Finding{}
	}
	write("results.json", s)
	write("findings.json", findings)
	errs = append(errs, os.WriteFile(filepath.Join(dir, "summary.md"), []byte(s.Markdown()), 0o644))
	errs = append(errs, s.WriteJUnitFile(filepath.Join(dir, "junit.xml"), dir))
	return errors.Join(errs...)
}

// WriteJUnitFile writes WriteJUnit's XML to path; traceDir is what the
// results' Traces are relative to.
func (s Summary) WriteJUnitFile(path, traceDir string) error {
	if abs, err := filepath.Abs(traceDir); err == nil {
		traceDir = abs
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = s.WriteJUnit(f, traceDir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Markdown renders the summary as a Markdown document.
func (s Summary) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# nvmftest conformance: %s\n\n", s.SubNQN)
	if i := s.Interrupted; i != nil {
		fmt.Fprintf(&b, "**%s: no verdict.** The results below are those of the checks that ran.\n\n", mdCell(i.String()))
	}
	fmt.Fprintf(&b, "Target `%s`", s.Target)
	if s.Profile != "" {
		fmt.Fprintf(&b, ", profile `%s`", s.Profile)
	}
	fmt.Fprintf(&b, ". %d passed, %d failed (%d mandatory), %d skipped", s.Passed, s.Failed, s.MandatoryFailed, s.Skipped)
	if s.NotRun > 0 {
		fmt.Fprintf(&b, ", %d not run", s.NotRun)
	}
	fmt.Fprintf(&b, ", %d findings.\n\n", len(s.Findings))
	if u := s.Unreachable; u != nil {
		fmt.Fprintf(&b, "**No verdict: %s.** The checks after it were not run.\n\n", mdCell(u.String()))
	}
	v := s.Verdict()
	fmt.Fprintf(&b, "**%s**\n\n", mdCell(v.Text))
	if len(v.Untested) > 0 {
		b.WriteString("Mandatory checks not run for lack of an option (skipped, not failed):\n\n")
		for _, u := range v.Untested {
			fmt.Fprintf(&b, "- give %s: %s\n", mdCell(u.Needs), strings.Join(u.IDs, ", "))
		}
		b.WriteString("\n")
	}
	if len(s.Findings) > 0 {
		b.WriteString("## Findings\n\n| Check | Section | Observed | Spec | Note |\n|---|---|---|---|---|\n")
		for _, f := range s.Findings {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.ID, f.Section, mdCell(f.Observed), mdCell(f.Want), mdCell(f.Note))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Checks\n\n| Verdict | Check | Level | Section | Requirement | Detail |\n|---|---|---|---|---|---|\n")
	for _, r := range s.Results {
		detail := r.Message
		if len(r.Findings) > 0 {
			detail = r.Findings[0].Note
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", verdict(r), r.ID, r.Level, r.Section, mdCell(r.Title), mdCell(oneLine(detail)))
	}
	return b.String()
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// plainError renders a Ginkgo error on one line without colours.
func plainError(err error) string {
	var parts []string
	for _, l := range strings.Split(ansi.ReplaceAllString(err.Error(), ""), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Learn more") {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, ": ")
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
