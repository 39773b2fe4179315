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
	Read, Write bool          // rw: read, write, rw/readwrite (both)
	Random      bool          // rw: randread, randwrite, randrw
	RWMixRead   int           // rwmixread: percent of reads in a mixed job (default 50)
	BS          []BSSplit     // bs / bssplit: block sizes in bytes with weights
	IODepth     int           // iodepth (default 1)
	NumJobs     int           // numjobs: clones, each its own queue and connection (default 1)
	Runtime     time.Duration // runtime: stop after this long (after ramp_time)
	TimeBased   bool          // time_based: loop over the region until runtime
	RampTime    time.Duration // ramp_time: run this long before measuring
	Size        int64         // size: bytes of the region (and of I/O, without time_based); 0 = to the end
	Offset      int64         // offset: where the region starts, bytes
	NoRandomMap bool          // norandommap: random offsets may repeat within a pass
	Zipf        float64       // random_distribution=zipf:THETA (0: uniform)
	RateIOPS    int           // rate_iops: issue at most this many I/Os per second, per clone
	Verify      string        // verify: "" or "crc32c"
	Seed        uint64        // randseed
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

	// Options holds every option as given (fio's "job options" in JSON).
	Options map[string]string
	// GlobalOptions are the options the job file's [global] sections (and
	// the flags before them) gave, for fio's "global options" in JSON.
	GlobalOptions map[string]string
	// Order remembers the order options were set in, for reports.
	Order []string
}

// BSSplit is one block size and its share (percent) of I/Os.
type BSSplit struct {
	Size int
	Pct  int
}

// NewJob returns a job with fio's defaults: rw=read, bs=4k, iodepth=1.
func NewJob(name string) *Job {
	return &Job{Name: name, Read: true, RWMixRead: 50, BS: []BSSplit{{4096, 100}}, IODepth: 1, NumJobs: 1, Options: map[string]string{}}
}

// Clone returns a deep copy of j.
func (j *Job) Clone() *Job {
	c := *j
	c.BS = append([]BSSplit(nil), j.BS...)
	c.Options = make(map[string]string, len(j.Options))
	for k, v := range j.Options {
		c.Options[k] = v
	}
	c.Order = append([]string(nil), j.Order...)
	return &c
}

// Options recognized by Set (fio's names; aliases map to these).
var KnownOptions = []string{
	"name", "rw", "readwrite", "rwmixread", "rwmixwrite", "bs", "blocksize", "bssplit", "iodepth", "numjobs",
	"runtime", "timeout", "time_based", "ramp_time", "size", "offset", "norandommap",
	"random_distribution", "rate_iops", "verify", "randseed", "stonewall", "wait_for_previous", "new_group",
	"write_lat_log", "write_bw_log", "write_iops_log", "log_avg_msec",
	"traddr", "trsvcid", "subnqn", "nsid", // nvmftest's: where the job runs
}

// ignoredOptions are fio options that make no sense here but appear in
// real job files; they are accepted and recorded, without effect.
var ignoredOptions = map[string]bool{
	"ioengine": true, "direct": true, "group_reporting": true, "thread": true, "filename": true,
	"description": true, "buffered": true, "invalidate": true, "do_verify": true,
	"verify_fatal": true, "exitall": true, "lat_percentiles": true, "clat_percentiles": true,
}

// Set applies one fio option. Errors say what is wrong in fio's terms.
func (j *Job) Set(key, val string) error {
	key = strings.ToLower(strings.TrimSpace(key))
	val = strings.TrimSpace(val)
	if err := j.set(key, val); err != nil {
		return fmt.Errorf("%s=%s: %w", key, val, err)
	}
	if _, ok := j.Options[key]; !ok {
		j.Order = append(j.Order, key)
	}
	j.Options[key] = val
	return nil
}

