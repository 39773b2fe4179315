package target

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/nvmftest/nvmftest/nvme"
)

// Operation classes the counters are kept by.
const (
	opRead  = iota // Read
	opWrite        // Write
	opOther        // everything else on an I/O queue
	numOps
)

// OpNames names the operation classes, as IOStats.Latency keys them.
var OpNames = [numOps]string{"read", "write", "other"}

// Latency histograms are in microseconds, 1 µs to 60 s, two significant
// digits: about 20 KiB each, made on first use.
const (
	latMin, latMax = 1, 60_000_000
	latDigits      = 2
)

func newLatHist() *hdrhistogram.Histogram { return hdrhistogram.New(latMin, latMax, latDigits) }

// nsStats is one I/O queue's counters for one namespace (tot nil: the
// commands that named no namespace, or one that does not exist). The
// queue's receive goroutine and its workers record; readers merge. The
// counters are atomics of the queue's own (no sharing between queues),
// the histograms are under mu, which only the queue's goroutines and a
// stats reader take.
type nsStats struct {
	tot  *nsTotals
	nsid uint32

	cmds   [numOps]atomic.Uint64
	latSum [numOps]atomic.Uint64 // nanoseconds
	errs   atomic.Uint64
	// ok and okBytes count successful reads (Read, Compare) and writes
	// (Write): the SMART log's Host Read/Write Commands and Data Units.
	ok      [2]atomic.Uint64
	okBytes [2]atomic.Uint64

	mu       sync.Mutex
	lat      [numOps]*hdrhistogram.Histogram
	byStatus map[nvme.Status]uint64
}

// nsTotals is what a namespace's queues that have ended counted, under
// Target.mu. It is shared by the namespace a resize puts in its place.
type nsTotals struct {
	retired IOStats
}

// statFor returns q's counters for ns (nil: none), making them on first
// use. Receive goroutine only; q.stats grows under q.statMu for readers.
func (q *queue) statFor(ns *namespace) *nsStats {
	var tot *nsTotals
	var nsid uint32
	if ns != nil {
		tot, nsid = ns.st, ns.id
	}
	if s := q.lastStat; s != nil && s.tot == tot {
		return s
	}
	for _, s := range q.stats {
		if s.tot == tot {
			q.lastStat = s
			return s
		}
	}
	s := &nsStats{tot: tot, nsid: nsid}
	q.statMu.Lock()
	q.stats = append(q.stats, s)
	q.statMu.Unlock()
	q.lastStat = s
	return s
}

// record counts a completed I/O command. It allocates only for the first
// command of a class (the histogram) and for an error status not seen
// before on this queue and namespace.
func (s *nsStats) record(c *command, st nvme.Status) {
	op := opOther
	switch c.sqe.Opcode {
	case nvme.CmdRead:
		op = opRead
	case nvme.CmdWrite:
		op = opWrite
	}
	lat := time.Since(c.q.t.started0) - c.start
	s.cmds[op].Add(1)
	s.latSum[op].Add(uint64(lat))
	if st.Success() {
		switch c.sqe.Opcode {
		case nvme.CmdRead, nvme.CmdCompare:
			if !c.q.t.quirks.smartReadsStatic {
				s.ok[0].Add(1)
				s.okBytes[0].Add(uint64(c.xfer))
			}
		case nvme.CmdWrite:
			s.ok[1].Add(1)
			s.okBytes[1].Add(uint64(c.xfer))
		}
	} else {
		s.errs.Add(1)
	}
	s.mu.Lock()
	h := s.lat[op]
	if h == nil {
		h = newLatHist()
		s.lat[op] = h
	}
	_ = h.RecordValue(max(lat.Microseconds(), latMin)) // above latMax: dropped
	if !st.Success() {
		if s.byStatus == nil {
			s.byStatus = map[nvme.Status]uint64{}
		}
		s.byStatus[st.Code()]++
	}
	s.mu.Unlock()
}

