// Command nvmftest is the NVMe-over-Fabrics conformance and performance
// harness. The host-side subcommands speak like nvme-cli: discover,
// connect, id-ctrl, id-ns, list-ns, get-log, get-feature, read, write.
//
// Exit status: 0 on success, 1 when the target or the transport failed
// (one line on stderr says why), 2 for bad flags or arguments.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	msg := strings.TrimSpace(err.Error())
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		fmt.Fprintf(stderr, "nvmftest: %s\n", msg)
		return ec.ExitCode()
	}
	if isCobraUsage(msg) {
		fmt.Fprintf(stderr, "nvmftest: %s\n", msg)
		return 2
	}
	fmt.Fprintf(stderr, "nvmftest: %s\n", msg)
	return 1
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
                queues, so they take no -i/--nr-io-queues or -Q/--queue-size.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
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
	)
	root.AddCommand(newTargetCmd(), newDemoCmd(), newConformCmd())
	root.AddCommand(newBenchCmd())
	root.AddCommand(newFailoverCmd())
	root.AddCommand(newReportCmd())
	return root
}

// noArgs rejects positional arguments with a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q (see '%s --help')", c.Name(), args, c.CommandPath())
	}
	return nil
}
