package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/faults"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// Scenario names.
const (
	PathDown      = "path-down"
	Blackhole     = "blackhole"
	Flap          = "flap"
	ANATransition = "ana-transition"
	KeepAlive     = "keep-alive-expiry"
	Digest        = "digest-corruption"
	Restart       = "target-restart"
	// GhostWrite holds path 1's host-to-target bytes longer than the host's
	// command timeout (but no longer than KATO, as NVMe Base 2.1 9.6.2
	// allows a network to), in pulses: writes time out on path 1 and fail
	// over while their capsules still reach the target late. A host that
	// retries them at once sees its newer data overwritten (verify
	// mismatch); one that waits for the lost controller to quiesce does not.
	GhostWrite = "ghost-write"
)

// Scenarios lists every scenario, in the order they are usually run.
var Scenarios = []string{PathDown, Blackhole, ANATransition, Flap, KeepAlive, Digest, Restart, GhostWrite}

// Ghost-write timing: the hold is ghostHold of KATO; each pulse holds for
// that long, then leaves ghostGap for path 1 to reconnect and take I/O
// again before the next.
const (
	ghostPulses = 2
	ghostHold   = 3.0 / 4
	ghostGap    = 1500 * time.Millisecond
)

// reconnectMargin is what the after phase gives a lost path beyond the
// host's longest reconnect delay: one reconnect (TCP connect, ICReq,
// Connect, Identify, the ANA log) on a busy machine, and I/O on the path
// again.
const reconnectMargin = time.Second

// maxAfter bounds how far the after phase is lengthened for the host's
// reconnect backoff: a longer backoff is a usage error.
const maxAfter = 10 * time.Minute

// ConfigError is Run's error for a Config that cannot work (an unknown
// scenario, phases its timers do not fit in): the caller's mistake, not
// the target's.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Config is one scenario run.
type Config struct {
	Scenario string
	// Addrs are the target's two (or more) paths, host:port; empty runs
	// nvmftest's reference target in this process with two ports.
	Addrs  []string
	SubNQN string
	NSID   uint32
	// PortIDs are the target's port IDs of Addrs, for the control (default
	// 1, 2, ...).
	PortIDs []uint16
	// ANAGroup is the namespace's ANA group, for set-ana-state (default 1).
	ANAGroup uint32
	// Control performs target-side actions (ANA state, port down/up); nil
	// for the reference target means LocalControl. Scenarios that need it
	// (ana-transition, target-restart) fail with an external target and no
	// control.
	Control suites.Control
	// Host options of each path; Timeout and KATO default to 2 s and 1 s
	// so faults are noticed quickly. ghost-write lowers Timeout to KATO/4
	// when it is longer (a command must time out while the network still
	// holds it) and lengthens Fault to cover its pulses and the quiesce
	// wait that follows the last; both are timeline events.
	Host initiator.MultipathOptions
	// Before, Fault and After: how long I/O runs before the fault, during
	// it and after the path returns (defaults 1 s, 3 s, 2 s). A lost path
	// comes back only at the host's next reconnect attempt, up to
	// ReconnectDelayMax after the path returned: when the scenario loses
	// connections (all but ana-transition), After is lengthened to that
	// plus a second, a timeline event saying so, so that the verdict
	// "I/O moved back" measures the target, not the host's own backoff.
	Before, Fault, After time.Duration
	// Interval of the per-path IOPS timeline (default 250 ms).
	Interval time.Duration
	// Job is the verified load (default randrw 4k, iodepth 8, crc32c
	// verify over the first 4 MiB, norandommap so reads soon come back to
	// blocks this run wrote).
	Job *loadgen.Job
	// Log, if set, receives timeline lines as they happen.
	Log func(string)
	// Capture, if set, records each proxied connection as the host sees
	// it, with every injected fault as a packet comment.
	Capture capture.Recorder

	notes []string // what defaults changed, for the timeline
}

