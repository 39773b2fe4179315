package reports

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/loadgen"
)

// ShardFormat names the layout of a ShardResult (its "format" field), so
// a merge refuses a file it cannot read rather than misreading it.
const ShardFormat = "nvmftest-shard/1"

// ShardFile is the name of a shard's result in its report directory.
const ShardFile = "shard.json"

// ShardResult is what one shard of a load spread over several hosts did
// (nvmftest bench --shard I/N): enough to merge exactly. Every histogram
// is an HdrHistogram in its compressed base64 form (the payload of an
// HdrHistogram interval log line, version 2 encoding), values in ns;
// every time is absolute (UTC, ns), so shards' intervals line up by the
// clock, not by their order.
type ShardResult struct {
	Format string `json:"format"`
	// Shard is I of Shards (0-based).
	Shard  int    `json:"shard"`
	Shards int    `json:"shards"`
	Split  string `json:"split"`
	// Host is where the shard ran (the node's or pod's host name).
	Host string `json:"host,omitempty"`
	// StartAt is the agreed start (--start-at), zero without one.
	StartAt time.Time `json:"start_at,omitzero"`
	// Started is when the load started by this host's clock; Late how
	// long after StartAt that was (connecting included: a shard that was
	// scheduled late, or connected slowly, says so here).
	Started time.Time     `json:"started"`
	Late    time.Duration `json:"late_ns,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Interval is the length of the sampling intervals.
	Interval time.Duration `json:"interval_ns"`
	// Interrupted says a signal ended the shard early (partial results).
	Interrupted string     `json:"interrupted,omitempty"`
	Jobs        []ShardJob `json:"jobs"`
}

// ShardJob is one job of a shard.
type ShardJob struct {
	Name string `json:"name"`
	// NumJobs is this shard's clones of the job.
	NumJobs int `json:"numjobs"`
	// Seed is the job's random seed on this shard (loadgen.ShardSeed);
	// absent when randrepeat=0 seeded it from the clock.
	Seed        uint64        `json:"seed,omitempty"`
	RateLimited bool          `json:"rate_limited,omitempty"`
	Runtime     time.Duration `json:"runtime_ns"`
	Start       time.Time     `json:"start,omitzero"`
	End         time.Time     `json:"end,omitzero"`
	Error       string        `json:"error,omitempty"`
	// Options are the job's options as given, in order (name=value), for
	// the merged fio JSON.
	Options []string `json:"options,omitempty"`
	// IODepths, CPU and the verify counts are loadgen's, for the merged
	// fio output (CPU is the shard process's; the merge adds them up).
	IODepths       [7]int64         `json:"iodepths"`
	CPU            loadgen.CPUUsage `json:"cpu"`
	Verified       int64            `json:"verified_blocks,omitempty"`
	VerifyNoHeader int64            `json:"verify_no_header_blocks,omitempty"`
	Dirs           []ShardDir       `json:"dirs"`
}

// ShardDir is one direction (read, write, trim) of a shard's job.
type ShardDir struct {
	Dir   string `json:"dir"`
	IOs   int64  `json:"ios"`
	Bytes int64  `json:"bytes"`
	// Clat is the completion latency of the measured I/Os; Lat, for a
	// rate-limited job only, the latency from each I/O's intended time.
	Clat string `json:"clat_hist,omitempty"`
	Lat  string `json:"lat_hist,omitempty"`
	// Intervals are the samples over time, ramp_time included (marked).
	Intervals []ShardInterval `json:"intervals,omitempty"`
}

// ShardInterval is one sampling interval of a direction.
type ShardInterval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	IOs   int64     `json:"ios"`
	Bytes int64     `json:"bytes"`
	Ramp  bool      `json:"ramp,omitempty"`
	// Hist is the interval's latency histogram (lat), absent without I/O.
	Hist string `json:"hist,omitempty"`
}

// ShardMeta is what NewShardResult needs beyond the load's result.
type ShardMeta struct {
	Shard       loadgen.Shard
	Split       loadgen.ShardSplit
	Host        string
	StartAt     time.Time
	Interval    time.Duration
	Interrupted string
}

// NewShardResult records res, a shard's load, with intervalLog, the
// HdrHistogram interval log loadgen wrote of it (RunOptions.HistLog):
// its per-interval histograms become the shard's interval histograms.
func NewShardResult(res *loadgen.Result, intervalLog []byte, m ShardMeta) (*ShardResult, error) {
	s := &ShardResult{Format: ShardFormat, Shard: m.Shard.Index, Shards: max(m.Shard.Count, 1), Split: string(m.Split),
		Host: m.Host, StartAt: m.StartAt.UTC(), Started: res.Start.UTC(), Elapsed: res.Elapsed, Interval: m.Interval,
		Interrupted: m.Interrupted}
	if !m.StartAt.IsZero() {
		s.Late = res.Start.Sub(m.StartAt)
	}
	// The interval log by tag, in order; each line's times are absolute.
	logged := map[string][]*hdrhistogram.Histogram{}
	lr := hdrhistogram.NewHistogramLogReader(bytes.NewReader(intervalLog))
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			return nil, fmt.Errorf("interval log: %v", err)
		}
		if h == nil {
			break
		}
		logged[h.Tag()] = append(logged[h.Tag()], h)
	}
	for ji, jr := range res.Jobs {
		j := ShardJob{Name: jr.Job.Name, NumJobs: jr.Job.NumJobs, RateLimited: jr.RateLimited, Runtime: jr.Runtime,
			IODepths: jr.IODepths, CPU: jr.CPU, Verified: jr.Verified, VerifyNoHeader: jr.VerifyNoHeader}
		if jr.Job.SeedSet {
			j.Seed = jr.Job.Seed
		}
		if !jr.Start.IsZero() {
			j.Start, j.End = jr.Start.UTC(), jr.End.UTC()
		}
		if jr.Err != nil {
			j.Error = jr.Err.Error()
		}
		for _, k := range jr.Job.Order {
			j.Options = append(j.Options, k+"="+jr.Job.Options[k])
		}
		for _, op := range []loadgen.Op{loadgen.OpRead, loadgen.OpWrite, loadgen.OpTrim} {
			d := jr.Dir(op)
			if d.IOs == 0 && d.Clat == nil {
				continue
			}
			sd := ShardDir{Dir: op.String(), IOs: d.IOs, Bytes: d.Bytes}
			var err error
			if sd.Clat, err = encodeHist(d.Clat); err != nil {
				return nil, err
			}
			if jr.RateLimited {
				if sd.Lat, err = encodeHist(d.Lat); err != nil {
					return nil, err
				}
			}
			hs := logged[loadgen.LogTag(jr.Job.Name)+"."+op.String()]
			for _, smp := range res.Series {
				if smp.Job != ji || smp.Op != op {
					continue
				}
				end := res.Start.Add(smp.Elapsed)
				secs := smp.Length.Seconds()
				iv := ShardInterval{Start: end.Add(-smp.Length).UTC(), End: end.UTC(), Ramp: smp.Ramp,
					IOs: int64(math.Round(smp.IOPS * secs)), Bytes: int64(math.Round(smp.BW * secs))}
				if iv.IOs > 0 {
					// The log line of this interval: the same end, to the
					// log's millisecond (and µs text) resolution.
					for len(hs) > 0 && hs[0].EndTimeMs() < end.UnixMilli()-2 {
						hs = hs[1:]
					}
					if len(hs) > 0 && hs[0].EndTimeMs() <= end.UnixMilli()+2 {
						if iv.Hist, err = encodeHist(hs[0]); err != nil {
							return nil, err
						}
						hs = hs[1:]
					}
				}
				sd.Intervals = append(sd.Intervals, iv)
			}
			j.Dirs = append(j.Dirs, sd)
		}
		s.Jobs = append(s.Jobs, j)
	}
	return s, nil
}

func encodeHist(h *hdrhistogram.Histogram) (string, error) {
	if h == nil {
		return "", nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	return string(b), err
}

func decodeHist(s string) (*hdrhistogram.Histogram, error) {
	if s == "" {
		return nil, nil
	}
	return hdrhistogram.Decode([]byte(s))
}

// WriteFile writes s as dir/shard.json.
func (s *ShardResult) WriteFile(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ShardFile), append(b, '\n'), 0o644)
}

// ReadShard reads a shard's result: DIR/shard.json, or a shard.json (or a
// pod log holding one, see ParseShardLog) named directly.
func ReadShard(path string) (*ShardResult, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, ShardFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no shard result (a report directory of nvmftest bench --shard I/N holds %s)", path, ShardFile)
		}
		return nil, err
	}
	if bytes.Contains(b, []byte(shardBegin)) {
		return ParseShardLog(bytes.NewReader(b))
	}
	return decodeShard(b, path)
}

func decodeShard(b []byte, where string) (*ShardResult, error) {
	var s ShardResult
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: not a shard result: %v", where, err)
	}
	if s.Format != ShardFormat {
		return nil, fmt.Errorf("%s: format %q, want %q (written by another nvmftest version?)", where, s.Format, ShardFormat)
	}
	if s.Shards < 1 || s.Shard < 0 || s.Shard >= s.Shards {
		return nil, fmt.Errorf("%s: shard %d/%d is out of range", where, s.Shard, s.Shards)
	}
	return &s, nil
}

// A shard prints its result to standard output between these markers, so
// a pod's log carries it whatever else the log holds: the gzip-compressed
// JSON in base64 lines of 76 characters, the end marker with the SHA-256
// of the JSON. A log cut short, or lines interleaved, fail the checksum
// instead of merging wrong numbers.
const (
	shardBegin = "-----BEGIN NVMFTEST SHARD RESULT-----"
	shardEnd   = "-----END NVMFTEST SHARD RESULT"
)

// PrintShard writes s to w in the framed form ParseShardLog reads.
func PrintShard(w io.Writer, s *ShardResult) error {
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(js)
	zw.Close()
	enc := base64.StdEncoding.EncodeToString(z.Bytes())
	sum := sha256.Sum256(js)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d/%d\n", shardBegin, s.Shard, s.Shards)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	fmt.Fprintf(&b, "%s sha256=%s-----\n", shardEnd, hex.EncodeToString(sum[:]))
	_, err = io.WriteString(w, b.String())
	return err
}

// ParseShardLog finds the shard result PrintShard framed in a log (a pod's
// log, with anything else around it; log timestamps before each line, as
// kubectl logs --timestamps gives them, are allowed). The last complete
// result wins: a container restarted by its Job prints again.
func ParseShardLog(r io.Reader) (*ShardResult, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var body strings.Builder
	in := false
	var found *ShardResult
	var lastErr error
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if i := strings.Index(line, shardBegin); i >= 0 {
			in = true
			body.Reset()
			continue
		}
		if !in {
			continue
		}
		if i := strings.Index(line, shardEnd); i >= 0 {
			in = false
			s, err := unframe(body.String(), line[i+len(shardEnd):])
			if err != nil {
				lastErr = err
				continue
			}
			found, lastErr = s, nil
			continue
		}
		if f := strings.Fields(line); len(f) > 0 {
			body.WriteString(f[len(f)-1]) // the base64 text, after any timestamp
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	switch {
	case found != nil:
		return found, nil
	case lastErr != nil:
		return nil, lastErr
	case in:
		return nil, errors.New("shard result cut short: the log ends before its end marker")
	}
	return nil, errors.New("no shard result in the log (the shard failed before printing it, or is not nvmftest bench --shard --print-result)")
}

func unframe(b64, tail string) (*ShardResult, error) {
	_, want, _ := strings.Cut(tail, "sha256=")
	want = strings.TrimSuffix(strings.TrimSpace(want), "-----")
	z, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("shard result in the log is damaged: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("shard result in the log is damaged: %v", err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("shard result in the log is damaged: %v", err)
	}
	sum := sha256.Sum256(js)
	if hex.EncodeToString(sum[:]) != want {
		return nil, errors.New("shard result in the log fails its checksum (lines lost or interleaved)")
	}
	return decodeShard(js, "shard result in the log")
}
