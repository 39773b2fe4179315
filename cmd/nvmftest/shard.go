package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/reports"
)

// shardFlags are bench's flags for one shard of a load from many hosts.
type shardFlags struct {
	shard   string
	split   string
	startAt string
	print   bool

	s       loadgen.Shard
	sp      loadgen.ShardSplit
	at      time.Time
	hlogBuf bytes.Buffer // a copy of the interval log, for shard.json
}

func addShardFlags(c *cobra.Command, f *shardFlags) {
	fs := c.Flags()
	fs.StringVar(&f.shard, "shard", "", "run shard `I/N` (0-based) of the job: its share of numjobs, region or namespaces (--shard-split) and its own seed; the result goes to --report-dir (shard.json) for 'nvmftest report merge'")
	fs.StringVar(&f.split, "shard-split", "numjobs", "what a shard takes of each job: numjobs (its share of the clones), region (clones and a disjoint slice of offset/size) or nsid (its share of --nsid)")
	fs.StringVar(&f.startAt, "start-at", "", "start the load at `TIME` (RFC 3339, or unix seconds), after connecting, so shards' intervals line up; a shard that starts late records by how much")
	fs.BoolVar(&f.print, "print-shard-result", false, "print the shard's result to stdout, framed for 'nvmftest report merge' to find in a log (what Kubernetes pods do)")
}

// parse checks the shard flags; given says whether any was set.
func (f *shardFlags) parse(cmd *cobra.Command, reportDir string, now time.Time) error {
	var err error
	if f.sp, err = loadgen.ParseShardSplit(f.split); err != nil {
		return usagef("--shard-split %q: %v", f.split, err)
	}
	if f.shard != "" {
		if f.s, err = loadgen.ParseShard(f.shard); err != nil {
			return usagef("--shard %q: %v", f.shard, err)
		}
		if reportDir == "" && !f.print {
			return usagef("--shard %s: give --report-dir DIR for the shard's result (shard.json, fio.json, interval logs), or --print-shard-result", f.shard)
		}
	} else {
		if cmd.Flags().Changed("shard-split") {
			return usagef("--shard-split needs --shard I/N")
		}
		if f.print {
			return usagef("--print-shard-result needs --shard I/N")
		}
	}
	if f.startAt != "" {
		if f.at, err = parseStartAt(f.startAt); err != nil {
			return usagef("--start-at %q: %v", f.startAt, err)
		}
		if f.at.Sub(now) > 24*time.Hour {
			return usagef("--start-at %s is more than a day away: give a time within the next day (RFC 3339 with a zone, or unix seconds)", f.at.Format(time.RFC3339))
		}
	}
	return nil
}

// parseStartAt reads RFC 3339 (2026-12-07T18:30:00Z, fractions allowed)
// or unix seconds (1796668200, 1796668200.5).
func parseStartAt(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 && !math.IsInf(s, 0) {
		sec, frac := math.Modf(s)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("give RFC 3339 with a zone (2026-12-07T18:30:00Z) or unix seconds (1796668200)")
}

// waitStart waits until the start time, if there is one; Ctrl-C ends the
// wait. A time already past is no error: the shard starts now and its
// result records how late.
func (f *shardFlags) waitStart(ctx context.Context, errw io.Writer) error {
	if f.at.IsZero() {
		return nil
	}
	d := time.Until(f.at)
	if d <= 0 {
		fmt.Fprintf(errw, "nvmftest: --start-at %s passed %v ago: starting now (the result records the delay)\n", f.at.UTC().Format(time.RFC3339Nano), (-d).Round(time.Millisecond))
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		if sig := interrupt.Signal(ctx); sig != nil {
			return signalError{fmt.Sprintf("bench: interrupted while waiting for --start-at %s; no I/O was done", f.at.UTC().Format(time.RFC3339)), sig}
		}
		return ctx.Err()
	}
}

// record writes the shard's result: shard.json in the report directory,
// and the framed copy on out with --print-shard-result.
func (f *shardFlags) record(out io.Writer, reportDir string, res *loadgen.Result, interval time.Duration, interrupted string) error {
	if f.shard == "" {
		return nil
	}
	host, _ := os.Hostname()
	if n := os.Getenv("NODE_NAME"); n != "" {
		host = n // the Kubernetes node, set by the pod spec
	}
	sr, err := reports.NewShardResult(res, f.hlogBuf.Bytes(), reports.ShardMeta{Shard: f.s, Split: f.sp, Host: host,
		StartAt: f.at, Interval: interval, Interrupted: interrupted})
	if err != nil {
		return fmt.Errorf("shard result: %v", err)
	}
	if reportDir != "" {
		if err := sr.WriteFile(reportDir); err != nil {
			return fmt.Errorf("--report-dir %s: %v", reportDir, err)
		}
	}
	if f.print {
		return reports.PrintShard(out, sr)
	}
	return nil
}

// late says how late a shard started, for its summary line; "" if on time.
func (f *shardFlags) late(res *loadgen.Result) string {
	if f.at.IsZero() {
		return ""
	}
	if d := res.Start.Sub(f.at); d > 100*time.Millisecond {
		return fmt.Sprintf("shard %s started %v after --start-at", f.s, d.Round(time.Millisecond))
	}
	return ""
}