// Report is what a scenario measured.
type Report struct {
	Scenario string   `json:"scenario"`
	Target   string   `json:"target"`
	Paths    []string `json:"paths"`
	Pass     bool     `json:"pass"`
	Reason   string   `json:"reason,omitempty"`
	// LongestStall is the longest time no I/O completed; StallTotal sums
	// every such gap over StallThreshold.
	LongestStall   time.Duration `json:"longest_stall_ns"`
	StallTotal     time.Duration `json:"stall_total_ns"`
	StallThreshold time.Duration `json:"stall_threshold_ns"`
	IOs            int64         `json:"ios"`
	Failed         int64         `json:"failed_ios"`
	Retried        int64         `json:"retried_ios"`
	// Held counts I/Os that waited for a lost path's controller to quiesce
	// before their retry elsewhere, HeldTime the time they waited.
	Held         int64         `json:"held_ios"`
	HeldTime     time.Duration `json:"held_ns"`
	VerifyErrors int64         `json:"verify_mismatches"`
	Verified     int64         `json:"verified_blocks"`
	MovedAway    bool          `json:"io_moved_away"` // I/O flowed on another path during the fault
	MovedBack    bool          `json:"io_moved_back"` // and on the faulted path after it
	Events       []Event       `json:"events"`
	Samples      []Sample      `json:"samples"`
	Err          string        `json:"error,omitempty"`
}

// Event is one timeline entry.
type Event struct {
	At   time.Duration `json:"at_ns"`
	Who  string        `json:"who"` // scenario, path N, proxy N
	What string        `json:"what"`
}

// Sample is the I/Os each path completed in one interval, as IOPS.
type Sample struct {
	At   time.Duration `json:"at_ns"`
	IOPS []float64     `json:"iops"` // per path
}

// current is the reference target running now (target-restart replaces it).
type current struct {
	mu sync.Mutex
	t  *target.Target
}

func (c *current) set(t *target.Target) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *current) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t.Close()
}

type run struct {
	ref   *current
	cfg   Config
	start time.Time
	mu    sync.Mutex
	rep   *Report

	hold time.Duration // ghost-write: how long path 1 holds each pulse's bytes

	lastDone  atomic.Int64 // ns since start of the latest completion
	stallMu   sync.Mutex
	stallMax  time.Duration
	stallSum  time.Duration
	threshold time.Duration
}

func (r *run) event(who, what string) {
	at := time.Since(r.start)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Events = append(r.rep.Events, Event{At: at, Who: who, What: what})
	if r.cfg.Log != nil { // serialized: Log need not be safe for concurrent use
		r.cfg.Log(fmt.Sprintf("%8.3fs %-8s %s", at.Seconds(), who, what))
	}
}

// completed records a completion for stall accounting.
func (r *run) completed() {
	now := int64(time.Since(r.start))
	prev := r.lastDone.Swap(now)
	if gap := time.Duration(now - prev); gap > r.threshold {
		r.stallMu.Lock()
		r.stallMax = max(r.stallMax, gap)
		r.stallSum += gap
		r.stallMu.Unlock()
	}
}

