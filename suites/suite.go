// Package suites holds nvmftest's conformance suites: Ginkgo v2 specs that
// check, over the wire, that an NVMe/TCP target meets the requirements of
// the NVMe/TCP Transport, NVMe over Fabrics and NVMe Base specifications.
// They run against any target: the embedded reference target under
// `go test ./suites/...`, or a vendor array, SPDK or the Linux kernel's
// nvmet through `nvmftest conform`.
//
// One file per area (transport, fabrics, discovery, admin, io), each a
// Describe labelled with the area. Inside, every spec is one requirement,
// declared with Check: it has an ID, the spec section it checks and its
// level, and those become Ginkgo labels so --label-filter can pick by area,
// level or ID.
//
// Where real implementations differ from the spec, a Profile states what a
// given target does. A check whose observation matches the profile passes
// and is reported as a finding; it is never hidden, and an observation the
// profile does not predict fails.
package suites

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified

	"github.com/nvmftest/nvmftest/control"
)

// Level is how strongly the spec asks for a requirement.
type Level string

// Requirement levels. Mandatory failures make `nvmftest conform` exit
// non-zero; optional requirements are skipped, with the reason, when the
// target says it lacks the feature.
const (
	Mandatory   Level = "mandatory"   // shall
	Recommended Level = "recommended" // should
	Optional    Level = "optional"    // may; checked only when the target claims the feature
)

// Keyword is the specification's own word for a requirement. The level
// of a check follows from it and from nothing else: a lab reviewer can
// trace every verdict to the sentence that makes it.
type Keyword string

// Keywords as the NVMe specifications define them in their conventions
// (the NVMe/TCP 1.0 text uses the same ones as NVMe Base).
const (
	// Shall (or "shall not"): mandatory.
	Shall Keyword = "shall"
	// Indicative marks a requirement stated as fact rather than with a
	// keyword, the way NVMe/TCP 1.0 states every fatal-error rule:
	// "Reception of ... is treated as a fatal transport error with the
	// Fatal Error Status field set to ...". The text leaves the
	// implementation no choice, so it is mandatory.
	Indicative Keyword = "indicative"
	// Should (or "should not"): recommended.
	Should Keyword = "should"
	// May: optional; checked only when the target claims the feature.
	May Keyword = "may"
)

// Level is the level a keyword gives a requirement.
func (k Keyword) Level() (Level, bool) {
	switch k {
	case Shall, Indicative:
		return Mandatory, true
	case Should:
		return Recommended, true
	case May:
		return Optional, true
	}
	return "", false
}

// Party is whom a requirement binds.
type Party string

// The parties a requirement can bind. `conform` judges the controller,
// so its checks bind the controller (or both sides); a statement that
// binds only the host is a duty of the harness, never a verdict on the
// target.
const (
	Controller Party = "controller"
	Host       Party = "host"
	Both       Party = "both"
)

// Requirement is one checkable statement of a specification.
type Requirement struct {
	// ID is unique and stable, AREA-TOPIC-NNN, e.g. "TCP-IC-001"; reports,
	// profiles and --label-filter use it.
	ID string `json:"id"`
	// Section names the specification and section whose text makes the
	// requirement, e.g. "NVMe/TCP 1.0 3.5.1" or "NVMe Base 2.1 6.3".
	Section string `json:"section"`
	// Keyword is the specification's word for it (shall, should, may, or
	// indicative); Level follows from it.
	Keyword Keyword `json:"keyword,omitempty"`
	// Binds says whom the statement binds: the controller, or both sides.
	Binds Party `json:"binds,omitempty"`
	// Level is how strongly the spec asks for it, derived from Keyword
	// when the requirement is declared (leave it out; a Level that
	// disagrees with the Keyword is a programming error).
	Level Level `json:"level"`
	// Title says what must hold, as a sentence about the target.
	Title string `json:"title"`
	// Text quotes the governing words of the specification (a few words,
	// enough to find the sentence).
	Text string `json:"text,omitempty"`
	// Statements are the IDs of the normative statements the check
	// enforces, in the scheme of the spec-coverage inventory: T-<NVMe/TCP
	// section>-NN and B-<Base section or figure>-NN (e.g. "B-6.3-16",
	// "T-3.5.1-02"); `conform --matrix` is built from them.
	Statements []string `json:"statements,omitempty"`
	// Unfailable, when not empty, says why no reference-target quirk or
	// fault injection can make this check fail (the sensitivity test
	// holds every other check to failing on some deviation).
	Unfailable string `json:"-"`
}