func (j *Job) set(key, val string) error {
	switch key {
	case "name":
		j.Name = val
	case "rw", "readwrite":
		switch val {
		case "read":
			j.Read, j.Write, j.Random = true, false, false
		case "write":
			j.Read, j.Write, j.Random = false, true, false
		case "randread":
			j.Read, j.Write, j.Random = true, false, true
		case "randwrite":
			j.Read, j.Write, j.Random = false, true, true
		case "rw", "readwrite":
			j.Read, j.Write, j.Random = true, true, false
		case "randrw":
			j.Read, j.Write, j.Random = true, true, true
		case "trim", "randtrim", "trimwrite", "randtrimwrite":
			return fmt.Errorf("trim workloads are not supported")
		default:
			return fmt.Errorf("unknown rw mode: use read, write, randread, randwrite, rw (readwrite) or randrw")
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
	case "bs", "blocksize":
		if i := strings.IndexByte(val, ','); i >= 0 {
			// fio's bs=READ,WRITE: one size for both is all we take.
			if r, w := val[:i], val[i+1:]; w != "" && w != r {
				return fmt.Errorf("separate read and write block sizes are not supported")
			}
			val = val[:i]
		}
		n, err := ParseSize(val)
		if err != nil || n <= 0 || n > 1<<30 {
			return fmt.Errorf("want a block size such as 512, 4k, 128k")
		}
		j.BS = []BSSplit{{int(n), 100}}
	case "bssplit":
		s, err := parseBSSplit(val)
		if err != nil {
			return err
		}
		j.BS = s
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
	case "time_based":
		b, err := parseBool(val)
		if err != nil {
			return err
		}
		j.TimeBased = b
	case "norandommap":
		b, err := parseBool(val)
		if err != nil {
			return err
		}
		j.NoRandomMap = b
	case "size":
		n, err := ParseSize(val)
		if err != nil || n < 0 {
			return fmt.Errorf("want a size such as 1g, 256m (fio's percentages are not supported)")
		}
		j.Size = n
	case "offset":
		n, err := ParseSize(val)
		if err != nil || n < 0 {
			return fmt.Errorf("want a byte offset such as 0, 64m")
		}
		j.Offset = n
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
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("want a number of I/Os per second")
		}
		j.RateIOPS = n
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
	case "stonewall", "wait_for_previous":
		b, err := parseBool(val)
		if err != nil {
			return err
		}
		j.Stonewall = b
	case "new_group":
		b, err := parseBool(val)
		if err != nil {
			return err
		}
		j.NewGroup = b
	case "randseed":
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("want an unsigned integer")
		}
		j.Seed = n
	case "nsid":
		if _, err := ParseNSIDs(val); err != nil {
			return err
		}
	case "traddr", "trsvcid", "subnqn":
		// Where the job runs: read by Dial.
	default:
		if ignoredOptions[key] {
			return nil
		}
		return fmt.Errorf("unknown or unsupported fio option %q (supported: %s)", key, strings.Join(KnownOptions, ", "))
	}
	return nil
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
	if strings.Contains(v, ",") {
		return nil, fmt.Errorf("separate read and write bssplit lists are not supported")
	}
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

// Validate checks the job against a device's block size and capacity and
// returns the region in logical blocks.
func (j *Job) region(info DeviceInfo) (start, blocks uint64, err error) {
	bs := int64(info.BlockSize)
	if bs <= 0 {
		return 0, 0, fmt.Errorf("device %s reports block size %d", info.Name, bs)
	}
	for _, b := range j.BS {
		if int64(b.Size)%bs != 0 {
			return 0, 0, fmt.Errorf("block size %d is not a multiple of %s's logical block size %d", b.Size, info.Name, bs)
		}
		if b.Size/int(bs) > 65536 {
			return 0, 0, fmt.Errorf("block size %d is more than 65536 logical blocks", b.Size)
		}
		if info.MaxTransfer > 0 && b.Size > info.MaxTransfer {
			// A controller may treat a longer transfer as a fatal
			// transport error (SPDK does), ending the whole queue.
			return 0, 0, fmt.Errorf("block size %d is more than %s's maximum data transfer size (MDTS) of %d bytes: use a bs of at most %d",
				b.Size, info.Name, info.MaxTransfer, info.MaxTransfer)
		}
	}
	if j.Offset%bs != 0 {
		return 0, 0, fmt.Errorf("offset %d is not a multiple of the logical block size %d", j.Offset, bs)
	}
	capBytes := int64(info.Blocks) * bs
	if j.Offset >= capBytes {
		return 0, 0, fmt.Errorf("offset %d is beyond the end of %s (%d bytes)", j.Offset, info.Name, capBytes)
	}
	size := j.Size
	if size == 0 || j.Offset+size > capBytes {
		if size != 0 {
			return 0, 0, fmt.Errorf("offset %d + size %d is beyond the end of %s (%d bytes)", j.Offset, size, info.Name, capBytes)
		}
		size = capBytes - j.Offset
	}
	if size < int64(j.maxBS()) {
		return 0, 0, fmt.Errorf("size %d is smaller than the block size %d", size, j.maxBS())
	}
	return uint64(j.Offset / bs), uint64(size / bs), nil
}

func (j *Job) maxBS() int {
	m := 0
	for _, b := range j.BS {
		m = max(m, b.Size)
	}
	return m
}

func (j *Job) minBS() int {
	m := math.MaxInt
	for _, b := range j.BS {
		m = min(m, b.Size)
	}
	return m
}

// RWString is the job's rw option in fio's spelling.
func (j *Job) RWString() string {
	switch {
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
