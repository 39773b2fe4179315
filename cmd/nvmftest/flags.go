package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/cpuset"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// connFlags are the nvme-cli fabrics flags that name a target and shape
// the association.
type connFlags struct {
	transport  string
	traddr     string
	trsvcid    string
	nqn        string
	hostnqn    string
	hostid     string
	hdrDigest  bool
	dataDigest bool
	dhchap     string // DH-HMAC-CHAP host secret
	dhchapCtrl string // and the controller's, for bidirectional
	kato       int
	nrIO       int
	queueSize  int
	timeout    time.Duration
	connTmo    time.Duration // --connect-timeout; 0: the library's default
	output     string
	capture    string           // directory for packet traces
	rec        capture.Recorder // from capture, once validated
	hostTraddr string           // -w: local address to connect from
	hostIface  string           // -f: local interface to connect through
	tos        int              // -T: IP type of service
	ctrlLoss   int              // -l: accepted; no host command reconnects
	reconnect  int              // -c: accepted; no host command reconnects
	sqflowOff  bool             // -d: Connect I/O queues with SQ flow control disabled
	duplicate  bool             // -D: accepted; every command makes its own association
	fs         *pflag.FlagSet   // to tell a flag given from its default

	defPort  string
	needNQN  bool
	ioQueues bool // the command uses I/O queues (-i, -Q)
	binaryOK bool // -o binary: the command can write its data raw
}

// shortFree is s when the command has no flag with that shorthand yet
// (its own flags are defined first), else "": nvme-cli's short forms of
// the fabrics flags where they do not clash with the command's own.
func shortFree(fs *pflag.FlagSet, s string) string {
	if fs.ShorthandLookup(s) != nil {
		return ""
	}
	return s
}

func addConnFlags(c *cobra.Command, f *connFlags) {
	fs := c.Flags()
	f.fs = fs
	fs.StringVarP(&f.transport, "transport", "t", "tcp", "transport type (only tcp)")
	fs.StringVarP(&f.traddr, "traddr", "a", "", "transport address of the target: a host name or IP address, no port (required)")
	fs.StringVarP(&f.trsvcid, "trsvcid", "s", f.defPort, "transport service ID: the TCP `PORT`")
	if f.defPort == strconv.Itoa(nvme.PortDiscovery) {
		fs.StringVarP(&f.nqn, "nqn", "n", nvme.DiscoveryNQN, "subsystem NQN")
	} else {
		fs.StringVarP(&f.nqn, "nqn", "n", "", "subsystem NQN (required)")
	}
	fs.StringVarP(&f.hostnqn, "hostnqn", "q", "", "host NQN (default /etc/nvme/hostnqn or a generated one)")
	fs.StringVarP(&f.hostid, "hostid", "I", "", "host ID as a UUID (default /etc/nvme/hostid or derived from the host NQN)")
	fs.BoolVarP(&f.hdrDigest, "hdr-digest", "g", false, "request header digests")
	fs.BoolVarP(&f.dataDigest, "data-digest", "G", false, "request data digests")
	fs.StringVarP(&f.dhchap, "dhchap-secret", shortFree(fs, "S"), "", "DH-HMAC-CHAP host secret (DHHC-1:hh:...:), used when the controller asks for authentication")
	fs.StringVarP(&f.dhchapCtrl, "dhchap-ctrl-secret", shortFree(fs, "C"), "", "DH-HMAC-CHAP controller secret: authenticate the controller too")
	fs.IntVarP(&f.kato, "keep-alive-tmo", "k", 0, "keep-alive timeout in seconds; 0 turns keep-alive off (when not given: 5, none for discovery)")
	fs.StringVarP(&f.hostTraddr, "host-traddr", shortFree(fs, "w"), "", "local IP `ADDRESS` to connect from (the NIC and source address the target sees)")
	fs.StringVarP(&f.hostIface, "host-iface", shortFree(fs, "f"), "", "local network `INTERFACE` to connect through (SO_BINDTODEVICE)")
	fs.IntVarP(&f.tos, "tos", shortFree(fs, "T"), 0, "IP type of service of the connections (0: the system's)")
	fs.IntVarP(&f.ctrlLoss, "ctrl-loss-tmo", shortFree(fs, "l"), 0, "accepted for nvme-cli scripts and ignored: this command makes one association and does not reconnect (failover does)")
	fs.IntVarP(&f.reconnect, "reconnect-delay", shortFree(fs, "c"), 0, "accepted for nvme-cli scripts and ignored, as --ctrl-loss-tmo")
	if f.ioQueues {
		fs.IntVarP(&f.nrIO, "nr-io-queues", "i", 0, "number of I/O queues (default: number of CPUs for connect, 1 otherwise)")
		fs.IntVarP(&f.queueSize, "queue-size", "Q", initiator.DefaultQueueSize, "I/O queue size")
		fs.BoolVarP(&f.sqflowOff, "disable-sqflow", shortFree(fs, "d"), false, "ask to disable SQ flow control on the I/O queues (Connect CATTR bit 2; the controller may refuse)")
	}
	fs.BoolVarP(&f.duplicate, "duplicate-connect", shortFree(fs, "D"), false, "accepted for nvme-cli scripts: every nvmftest command makes an association of its own anyway")
	fs.DurationVar(&f.timeout, "timeout", initiator.DefaultTimeout, "command timeout")
	fs.DurationVar(&f.connTmo, "connect-timeout", 0, fmt.Sprintf("time limit of each TCP connect to the target, for a host that drops SYNs (default %v, or --timeout if shorter)", initiator.DefaultConnectTimeout))
	fs.StringVarP(&f.output, "output-format", "o", "normal", "output format: normal or json")
	fs.StringVar(&f.capture, "capture", "", "write a pcapng packet trace of every connection into `DIR` (created if missing); open with Wireshark")
}

