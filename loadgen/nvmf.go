package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/nvmftest/nvmftest/initiator"
)

// Address says where jobs run unless their options (traddr, trsvcid,
// subnqn, nsid) say otherwise.
type Address struct {
	Addr   string // traddr
	Port   string // trsvcid (default 4420)
	SubNQN string
	NSIDs  []uint32 // default [1]
}

// Connection is the set of controllers a run uses, one per target
// address; Close shuts them down.
type Connection struct {
	Ctrls []*initiator.Controller
}

// Close closes every controller.
func (c *Connection) Close() error {
	var errs []error
	for _, ctrl := range c.Ctrls {
		errs = append(errs, ctrl.Close())
	}
	return errors.Join(errs...)
}

type place struct {
	addr, nqn string
}

// Dial connects to every target the jobs name and returns one Target per
// job and namespace (a job given several namespaces runs once on each,
// named JOB/nsN). Each clone gets its own I/O queue, each queue its own
// TCP connection; jobs at one address share a controller with as many
// queues as they have clones, and each queue is iodepth+1 deep.
func Dial(ctx context.Context, jobs []*Job, def Address, opts initiator.Options) ([]Target, *Connection, error) {
	type plan struct {
		job  *Job
		at   place
		nsid uint32
	}
	var plans []plan
	need := map[place]int{}
	depth := map[place]int{}
	maxBS := map[place]int{} // with depth, for queues deep enough for split I/Os
	poll := map[place]bool{} // hipri: any job at a place polls its queues
	var order []place
	for _, j := range jobs {
		host, port, nqn := def.Addr, def.Port, def.SubNQN
		if v, ok := j.Options["traddr"]; ok {
			host = v
		}
		if v, ok := j.Options["trsvcid"]; ok {
			port = v
		}
		if v, ok := j.Options["subnqn"]; ok {
			nqn = v
		}
		var fileNS []uint32
		if v, ok := j.Options["filename"]; ok {
			fn, err := ParseFilename(v)
			if err != nil {
				return nil, nil, fmt.Errorf("job %s: filename=%s: %w", j.Name, v, err)
			}
			host, port, nqn = cmp.Or(fn.Addr, host), cmp.Or(fn.Port, port), cmp.Or(fn.SubNQN, nqn)
			if fn.NSID != 0 {
				fileNS = []uint32{fn.NSID}
			}
		}
		if port == "" {
			port = "4420"
		}
		if host == "" || nqn == "" {
			return nil, nil, fmt.Errorf("job %s: no target: give -a ADDRESS and -n SUBNQN (or traddr= and subnqn= in the job file)", j.Name)
		}
		nsids := def.NSIDs
		if v, ok := j.Options["nsid"]; ok {
			var err error
			if nsids, err = ParseNSIDs(v); err != nil {
				return nil, nil, fmt.Errorf("job %s: nsid=%s: %w", j.Name, v, err)
			}
		}
		if fileNS != nil {
			nsids = fileNS
		}
		if len(nsids) == 0 {
			nsids = []uint32{1}
		}
		at := place{net.JoinHostPort(host, port), nqn}
		if _, ok := need[at]; !ok {
			order = append(order, at)
		}
		for i, ns := range nsids {
			jj := j
			if len(nsids) > 1 {
				jj = j.Clone()
				jj.Name = fmt.Sprintf("%s/ns%d", j.Name, ns)
				if i > 0 {
					// One job on several namespaces runs at once, in one
					// group, as fio's numjobs clones do.
					jj.Stonewall, jj.NewGroup = false, false
				}
			}
			plans = append(plans, plan{jj, at, ns})
			poll[at] = poll[at] || j.HiPri
			need[at] += j.NumJobs
			depth[at] = max(depth[at], j.IODepth)
			maxBS[at] = max(maxBS[at], j.maxBS())
		}
	}
	conn := &Connection{}
	ctrls := map[place]*initiator.Controller{}
	next := map[place]int{}
	for _, at := range order {
		o := opts
		o.NrIOQueues = need[at]
		o.QueueSize = depth[at] + 1
		o.Poll = o.Poll || poll[at]
		c, err := initiator.Connect(ctx, at.addr, at.nqn, o)
		if err == nil {
			// An I/O beyond MDTS goes as several commands: ask for a
			// queue that holds iodepth of them (MDTS is known only now).
			mdts := c.MaxTransferSize()
			if need := depth[at]*((maxBS[at]+mdts-1)/max(mdts, 1)) + 1; mdts > 0 && maxBS[at] > mdts && need > o.QueueSize {
				c.Close()
				o.QueueSize = need
				c, err = initiator.Connect(ctx, at.addr, at.nqn, o)
			}
		}
		if err != nil {
			conn.Close()
			return nil, nil, &ConnectError{NQN: at.nqn, Addr: at.addr, Err: err}
		}
		conn.Ctrls = append(conn.Ctrls, c)
		if got := len(c.IOQueues()); got < need[at] {
			conn.Close()
			return nil, nil, fmt.Errorf("%s at %s granted %d I/O queues, the jobs need %d (one per clone)", at.nqn, at.addr, got, need[at])
		}
		ctrls[at] = c
	}
	var targets []Target
	for _, p := range plans {
		c := ctrls[p.at]
		t := Target{Job: p.job}
		for range p.job.NumJobs {
			q := c.IOQueues()[next[p.at]]
			next[p.at]++
			d, err := OpenNVMe(ctx, c, q, p.nsid)
			if err != nil {
				conn.Close()
				return nil, nil, fmt.Errorf("job %s: %s at %s: %w", p.job.Name, p.at.nqn, p.at.addr, err)
			}
			d.Name = fmt.Sprintf("%s ns%d @ %s q%d", p.at.nqn, p.nsid, p.at.addr, q.QID())
			t.Devices = append(t.Devices, d)
		}
		targets = append(targets, t)
	}
	return targets, conn, nil
}