var idPattern = regexp.MustCompile(`^[A-Z]+(-[A-Z0-9]+)+-[0-9]{3}$`)

var (
	regMu    sync.Mutex
	registry = map[string]Requirement{}
)

func register(r Requirement) Requirement {
	regMu.Lock()
	defer regMu.Unlock()
	if !idPattern.MatchString(r.ID) || r.Section == "" || r.Title == "" {
		panic(fmt.Sprintf("suites: malformed requirement %+v", r)) // a programming error, found at init
	}
	if r.Text == "" {
		panic(fmt.Sprintf("suites: requirement %s quotes no text: every check names the words that make it", r.ID))
	}
	lvl, ok := r.Keyword.Level()
	if !ok {
		panic(fmt.Sprintf("suites: requirement %s has keyword %q: want shall, indicative, should or may", r.ID, r.Keyword))
	}
	if r.Level != "" && r.Level != lvl {
		panic(fmt.Sprintf("suites: requirement %s is %s but its keyword %q makes it %s", r.ID, r.Level, r.Keyword, lvl))
	}
	r.Level = lvl
	r.Statements = mergeStatements(r.Statements, existingStatements[r.ID])
	switch r.Binds {
	case Controller, Both:
	default:
		panic(fmt.Sprintf("suites: requirement %s binds %q: a target check binds the controller or both", r.ID, r.Binds))
	}
	if g, dup := regSeen[r.ID]; dup && g == regGen {
		panic("suites: duplicate requirement ID " + r.ID)
	}
	registry[r.ID] = r
	regSeen[r.ID] = regGen
	return r
}