// addTo adds what s counted to d.
func (s *nsStats) addTo(d *IOStats) {
	d.Reads += s.cmds[opRead].Load()
	d.Writes += s.cmds[opWrite].Load()
	d.Others += s.cmds[opOther].Load()
	d.Errors += s.errs.Load()
	d.ReadOK += s.ok[0].Load()
	d.WriteOK += s.ok[1].Load()
	d.BytesRead += s.okBytes[0].Load()
	d.BytesWritten += s.okBytes[1].Load()
	for op := range numOps {
		d.latSum[op] += s.latSum[op].Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for op, h := range s.lat {
		if h != nil {
			d.merge(op, h)
		}
	}
	for st, n := range s.byStatus {
		d.addStatus(st, n)
	}
}

// IOStats are the I/O command counters of a queue, a controller, a
// namespace or the whole target.
type IOStats struct {
	Reads  uint64 `json:"reads"`  // Read commands completed
	Writes uint64 `json:"writes"` // Write commands completed
	Others uint64 `json:"others"` // other I/O commands completed (Flush, Compare, DSM, ...)
	Errors uint64 `json:"errors"` // commands that completed with an error status
	// ReadOK and WriteOK are the successful Read and Compare, and Write,
	// commands: the SMART log's Host Read and Host Write Commands.
	ReadOK  uint64 `json:"read_ok"`
	WriteOK uint64 `json:"write_ok"`
	// BytesRead and BytesWritten are the data of those commands.
	BytesRead    uint64 `json:"bytes_read"`
	BytesWritten uint64 `json:"bytes_written"`
	// ErrorsByStatus counts the errors by status ("SCT/SC name").
	ErrorsByStatus map[string]uint64 `json:"errors_by_status,omitempty"`
	// Latency summarizes each operation class's latency ("read",
	// "write", "other"), from arrival of the command to its completion.
	Latency map[string]LatencySummary `json:"latency,omitempty"`

	latSum   [numOps]uint64 // nanoseconds
	hist     [numOps]*hdrhistogram.Histogram
	byStatus map[nvme.Status]uint64
}

// LatencySummary is one latency histogram summarized, in microseconds.
type LatencySummary struct {
	Count  int64   `json:"count"`
	MeanUs float64 `json:"mean_us"`
	P50Us  int64   `json:"p50_us"`
	P99Us  int64   `json:"p99_us"`
	P999Us int64   `json:"p99_9_us"`
	MaxUs  int64   `json:"max_us"`
}

func (d *IOStats) merge(op int, h *hdrhistogram.Histogram) {
	if d.hist[op] == nil {
		d.hist[op] = newLatHist()
	}
	d.hist[op].Merge(h)
}

func (d *IOStats) addStatus(st nvme.Status, n uint64) {
	if d.byStatus == nil {
		d.byStatus = map[nvme.Status]uint64{}
	}
	d.byStatus[st] += n
}

// Add adds o's counts to d.
func (d *IOStats) Add(o *IOStats) {
	d.Reads += o.Reads
	d.Writes += o.Writes
	d.Others += o.Others
	d.Errors += o.Errors
	d.ReadOK += o.ReadOK
	d.WriteOK += o.WriteOK
	d.BytesRead += o.BytesRead
	d.BytesWritten += o.BytesWritten
	for op := range numOps {
		d.latSum[op] += o.latSum[op]
		if o.hist[op] != nil {
			d.merge(op, o.hist[op])
		}
	}
	for st, n := range o.byStatus {
		d.addStatus(st, n)
	}
}

// Commands is every I/O command completed.
func (d *IOStats) Commands() uint64 { return d.Reads + d.Writes + d.Others }

// StatusCounts returns the errors by status.
func (d *IOStats) StatusCounts() map[nvme.Status]uint64 { return maps.Clone(d.byStatus) }

// LatencyBuckets returns op's latency as a cumulative histogram over
// bounds (seconds, ascending): the count of commands, their total latency
// in seconds and, per bound, the commands at or below it. ok is false
// when the operation class has no commands.
func (d *IOStats) LatencyBuckets(op string, bounds []float64) (count uint64, sum float64, buckets map[float64]uint64, ok bool) {
	i := slices.Index(OpNames[:], op)
	if i < 0 || d.hist[i] == nil {
		return 0, 0, nil, false
	}
	h := d.hist[i]
	buckets = make(map[float64]uint64, len(bounds))
	for _, b := range bounds {
		buckets[b] = 0
	}
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		// A bar holds values in [From, To] (µs): it counts for every bound
		// at or above its top, so a bucket never claims more speed than
		// was measured.
		top := float64(bar.To) / 1e6
		for _, b := range bounds {
			if top <= b {
				buckets[b] += uint64(bar.Count)
			}
		}
	}
	return uint64(h.TotalCount()), float64(d.latSum[i]) / 1e9, buckets, true
}

