package hostconform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/suites"
)

// DefaultSubNQN is the test controller's subsystem.
const DefaultSubNQN = "nqn.2014-08.io.nvmftest:host-conformance"

// Defaults of Config's bounds.
const (
	// DefaultCloseWait is how long a host has to close a connection the
	// spec tells it to terminate. NVMe/TCP 1.0 3.5.1 gives no figure for
	// the host but lets the controller close after 30 s; a host that is
	// still there after 10 s is not terminating.
	DefaultCloseWait = 10 * time.Second
	// DefaultCheckTimeout bounds one check, connect to disconnect.
	DefaultCheckTimeout = 2 * time.Minute
)

// Config says where the test controller listens and how the host under
// test is driven.
type Config struct {
	// Listen is host:port the test controller listens on; the host
	// connects there.
	Listen string
	// SubNQN is the test controller's subsystem (default DefaultSubNQN).
	SubNQN string
	// HostNQN is the host NQN the host control connects with (it may be
	// empty: the host's own).
	HostNQN string
	// NrIOQueues, if positive, is asked of the host on connect.
	NrIOQueues int
	// Control drives the host under test: SelfHost (nvmftest's own
	// initiator), control.Exec (a user's command) or Attended (a person).
	Control control.Control
	// CloseWait bounds the wait for a host that must close a connection,
	// and for a host's reaction to an event of the controller's (default
	// DefaultCloseWait).
	CloseWait time.Duration
	// CheckTimeout bounds each check (default DefaultCheckTimeout).
	CheckTimeout time.Duration
}

// RunOptions shape a run.
type RunOptions struct {
	// Only, if not empty, runs only the checks whose ID or area is in it;
	// Skip leaves out those whose ID or area is in it.
	Only, Skip []string
	// ReportDir receives results.json, findings.json, summary.md,
	// junit.xml and traces/ID.pcapng; empty writes none.
	ReportDir string
	// Traces says which checks keep their pcapng (default failed).
	Traces suites.TraceMode
	// Out receives one line per check and the summary; nil none.
	Out io.Writer
	// Strict makes recommended and optional failures fail the run.
	Strict bool
}

