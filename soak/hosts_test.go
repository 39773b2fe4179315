//go:build linux

package soak

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// Well-behaved hosts: real initiators that connect, run verified I/O on
// their own blocks, disconnect and reconnect. They never do anything that
// may fail a command, so every error they see is the target's.

const (
	// hostTimeout is the hosts' command timeout: a command that takes this
	// long means the target stalled.
	hostTimeout = 20 * time.Second
	// connectWait bounds a host's whole connect.
	connectWait = 30 * time.Second
	// closeWait bounds a host's Close (shutdown waits up to 5 s plus the
	// command timeout).
	closeWait = 45 * time.Second
)

// hostIdentity is a well-behaved host that persists across its sessions:
// its NQN, its region and the model of every block in it.
type hostIdentity struct {
	name   string
	region int
	writer uint32
	nqn    string
	hostid [16]byte
	lanes  []*lane
}

// newIdentity cuts region into lanes, the same share of every namespace.
func newIdentity(name string, region int) *hostIdentity {
	h := &hostIdentity{name: name, region: region, writer: writerOf(region), nqn: hostNQN(name), hostid: hostID(name)}
	for li := range lanesPerHost {
		var ext []extent
		for _, ns := range namespaces {
			rb := ns.size / uint64(ns.bs) / regions
			lb := rb / lanesPerHost
			ext = append(ext, extent{first: uint64(region)*rb + uint64(li)*lb, blocks: lb})
		}
		h.lanes = append(h.lanes, newLane(h.writer, fmt.Sprintf("%s lane %d", name, li), ext))
	}
	return h
}

// The operations a lane runs, and their weights.
const (
	opRead = iota
	opWrite
	opWriteZeroes
	opCompare
	opCompareWrite
	opFlush
	nOps
)

var opNames = [nOps]string{"reads", "writes", "write-zeroes", "compares", "compare-and-writes", "flushes"}

var opWeights = [nOps]int{45, 40, 5, 4, 3, 3}

// ioPath is how a lane reaches the target: one controller's queues or a
// multipath device.
type ioPath interface {
	exec(ctx context.Context, lane int, sqe nvme.SQE, data []byte, dir initiator.Dir) error
	compareAndWrite(ctx context.Context, lane int, nsid uint32, slba uint64, nlb uint32, cmp, data []byte) error
}

type ctrlPath struct{ c *initiator.Controller }

func (p ctrlPath) queue(lane int) *initiator.Queue {
	qs := p.c.IOQueues()
	return qs[lane%len(qs)]
}

func (p ctrlPath) exec(ctx context.Context, lane int, sqe nvme.SQE, data []byte, dir initiator.Dir) error {
	_, err := p.queue(lane).Exec(ctx, sqe, data, dir)
	return err
}

func (p ctrlPath) compareAndWrite(ctx context.Context, lane int, nsid uint32, slba uint64, nlb uint32, cmp, data []byte) error {
	return p.queue(lane).CompareAndWrite(ctx, nsid, slba, nlb, cmp, data)
}

type mpPath struct{ m *initiator.Multipath }

func (p mpPath) exec(ctx context.Context, _ int, sqe nvme.SQE, data []byte, dir initiator.Dir) error {
	_, err := p.m.Do(ctx, sqe, data, dir)
	return err
}

var errNoFused = errors.New("no fused commands through multipath")

func (p mpPath) compareAndWrite(context.Context, int, uint32, uint64, uint32, []byte, []byte) error {
	return errNoFused
}

// laneCounts are one session's operation counts, added to the report
// once (the lanes do not contend on it).
type laneCounts struct {
	ops      [nOps]int64
	verified int64
}

