package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/target"
)

type benchFlags struct {
	conn     connFlags
	nsid     string
	fio      map[string]*string
	histLog  string
	series   string
	interval time.Duration
	progress string
	embedded string
	output   string
	report   string
	minimal  bool
	format   loadgen.OutputFormat
}

// benchFioFlags are the fio options given as flags, in the order they
// are applied (bs before bssplit, rw before rwmix*).
var benchFioFlags = []struct{ name, usage string }{
	{"name", "job name"},
	{"rw", "read, write, randread, randwrite, rw (readwrite) or randrw"},
	{"rwmixread", "percent of reads in a mixed job (default 50)"},
	{"rwmixwrite", "percent of writes in a mixed job"},
	{"bs", "block size, e.g. 4k (default 4k)"},
	{"bssplit", "block sizes with weights, e.g. 4k/50:64k/30:1m/20"},
	{"iodepth", "I/Os in flight per clone (default 1)"},
	{"numjobs", "clones of the job, each its own I/O queue and TCP connection (default 1)"},
	{"runtime", "run time after ramp_time: seconds or a duration (10, 500ms, 2m)"},
	{"time_based", "run for runtime, looping over the region"},
	{"ramp_time", "run this long before measuring"},
	{"size", "region size in bytes (and I/O amount without time_based), e.g. 1g (default: to the end)"},
	{"offset", "region start in bytes"},
	{"norandommap", "random offsets may repeat within a pass"},
	{"random_distribution", "random (uniform) or zipf:THETA, e.g. zipf:1.2"},
	{"rate_iops", "issue at most this many I/Os per second per clone; latency counts from each I/O's intended issue time"},
	{"verify", "crc32c: write self-checking blocks, check every block read, read back what a write job wrote"},
	{"randseed", "seed of the random offsets and mixes"},
}

func newBenchCmd() *cobra.Command {
	f := &benchFlags{conn: connFlags{defPort: "4420"}, fio: map[string]*string{}}
	c := &cobra.Command{
		Use:   "bench [JOBFILE...]",
		Short: "Measure IOPS and tail latency with fio's options (fio-compatible JSON)",
		Long: `bench runs fio-style load against an NVMe/TCP target and reports IOPS,
bandwidth and latency as fio does (--output-format=json is fio's JSON).

Give the job with fio's options as flags, or fio job files ([global] and
one section per job; flags are defaults that [global] and the sections
override). Job files may also name where each job runs with traddr=,
trsvcid=, subnqn= and nsid= (default: the -a/-s/-n/--nsid flags).

Latency is recorded per I/O in HdrHistograms. With rate_iops, lat counts
from each I/O's intended issue time, so a stalled target shows in the tail
(coordinated omission); clat counts from when it was handed to the queue.

  nvmftest bench -t tcp -a 10.0.0.5 -s 4420 -n NQN --rw randread --bs 4k --iodepth 32 --runtime 30 --time_based
  nvmftest bench --embedded null:1GiB --rw randrw --rwmixread 70 --iodepth 16 --numjobs 2 --runtime 10s --time_based
  nvmftest bench -a 10.0.0.5 -n NQN jobs.fio --output-format json > out.json`,
		RunE: func(cmd *cobra.Command, args []string) error { return runBench(cmd, f, args) },
	}
	addConnFlags(c, &f.conn)
	fs := c.Flags()
	fs.StringVar(&f.nsid, "nsid", "1", "namespace IDs the jobs run on: 1, 1,2 or 1-4 (each its own job)")
	for _, o := range benchFioFlags {
		f.fio[o.name] = fs.String(o.name, "", o.usage)
		if o.name == "time_based" || o.name == "norandommap" {
			fs.Lookup(o.name).NoOptDefVal = "1"
		}
	}
	fs.StringVar(&f.histLog, "write_hist_log", "", "write an HdrHistogram interval log of latency to `FILE`")
	fs.StringVar(&f.series, "write_series", "", "write per-interval IOPS, bandwidth and latency percentiles as CSV to `FILE`")
	fs.DurationVar(&f.interval, "status-interval", time.Second, "interval of the series, the log and the progress line")
	fs.StringVar(&f.progress, "progress", "auto", "live progress line on stderr: auto (when a terminal), always, never")
	fs.Lookup("output-format").Usage = "fio's output formats: normal, terse, json or json+, or a comma list (normal,json)"
	fs.BoolVar(&f.minimal, "minimal", false, "fio's terse output (--output-format terse)")
	fs.StringVar(&f.output, "output", "", "write the report to `FILE` instead of standard output (fio's --output)")
	fs.StringVar(&f.report, "report-dir", "", "run directory: report.html, summary.md, run.json, bench/fio.json and HdrHistogram logs (an existing one gains this run)")
	fs.StringVar(&f.embedded, "embedded", "", "run against an in-process reference target with one namespace `BACKEND:SIZE` (null:1GiB, mem:256MiB); no -a/-n needed")
	return c
}