// checkTargetAddr is the usage check of -t, -a and -s for the commands
// that take them as plain flags (conform, fuzz, replay).
func checkTargetAddr(transport, traddr, trsvcid string) error {
	if transport != "tcp" {
		return usagef("transport %q is not supported: nvmftest speaks NVMe/TCP only (use -t tcp)", transport)
	}
	if traddr == "" {
		return usagef("missing target address: give it with -a/--traddr ADDRESS")
	}
	if p, err := strconv.Atoi(trsvcid); err != nil || p <= 0 || p > 65535 {
		return usagef("invalid -s/--trsvcid %q: want a TCP port number (1-65535)", trsvcid)
	}
	return nil
}

func (f *connFlags) validate() error {
	if f.transport != "tcp" {
		return usagef("transport %q is not supported: nvmftest speaks NVMe/TCP only (use -t tcp)", f.transport)
	}
	if f.traddr == "" {
		return usagef("missing target address: give it with -a/--traddr ADDRESS")
	}
	if h, p, err := net.SplitHostPort(f.traddr); err == nil && net.ParseIP(f.traddr) == nil {
		return usagef("-a/--traddr %q has a port: give the address with -a %s and the port with -s %s", f.traddr, h, p)
	}
	if f.hostnqn != "" {
		if err := checkNQN(f.hostnqn); err != nil {
			return usagef("invalid -q/--hostnqn: %v", err)
		}
	}
	if f.hostTraddr != "" && net.ParseIP(f.hostTraddr) == nil {
		return usagef("invalid -w/--host-traddr %q: give a local IP address", f.hostTraddr)
	}
	if f.tos < 0 || f.tos > 255 {
		return usagef("invalid -T/--tos %d: give 0-255", f.tos)
	}
	if f.kato < 0 {
		return usagef("invalid -k/--keep-alive-tmo %d: give seconds, 0 for none", f.kato)
	}
	if p, err := strconv.Atoi(f.trsvcid); err != nil || p <= 0 || p > 65535 {
		return usagef("invalid -s/--trsvcid %q: want a TCP port number (1-65535)", f.trsvcid)
	}
	if f.needNQN && f.nqn == "" {
		return usagef("missing subsystem NQN: give it with -n/--nqn NQN")
	}
	switch {
	case f.output == "binary" && f.binaryOK, f.output == "normal", f.output == "json":
	case f.binaryOK:
		return usagef("invalid -o/--output-format %q: use normal, json or binary", f.output)
	default:
		return usagef("invalid -o/--output-format %q: use normal or json", f.output)
	}
	if f.queueSize != 0 && f.queueSize < 2 && f.ioQueues {
		return usagef("invalid -Q/--queue-size %d: must be at least 2", f.queueSize)
	}
	if f.connTmo < 0 {
		return usagef("invalid --connect-timeout %v: give a positive duration such as 5s", f.connTmo)
	}
	if f.nrIO < 0 {
		return usagef("invalid -i/--nr-io-queues %d: must not be negative", f.nrIO)
	}
	for _, s := range []struct{ flag, v string }{{"dhchap-secret", f.dhchap}, {"dhchap-ctrl-secret", f.dhchapCtrl}} {
		if s.v == "" {
			continue
		}
		if _, err := nvme.ParseDHCHAPSecret(s.v); err != nil {
			return usagef("invalid --%s: %v", s.flag, err)
		}
	}
	if f.dhchapCtrl != "" && f.dhchap == "" {
		return usagef("--dhchap-ctrl-secret needs --dhchap-secret")
	}
	if f.hostid != "" {
		if _, err := initiator.ParseHostID(f.hostid); err != nil {
			return usagef("invalid -I/--hostid: %v", err)
		}
	}
	// Last, so a usage error never leaves a directory behind.
	if f.capture != "" && f.rec == nil {
		d, err := capture.NewDir(f.capture)
		if err != nil {
			return usagef("invalid --capture %q: %v", f.capture, err)
		}
		f.rec = d
	}
	return nil
}