// step runs one random operation of lane l and checks what it can; an
// error ends the session (its queue is most likely dead).
func (a *actor) step(ctx context.Context, rng *rand.Rand, l *lane, li int, p ioPath, cnt *laneCounts) error {
	i := rng.IntN(len(namespaces))
	ns := namespaces[i]
	e := l.ext[i]
	maxNLB := min(e.blocks, maxLaneIO/uint64(ns.bs))
	var nlb uint32
	switch r := rng.IntN(100); {
	case r < 70:
		nlb = 1 + uint32(rng.Uint64N(min(8, maxNLB)))
	case r < 95:
		nlb = 1 + uint32(rng.Uint64N(min(64<<10/uint64(ns.bs), maxNLB)))
	default:
		nlb = 1 + uint32(rng.Uint64N(maxNLB))
	}
	slba := e.first + rng.Uint64N(e.blocks-uint64(nlb)+1)
	n := int(nlb) * int(ns.bs)
	op := pickWeighted(rng, opWeights[:])
	where := fmt.Sprintf("%s, namespace %d LBA %d+%d", l.name, ns.nsid, slba, nlb)
	fail := func(err error) error {
		a.violate(opNames[op]+" failed", fmt.Sprintf("%s: %v", where, err))
		return err
	}
	switch op {
	case opCompare, opCompareWrite:
		if !l.expected(l.cmp[:n], i, slba, nlb) {
			op = opRead // an earlier failure left the content open: read it instead
		} else if op == opCompareWrite {
			if _, ok := p.(mpPath); ok {
				op = opWrite
			}
		}
	}
	switch op {
	case opRead:
		if err := p.exec(ctx, li, nvme.ReadCmd(ns.nsid, slba, nlb), l.buf[:n], initiator.FromController); err != nil {
			return fail(err)
		}
		if bad := l.verify(l.buf[:n], i, slba, nlb); bad != nil {
			a.violate("verify mismatch", fmt.Sprintf("%s: %d bad block(s): %s", where, len(bad), strings.Join(bad[:min(3, len(bad))], "; ")))
		}
		cnt.verified += int64(nlb)
	case opWrite:
		l.gen++
		l.fill(l.buf[:n], i, slba, nlb, l.gen)
		err := p.exec(ctx, li, nvme.WriteCmd(ns.nsid, slba, nlb), l.buf[:n], initiator.ToController)
		l.written(i, slba, nlb, l.gen, err == nil)
		if err != nil {
			return fail(err)
		}
	case opWriteZeroes:
		err := p.exec(ctx, li, nvme.WriteZeroesCmd(ns.nsid, slba, nlb, false), nil, initiator.NoData)
		l.written(i, slba, nlb, zeroGen, err == nil)
		if err != nil {
			return fail(err)
		}
	case opCompare, opCompareWrite:
		var err error
		what := "Compare of the acknowledged content failed"
		if op == opCompare {
			err = p.exec(ctx, li, nvme.CompareCmd(ns.nsid, slba, nlb), l.cmp[:n], initiator.ToController)
		} else {
			l.gen++
			l.fill(l.buf[:n], i, slba, nlb, l.gen)
			err = p.compareAndWrite(ctx, li, ns.nsid, slba, nlb, l.cmp[:n], l.buf[:n])
			l.written(i, slba, nlb, l.gen, err == nil)
			what = "Compare and Write of the acknowledged content failed its compare"
		}
		if isStatus(err, nvme.StatusCompareFailure) {
			a.readBack(ctx, l, li, p, i, slba, nlb, where, what)
			return nil
		}
		if err != nil {
			return fail(err)
		}
		cnt.verified += int64(nlb)
	case opFlush:
		if err := p.exec(ctx, li, nvme.FlushCmd(ns.nsid), nil, initiator.NoData); err != nil {
			return fail(err)
		}
	}
	cnt.ops[op]++
	return nil
}

// readBack reads blocks a Compare found different and reports what they
// hold.
func (a *actor) readBack(ctx context.Context, l *lane, li int, p ioPath, i int, slba uint64, nlb uint32, where, what string) {
	ns := namespaces[i]
	n := int(nlb) * int(ns.bs)
	if err := p.exec(ctx, li, nvme.ReadCmd(ns.nsid, slba, nlb), l.buf[:n], initiator.FromController); err != nil {
		a.violate(what, fmt.Sprintf("%s; reading it back: %v", where, err))
		return
	}
	bad := l.verify(l.buf[:n], i, slba, nlb)
	a.violate(what, fmt.Sprintf("%s; read back: %s", where, strings.Join(bad[:min(3, len(bad))], "; ")))
}

func pickWeighted(rng *rand.Rand, w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	r := rng.IntN(total)
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}