// benchJobs builds the jobs from the flags and job files.
func benchJobs(cmd *cobra.Command, f *benchFlags, files []string) ([]*loadgen.Job, error) {
	base := loadgen.NewJob("bench")
	for _, o := range benchFioFlags {
		fl := cmd.Flags().Lookup(o.name)
		if !fl.Changed {
			continue
		}
		if err := base.Set(o.name, *f.fio[o.name]); err != nil {
			return nil, usagef("--%v", err)
		}
	}
	if len(files) == 0 {
		return []*loadgen.Job{base}, nil
	}
	var jobs []*loadgen.Job
	for fi, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, usagef("job file: %v", err)
		}
		js, err := loadgen.ParseJobFile(data, base)
		if err != nil {
			return nil, usagef("%s: %v", name, err)
		}
		if fi > 0 {
			js[0].Stonewall = true // fio separates job files by a stonewall
		}
		jobs = append(jobs, js...)
	}
	return jobs, nil
}

func runBench(cmd *cobra.Command, f *benchFlags, args []string) (err error) {
	ctx := cmd.Context()
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.format, err = loadgen.ParseOutputFormat(f.conn.output); err != nil {
		return usagef("-o/--output-format: %v", err)
	}
	if f.minimal {
		f.format = loadgen.FormatTerse
	}
	f.conn.output = "normal" // what the shared check knows; f.format rules here
	jobs, err := benchJobs(cmd, f, args)
	if err != nil {
		return err
	}
	nsids, err := loadgen.ParseNSIDs(f.nsid)
	if err != nil {
		return usagef("--nsid %q: %v", f.nsid, err)
	}
	switch f.progress {
	case "auto", "always", "never":
	default:
		return usagef("--progress %q: use auto, always or never", f.progress)
	}
	if f.interval < 10*time.Millisecond {
		return usagef("--status-interval %s: give at least 10ms", f.interval)
	}
	for _, j := range jobs {
		if j.TimeBased && j.Runtime <= 0 {
			return usagef("job %s: time_based needs a runtime (--runtime 10)", j.Name)
		}
	}
	if f.embedded != "" {
		// The embedded target has its own address and NQN: a -a or -n
		// given too means the user thinks they load another target.
		for _, name := range []string{"traddr", "trsvcid", "nqn"} {
			if cmd.Flags().Changed(name) {
				return usagef("--embedded runs its own target, so --%s has no effect: drop --embedded to load the target at -a/-s/-n, or drop --%s", name, name)
			}
		}
		ns, perr := parseNSFlag(f.embedded)
		if perr != nil {
			return usagef("--embedded %q: %v", f.embedded, perr)
		}
		ns.NSID = 1
		cfg := target.DefaultConfig()
		cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
		cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{ns}
		tg, terr := target.New(cfg)
		if terr != nil {
			return usagef("--embedded %q: %v", f.embedded, terr)
		}
		if terr := tg.Start(); terr != nil {
			return fmt.Errorf("embedded target: %v", terr)
		}
		defer tg.Close()
		host, port, _ := net.SplitHostPort(tg.Addrs()[0].String())
		f.conn.traddr, f.conn.trsvcid, f.conn.nqn = host, port, cfg.Subsystems[0].NQN
	}
	if f.conn.traddr == "" {
		for _, j := range jobs {
			if j.Options["traddr"] == "" {
				return usagef("missing target address: give it with -a/--traddr ADDRESS (or --embedded null:1GiB, or traddr= in the job file)")
			}
		}
		f.conn.traddr = "-" // validated per job
	}
	if f.conn.nqn == "" {
		for _, j := range jobs {
			if j.Options["subnqn"] == "" {
				return usagef("missing subsystem NQN: give it with -n/--nqn SUBNQN (or --embedded null:1GiB, or subnqn= in the job file)")
			}
		}
	}
	if err := f.conn.validate(); err != nil {
		return err
	}
	var run *reports.Run
	if f.report != "" {
		if run, err = openRun(f.report); err != nil {
			return err
		}
	}
	// Every output file is made before the load: a path that cannot be
	// written must not cost the run its result.
	if f.output != "" {
		fh, ferr := createOutput("--output", f.output)
		if ferr != nil {
			return ferr
		}
		defer fh.Close()
		out = fh
	}
	var seriesFile *os.File
	if f.series != "" {
		if seriesFile, err = createOutput("--write_series", f.series); err != nil {
			return err
		}
		defer seriesFile.Close()
	}
	def := loadgen.Address{Addr: f.conn.traddr, Port: f.conn.trsvcid, SubNQN: f.conn.nqn, NSIDs: nsids}
	if def.Addr == "-" {
		def.Addr = ""
	}
	opts := f.conn.options(1)
	targets, conn, err := loadgen.Dial(ctx, jobs, def, opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := conn.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("disconnect: %v", cerr)
		}
	}()

	ro := loadgen.RunOptions{Interval: f.interval}
	if ro.IOLogs, err = openIOLogs(targets); err != nil {
		return err
	}
	defer ro.IOLogs.Close()
	live := f.progress == "always" || f.progress == "auto" && isTerminal(errw)
	if live {
		ro.OnInterval = func(p loadgen.Progress) {
			fmt.Fprintf(errw, "\r\033[K%s", loadgen.ProgressLine(p))
		}
	}
	if run != nil {
		if f.histLog == "" {
			// The per-interval log beside the final histograms Write keeps.
			bdir := filepath.Join(f.report, "bench")
			if err := os.MkdirAll(bdir, 0o755); err != nil {
				return fmt.Errorf("--report-dir: %v", err)
			}
			f.histLog = filepath.Join(bdir, reports.FreeName(bdir, "intervals", ".hlog"))
		}
	}
	if f.histLog != "" {
		hf, herr := createOutput("--write_hist_log", f.histLog)
		if herr != nil {
			return herr
		}
		defer hf.Close()
		ro.HistLog = hf
	}
	res, runErr := loadgen.Run(ctx, targets, ro)
	if live {
		fmt.Fprint(errw, "\r\033[K")
	}
	if lerr := ro.IOLogs.Close(); lerr != nil {
		fmt.Fprintf(errw, "nvmftest: I/O logs: %v\n", lerr)
		if runErr == nil {
			runErr = fmt.Errorf("I/O logs: %v", lerr)
		}
	}
	if res == nil {
		return runErr
	}
	sig := interrupt.Signal(ctx)
	interrupted := ""
	if sig != nil {
		// As fio: the signal ends the run, it is no job's error, and the
		// results so far are the report, labelled as partial.
		for _, j := range res.Jobs {
			if errors.Is(j.Err, context.Canceled) {
				j.Err = nil
			}
		}
		interrupted = "INTERRUPTED after " + benchProgress(res, jobs) + fmt.Sprintf(" (signal: %v)", sig)
		fmt.Fprintf(errw, "nvmftest: terminating on signal %d; bench %s: the results are partial\n", interrupt.ExitStatus(sig)-128, interrupted)
		if f.format == loadgen.FormatNormal {
			fmt.Fprintf(out, "bench %s: partial results\n", interrupted)
		}
	}
	if err := loadgen.WriteOutput(out, res, f.format); err != nil {
		return err
	}
	if seriesFile != nil {
		if err := loadgen.WriteSeries(seriesFile, res); err != nil {
			return fmt.Errorf("--write_series %s: %v", f.series, err)
		}
		if err := seriesFile.Close(); err != nil {
			return fmt.Errorf("--write_series %s: %v", f.series, err)
		}
	}
	if run != nil {
		run.AddBench(res)
		if interrupted != "" {
			run.BenchInterrupted = interrupted
		}
		if d, ok := f.conn.rec.(*capture.Dir); ok {
			run.AddTraceFiles(f.report, d.Files()...)
		}
		if err := saveRun(errw, f.report, run); err != nil {
			return err
		}
	}
	if sig != nil {
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			return signalError{fmt.Sprintf("bench: %v; then %s", runErr, interrupted), sig}
		}
		// The report is out; the status says it is partial.
		return signalError{"bench " + interrupted, sig}
	}
	if runErr != nil {
		return fmt.Errorf("bench: %v", runErr)
	}
	return nil
}

// benchProgress says how far an interrupted load got: "2.5s of 30s"
// when every job has a runtime, else "2.5s, before the jobs' I/O was
// done".
func benchProgress(res *loadgen.Result, jobs []*loadgen.Job) string {
	ran := res.Elapsed.Round(100 * time.Millisecond)
	// Phases (jobs between stonewalls) run one after another, the jobs
	// of a phase together: the plan is the sum of each phase's longest.
	var planned, phase time.Duration
	for i, j := range jobs {
		if j.Runtime <= 0 {
			return fmt.Sprintf("%v, before the jobs' I/O was done", ran)
		}
		if i > 0 && j.Stonewall {
			planned += phase
			phase = 0
		}
		phase = max(phase, j.RampTime+j.Runtime)
	}
	return fmt.Sprintf("%v of %v", ran, planned+phase)
}

func isTerminal(w io.Writer) bool {
	if f, ok := w.(*os.File); ok {
		return term.IsTerminal(int(f.Fd()))
	}
	return false
}
