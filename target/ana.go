package target

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/nvmftest/nvmftest/nvme"
)

// Asymmetric Namespace Access.
//
// Every namespace belongs to one ANA group (NamespaceConfig.ANAGroup,
// default 1). Every port (listener) holds one ANA state per group
// (ListenerConfig.ANAStates, default optimized), so a host connected
// through two ports can see the same namespace optimized on one and
// inaccessible on the other, as with nvmet's ports/N/ana_groups/G/ana_state.
//
// A state change bumps the ANA change count (the log page's CHGCNT and the
// changed group's CHGCNT) and sends an ANA Change notice to every
// controller of the port whose subsystem has a namespace in the group. I/O
// to a namespace whose group is inaccessible, persistently lost or in
// change on the controller's port fails with the path status 03/02, 03/01
// or 03/03, as nvmet's nvmet_check_ana_state.

// MaxANAGroups is ANAGRPMAX and NANAGRPID: ANA group IDs are 1..MaxANAGroups.
const MaxANAGroups = 32

// anaCapAll is ANACAP: every state reported, ANAGRPID fixed while attached.
const anaCapAll = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<6

// ParseANAState reads an ANA state name as nvmet's configfs writes it
// (optimized, non-optimized, inaccessible, persistent-loss, change).
func ParseANAState(s string) (uint8, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "optimized", "opt":
		return nvme.ANAOptimized, nil
	case "non-optimized", "non_optimized", "nonoptimized":
		return nvme.ANANonOptimized, nil
	case "inaccessible":
		return nvme.ANAInaccessible, nil
	case "persistent-loss", "persistent_loss":
		return nvme.ANAPersistentLoss, nil
	case "change":
		return nvme.ANAChange, nil
	}
	return 0, fmt.Errorf("%q is not an ANA state (use optimized, non-optimized, inaccessible, persistent-loss or change)", s)
}

// anaStates is a port's immutable table of states by group, replaced on
// every change so the I/O path reads it without locks.
type anaStates struct {
	state  [MaxANAGroups + 1]uint8
	chgcnt [MaxANAGroups + 1]uint64
}

func (p *port) anaState(grp uint32) uint8 {
	if grp == 0 || grp > MaxANAGroups {
		return nvme.ANAInaccessible
	}
	if a := p.ana.Load(); a != nil {
		return a.state[grp]
	}
	return nvme.ANAOptimized
}

// initANA fills a port's states from its configuration (validated).
func (p *port) initANA() {
	a := &anaStates{}
	for g := range a.state {
		a.state[g] = nvme.ANAOptimized
	}
	for g, s := range p.cfg.ANAStates {
		st, _ := ParseANAState(s)
		a.state[g] = st
	}
	p.ana.Store(a)
}

// pathStatus is the status I/O to ns gets through p, or 0.
func (p *port) pathStatus(ns *namespace) nvme.Status {
	switch p.anaState(ns.group()) {
	case nvme.ANAInaccessible:
		return nvme.StatusANAInaccessible
	case nvme.ANAPersistentLoss:
		return nvme.StatusANAPersistentLoss
	case nvme.ANAChange:
		return nvme.StatusANATransition
	}
	return 0
}

func (ns *namespace) group() uint32 {
	if ns.cfg.ANAGroup == 0 {
		return 1
	}
	return ns.cfg.ANAGroup
}

func (t *Target) portByID(id uint16) *port {
	for _, p := range t.ports {
		if p.cfg.PortID == id {
			return p
		}
	}
	return nil
}

// SetANAState sets the ANA state of group grp on the port with the given
// port ID, bumps the ANA change count and notifies the port's controllers
// of subsystems with a namespace in the group.
func (t *Target) SetANAState(portID uint16, grp uint32, state uint8) error {
	switch state {
	case nvme.ANAOptimized, nvme.ANANonOptimized, nvme.ANAInaccessible, nvme.ANAPersistentLoss, nvme.ANAChange:
	default:
		return fmt.Errorf("target: ANA state %#x is not a state", state)
	}
	if grp == 0 || grp > MaxANAGroups {
		return fmt.Errorf("target: ANA group %d is out of range (use 1..%d)", grp, MaxANAGroups)
	}
	t.mu.Lock()
	p := t.portByID(portID)
	if p == nil {
		t.mu.Unlock()
		return fmt.Errorf("target: no port with port_id %d", portID)
	}
	old := p.ana.Load()
	if old.state[grp] == state {
		t.mu.Unlock()
		return nil
	}
	n := *old
	t.anaChg++
	n.state[grp] = state
	n.chgcnt[grp] = t.anaChg
	p.ana.Store(&n)
	var l []*controller
	for _, c := range t.ctrls {
		if c.port == p && c.sub != nil && c.sub.hasGroup(grp) {
			l = append(l, c)
		}
	}
	t.mu.Unlock()
	t.log.Info("ANA state", "port_id", portID, "group", grp, "state", nvme.ANAStateString(state))
	for _, c := range l {
		c.event(nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeANAChange, nvme.LogANA), maskANA)
	}
	return nil
}