// session runs every lane of h through p until until, or until one
// fails; it adds the counts to the report.
func (a *actor) session(h *hostIdentity, p ioPath, until time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Until(until)+2*hostTimeout)
	defer cancel()
	var failed atomic.Bool
	var wg sync.WaitGroup
	counts := make([]laneCounts, len(h.lanes))
	for li, l := range h.lanes {
		rng := rand.New(rand.NewPCG(a.rng.Uint64(), uint64(li)))
		wg.Go(func() {
			for time.Now().Before(until) && !a.stopping() && !failed.Load() {
				if a.step(ctx, rng, l, li, p, &counts[li]) != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	var total laneCounts
	for _, c := range counts {
		for op := range c.ops {
			total.ops[op] += c.ops[op]
		}
		total.verified += c.verified
	}
	for op, n := range total.ops {
		a.s.rep.add(a.name+"/"+opNames[op], n)
	}
	a.s.rep.add(a.name+"/blocks verified", total.verified)
}

// closeBounded closes c, reporting a failed or hung Close.
func (a *actor) closeBounded(what string, c interface{ Close() error }) {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			a.violate("close failed", fmt.Sprintf("%s: %v", what, err))
		}
	case <-time.After(closeWait):
		a.violate("close hung", fmt.Sprintf("%s: Close still running after %v", what, closeWait))
	}
}

func (s *soak) hostOptions(h *hostIdentity, rng *rand.Rand, digests bool) initiator.Options {
	return initiator.Options{
		HostNQN: h.nqn, HostID: h.hostid,
		HeaderDigest: digests, DataDigest: digests,
		KATO:                 hostKATO,
		NrIOQueues:           2 + rng.IntN(3),
		QueueSize:            32,
		Timeout:              hostTimeout,
		DisableSQFlowControl: rng.IntN(4) == 0,
	}
}

// connectFor runs a session's connect within connectWait, under the gate
// (it dials); a failure is a violation, and the actor pauses a second
// before its next try.
func connectFor[T any](a *actor, connect func(context.Context) (T, error)) (T, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), connectWait)
	defer cancel()
	a.s.gate.RLock()
	c, err := connect(ctx)
	a.s.gate.RUnlock()
	if err != nil {
		a.violate("connect failed", err.Error())
		a.pause(time.Second)
	}
	return c, err == nil
}

// runHost: connect with 2 to 4 I/O queues (digests for "digest"), run the
// lanes for 1 to 3 s, close, and again.
func runHost(a *actor) {
	s := a.s
	h := s.hosts[a.id()]
	for !a.stopping() {
		opts := s.hostOptions(h, a.rng, a.name == "digest")
		a.episode("sessions")
		c, ok := connectFor(a, func(ctx context.Context) (*initiator.Controller, error) {
			return initiator.Connect(ctx, s.addr[portAll], soakNQN, opts)
		})
		if !ok {
			continue
		}
		a.session(h, ctrlPath{c}, time.Now().Add(a.randDur(time.Second, 3*time.Second)))
		a.closeBounded("controller", c)
		a.pause(a.randDur(0, 300*time.Millisecond))
	}
}

// runMultipath: the same through a Multipath over ports 1 and 2. Three I/O
// queues per path: Multipath picks path and queue from one round-robin
// counter, so with two paths and two queues half the queues would carry
// nothing and be closed by idle_timeout.
func runMultipath(a *actor) {
	s := a.s
	h := s.hosts[a.id()]
	for !a.stopping() {
		opts := s.hostOptions(h, a.rng, a.rng.IntN(2) == 0)
		opts.NrIOQueues = 3
		mo := initiator.MultipathOptions{Options: opts, ReconnectDelay: 500 * time.Millisecond, CtrlLossTmo: time.Minute,
			OnEvent: func(ev initiator.PathEvent) {
				switch {
				case ev.Event == "live", strings.HasPrefix(ev.Event, "ana "):
				default:
					a.violate("path event", fmt.Sprintf("path %s: %s (%v)", ev.Addr, ev.Event, ev.Err))
				}
			}}
		a.episode("sessions")
		m, ok := connectFor(a, func(ctx context.Context) (*initiator.Multipath, error) {
			return initiator.ConnectMultipath(ctx, []string{s.addr[portAll], s.addr[portIO]}, soakNQN, mo)
		})
		if !ok {
			continue
		}
		a.session(h, mpPath{m}, time.Now().Add(a.randDur(time.Second, 4*time.Second)))
		if r, f := m.Retried(), m.Failed(); r > 0 || f > 0 {
			a.violate("multipath retried or failed I/O", fmt.Sprintf("%d retried, %d failed", r, f))
		}
		for i, p := range m.Paths() {
			a.s.rep.add(fmt.Sprintf("%s/path %d I/Os", a.name, i+1), p.IOs())
		}
		a.closeBounded("multipath", m)
		a.pause(a.randDur(0, 300*time.Millisecond))
	}
}

