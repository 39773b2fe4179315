package loadgen

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Job is one fio job: what I/O to do, how much and how fast. The field
// comments give the fio option each field comes from; Set parses fio's
// spelling.
type Job struct {
	Name        string
	Read, Write bool // rw: read, write, rw/readwrite (both)
	Random      bool // rw: randread, randwrite, randrw, randtrim
	// Trim (rw=trim, randtrim; with Write: trimwrite, randtrimwrite, where
	// each block is trimmed and then written): Dataset Management
	// deallocate of each I/O's blocks.
	Trim       bool
	RWMixRead  int           // rwmixread: percent of reads in a mixed job (default 50)
	BS         []BSSplit     // bs / bssplit: block sizes in bytes with weights (reads, and writes unless BSWrite)
	BSWrite    []BSSplit     // bs=READ,WRITE / bssplit=R,W: the writes' sizes (nil: as BS)
	IODepth    int           // iodepth (default 1)
	NumJobs    int           // numjobs: clones, each its own queue and connection (default 1)
	Runtime    time.Duration // runtime: stop after this long (after ramp_time)
	TimeBased  bool          // time_based: loop over the region until runtime
	RampTime   time.Duration // ramp_time: run this long before measuring
	StartDelay time.Duration // startdelay: wait this long after the phase starts
	Size       int64         // size: bytes of the region (and of I/O, without time_based); 0 = to the end
	Offset     int64         // offset: where the region starts, bytes
	// SizePct and OffsetPct are size=N% and offset=N%: percent of the
	// namespace (0: not given as a percentage).
	SizePct, OffsetPct float64
	IOSize             int64   // io_size (io_limit): bytes of I/O per clone and loop, inside the region (0: the region's size)
	NumberIOs          int64   // number_ios: stop after this many I/Os per clone (0: no limit)
	Loops              int     // loops: run the job this many times over (default 1; without time_based)
	NoRandomMap        bool    // norandommap: random offsets may repeat within a pass
	Zipf               float64 // random_distribution=zipf:THETA (0: uniform)
	// RateIOPS and RateBW are rate_iops= and rate= per direction
	// ([OpRead], [OpWrite]; 0: no limit), as fio's "r,w" spelling; one
	// value limits each direction. RateIOPS[OpRead] alone used to be
	// RateIOPS; see Paced.
	RateIOPS    int
	RateIOPSW   int           // rate_iops for writes
	RateBW      [2]int64      // rate: bytes per second per direction
	ThinkTime   time.Duration // thinktime: pause after every ThinkTimeBlocks I/Os have completed
	ThinkBlocks int           // thinktime_blocks (default 1)
	Verify      string        // verify: "" or "crc32c"
	Seed        uint64        // randseed
	SeedSet     bool          // randseed was given
	RandRepeat  bool          // randrepeat: the same offsets each run (default true); false seeds from the clock
	// HiPri (hipri): the job's queues poll for completions instead of
	// sleeping until they come, as fio's hipri does on a kernel queue: a
	// core spins while I/O is in flight. Queues of one controller share
	// the setting: any job asking for it polls them all.
	HiPri bool
	// GroupReporting (group_reporting): the report shows each reporting
	// group's jobs as one (fio's group_reporting); the reports read it.
	GroupReporting bool
	// Stonewall (stonewall, wait_for_previous): start only when every job
	// before this one has finished; starts a new reporting group.
	Stonewall bool
	// NewGroup (new_group): start a new reporting group, without waiting.
	NewGroup bool
	// LatLog, BWLog and IOPSLog (write_lat_log, write_bw_log,
	// write_iops_log) are the name prefixes of fio's per-I/O logs ("" for
	// none; logUnderJobName when given without a name: the job's name,
	// resolved when the logs are opened). LogAvgMsec
	// (log_avg_msec) averages them over windows of this many ms instead.
	LatLog, BWLog, IOPSLog string
	LogAvgMsec             int
	// Slice and Slices (set by ShardJobs, no fio option): the job's region
	// is cut into Slices disjoint parts and this run does I/O in part
	// Slice only (0: the whole region).
	Slice, Slices int

	// Options holds every option as given (fio's "job options" in JSON).
	Options map[string]string
	// GlobalOptions are the options the job file's [global] sections (and
	// the flags before them) gave, for fio's "global options" in JSON.
	GlobalOptions map[string]string
	// Order remembers the order options were set in, for reports.
	Order []string
}