// fill sets the exported summaries from the histograms and statuses.
func (d *IOStats) fill() {
	d.ErrorsByStatus = nil
	for st, n := range d.byStatus {
		if d.ErrorsByStatus == nil {
			d.ErrorsByStatus = map[string]uint64{}
		}
		d.ErrorsByStatus[StatusName(st)] += n
	}
	d.Latency = nil
	for op, h := range d.hist {
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		if d.Latency == nil {
			d.Latency = map[string]LatencySummary{}
		}
		d.Latency[OpNames[op]] = LatencySummary{Count: h.TotalCount(), MeanUs: h.Mean(),
			P50Us: h.ValueAtQuantile(50), P99Us: h.ValueAtQuantile(99), P999Us: h.ValueAtQuantile(99.9), MaxUs: h.Max()}
	}
}

// StatusName writes a status as "SCT/SC name", e.g. "0/80 LBA Out of Range".
func StatusName(st nvme.Status) string {
	return nvme.Status(st.Code()).String()
}

// Stats is a snapshot of what the target has done since it started.
type Stats struct {
	Started time.Time `json:"started"`
	Uptime  string    `json:"uptime"`
	// Connections is the TCP connections open now; Accepted all since
	// the start.
	Connections int    `json:"connections"`
	Accepted    uint64 `json:"connections_accepted"`
	// Associations is the controllers created since the start (each one
	// association); Controllers are those alive now.
	Associations uint64 `json:"associations"`
	// RefusedConnects counts the connections and Connect commands
	// refused, by reason.
	RefusedConnects map[string]uint64 `json:"refused_connects"`
	// Total is every I/O command since the start.
	Total       IOStats           `json:"total"`
	Subsystems  []SubsystemStats  `json:"subsystems"`
	Controllers []ControllerStats `json:"controllers"`
}

// SubsystemStats are a subsystem's namespaces' counters since the start
// (a namespace keeps its counters while it exists; resizing keeps them).
type SubsystemStats struct {
	NQN        string           `json:"nqn"`
	Namespaces []NamespaceStats `json:"namespaces"`
}

// NamespaceStats are one namespace's counters.
type NamespaceStats struct {
	NSID uint32 `json:"nsid"`
	IOStats
}

// ControllerStats are a live controller's counters: its I/O queues, now
// and gone.
type ControllerStats struct {
	CNTLID    uint16       `json:"cntlid"`
	Subsystem string       `json:"subnqn"`
	Host      string       `json:"hostnqn"`
	Remote    string       `json:"remote"`
	Queues    []QueueStats `json:"queues"`
	IOStats
}

// QueueStats are one live I/O queue's counters.
type QueueStats struct {
	QID    uint16 `json:"qid"`
	Remote string `json:"remote"`
	IOStats
}

// queueStats adds what q counted to d, and to the namespaces' totals in
// byNS when it is not nil. Called with t.mu held.
func (q *queue) queueStats(d *IOStats, byNS map[*nsTotals]*IOStats) {
	q.statMu.Lock()
	l := slices.Clone(q.stats)
	q.statMu.Unlock()
	for _, s := range l {
		if byNS != nil && s.tot != nil {
			x := byNS[s.tot]
			if x == nil {
				x = &IOStats{}
				byNS[s.tot] = x
			}
			s.addTo(x)
		}
		s.addTo(d)
	}
}