func (f *connFlags) addr() string { return net.JoinHostPort(f.traddr, f.trsvcid) }

func (f *connFlags) options(defaultIO int) initiator.Options {
	o := initiator.Options{
		HostNQN:      f.hostnqn,
		HeaderDigest: f.hdrDigest,
		DataDigest:   f.dataDigest,
		NrIOQueues:   defaultIO,
		QueueSize:    f.queueSize,
		Timeout:      f.timeout,
		// Zero leaves the library's default: 10 s, or Timeout if shorter.
		ConnectTimeout: f.connTmo,

		DHCHAPSecret:     f.dhchap,
		DHCHAPCtrlSecret: f.dhchapCtrl,
		Capture:          f.rec,
		HostTraddr:       f.hostTraddr,
		HostIface:        f.hostIface,
		TOS:              f.tos,

		DisableSQFlowControl: f.sqflowOff,
	}
	if f.hostid != "" {
		o.HostID, _ = initiator.ParseHostID(f.hostid)
	}
	switch {
	case f.fs == nil || !f.fs.Changed("keep-alive-tmo"):
		// The library's default: 5 s, none for discovery.
	case f.kato == 0:
		o.KATO = -1
	default:
		o.KATO = time.Duration(f.kato) * time.Second
	}
	if f.nrIO > 0 {
		o.NrIOQueues = f.nrIO
	}
	return o
}

// connect validates the flags and connects; nrIO is the default number of
// I/O queues (-1: none).
func (f *connFlags) connect(ctx context.Context, nrIO int) (*initiator.Controller, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	c, err := initiator.Connect(ctx, f.addr(), f.nqn, f.options(nrIO))
	if err != nil {
		return nil, f.connectError(err)
	}
	return c, nil
}

// connectError is the one line for a failed Connect: what the status
// means for this command line, and what to do about it.
func (f *connFlags) connectError(err error) error {
	return connectHint(f.nqn, f.addr(), f.hostnqnOrDefault(), err)
}

