//go:build linux

package soak

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/target"
)

// soak is one run: the target, the actors' shared state and the oracles'
// figures.
type soak struct {
	t    *testing.T
	set  settings
	tg   *target.Target
	addr map[uint16]string // by port ID
	rep  *report
	logs *logTap

	// gate serializes descriptor exhaustion (the emfile actor takes it
	// exclusively) with everything else in the process that opens a
	// descriptor (dials, /proc reads), which takes it shared: while the
	// limit is lowered, only the target's accept loop may meet it.
	gate   sync.RWMutex
	nofile syscall.Rlimit

	stop    chan struct{}
	stopped atomic.Bool

	base  sample
	peak  peaks
	slack int64 // bytes an ended connection may still deliver (kernel buffers)

	hosts map[string]*hostIdentity // by actor id, and "fresh"
}

// The region plan: each namespace is cut into regions; each well-behaved
// host identity owns one (and nobody else writes it), misbehaving peers
// write only the scratch regions.
const (
	regions       = 8
	regionFresh   = 6 // the fresh host at the end
	regionScratch = 7 // misbehaving peers
	regionAbrupt  = 5 // the abrupt actor's real host
	lanesPerHost  = 8
)

// hostRegions maps well-behaved actor instances to their regions.
var hostRegions = map[string]int{"host#0": 0, "host#1": 1, "digest#0": 2, "digest#1": 3, "multipath#0": 4}

// actorSpec is one kind of actor: its name (for NVMFTEST_SOAK_SKIP and the
// report), how many run at once, and its loop.
type actorSpec struct {
	name string
	n    int
	run  func(a *actor)
}

func actorSpecs() []actorSpec {
	return []actorSpec{
		// well-behaved
		{"host", 2, runHost},
		{"digest", 2, runHost},
		{"multipath", 1, runMultipath},
		{"discovery", 1, runDiscovery},
		// misbehaving
		{"halfpdu", 1, runHalfPDU},
		{"icreqonly", 1, runICReqOnly},
		{"flood", 1, runFlood},
		{"emfile", 1, runEMFILE},
		{"slowreader", 1, runSlowReader},
		{"fused", 1, runFused},
		{"r2tstall", 1, runR2TStall},
		{"abrupt", 1, runAbrupt},
		{"termreq", 1, runTermReq},
		{"baddigest", 1, runBadDigest},
		{"outoforder", 1, runOutOfOrder},
		{"badconnect", 1, runBadConnect},
		{"afterdisconnect", 1, runAfterDisconnect},
	}
}

func actorNames() []string {
	var l []string
	for _, s := range actorSpecs() {
		l = append(l, s.name)
	}
	return l
}

// TestSoak runs the target against every actor for the configured time,
// then checks that it lets go of everything and still serves.
func TestSoak(t *testing.T) {
	set := loadSettings(t)
	if dl, ok := t.Deadline(); ok {
		need := set.dur + endBound + 2*settleMax + 2*time.Minute
		if left := time.Until(dl); left < need {
			t.Fatalf("a %v soak needs about %v but the test binary's -timeout leaves %v (raise -timeout)", set.dur, need.Round(time.Second), left.Round(time.Second))
		}
	}
	// Straight to stdout: if the target panics, the process dies with the
	// trace and this line is all that tells how to get there again.
	fmt.Printf("soak: seed %d, actors for %v: %s\nsoak: rerun with %s\n", set.seed, set.dur, strings.Join(set.actors, ","), set.rerun())

	s := setup(t, set)
	defer s.finalReport()
	if !s.run() {
		return
	}
	fin, took, ex := s.settle()
	t.Logf("settled after the actors in %v: %v", took.Round(10*time.Millisecond), fin)
	if ex != nil {
		t.Errorf("the target did not let go within %v of the last actor stopping:\n  %s\n  fds: %s\n  goroutines:\n%s",
			settleMax, strings.Join(ex, "\n  "), s.fdKinds(), goroutineDump())
	}
	s.freshHost()
	fin, took, ex = s.settle()
	t.Logf("settled after the fresh host in %v: %v", took.Round(10*time.Millisecond), fin)
	if ex != nil {
		t.Errorf("the fresh host left something behind:\n  %s", strings.Join(ex, "\n  "))
	}
}