// Paced reports whether the job issues on a schedule (rate or rate_iops
// in either direction): lat then counts from each I/O's intended time.
func (j *Job) Paced() bool {
	return j.RateIOPS > 0 || j.RateIOPSW > 0 || j.RateBW[0] > 0 || j.RateBW[1] > 0
}

// BSSplit is one block size and its share (percent) of I/Os.
type BSSplit struct {
	Size int
	Pct  int
}

// NewJob returns a job with fio's defaults: rw=read, bs=4k, iodepth=1.
func NewJob(name string) *Job {
	return &Job{Name: name, Read: true, RWMixRead: 50, BS: []BSSplit{{4096, 100}}, IODepth: 1, NumJobs: 1, Loops: 1,
		RandRepeat: true, Options: map[string]string{}}
}

// Clone returns a deep copy of j.
func (j *Job) Clone() *Job {
	c := *j
	c.BS = append([]BSSplit(nil), j.BS...)
	if j.BSWrite != nil {
		c.BSWrite = append([]BSSplit(nil), j.BSWrite...)
	}
	c.Options = make(map[string]string, len(j.Options))
	for k, v := range j.Options {
		c.Options[k] = v
	}
	c.Order = append([]string(nil), j.Order...)
	return &c
}

// FioOption is one fio option nvmftest takes, for command-line flags and
// help: Bool options may be given bare (--time_based, time_based).
type FioOption struct {
	Name    string
	Aliases []string
	Usage   string
	Bool    bool
}