// connectHint is connectError for any target (bench's jobs may each name
// their own).
func connectHint(nqn, addr, hostnqn string, err error) error {
	var cip *initiator.ConnectInvalidParamError
	if errors.As(err, &cip) {
		switch cip.Field() {
		case "SUBNQN":
			host, port, _ := net.SplitHostPort(addr)
			return hintError{fmt.Sprintf("failed to connect to %s at %s: no such subsystem NQN on this port (the Connect was refused: Invalid Parameters at SUBNQN); `nvmftest discover -a %s -s %s` lists the subsystems",
				nqn, addr, host, port), err}
		case "HOSTNQN":
			return hintError{fmt.Sprintf("failed to connect to %s at %s: the target refused the host NQN %q (the Connect was refused: Invalid Parameters at HOSTNQN); give another with -q", nqn, addr, hostnqn), err}
		}
	}
	return fmt.Errorf("failed to connect to %s at %s: %w", nqn, addr, err)
}

// hintError is an error whose message says what to do instead of
// repeating its cause, which it still wraps.
type hintError struct {
	msg string
	err error
}

func (e hintError) Error() string { return e.msg }
func (e hintError) Unwrap() error { return e.err }

func (f *connFlags) hostnqnOrDefault() string {
	if f.hostnqn != "" {
		return f.hostnqn
	}
	return initiator.DefaultHostNQN()
}

// checkNQN checks s against the NVMe Qualified Name format (NVMe Base
// 2.x 4.7): at most 223 bytes, "nqn.yyyy-mm.reverse.domain" and
// optionally ":string", or "nqn.2014-08.org.nvmexpress:uuid:" and a UUID.
func checkNQN(s string) error {
	const uuidForm = "nqn.2014-08.org.nvmexpress:uuid:"
	rule := "an NQN is nqn.yyyy-mm.reverse-domain[:string] (e.g. nqn.2014-08.com.example:host1) or " + uuidForm + "UUID, at most 223 bytes"
	if len(s) > 223 {
		return fmt.Errorf("%d bytes is too long: %s", len(s), rule)
	}
	if strings.HasPrefix(s, uuidForm) {
		if _, err := initiator.ParseHostID(strings.TrimPrefix(s, uuidForm)); err != nil {
			return fmt.Errorf("%q: the part after %q is not a UUID", s, uuidForm)
		}
		return nil
	}
	if !target.ValidNQN(s) {
		return fmt.Errorf("%q is not an NVMe Qualified Name: %s", s, rule)
	}
	return nil
}

// closeCtrl closes c, turning a shutdown failure into the command's error
// only if it had none.
func closeCtrl(c *initiator.Controller, err *error) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("disconnect: %v", cerr)
	}
}

// kv is one ordered field of normal or JSON output.
type kv struct {
	k string
	v any
}

// printFields prints fields as nvme-cli does ("name : value", names padded
// to width) or as one JSON object in the same order.
func printFields(w io.Writer, format, title string, fields []kv, width int) {
	if format == "json" {
		writeJSONObject(w, fields)
		return
	}
	if title != "" {
		fmt.Fprintln(w, title)
	}
	for _, f := range fields {
		fmt.Fprintf(w, "%-*s: %v\n", width, f.k, f.v)
	}
}