// setup starts the target, prefills every namespace and takes the
// baseline.
func setup(t *testing.T, set settings) *soak {
	s := &soak{t: t, set: set, rep: newReport(), logs: newLogTap(), stop: make(chan struct{}), addr: map[uint16]string{}, hosts: map[string]*hostIdentity{}}
	var err error
	if s.nofile, err = raiseNOFILE(); err != nil {
		t.Fatalf("descriptor limit: %v", err)
	}
	if need := uint64(4*floodMax + 512); s.nofile.Cur < need {
		t.Fatalf("RLIMIT_NOFILE %d: the soak holds both ends of up to %d connections; raise the hard limit to %d", s.nofile.Cur, maxConnections, need)
	}
	s.slack = int64(2*peerRcvBuf + sysctlMax("/proc/sys/net/ipv4/tcp_wmem", 4<<20) + 1<<20)

	tg, err := target.New(soakConfig(t.TempDir()), target.WithLogger(slog.New(s.logs)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Close() })
	s.tg = tg
	for _, p := range tg.Ports() {
		s.addr[p.PortID] = p.Address
	}

	for id, r := range hostRegions {
		s.hosts[id] = newIdentity(id, r)
	}
	s.hosts["fresh"] = newIdentity("fresh", regionFresh)
	if err := s.prefill(); err != nil {
		t.Fatalf("prefill: %v", err)
	}
	// The prefill host's association ends asynchronously: the baseline is
	// taken once the target has let go of it and the figures are steady.
	deadline := time.Now().Add(settleMax)
	prev := s.measure(true)
	for {
		time.Sleep(200 * time.Millisecond)
		cur := s.measure(true)
		if cur.ctrls == 0 && cur.goroutines == prev.goroutines && cur.fds == prev.fds {
			s.base = cur
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no steady baseline after the prefill: %v then %v", prev, cur)
		}
		prev = cur
	}
	t.Logf("baseline: %v; %d actors: %s", s.base, len(set.actors), strings.Join(set.actors, ","))
	t.Logf("bounds: ic_timeout %v, idle_timeout %v, write stall %v, R2T data %v, each +%v slack; an ended connection may still deliver %s; limits to come must allow %d connections and %d associations per host",
		icTimeout, idleTimeout, stallTimeout, r2tTimeout, boundSlack, mib(uint64(s.slack)), maxConnections, maxAssocPerHost)
	return s
}

// sysctlMax reads the last number of a /proc/sys file (tcp_wmem's max).
func sysctlMax(path string, def int) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return def
	}
	n, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		return def
	}
	return n
}