// FioOptions are the fio options Set implements, in the order a command
// line applies them by default. traddr, trsvcid, subnqn and nsid are
// nvmftest's own (where the job runs); filename takes SPDK's fio plugin
// spelling for the same. Options in NoEffect are accepted too.
var FioOptions = []FioOption{
	{Name: "name", Usage: "job name; on the command line each --name starts a new job, as in fio"},
	{Name: "description", Usage: "free text, kept in the report's job options"},
	{Name: "rw", Aliases: []string{"readwrite"}, Usage: "read, write, randread, randwrite, rw (readwrite) or randrw"},
	{Name: "rwmixread", Usage: "percent of reads in a mixed job (default 50)"},
	{Name: "rwmixwrite", Usage: "percent of writes in a mixed job"},
	{Name: "bs", Aliases: []string{"blocksize"}, Usage: "block size, e.g. 4k; READ,WRITE sizes apart: 4k,64k (default 4k)"},
	{Name: "bssplit", Usage: "block sizes with weights, e.g. 4k/50:64k/30:1m/20 (READS,WRITES lists apart)"},
	{Name: "bsrange", Aliases: []string{"blocksize_range"}, Usage: "block sizes LO-HI: each power of two between, equally often"},
	{Name: "iodepth", Usage: "I/Os in flight per clone (default 1)"},
	{Name: "numjobs", Usage: "clones of the job, each its own I/O queue and TCP connection (default 1)"},
	{Name: "runtime", Aliases: []string{"timeout"}, Usage: "run time after ramp_time: seconds or a duration (10, 500ms, 2m)"},
	{Name: "time_based", Bool: true, Usage: "run for runtime, looping over the region"},
	{Name: "ramp_time", Usage: "run this long before measuring"},
	{Name: "startdelay", Usage: "start the job this long after its phase starts (seconds or a duration)"},
	{Name: "size", Usage: "region size in bytes or percent of the namespace (1g, 50%) (default: to the end)"},
	{Name: "offset", Usage: "region start in bytes or percent of the namespace"},
	{Name: "io_size", Aliases: []string{"io_limit"}, Usage: "bytes of I/O to do within the region (default: size)"},
	{Name: "number_ios", Usage: "stop after this many I/Os per clone"},
	{Name: "loops", Usage: "run the job this many times (default 1)"},
	{Name: "norandommap", Bool: true, Usage: "random offsets may repeat within a pass"},
	{Name: "random_distribution", Usage: "random (uniform) or zipf:THETA, e.g. zipf:1.2"},
	{Name: "hipri", Bool: true, Usage: "poll for completions instead of sleeping until they come: lower latency, a core spins while I/O flows"},
	{Name: "randrepeat", Bool: true, Usage: "the same random offsets each run (default 1); 0 seeds from the clock"},
	{Name: "randseed", Usage: "seed of the random offsets and mixes"},
	{Name: "rate", Usage: "bandwidth cap per clone in bytes/s, READ,WRITE apart (1m,500k; ,500k caps writes only)"},
	{Name: "rate_iops", Usage: "I/Os per second cap per clone, READ,WRITE apart; lat counts from each I/O's intended issue time"},
	{Name: "thinktime", Usage: "pause this long (microseconds without a unit) after thinktime_blocks I/Os complete"},
	{Name: "thinktime_blocks", Usage: "I/Os between thinktime pauses (default 1)"},
	{Name: "write_lat_log", Usage: "write fio's per-I/O latency logs `PREFIX`_lat.N.log, _clat.N.log and _slat.N.log (N: clone number)"},
	{Name: "write_bw_log", Usage: "write fio's bandwidth log `PREFIX`_bw.N.log"},
	{Name: "write_iops_log", Usage: "write fio's IOPS log `PREFIX`_iops.N.log"},
	{Name: "log_avg_msec", Usage: "average the logs over windows of this many ms (default 0: one line per I/O)"},
	{Name: "verify", Usage: "crc32c: write self-checking blocks, check every block read, read back what a write job wrote"},
	{Name: "stonewall", Aliases: []string{"wait_for_previous"}, Bool: true, Usage: "start when every job before has finished; a new reporting group"},
	{Name: "new_group", Bool: true, Usage: "start a new reporting group"},
	{Name: "group_reporting", Bool: true, Usage: "report each group's jobs as one"},
	{Name: "filename", Usage: "the namespace, in SPDK fio plugin form: 'traddr=10.0.0.5 trsvcid=4420 subnqn=NQN ns=2' (any part; the rest from the flags)"},
	{Name: "traddr", Usage: "target address of the job (default -a)"},
	{Name: "trsvcid", Usage: "target port of the job (default -s)"},
	{Name: "subnqn", Usage: "subsystem NQN of the job (default -n)"},
}

// KnownOptions are the option names Set implements (aliases included).
var KnownOptions = func() []string {
	var out []string
	for _, o := range FioOptions {
		out = append(out, o.Name)
		out = append(out, o.Aliases...)
	}
	return append(out, "nsid")
}()

