package hostconform

// How to add to host conformance
//
// A check is a Check value in an area file (initialization.go,
// connect.go, datatransfer.go, fatal.go; a new area gets a new file, e.g.
// keepalive.go), registered from that file's init with
//
//	func init() { register(keepAliveChecks...) }
//
// which is the one line a new file needs; nothing else in the package
// changes. A check has:
//
//   - its Requirement (suites.Requirement, as target checks have): an ID
//     HOST-<AREA>-NNN, the section, the spec's keyword (shall, should,
//     may, indicative: the level follows), Binds: suites.Host, a title
//     saying what the host must do, the governing words of the text, and
//     Statements naming the statements of suites/statements.tsv it
//     enforces (host or both ones; TestHostStatements holds them to it);
//   - Area: transport, fabrics, discovery, admin or io (the report's
//     grouping, the same areas conform uses);
//   - Controller, if the check needs the test controller to behave in a
//     particular way: it edits Setup.Config (the reference target's
//     configuration: CPDA, MAXH2CDATA, digests granted, in-capsule data,
//     C2H SUCCESS, ...) and sets Setup.ToHost / Setup.FromHost, hooks
//     that see every PDU each way and may change, drop or add PDUs
//     (helpers: FixDigests, Conn.Inject, the behaviours in behaviours.go);
//   - Run: it asks the host to act through T.Connect, T.IO,
//     T.Disconnect, T.Do (the verbs of verbs.go; a host control that
//     cannot do one makes the check skip, saying what it needs), watches
//     the wire through T.Ctrl (Conns, Frames, WaitFor and the helpers in
//     analysis.go) and gives its verdict with T.Conform / T.ConformAll in
//     canonical words, so a profile can name the observation of a host's
//     known deviation;
//   - Deviation: the name of a deviation of nvmftest's own initiator
//     (initiator.HostDeviations) that breaks the rule. The sensitivity test
//     (TestSensitivity) runs the check against our initiator with it and
//     expects the check to fail, and with none expects every check to
//     pass. A new rule usually needs a new deviation: add it to
//     initiator/deviations.go (a name, the statement it breaks, one bool
//     tested where the behaviour changes, nil-checked on the I/O path).
//
// A verdict accepts every outcome the text allows: read the sentence,
// never another implementation, and never fail a correct host.

import (
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/nvmftest/nvmftest/suites"
)

// Check is one host requirement with the test that judges it.
type Check struct {
	suites.Requirement
	// Area groups it in reports: transport, fabrics, discovery, admin, io.
	Area string
	// Deviation names the initiator deviation the check exists to catch
	// (see initiator.HostDeviations).
	Deviation string
	// Controller shapes the test controller (nil: the defaults).
	Controller func(s *Setup)
	// Run drives the host and judges what it did.
	Run func(t *T)
}

var (
	checksMu sync.Mutex
	checks   = map[string]*Check{}
)

var hostIDPattern = regexp.MustCompile(`^HOST-[A-Z0-9]+-[0-9]{3}$`)

// register adds checks to the registry; a malformed check is a
// programming error, found at init.
func register(cs ...Check) {
	checksMu.Lock()
	defer checksMu.Unlock()
	for i := range cs {
		c := cs[i]
		r := &c.Requirement
		if !hostIDPattern.MatchString(r.ID) || r.Section == "" || r.Title == "" || r.Text == "" || c.Run == nil {
			panic(fmt.Sprintf("hostconform: malformed check %+v", r))
		}
		lvl, ok := r.Keyword.Level()
		if !ok {
			panic(fmt.Sprintf("hostconform: check %s has keyword %q: want shall, indicative, should or may", r.ID, r.Keyword))
		}
		if r.Level != "" && r.Level != lvl {
			panic(fmt.Sprintf("hostconform: check %s is %s but its keyword %q makes it %s", r.ID, r.Level, r.Keyword, lvl))
		}
		r.Level = lvl
		if r.Binds == "" {
			r.Binds = suites.Host
		}
		if r.Binds != suites.Host && r.Binds != suites.Both {
			panic(fmt.Sprintf("hostconform: check %s binds %q: a host check binds the host (or both)", r.ID, r.Binds))
		}
		switch c.Area {
		case "transport", "fabrics", "discovery", "admin", "io":
		default:
			panic(fmt.Sprintf("hostconform: check %s has area %q", r.ID, c.Area))
		}
		if _, dup := checks[r.ID]; dup {
			panic("hostconform: duplicate check ID " + r.ID)
		}
		checks[r.ID] = &c
	}
}

// Checks returns every host check, sorted by ID.
func Checks() []*Check {
	checksMu.Lock()
	defer checksMu.Unlock()
	out := make([]*Check, 0, len(checks))
	for _, c := range checks {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Requirements returns the requirements of every host check, sorted by
// ID (for --list, profiles and the statement matrix).
func Requirements() []suites.Requirement {
	var out []suites.Requirement
	for _, c := range Checks() {
		out = append(out, c.Requirement)
	}
	return out
}
