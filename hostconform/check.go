package hostconform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/suites"
)

// T is what a check's Run works with: the check, the test controller, the
// host's control and the verdict machinery.
type T struct {
	Check *Check
	// Ctrl is the check's test controller.
	Ctrl *Controller
	// Cfg is the run's configuration (addresses, NQNs, bounds).
	Cfg *Config
	// Ctx ends when the check's time is up or the run is interrupted.
	Ctx context.Context

	profile   *suites.Profile
	state     string // "" while running: passed unless something else
	message   string
	needs     string
	findings  []suites.Finding
	details   []suites.Detail
	connected bool
}

// stop unwinds a check's Run after its verdict (Fail, Skip).
type stop struct{}

// Conform is the verdict of a check: observed is what the host did and
// want what the spec requires, both in the check's canonical words. Equal:
// the check goes on (and passes if nothing else fails it). Different, and
// the profile documents exactly this observation for this check: a
// finding, and the check ends passing. Otherwise it fails, saying both.
func (t *T) Conform(observed, want string) {
	if observed == want {
		return
	}
	if d, ok := t.profile.Deviation(t.Check.ID); ok && d.Observed == observed {
		t.findings = append(t.findings, suites.Finding{ID: t.Check.ID, Section: t.Check.Section, Observed: observed, Want: want, Note: d.Note, Profile: t.profile.Name})
		t.state = "passed"
		panic(stop{})
	}
	t.Failf("%s (%s): host did %q, the spec requires %q", t.Check.ID, t.Check.Section, observed, want)
}

// ConformAll is Conform for a check that collects what went wrong: no
// problems is want; otherwise the observation is the problems joined by
// "; ".
func (t *T) ConformAll(problems []string, want string) {
	observed := want
	if len(problems) > 0 {
		observed = strings.Join(problems, "; ")
	}
	t.Conform(observed, want)
}

// ConformNone is ConformAll for problems whose words vary from host to
// host: each goes into the details, and the verdict reads observed (the
// canonical words a profile can name) when there are any.
func (t *T) ConformNone(problems []string, observed, want string) {
	for _, p := range problems {
		t.Detail("%s", p)
	}
	if len(problems) > 0 {
		t.Conform(observed, want)
	}
}

// Failf fails the check.
func (t *T) Failf(format string, args ...any) {
	t.state = "failed"
	t.message = fmt.Sprintf(format, args...)
	panic(stop{})
}

// Skipf skips the check: it does not apply to this host.
func (t *T) Skipf(format string, args ...any) {
	t.state = "skipped"
	t.message = fmt.Sprintf("%s: %s", t.Check.ID, fmt.Sprintf(format, args...))
	panic(stop{})
}

// SkipNeeds skips the check for lack of something only the user can give
// (needs, e.g. "a --host-control that can io"): it applies but was not
// tested, and the run's verdict says so.
func (t *T) SkipNeeds(needs, reason string) {
	t.needs = needs
	t.Skipf("%s (needs %s)", reason, needs)
}

// Detail records what the check saw on the way (shown in results.json).
func (t *T) Detail(format string, args ...any) {
	t.details = append(t.details, suites.Detail{Name: "observed", Value: fmt.Sprintf(format, args...)})
}

// Do asks the host's control for an action; an unsupported one skips the
// check, other errors are returned.
func (t *T) Do(verb string, args map[string]string) error {
	err := t.Cfg.Control.Do(t.Ctx, control.Action{Verb: verb, Args: args})
	if errors.Is(err, control.ErrUnsupported) {
		// The control's own words say why (SPDK's has no persistent
		// discovery, for one): the skip keeps them.
		t.SkipNeeds("a --host-control that can "+verb, "the host control cannot "+control.Action{Verb: verb, Args: args}.String()+" ("+err.Error()+")")
	}
	if err != nil && t.Ctx.Err() != nil {
		t.Failf("%s: %s did not finish within the check's time (%v)", t.Check.ID, verb, err)
	}
	return err
}

// ConnectArgs are the connect verb's arguments for this run's test
// controller, with more (hdr_digest, data_digest, ...) added.
func (t *T) ConnectArgs(more ...string) map[string]string {
	host, port, _ := net.SplitHostPort(t.Cfg.Listen)
	a := map[string]string{"addr": host, "port": port, "nqn": t.Cfg.SubNQN, "hostnqn": t.Cfg.HostNQN}
	if t.Cfg.NrIOQueues > 0 {
		a["nr_io_queues"] = strconv.Itoa(t.Cfg.NrIOQueues)
	}
	for i := 0; i+1 < len(more); i += 2 {
		a[more[i]] = more[i+1]
	}
	return a
}

// Connect asks the host to connect to the test controller (more are
// extra key, value pairs). The run disconnects it after the check.
func (t *T) Connect(more ...string) error {
	t.connected = true
	return t.Do(VerbConnect, t.ConnectArgs(more...))
}

// MustConnect is Connect for a check that cannot judge anything if the
// host does not connect: that fails the check.
func (t *T) MustConnect(more ...string) {
	if err := t.Connect(more...); err != nil {
		t.Failf("%s: the host did not connect to the test controller: %v", t.Check.ID, err)
	}
}

// Disconnect asks the host to disconnect from the test controller.
func (t *T) Disconnect() error {
	t.connected = false
	return t.Do(VerbDisconnect, map[string]string{"nqn": t.Cfg.SubNQN})
}

// IO asks the host to run I/O on namespace 1 of the test controller: rw
// is read, write, randread or randwrite; bs and size are bytes.
func (t *T) IO(rw string, bs, size int, more ...string) error {
	a := map[string]string{"nqn": t.Cfg.SubNQN, "nsid": "1", "rw": rw, "bs": strconv.Itoa(bs), "size": strconv.Itoa(size)}
	for i := 0; i+1 < len(more); i += 2 {
		a[more[i]] = more[i+1]
	}
	return t.Do(VerbIO, a)
}

// MustIO is IO for a check that needs the I/O to succeed.
func (t *T) MustIO(rw string, bs, size int, more ...string) {
	if err := t.IO(rw, bs, size, more...); err != nil {
		t.Failf("%s: the host's %s of %d bytes (bs %d) failed: %v", t.Check.ID, rw, size, bs, err)
	}
}

// WaitClosed waits up to the run's close bound for c to end and says who
// ended it ("" if it is still open).
func (t *T) WaitClosed(c *Conn) string { return t.waitClosed(c, t.Cfg.CloseWait) }

// waitClosed is WaitClosed with another bound.
func (t *T) waitClosed(c *Conn, bound time.Duration) string {
	tm := time.NewTimer(bound)
	defer tm.Stop()
	select {
	case <-c.Closed():
	case <-tm.C:
	case <-t.Ctx.Done():
	}
	by, _ := c.CloseInfo()
	return by
}