// noEffect are fio options that appear in real job files and have no
// effect here, each with the reason: Set takes them, and whoever reads
// the file or flags prints the reason (see NoEffect).
var noEffect = map[string]string{
	"ioengine":                   "nvmftest is its own engine: each clone drives an NVMe/TCP I/O queue of its own initiator",
	"direct":                     "there is no page cache: every I/O is an NVMe command on the wire",
	"buffered":                   "there is no page cache: every I/O is an NVMe command on the wire",
	"invalidate":                 "there is no page cache to invalidate",
	"thread":                     "clones are goroutines of one process, each with its own queue and connection",
	"do_verify":                  "verify=crc32c always checks the blocks read, and reads back what a write job wrote",
	"verify_fatal":               "a verify mismatch always ends the run (as verify_fatal=1)",
	"exitall":                    "each job runs to its own end; there is no exitall",
	"lat_percentiles":            "clat and lat are always recorded in full (HdrHistograms), percentiles included",
	"clat_percentiles":           "clat and lat are always recorded in full (HdrHistograms), percentiles included",
	"slat_percentiles":           "clat and lat are always recorded in full (HdrHistograms), percentiles included",
	"iodepth_batch":              "each I/O is submitted as soon as a slot frees",
	"iodepth_batch_submit":       "each I/O is submitted as soon as a slot frees",
	"iodepth_batch_complete":     "each completion is handled as it arrives",
	"iodepth_batch_complete_min": "each completion is handled as it arrives",
	"iodepth_batch_complete_max": "each completion is handled as it arrives",
	"iodepth_low":                "each I/O is submitted as soon as a slot frees",
	"random_generator":           "offsets come from nvmftest's own PCG generator (seeded by randseed/randrepeat)",
	"gtod_reduce":                "latency is always recorded per I/O",
	"clocksource":                "the clock is Go's monotonic clock",
	"fallocate":                  "there is no file: the job runs on a namespace",
	"end_fsync":                  "there is no file: the job runs on a namespace",
	"fsync_on_close":             "there is no file: the job runs on a namespace",
	"allow_file_create":          "there is no file: the job runs on a namespace",
	"refill_buffers":             "write buffers are not refilled (verify=crc32c writes fresh headers)",
	"cpus_allowed":               "scheduling is left to the Go runtime",
	"cpumask":                    "scheduling is left to the Go runtime",
	"numa_cpu_nodes":             "scheduling is left to the Go runtime",
	"numa_mem_policy":            "scheduling is left to the Go runtime",
	"nice":                       "scheduling is left to the Go runtime",
	"prio":                       "scheduling is left to the Go runtime",
	"prioclass":                  "scheduling is left to the Go runtime",
}

// NoEffect returns why the fio option key is accepted without effect, or
// "" when it has one (or is unknown).
func NoEffect(key string) string { return noEffect[strings.ToLower(strings.TrimSpace(key))] }

