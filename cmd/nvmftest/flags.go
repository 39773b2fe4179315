package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
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

	defPort  string
	needNQN  bool
	ioQueues bool // the command uses I/O queues (-i, -Q)
}

func addConnFlags(c *cobra.Command, f *connFlags) {
	fs := c.Flags()
	fs.StringVarP(&f.transport, "transport", "t", "tcp", "transport type (only tcp)")
	fs.StringVarP(&f.traddr, "traddr", "a", "", "transport address of the target (required)")
	fs.StringVarP(&f.trsvcid, "trsvcid", "s", f.defPort, "transport service ID (TCP port)")
	if f.defPort == strconv.Itoa(nvme.PortDiscovery) {
		fs.StringVarP(&f.nqn, "nqn", "n", nvme.DiscoveryNQN, "subsystem NQN")
	} else {
		fs.StringVarP(&f.nqn, "nqn", "n", "", "subsystem NQN (required)")
	}
	fs.StringVarP(&f.hostnqn, "hostnqn", "q", "", "host NQN (default /etc/nvme/hostnqn or a generated one)")
	fs.StringVarP(&f.hostid, "hostid", "I", "", "host ID as a UUID (default /etc/nvme/hostid or derived from the host NQN)")
	fs.BoolVarP(&f.hdrDigest, "hdr-digest", "g", false, "request header digests")
	fs.BoolVarP(&f.dataDigest, "data-digest", "G", false, "request data digests")
	fs.StringVar(&f.dhchap, "dhchap-secret", "", "DH-HMAC-CHAP host secret (DHHC-1:hh:...:), used when the controller asks for authentication")
	fs.StringVar(&f.dhchapCtrl, "dhchap-ctrl-secret", "", "DH-HMAC-CHAP controller secret: authenticate the controller too")
	fs.IntVarP(&f.kato, "keep-alive-tmo", "k", -1, "keep-alive timeout in seconds (default 5, 0 for discovery)")
	if f.ioQueues {
		fs.IntVarP(&f.nrIO, "nr-io-queues", "i", 0, "number of I/O queues (default: number of CPUs for connect, 1 otherwise)")
		fs.IntVarP(&f.queueSize, "queue-size", "Q", initiator.DefaultQueueSize, "I/O queue size")
	}
	fs.DurationVar(&f.timeout, "timeout", initiator.DefaultTimeout, "command timeout")
	fs.DurationVar(&f.connTmo, "connect-timeout", 0, fmt.Sprintf("time limit of each TCP connect to the target, for a host that drops SYNs (default %v, or --timeout if shorter)", initiator.DefaultConnectTimeout))
	fs.StringVarP(&f.output, "output-format", "o", "normal", "output format: normal or json")
	fs.StringVar(&f.capture, "capture", "", "write a pcapng packet trace of every connection into `DIR` (created if missing); open with Wireshark")
}

func (f *connFlags) validate() error {
	if f.transport != "tcp" {
		return usagef("transport %q is not supported: nvmftest speaks NVMe/TCP only (use -t tcp)", f.transport)
	}
	if f.traddr == "" {
		return usagef("missing target address: give it with -a/--traddr ADDRESS")
	}
	if p, err := strconv.Atoi(f.trsvcid); err != nil || p <= 0 || p > 65535 {
		return usagef("invalid -s/--trsvcid %q: want a TCP port number (1-65535)", f.trsvcid)
	}
	if f.needNQN && f.nqn == "" {
		return usagef("missing subsystem NQN: give it with -n/--nqn NQN")
	}
	if f.output != "normal" && f.output != "json" {
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
	}
	if f.hostid != "" {
		o.HostID, _ = initiator.ParseHostID(f.hostid)
	}
	switch {
	case f.kato == 0:
		o.KATO = -1
	case f.kato > 0:
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
		return nil, fmt.Errorf("failed to connect to %s at %s: %w", f.nqn, f.addr(), err)
	}
	return c, nil
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
