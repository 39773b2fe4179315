package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nvmftest/nvmftest/internal/cpuset"
	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/target"
)

type benchFlags struct {
	conn     connFlags
	nsid     string
	fio      []fioArg // fio options given as flags, in command-line order
	histLog  string
	series   string
	interval time.Duration
	progress string
	embedded string
	output   string
	report   string
	minimal  bool
	format   loadgen.OutputFormat
	shard    shardFlags
	k8s      k8sBenchFlags
	cpus     string
}

// fioArg is one fio option given as a flag.
type fioArg struct{ name, val string }

// fioFlag is a flag for a fio option: it appends to the ordered list, so
// options apply in command-line order and each --name starts a new job,
// as fio reads its command line.
type fioFlag struct {
	name string
	bool bool // may be given bare (--time_based)
	args *[]fioArg
	last string
}

// fioArgNames name the value a numeric fio option takes in --help
// (--iodepth int, not --iodepth string); options absent take text.
var fioArgNames = map[string]string{
	"iodepth": "int", "numjobs": "int", "rwmixread": "int", "rwmixwrite": "int", "loops": "int",
	"number_ios": "int", "thinktime_blocks": "int", "log_avg_msec": "int", "randseed": "int",
	"bs": "size", "blocksize": "size", "size": "size", "offset": "size", "io_size": "size", "io_limit": "size",
	"runtime": "time", "timeout": "time", "ramp_time": "time", "startdelay": "time", "thinktime": "time",
	"rate": "bytes/s", "rate_iops": "iops",
}

func (v *fioFlag) Set(s string) error {
	*v.args = append(*v.args, fioArg{v.name, s})
	v.last = s
	return nil
}
func (v *fioFlag) String() string { return v.last }
func (v *fioFlag) Type() string {
	if v.bool {
		return "bool" // help shows --time_based[=1]
	}
	if a, ok := fioArgNames[v.name]; ok {
		return a
	}
	return "string"
}

// addFioFlags adds a flag for every fio option loadgen takes (aliases
// included) and for those it accepts without effect. Names nvmftest
// already uses keep their nvmftest meaning (--timeout is the command
// timeout; runtime's alias works in job files).
func addFioFlags(c *cobra.Command, f *benchFlags) {
	fs := c.Flags()
	add := func(name, usage string, isBool bool) {
		if fs.Lookup(name) != nil {
			return
		}
		fs.Var(&fioFlag{name: name, args: &f.fio, bool: isBool}, name, usage)
		if isBool {
			fs.Lookup(name).NoOptDefVal = "1"
		}
	}
	for _, o := range loadgen.FioOptions {
		add(o.Name, o.Usage, o.Bool)
		for _, a := range o.Aliases {
			add(a, "alias of --"+o.Name, o.Bool)
		}
	}
	for _, name := range loadgen.NoEffectOptions() {
		add(name, "accepted for fio job compatibility; no effect: "+loadgen.NoEffect(name), false)
		switch name {
		case "thread", "exitall", "direct", "buffered", "invalidate", "lat_percentiles", "clat_percentiles", "slat_percentiles", "gtod_reduce", "verify_fatal", "do_verify":
			fs.Lookup(name).NoOptDefVal = "1"
		}
		fs.Lookup(name).Hidden = true
	}
}

func newBenchCmd() *cobra.Command {
	f := &benchFlags{conn: connFlags{defPort: "4420"}}
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
	addFioFlags(c, f)
	fs.StringVar(&f.histLog, "write_hist_log", "", "write an HdrHistogram interval log of latency to `FILE`")
	fs.StringVar(&f.series, "write_series", "", "write per-interval IOPS, bandwidth and latency percentiles as CSV to `FILE`")
	fs.DurationVar(&f.interval, "status-interval", time.Second, "interval of the series, the log and the progress line")
	fs.StringVar(&f.progress, "progress", "auto", "live progress line on stderr: auto (when a terminal), always, never")
	fs.Lookup("output-format").Usage = "fio's output formats: normal, terse, json or json+, or a comma list (normal,json)"
	fs.BoolVar(&f.minimal, "minimal", false, "fio's terse output (--output-format terse)")
	fs.StringVar(&f.output, "output", "", "write the report to `FILE` instead of standard output (fio's --output)")
	fs.StringVar(&f.report, "report-dir", "", "run directory: report.html, summary.md, run.json, bench/fio.json and HdrHistogram logs (an existing one gains this run)")
	fs.StringVar(&f.embedded, "embedded", "", "run against an in-process reference target with one namespace `BACKEND:SIZE` (null:1GiB, mem:256MiB); no -a/-n needed")
	fs.StringVar(&f.cpus, "cpus", "", cpusFlagHelp)
	addShardFlags(c, &f.shard)
	addK8sBenchFlags(c, &f.k8s)
	return c
}