// NoEffectOptions lists the options NoEffect explains, sorted.
func NoEffectOptions() []string {
	out := make([]string, 0, len(noEffect))
	for k := range noEffect {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Set applies one fio option. Errors say what is wrong in fio's terms.
// An option fio has but nvmftest does not implement is an error, as is
// one fio does not have; an option without effect here (NoEffect) is
// taken, and the caller says so.
func (j *Job) Set(key, val string) error {
	key = strings.ToLower(strings.TrimSpace(key))
	val = strings.TrimSpace(val)
	if err := j.set(key, val); err != nil {
		if val == "" {
			return fmt.Errorf("%s: %w", key, err)
		}
		return fmt.Errorf("%s=%s: %w", key, val, err)
	}
	if _, ok := j.Options[key]; !ok {
		j.Order = append(j.Order, key)
	}
	j.Options[key] = val
	return nil
}

// splitRW splits fio's per-direction value "R,W[,T]": one value applies
// to both; an empty part leaves that direction as it is.
func splitRW(val string) (r, w string, err error) {
	parts := strings.Split(val, ",")
	switch len(parts) {
	case 1:
		return val, val, nil
	case 2, 3: // a third (trim) value has no use here
		return strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), nil
	}
	return "", "", fmt.Errorf("want READ,WRITE")
}

func parseBS(v string) ([]BSSplit, error) {
	n, err := ParseSize(v)
	if err != nil || n <= 0 || n > 1<<30 {
		return nil, fmt.Errorf("want a block size such as 512, 4k, 128k")
	}
	return []BSSplit{{int(n), 100}}, nil
}

// parseBSRange makes fio's bsrange=LO-HI a bssplit: every power-of-two
// multiple of LO up to HI, equally often (fio draws multiples of the
// minimum size; powers of two keep the I/O sizes a device sees usual).
func parseBSRange(v string) ([]BSSplit, error) {
	lo, hi, ok := strings.Cut(v, "-")
	if !ok {
		return parseBS(v)
	}
	a, err1 := ParseSize(lo)
	b, err2 := ParseSize(hi)
	if err1 != nil || err2 != nil || a <= 0 || b < a || b > 1<<30 {
		return nil, fmt.Errorf("want LO-HI block sizes such as 4k-64k")
	}
	var out []BSSplit
	for n := a; n <= b; n *= 2 {
		out = append(out, BSSplit{int(n), 0})
	}
	for i := range out {
		out[i].Pct = 100 / len(out)
	}
	out[0].Pct += 100 - 100/len(out)*len(out)
	return out, nil
}

func parsePercent(v string) (float64, bool, error) {
	t, ok := strings.CutSuffix(strings.TrimSpace(v), "%")
	if !ok {
		return 0, false, nil
	}
	p, err := strconv.ParseFloat(t, 64)
	if err != nil || p <= 0 || p > 100 {
		return 0, true, fmt.Errorf("want a percentage between 1 and 100, e.g. 50%%")
	}
	return p, true, nil
}

func (j *Job) set(key, val string) error {
	switch key {
	case "name":
		j.Name = val
	case "description":
	case "rw", "readwrite":
		// fio's rw=randread:8 (an offset modifier) is not taken.
		switch val {
		case "read":
			j.Read, j.Write, j.Random, j.Trim = true, false, false, false
		case "write":
			j.Read, j.Write, j.Random, j.Trim = false, true, false, false
		case "randread":
			j.Read, j.Write, j.Random, j.Trim = true, false, true, false
		case "randwrite":
			j.Read, j.Write, j.Random, j.Trim = false, true, true, false
		case "rw", "readwrite":
			j.Read, j.Write, j.Random, j.Trim = true, true, false, false
		case "randrw":
			j.Read, j.Write, j.Random, j.Trim = true, true, true, false
		case "trim":
			j.Read, j.Write, j.Random, j.Trim = false, false, false, true
		case "randtrim":
			j.Read, j.Write, j.Random, j.Trim = false, false, true, true
		case "trimwrite":
			j.Read, j.Write, j.Random, j.Trim = false, true, false, true
		case "randtrimwrite":
			j.Read, j.Write, j.Random, j.Trim = false, true, true, true
		default:
			return fmt.Errorf("unknown rw mode: use read, write, trim, randread, randwrite, randtrim, rw (readwrite), randrw, trimwrite or randtrimwrite")
		}
	case "rwmixread", "rwmixwrite":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > 100 {
			return fmt.Errorf("want a percentage 0-100")
		}
		if key == "rwmixwrite" {
			n = 100 - n
		}
		j.RWMixRead = n
	case "bs", "blocksize", "bsrange", "blocksize_range", "bssplit":
		parse := parseBS
		switch key {
		case "bsrange", "blocksize_range":
			parse = parseBSRange
		case "bssplit":
			parse = parseBSSplit
		}
		r, w, err := splitRW(val)
		if err != nil {
			return err
		}
		var rs, ws []BSSplit
		if r != "" {
			if rs, err = parse(r); err != nil {
				return err
			}
		}
		if w != "" {
			if ws, err = parse(w); err != nil {
				return err
			}
		}
		if r == "" && w == "" {
			return fmt.Errorf("want a block size such as 4k, or READ,WRITE")
		}
		if rs != nil {
			if j.BSWrite == nil {
				j.BSWrite = j.BS // writes keep theirs when only reads change
			}
			j.BS = rs
		}
		if ws != nil {
			j.BSWrite = ws
		}
		if r == w || equalBS(j.BS, j.BSWrite) {
			j.BSWrite = nil
		}
	case "iodepth":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("want 1-65535")
		}
		j.IODepth = n
	case "numjobs":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 1024 {
			return fmt.Errorf("want 1-1024")
		}
		j.NumJobs = n
	case "runtime", "timeout":
		d, err := ParseDuration(val)
		if err != nil {
			return err
		}
		j.Runtime = d
	case "ramp_time":
		d, err := ParseDuration(val)
		if err != nil {
			return err
		}
		j.RampTime = d
	case "startdelay":
		if strings.Contains(val, "-") {
			return fmt.Errorf("a startdelay range is not supported: give one time")
		}
		d, err := ParseDuration(val)
		if err != nil {
			return err
		}
		j.StartDelay = d
	case "thinktime":
		d, err := parseMicros(val)
		if err != nil {
			return err
		}
		j.ThinkTime = d
	case "thinktime_blocks":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return fmt.Errorf("want a number of I/Os, at least 1")
		}
		j.ThinkBlocks = n
	case "time_based", "norandommap", "stonewall", "wait_for_previous", "new_group", "group_reporting", "randrepeat", "hipri":
		b, err := parseBool(val)
		if err != nil {
			return err
		}
		switch key {
		case "time_based":
			j.TimeBased = b
		case "norandommap":
			j.NoRandomMap = b
		case "stonewall", "wait_for_previous":
			j.Stonewall = b
		case "new_group":
			j.NewGroup = b
		case "group_reporting":
			j.GroupReporting = b
		case "randrepeat":
			j.RandRepeat = b
		case "hipri":
			j.HiPri = b
		}
	case "size", "offset":
		p, isPct, err := parsePercent(val)
		if err != nil {
			return err
		}
		var n int64
		if !isPct {
			if n, err = ParseSize(val); err != nil || n < 0 {
				return fmt.Errorf("want a size such as 1g, 256m, or a percentage of the namespace such as 50%%")
			}
		}
		if key == "size" {
			j.Size, j.SizePct = n, p
		} else {
			j.Offset, j.OffsetPct = n, p
		}
	case "io_size", "io_limit":
		n, err := ParseSize(val)
		if err != nil || n < 0 {
			return fmt.Errorf("want a size such as 1g, 256m")
		}
		j.IOSize = n
	case "number_ios":
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want a number of I/Os")
		}
		j.NumberIOs = n
	case "loops":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return fmt.Errorf("want a number of loops, at least 1")
		}
		j.Loops = n
	case "random_distribution":
		switch {
		case val == "random":
			j.Zipf = 0
		case strings.HasPrefix(val, "zipf:"):
			th, err := strconv.ParseFloat(val[5:], 64)
			if err != nil || th <= 0 || th == 1 || math.IsInf(th, 0) {
				return fmt.Errorf("zipf theta must be a positive number other than 1, e.g. zipf:1.2")
			}
			j.Zipf = th
		default:
			return fmt.Errorf("supported: random (uniform) or zipf:THETA")
		}
	case "rate_iops":
		r, w, err := splitRW(val)
		if err != nil {
			return err
		}
		var n [2]int
		for i, s := range []string{r, w} {
			if s == "" {
				continue
			}
			if n[i], err = strconv.Atoi(s); err != nil || n[i] < 0 {
				return fmt.Errorf("want I/Os per second, READ,WRITE apart (500 or 500,100 or ,100)")
			}
		}
		j.RateIOPS, j.RateIOPSW = n[0], n[1]
	case "rate":
		r, w, err := splitRW(val)
		if err != nil {
			return err
		}
		var n [2]int64
		for i, s := range []string{r, w} {
			if s == "" {
				continue
			}
			if n[i], err = ParseSize(s); err != nil {
				return fmt.Errorf("want bytes per second, READ,WRITE apart (100m or 1m,500k or ,500k)")
			}
		}
		j.RateBW = n
	case "write_lat_log", "write_bw_log", "write_iops_log":
		if val == "" || val == "true" {
			// A bare key (fio: no name given) logs under the job's name;
			// the job file reader gives a bare key as "true".
			val = logUnderJobName
		}
		switch key {
		case "write_lat_log":
			j.LatLog = val
		case "write_bw_log":
			j.BWLog = val
		default:
			j.IOPSLog = val
		}
	case "log_avg_msec":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("want a number of milliseconds")
		}
		j.LogAvgMsec = n
	case "verify":
		switch val {
		case "0", "", "none":
			j.Verify = ""
		case "crc32c", "crc32c-intel":
			j.Verify = "crc32c"
		default:
			return fmt.Errorf("supported: crc32c")
		}
	case "randseed":
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("want an unsigned integer")
		}
		j.Seed, j.SeedSet = n, true
	case "nsid":
		if _, err := ParseNSIDs(val); err != nil {
			return err
		}
	case "filename":
		if _, err := ParseFilename(val); err != nil {
			return err
		}
	case "traddr", "trsvcid", "subnqn":
		// Where the job runs: read by Dial.
	default:
		if noEffect[key] != "" {
			return nil
		}
		return fmt.Errorf("unknown or unsupported fio option %q (see 'nvmftest bench --help' and the README's fio table)", key)
	}
	return nil
}

