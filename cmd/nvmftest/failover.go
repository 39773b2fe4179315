package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/reports"
)

func newFailoverCmd() *cobra.Command {
	var (
		scenario, transport, traddr, trsvcid, nqn, hostnqn, hostid, control, output, jsonFile string
		hostTraddr, hostIface                                                                 string
		tos                                                                                   int
		reportDir, captureDir                                                                 string
		paths                                                                                 []string
		portIDs                                                                               []uint
		nsid, anaGroup                                                                        uint32
		before, fault, after, timeout, kato, ctrlLoss, fastFail, reconnect                    time.Duration
		connTmo                                                                               time.Duration
		hdrDigest, dataDigest                                                                 bool
	)
	cmd := &cobra.Command{
		Use:   "failover --scenario NAME",
		Short: "Run a path failover scenario with verified I/O and report",
		Long: `Run verified I/O (randrw 4k, crc32c verify) through fault-injecting proxies
over a multipath host while a path fails and returns, and report the time
I/O stalled, I/Os failed to the application, I/Os retried on another path,
verify mismatches (must be 0) and a timeline of events and per-path IOPS.

Scenarios: ` + strings.Join(failover.Scenarios, ", ") + `, or all.

With no address it runs against nvmftest's reference target, in process,
with two ports. Against another target give the first path nvme-cli style
(-t tcp -a ADDRESS -s PORT -n NQN) and each further path with --path
HOST:PORT; target-side actions (set-ana-state, port-down, port-up) go
through --control CMD, run as "CMD VERB key=value..." (the conformance
suites' contract; "nvmftest target ctl --socket PATH" is one).
Exit status: 0 when every scenario passed, 1 otherwise.`,
		Example: `  nvmftest failover --scenario path-down
  nvmftest failover --scenario all -o json
  nvmftest failover --scenario ana-transition -a 192.0.2.10 -s 4420 --path 192.0.2.11:4420 \
      -n nqn.2014-08.com.example:array1 --control "/usr/local/bin/array-ctl --array a1"`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scenario == "" {
				return usagef("missing scenario: give it with --scenario NAME (%s, or all)", strings.Join(failover.Scenarios, ", "))
			}
			if scenario != "all" && !slices.Contains(failover.Scenarios, scenario) {
				return usagef("unknown --scenario %q: give one of %s, or all", scenario, strings.Join(failover.Scenarios, ", "))
			}
			if transport != "tcp" {
				return usagef("transport %q is not supported (use -t tcp)", transport)
			}
			if output != "normal" && output != "json" {
				return usagef("invalid -o/--output-format %q: use normal or json", output)
			}
			names := []string{scenario}
			if scenario == "all" {
				names = failover.Scenarios
			}
			base := failover.Config{NSID: nsid, ANAGroup: anaGroup, Before: before, Fault: fault, After: after}
			for _, id := range portIDs {
				if id == 0 || id > 0xFFFF {
					return usagef("invalid --port-id %d", id)
				}
				base.PortIDs = append(base.PortIDs, uint16(id))
			}
			if traddr != "" {
				if nqn == "" {
					return usagef("missing subsystem NQN: give it with -n/--nqn NQN")
				}
				base.Addrs = append([]string{net.JoinHostPort(traddr, trsvcid)}, paths...)
				base.SubNQN = nqn
				if len(base.Addrs) < 2 {
					return usagef("failover needs two paths: add --path HOST:PORT")
				}
			} else if len(paths) > 0 {
				return usagef("--path needs the first path given with -a/--traddr")
			}
			if control != "" {
				c, err := newControl(control)
				if err != nil {
					return err
				}
				base.Control = c
			}
			if hostnqn != "" {
				if err := checkNQN(hostnqn); err != nil {
					return usagef("invalid -q/--hostnqn: %v", err)
				}
			}
			var hid [16]byte
			if hostid != "" {
				var err error
				if hid, err = initiator.ParseHostID(hostid); err != nil {
					return usagef("invalid -I/--hostid: %v", err)
				}
			}
			if kato == 0 {
				kato = -1 // -k 0: keep-alive off, as for the other commands
			}
			if hostTraddr != "" && net.ParseIP(hostTraddr) == nil {
				return usagef("invalid -w/--host-traddr %q: give a local IP address", hostTraddr)
			}
			if tos < 0 || tos > 255 {
				return usagef("invalid -T/--tos %d: give 0-255", tos)
			}
			base.Host = initiator.MultipathOptions{
				Options: initiator.Options{HostNQN: hostnqn, HostID: hid, HeaderDigest: hdrDigest, DataDigest: dataDigest, Timeout: timeout, KATO: kato,
					ConnectTimeout: connTmo, HostTraddr: hostTraddr, HostIface: hostIface, TOS: tos},
				CtrlLossTmo:   ctrlLoss,
				FastIOFailTmo: fastFail,
			}
			if fastFail == 0 {
				base.Host.FastIOFailTmo = 1 // Linux's 0: fail at once (the option's zero value means off)
			}
			if connTmo < 0 {
				return usagef("invalid --connect-timeout %v: give a positive duration such as 5s", connTmo)
			}
			if reconnect > 0 {
				base.Host.ReconnectDelay, base.Host.ReconnectDelayMax = reconnect, 8*reconnect
			}
			var run *reports.Run
			if reportDir != "" {
				var err error
				if run, err = openRun(reportDir); err != nil {
					return err
				}
			}
			// Every scenario's configuration first: a usage error before
			// any scenario runs or prints.
			for _, n := range names {
				cfg := base
				cfg.Scenario = n
				if err := failover.Check(cfg); err != nil {
					return usagef("%v", err)
				}
			}
			var jsonOut *os.File
			if jsonFile != "" {
				// Made before the scenarios: a bad path must not cost their result.
				var err error
				if jsonOut, err = createOutput("--json", jsonFile); err != nil {
					return err
				}
				defer jsonOut.Close()
			}
			out := cmd.OutOrStdout()
			var reps []*failover.Report
			var traces []*capture.Dir
			failed := 0
			for _, n := range names {
				cfg := base
				cfg.Scenario = n
				if captureDir != "" {
					d, err := capture.NewDir(filepath.Join(captureDir, n))
					if err != nil {
						return fmt.Errorf("--capture: %v", err)
					}
					cfg.Capture = d
					traces = append(traces, d)
				}
				if output == "normal" {
					fmt.Fprintf(out, "== %s\n", n)
					cfg.Log = func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }
				}
				rep, err := failover.Run(cmd.Context(), cfg)
				var cerr *failover.ConfigError
				if errors.As(err, &cerr) {
					return usagef("%v", err)
				}
				if err != nil {
					if strings.Contains(err.Error(), "unknown scenario") || strings.Contains(err.Error(), "needs") {
						return usagef("%v", err)
					}
					return fmt.Errorf("%s: %v", n, err)
				}
				reps = append(reps, rep)
				if !rep.Pass {
					failed++
				}
				if output == "normal" {
					failover.WriteText(out, rep)
				}
			}
			if output == "json" {
				writeJSON(out, reps)
			}
			if jsonFile != "" {
				writeJSON(jsonOut, reps)
				if err := jsonOut.Close(); err != nil {
					return fmt.Errorf("--json %s: %v", jsonFile, err)
				}
			}
			if run != nil {
				for _, r := range reps {
					run.AddFailover(r)
				}
				for _, d := range traces {
					run.AddTraceFiles(reportDir, d.Files()...)
				}
				if err := saveRun(cmd.ErrOrStderr(), reportDir, run); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d scenarios failed", failed, len(reps))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&scenario, "scenario", "", "scenario `NAME` ("+strings.Join(failover.Scenarios, ", ")+", or all)")
	fs.StringVarP(&transport, "transport", "t", "tcp", "transport type (only tcp)")
	fs.StringVarP(&traddr, "traddr", "a", "", "address of the target's first path (default: the reference target in process)")
	fs.StringVarP(&trsvcid, "trsvcid", "s", "4420", "TCP `PORT` of the first path")
	fs.StringArrayVar(&paths, "path", nil, "a further path `HOST:PORT` (repeatable)")
	fs.StringVarP(&nqn, "nqn", "n", "", "subsystem NQN")
	fs.StringVarP(&hostnqn, "hostnqn", "q", "", "host NQN")
	fs.StringVarP(&hostid, "hostid", "I", "", "host ID as a UUID (default derived from the host NQN)")
	fs.StringVarP(&hostTraddr, "host-traddr", "w", "", "local IP `ADDRESS` every path connects from")
	fs.StringVarP(&hostIface, "host-iface", "f", "", "local network `INTERFACE` every path connects through (SO_BINDTODEVICE)")
	fs.IntVarP(&tos, "tos", "T", 0, "IP type of service of the connections (0: the system's)")
	fs.BoolVarP(&hdrDigest, "hdr-digest", "g", false, "request header digests")
	fs.BoolVarP(&dataDigest, "data-digest", "G", false, "request data digests")
	fs.Uint32Var(&nsid, "nsid", 1, "namespace ID")
	fs.UintSliceVar(&portIDs, "port-id", nil, "the target's port IDs of the paths, for the control (default 1,2,...)")
	fs.Lookup("port-id").DefValue = "" // the usage says the default; pflag would add "(default [])"
	fs.Uint32Var(&anaGroup, "ana-group", 1, "ANA group of the namespace, for set-ana-state")
	fs.StringVar(&control, "control", "", `command performing target-side actions, run as "CMD VERB key=value..."`)
	fs.DurationVar(&before, "before", time.Second, "I/O before the fault")
	fs.DurationVar(&fault, "fault", 3*time.Second, "how long the fault lasts")
	fs.DurationVar(&after, "after", 2*time.Second, "I/O after the path returns (at least the longest reconnect delay + 1s: lengthened if shorter)")
	fs.DurationVar(&timeout, "timeout", 2*time.Second, "host command timeout")
	newSeconds(fs, &kato, "keep-alive-tmo", "k", time.Second, "", "host keep-alive timeout in seconds (or with a unit: 500ms); 0 turns keep-alive off")
	newSeconds(fs, &ctrlLoss, "ctrl-loss-tmo", "l", 10*time.Minute, "forever", "ctrl_loss_tmo in seconds (or with a unit): how long a lost path reconnects before it is deleted; forever (or -1) never deletes it")
	newSeconds(fs, &fastFail, "fast-io-fail-tmo", "", -1, "off", "fast_io_fail_tmo in seconds (or with a unit): how long I/O waits for a lost path; off (or -1) waits as long as the path may come back")
	fs.DurationVar(&connTmo, "connect-timeout", 0, fmt.Sprintf("time limit of each TCP connect, reconnects included (default %v, or --timeout if shorter)", initiator.DefaultConnectTimeout))
	newSeconds(fs, &reconnect, "reconnect-delay", "c", 100*time.Millisecond, "", "first reconnect delay in seconds (or with a unit: 100ms); doubles up to 8x")
	fs.StringVarP(&output, "output-format", "o", "normal", "output format: normal or json")
	fs.StringVar(&jsonFile, "json", "", "also write the JSON report to `FILE`")
	fs.StringVar(&reportDir, "report-dir", "", "run directory: report.html with the failover timeline, summary.md, run.json (an existing one gains these scenarios)")
	fs.StringVar(&captureDir, "capture", "", "write a pcapng per connection, as the host sees it through the fault proxy, with the faults as packet comments, under `DIR`/SCENARIO")
	return cmd
}