// retireQueue moves what an ending queue counted into the totals that
// outlive it: its namespaces', its controller's and the target's. Called
// with t.mu held, as the queue leaves t.queues, so a reader sees each
// count once.
func (t *Target) retireQueue(q *queue) {
	q.statMu.Lock()
	l := q.stats
	q.stats = nil
	q.statMu.Unlock()
	for _, s := range l {
		var x IOStats
		s.addTo(&x)
		if s.tot != nil {
			s.tot.retired.Add(&x)
		}
		if c := q.ctrl; c != nil {
			c.retired.Add(&x)
		}
		t.retired.Add(&x)
	}
}

// nsIOStats returns ns's counters since it was made. Called with t.mu held.
func (t *Target) nsIOStats(tot *nsTotals) IOStats {
	var d IOStats
	d.Add(&tot.retired)
	for q := range t.queues {
		q.statMu.Lock()
		l := slices.Clone(q.stats)
		q.statMu.Unlock()
		for _, s := range l {
			if s.tot == tot {
				s.addTo(&d)
			}
		}
	}
	return d
}

// countRefused counts a refused connection or Connect by reason.
func (t *Target) countRefused(reason string) {
	t.statsMu.Lock()
	t.refusedBy[reason]++
	t.statsMu.Unlock()
}

// Stats returns a snapshot of the target's counters.
func (t *Target) Stats() Stats {
	st := Stats{Started: t.started0, Uptime: time.Since(t.started0).Round(time.Millisecond).String()}
	st.Accepted = t.accepted.Load()
	st.Associations = t.associations.Load()
	t.statsMu.Lock()
	st.RefusedConnects = maps.Clone(t.refusedBy)
	t.statsMu.Unlock()
	if st.RefusedConnects == nil {
		st.RefusedConnects = map[string]uint64{}
	}
	t.mu.Lock()
	st.Connections = len(t.queues)
	st.Total.Add(&t.retired)
	byNS := map[*nsTotals]*IOStats{}
	byCtrl := map[*controller]*ControllerStats{}
	for _, c := range t.ctrls {
		if c.disc {
			continue
		}
		cs := &ControllerStats{CNTLID: c.cntlid, Subsystem: c.sub.nqn, Host: c.host, Remote: c.remote, Queues: []QueueStats{}}
		cs.IOStats.Add(&c.retired)
		byCtrl[c] = cs
	}
	for q := range t.queues {
		var qs QueueStats
		q.queueStats(&qs.IOStats, byNS)
		st.Total.Add(&qs.IOStats)
		qid := uint16(q.statQID.Load())
		if cs := byCtrl[q.statCtrl.Load()]; cs != nil && qid != 0 {
			cs.IOStats.Add(&qs.IOStats)
			qs.QID, qs.Remote = qid, q.nc.RemoteAddr().String()
			qs.fill()
			cs.Queues = append(cs.Queues, qs)
		}
	}
	subs := slices.Clone(t.subsys)
	for _, s := range subs {
		ss := SubsystemStats{NQN: s.nqn, Namespaces: []NamespaceStats{}}
		for _, ns := range s.table().list() {
			n := NamespaceStats{NSID: ns.id}
			n.IOStats.Add(&ns.st.retired)
			if x := byNS[ns.st]; x != nil {
				n.IOStats.Add(x)
			}
			n.fill()
			ss.Namespaces = append(ss.Namespaces, n)
		}
		st.Subsystems = append(st.Subsystems, ss)
	}
	t.mu.Unlock()
	st.Controllers = []ControllerStats{}
	for _, cs := range byCtrl {
		slices.SortFunc(cs.Queues, func(a, b QueueStats) int { return int(a.QID) - int(b.QID) })
		cs.fill()
		st.Controllers = append(st.Controllers, *cs)
	}
	slices.SortFunc(st.Controllers, func(a, b ControllerStats) int { return int(a.CNTLID) - int(b.CNTLID) })
	if st.Subsystems == nil {
		st.Subsystems = []SubsystemStats{}
	}
	st.Total.fill()
	return st
}

// subNQN is the controller's subsystem NQN (the discovery NQN for a
// discovery controller).
func (c *controller) subNQN() string {
	if c.sub == nil {
		return nvme.DiscoveryNQN
	}
	return c.sub.nqn
}

// Uptime is the time since the target was made.
func (t *Target) Uptime() time.Duration { return time.Since(t.started0) }