func (c *Config) defaults() error {
	if c.Scenario == "" {
		return errors.New("no scenario (use one of " + fmt.Sprint(Scenarios) + ")")
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	if !known {
		return fmt.Errorf("unknown scenario %q (use one of %v)", c.Scenario, Scenarios)
	}
	if c.NSID == 0 {
		c.NSID = 1
	}
	if c.ANAGroup == 0 {
		c.ANAGroup = 1
	}
	if c.Before <= 0 {
		c.Before = time.Second
	}
	if c.Fault <= 0 {
		c.Fault = 3 * time.Second
	}
	if c.After <= 0 {
		c.After = 2 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	h := &c.Host
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Second
	}
	if h.KATO == 0 {
		h.KATO = time.Second
	}
	if h.NrIOQueues == 0 {
		h.NrIOQueues = 2
	}
	if h.ReconnectDelay == 0 {
		h.ReconnectDelay = 100 * time.Millisecond
		h.ReconnectDelayMax = time.Second
	}
	if h.CtrlLossTmo == 0 {
		h.CtrlLossTmo = 10 * time.Minute
	}
	if c.Scenario != ANATransition {
		// The path returns at the end of the fault, but the host tries it
		// again only when its backoff says: up to the longest delay later.
		backoff := h.MaxReconnectDelay()
		need := backoff + reconnectMargin
		if need > maxAfter {
			return fmt.Errorf("a reconnect delay of up to %v needs an after phase of %v, over the %v limit: lower the reconnect delay", backoff, need, maxAfter)
		}
		if c.After < need {
			c.notes = append(c.notes, fmt.Sprintf("after phase lengthened from %v to %v: the host waits up to %v between reconnect attempts, so a path that returns may take that long, plus %v to reconnect and carry I/O, before I/O can move back",
				c.After, need, backoff, reconnectMargin))
			c.After = need
		}
	}
	if c.Scenario == KeepAlive && h.Timeout < 4*h.KATO {
		// Keep alive, not the I/O timeout, must be what notices.
		h.Timeout = 4 * h.KATO
	}
	if c.Scenario == Digest {
		h.HeaderDigest, h.DataDigest = true, true
	}
	if c.Scenario == GhostWrite {
		if h.KATO < 0 {
			return fmt.Errorf("%s needs keep-alive (a KATO of at least 100ms)", GhostWrite)
		}
		if to := h.KATO / 4; h.Timeout > to || h.Timeout < 0 {
			c.notes = append(c.notes, fmt.Sprintf("host timeout %v lowered to %v (KATO/4): commands must time out while path 1 still holds them", h.Timeout, to))
			h.Timeout = to
		}
		if h.Timeout < 10*time.Millisecond {
			return fmt.Errorf("%s: KATO %v is too short (use at least 100ms)", GhostWrite, h.KATO)
		}
	}
	if c.Job == nil {
		j := loadgen.NewJob("failover")
		for _, kv := range [][2]string{{"rw", "randrw"}, {"bs", "4k"}, {"iodepth", "8"}, {"verify", "crc32c"},
			{"size", "4MiB"}, {"norandommap", "1"}, {"time_based", "1"}, {"randseed", "42"}} {
			if err := j.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if c.Scenario == GhostWrite {
			// 16 blocks: a block a stale write lands on is soon read back.
			if err := j.Set("size", "64KiB"); err != nil {
				return err
			}
		}
		c.Job = j
	}
	c.Job.Runtime = c.Before + c.Fault + c.After
	c.Job.TimeBased = true
	return nil
}

// Check reports, as a *ConfigError, what Run would refuse in cfg before
// running anything (an unknown scenario, a reconnect backoff no after
// phase can wait for); nil when Run would start.
func Check(cfg Config) error {
	if cfg.Job != nil {
		j := *cfg.Job // defaults sets the job's runtime
		cfg.Job = &j
	}
	if err := cfg.defaults(); err != nil {
		return &ConfigError{err}
	}
	return nil
}

// Run runs one scenario and reports. The error is for set-up failures; a
// scenario that ran but failed its expectations has Pass false and a
// Reason.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, &ConfigError{err}
	}
	r := &run{cfg: cfg, rep: &Report{Scenario: cfg.Scenario}, threshold: 200 * time.Millisecond}
	r.rep.StallThreshold = r.threshold

	// The target: the reference one in process, or the given addresses.
	var tg *target.Target
	var dataDir string
	addrs := cfg.Addrs
	if len(addrs) == 0 {
		var err error
		// A file namespace: it survives target-restart, and a write retried
		// on another path while the first copy still runs on the target
		// overlaps it in the kernel, not in Go memory.
		if dataDir, err = os.MkdirTemp("", "nvmftest-failover-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dataDir)
		tg, err = startReference(referenceConfig(dataDir, nil))
		if err != nil {
			return nil, err
		}
		ref := &current{t: tg}
		r.ref = ref
		defer ref.close()
		for _, a := range tg.Addrs() {
			addrs = append(addrs, a.String())
		}
		cfg.SubNQN = target.DefaultSubsystemNQN
		if cfg.Control == nil {
			cfg.Control = LocalControl{T: tg}
		}
		r.rep.Target = "nvmftest reference target"
	} else {
		r.rep.Target = "external " + cfg.SubNQN
	}
	if len(addrs) < 2 {
		return nil, errors.New("failover needs at least two paths")
	}
	if len(cfg.PortIDs) == 0 {
		for i := range addrs {
			cfg.PortIDs = append(cfg.PortIDs, uint16(i+1))
		}
	}
	r.cfg = cfg
	needCtl := cfg.Scenario == ANATransition || (cfg.Scenario == Restart && tg == nil)
	if needCtl && cfg.Control == nil {
		return nil, fmt.Errorf("scenario %s needs a target control (--control CMD)", cfg.Scenario)
	}

	// One proxy per path.
	var proxies []*faults.Proxy
	defer func() {
		for _, p := range proxies {
			p.Close()
		}
	}()
	r.start = time.Now()
	for _, n := range cfg.notes {
		r.event("scenario", n)
	}
	for i, a := range addrs {
		p, err := faults.New("127.0.0.1:0", a)
		if err != nil {
			return nil, err
		}
		who := fmt.Sprintf("proxy%d", i+1)
		p.OnEvent(func(e faults.Event) { r.event(who, e.What) })
		if cfg.Capture != nil {
			p.SetCapture(cfg.Capture)
		}
		proxies = append(proxies, p)
		r.rep.Paths = append(r.rep.Paths, fmt.Sprintf("%s via %s", a, p.Addr()))
	}

	// ANA transition: path 2 non-optimized so I/O prefers path 1 and
	// visibly moves and comes back.
	if cfg.Scenario == ANATransition {
		if err := cfg.Control.Do(ctx, anaAction(cfg, 2, "non-optimized")); err != nil {
			return nil, fmt.Errorf("set-ana-state: %w", err)
		}
		defer cfg.Control.Do(context.Background(), anaAction(cfg, 2, "optimized")) //nolint:errcheck
	}

	hopts := cfg.Host
	hopts.OnEvent = func(e initiator.PathEvent) {
		s := e.Event
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
		r.event(fmt.Sprintf("path%d", e.Path+1), s)
	}
	var paddrs []string
	for _, p := range proxies {
		paddrs = append(paddrs, p.Addr().String())
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	m, err := initiator.ConnectMultipath(cctx, paddrs, cfg.SubNQN, hopts)
	cancel()
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if cfg.Scenario == GhostWrite {
		r.ghostPhases(m)
		cfg = r.cfg
	}
	ctrl := m.Controller()
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ns, err := ctrl.IdentifyNamespace(ictx, cfg.NSID)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("identify namespace %d: %w", cfg.NSID, err)
	}
	runtime := cfg.Job.Runtime
	// Bounded: the job's runtime plus time to wait out a fault.
	rctx, rcancel := context.WithTimeout(ctx, runtime+2*time.Minute)
	defer rcancel()
	dev := &Device{M: m, NSID: cfg.NSID, BlockSize: int(ns.BlockSize()), Blocks: ns.NSZE, Ctx: rctx, OnDone: r.completed,
		Name: fmt.Sprintf("%s ns%d (multipath)", cfg.SubNQN, cfg.NSID)}

	// Per-path IOPS sampler.
	sdone := make(chan struct{})
	go func() {
		defer close(sdone)
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		prev := make([]int64, len(m.Paths()))
		last := time.Now()
		for {
			select {
			case <-rctx.Done():
				return
			case now := <-t.C:
				s := Sample{At: now.Sub(r.start)}
				for i, p := range m.Paths() {
					n := p.IOs()
					s.IOPS = append(s.IOPS, float64(n-prev[i])/now.Sub(last).Seconds())
					prev[i] = n
				}
				last = now
				r.mu.Lock()
				r.rep.Samples = append(r.rep.Samples, s)
				r.mu.Unlock()
			}
		}
	}()

	// The fault timeline, relative to the load's start.
	steps, err := r.timeline(ctx, tg, proxies, dataDir)
	if err != nil {
		rcancel()
		<-sdone
		return nil, err
	}
	var faultIOs, faultPathIOs atomic.Int64
	steps = append(steps,
		faults.Step{At: cfg.Before + cfg.Fault/2, Name: "mark", Do: func() {
			faultIOs.Store(m.Paths()[1].IOs())
			faultPathIOs.Store(m.Paths()[0].IOs())
		}})
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	tdone := make(chan struct{})
	r.lastDone.Store(int64(time.Since(r.start)))
	go func() {
		defer close(tdone)
		_ = faults.Run(rctx, steps, func(name string, _ time.Time) {
			if name != "mark" {
				r.event("scenario", name)
			}
		})
	}()
	r.event("scenario", "load starts: "+cfg.Job.RWString()+" verify")
	res, lerr := loadgen.Run(rctx, []loadgen.Target{{Job: cfg.Job, Devices: []loadgen.Device{dev}}}, loadgen.RunOptions{Interval: cfg.Interval})
	r.event("scenario", "load ends")
	p1State := m.Paths()[0].State()
	rcancel()
	<-tdone
	<-sdone

	rep := r.rep
	rep.LongestStall, rep.StallTotal = r.stallMax, r.stallSum
	rep.Failed, rep.Retried = m.Failed(), m.Retried()
	rep.Held, rep.HeldTime = m.Held(), m.HeldTime()
	for _, p := range m.Paths() {
		rep.IOs += p.IOs()
	}
	if res != nil && len(res.Jobs) > 0 {
		rep.Verified = res.Jobs[0].Verified
	}
	var ve *loadgen.VerifyError
	if errors.As(lerr, &ve) {
		rep.VerifyErrors = 1
	}
	if lerr != nil {
		rep.Err = lerr.Error()
	}
	// Moved away: path 2 did I/O during the fault. Moved back: path 1 did
	// I/O after it.
	p1, p2 := m.Paths()[0], m.Paths()[1]
	rep.MovedAway = p2.IOs() > faultIOs.Load() || cfg.Scenario == Restart
	rep.MovedBack = p1.IOs() > faultPathIOs.Load()
	switch {
	case rep.VerifyErrors > 0:
		rep.Reason = "verify mismatch"
	case rep.Failed == 0 && errors.Is(lerr, loadgen.ErrNothingVerified):
		// The load's own complaint that it verified nothing is this
		// scenario's reason below, not an I/O failure.
		rep.Reason = "no block written by this run was read back and verified"
	case rep.Failed > 0 || lerr != nil:
		rep.Reason = fmt.Sprintf("%d I/Os failed to the application: %v", rep.Failed, lerr)
	case rep.Verified == 0:
		rep.Reason = "no block written by this run was read back and verified"
	case cfg.Scenario == GhostWrite && rep.Held == 0 && !cfg.Host.UnsafeRetryWithoutQuiesce:
		rep.Reason = "no write was outstanding on path 1 when it was lost: the stale-write case was not exercised"
	case !rep.MovedAway:
		rep.Reason = "I/O did not move to the other path during the fault"
	case !rep.MovedBack:
		rep.Reason = "I/O did not move back to the path after it returned"
		if p1State != initiator.PathLive {
			// Whose fault: the host had not reconnected (its backoff was
			// waited for, see defaults) or had given up (CtrlLossTmo).
			rep.Reason += fmt.Sprintf(": path 1 was %s, not live, when the load ended %v after the fault", p1State, cfg.After)
		}
	default:
		rep.Pass = true
	}
	return rep, nil
}

// ghostPhases sets the ghost-write hold from KATO and lengthens the fault
// phase, if it is too short, to what the scenario measures: its pulses,
// then the last pulse's writes timing out, the association with path 1's
// controller ending (a Keep Alive in flight may take KATO, the shutdown a
// Timeout) and the quiesce wait the host then keeps (path 1's
// QuiesceTime), with a second to spare for the held writes' retries.
func (r *run) ghostPhases(m *initiator.Multipath) {
	h := &r.cfg.Host
	r.hold = time.Duration(float64(h.KATO) * ghostHold).Truncate(time.Millisecond)
	pulses := time.Duration(ghostPulses-1)*(r.hold+ghostGap) + r.hold
	need := pulses + 2*h.Timeout + h.KATO + m.Paths()[0].QuiesceTime() + time.Second
	if r.cfg.Fault < need {
		r.event("scenario", fmt.Sprintf("fault phase lengthened from %v to %v: %d holds of %v, %v apart, then the quiesce wait of %v",
			r.cfg.Fault, need, ghostPulses, r.hold, ghostGap, m.Paths()[0].QuiesceTime()))
		r.cfg.Fault = need
		r.cfg.Job.Runtime = r.cfg.Before + r.cfg.Fault + r.cfg.After
	}
}

func anaAction(cfg Config, path int, state string) suites.Action {
	return suites.Action{Verb: suites.VerbSetANAState, Args: map[string]string{
		"port": fmt.Sprint(cfg.PortIDs[path-1]), "group": fmt.Sprint(cfg.ANAGroup), "state": state}}
}

// timeline is the scenario's fault steps, relative to the load's start.
func (r *run) timeline(ctx context.Context, tg *target.Target, px []*faults.Proxy, dataDir string) ([]faults.Step, error) {
	cfg := r.cfg
	at, until := cfg.Before, cfg.Before+cfg.Fault
	p := px[0]
	ctl := func(a suites.Action) func() {
		return func() {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := cfg.Control.Do(cctx, a); err != nil {
				r.event("scenario", "control failed: "+err.Error())
			}
		}
	}
	switch cfg.Scenario {
	case PathDown:
		return []faults.Step{{At: at, Name: "path 1 down", Do: func() { p.SetDown(true) }},
			{At: until, Name: "path 1 up", Do: func() { p.SetDown(false) }}}, nil
	case Blackhole, KeepAlive:
		return []faults.Step{{At: at, Name: "path 1 blackholed", Do: func() { p.SetBlackhole(true) }},
			{At: until, Name: "path 1 restored", Do: func() { p.SetBlackhole(false) }}}, nil
	case Flap:
		n := 3
		per := cfg.Fault / time.Duration(2*n)
		steps := p.FlapSteps(at, per, per, n)
		return steps, nil
	case ANATransition:
		return []faults.Step{
			{At: at, Name: "path 1 ANA inaccessible", Do: ctl(anaAction(cfg, 1, "inaccessible"))},
			{At: until, Name: "path 1 ANA optimized", Do: ctl(anaAction(cfg, 1, "optimized"))}}, nil
	case GhostWrite:
		var steps []faults.Step
		for i := range ghostPulses {
			t := at + time.Duration(i)*(r.hold+ghostGap)
			steps = append(steps,
				faults.Step{At: t, Name: fmt.Sprintf("path 1 holds host-to-target bytes for %v", r.hold), Do: func() { p.SetHold(faults.ToTarget, r.hold) }},
				faults.Step{At: t + r.hold, Name: "path 1 holds no more (what it held still arrives late)", Do: func() { p.SetHold(faults.ToTarget, 0) }})
		}
		return steps, nil
	case Digest:
		return []faults.Step{{At: at, Name: "corrupt C2HData and H2CData on path 1", Do: func() {
			_ = p.Corrupt(faults.ToHost, faults.Corruption{PDUType: int(tcp.TypeC2HData), Offset: 24 + 4 + 64, Count: 3})
			_ = p.Corrupt(faults.ToTarget, faults.Corruption{PDUType: int(tcp.TypeH2CData), Offset: 24 + 4 + 64, Count: 3})
			_ = p.Corrupt(faults.ToTarget, faults.Corruption{PDUType: int(tcp.TypeCapsuleCmd), Offset: 8 + 24, Count: 1})
		}}}, nil
	case Restart:
		if tg == nil {
			var steps []faults.Step
			for i := range px {
				a := suites.Action{Verb: suites.VerbPortDown, Args: map[string]string{"port": fmt.Sprint(cfg.PortIDs[i])}}
				steps = append(steps, faults.Step{At: at, Name: fmt.Sprintf("port %d down", cfg.PortIDs[i]), Do: ctl(a)})
				b := suites.Action{Verb: suites.VerbPortUp, Args: map[string]string{"port": fmt.Sprint(cfg.PortIDs[i])}}
				steps = append(steps, faults.Step{At: until, Name: fmt.Sprintf("port %d up", cfg.PortIDs[i]), Do: ctl(b)})
			}
			return steps, nil
		}
		var fixed []string
		for _, a := range tg.Addrs() {
			fixed = append(fixed, a.String())
		}
		return []faults.Step{
			{At: at, Name: "target stops", Do: func() { tg.Close() }},
			{At: until, Name: "target starts", Do: func() {
				t2, err := startReference(referenceConfig(dataDir, fixed))
				if err != nil {
					r.event("scenario", "restart failed: "+err.Error())
					return
				}
				r.ref.set(t2)
			}}}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", cfg.Scenario)
}

// referenceConfig is two I/O ports (port IDs 1, 2) and one 64 MiB
// namespace: a file in dataDir, or memory without one.
func referenceConfig(dataDir string, addrs []string) target.Config {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}, {Address: "127.0.0.1:0", PortID: 2, Serve: target.ServeIO}}
	for i := range addrs {
		cfg.Listeners[i].Address = addrs[i]
	}
	ns := &cfg.Subsystems[0].Namespaces[0]
	ns.Size = "64MiB"
	if dataDir != "" {
		ns.Backend, ns.Path = target.BackendFile, filepath.Join(dataDir, "ns1.img")
	}
	cfg.DataDigestFatal = false
	return cfg
}