// benchJobs builds the jobs from the flags and job files as fio does:
// options before the first --name are global (defaults the job files'
// [global] and sections override), each --name starts a job of its own
// with the options after it; the job files' jobs follow. Options without
// effect get one warning line each on errw.
func benchJobs(f *benchFlags, files []string, errw io.Writer) ([]*loadgen.Job, error) {
	base := loadgen.NewJob("bench")
	var jobs []*loadgen.Job
	cur := base
	for _, a := range f.fio {
		if a.name == "name" {
			cur = base.Clone()
			jobs = append(jobs, cur)
		}
		if err := cur.Set(a.name, a.val); err != nil {
			return nil, usagef("--%v", err)
		}
		if why := loadgen.NoEffect(a.name); why != "" {
			fmt.Fprintf(errw, "nvmftest: --%s has no effect: %s\n", strings.TrimSuffix(a.name+"="+a.val, "="), why)
		}
	}
	if len(files) == 0 && len(jobs) == 0 {
		return []*loadgen.Job{base}, nil
	}
	warn := func(s string) { fmt.Fprintf(errw, "nvmftest: %s\n", s) }
	for fi, name := range files {
		js, err := loadgen.LoadJobFile(name, base, loadgen.ParseOptions{Warn: warn})
		if errors.Is(err, fs.ErrNotExist) {
			hint := ""
			if _, berr := strconv.ParseBool(name); berr == nil || name == "yes" || name == "no" || name == "on" || name == "off" {
				hint = fmt.Sprintf(" (a value of a bare option such as --time_based goes after '=', as in fio: --time_based=%s)", name)
			}
			return nil, usagef("job file %s: no such file%s", name, hint)
		}
		if err != nil {
			return nil, usagef("%v", err)
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
	jobs, err := benchJobs(f, args, errw)
	if err != nil {
		return err
	}
	nsids, err := loadgen.ParseNSIDs(f.nsid)
	if err != nil {
		return usagef("--nsid %q: %v", f.nsid, err)
	}
	if f.k8s.on {
		return runBenchK8s(cmd, f, args, jobs, nsids)
	}
	if err := f.shard.parse(cmd, f.report, time.Now()); err != nil {
		return err
	}
	if f.shard.shard != "" {
		if jobs, err = loadgen.ShardJobs(jobs, f.shard.s, f.shard.sp, nsids); err != nil {
			return usagef("--shard %s: %v", f.shard.shard, err)
		}
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
	if pinned, err := pinCPUs(f.cpus); err != nil {
		return err
	} else if pinned != "" {
		fmt.Fprintln(errw, "nvmftest: "+pinned)
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
	// Without --cpus (or GOMAXPROCS), keep off a CPU someone else keeps
	// busy (a polling SPDK target holds its core at 100% even when idle)
	// and run one P per queue, as the target does (see placement): each
	// queue's I/O runs on its reader goroutine, and idle Ps would only
	// spin for work.
	autoPlace := ownProcess && f.cpus == "" && f.embedded == "" && os.Getenv("GOMAXPROCS") == ""
	procLimit := runtime.NumCPU()
	if autoPlace {
		if all, aerr := cpuset.Allowed(); aerr == nil && len(all) > 1 {
			if b, serr := cpuset.SampleBusy(300 * time.Millisecond); serr == nil {
				if free := cpuset.AvoidBusy(b, all); free != nil && cpuset.SetAffinity(free) == nil {
					procLimit = len(free)
					fmt.Fprintf(errw, "nvmftest: CPU %s busy before the run (a polling target?): running on CPUs %s (give --cpus to choose)\n", busyList(b, all), cpuset.Format(free))
				}
			}
		}
	}
	opts := f.conn.options(1)
	targets, conn, err := loadgen.Dial(ctx, jobs, def, opts)
	if ue := (*loadgen.UsageError)(nil); errors.As(err, &ue) {
		return usagef("%v", err)
	}
	if ce := (*loadgen.ConnectError)(nil); errors.As(err, &ce) {
		return connectHint(ce.NQN, ce.Addr, f.conn.hostnqnOrDefault(), ce.Err)
	}
	if err != nil {
		return err
	}
	if autoPlace {
		queues := 0
		for _, t := range targets {
			queues += len(t.Devices)
		}
		runtime.GOMAXPROCS(min(max(queues, 1), procLimit))
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
	if f.shard.shard != "" {
		// shard.json carries the interval histograms too, for a merge
		// from a pod's log alone.
		if ro.HistLog == nil {
			ro.HistLog = &f.shard.hlogBuf
		} else {
			ro.HistLog = io.MultiWriter(ro.HistLog, &f.shard.hlogBuf)
		}
	}
	// Connected and ready: all shards start their I/O together.
	if err := f.shard.waitStart(ctx, errw); err != nil {
		return err
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
	if ue := (*loadgen.UsageError)(nil); res == nil && errors.As(runErr, &ue) {
		// Refused before any I/O (bs 3k on a 4K namespace, bs beyond
		// MDTS, iodepth beyond the queue): the fix is in the options.
		return usagef("%v", runErr)
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
	if late := f.shard.late(res); late != "" {
		fmt.Fprintf(errw, "nvmftest: %s: its intervals lag the other shards'\n", late)
	}
	if err := f.shard.record(cmd.OutOrStdout(), f.report, res, f.interval, interrupted); err != nil {
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
		phase = max(phase, j.StartDelay+j.RampTime+j.Runtime)
	}
	return fmt.Sprintf("%v of %v", ran, planned+phase)
}

func isTerminal(w io.Writer) bool {
	if f, ok := w.(*os.File); ok {
		return term.IsTerminal(int(f.Fd()))
	}
	return false
}