// ParseNSIDs parses "1", "1,2" or "1-4".
func ParseNSIDs(s string) ([]uint32, error) {
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("bad namespace ID %q", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b < a || b-a > 1024 {
				return nil, fmt.Errorf("bad namespace range %q", part)
			}
		}
		for n := a; n <= b; n++ {
			out = append(out, uint32(n))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no namespace IDs")
	}
	return out, nil
}

// Filename is a job's filename= in the form of SPDK's fio plugin, which
// fio users of NVMe-oF know: "trtype=tcp adrfam=ipv4 traddr=10.0.0.5
// trsvcid=4420 subnqn=NQN ns=2", each part optional (the rest comes from
// the command line). One filename names one namespace.
type Filename struct {
	Addr, Port, SubNQN string
	NSID               uint32 // 0: not given
}

// ParseFilename parses a filename= value (see Filename).
func ParseFilename(s string) (Filename, error) {
	var f Filename
	if strings.HasPrefix(s, "/") || !strings.Contains(s, "=") {
		return f, fmt.Errorf("nvmftest reaches namespaces over NVMe/TCP itself, not through a device node: " +
			"give filename='traddr=ADDRESS trsvcid=PORT subnqn=NQN ns=NSID' (SPDK fio plugin form, parts optional), or -a/-s/-n/--nsid")
	}
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return f, fmt.Errorf("%q: want KEY=VALUE (traddr, trsvcid, subnqn, ns)", kv)
		}
		switch strings.ToLower(k) {
		case "trtype":
			if !strings.EqualFold(v, "tcp") {
				return f, fmt.Errorf("trtype=%s: nvmftest speaks NVMe/TCP only (trtype=tcp)", v)
			}
		case "adrfam":
		case "traddr":
			f.Addr = v
		case "trsvcid":
			f.Port = v
		case "subnqn":
			f.SubNQN = v
		case "ns", "nsid":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 || n == 0xFFFFFFFF {
				return f, fmt.Errorf("%s=%s: want a namespace ID such as 1", k, v)
			}
			f.NSID = uint32(n)
		default:
			return f, fmt.Errorf("%q: unknown key %q (want traddr, trsvcid, subnqn, ns)", kv, k)
		}
	}
	return f, nil
}

// ConnectError is Dial's error when a job's target refuses or cannot be
// reached: the caller knows which NQN and address failed, to say what to
// do about it.
type ConnectError struct {
	NQN, Addr string
	Err       error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("failed to connect to %s at %s: %v", e.NQN, e.Addr, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }
