package suites

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/nvmftest/nvmftest/internal/testbound"
	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/target"
)

// fakePort is a listener that answers every connection with handle, for
// the probe's hostile peers: silent, HTTP, dying.
func fakePort(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	return testnet.Serve(t, handle)
}

// httpServer answers whatever it reads as an HTTP server does.
func httpServer(nc net.Conn) {
	_, _ = nc.Read(make([]byte, 512))
	_, _ = io.WriteString(nc, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n400 Bad Request")
}

// TestProbe holds the liveness probe to naming the step that failed and
// why, against the reference target and against peers that are not one.
// The bounds are generous: the probe must end, not be fast.
func TestProbe(t *testing.T) {
	_, ref := referenceTarget(t)
	silentStop := make(chan struct{})
	silent := fakePort(t, func(nc net.Conn) { <-silentStop })
	t.Cleanup(func() { close(silentStop) })
	for _, tc := range []struct {
		name      string
		cfg       Config
		step      string
		what      string // in ProbeError.What
		hint      string // in ProbeError.Hint
		nilResult bool
	}{
		{name: "alive", cfg: ref, nilResult: true},
		{name: "closed port", cfg: Config{Address: testnet.ClosedPort(t), SubNQN: ref.SubNQN}, step: StepDial, what: "connection refused", hint: "nothing listens on"},
		{name: "silent port", cfg: Config{Address: silent, SubNQN: ref.SubNQN}, step: StepICReq, what: "sent no ICResp within", hint: "NVMe/TCP port?"},
		{name: "HTTP server", cfg: Config{Address: fakePort(t, httpServer), SubNQN: ref.SubNQN}, step: StepICReq, what: `it starts "HTTP/1.1 400 Bad Request"`, hint: "is not an NVMe/TCP port"},
		{name: "closes at once", cfg: Config{Address: fakePort(t, func(net.Conn) {}), SubNQN: ref.SubNQN}, step: StepICReq, what: "by the target"},
		{name: "wrong NQN", cfg: Config{Address: ref.Address, SubNQN: "nqn.2014-08.io.nvmftest:typo"}, step: StepConnect, what: "refused with status", hint: "the discovery log lists: " + target.DefaultSubsystemNQN},
		{name: "host not allowed", cfg: Config{Address: ref.Address, SubNQN: restrictedNQN}, step: StepConnect, what: "refused with status", hint: "does not allow host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			testbound.Within(t, 30*time.Second, "the probe", func() { err = Probe(context.Background(), tc.cfg, time.Second) })
			if tc.nilResult {
				if err != nil {
					t.Fatalf("probe of a live target: %v", err)
				}
				return
			}
			var pe *ProbeError
			if !errors.As(err, &pe) || pe.Step != tc.step || !strings.Contains(pe.What, tc.what) || !strings.Contains(pe.Hint, tc.hint) {
				t.Fatalf("probe: %#v (%v); want step %q, %q, hint %q", pe, err, tc.step, tc.what, tc.hint)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the reason is not one line: %q", err)
			}
		})
	}
}

// TestProbeInterrupted: a cancelled probe (Ctrl-C) returns at once, not at
// its bound.
func TestProbeInterrupted(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	silent := fakePort(t, func(net.Conn) { <-stop })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	testbound.Within(t, 30*time.Second, "a cancelled probe", func() {
		// The bound is long enough that only the cancellation can end it
		// within the test's own bound.
		if err := Probe(ctx, Config{Address: silent, SubNQN: "nqn.x"}, time.Hour); err == nil {
			t.Error("a cancelled probe of a silent port succeeded")
		}
	})
}

// TestProbeTwiceRidesOutARestart: a listener that is back within the
// retry pause counts as alive.
func TestProbeTwiceRidesOutARestart(t *testing.T) {
	_, ref := referenceTarget(t)
	cfg := ref
	proxyAddr := testnet.ClosedPort(t)
	cfg.Address = proxyAddr
	// The "restarted listener": a forwarder to the reference target that
	// appears on the closed port shortly after the first probe fails.
	time.AfterFunc(200*time.Millisecond, func() {
		ln, err := net.Listen("tcp", proxyAddr)
		if err != nil {
			return // the port was taken meanwhile: the retry then fails, and the test says so
		}
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go forward(c, ref.Address)
			}
		}()
	})
	if err := ProbeTwice(context.Background(), cfg, 2*time.Second); err != nil {
		t.Fatalf("a target whose listener came back within the pause: %v", err)
	}
}

func forward(c net.Conn, to string) {
	defer c.Close()
	u, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
	_, _ = io.Copy(c, u)
}

// killingControl is the reference target's control, except that its
// first action kills the target, by kill: closing it (as SPDK v26.05
// dies on one malformed Connect) or freezing the proxy in front of it (a
// target that hangs). It records which check asked; from then on every
// action "succeeds" on a target that is gone.
type killingControl struct {
	kill func()

	mu     sync.Mutex
	killer string
}

func (c *killingControl) Do(ctx context.Context, a Action) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.killer == "" {
		for _, l := range ginkgo.CurrentSpecReport().Labels() {
			if idPattern.MatchString(l) {
				c.killer = l
			}
		}
		c.kill()
	}
	return nil
}