func equalBS(a, b []BSSplit) bool {
	if b == nil {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseMicros parses a fio time whose unit defaults to microseconds
// (thinktime).
func parseMicros(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Microsecond, nil
	}
	return ParseDuration(s)
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want 0 or 1")
}

// ParseSize parses a fio size: a number with an optional unit k, m, g, t
// (powers of 1024, fio's default kb_base), with optional "i" and "b"
// (4k, 4KiB, 4kb are all 4096).
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	t = strings.TrimSuffix(t, "i")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		case 'p':
			mult = 1 << 50
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// ParseDuration parses a fio time: a number of seconds, or with a unit
// (us, ms, s, m, h, d), or a Go duration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	if strings.HasSuffix(s, "d") {
		if n, err := strconv.ParseInt(s[:len(s)-1], 10, 64); err == nil && n >= 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad time %q: want seconds (10) or a duration (500ms, 10s, 2m)", s)
	}
	return d, nil
}

// parseBSSplit parses fio's bssplit=4k/10:64k/50:1m/40 (a missing percentage
// shares what is left equally).
func parseBSSplit(v string) ([]BSSplit, error) {
	var out []BSSplit
	left, blank := 100, 0
	for _, part := range strings.Split(v, ":") {
		if part == "" {
			continue
		}
		sz, pct, hasPct := strings.Cut(part, "/")
		n, err := ParseSize(sz)
		if err != nil || n <= 0 || n > 1<<30 {
			return nil, fmt.Errorf("bad block size %q", sz)
		}
		p := -1
		if hasPct && pct != "" {
			p, err = strconv.Atoi(pct)
			if err != nil || p < 0 || p > 100 {
				return nil, fmt.Errorf("bad percentage %q", pct)
			}
			left -= p
		} else {
			blank++
		}
		out = append(out, BSSplit{int(n), p})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty bssplit")
	}
	if left < 0 {
		return nil, fmt.Errorf("percentages add up to more than 100")
	}
	for i := range out {
		if out[i].Pct < 0 {
			out[i].Pct = left / blank
		}
	}
	total := 0
	for _, b := range out {
		total += b.Pct
	}
	if total == 0 {
		return nil, fmt.Errorf("percentages add up to 0")
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Size < out[b].Size })
	return out, nil
}

