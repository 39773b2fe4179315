package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/reports"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Compare run directories and re-render their reports",
		Long: `A run directory holds run.json, summary.md, report.html and the files
behind them (conformance/, bench/fio.json, bench/<job>.hlog, failover/).

  nvmftest report compare BASE NEW   compare two runs; exit 1 on regression
  nvmftest report html DIR           re-render report.html and summary.md from run.json
  nvmftest report merge DIR...       merge the shards of a load from many hosts (bench --shard)`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown report command %q (use compare, html or merge; see '%s --help')", args[0], c.CommandPath())
			}
			return usagef("report needs a command: compare, html or merge (see '%s --help')", c.CommandPath())
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newReportCompareCmd(), newReportHTMLCmd(), newReportMatrixCmd(), newReportMergeCmd())
	return cmd
}

// fraction is a flag value given as "10%" or "0.1".
type fraction struct{ v *float64 }

func (f fraction) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.FormatFloat(100**f.v, 'f', -1, 64) + "%"
}

func (f fraction) Type() string { return "percent" }

func (f fraction) Set(s string) error {
	v, err := parseFraction(s)
	if err != nil {
		return err
	}
	*f.v = v
	return nil
}

// parseFraction reads "10%" as 0.10 and "0.1" as 0.1; a bare number above
// 1 is refused as ambiguous.
func parseFraction(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a percentage (10%%) or a fraction (0.1)", s)
	case v < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case pct:
		return v / 100, nil
	case v > 1:
		return 0, fmt.Errorf("%q is ambiguous: write %s%% or a fraction such as 0.1", s, t)
	}
	return v, nil
}

func newReportCompareCmd() *cobra.Command {
	t := reports.DefaultThresholds()
	cmd := &cobra.Command{
		Use:   "compare BASE NEW",
		Short: "Compare a run against a baseline; exit 1 when it regressed",
		Long: `compare sets run NEW against run BASE (run directories or their run.json):
IOPS per job and direction, p50/p99/p99.9 latency, conformance checks that
passed in BASE and fail in NEW and new mandatory failures, failover
scenarios that passed and now fail or stall longer. What BASE has and NEW
lacks (a job, the conformance run, a check that passed and is now skipped
or not run, a scenario) is a regression too, unless --allow-missing. It
prints each metric BASE -> NEW with the change, marks regressions, and
exits 1 when any regression is beyond the thresholds (0 otherwise, 2 for
bad usage).`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("compare takes two runs, BASE and NEW, got %d arguments (see '%s --help')", len(args), c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			base, err := reports.Load(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			cur, err := reports.Load(args[1])
			if err != nil {
				return usagef("%v", err)
			}
			cmp := reports.Compare(base, cur, t)
			cmp.WriteText(c.OutOrStdout())
			if cmp.Regressed() {
				return errors.New("the new run regressed (see the REGRESSION lines)")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.Var(fraction{&t.IOPSDrop}, "iops-drop", "largest tolerated IOPS drop per job and direction, `10%` or 0.1")
	fl.Var(fraction{&t.LatencyRise}, "latency-rise", "largest tolerated rise of p50, p99 and p99.9 latency, `20%` or 0.2")
	fl.Var(fraction{&t.StallRise}, "stall-rise", "largest tolerated growth of a failover scenario's longest stall (and more than --stall-slack)")
	fl.DurationVar(&t.StallSlack, "stall-slack", t.StallSlack, "stall growth below this `DURATION` never counts")
	fl.BoolVar(&t.AllowConformanceRegressions, "allow-conformance-regressions", false, "show conformance regressions but do not fail on them")
	fl.BoolVar(&t.AllowMissing, "allow-missing", false, "show what BASE has and NEW lacks (jobs, checks, scenarios) but do not fail on it")
	return cmd
}

func newReportHTMLCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "html DIR",
		Short: "Re-render report.html and summary.md of a run directory from its run.json",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("html takes one run directory, got %d arguments (see '%s --help')", len(args), c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			r, err := reports.Load(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			dir := args[0]
			if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
				dir = filepath.Dir(dir)
			}
			if err := r.Rerender(dir); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s and %s\n", filepath.Join(dir, "report.html"), filepath.Join(dir, "summary.md"))
			return nil
		},
	}
}

func newReportMatrixCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "matrix NAME=RUN...",
		Short: "Put conformance verdicts of several targets side by side (Markdown)",
		Long: `matrix prints a Markdown table with one row per conformance check and one
column per target: PASS, FINDING (a divergence that run's profile
documents), FAIL, SKIP or NOT RUN, and "-" where a run did not include the
check. Each RUN is a run directory (or its run.json), a conformance report
directory or a results.json; NAME heads its column, e.g.

  nvmftest report matrix mine=out/array1 nvmet=out/nvmet spdk=out/spdk

A NAME given twice makes one column of both runs (a check skipped or left
out by one takes the other's verdict), e.g. a host's wire and behaviour runs:

  nvmftest report matrix linux=out/linux linux=out/linux-behaviour`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("matrix takes at least one NAME=RUN argument (see '%s --help')", c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			var runs []reports.NamedConformance
			for _, a := range args {
				name, path, ok := strings.Cut(a, "=")
				if !ok || name == "" || path == "" {
					return usagef("invalid argument %q: want NAME=RUN, e.g. spdk=out/spdk", a)
				}
				s, err := reports.LoadConformance(path)
				if err != nil {
					return usagef("%v", err)
				}
				runs = append(runs, reports.NamedConformance{Name: name, Summary: s})
			}
			_, err := io.WriteString(c.OutOrStdout(), reports.ConformanceMatrix(runs))
			return err
		},
	}
}