func writeJSONObject(w io.Writer, fields []kv) {
	var b strings.Builder
	b.WriteString("{\n")
	for i, f := range fields {
		v := f.v
		if h, ok := v.(hexVal); ok {
			v = uint64(h)
		}
		j, _ := json.Marshal(v)
		fmt.Fprintf(&b, "  %q: %s", f.k, j)
		if i < len(fields)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	io.WriteString(w, b.String())
}

func writeJSON(w io.Writer, v any) {
	j, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", j)
}

// hexVal prints as 0x... in normal output and as a number in JSON.
type hexVal uint64

func (h hexVal) String() string { return fmt.Sprintf("%#x", uint64(h)) }

// hexDump prints b as nvme-cli's d() does: offset, 16 bytes, ASCII.
func hexDump(w io.Writer, b []byte) {
	fmt.Fprintln(w, "       0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f")
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		fmt.Fprintf(w, "%04x:", off)
		for _, c := range line {
			fmt.Fprintf(w, " %02x", c)
		}
		fmt.Fprint(w, strings.Repeat("   ", 16-len(line)))
		fmt.Fprint(w, ` "`)
		for _, c := range line {
			if c >= 0x20 && c < 0x7F {
				fmt.Fprintf(w, "%c", c)
			} else {
				fmt.Fprint(w, ".")
			}
		}
		fmt.Fprintln(w, `"`)
	}
}

// secondsValue is a duration flag that takes nvme-cli's integer seconds
// ("5") and Go durations with a unit ("500ms", "2m") alike; neg names
// what a negative value means ("off", "forever"), and prints for it.
type secondsValue struct {
	d   *time.Duration
	neg string
}

func newSeconds(fs *pflag.FlagSet, d *time.Duration, name, short string, def time.Duration, neg, usage string) {
	*d = def
	fs.VarP(&secondsValue{d, neg}, name, short, usage)
}

func (v *secondsValue) String() string {
	switch {
	case v.d == nil:
		return ""
	case *v.d < 0 && v.neg != "":
		return v.neg
	case *v.d%time.Second == 0:
		return strconv.FormatInt(int64(*v.d/time.Second), 10)
	}
	return v.d.String()
}

func (v *secondsValue) Set(s string) error {
	if v.neg != "" && s == v.neg {
		*v.d = -1
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 && v.neg == "" {
			return fmt.Errorf("give seconds (0 or more) or a duration such as 500ms")
		}
		*v.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("give whole seconds (5) or a duration with a unit (500ms, 2m)")
	}
	if d < 0 && v.neg == "" {
		return fmt.Errorf("give seconds (0 or more) or a duration such as 500ms")
	}
	*v.d = d
	return nil
}

func (v *secondsValue) Type() string { return "seconds" }

// newControl is suites.NewExecControl, with the command checked up front:
// a --control that cannot run is a usage error before anything runs, not
// a failed check or scenario halfway through.
func newControl(cmdline string) (*suites.ExecControl, error) {
	return newExecFlag("--control", cmdline, `, e.g. "nvmftest target ctl --socket PATH"`)
}

// newExecFlag is the command of a control flag (--control, --host-control)
// checked as nvmftest will run it: split into words, its program found.
// example ends the hint of the error when it is not.
func newExecFlag(flag, cmdline, example string) (*control.Exec, error) {
	c, err := control.NewExec(cmdline)
	if err != nil {
		return nil, usagef("invalid %s: %v", flag, err)
	}
	if _, err := exec.LookPath(c.Argv[0]); err != nil {
		return nil, usagef("invalid %s %q: %v (give a command nvmftest can run%s)", flag, cmdline, err, example)
	}
	return c, nil
}

// cpusFlagHelp is --cpus's help, the same on target and bench.
const cpusFlagHelp = "run only on these CPUs, as SPDK's core mask does: a `LIST` such as 0,2-3 or a mask such as 0x5; GOMAXPROCS becomes their number (default: every CPU). Keeps the Go runtime off a core a polling neighbour holds"

// pinCPUs applies --cpus to the whole process: its threads on those CPUs,
// GOMAXPROCS to match. It returns the line saying so ("" when list is
// empty), or a usage error naming what is wrong.
func pinCPUs(list string) (string, error) {
	if list == "" {
		return "", nil
	}
	cpus, err := cpuset.Parse(list)
	if err != nil {
		return "", usageError{fmt.Errorf("--cpus: %v", err)}
	}
	if err := cpuset.Pin(cpus); err != nil {
		return "", usageError{fmt.Errorf("--cpus %s: %v", list, err)}
	}
	return fmt.Sprintf("pinned to CPUs %s (GOMAXPROCS %d)", cpuset.Format(cpus), len(cpus)), nil
}