// UsageError is a job that cannot run on the device it was given, found
// before any I/O (a block size that is not a multiple of the logical
// block size, a region beyond the end, an unknown namespace): the fix is
// in the job's options, so a command exits as for a usage error.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// region checks the job against a device's block size and capacity and
// returns the region in logical blocks. Percentages (size=50%, offset=10%)
// are of the device's capacity, as fio's are of the file: a percentage
// offset is aligned up to the smallest block size, a percentage size down.
func (j *Job) region(info DeviceInfo) (start, blocks uint64, err error) {
	bs := int64(info.BlockSize)
	if bs <= 0 {
		return 0, 0, fmt.Errorf("device %s reports block size %d", info.Name, bs)
	}
	for _, b := range j.allBS() {
		if int64(b.Size)%bs != 0 {
			return 0, 0, usageErrorf("block size %d is not a multiple of %s's logical block size %d: use bs=%d or a multiple", b.Size, info.Name, bs, bs)
		}
		if b.Size/int(bs) > 65536 {
			return 0, 0, usageErrorf("block size %d is more than 65536 logical blocks", b.Size)
		}
		if info.MaxTransfer > 0 && b.Size > info.MaxTransfer && !info.Splits {
			// A controller may treat a longer transfer as a fatal
			// transport error (SPDK does), ending the whole queue.
			return 0, 0, usageErrorf("block size %d is more than %s's maximum data transfer size (MDTS) of %d bytes: use a bs of at most %d",
				b.Size, info.Name, info.MaxTransfer, info.MaxTransfer)
		}
	}
	capBytes := int64(info.Blocks) * bs
	offset, size := j.Offset, j.Size
	align := int64(j.minBS())
	if j.OffsetPct > 0 {
		offset = (int64(float64(capBytes)*j.OffsetPct/100) + align - 1) / align * align // fio aligns it upwards
	}
	if j.SizePct > 0 {
		size = int64(float64(capBytes)*j.SizePct/100) / align * align
	}
	if offset%bs != 0 {
		return 0, 0, usageErrorf("offset %d is not a multiple of the logical block size %d", offset, bs)
	}
	if offset >= capBytes {
		return 0, 0, usageErrorf("offset %d is beyond the end of %s (%d bytes)", offset, info.Name, capBytes)
	}
	if size == 0 || offset+size > capBytes {
		if size != 0 && j.SizePct == 0 {
			return 0, 0, usageErrorf("offset %d + size %d is beyond the end of %s (%d bytes)", offset, size, info.Name, capBytes)
		}
		// fio caps a percentage size at the end of the file.
		size = capBytes - offset
	}
	if size < int64(j.maxBS()) {
		return 0, 0, usageErrorf("size %d is smaller than the block size %d", size, j.maxBS())
	}
	if j.Slices > 1 {
		// Whole units of the smallest block size, so no I/O straddles two
		// shards' slices.
		per := size / align / int64(j.Slices) * align
		if per < int64(j.maxBS()) {
			return 0, 0, usageErrorf("region of %d bytes is too small to cut into %d shard slices of at least bs=%d", size, j.Slices, j.maxBS())
		}
		offset += int64(j.Slice) * per
		size = per
	}
	return uint64(offset / bs), uint64(size / bs), nil
}