// ANAState returns the ANA state of group grp on a port.
func (t *Target) ANAState(portID uint16, grp uint32) (uint8, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.portByID(portID)
	if p == nil {
		return 0, fmt.Errorf("target: no port with port_id %d", portID)
	}
	return p.anaState(grp), nil
}

func (s *subsystem) hasGroup(grp uint32) bool {
	for _, ns := range s.table().list() {
		if ns.group() == grp {
			return true
		}
	}
	return false
}

// anaLog builds the ANA log page a controller on p reads: one descriptor
// per group that has a namespace, plus group 1, in group order.
func (s *subsystem) anaLog(p *port) nvme.ANALog {
	a := p.ana.Load()
	by := map[uint32][]uint32{1: nil}
	for _, ns := range s.table().list() {
		g := ns.group()
		by[g] = append(by[g], ns.id)
	}
	grps := make([]uint32, 0, len(by))
	for g := range by {
		grps = append(grps, g)
	}
	sort.Slice(grps, func(i, j int) bool { return grps[i] < grps[j] })
	base := s.anaChg.Load()
	var top uint64
	for _, c := range a.chgcnt {
		top = max(top, c)
	}
	l := nvme.ANALog{CHGCNT: base + top}
	for _, g := range grps {
		l.Groups = append(l.Groups, nvme.ANAGroupDescriptor{ANAGRPID: g, CHGCNT: base + a.chgcnt[g],
			State: a.state[g], NSIDs: by[g]})
	}
	return l
}

// PortDown takes a port down as a cable pull would: the listener closes
// and every connection that arrived on it ends (its associations with it).
func (t *Target) PortDown(portID uint16) error {
	t.mu.Lock()
	p := t.portByID(portID)
	if p == nil {
		t.mu.Unlock()
		return fmt.Errorf("target: no port with port_id %d", portID)
	}
	if p.down {
		t.mu.Unlock()
		return nil
	}
	p.down = true
	if p.ln != nil {
		p.addr = p.ln.Addr().String()
		p.ln.Close()
		p.ln = nil
	}
	var ctrls []*controller
	for _, c := range t.ctrls {
		if c.port == p {
			ctrls = append(ctrls, c)
		}
	}
	var qs []*queue
	for q := range t.queues {
		if q.port == p {
			qs = append(qs, q)
		}
	}
	t.mu.Unlock()
	t.log.Info("port down", "port_id", portID)
	for _, c := range ctrls {
		c.kill("port down")
	}
	for _, q := range qs {
		q.nc.Close()
	}
	return nil
}

// PortUp brings a port taken down by PortDown back: it listens again on
// the address it had.
func (t *Target) PortUp(portID uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.portByID(portID)
	if p == nil {
		return fmt.Errorf("target: no port with port_id %d", portID)
	}
	if !p.down {
		return nil
	}
	if t.closed {
		return errors.New("target: closed")
	}
	if t.started {
		addr := p.addr
		if addr == "" {
			addr = p.cfg.Address
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("target: port %d: listen %s: %w", portID, addr, err)
		}
		p.ln = ln
		t.wg.Add(1)
		go t.accept(p, ln)
	}
	p.down = false
	t.log.Info("port up", "port_id", portID)
	return nil
}

// PortIsDown reports whether PortDown took the port down.
func (t *Target) PortIsDown(portID uint16) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.portByID(portID)
	return p != nil && p.down
}

// PortInfo describes one port for the control interface.
type PortInfo struct {
	PortID  uint16            `json:"port_id"`
	Address string            `json:"address"`
	Down    bool              `json:"down"`
	ANA     map[uint32]string `json:"ana"` // group -> state, groups in use
}

// Ports describes every port: address, up or down, ANA states of the
// groups namespaces use.
func (t *Target) Ports() []PortInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	grps := []uint32{1}
	for _, s := range t.subsys {
		for _, ns := range s.table().list() {
			if !slices.Contains(grps, ns.group()) {
				grps = append(grps, ns.group())
			}
		}
	}
	var l []PortInfo
	for _, p := range t.ports {
		pi := PortInfo{PortID: p.cfg.PortID, Address: p.cfg.Address, Down: p.down, ANA: map[uint32]string{}}
		if p.ln != nil {
			pi.Address = p.ln.Addr().String()
		} else if p.addr != "" {
			pi.Address = p.addr
		}
		for _, g := range grps {
			pi.ANA[g] = nvme.ANAStateString(p.anaState(g))
		}
		l = append(l, pi)
	}
	return l
}

// anaPort is the per-port ANA and up/down state (embedded in port).
type anaPort struct {
	ana  atomic.Pointer[anaStates]
	down bool   // under Target.mu
	addr string // the address the listener had, for PortUp
}
