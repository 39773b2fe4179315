package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/fuzz"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/reports"
)

// fuzzFound is a run with findings: exit status 1.
type fuzzFound struct{ msg string }

func (e fuzzFound) Error() string { return e.msg }
func (e fuzzFound) ExitCode() int { return 1 }

func newFuzzCmd() *cobra.Command {
	var (
		transport, traddr, trsvcid, nqn, hostnqn, hostid string
		corpus, reportDir, control, watch, output        string
		seed                                             uint64
		cases, budget, maxFindings                       int
		duration, respTmo, liveTmo, recoverTmo, every    time.Duration
		noBuiltin, noGrammar                             bool
	)
	c := &cobra.Command{
		Use:   "fuzz -t tcp -a ADDR -s PORT -n SUBNQN [--duration D | --cases N]",
		Short: "Find crashes and hangs in an NVMe/TCP target by structure-aware fuzzing over the wire",
		Long: `fuzz sends the target sequences of PDUs over one or more connections, made
from seeds (the Linux host captures nvmftest carries, and the pcap/pcapng
files of --corpus) and from a grammar of valid exchanges (ICReq, Connect
with its data, Identify, Get Log Page, Writes in-capsule and by R2T and
H2CData, Reads, Keep Alive, Disconnect, digests on and off), mutated by
mutators that know the format: every header field (type, flags, HLEN, PDO,
PLEN, digests), SQE and SGL fields, Connect and ICReq fields, H2CData
CCCID/TTAG/DATAO/DATAL, boundary values, truncation and splitting at any
byte, duplicated, reordered and repeated PDUs, PDUs on the wrong queue,
before Connect or after Disconnect. The same --seed gives the same cases.

After each case the liveness oracle opens a fresh connection that must
get through ICReq, Connect, enabling the controller and Identify within
--live-timeout: a refused or reset connection, or a silent one, is a
finding (after a second try a second later). Each unique finding (by the
oracle and the fields and operations mutated) is re-run, minimized by
delta debugging over the PDUs and then their bytes, and saved in
--report-dir as a replay file and a pcapng trace of the reproduction;
'nvmftest replay FILE' sends it again.

A target that died must come back for fuzzing to go on: --control CMD is
run as "CMD target-restart" after a finding (exit 0 once the target
listens again; 3 unsupported), and as "CMD target-alive" after each case
(exit 0: alive) unless --watch CMD is given, which is run as it is after
each case (exit 0: alive). Without them fuzz waits --recover-timeout for
the target to come back (a supervisor restarting it) and stops otherwise.

Exit status: 0 no finding, 1 findings, 2 bad flags, 3 target unreachable
before the first case, 130 interrupted (what was found is reported).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTargetAddr(transport, traddr, trsvcid); err != nil {
				return err
			}
			if nqn == "" {
				return usagef("missing subsystem NQN: give it with -n/--nqn NQN")
			}
			if err := checkNQN(nqn); err != nil {
				return usagef("invalid -n/--nqn: %v", err)
			}
			if hostnqn != "" {
				if err := checkNQN(hostnqn); err != nil {
					return usagef("invalid -q/--hostnqn: %v", err)
				}
			}
			if cases < 0 || duration < 0 || every <= 0 || respTmo <= 0 || liveTmo <= 0 || recoverTmo <= 0 || budget < 0 {
				return usagef("--cases, --duration and --minimize-budget must not be negative; the timeouts and --progress-interval must be positive")
			}
			if cases == 0 && duration == 0 {
				return usagef("give a bound: --duration D (e.g. 10m) or --cases N")
			}
			if output != "normal" && output != "json" {
				return usagef("invalid -o/--output-format %q: want normal or json", output)
			}
			if noBuiltin && noGrammar && corpus == "" {
				return usagef("--no-builtin-seeds and --no-grammar leave nothing to mutate: give --corpus DIR")
			}
			id := fuzz.Identity{SubNQN: nqn, HostNQN: hostnqn}
			if hostid != "" {
				h, err := initiator.ParseHostID(hostid)
				if err != nil {
					return usagef("invalid -I/--hostid: %v", err)
				}
				id.HostID = h
			}
			var seeds []*fuzz.Case
			if !noBuiltin {
				s, err := fuzz.BuiltinSeeds(id)
				if err != nil {
					return fmt.Errorf("built-in seeds: %v", err)
				}
				seeds = append(seeds, s...)
			}
			if corpus != "" {
				s, err := fuzz.LoadCorpus(corpus, id)
				if err != nil {
					return usagef("--corpus: %v (give a directory of pcap or pcapng captures of NVMe/TCP hosts)", err)
				}
				seeds = append(seeds, s...)
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(time.Now().UnixNano())
			}
			cfg := fuzz.Config{
				Addr: net.JoinHostPort(traddr, trsvcid), Identity: id, Seed: seed, Cases: cases, Duration: duration,
				Seeds: seeds, NoGrammar: noGrammar, ResponseTimeout: respTmo, LiveTimeout: liveTmo,
				RecoverTimeout: recoverTmo, MinimizeBudget: budget, MaxFindings: maxFindings,
				Progress: cmd.ErrOrStderr(), ProgressEvery: every,
			}
			if budget == 0 {
				cfg.MinimizeBudget = -1
			}
			if control != "" {
				argv := strings.Fields(control)
				if _, err := exec.LookPath(argv[0]); err != nil {
					return usagef("invalid --control %q: %v (give a command nvmftest can run)", control, err)
				}
				ctl := fuzz.CommandControl{Argv: argv}
				cfg.Restart = func(ctx context.Context) error { _, err := ctl.Do(ctx, "target-restart"); return err }
				cfg.Alive = func(ctx context.Context) error { _, err := ctl.Do(ctx, "target-alive"); return err }
			}
			if watch != "" {
				argv := strings.Fields(watch)
				if _, err := exec.LookPath(argv[0]); err != nil {
					return usagef("invalid --watch %q: %v (give a command nvmftest can run)", watch, err)
				}
				cfg.Alive = func(ctx context.Context) error {
					ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
					if err != nil {
						return fmt.Errorf("--watch %s: %v: %s", watch, err, strings.TrimSpace(string(out)))
					}
					return nil
				}
			}
			var run *reports.Run
			if reportDir != "" {
				r, err := openRun(reportDir)
				if err != nil {
					return err
				}
				run = r
				cfg.FindingsDir = filepath.Join(reportDir, "fuzz")
			}
			f, err := fuzz.New(cfg)
			if err != nil {
				return usagef("%v", err)
			}
			// The target must be there before anything is said about the
			// run: one line and exit 3 if it is not.
			if err := fuzz.Probe(cmd.Context(), cfg.Addr, cfg.Identity, liveTmo); err != nil {
				if sig := interrupt.Signal(cmd.Context()); sig != nil {
					return signalError{"interrupted before the first case", sig}
				}
				return targetUnreachable{fmt.Sprintf("cannot reach %s at %s: %v (nothing was sent)", nqn, cfg.Addr, err)}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "fuzz: %s at %s, seed %d (--seed %d repeats these cases), %d seed traces%s\n",
				nqn, cfg.Addr, seed, seed, len(seeds), map[bool]string{true: ", no grammar", false: " and the grammar"}[noGrammar])
			ctx := cmd.Context()
			sum, err := f.Run(ctx)
			if err != nil {
				if sig := interrupt.Signal(ctx); sig != nil {
					return signalError{"interrupted before the first case", sig}
				}
				var le *fuzz.LivenessError
				if errors.As(err, &le) {
					return targetUnreachable{fmt.Sprintf("cannot reach %s at %s: %v (nothing was sent)", nqn, cfg.Addr, err)}
				}
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), f.ProgressLine())
			if run != nil {
				paths, err := fuzz.WriteReports(cfg.FindingsDir, sum)
				if err != nil {
					return fmt.Errorf("report directory %s: %v", reportDir, err)
				}
				var traces []string
				for _, fd := range sum.Findings {
					if fd.Trace != "" {
						traces = append(traces, fd.Trace)
					}
				}
				run.AddTraceFiles(reportDir, traces...)
				fmt.Fprintf(cmd.ErrOrStderr(), "fuzz reports: %s\n", strings.Join(paths, ", "))
				if err := saveRun(cmd.ErrOrStderr(), reportDir, run); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				b, _ := json.MarshalIndent(sum, "", "  ")
				fmt.Fprintln(out, string(b))
			} else {
				writeFuzzSummary(out, sum)
			}
			if sig := interrupt.Signal(ctx); sig != nil || sum.Interrupted {
				if sig == nil {
					sig = os.Interrupt
				}
				return signalError{fmt.Sprintf("fuzz interrupted after %d cases; %d findings kept", sum.Cases, len(sum.Findings)), sig}
			}
			if n := len(sum.Findings); n > 0 {
				msg := fmt.Sprintf("%d findings in %d cases", n, sum.Cases)
				if sum.Stopped != "" {
					msg += "; stopped: " + sum.Stopped
				}
				return fuzzFound{msg}
			}
			if sum.Stopped != "" {
				return fmt.Errorf("fuzz stopped: %s", sum.Stopped)
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVarP(&transport, "transport", "t", "tcp", "transport type (only tcp)")
	fs.StringVarP(&traddr, "traddr", "a", "", "transport address of the target (required)")
	fs.StringVarP(&trsvcid, "trsvcid", "s", "4420", "transport service ID (TCP port)")
	fs.StringVarP(&nqn, "nqn", "n", "", "NVM subsystem NQN the cases and the liveness oracle connect to (required)")
	fs.StringVarP(&hostnqn, "hostnqn", "q", "", "host NQN (default /etc/nvme/hostnqn or a generated one)")
	fs.StringVarP(&hostid, "hostid", "I", "", "host ID as a UUID (default derived from the host NQN)")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (e.g. 10m)")
	fs.IntVar(&cases, "cases", 0, "stop after this many cases")
	fs.Uint64Var(&seed, "seed", 0, "seed of the case generator (default: from the clock, printed); the same seed gives the same cases")
	fs.StringVar(&corpus, "corpus", "", "directory of pcap/pcapng captures of NVMe/TCP hosts to add as seeds")
	fs.BoolVar(&noBuiltin, "no-builtin-seeds", false, "leave out the built-in Linux host captures")
	fs.BoolVar(&noGrammar, "no-grammar", false, "mutate only the seed captures, never a generated exchange")
	fs.StringVar(&reportDir, "report-dir", "", "run directory: fuzz/ with fuzz.json, junit.xml, fuzz.html and each finding's replay file and pcapng trace; run.json and report.html beside it")
	fs.StringVar(&control, "control", "", `target-side command, run as "CMD target-restart" after a finding and "CMD target-alive" after each case`)
	fs.StringVar(&watch, "watch", "", "command run after each case: exit 0 says the target (process) is alive")
	fs.DurationVar(&respTmo, "response-timeout", 250*time.Millisecond, "how long a case waits for each answer before going on without waiting")
	fs.DurationVar(&liveTmo, "live-timeout", 5*time.Second, "time limit of the liveness oracle (ICReq, Connect, enable, Identify on a fresh connection)")
	fs.DurationVar(&recoverTmo, "recover-timeout", 30*time.Second, "how long to wait for the target to come back after a finding")
	fs.IntVar(&budget, "minimize-budget", 200, "runs a minimization may make (0: do not minimize)")
	fs.DurationVar(&every, "progress-interval", 5*time.Second, "how often the progress line is printed (stderr)")
	fs.IntVar(&maxFindings, "max-findings", 0, "stop after this many unique findings (0: no limit)")
	fs.StringVarP(&output, "output-format", "o", "normal", "output format: normal or json")
	return c
}

// writeFuzzSummary prints the run's result for a person.
func writeFuzzSummary(w io.Writer, sum *fuzz.Summary) {
	fmt.Fprintf(w, "fuzz: %s (%s), seed %d: %d cases in %v, %d unique findings\n", sum.Target, sum.SubNQN, sum.Seed, sum.Cases, sum.Elapsed.Round(time.Millisecond), len(sum.Findings))
	for i, f := range sum.Findings {
		state := "reproduced"
		switch {
		case f.Flaky:
			state = "flaky (did not fail again)"
		case !f.Reproduced:
			state = "not confirmed"
		}
		fmt.Fprintf(w, "\nfinding %d: %s\n  %s\n  first after %d cases (%v), seen %d times; %s; minimized from %d PDUs/%d bytes to %d/%d\n",
			i+1, f.Signature, f.Detail, f.AfterCases, f.After.Round(time.Millisecond), f.Count, state, f.Steps, f.Bytes, f.MinSteps, f.MinBytes)
		if len(f.Anomalies) > 0 {
			fmt.Fprintf(w, "  malformed in the minimal case: %s\n", strings.Join(f.Anomalies, ", "))
		}
		if len(f.Aliases) > 0 {
			fmt.Fprintf(w, "  also reached by: %s\n", strings.Join(f.Aliases, "; "))
		}
		if f.Replay != "" {
			fmt.Fprintf(w, "  replay: nvmftest replay %s -a ADDR -s PORT\n", f.Replay)
		}
		if f.Trace != "" {
			fmt.Fprintf(w, "  trace:  %s\n", f.Trace)
		}
		fmt.Fprintf(w, "%s", indent(f.HexDump, "  "))
	}
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