// freezingProxy forwards connections to a target until it is frozen;
// then it hangs like a wedged target: the connections it has stay open and
// silent, and new ones are accepted and never answered.
type freezingProxy struct {
	ln   net.Listener
	to   string
	mu   sync.Mutex
	cold bool
	up   []net.Conn // connections to the target, closed when frozen
	held []net.Conn // host-side connections, closed when the test ends
}

func startFreezingProxy(t *testing.T, to string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln, to: to}
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range append(p.up, p.held...) {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.held = append(p.held, c)
			cold := p.cold
			p.mu.Unlock()
			if cold {
				continue
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				continue
			}
			p.mu.Lock()
			p.up = append(p.up, u)
			p.mu.Unlock()
			go func() {
				_, _ = io.Copy(u, c)
				// The host closed: so does the target's side, as without
				// a proxy (an association the host left must not wait
				// for a keep alive timer, which may be inactive).
				_ = u.Close()
			}()
			go func() {
				_, _ = io.Copy(c, u) // ends when frozen, leaving c open
				p.mu.Lock()
				defer p.mu.Unlock()
				if !p.cold {
					_ = c.Close() // the target closed: so does the host's side
				}
			}()
		}
	}()
	return p
}

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cold = true
	for _, u := range p.up {
		_ = u.Close()
	}
}

const envDeathCase = "NVMFTEST_DEATH_CASE"

// deathMarker precedes what the child process of TestRunStopsWhenTargetDies
// prints: a deathResult as JSON.
const deathMarker = "\nDEATH-RESULT "

type deathResult struct {
	Killer   string
	Summary  Summary
	Exit     int
	Duration time.Duration
}

// TestRunStopsWhenTargetDies kills the reference target from inside the
// first check that asks for a target-side action: "dies" closes it (new
// connections are refused), "hangs" freezes a proxy in front of it (new
// connections are accepted and never answered). The run must name that
// check as the one after which the target was unreachable, keep its trace
// (Traces=failed), mark every check after it "not run", exit with
// ExitUnreachable, and end long before one timeout per remaining check
// would: the bound is generous (it proves "no hang", not speed), but 200
// checks each waiting out their timeout would take far longer. Run runs
// once per process, so each run happens in a child process.
func TestRunStopsWhenTargetDies(t *testing.T) {
	if c := os.Getenv(envDeathCase); c != "" {
		deathChild(t, c)
		return
	}
	for _, tc := range []struct{ name, reason string }{
		{"dies", "TCP connect: connection refused"},
		{"hangs", "ICReq/ICResp: the port accepted the connection but sent no ICResp within 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRunStopsWhenTargetDies$")
			cmd.Env = append(os.Environ(), envDeathCase+"="+tc.name+":"+dir)
			var outb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &outb, &outb
			testbound.Within(t, 3*time.Minute, "a run whose target "+tc.name, func() { _ = cmd.Run() })
			checkDeath(t, outb.String(), dir, tc.reason)
		})
	}
}

// TestRunInterruptedIsNotUnreachable: Ctrl-C while the target hangs and
// a failed check is ending ends the run as Ginkgo's interrupt does: the
// liveness probe does not run (or stops), and nothing says "target
// unreachable"; it says INTERRUPTED, with no verdict.
func TestRunInterruptedIsNotUnreachable(t *testing.T) {
	if os.Getenv(envDeathCase) != "" {
		return // the child runs TestRunStopsWhenTargetDies's deathChild
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunStopsWhenTargetDies$")
	cmd.Env = append(os.Environ(), envDeathCase+"=interrupted:"+t.TempDir())
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	testbound.Within(t, 3*time.Minute, "an interrupted run", func() { _ = cmd.Run() })
	out := outb.String()
	i := strings.LastIndex(out, deathMarker)
	if i < 0 {
		t.Fatalf("no result from the child:\n%s", out)
	}
	var res deathResult
	line, _, _ := strings.Cut(out[i+len(deathMarker):], "\n")
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("child result: %v\n%s", err, out)
	}
	if res.Summary.Unreachable != nil || res.Exit == ExitUnreachable || strings.Contains(out, "TARGET UNREACHABLE") {
		t.Errorf("an interrupted run reported the target unreachable: %+v\n%s", res.Summary.Unreachable, out)
	}
	// It reports the interruption instead: no verdict, exit status 130,
	// the checks it never reached not run (not dropped from the results).
	in := res.Summary.Interrupted
	if in == nil || res.Exit != ExitInterrupted || in.SignalNumber != 2 || in.Total != len(res.Summary.Results) || in.Ran >= in.Total ||
		res.Summary.NotRun != in.Total-in.Ran || !strings.Contains(out, "NO VERDICT: INTERRUPTED after ") {
		t.Errorf("interrupted %+v, exit %d, %d results, %d not run\n%s", in, res.Exit, len(res.Summary.Results), res.Summary.NotRun, out)
	}
}

