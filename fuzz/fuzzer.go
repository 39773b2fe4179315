package fuzz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// Config is a fuzzing run.
type Config struct {
	// Addr is the target's HOST:PORT.
	Addr string
	Identity
	// Seed makes the run: the same seed, seeds and grammar give the
	// same cases in the same order.
	Seed uint64
	// Cases and Duration bound the run (0: no bound of that kind; at
	// least one must be set).
	Cases    int
	Duration time.Duration
	// Seeds are cases derived from captures (LoadSeeds). With none, or
	// for half of the cases, the grammar makes the base case.
	Seeds []*Case
	// NoGrammar bases every case on Seeds.
	NoGrammar bool
	// ResponseTimeout bounds each wait for the target's answer in a case
	// (default 300 ms); LiveTimeout the liveness probe (default 5 s).
	ResponseTimeout time.Duration
	LiveTimeout     time.Duration
	// ConfirmDelay is the pause before the liveness probe is tried a
	// second time, a failure counting only if both fail (default 1 s).
	ConfirmDelay time.Duration
	// Alive, if set, asks the target side whether the target still lives
	// (a process that exited is a finding even if something else answers
	// on the port). It runs after each case.
	Alive func(ctx context.Context) error
	// Restart, if set, brings the target back after a finding (and
	// between the runs of a minimization). Without it fuzz waits up to
	// RecoverTimeout (default 30 s) for the target to come back by
	// itself, and stops the run if it does not.
	Restart        func(ctx context.Context) error
	RecoverTimeout time.Duration
	// MinimizeBudget bounds the runs a minimization makes (default 200;
	// negative: no minimization).
	MinimizeBudget int
	// MaxFindings stops the run after that many unique findings (0: no
	// limit).
	MaxFindings int
	// Until, if set, stops the run after a finding for which it returns
	// true (the one a test looks for).
	Until func(*Finding) bool
	// FindingsDir, if set, receives each finding's replay file and pcapng
	// trace.
	FindingsDir string
	// Progress, if set, gets a progress line every ProgressEvery
	// (default 5 s) and a line per finding.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Dial replaces the TCP dialer of the case connections (tests).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Finding is one unique failure of an oracle.
type Finding struct {
	// Signature is the oracle that failed and the fields and operations
	// the case mutated: findings are unique by it.
	Signature string `json:"signature"`
	Oracle    string `json:"oracle"`
	// Detail is the oracle's message for the first occurrence.
	Detail string `json:"detail"`
	// Case is the case's number; Origin and Mutations what made it.
	Case      uint64     `json:"case"`
	Origin    string     `json:"origin"`
	Mutations []Mutation `json:"mutations"`
	// After is how long into the run, and after how many cases, it was
	// first seen; Count how many cases hit it.
	After      time.Duration `json:"after_ns"`
	AfterCases int           `json:"after_cases"`
	Count      int           `json:"count"`
	// Reproduced says a re-run of the minimal case failed the oracle
	// again; Flaky that the original case did not fail it again.
	Reproduced bool `json:"reproduced"`
	Flaky      bool `json:"flaky"`
	// Steps and Bytes are the original case's size, MinSteps and
	// MinBytes the minimal one's; MinimizeRuns how many runs that took.
	Steps        int `json:"steps"`
	Bytes        int `json:"bytes"`
	MinSteps     int `json:"min_steps"`
	MinBytes     int `json:"min_bytes"`
	MinimizeRuns int `json:"minimize_runs"`
	// Anomalies are what is malformed in the minimal case; a later
	// finding whose minimal case has the same (with the same oracle) is
	// counted here, its signature added to Aliases.
	Anomalies []string `json:"anomalies"`
	Aliases   []string `json:"aliases,omitempty"`
	// HexDump shows the minimal case.
	HexDump string `json:"hexdump"`
	// Replay and Trace are the files written (FindingsDir).
	Replay string `json:"replay,omitempty"`
	Trace  string `json:"trace,omitempty"`

	minimal *Case
}

// Minimal is the minimized reproducer.
func (f *Finding) Minimal() *Case { return f.minimal }

// Summary is a run's result.
type Summary struct {
	Target    string           `json:"target"`
	SubNQN    string           `json:"subnqn"`
	Seed      uint64           `json:"seed"`
	Cases     int              `json:"cases"`
	Elapsed   time.Duration    `json:"elapsed_ns"`
	Findings  []*Finding       `json:"findings"`
	Reactions map[Reaction]int `json:"reactions"`
	Types     map[string]int   `json:"pdu_types_mutated"`
	Fields    map[string]int   `json:"fields_mutated"`
	Ops       map[string]int   `json:"mutators"`
	FieldsAll int              `json:"fields_total"`
	Seeds     int              `json:"seeds"`
	Hiccups   int              `json:"liveness_hiccups"`
	Stopped   string           `json:"stopped,omitempty"`
	// Interrupted is set when ctx ended the run early.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Fuzzer runs cases and keeps what they found.
type Fuzzer struct {
	cfg   Config
	exec  *Executor
	sum   *Summary
	found map[string]*Finding // by signature and by anomaly key
	start time.Time
}

// New checks cfg and returns a fuzzer.
func New(cfg Config) (*Fuzzer, error) {
	if cfg.Addr == "" {
		return nil, errors.New("fuzz: no target address")
	}
	if cfg.Cases <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("fuzz: give a number of cases or a duration")
	}
	if cfg.NoGrammar && len(cfg.Seeds) == 0 {
		return nil, errors.New("fuzz: no seeds and no grammar: nothing to mutate")
	}
	cfg.Identity = cfg.Identity.withDefaults()
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = 300 * time.Millisecond
	}
	if cfg.LiveTimeout <= 0 {
		cfg.LiveTimeout = 5 * time.Second
	}
	if cfg.ConfirmDelay <= 0 {
		cfg.ConfirmDelay = time.Second
	}
	if cfg.RecoverTimeout <= 0 {
		cfg.RecoverTimeout = 30 * time.Second
	}
	if cfg.MinimizeBudget == 0 {
		cfg.MinimizeBudget = 200
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	f := &Fuzzer{cfg: cfg, exec: &Executor{Addr: cfg.Addr, ResponseTimeout: cfg.ResponseTimeout, Dial: cfg.Dial}, found: map[string]*Finding{}}
	f.sum = &Summary{Target: cfg.Addr, SubNQN: cfg.SubNQN, Seed: cfg.Seed, Reactions: map[Reaction]int{},
		Types: map[string]int{}, Fields: map[string]int{}, Ops: map[string]int{}, FieldsAll: len(allFieldNames()), Seeds: len(cfg.Seeds)}
	return f, nil
}

// Generate returns case number i of a run with this seed: a seed case
// or a grammar case, mutated. It depends on nothing else, so a run is
// reproducible case by case.
func Generate(seed, i uint64, seeds []*Case, noGrammar bool, id Identity) *Case {
	r := rand.New(rand.NewPCG(seed, i))
	var c *Case
	if len(seeds) > 0 && (noGrammar || r.IntN(2) == 0) {
		c = seeds[r.IntN(len(seeds))].Clone()
	} else {
		c = grammarCase(r, id)
	}
	c.ID = i
	if r.IntN(32) != 0 { // now and then the base case as it is
		Mutate(r, c, id)
	}
	return c
}

// Run fuzzes until the bound, ctx or MaxFindings ends it.
func (f *Fuzzer) Run(ctx context.Context) (*Summary, error) {
	f.start = time.Now()
	cfg := f.cfg
	if err := f.probe(ctx); err != nil {
		return f.sum, fmt.Errorf("target not alive before the first case: %w", err)
	}
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = f.start.Add(cfg.Duration)
	}
	lastProgress := time.Now()
	for i := uint64(0); ; i++ {
		if ctx.Err() != nil {
			f.sum.Interrupted = true
			break
		}
		if cfg.Cases > 0 && int(i) >= cfg.Cases {
			break
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		c := Generate(cfg.Seed, i, cfg.Seeds, cfg.NoGrammar, cfg.Identity)
		out := f.exec.Run(ctx, c, nil)
		f.sum.Cases++
		f.sum.Reactions[out.Reaction]++
		for _, m := range c.Muts {
			f.sum.Ops[m.Op]++
			if m.Op == "set" {
				f.sum.Fields[m.Field]++
				f.sum.Types[strings.SplitN(m.Field, ".", 2)[0]]++
			} else {
				f.sum.Types[m.Field]++
			}
		}
		if ctx.Err() != nil {
			f.sum.Interrupted = true
			break
		}
		oracle, err := f.check(ctx)
		if err != nil && ctx.Err() == nil {
			if stop := f.finding(ctx, c, oracle, err); stop != "" {
				f.sum.Stopped = stop
				break
			}
			if cfg.Until != nil && slices.ContainsFunc(f.sum.Findings, cfg.Until) {
				f.sum.Stopped = "the finding looked for"
				break
			}
			if cfg.MaxFindings > 0 && len(f.sum.Findings) >= cfg.MaxFindings {
				f.sum.Stopped = fmt.Sprintf("%d findings (the limit)", len(f.sum.Findings))
				break
			}
		}
		if cfg.Progress != nil && time.Since(lastProgress) >= cfg.ProgressEvery {
			lastProgress = time.Now()
			fmt.Fprintln(cfg.Progress, f.ProgressLine())
		}
	}
	if ctx.Err() != nil {
		f.sum.Interrupted = true
	}
	f.sum.Elapsed = time.Since(f.start)
	return f.sum, nil
}

// ProgressLine is the one-line state of the run.
func (f *Fuzzer) ProgressLine() string {
	el := time.Since(f.start)
	rate := float64(f.sum.Cases) / max(el.Seconds(), 1e-3)
	var rs []string
	for _, r := range []Reaction{ReactResponse, ReactTermReq, ReactClose, ReactSilence, ReactMalformed, ReactNoConnect} {
		if n := f.sum.Reactions[r]; n > 0 {
			rs = append(rs, fmt.Sprintf("%s %d", r, n))
		}
	}
	return fmt.Sprintf("fuzz: %v, %d cases (%.1f/s), %d findings; reactions: %s; mutated %d PDU types, %d/%d fields",
		el.Round(time.Second), f.sum.Cases, rate, len(f.sum.Findings), strings.Join(rs, ", "), len(f.sum.Types), len(f.sum.Fields), f.sum.FieldsAll)
}

// probe runs the liveness oracle.
func (f *Fuzzer) probe(ctx context.Context) error {
	return Probe(ctx, f.cfg.Addr, f.cfg.Identity, f.cfg.LiveTimeout)
}

// check asks the oracles after a case: the target side's (Alive), then
// the liveness probe, twice ConfirmDelay apart before it counts.
func (f *Fuzzer) check(ctx context.Context) (string, error) {
	if f.cfg.Alive != nil {
		if err := f.cfg.Alive(ctx); err != nil && !errors.Is(err, ErrUnsupported) && ctx.Err() == nil {
			// What a host sees of it too.
			if perr := f.probe(ctx); perr != nil {
				err = fmt.Errorf("%w; %v", err, perr)
			} else {
				err = fmt.Errorf("%w; yet a fresh connection still works", err)
			}
			return "target-dead", err
		}
	}
	err := f.probe(ctx)
	if err == nil {
		return "", nil
	}
	select {
	case <-ctx.Done():
		return "", nil
	case <-time.After(f.cfg.ConfirmDelay):
	}
	if err2 := f.probe(ctx); err2 == nil {
		// A fresh connection failed once and then worked: noted, not a
		// finding (the next case may show more).
		f.sum.Hiccups++
		return "", nil
	}
	return "liveness", err
}

// signature is what makes a finding unique: the oracle and the set of
// fields and operations mutated.
func signature(oracle string, c *Case) string {
	var parts []string
	for _, m := range c.Muts {
		p := m.Op + " " + m.Field
		if !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		parts = []string{"unmutated " + c.Origin}
	}
	return oracle + ": " + strings.Join(parts, ", ")
}

// recover brings the target back: Restart, or waiting for it.
func (f *Fuzzer) recover(ctx context.Context) error {
	if f.cfg.Restart != nil {
		if err := f.cfg.Restart(ctx); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	end := time.Now().Add(f.cfg.RecoverTimeout)
	for {
		err := f.probe(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// reproduces re-runs c and reports whether an oracle fails again (the
// target is brought back if so).
func (f *Fuzzer) reproduces(ctx context.Context, c *Case, rec capture.Recorder) (bool, error) {
	f.exec.Run(ctx, c, rec)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if _, err := f.check(ctx); err == nil {
		return false, nil
	}
	return true, f.recover(ctx)
}

// finding handles an oracle failure after c: deduplicate, bring the
// target back, reproduce, minimize, save. It returns why the run must
// stop, or "".
func (f *Fuzzer) finding(ctx context.Context, c *Case, oracle string, err error) string {
	sig := signature(oracle, c)
	detail := err.Error()
	if ex, ok := f.found[sig]; ok {
		ex.Count++
		if rerr := f.recover(ctx); rerr != nil {
			return fmt.Sprintf("the target did not come back after a finding (%v)", rerr)
		}
		return ""
	}
	fd := &Finding{Signature: sig, Oracle: oracle, Detail: detail, Case: c.ID, Origin: c.Origin, Mutations: c.Muts,
		After: time.Since(f.start), AfterCases: f.sum.Cases, Count: 1, Steps: len(c.Steps), Bytes: c.Size(), minimal: c}
	f.found[sig] = fd
	f.sum.Findings = append(f.sum.Findings, fd)
	f.say("fuzz: FINDING after %d cases (%v): %s: %s", fd.AfterCases, fd.After.Round(time.Millisecond), sig, detail)
	if rerr := f.recover(ctx); rerr != nil {
		fd.HexDump = HexDump(c, 0)
		f.save(fd)
		return fmt.Sprintf("the target did not come back after a finding (%v); give --control or --watch to restart it", rerr)
	}
	stop := ""
	// Reproduce: twice before calling it flaky.
	ok := false
	for range 2 {
		var rerr error
		ok, rerr = f.reproduces(ctx, c, nil)
		if rerr != nil {
			if ctx.Err() == nil {
				stop = fmt.Sprintf("the target did not come back after a finding (%v)", rerr)
			}
			break
		}
		if ok {
			break
		}
	}
	if !ok && stop == "" && ctx.Err() == nil {
		fd.Flaky = true
		f.say("fuzz: case %d does not fail again: reported as flaky, not minimized", c.ID)
	}
	if ok && f.cfg.MinimizeBudget > 0 && stop == "" {
		var m *Minimizer
		m = &Minimizer{Budget: f.cfg.MinimizeBudget, Test: func(ctx context.Context, t *Case) bool {
			if m.Runs%10 == 0 {
				f.say("fuzz: minimizing: run %d of at most %d, trying %d PDUs, %d bytes", m.Runs, m.Budget, len(t.Steps), t.Size())
			}
			ok, rerr := f.reproduces(ctx, t, nil)
			if rerr != nil && stop == "" && ctx.Err() == nil {
				stop = fmt.Sprintf("the target did not come back during minimization (%v)", rerr)
			}
			return ok && stop == ""
		}}
		fd.minimal = m.Minimize(ctx, c)
		fd.MinimizeRuns = m.Runs
	}
	fd.MinSteps, fd.MinBytes = len(fd.minimal.Steps), fd.minimal.Size()
	// The minimal case once more, recorded: the trace, and the proof that
	// it reproduces.
	if stop == "" && !fd.Flaky && ctx.Err() == nil {
		var rec *capture.File
		if f.cfg.FindingsDir != "" {
			_ = os.MkdirAll(f.cfg.FindingsDir, 0o755)
			fd.Trace = filepath.Join(f.cfg.FindingsDir, fmt.Sprintf("finding-%02d.pcapng", len(f.sum.Findings)))
			rec, _ = capture.CreateFile(fd.Trace, "nvmftest fuzz finding: "+sig)
		}
		var recorder capture.Recorder
		if rec != nil {
			recorder = rec
		}
		var rerr error
		fd.Reproduced, rerr = f.reproduces(ctx, fd.minimal, recorder)
		if rec != nil {
			_ = rec.Close()
		}
		if rerr != nil && ctx.Err() == nil {
			stop = fmt.Sprintf("the target did not come back after a finding (%v)", rerr)
		}
	}
	fd.Anomalies = Anomalies(fd.minimal)
	if !fd.Flaky {
		key := anomalyKey(oracle, fd.minimal)
		if ex, ok := f.found[key]; ok && ex != fd {
			// The same malformation by another road: one finding.
			ex.Count++
			ex.Aliases = append(ex.Aliases, sig)
			f.found[sig] = ex
			f.sum.Findings = slices.DeleteFunc(f.sum.Findings, func(x *Finding) bool { return x == fd })
			if fd.Trace != "" {
				_ = os.Remove(fd.Trace)
			}
			f.say("fuzz: the minimal case is finding %s's (%s): counted there", ex.Signature, key)
			return stop
		}
		f.found[key] = fd
	}
	fd.HexDump = HexDump(fd.minimal, 0)
	f.save(fd)
	f.say("fuzz: finding %d: %d steps, %d bytes minimized to %d steps, %d bytes in %d runs; reproduced: %v\n%s",
		len(f.sum.Findings), fd.Steps, fd.Bytes, fd.MinSteps, fd.MinBytes, fd.MinimizeRuns, fd.Reproduced, HexDump(fd.minimal, 128))
	return stop
}

func (f *Fuzzer) save(fd *Finding) {
	if f.cfg.FindingsDir == "" {
		return
	}
	_ = os.MkdirAll(f.cfg.FindingsDir, 0o755)
	rf := NewReplayFile(fd.minimal)
	rf.Signature, rf.Oracle, rf.Detail = fd.Signature, fd.Oracle, fd.Detail
	rf.Target, rf.SubNQN, rf.HostNQN, rf.Seed = f.cfg.Addr, f.cfg.SubNQN, f.cfg.HostNQN, f.cfg.Seed
	rf.Mutations = fd.Mutations
	path := filepath.Join(f.cfg.FindingsDir, fmt.Sprintf("finding-%02d.replay.json", slices.Index(f.sum.Findings, fd)+1))
	if err := WriteReplay(path, rf); err != nil {
		f.say("fuzz: cannot save %s: %v", path, err)
		return
	}
	fd.Replay = path
}

func (f *Fuzzer) say(format string, args ...any) {
	if f.cfg.Progress != nil {
		fmt.Fprintf(f.cfg.Progress, format+"\n", args...)
	}
}