// runDiscovery: Discover through port 3 or port 1, or hold a discovery
// controller with keep-alive for a few reads; the log must list both
// soak subsystem on both I/O ports.
func runDiscovery(a *actor) {
	s := a.s
	opts := initiator.Options{HostNQN: hostNQN(a.id()), HostID: hostID(a.id()), Timeout: hostTimeout}
	for !a.stopping() {
		port := uint16(portDiscovery)
		if a.rng.IntN(3) == 0 {
			port = portAll
		}
		ctx, cancel := context.WithTimeout(context.Background(), connectWait)
		switch a.rng.IntN(4) {
		case 0:
			a.episode("held controllers")
			o := opts
			o.KATO = hostKATO
			s.gate.RLock()
			c, err := initiator.Connect(ctx, s.addr[port], nvme.DiscoveryNQN, o)
			s.gate.RUnlock()
			if err != nil {
				a.violate("connect failed", fmt.Sprintf("port %d: %v", port, err))
				break
			}
			for range 3 {
				l, err := c.DiscoveryLog(ctx)
				if err != nil {
					a.violate("discovery log failed", fmt.Sprintf("port %d: %v", port, err))
					break
				}
				a.checkLog(port, l)
				if !a.pause(a.randDur(100*time.Millisecond, time.Second)) {
					break
				}
			}
			a.closeBounded("discovery controller", c)
		default:
			a.episode("discovers")
			s.gate.RLock()
			l, err := initiator.Discover(ctx, s.addr[port], opts)
			s.gate.RUnlock()
			if err != nil {
				a.violate("discover failed", fmt.Sprintf("port %d: %v", port, err))
			} else {
				a.checkLog(port, l)
			}
		}
		cancel()
		a.pause(a.randDur(100*time.Millisecond, 500*time.Millisecond))
	}
}

func (a *actor) checkLog(port uint16, l *nvme.DiscoveryLog) {
	// The restricted subsystem is not this host's to see.
	want := map[string]bool{}
	for _, p := range []uint16{portAll, portIO} {
		want[fmt.Sprintf("%s@%d", soakNQN, p)] = true
	}
	for _, e := range l.Entries {
		delete(want, fmt.Sprintf("%s@%d", e.SUBNQN, e.PORTID))
	}
	if len(want) > 0 {
		var miss []string
		for k := range want {
			miss = append(miss, k)
		}
		a.violate("discovery log incomplete", fmt.Sprintf("port %d: GENCTR %d, %d records, missing %s", port, l.GENCTR, len(l.Entries), strings.Join(miss, ", ")))
	}
}

// freshHost connects a new host at the end, runs verified I/O on its own
// region, reads every block of every region the hosts own and checks it
// against their models, and discovers through the discovery port. One I/O
// queue: idle_timeout would close the others while the read-back runs.
func (s *soak) freshHost() {
	t := s.t
	h := s.hosts["fresh"]
	a := &actor{s: s, name: "fresh", rng: rand.New(rand.NewPCG(s.set.seed, 7)), final: true}
	a.doing.Store("fresh host")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := s.hostOptions(h, a.rng, false)
	opts.NrIOQueues = 1
	s.gate.RLock()
	c, err := initiator.Connect(ctx, s.addr[portAll], soakNQN, opts)
	s.gate.RUnlock()
	if err != nil {
		t.Errorf("a fresh host cannot connect after the soak: %v", err)
		return
	}
	defer a.closeBounded("fresh host", c)
	before := s.ios()
	a.session(h, ctrlPath{c}, time.Now().Add(time.Second))
	if s.ios() == before {
		t.Errorf("the fresh host did no I/O")
	}
	// Every block of every host, in order.
	q := c.IOQueues()[0]
	buf := make([]byte, maxLaneIO)
	blocks := 0
	for _, id := range slices.Sorted(maps.Keys(s.hosts)) {
		for _, l := range s.hosts[id].lanes {
			for i, ns := range namespaces {
				e := l.ext[i]
				per := uint64(maxLaneIO / ns.bs)
				for lba := e.first; lba < e.first+e.blocks; lba += per {
					nlb := uint32(min(per, e.first+e.blocks-lba))
					n := int(nlb) * int(ns.bs)
					if err := q.Read(ctx, ns.nsid, lba, nlb, buf[:n]); err != nil {
						t.Errorf("final read of %s, namespace %d LBA %d+%d: %v", l.name, ns.nsid, lba, nlb, err)
						return
					}
					if bad := l.verify(buf[:n], i, lba, nlb); bad != nil {
						s.rep.violate("fresh", "final verify mismatch", fmt.Sprintf("%s: %d bad block(s): %s", l.name, len(bad), strings.Join(bad[:min(3, len(bad))], "; ")))
					}
					blocks += int(nlb)
				}
			}
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, connectWait)
	defer dcancel()
	s.gate.RLock()
	_, err = initiator.Discover(dctx, s.addr[portDiscovery], initiator.Options{HostNQN: h.nqn, HostID: h.hostid, Timeout: hostTimeout})
	s.gate.RUnlock()
	if err != nil {
		t.Errorf("a fresh host cannot discover through port %d after the soak: %v", portDiscovery, err)
	}
	t.Logf("fresh host: connected, did I/O, read back all %d blocks of %d hosts", blocks, len(s.hosts))
}

// isStatus reports whether err is the NVMe status st (whatever its DNR
// and More bits).
func isStatus(err error, st nvme.Status) bool {
	var got nvme.Status
	return errors.As(err, &got) && got.Code() == st.Code()
}
