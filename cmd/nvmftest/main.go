// Command nvmftest is the NVMe-over-Fabrics conformance and performance
// harness. The host-side subcommands speak like nvme-cli: discover,
// connect, id-ctrl, id-ns, list-ns, get-log, get-feature, read, write.
//
// Exit status: 0 on success, 1 when the target or the transport failed
// (one line on stderr says why) or a verdict failed, 2 for bad flags or
// arguments, 3 when no target could be reached (nothing answers, or the
// port does not speak NVMe/TCP), 130 (143 for SIGTERM) when a signal cut
// the command short.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/suites"
)

func main() {
	// The process is ours alone: target and bench may size GOMAXPROCS
	// (tests run commands inside the test binary and must not).
	ownProcess = true
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usagef makes a usageError (declared in target.go): exit status 2.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run executes the command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "nvmftest: internal error: %v\n", r)
			code = 1
		}
	}()
	ctx, stop := interrupt.Watch(context.Background())
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		if sig := interrupt.Signal(ctx); sig != nil && c != nil && c.Name() != "target" {
			// The command stopped early on the signal without saying so:
			// its result is not what a full run gives. (The target is a
			// server: stopping on a signal is how it ends, status 0.)
			fmt.Fprintf(stderr, "nvmftest: interrupted (terminating on signal %d, %v)\n", interrupt.ExitStatus(sig)-128, sig)
			return interrupt.ExitStatus(sig)
		}
		return 0
	}
	msg := strings.TrimSpace(err.Error())
	if strings.HasPrefix(msg, "unknown command ") {
		msg = unknownCommand(msg)
	}
	var ec interface{ ExitCode() int }
	if sig := interrupt.Signal(ctx); sig != nil && !errors.As(err, &ec) {
		// Whatever the command failed with once the signal cancelled its
		// context (mostly "context canceled") is the signal's doing: say
		// so, and exit as a shell does for a process the signal ended.
		if errors.Is(err, context.Canceled) {
			msg = "interrupted"
		}
		fmt.Fprintf(stderr, "nvmftest: %s (terminating on signal %d, %v)\n", msg, interrupt.ExitStatus(sig)-128, sig)
		return interrupt.ExitStatus(sig)
	}
	if errors.As(err, &ec) {
		fmt.Fprintf(stderr, "nvmftest: %s\n", msg)
		return ec.ExitCode()
	}
	if isCobraUsage(msg) {
		fmt.Fprintf(stderr, "nvmftest: %s\n", msg)
		return 2
	}
	if unreachable(err) {
		fmt.Fprintf(stderr, "nvmftest: %s\n", msg)
		return suites.ExitUnreachable
	}
	fmt.Fprintf(stderr, "nvmftest: %s\n", msg)
	return 1
}

// signalError is a command's error after the signal that cut it short:
// the exit status is interrupt.ExitStatus's.
type signalError struct {
	msg string
	sig os.Signal
}

func (e signalError) Error() string { return e.msg }
func (e signalError) ExitCode() int { return interrupt.ExitStatus(e.sig) }

// syscallSignal is signal number n (SIGINT when n is not one).
func syscallSignal(n int) os.Signal {
	if n <= 0 {
		return os.Interrupt
	}
	return syscall.Signal(n)
}

// unknownCommand puts cobra's unknown-command error, with its "Did you
// mean this?" lines, on one line, and says where the commands are listed.
func unknownCommand(msg string) string {
	first, rest, _ := strings.Cut(msg, "\n")
	var sugg []string
	for _, l := range strings.Split(rest, "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "Did you mean this?" {
			sugg = append(sugg, l)
		}
	}
	if len(sugg) > 0 {
		first += "; did you mean " + strings.Join(sugg, " or ") + "?"
	}
	return first + " (see 'nvmftest --help' for the commands)"
}

// isCobraUsage recognizes the usage errors cobra makes itself.
func isCobraUsage(msg string) bool {
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "required flag", "invalid argument", "flag needs an argument", "bad flag syntax"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "nvmftest",
		Short: "NVMe over Fabrics (NVMe/TCP) conformance and performance harness",
		Long: `nvmftest tests NVMe/TCP targets and hosts. Its host commands follow
nvme-cli: the target is given with -t tcp -a ADDRESS -s PORT -n SUBNQN.

Where nvme-cli's short flags collide with the address flags, nvmftest uses:
  read/write:   -S/--start-block (nvme-cli: -s), --nsid (nvme-cli: -n)
  id-ns, get-log, get-feature: --nsid (nvme-cli: -n), --lsp, --sel (nvme-cli: -s)
  get-log:      -i/--log-id as nvme-cli; admin-only commands create no I/O
                queues, so they take no -i/--nr-io-queues or -Q/--queue-size.
  -S/--dhchap-secret and -C/--dhchap-ctrl-secret, -w/--host-traddr,
  -f/--host-iface, -T/--tos, -l/--ctrl-loss-tmo and -c/--reconnect-delay
  have their short form where the command's own flags leave it free:
  read/write/compare take -S for the start block (--dhchap-secret there),
  -c for the block count and -f for FUA; get-log's and get-feature's -l is
  the length, get-feature's and set-feature's -f the feature ID.
  A host command makes its association and ends it when it is done:
  nvmftest keeps no controller between commands (see 'disconnect').`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("nvmftest {{.Version}}\n")
	root.SetHelpCommand(newHelpCmd(root))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see '%s --help')", err, c.CommandPath())
	})
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newDiscoverCmd(),
		newConnectCmd(),
		newIDCtrlCmd(),
		newIDNSCmd(),
		newListNSCmd(),
		newGetLogCmd(),
		newGetFeatureCmd(),
		newReadCmd(),
		newWriteCmd(),
		newCompareCmd(),
		newWriteZeroesCmd(),
		newFlushCmd(),
		newDSMCmd(),
		newSetFeatureCmd(),
		newListSubsysCmd(),
		newDisconnectCmd(),
		newVersionCmd(),
	)
	root.AddCommand(newTargetCmd(), newDemoCmd(), newConformCmd())
	root.AddCommand(newBenchCmd())
	root.AddCommand(newFailoverCmd())
	root.AddCommand(newReportCmd())
	root.AddCommand(newK8sCmd())
	root.AddCommand(newFuzzCmd(), newReplayCmd())
	root.AddCommand(newConformHostCmd())
	return root
}

// noArgs rejects positional arguments with a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q (see '%s --help')", c.Name(), args, c.CommandPath())
	}
	return nil
}

// unreachable reports whether err says the target could not be reached at
// all (no answer within the connect timeout, refused, no route), which
// every command reports with the exit status conform uses for it (3),
// apart from a command that reached its target and then failed (1).
func unreachable(err error) bool {
	var cte *initiator.ConnectTimeoutError
	var nn *initiator.NotNVMeTCPError
	var ni *initiator.NoICRespError
	var dns *net.DNSError
	// A port that is not NVMe/TCP, or says nothing, has no target to
	// talk to either (conform gives it 3 as well).
	return errors.As(err, &cte) || errors.As(err, &nn) || errors.As(err, &ni) || errors.As(err, &dns) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