// prefill writes every block of every namespace with generation 0 of the
// region's owner, so that memory namespaces are fully allocated before
// the baseline and every block has a known content.
func (s *soak) prefill() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := initiator.Connect(ctx, s.addr[portAll], soakNQN, initiator.Options{
		HostNQN: hostNQN("prefill"), HostID: hostID("prefill"), NrIOQueues: len(namespaces), QueueSize: 8, KATO: hostKATO})
	if err != nil {
		return err
	}
	defer c.Close()
	errs := make([]error, len(namespaces))
	var wg sync.WaitGroup
	for i, ns := range namespaces {
		wg.Go(func() {
			q := c.IOQueues()[i%len(c.IOQueues())]
			buf := make([]byte, mdts)
			nlba := ns.size / uint64(ns.bs)
			per := uint64(mdts / ns.bs)
			for lba := uint64(0); lba < nlba; lba += per {
				n := min(per, nlba-lba)
				for k := range n {
					b := lba + k
					fillBlock(buf[k*uint64(ns.bs):(k+1)*uint64(ns.bs)], ns.nsid, b, writerOf(int(b/(nlba/regions))), 0)
				}
				if err := q.Write(ctx, ns.nsid, lba, uint32(n), buf[:n*uint64(ns.bs)]); err != nil {
					errs[i] = fmt.Errorf("namespace %d LBA %d: %w", ns.nsid, lba, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// writerOf is the writer ID of a region's owner.
func writerOf(region int) uint32 { return uint32(region + 1) }

func hostNQN(name string) string {
	return "nqn.2014-08.io.nvmftest:soak-" + strings.NewReplacer("#", "-").Replace(name)
}

func hostID(name string) [16]byte {
	h := fnv.New128a()
	h.Write([]byte(name))
	var id [16]byte
	h.Sum(id[:0])
	id[6] = id[6]&0x0F | 0x80
	id[8] = id[8]&0x3F | 0x80
	return id
}

// actor is one goroutine running one kind of behaviour.
type actor struct {
	s     *soak
	name  string
	idx   int
	rng   *rand.Rand
	doing atomic.Value // string: what it does now, for a hang report

	held    sync.WaitGroup // held checks running on their own (holdAsync)
	heldSem chan struct{}
	final   bool // the fresh host, which runs after the others stopped
}

// id names the instance: "host#1".
func (a *actor) id() string { return fmt.Sprintf("%s#%d", a.name, a.idx) }

func (a *actor) stopping() bool { return !a.final && a.s.stopped.Load() }

// pause sleeps d, or less if the run ends; it reports whether the run
// goes on.
func (a *actor) pause(d time.Duration) bool {
	select {
	case <-a.s.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// randDur is a random duration in [lo, hi).
func (a *actor) randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(a.rng.Int64N(int64(hi-lo)))
}

// episode counts one misbehaviour (or session) of the named variant.
func (a *actor) episode(variant string) {
	a.doing.Store(variant)
	a.s.rep.add(a.name+"/"+variant, 1)
	if a.s.set.trace {
		fmt.Printf("soak: t=%.3fs %s %s\n", time.Since(a.s.rep.start).Seconds(), a.id(), variant)
	}
}

// misbehave counts one misbehaving episode of the named variant.
func (a *actor) misbehave(variant string) {
	a.episode(variant)
	a.s.rep.add(a.name+"/episodes", 1)
}

// note counts something the actor saw ("actor/what").
func (a *actor) note(what string) { a.s.rep.add(a.name+"/"+what, 1) }

// violate records a failure of the target seen by this actor.
func (a *actor) violate(what, detail string) { a.s.rep.violate(a.name, what, a.id()+": "+detail) }

// endBound is how long the soak waits for the actors once the run is
// over: the longest hold and check there is, with room to spare.
const endBound = max(icTimeout, idleTimeout, stallTimeout, r2tTimeout) + boundSlack + endWait + probeWait + 30*time.Second

// run starts every actor, stops them after the run's duration and waits
// for them; false if they did not all stop.
func (s *soak) run() bool {
	specs := map[string]actorSpec{}
	for _, sp := range actorSpecs() {
		specs[sp.name] = sp
	}
	var actors []*actor
	var wg sync.WaitGroup
	meterStop, meterDone := make(chan struct{}), make(chan struct{})
	go s.meter(meterStop, meterDone)
	for _, name := range s.set.actors {
		sp := specs[name]
		for i := range sp.n {
			h := fnv.New64a()
			fmt.Fprintf(h, "%s#%d", name, i)
			a := &actor{s: s, name: name, idx: i, rng: rand.New(rand.NewPCG(s.set.seed, h.Sum64())), heldSem: make(chan struct{}, maxHeld)}
			a.doing.Store("starting")
			actors = append(actors, a)
			wg.Go(func() {
				defer a.doing.Store("done")
				sp.run(a)
				a.doing.Store("waiting for its held checks")
				a.held.Wait()
			})
		}
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()

	progress := max(10*time.Second, s.set.dur/20)
	end := time.After(s.set.dur)
	tick := time.NewTicker(progress)
	defer tick.Stop()
run:
	for {
		select {
		case <-end:
			break run
		case <-tick.C:
			cur := s.measure(false)
			s.t.Logf("t=%.0fs: %d I/Os, %d misbehaviours, %d violations; now %v", time.Since(s.rep.start).Seconds(),
				s.ios(), s.misbehaviours(), s.rep.violationCount(), cur)
		}
	}
	s.stopped.Store(true)
	close(s.stop)
	stopAt := time.Now()
	select {
	case <-all:
	case <-time.After(endBound):
		var stuck []string
		for _, a := range actors {
			if d := a.doing.Load().(string); d != "done" {
				stuck = append(stuck, a.id()+" in "+d)
			}
		}
		s.t.Errorf("%d actors did not stop within %v of the end of the run (a hang in the target or the host): %s\n%s",
			len(stuck), endBound, strings.Join(stuck, ", "), goroutineDump())
		close(meterStop)
		<-meterDone
		return false
	}
	close(meterStop)
	<-meterDone
	s.t.Logf("every actor stopped %v after the end of the run", time.Since(stopAt).Round(10*time.Millisecond))
	return true
}

// ios is the number of I/O commands the well-behaved hosts completed.
func (s *soak) ios() int64 {
	var n int64
	for _, op := range opNames {
		n += s.rep.sum("/" + op)
	}
	return n
}

// misbehaviours is the number of misbehaving episodes.
func (s *soak) misbehaviours() int64 { return s.rep.sum("/episodes") }

// finalReport logs the figures and fails the test for every violation.
func (s *soak) finalReport() {
	t := s.t
	s.peak.mu.Lock()
	heap, live, liveAt, gs, fds := s.peak.heap, s.peak.live, s.peak.liveAt, s.peak.goroutines, s.peak.fds
	s.peak.mu.Unlock()
	t.Logf("figures: baseline %v\n  peak: live heap %s at t=%.1fs (+%s), heap in use with garbage %s, %d goroutines, %d fds\n  well-behaved I/Os done: %d (%d blocks verified); misbehaviours: %d\n  target log: %s\ncounts:\n%s",
		s.base, mib(live), liveAt.Seconds(), mib(live-min(live, s.base.heap)), mib(heap), gs, fds,
		s.ios(), s.rep.sum("/blocks verified"), s.misbehaviours(), s.logs.summary(), s.rep.table())
	for _, v := range s.rep.violations() {
		t.Errorf("VIOLATION %v", v)
	}
	if t.Failed() {
		t.Logf("seed %d; rerun with %s", s.set.seed, s.set.rerun())
	}
}
