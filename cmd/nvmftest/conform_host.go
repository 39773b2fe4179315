package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/hostconform"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/suites"
)

func newConformHostCmd() *cobra.Command {
	var (
		listen, traddr, trsvcid, nqn, hostnqn string
		hostControl, profile, reportDir       string
		junit, traces                         string
		only, skip, deviations                []string
		self, strict, list, matrix            bool
		nrIOQueues                            int
		closeWait, timeout                    time.Duration
	)
	c := &cobra.Command{
		Use:   "conform-host --listen ADDR:PORT [--host-control CMD | --self]",
		Short: "Check an NVMe/TCP host (initiator) against the specifications, requirement by requirement",
		Long: `conform-host runs nvmftest's reference target as a test controller on
--listen (or -a/-s) and grades the host that connects to it: what it sends
on the wire (ICReq, Connect, capsules, H2CData) and how it reacts to what
the controller does (CPDA, MAXH2CDATA, digests, split R2Ts, C2HTermReq,
malformed C2HData, digest errors). Each check gets a controller of its
own; the host connects once per check.

The host is driven by --host-control CMD, run as "CMD VERB key=value..."
(verbs connect, disconnect, io, rescan, discover; exit 0 done, 3
unsupported: the checks that need it are skipped, saying so), or by
--self (nvmftest's own initiator, in process). With neither, the run is
attended: it prints the nvme connect (and disconnect) command to run on
the host for each check and waits for it; checks that need I/O are
skipped.

Exit status: 0 conformant (every mandatory check passed; with --strict
every check), 1 not conformant, 2 bad flags, 130 interrupted by Ctrl-C
(143 by SIGTERM): the checks that ended are reported, and there is no
verdict.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if list {
				writeHostChecks(out)
				return nil
			}
			if matrix {
				return hostconform.WriteMatrix(out)
			}
			fs := cmd.Flags()
			if fs.Changed("listen") && (fs.Changed("traddr") || fs.Changed("trsvcid")) {
				return usagef("give the test controller's address once: --listen ADDR:PORT or -a ADDR -s PORT")
			}
			addr := listen
			if addr == "" {
				if traddr == "" {
					return usagef("missing the address to listen on: give --listen ADDR:PORT (or -a ADDR -s PORT), an address the host under test can reach")
				}
				if p, err := strconv.Atoi(trsvcid); err != nil || p < 0 || p > 65535 {
					return usagef("invalid -s/--trsvcid %q: want a TCP port number (0-65535)", trsvcid)
				}
				addr = net.JoinHostPort(traddr, trsvcid)
			}
			if h, _, err := net.SplitHostPort(addr); err != nil || (h != "" && net.ParseIP(h) == nil) {
				return usagef("invalid --listen %q: want IP:PORT, e.g. 0.0.0.0:4420 or 192.168.1.5:4420", addr)
			}
			if !strings.HasPrefix(nqn, "nqn.") {
				return usagef("invalid -n/--nqn %q: an NQN starts with \"nqn.\"", nqn)
			}
			if hostnqn != "" && !strings.HasPrefix(hostnqn, "nqn.") {
				return usagef("invalid -q/--hostnqn %q: an NQN starts with \"nqn.\"", hostnqn)
			}
			if self && hostControl != "" {
				return usagef("--self and --host-control both drive the host: give one")
			}
			if len(deviations) > 0 && !self {
				return usagef("--deviation applies to nvmftest's own initiator: give --self too")
			}
			if hostnqn == "" && hostControl != "" {
				// The verbs always name the host NQN (the ready-made
				// controls need one, and SPDK's tools would otherwise
				// send an empty one): nvme-cli's own default.
				hostnqn = initiator.DefaultHostNQN()
			}
			cfg := hostconform.Config{Listen: addr, SubNQN: nqn, HostNQN: hostnqn, NrIOQueues: nrIOQueues, CloseWait: closeWait, CheckTimeout: timeout}
			var selfHost *hostconform.SelfHost
			switch {
			case self:
				known := map[string]bool{}
				for _, d := range initiator.HostDeviations() {
					known[d.Name] = true
				}
				for _, d := range deviations {
					if !known[d] {
						return usagef("unknown --deviation %q (see --list-deviations)", d)
					}
				}
				selfHost = &hostconform.SelfHost{Options: initiator.Options{Deviations: deviations, Timeout: 30 * time.Second}}
				defer selfHost.Close()
				cfg.Control = selfHost
				if cfg.HostNQN == "" {
					cfg.HostNQN = initiator.DefaultHostNQN()
				}
			case hostControl != "":
				ex, err := newExecFlag("--host-control", hostControl, "")
				if err != nil {
					return err
				}
				cfg.Control = ex
			default:
				cfg.Control = &hostconform.Attended{Out: out}
				if !fs.Changed("timeout") {
					cfg.CheckTimeout = 10 * time.Minute // a person types the commands
				}
			}
			prof, err := loadProfileFlag(profile, hostconform.LoadProfile)
			if err != nil {
				return err
			}
			traceMode, err := suites.ParseTraceMode(traces)
			if err != nil {
				return usagef("--traces %v", err)
			}
			opts := hostconform.RunOptions{Only: splitList(only), Skip: splitList(skip), Out: out, Strict: strict, Traces: traceMode}
			if _, err := hostconform.Select(opts); err != nil {
				return usagef("--only/--skip: %v", err)
			}
			var run *reports.Run
			if reportDir != "" {
				if run, err = openRun(reportDir); err != nil {
					return err
				}
				opts.ReportDir = filepath.Join(reportDir, "conformance")
			}
			if junit != "" {
				f, err := createOutput("--junit", junit)
				if err != nil {
					return err
				}
				f.Close()
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usagef("--listen %s: %v (give an address of this machine and a free port)", addr, err)
			}
			_ = ln.Close()
			sum, err := hostconform.Run(cmd.Context(), cfg, prof, opts)
			if err != nil {
				return err
			}
			if junit != "" {
				if err := sum.WriteJUnitFile(junit, opts.ReportDir); err != nil {
					return fmt.Errorf("--junit %s: %v", junit, err)
				}
			}
			if run != nil {
				run.AddConformance(sum)
				fmt.Fprintf(out, "host conformance reports: %s/{junit.xml,results.json,findings.json,summary.md,traces/}\n", opts.ReportDir)
				if err := saveRun(cmd.ErrOrStderr(), reportDir, run); err != nil {
					return err
				}
			}
			if err := interruptedRun("conform-host", sum); err != nil {
				return err
			}
			if sig := interrupt.Signal(cmd.Context()); sig != nil {
				return signalError{"conform-host interrupted; no verdict", sig}
			}
			return failedChecks(sum, strict, "host checks")
		},
	}
	fs := c.Flags()
	fs.StringVar(&listen, "listen", "", "IP:PORT the test controller listens on (the host under test must reach it)")
	fs.StringVarP(&traddr, "traddr", "a", "", "IP address to listen on (with -s; or use --listen)")
	fs.StringVarP(&trsvcid, "trsvcid", "s", "4420", "TCP port to listen on (with -a)")
	fs.StringVarP(&nqn, "nqn", "n", hostconform.DefaultSubNQN, "subsystem NQN of the test controller")
	fs.StringVarP(&hostnqn, "hostnqn", "q", "", "host NQN the host connects with (default: with --host-control, /etc/nvme/hostnqn or a generated one; attended, the host's own)")
	fs.IntVarP(&nrIOQueues, "nr-io-queues", "i", 0, "I/O queues to ask the host for (0: the host's default)")
	fs.StringVar(&hostControl, "host-control", "", `command driving the host under test, run as "CMD VERB key=value..."`)
	fs.BoolVar(&self, "self", false, "grade nvmftest's own initiator, in process")
	fs.StringSliceVar(&deviations, "deviation", nil, "with --self: give our initiator these deviations (to see the checks fail; see --list)")
	fs.StringVar(&profile, "profile", "", "profile YAML stating the host's known deviations (reported as findings)")
	fs.StringSliceVar(&only, "only", nil, "run only these checks or areas (IDs or transport, fabrics, ...; comma separated)")
	fs.StringSliceVar(&skip, "skip", nil, "leave out these checks or areas")
	fs.StringVar(&reportDir, "report-dir", "", "run directory: report.html, summary.md, run.json, and conformance/ with JUnit XML, JSON and the traces of failed checks")
	fs.StringVar(&junit, "junit", "", "write the JUnit XML report to this file too")
	fs.StringVar(&traces, "traces", "failed", "with --report-dir, keep the pcapng trace of the checks that failed, all, or none")
	fs.DurationVar(&closeWait, "close-wait", hostconform.DefaultCloseWait, "how long a host has to close a connection the spec tells it to terminate")
	fs.DurationVar(&timeout, "timeout", hostconform.DefaultCheckTimeout, "time limit of each check (attended: 10m unless given)")
	fs.BoolVar(&strict, "strict", false, "fail (exit 1) on recommended and optional failures too")
	fs.BoolVar(&matrix, "matrix", false, "print the statements that bind the host (suites/statements.tsv) with the host checks covering each, and exit")
	fs.BoolVar(&list, "list", false, "list every host check (ID, level, keyword, section, title, the deviation that fails it) and exit")
	return c
}

func splitList(l []string) []string {
	var out []string
	for _, s := range l {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// writeHostChecks lists the host checks and our initiator's deviations.
func writeHostChecks(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLEVEL\tKEYWORD\tSECTION\tDEVIATION\tREQUIREMENT")
	n := 0
	for _, c := range hostconform.Checks() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Level, c.Keyword, c.Section, c.Deviation, c.Title)
		n++
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d host checks\n\nDeviations of nvmftest's own initiator (--self --deviation NAME):\n", n)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, d := range initiator.HostDeviations() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.Name, d.Breaks, d.Does)
	}
	_ = tw.Flush()
}