// deathChild runs the suite in the child process: mode is "dies",
// "hangs" or "interrupted", then ":" and the report directory.
func deathChild(t *testing.T, c string) {
	mode, dir, _ := strings.Cut(c, ":")
	tg, cfg := referenceTarget(t)
	ctl := &killingControl{kill: func() { _ = tg.Close() }}
	cfg.Timeout = 20 * time.Second // a check that waited out its timeout on a dead target would show
	if mode == "hangs" {
		p := startFreezingProxy(t, cfg.Address)
		cfg.Address = p.ln.Addr().String()
		ctl.kill = p.freeze
		cfg.Timeout = 2 * time.Second // every wait on the frozen proxy is a timeout
	}
	if mode == "interrupted" {
		// Ctrl-C while the target hangs, after the check has failed
		// (its 2 s wait for the event is over) and before or while the
		// probe runs: the run is interrupted, which is not a dead target.
		// Ginkgo does not cancel the probe's context in that window.
		p := startFreezingProxy(t, cfg.Address)
		cfg.Address = p.ln.Addr().String()
		ctl.kill = func() {
			p.freeze()
			time.AfterFunc(2500*time.Millisecond, func() { _ = syscall.Kill(os.Getpid(), syscall.SIGINT) })
		}
		cfg.Timeout = 2 * time.Second
	}
	cfg.Control = ctl
	var out strings.Builder
	start := time.Now()
	sum, err := Run(t, cfg, nil, RunOptions{ReportDir: dir, Out: &out, Quiet: true, Traces: TracesFailed})
	if err != nil {
		t.Log(err)
	}
	b, _ := json.Marshal(deathResult{Killer: ctl.killer, Summary: sum, Exit: sum.ExitCode(false), Duration: time.Since(start)})
	os.Stdout.WriteString("\nOUTPUT\n" + out.String() + deathMarker + string(b) + "\n")
}

// checkDeath holds a child's run to what TestRunStopsWhenTargetDies
// requires.
func checkDeath(t *testing.T, out, dir, reason string) {
	t.Helper()
	i := strings.LastIndex(out, deathMarker)
	if i < 0 {
		t.Fatalf("no result from the child:\n%s", out)
	}
	var res deathResult
	line, _, _ := strings.Cut(out[i+len(deathMarker):], "\n")
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("child result: %v\n%s", err, out)
	}
	sum := res.Summary
	if res.Killer == "" {
		t.Fatalf("no check asked for a target-side action:\n%s", out)
	}
	u := sum.Unreachable
	if u == nil || u.After != res.Killer || u.Reason != reason {
		t.Fatalf("unreachable %+v, want after %s: %s\n%s", u, res.Killer, reason, out)
	}
	if res.Exit != ExitUnreachable || res.Exit == ExitNotConformant {
		t.Errorf("exit code %d, want %d", res.Exit, ExitUnreachable)
	}
	if sum.NotRun == 0 {
		t.Errorf("no check was marked not run\n%s", out)
	}
	notRun := 0
	for _, r := range sum.Results {
		switch {
		case r.ID == res.Killer:
			if r.State != "failed" || r.Unreachable != reason || len(r.Traces) != 1 {
				t.Errorf("the killer %s: state %s, unreachable %q, traces %q", r.ID, r.State, r.Unreachable, r.Traces)
			} else if st, err := os.Stat(filepath.Join(dir, r.Traces[0])); err != nil || st.Size() == 0 {
				t.Errorf("the killer's trace: %v", err)
			}
		case r.State == StateNotRun:
			notRun++
			if r.Message != "not run: target unreachable after "+res.Killer || r.Failed() {
				t.Errorf("%s: message %q", r.ID, r.Message)
			}
		case r.Failed():
			t.Errorf("%s failed (%s) besides the killer", r.ID, r.Message)
		}
	}
	if notRun != sum.NotRun || sum.Failed != 1 {
		t.Errorf("%d not-run results, summary says %d; %d failed, want only the killer", notRun, sum.NotRun, sum.Failed)
	}
	for _, want := range []string{"TARGET UNREACHABLE after " + res.Killer, "NO VERDICT: target unreachable after " + res.Killer, "not run"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "NOT CONFORMANT") || strings.Contains(out, "NOT RUN ") {
		t.Errorf("the output gives a verdict or lists every not-run check:\n%s", out)
	}
	var files Summary
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	if err := json.Unmarshal(b, &files); err != nil || files.NotRun != sum.NotRun || files.Unreachable == nil || !bytes.Contains(b, []byte(`"state": "notrun"`)) {
		t.Errorf("results.json: %v, not run %d, unreachable %v", err, files.NotRun, files.Unreachable)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "junit.xml")); !bytes.Contains(b, []byte("not run: target unreachable after "+res.Killer)) {
		t.Error("junit.xml does not say which checks did not run")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "summary.md")); !bytes.Contains(b, []byte("No verdict: target unreachable after "+res.Killer)) || !bytes.Contains(b, []byte("| NOT RUN |")) {
		t.Errorf("summary.md:\n%s", b)
	}
	t.Logf("the run ended %v after it started; %s killed the target; %d checks not run", res.Duration, res.Killer, sum.NotRun)
}
