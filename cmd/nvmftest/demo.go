package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/demo"
)

func newDemoCmd() *cobra.Command {
	var o demo.Options
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the harness end to end against the embedded reference target",
		Long: `demo starts the reference target on loopback, discovers it, connects with
header and data digests, identifies the controller and namespace, writes and
verifies data through the in-capsule and R2T paths, and runs a short 4 KiB
random-read load. It needs nothing but this binary.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.LoadDuration < 0 || o.LoadDuration > time.Hour {
				return usagef("--load-time %s: give a duration between 0 and 1h, e.g. 3s", o.LoadDuration)
			}
			if o.Depth < 0 || o.Depth > 1024 {
				return usagef("--iodepth %d: give 1..1024", o.Depth)
			}
			return demo.Run(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.Address, "listen", "127.0.0.1:0", "where the reference target listens (port 0: a free one)")
	f.DurationVar(&o.LoadDuration, "load-time", 3*time.Second, "how long the random-read load runs")
	f.IntVar(&o.Depth, "iodepth", 32, "queue depth of the load")
	return c
}