// allBS is every block size the job uses, reads' and writes'.
func (j *Job) allBS() []BSSplit {
	if j.BSWrite == nil {
		return j.BS
	}
	return append(append([]BSSplit(nil), j.BS...), j.BSWrite...)
}

func (j *Job) maxBS() int {
	m := 0
	for _, b := range j.allBS() {
		m = max(m, b.Size)
	}
	return m
}

func (j *Job) minBS() int {
	m := math.MaxInt
	for _, b := range j.allBS() {
		m = min(m, b.Size)
	}
	return m
}

// does reports whether the job issues op.
func (j *Job) does(op Op) bool {
	switch op {
	case OpRead:
		return j.Read
	case OpWrite:
		return j.Write
	}
	return j.Trim
}

// RWString is the job's rw option in fio's spelling.
func (j *Job) RWString() string {
	switch {
	case j.Trim && j.Write && j.Random:
		return "randtrimwrite"
	case j.Trim && j.Write:
		return "trimwrite"
	case j.Trim && j.Random:
		return "randtrim"
	case j.Trim:
		return "trim"
	case j.Read && j.Write && j.Random:
		return "randrw"
	case j.Read && j.Write:
		return "rw"
	case j.Write && j.Random:
		return "randwrite"
	case j.Write:
		return "write"
	case j.Random:
		return "randread"
	}
	return "read"
}
