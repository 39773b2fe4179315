package main

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/fuzz"
	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// replayReproduced is a replay after which the target failed the
// liveness oracle: exit status 1.
type replayReproduced struct{ msg string }

func (e replayReproduced) Error() string { return e.msg }
func (e replayReproduced) ExitCode() int { return 1 }

func newReplayCmd() *cobra.Command {
	var (
		transport, traddr, trsvcid, nqn, hostnqn, captureFile string
		respTmo, liveTmo                                      time.Duration
	)
	c := &cobra.Command{
		Use:   "replay FILE -a ADDR -s PORT",
		Short: "Send a fuzz finding's reproducer again and say whether the target still dies",
		Long: `replay reads a replay file written by 'nvmftest fuzz' (FILE.replay.json,
format nvmftest-fuzz-replay/1: the PDU bytes per connection, see README
"Fuzzing"), checks that the target is alive, sends the PDUs, and runs the
liveness oracle (a fresh connection through ICReq, Connect, enable and
Identify within --live-timeout).

The subsystem is the file's unless -n gives another (the Connects in the
file are rewritten for it, as is the host NQN with -q).

Exit status: 0 the target survived (not reproduced), 1 the target failed
the oracle (reproduced), 2 bad flags or file, 3 the target was not alive
before the replay.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("replay takes one replay file, got %d arguments (see '%s --help')", len(args), c.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTargetAddr(transport, traddr, trsvcid); err != nil {
				return err
			}
			rf, err := fuzz.ReadReplay(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			c, err := rf.ToCase()
			if err != nil {
				return usagef("%s: %v", args[0], err)
			}
			if nqn == "" {
				nqn = rf.SubNQN
			}
			if nqn == "" {
				return usagef("%s names no subsystem: give it with -n/--nqn NQN", args[0])
			}
			if err := checkNQN(nqn); err != nil {
				return usagef("invalid -n/--nqn: %v", err)
			}
			if hostnqn == "" {
				hostnqn = rf.HostNQN
			}
			fuzz.Retarget(c, nqn, hostnqn)
			var rec *capture.File
			if captureFile != "" {
				if rec, err = capture.CreateFile(captureFile, "nvmftest replay "+args[0]); err != nil {
					return usagef("--capture %s: %v (give a file nvmftest can write)", captureFile, err)
				}
				defer rec.Close()
			}
			var recorder capture.Recorder
			if rec != nil {
				recorder = rec
			}
			addr := net.JoinHostPort(traddr, trsvcid)
			res, err := fuzz.Replay(cmd.Context(), fuzz.ReplayConfig{Addr: addr, Identity: fuzz.Identity{SubNQN: nqn, HostNQN: hostnqn},
				ResponseTimeout: respTmo, LiveTimeout: liveTmo}, c, recorder)
			if err != nil {
				if sig := interrupt.Signal(cmd.Context()); sig != nil {
					return signalError{"replay interrupted", sig}
				}
				var le *fuzz.LivenessError
				if errors.As(err, &le) {
					return targetUnreachable{fmt.Sprintf("%s at %s: %v (nothing was sent)", nqn, addr, err)}
				}
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "replay %s: %d PDUs on %d connections to %s; the target's reaction: %s\n", args[0], len(c.Steps), c.Conns(), addr, res.Reaction)
			if res.Reproduced {
				return replayReproduced{fmt.Sprintf("reproduced: the target failed the liveness oracle after the replay (%v)", res.Liveness)}
			}
			fmt.Fprintln(out, "not reproduced: the target is still alive (ICReq, Connect, enable and Identify on a fresh connection)")
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVarP(&transport, "transport", "t", "tcp", "transport type (only tcp)")
	fs.StringVarP(&traddr, "traddr", "a", "", "transport address of the target (required)")
	fs.StringVarP(&trsvcid, "trsvcid", "s", "4420", "transport service ID (TCP port)")
	fs.StringVarP(&nqn, "nqn", "n", "", "subsystem NQN (default: the replay file's)")
	fs.StringVarP(&hostnqn, "hostnqn", "q", "", "host NQN (default: the replay file's)")
	fs.StringVar(&captureFile, "capture", "", "write a pcapng trace of the replay to `FILE`")
	fs.DurationVar(&respTmo, "response-timeout", 250*time.Millisecond, "how long to wait for each answer")
	fs.DurationVar(&liveTmo, "live-timeout", 5*time.Second, "time limit of the liveness oracle")
	return c
}