func startReference(cfg target.Config) (*target.Target, error) {
	tg, err := target.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := tg.Start(); err != nil {
		tg.Close()
		return nil, err
	}
	return tg, nil
}

// Device is a loadgen.Device over a Multipath: each I/O runs Do on its
// own goroutine (failover is about correctness, not the last IOPS).
type Device struct {
	M         *initiator.Multipath
	NSID      uint32
	BlockSize int
	Blocks    uint64
	Name      string
	Ctx       context.Context
	OnDone    func()
}

// Info implements loadgen.Device.
func (d *Device) Info() loadgen.DeviceInfo {
	return loadgen.DeviceInfo{Name: d.Name, NSID: d.NSID, BlockSize: d.BlockSize, Blocks: d.Blocks}
}

// Init implements loadgen.Device.
func (d *Device) Init(*loadgen.IO) {}

// Submit implements loadgen.Device.
func (d *Device) Submit(io *loadgen.IO) error {
	go func() {
		sqe := nvme.ReadCmd(d.NSID, io.LBA, io.NLB)
		dir := initiator.FromController
		if io.Op == loadgen.OpWrite {
			sqe, dir = nvme.WriteCmd(d.NSID, io.LBA, io.NLB), initiator.ToController
		}
		_, err := d.M.Do(d.Ctx, sqe, io.Buf, dir)
		if err == nil && d.OnDone != nil {
			d.OnDone()
		}
		io.Err = err
		io.Complete()
	}()
	return nil
}