// ownProcess is set by main: the command runs in a process of its own, so
// it may change process-wide settings such as GOMAXPROCS. Tests run
// commands inside the test binary, where it stays false.
var ownProcess bool

// placement is the target's CPU policy when the user set none (no
// --cpus, no GOMAXPROCS): one P per connected I/O queue, at least one, at
// most the CPUs it runs on; and, when I/O starts, off any CPU someone else
// was keeping busy just before. A queue's commands run to completion on
// its receive goroutine, so more Ps than busy queues only add threads
// spinning for work. Beside a neighbour that polls a core
// (spdk_nvme_perf, an SPDK target) the kernel still puts our threads on
// that core now and then, where they wait for its time slice; so while
// no I/O queue is connected a sampler notes which CPUs are busy (two
// /proc/stat reads a second), and the first I/O queue moves the process
// off those at 90% or more, back when the last one goes (see
// BENCHMARKS.md, "Placement").
type placement struct {
	log  func(msg string, args ...any)
	all  []int // the CPUs the process had at the start
	cpus int
	// setAffinity and setProcs change the process (tests fake them).
	setAffinity func([]int) error
	setProcs    func(int) int

	mu     sync.Mutex
	queues int
	gen    int         // counts changes of queues: a window that saw one is dropped
	busy   cpuset.Busy // the last whole window without I/O queues
	moved  []int       // where the process was moved, or nil
}

// newPlacement starts the idle sampler (until ctx ends) and sets the idle
// target's one P; Hook is for target.WithIOQueueHook.
func newPlacement(ctx context.Context, log func(string, ...any)) *placement {
	p := &placement{log: log, cpus: runtime.NumCPU(), setAffinity: cpuset.SetAffinity, setProcs: runtime.GOMAXPROCS}
	p.all, _ = cpuset.Allowed()
	p.setProcs(1)
	if len(p.all) > 1 {
		go p.sample(ctx)
	}
	return p
}

func (p *placement) sample(ctx context.Context) {
	for ctx.Err() == nil {
		p.mu.Lock()
		gen := p.gen
		p.mu.Unlock()
		b, err := cpuset.SampleBusy(500 * time.Millisecond)
		if err != nil {
			return
		}
		p.mu.Lock()
		// Only a window in which our own I/O never ran says what the
		// neighbours do.
		if p.queues == 0 && p.gen == gen {
			p.busy = b
		}
		p.mu.Unlock()
	}
}

// Hook sets GOMAXPROCS and the CPUs for n connected I/O queues.
func (p *placement) Hook(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.queues
	p.queues = n
	p.gen++
	switch {
	case prev == 0 && n > 0:
		if free := cpuset.AvoidBusy(p.busy, p.all); free != nil && p.setAffinity(free) == nil {
			p.moved = free
			p.log("I/O started beside a busy CPU: running on the others (give --cpus to choose)", "cpus", cpuset.Format(free), "busy", busyList(p.busy, p.all))
		}
	case n == 0:
		p.busy = nil // measured before this I/O: stale now
		if p.moved != nil && p.setAffinity(p.all) == nil {
			p.moved = nil
		}
	}
	limit := p.cpus
	if p.moved != nil {
		limit = len(p.moved)
	}
	p.setProcs(min(max(n, 1), limit))
}

// busyList names the CPUs at 90% or more, e.g. "1 (100%)".
func busyList(b cpuset.Busy, cpus []int) string {
	var l []string
	for _, c := range cpus {
		if b[c] >= 0.9 {
			l = append(l, fmt.Sprintf("%d (%.0f%%)", c, 100*b[c]))
		}
	}
	return strings.Join(l, ", ")
}
