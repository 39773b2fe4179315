package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/reports"
)

func newReportMergeCmd() *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   "merge SHARD...",
		Short: "Merge the shards of a load from many hosts into one result",
		Long: `merge combines the results of 'nvmftest bench --shard I/N' (each shard's
--report-dir, its shard.json, or a pod log holding its printed result) into
one run directory: I/Os and bytes summed, IOPS and bandwidth summed per
interval aligned by absolute time, latency percentiles from the shards'
HdrHistograms merged (never averaged), each shard's row kept, and a warning
where shards' windows or clocks disagree or shards are missing.

  nvmftest report merge shard-0 shard-1 shard-2 shard-3 --report-dir merged
  nvmftest report merge pod-logs/*.log --report-dir merged`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("merge needs the shards' report directories (or shard.json files, or pod logs)")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			f, err := loadgen.ParseOutputFormat(format)
			if err != nil {
				return usagef("-o/--output-format: %v", err)
			}
			var shards []*reports.ShardResult
			for _, a := range args {
				s, err := reports.ReadShard(a)
				if err != nil {
					return usagef("%v", err)
				}
				shards = append(shards, s)
			}
			m, err := reports.MergeShards(shards)
			if err != nil {
				return usagef("%v", err)
			}
			run, err := openRun(dir)
			if err != nil {
				return err
			}
			errw := c.ErrOrStderr()
			for _, w := range m.Warnings {
				fmt.Fprintf(errw, "nvmftest: merge: warning: %s\n", w)
			}
			run.AddMerged(m)
			if err := saveShards(dir, m.Shards); err != nil {
				return err
			}
			if err := loadgen.WriteOutput(c.OutOrStdout(), m.Result, f); err != nil {
				return err
			}
			fmt.Fprintf(errw, "nvmftest: merged %d of %d shards into %s\n", len(m.Shards), m.Shards[0].Shards, filepath.Join(dir, "report.html"))
			return saveRun(errw, dir, run)
		},
	}
	cmd.Flags().StringVar(&dir, "report-dir", "merged", "run directory of the merged result: report.html, run.json, bench/fio.json, shards/")
	cmd.Flags().StringVarP(&format, "output-format", "o", "normal", "the merged result on stdout: normal, terse, json or json+")
	return cmd
}
