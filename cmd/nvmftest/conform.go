package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/suites"
)

// conformFailed is a run in which a mandatory check (or, with --strict,
// any check) failed: exit status 1.
type conformFailed struct{ msg string }

func (e conformFailed) Error() string { return e.msg }
func (e conformFailed) ExitCode() int { return suites.ExitNotConformant }

// targetUnreachable is a run that could not judge the target because it
// did not answer: before the first check (the pre-flight probe), or from
// some check on (it died). Exit status 3, never a verdict.
type targetUnreachable struct{ msg string }

func (e targetUnreachable) Error() string { return e.msg }
func (e targetUnreachable) ExitCode() int { return suites.ExitUnreachable }

// cliT is the GinkgoTestingT of a command-line run.
type cliT struct{ failed bool }

func (t *cliT) Fail() { t.failed = true }

func newConformCmd() *cobra.Command {
	var (
		transport, traddr, trsvcid, nqn, hostnqn, hostid string
		discAddr, profile, labelFilter, reportDir        string
		traces, captureDir                               string
		control, restricted                              string
		authNQN, authHostNQN, dhchapSecret, dhchapCtrl   string
		allowWrites                                      uint32
		timeout, suiteTimeout                            time.Duration
		strict, list                                     bool
		listFormat                                       string
	)
	var matrix matrixFlags
	c := &cobra.Command{
		Use:   "conform -t tcp -a ADDR -s PORT -n SUBNQN",
		Short: "Check an NVMe/TCP target against the specifications, requirement by requirement",
		Long: `conform runs the conformance suites (transport, fabrics, discovery, admin,
I/O) against the target over the wire and gives a verdict per requirement:
PASS, FAIL, SKIP (with the reason) or FINDING (a divergence the --profile
documents).

Before the first check, conform probes the target (TCP connect, ICReq,
admin Connect to the subsystem, Identify Controller); if it does not
answer, one line says what is wrong and nothing is judged. After every
failed check it probes again: a target that no longer answers (twice, a
second apart) ends the run at once, naming the check after which it went
(its trace is kept); the checks after it are "not run" and there is no
verdict.

Exit status: 0 conformant (every mandatory check passed; with --strict
every check), 1 not conformant, 2 bad flags, 3 target unreachable (before
or during the run: no verdict), 130 interrupted by Ctrl-C (143 by
SIGTERM): the checks that ended are reported, the rest are "not run", and
there is no verdict.

Nothing is written to the target unless --allow-writes names a namespace.
Target-side actions (adding namespaces, changing ANA state, taking a port
down) go through --control CMD, run as "CMD VERB key=value..." (exit 0
done, 3 unsupported; see README "Conformance").

Select checks with --label-filter: areas (transport, fabrics, discovery,
admin, io), levels (mandatory, recommended, optional) and IDs, combined
with && || ! and parentheses, e.g. 'fabrics && mandatory' or '!TCP-IC-007'.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if list || cmd.Flags().Changed("list-format") {
				return listRequirements(out, listFormat)
			}
			if matrix.on || cmd.Flags().Changed("output-format") {
				return matrix.write(out)
			}
			if err := checkTargetAddr(transport, traddr, trsvcid); err != nil {
				return err
			}
			if nqn == "" {
				return usagef("missing subsystem NQN: give it with -n/--nqn NQN")
			}
			cfg := suites.Config{
				Address:          net.JoinHostPort(traddr, trsvcid),
				DiscoveryAddress: discAddr,
				SubNQN:           nqn,
				HostNQN:          hostnqn,
				WritableNSID:     allowWrites,
				Timeout:          timeout,
				RestrictedSubNQN: restricted,
				AuthSubNQN:       authNQN,
				AuthHostNQN:      authHostNQN,
				DHCHAPSecret:     dhchapSecret,
				DHCHAPCtrlSecret: dhchapCtrl,
			}
			if authNQN != "" && dhchapSecret == "" {
				return usagef("--auth-nqn needs the host's key: give it with --dhchap-secret DHHC-1:...")
			}
			for _, k := range []struct{ flag, v string }{{"--dhchap-secret", dhchapSecret}, {"--dhchap-ctrl-secret", dhchapCtrl}} {
				if k.v == "" {
					continue
				}
				if _, err := nvme.ParseDHCHAPSecret(k.v); err != nil {
					return usagef("invalid %s: %v (want a DHHC-1:hh:base64: secret, as nvme gen-dhchap-key prints)", k.flag, err)
				}
			}
			if hostid != "" {
				id, err := initiator.ParseHostID(hostid)
				if err != nil {
					return usagef("invalid -I/--hostid: %v", err)
				}
				cfg.HostID = id
			}
			if discAddr != "" {
				if _, _, err := net.SplitHostPort(discAddr); err != nil {
					return usagef("invalid --discovery-addr %q: want HOST:PORT", discAddr)
				}
			}
			if control != "" {
				ctl, err := newControl(control)
				if err != nil {
					return err
				}
				cfg.Control = ctl
			}
			prof, err := loadProfileFlag(profile, suites.LoadProfile)
			if err != nil {
				return err
			}
			traceMode, err := suites.ParseTraceMode(traces)
			if err != nil {
				return usagef("--traces %v", err)
			}
			if captureDir != "" && !cmd.Flags().Changed("traces") {
				traceMode = suites.TracesAll
			}
			var run *reports.Run
			suiteDir := ""
			if reportDir != "" {
				if run, err = openRun(reportDir); err != nil {
					return err
				}
				suiteDir = filepath.Join(reportDir, "conformance")
			}
			if captureDir != "" {
				if err := writableDir(captureDir); err != nil {
					return usagef("--capture %s: %v (give a directory nvmftest can write)", captureDir, err)
				}
			}
			if err := suites.CheckLabelFilter(labelFilter); err != nil {
				return usagef("--label-filter: %v", err)
			}
			if err := preflight(cmd.Context(), cfg, timeout); err != nil {
				return err
			}
			t := &cliT{}
			sum, err := suites.Run(t, cfg, prof, suites.RunOptions{
				LabelFilter: labelFilter, ReportDir: suiteDir, Timeout: suiteTimeout,
				Out: out, Quiet: true, Strict: strict, Traces: traceMode, TraceDir: captureDir,
			})
			if err != nil {
				if strings.HasPrefix(err.Error(), "label filter") {
					return usagef("--label-filter: %v", err)
				}
				return err
			}
			if run != nil {
				run.AddConformance(sum)
				fmt.Fprintf(out, "conformance reports: %s/{junit.xml,results.json,findings.json,summary.md,traces/}\n", suiteDir)
				if err := saveRun(cmd.ErrOrStderr(), reportDir, run); err != nil {
					return err
				}
			}
			if err := interruptedRun("conform", sum); err != nil {
				return err
			}
			if u := sum.Unreachable; u != nil {
				return targetUnreachable{fmt.Sprintf("%s at %s stopped answering after check %s (%s); %d checks not run, no verdict", cfg.SubNQN, cfg.Address, u.After, u.Reason, sum.NotRun)}
			}
			return failedChecks(sum, strict, "checks")
		},
	}
	fs := c.Flags()
	fs.StringVarP(&transport, "transport", "t", "tcp", "transport type (only tcp)")
	fs.StringVarP(&traddr, "traddr", "a", "", "transport address of the target (required)")
	fs.StringVarP(&trsvcid, "trsvcid", "s", "4420", "transport service ID (TCP port)")
	fs.StringVarP(&nqn, "nqn", "n", "", "NVM subsystem NQN under test (required)")
	fs.StringVarP(&hostnqn, "hostnqn", "q", "", "host NQN (default /etc/nvme/hostnqn or a generated one)")
	fs.StringVarP(&hostid, "hostid", "I", "", "host ID as a UUID (default derived from the host NQN)")
	fs.StringVar(&discAddr, "discovery-addr", "", "HOST:PORT of the discovery controller (default: the I/O port)")
	fs.StringVar(&profile, "profile", "", "profile YAML stating the target's known divergences (reported as findings)")
	fs.StringVar(&labelFilter, "label-filter", "", "run only the checks this Ginkgo label expression selects")
	fs.Uint32Var(&allowWrites, "allow-writes", 0, "namespace ID the checks may write to (default: no writes)")
	fs.StringVar(&reportDir, "report-dir", "", "run directory: report.html, summary.md, run.json, and conformance/ with JUnit XML, JSON and the traces of failed checks")
	fs.StringVar(&traces, "traces", "failed", "with --report-dir or --capture, keep the pcapng trace of the checks that failed, all, or none")
	fs.StringVar(&captureDir, "capture", "", "write each check's connections as `DIR`/ID.pcapng (every check's unless --traces says otherwise; default with --report-dir: its conformance/traces)")
	fs.StringVar(&control, "control", "", `command performing target-side actions, run as "CMD VERB key=value..."`)
	fs.StringVar(&restricted, "restricted-nqn", "", "a subsystem on the same port that does not allow this host (for the invalid-host check)")
	fs.StringVar(&authNQN, "auth-nqn", "", "a subsystem on the same port that requires DH-HMAC-CHAP authentication of --auth-hostnqn (for the FAB-AUTH checks)")
	fs.StringVar(&authHostNQN, "auth-hostnqn", "", "host NQN the --auth-nqn subsystem authenticates (default: --hostnqn)")
	fs.StringVar(&dhchapSecret, "dhchap-secret", "", "the --auth-hostnqn host's DH-HMAC-CHAP secret (DHHC-1:hh:...:), as nvme connect's")
	fs.StringVar(&dhchapCtrl, "dhchap-ctrl-secret", "", "the controller's DH-HMAC-CHAP secret, to authenticate the controller too (optional)")
	fs.DurationVar(&timeout, "timeout", suites.DefaultStepTimeout, "time limit of each check")
	fs.DurationVar(&suiteTimeout, "suite-timeout", time.Hour, "time limit of the whole run")
	fs.BoolVar(&strict, "strict", false, "fail (exit 1) on recommended and optional failures too")
	fs.BoolVar(&list, "list", false, "list every requirement (ID, level, keyword, whom it binds, section, title) and exit")
	fs.StringVar(&listFormat, "list-format", "text", "with --list: text or markdown (the traceability table)")
	matrix.register(fs)
	return c
}

// preflight probes the target once before any check, bounded by the
// probe's own limit or the check timeout if shorter: a target that is not
// there (nothing listening, not NVMe/TCP, a subsystem that refuses us) is
// one line and exit status 3, never a run of failed checks.
func preflight(ctx context.Context, cfg suites.Config, checkTimeout time.Duration) error {
	bound := suites.ProbeTimeout
	if checkTimeout > 0 && checkTimeout < bound {
		bound = checkTimeout
	}
	err := suites.Probe(ctx, cfg, bound)
	switch {
	case err == nil:
		return nil
	case interrupt.Signal(ctx) != nil:
		return signalError{"interrupted before the first check", interrupt.Signal(ctx)}
	}
	msg := fmt.Sprintf("cannot reach %s at %s: %v", cfg.SubNQN, cfg.Address, err)
	var pe *suites.ProbeError
	if errors.As(err, &pe) && pe.Hint != "" {
		msg += "; " + pe.Hint
	}
	return targetUnreachable{msg + " (nothing was checked)"}
}

// listRequirements prints the traceability table.
func listRequirements(w io.Writer, format string) error {
	switch format {
	case "text":
		suites.WriteRequirements(w, false)
	case "markdown":
		suites.WriteRequirements(w, true)
	default:
		return usagef("invalid --list-format %q: want text or markdown", format)
	}
	return nil
}

// interruptedRun is the error of a conformance run a signal cut short
// (nil if it ran to its end): the checks not run leave no verdict.
func interruptedRun(command string, sum suites.Summary) error {
	if in := sum.Interrupted; in != nil {
		return signalError{fmt.Sprintf("%s %s; no verdict", command, in), syscallSignal(in.SignalNumber)}
	}
	return nil
}

// failedChecks is a finished conformance run's outcome: nil, or the
// failures that make its exit code non-zero (mandatory ones, or any
// under --strict), counted as checks ("host checks").
func failedChecks(sum suites.Summary, strict bool, checks string) error {
	if sum.ExitCode(strict) == 0 {
		return nil
	}
	if sum.MandatoryFailed > 0 {
		return conformFailed{fmt.Sprintf("%d mandatory %s failed", sum.MandatoryFailed, checks)}
	}
	return conformFailed{fmt.Sprintf("%d %s failed (--strict)", sum.Failed, checks)}
}

// loadProfileFlag reads --profile with load (the target checks' loader or
// the host checks'): nil when none is given.
func loadProfileFlag(path string, load func(string) (*suites.Profile, error)) (*suites.Profile, error) {
	if path == "" {
		return nil, nil
	}
	p, err := load(path)
	if err != nil {
		return nil, usagef("--profile %s: %v", path, err)
	}
	return p, nil
}