// Requirements returns every declared requirement, sorted by ID.
func Requirements() []Requirement {
	loadRegistry()
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Requirement, 0, len(registry))
	for _, r := range registry {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DefaultStepTimeout bounds each check unless Config.Timeout says otherwise.
const DefaultStepTimeout = 10 * time.Second

// Check declares requirement r as one spec of the enclosing container.
// body gets a Spec bound to r and to the target under test.
func Check(r Requirement, body func(ctx context.Context, s *Spec)) bool {
	r = register(r)
	return It(fmt.Sprintf("[%s] %s", r.ID, r.Title), Label(r.ID, string(r.Level)), func(ctx SpecContext) {
		if u := unreachable(); u != nil {
			// The target died under an earlier check: trying this one
			// would only wait out its timeout.
			AddReportEntry(notRunEntry, u.After)
			Skip(u.notRunMessage())
		}
		s := &Spec{Req: r, Target: current()}
		if s.Target == nil {
			Fail("suites: no target configured (use suites.Run)")
		}
		timeout := s.Target.Config.Timeout
		if timeout <= 0 {
			timeout = DefaultStepTimeout
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		DeferCleanup(reportLive) // registered first, runs last
		s.startTrace()
		DeferCleanup(s.finishTrace)   // after the check's connections are closed
		DeferCleanup(s.checkLiveness) // after them too, and before finishTrace: it keeps a killer's trace
		DeferCleanup(s.cleanup)
		body(cctx, s)
	})
}

// Spec is what a check body works with: its requirement, the target, and
// the helpers that turn observations into verdicts.
type Spec struct {
	Req    Requirement
	Target *Target

	mu       sync.Mutex
	cleanups []func()
	trace    *checkTrace // nil: the run keeps no traces
	killed   bool        // the target was unreachable after this check
}

// Defer registers f to run when the check ends (closing connections and
// controllers the check opened), last registered first.
func (s *Spec) Defer(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

func (s *Spec) cleanup() {
	s.mu.Lock()
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// ConformAll is Conform for a check that collects what went wrong: with no
// problems the target did want; otherwise the observation is the problems,
// joined by "; ".
func (s *Spec) ConformAll(problems []string, want string) {
	GinkgoHelper()
	observed := want
	if len(problems) > 0 {
		observed = strings.Join(problems, "; ")
	}
	s.Conform(observed, want)
}

// Conform is the verdict of a check: observed is what the target did and
// want what the spec requires, both in the canonical words the check uses
// (e.g. "C2HTermReq FES 0x1 FEI 0x2", "close without C2HTermReq", "status
// 0x0/0x2"). Equal: pass. Different, and the profile documents exactly
// this observation for this requirement: pass, reported as a finding with
// the profile's note. Otherwise: fail, saying both.
func (s *Spec) Conform(observed, want string) {
	GinkgoHelper()
	if observed == want {
		return
	}
	if d, ok := s.Target.Profile.deviation(s.Req.ID); ok && d.Observed == observed {
		AddReportEntry("finding", Finding{ID: s.Req.ID, Section: s.Req.Section, Observed: observed, Want: want, Note: d.Note, Profile: s.Target.Profile.Name})
		return
	}
	Fail(fmt.Sprintf("%s (%s): target did %q, the spec requires %q", s.Req.ID, s.Req.Section, observed, want))
}

// Lacks skips the check because the target does not claim the optional
// feature it needs; the reason goes in the report.
func (s *Spec) Lacks(feature string) {
	Skip(fmt.Sprintf("%s: target lacks %s", s.Req.ID, feature))
}

// Finding records a documented difference from the spec.
type Finding struct {
	ID       string `json:"id"`
	Section  string `json:"section"`
	Observed string `json:"observed"`
	Want     string `json:"want"`
	Note     string `json:"note"`
	Profile  string `json:"profile"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s (%s): observed %q, spec %q — %s [profile %s]", f.ID, f.Section, f.Observed, f.Want, f.Note, f.Profile)
}

// Target is the implementation under test.
type Target struct {
	Config  Config
	Profile *Profile

	// termReqMu guards termReqRule, what the target did on the run's one
	// reference fatal error (see Spec.closesWithoutTermReq): "" until
	// asked.
	termReqMu   sync.Mutex
	termReqRule string
}

// Config says where the target is and what the suite may do to it.
type Config struct {
	// Address is host:port of a port exposing SubNQN.
	Address string
	// DiscoveryAddress is host:port of a discovery controller (default
	// Address: discovery on the I/O port, as the spec allows).
	DiscoveryAddress string
	// SubNQN is the NVM subsystem under test.
	SubNQN string
	// HostNQN and HostID identify the host (defaults as nvme-cli's).
	HostNQN string
	HostID  [16]byte
	// WritableNSID names the one namespace checks may write to; 0 means
	// no check writes (those are skipped, with the reason).
	WritableNSID uint32
	// Control performs target-side actions (add a namespace, change ANA
	// state, take a port down); nil skips the checks that need one.
	Control Control
	// Timeout bounds each check (default DefaultStepTimeout).
	Timeout time.Duration
	// RestrictedSubNQN names a subsystem on Address that does not allow
	// HostNQN, for the Connect Invalid Host check; empty skips it.
	RestrictedSubNQN string
	// AuthSubNQN names a subsystem on Address that requires in-band
	// authentication (DH-HMAC-CHAP) of AuthHostNQN, whose secret is
	// DHCHAPSecret (and DHCHAPCtrlSecret, to authenticate the controller
	// too), for the FAB-AUTH checks; empty skips them. AuthHostNQN
	// defaults to HostNQN.
	AuthSubNQN                     string
	AuthHostNQN                    string
	DHCHAPSecret, DHCHAPCtrlSecret string
}

// Control performs actions on the target's side, as blktests'
// NVME_TARGET_CONTROL does: built in for the reference target
// (ReferenceControl), a user-supplied command (control.Exec) for anyone
// else's. The contract is package control's; the verbs are below.
type Control = control.Control

// Action is one target-side action: a verb and its arguments, e.g.
// {"add-namespace", {"nsid": "7", "size": "64MiB"}}.
type Action = control.Action

// ErrUnsupported is returned (wrapped) by a Control that cannot perform an
// action.
var ErrUnsupported = control.ErrUnsupported

var (
	curMu  sync.Mutex
	curTgt *Target
)

func current() *Target {
	curMu.Lock()
	defer curMu.Unlock()
	return curTgt
}

func setCurrent(t *Target) {
	curMu.Lock()
	curTgt = t
	curMu.Unlock()
}
