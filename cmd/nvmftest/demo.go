package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/demo"
)

func newDemoCmd() *cobra.Command {
	var o demo.Options
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the harness end to end against the embedded reference target and write a report",
		Long: `demo starts the reference target on loopback, discovers it, connects with
header and data digests, identifies the controller and namespace, writes and
verifies data through the in-capsule and R2T paths (recorded as a pcapng
trace), runs the conformance suites, a 4 KiB random-read benchmark and the
path-down failover scenario, and writes a run directory: report.html (open
it in a browser), summary.md, run.json, conformance/junit.xml, bench/ and
traces/. It needs nothing but this binary and takes about 30 seconds on
two cores.

Exit status: 0 when every step and check passed, 1 otherwise, 2 for bad
flags (a --report-dir it cannot write included).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Zero is demo.Options' "default": given on the command line
			// it would silently mean 15s, so it is refused.
			if o.LoadDuration <= 0 || o.LoadDuration > time.Hour {
				return usagef("--load-time %s: give a duration above 0 and up to 1h, e.g. 15s", o.LoadDuration)
			}
			if o.Depth <= 0 || o.Depth > 1024 {
				return usagef("--iodepth %d: give 1..1024", o.Depth)
			}
			if o.FailoverScale < 0.1 || o.FailoverScale > 100 {
				return usagef("--failover-scale %g: give a factor between 0.1 and 100", o.FailoverScale)
			}
			if o.ReportDir != "" {
				if err := writableDir(o.ReportDir); err != nil {
					return usagef("--report-dir %s: %v (give a directory nvmftest can write)", o.ReportDir, err)
				}
			}
			o.Command = append([]string{"nvmftest"}, os.Args[1:]...)
			_, err := demo.Run(cmd.Context(), cmd.OutOrStdout(), o)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.Address, "listen", "127.0.0.1:0", "where the reference target listens (port 0: a free one)")
	f.StringVar(&o.ReportDir, "report-dir", "", "run directory to write (default nvmftest-runs/demo-DATE-TIME)")
	f.DurationVar(&o.LoadDuration, "load-time", 15*time.Second, "how long the benchmark measures (after a ramp of a tenth of it)")
	f.IntVar(&o.Depth, "iodepth", 32, "queue depth of the benchmark")
	f.Float64Var(&o.FailoverScale, "failover-scale", 1, "stretch the failover scenario's phases (1 s before, 3 s fault, 2 s after) by this factor; the after phase is never shorter than the host's reconnect backoff needs (2 s)")
	return c
}
