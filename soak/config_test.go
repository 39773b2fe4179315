//go:build linux

package soak

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/target"
)

// Environment variables that steer the soak (see the package doc).
const (
	envDuration = "NVMFTEST_SOAK"      // how long the actors run: "10m"; "off" skips the soak
	envSeed     = "NVMFTEST_SOAK_SEED" // the seed of a run to repeat
	envSkip     = "NVMFTEST_SOAK_SKIP" // actors not to run: "fused,slowreader"
	envOnly     = "NVMFTEST_SOAK_ONLY" // the only actors to run
	envTrace    = "NVMFTEST_SOAK_TRACE"
)

// Durations of the actor phase when NVMFTEST_SOAK is not set.
const (
	defaultDuration = 15 * time.Second
	shortDuration   = 5 * time.Second
)

// ---------------------------------------------------------------------
// The bounds the soak relies on, all in one place. Each is set in the
// target's configuration by soakConfig, and the actors derive their
// expectations from the same constants, so changing one here changes both.
// They are short so that a misbehaving peer is let go (and checked) within
// seconds and the settle phase stays small.
// ---------------------------------------------------------------------

const (
	// icTimeout is the target's ic_timeout: a connection must send ICReq
	// and a successful Connect within it.
	icTimeout = 3 * time.Second
	// idleTimeout is the target's idle_timeout: a connection that sends
	// nothing for that long is closed. It must comfortably exceed the
	// well-behaved hosts' keep-alive interval (hostKATO/2): an admin queue
	// carries nothing else.
	idleTimeout = 4 * time.Second
	// hostKATO is the well-behaved hosts' keep-alive timeout; they send a
	// Keep Alive every hostKATO/2.
	hostKATO = 2 * time.Second

	// stallTimeout is the target's write_timeout: how long it keeps data
	// queued for a peer that does not read it (review #5b).
	stallTimeout = idleTimeout
	// r2tTimeout is the target's r2t_timeout: how long it waits for the
	// H2CData of a write it sent an R2T for (review #5a).
	r2tTimeout = idleTimeout

	// fatalLinger is how long the target may keep a connection after a
	// fatal transport error (its C2HTermReq), a host's TermReq or a
	// Disconnect. NVMe/TCP 1.0 3.5.1 has the controller wait for the host
	// to close after a C2HTermReq (the target's fatal_close_wait, 30 s by
	// default, as SPDK): the soak sets it to this, so that peers that
	// never close are let go of within the soak's bounds.
	fatalLinger = 2 * time.Second

	// boundSlack is what the soak grants on top of a configured bound
	// before calling a peer "not let go": scheduling on 2 busy cores with
	// the race detector, never a speed assertion.
	boundSlack = 5 * time.Second
	// endWait bounds the read that checks whether the target ended a
	// connection (a closed one gives EOF at once).
	endWait = 3 * time.Second
	// probeWait bounds a fresh ICReq/ICResp after a flood: the port must
	// serve again by then.
	probeWait = 10 * time.Second

	// floodMax is the most sockets one flood opens at once. The
	// connection limits (max_connections, max_connections_per_address)
	// are set to maxConnections below, or well-behaved hosts could be
	// refused during a flood and the soak would report that as a failure.
	floodMax = 192
	// maxConnections is every connection the actors may hold at once:
	// floods, the other peers (a few each) and the hosts (1+4 each, two
	// per multipath path).
	maxConnections = floodMax + 64 + 5*5 + 2*4 + 16

	// maxAssocPerHost is the most associations one peer's host NQN holds
	// at once: its held checks (maxHeld) and a few being set up. The
	// floods' Connects, which share one NQN, may be refused beyond it.
	maxAssocPerHost = maxHeld + 4

	// ioQueues, queueSize and mdts are the target's io_queues, queue_size
	// and mdts, which the peers' amplification sizes depend on.
	ioQueues  = 8
	queueSize = 128
	mdts      = 1 << 20
)

// soakNQN is the subsystem every host uses; restrictedNQN admits only
// allowedHost (badconnect tries others).
const (
	soakNQN       = "nqn.2014-08.io.nvmftest:soak"
	restrictedNQN = "nqn.2014-08.io.nvmftest:soak-restricted"
	allowedHost   = "nqn.2014-08.io.nvmftest:soak-allowed-host"
)

// Port IDs: port 1 serves everything, port 2 NVM subsystems only (the
// second multipath path), port 3 the discovery subsystem only.
const (
	portAll       = 1
	portIO        = 2
	portDiscovery = 3
)

// nsLayout describes one namespace of the soak subsystem.
type nsLayout struct {
	nsid    uint32
	backend string
	bs      uint32
	size    uint64
}

// namespaces are the soak subsystem's namespaces: memory and file, 512 B
// and 4 KiB blocks, all the same size.
var namespaces = []nsLayout{
	{1, target.BackendMem, 512, nsSize},
	{2, target.BackendMem, 4096, nsSize},
	{3, target.BackendFile, 512, nsSize},
	{4, target.BackendFile, 4096, nsSize},
}

const nsSize = 16 << 20

// soakConfig is the target's configuration: three ports on loopback, the
// soak subsystem (namespaces above), a restricted subsystem, and every
// bound above.
func soakConfig(dir string) target.Config {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{
		{Address: "127.0.0.1:0", PortID: portAll, Serve: target.ServeAll},
		{Address: "127.0.0.1:0", PortID: portIO, Serve: target.ServeIO},
		{Address: "127.0.0.1:0", PortID: portDiscovery, Serve: target.ServeDiscovery},
	}
	var nss []target.NamespaceConfig
	for _, l := range namespaces {
		nc := target.NamespaceConfig{NSID: l.nsid, Backend: l.backend, Size: target.Size(strconv.FormatUint(l.size, 10)), BlockSize: l.bs}
		if l.backend == target.BackendFile {
			nc.Path = filepath.Join(dir, fmt.Sprintf("ns%d.img", l.nsid))
		}
		nss = append(nss, nc)
	}
	cfg.Subsystems = []target.SubsystemConfig{
		{NQN: soakNQN, AllowAnyHost: true, Namespaces: nss},
		{NQN: restrictedNQN, Hosts: []string{allowedHost},
			Namespaces: []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "1MiB"}}},
	}
	cfg.IOQueues = ioQueues
	cfg.QueueSize = queueSize
	cfg.MDTS = target.Size(strconv.Itoa(mdts))
	cfg.ICTimeout = icTimeout
	cfg.IdleTimeout = idleTimeout
	cfg.MinKATO, cfg.MaxKATO = 0, 0 // any KATO; idle_timeout covers KATO 0
	cfg.WriteTimeout = stallTimeout
	cfg.R2TTimeout = r2tTimeout
	cfg.FatalCloseWait = fatalLinger
	// Every actor dials from 127.0.0.1, so the per-address bound is the
	// whole soak's; the floods' Connects share one host NQN.
	cfg.MaxConnections = maxConnections
	cfg.MaxConnectionsPerAddress = maxConnections
	cfg.MaxAssociationsPerHost = maxAssocPerHost
	// r2t_buffer and write_backlog keep their defaults: peakCeiling guards
	// the memory they allow.
	return cfg
}

// settings are what the environment asked for.
type settings struct {
	dur    time.Duration
	seed   uint64
	actors []string // to run, in registry order
	trace  bool
}

func loadSettings(t *testing.T) settings {
	var s settings
	switch v := os.Getenv(envDuration); {
	case v == "off":
		t.Skipf("%s=off", envDuration)
	case v != "":
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a duration such as 10m", envDuration, v)
		}
		s.dur = d
	case testing.Short():
		s.dur = shortDuration
	default:
		s.dur = defaultDuration
	}
	if v := os.Getenv(envSeed); v != "" {
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", envSeed, v)
		}
		s.seed = n
	} else {
		h := sha256.Sum256(fmt.Appendf(nil, "%d/%d", time.Now().UnixNano(), os.Getpid()))
		s.seed = uint64(h[0])<<24 | uint64(h[1])<<16 | uint64(h[2])<<8 | uint64(h[3]) // short enough to type
	}
	known := actorNames()
	parse := func(env string) map[string]bool {
		m := map[string]bool{}
		for _, n := range strings.Split(os.Getenv(env), ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if !slices.Contains(known, n) {
				t.Fatalf("%s: no actor %q (actors: %s)", env, n, strings.Join(known, ","))
			}
			m[n] = true
		}
		return m
	}
	skip, only := parse(envSkip), parse(envOnly)
	for _, n := range known {
		if skip[n] || (len(only) > 0 && !only[n]) {
			continue
		}
		s.actors = append(s.actors, n)
	}
	s.trace = os.Getenv(envTrace) != ""
	return s
}

// rerun is the command that repeats this run.
func (s settings) rerun() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s=%v %s=%d", envDuration, s.dur, envSeed, s.seed)
	if len(s.actors) != len(actorNames()) {
		fmt.Fprintf(&b, " %s=%s", envOnly, strings.Join(s.actors, ","))
	}
	b.WriteString(" go test -race -count=1 -v -run '^TestSoak$' ./soak/")
	return b.String()
}