// Select returns the checks opts selects, or an error naming an ID or
// area no check has (a run of nothing must never pass).
func Select(opts RunOptions) ([]*Check, error) {
	all := Checks()
	known := map[string]bool{}
	for _, c := range all {
		known[c.ID], known[c.Area] = true, true
	}
	for _, l := range [][]string{opts.Only, opts.Skip} {
		for _, n := range l {
			if !known[n] {
				return nil, fmt.Errorf("no host check or area is named %q (see `nvmftest conform-host --list`)", n)
			}
		}
	}
	in := func(l []string, c *Check) bool {
		for _, n := range l {
			if n == c.ID || n == c.Area {
				return true
			}
		}
		return false
	}
	var out []*Check
	for _, c := range all {
		if (len(opts.Only) == 0 || in(opts.Only, c)) && !in(opts.Skip, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the selection leaves no host check to run")
	}
	return out, nil
}

// runner is one run: the listener all checks share and the controller of
// the check running now.
type runner struct {
	cfg  Config
	prof *suites.Profile
	opts RunOptions
	ln   net.Listener

	mu  sync.Mutex
	cur *Controller
}

// Run runs the selected checks against the host cfg.Control drives and
// returns the summary (suites' results types, so JUnit, results.json,
// summary.md and the HTML report are the ones conform writes). ctx's end
// by a signal (internal/interrupt) interrupts the run: the checks not run
// are "notrun" and the summary has no verdict.
func Run(ctx context.Context, cfg Config, prof *suites.Profile, opts RunOptions) (suites.Summary, error) {
	sel, err := Select(opts)
	if err != nil {
		return suites.Summary{}, err
	}
	if cfg.Control == nil {
		return suites.Summary{}, errors.New("hostconform: no host control")
	}
	if cfg.SubNQN == "" {
		cfg.SubNQN = DefaultSubNQN
	}
	if cfg.CloseWait <= 0 {
		cfg.CloseWait = DefaultCloseWait
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if opts.Traces == "" {
		opts.Traces = suites.TracesFailed
	}
	if opts.ReportDir != "" {
		if opts.ReportDir, err = filepath.Abs(opts.ReportDir); err == nil {
			err = os.MkdirAll(opts.ReportDir, 0o755)
		}
		if err != nil {
			return suites.Summary{}, fmt.Errorf("report directory: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return suites.Summary{}, fmt.Errorf("test controller: %w", err)
	}
	cfg.Listen = ln.Addr().String()
	if opts.Out != nil {
		fmt.Fprintf(opts.Out, "test controller on %s, subsystem %s; the host under test connects with:\n    %s\n\n", cfg.Listen, cfg.SubNQN, ListenHint(cfg.Listen, cfg.SubNQN))
	}
	r := &runner{cfg: cfg, prof: prof, opts: opts, ln: ln}
	done := make(chan struct{})
	go func() { defer close(done); r.accept() }()
	defer func() { _ = ln.Close(); <-done }()
	if a, ok := cfg.Control.(interface{ attach(*runner) }); ok {
		a.attach(r)
	}

	sum := suites.Summary{Target: "host under test, via the test controller at " + cfg.Listen, SubNQN: cfg.SubNQN, Strict: opts.Strict}
	if prof != nil {
		sum.Profile = prof.Name
	}
	var in *suites.Interrupted
	for _, c := range sel {
		if ctx.Err() != nil {
			res := suites.Result{Requirement: c.Requirement, Area: c.Area, State: suites.StateNotRun,
				Message: fmt.Sprintf("not run: the run was interrupted (signal: %v)", interrupt.Signal(ctx))}
			sum.Results = append(sum.Results, res)
			continue
		}
		res := r.runCheck(ctx, c)
		if ctx.Err() != nil && interrupt.Signal(ctx) != nil && res.State != "passed" && res.State != "skipped" {
			res.State, res.Message = suites.StateInterrupted, fmt.Sprintf("interrupted while running (signal: %v): no result", interrupt.Signal(ctx))
		}
		sum.Results = append(sum.Results, res)
		if opts.Out != nil {
			writeLine(opts.Out, res)
		}
	}
	if sig := interrupt.Signal(ctx); sig != nil {
		in = &suites.Interrupted{Signal: sig.String(), Total: len(sum.Results)}
		if n, ok := sig.(syscall.Signal); ok {
			in.SignalNumber = int(n)
		}
		for _, res := range sum.Results {
			switch res.State {
			case suites.StateInterrupted:
				in.During = res.ID
			case suites.StateNotRun:
			default:
				in.Ran++
			}
		}
		sum.Interrupted = in
	}
	for _, res := range sum.Results {
		sum.Findings = append(sum.Findings, res.Findings...)
	}
	sum.Recount()
	if opts.Out != nil {
		sum.WriteText(opts.Out)
	}
	if opts.ReportDir != "" {
		if err := sum.WriteFiles(opts.ReportDir); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// accept hands each connection to the controller of the check running
// now; between checks there is none, and the connection is closed.
func (r *runner) accept() {
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		r.mu.Lock()
		cur := r.cur
		r.mu.Unlock()
		if cur == nil {
			_ = nc.Close()
			continue
		}
		cur.serve(nc)
	}
}

func (r *runner) current() *Controller {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// runCheck runs one check with a controller of its own.
func (r *runner) runCheck(ctx context.Context, c *Check) (res suites.Result) {
	start := time.Now()
	res = suites.Result{Requirement: c.Requirement, Area: c.Area}
	defer func() { res.Duration = time.Since(start) }()

	tcfg := baseConfig(r.cfg.Listen, r.cfg.SubNQN)
	setup := Setup{Config: &tcfg, HostNQN: r.cfg.HostNQN}
	if c.Controller != nil {
		c.Controller(&setup)
	}
	trace, rel := r.startTrace(c)
	ctrl, err := startController(c.ID, tcfg, setup, trace)
	if err != nil {
		res.State, res.Message = "failed", fmt.Sprintf("%s: the test controller did not start: %v", c.ID, err)
		return res
	}
	r.mu.Lock()
	r.cur = ctrl
	r.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
	defer cancel()
	t := &T{Check: c, Ctrl: ctrl, Cfg: &r.cfg, Ctx: cctx, profile: r.prof}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(stop); !ok {
					t.state = "panicked"
					t.message = fmt.Sprintf("%s: panic: %v\n%s", c.ID, p, debug.Stack())
				}
			}
		}()
		c.Run(t)
	}()
	if t.state == "" {
		t.state = "passed"
		if cctx.Err() != nil && ctx.Err() == nil {
			t.state, t.message = "timedout", fmt.Sprintf("%s: the check did not end within %v", c.ID, r.cfg.CheckTimeout)
		}
	}
	if t.connected {
		// Best effort: the host may already be gone (a fatal error
		// ended its association), and a host control that cannot
		// disconnect leaves it to the controller's close below.
		wait := 30 * time.Second
		if ctx.Err() != nil {
			wait = 5 * time.Second // interrupted: clean up, but do not keep the user waiting
		}
		dctx, dcancel := context.WithTimeout(context.Background(), wait)
		_ = r.cfg.Control.Do(dctx, control.Action{Verb: VerbDisconnect, Args: map[string]string{"nqn": r.cfg.SubNQN}})
		dcancel()
	}
	r.mu.Lock()
	r.cur = nil
	r.mu.Unlock()
	ctrl.close()
	res.State, res.Message, res.Findings, res.Details, res.Needs = t.state, t.message, t.findings, t.details, t.needs
	if trace != nil {
		keep := trace.Close() == nil && (r.opts.Traces == suites.TracesAll || res.Failed()) && len(ctrl.Conns()) > 0
		if keep {
			res.Traces = []string{rel}
		} else {
			_ = os.Remove(trace.Path())
		}
	}
	return res
}

// startTrace opens the check's pcapng when the run keeps traces.
func (r *runner) startTrace(c *Check) (*capture.File, string) {
	if r.opts.ReportDir == "" || r.opts.Traces == suites.TracesNone {
		return nil, ""
	}
	dir := filepath.Join(r.opts.ReportDir, "traces")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, ""
	}
	f, err := capture.CreateFile(filepath.Join(dir, c.ID+".pcapng"), fmt.Sprintf("nvmftest host conformance check %s (%s, %s): %s", c.ID, c.Section, c.Level, c.Title))
	if err != nil {
		return nil, ""
	}
	return f, "traces/" + c.ID + ".pcapng"
}

// writeLine prints a check's verdict as conform does.
func writeLine(w io.Writer, r suites.Result) {
	v := "PASS"
	switch {
	case r.State == "passed" && len(r.Findings) > 0:
		v = "FINDING"
	case r.State == "skipped":
		v = "SKIP"
	case r.State == suites.StateNotRun:
		v = "NOT RUN"
	case r.State == suites.StateInterrupted:
		v = "INTERRUPTED"
	case r.Failed():
		v = "FAIL"
	}
	fmt.Fprintf(w, "%-7s %-14s %-11s %s", v, r.ID, r.Level, r.Title)
	switch v {
	case "FAIL", "SKIP", "NOT RUN", "INTERRUPTED":
		msg := strings.TrimSpace(r.Message)
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i] + " ..."
		}
		fmt.Fprintf(w, "\n        -> %s", msg)
	case "FINDING":
		for _, f := range r.Findings {
			fmt.Fprintf(w, "\n        -> observed %q, spec %q: %s", f.Observed, f.Want, f.Note)
		}
	}
	fmt.Fprintln(w)
}
