package loadgen

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard names one part of a run spread over several hosts: shard Index
// (0-based, as Kubernetes' JOB_COMPLETION_INDEX) of Count.
type Shard struct{ Index, Count int }

// String is "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// ParseShard parses "I/N" with 0 <= I < N.
func ParseShard(v string) (Shard, error) {
	a, b, ok := strings.Cut(v, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("give shard I of N as I/N, 0-based: 0/4 .. 3/4")
	}
	if n < 1 || n > 10000 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %d/%d: I counts from 0 to N-1 (N at most 10000)", i, n)
	}
	return Shard{i, n}, nil
}

// ShardSplit says what of a job a shard takes. The job always describes
// the whole load; the shards together run it once.
type ShardSplit string

const (
	// SplitNumJobs gives each shard its share of numjobs (the clones I,
	// I+N, I+2N ...): every clone covers the job's whole region, as fio's
	// clones do. It needs numjobs >= N.
	SplitNumJobs ShardSplit = "numjobs"
	// SplitRegion divides numjobs as SplitNumJobs and also the job's region
	// (offset, size) into N disjoint slices: shard I does I/O only in
	// slice I, so writers on different hosts never overlap and sequential
	// jobs do not all read the same blocks.
	SplitRegion ShardSplit = "region"
	// SplitNSID gives each shard its share of the namespaces (nsid list:
	// the I-th, (I+N)-th ...); each shard runs the job's numjobs on each
	// of its namespaces. It needs at least N namespaces.
	SplitNSID ShardSplit = "nsid"
)

// ParseShardSplit parses a --shard-split value.
func ParseShardSplit(v string) (ShardSplit, error) {
	switch s := ShardSplit(v); s {
	case SplitNumJobs, SplitRegion, SplitNSID:
		return s, nil
	}
	return "", fmt.Errorf("use numjobs, region or nsid")
}

// defaultSeed is the seed of a job without randseed under randrepeat
// (fio's default): the same offsets every run.
const defaultSeed = uint64(0x6e766d66)

// ShardSeed is the random seed shard s of a job seeded with seed uses:
// different for every shard (their offsets must not repeat each other's)
// and the same for the same job, shard and N on every run (randrepeat).
func ShardSeed(seed uint64, s Shard) uint64 {
	if s.Count <= 1 {
		return seed
	}
	// splitmix64 of the seed and the shard index: neighbouring indexes
	// give unrelated seeds.
	z := seed ^ (uint64(s.Index)+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ShardJobs returns shard s's part of jobs, split as split says (see
// ShardSplit); nsids are the namespaces a job without its own nsid= runs
// on (the --nsid flag). The jobs are clones: jobs is left as it is. Each
// returned job keeps its name, so shards' results merge job by job, and
// gets its own seed (ShardSeed) unless randrepeat=0 seeds it from the
// clock anyway. A job a shard gets no clone of is left out of that shard;
// a shard left with nothing is an error, as is a split the jobs cannot
// take (numjobs < N).
func ShardJobs(jobs []*Job, s Shard, split ShardSplit, nsids []uint32) ([]*Job, error) {
	if s.Count <= 1 {
		return jobs, nil
	}
	var out []*Job
	stonewall := false
	for _, j := range jobs {
		c := j.Clone()
		if c.RandRepeat || c.SeedSet {
			base := defaultSeed
			if c.SeedSet {
				base = c.Seed
			}
			c.Seed, c.SeedSet = ShardSeed(base, s), true
		}
		switch split {
		case SplitNumJobs, SplitRegion:
			if c.NumJobs < s.Count {
				return nil, usageErrorf("job %s: numjobs=%d cannot be split over %d shards: give numjobs of at least %d (a multiple of %d keeps the shards even), or --shard-split nsid",
					j.Name, c.NumJobs, s.Count, s.Count, s.Count)
			}
			c.NumJobs = c.NumJobs / s.Count
			if s.Index < j.NumJobs%s.Count {
				c.NumJobs++
			}
			if split == SplitRegion || c.Verify != "" {
				// Verifying clones get disjoint slices of the region
				// (newWorker); across hosts the shards must too.
				c.Slice, c.Slices = s.Index, s.Count
			}
		case SplitNSID:
			list := nsids
			if v, ok := c.Options["nsid"]; ok {
				var err error
				if list, err = ParseNSIDs(v); err != nil {
					return nil, usageErrorf("job %s: nsid=%s: %v", j.Name, v, err)
				}
			}
			if len(list) < s.Count {
				return nil, usageErrorf("job %s: %d namespace(s) cannot be split over %d shards: give at least %d (--nsid 1-%d), or --shard-split numjobs",
					j.Name, len(list), s.Count, s.Count, s.Count)
			}
			var mine []string
			for i := s.Index; i < len(list); i += s.Count {
				mine = append(mine, strconv.FormatUint(uint64(list[i]), 10))
			}
			c.Options["nsid"] = strings.Join(mine, ",")
		default:
			return nil, usageErrorf("--shard-split %q: use numjobs, region or nsid", split)
		}
		if c.NumJobs == 0 {
			// This shard has no clone of the job; a stonewall it carried
			// still separates the jobs before it from those after.
			stonewall = stonewall || c.Stonewall
			continue
		}
		if stonewall && len(out) > 0 {
			c.Stonewall = true
		}
		stonewall = false
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, usageErrorf("shard %s gets no clone of any job: give numjobs of at least %d", s, s.Count)
	}
	return out, nil
}
