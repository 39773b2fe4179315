// Package capture records NVMe/TCP connections as pcapng packet traces
// that Wireshark and tshark decode (tshark -d tcp.port==PORT,nvme-tcp).
//
// Nothing is sniffed: a recorded connection is a net.Conn wrapper that
// turns the bytes it reads and writes into the Ethernet/IP/TCP frames a
// capture on the wire would have shown. The frames carry the connection's
// real addresses and ports and real timestamps; the TCP layer is
// synthesized so that dissectors follow it without complaint: a 3-way
// handshake when recording starts, segments no larger than an Ethernet MSS,
// sequence and acknowledgement numbers continuous in both directions, a
// large constant (scaled) window, and a FIN exchange at the end. Labels and
// notes (a fault injected, a check that failed) become pcapng packet
// comments, which Wireshark shows and filters on (frame.comment).
//
// A Write is recorded before its bytes reach the socket and a Read after it
// returns, so an answer is never recorded ahead of its request. Recording
// never fails the connection: an error writing the trace is logged once and
// recording into that file stops. A nil Recorder records nothing and costs
// nothing.
package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Recorder records TCP connections.
type Recorder interface {
	// Record wraps nc so that every byte read and written is recorded.
	// client says this side dialed (the synthesized SYN goes from the
	// client's address). label becomes a packet comment on the
	// connection's first packet, e.g. "nvmftest host: admin queue" or
	// "nvmftest target: port 1".
	Record(nc net.Conn, client bool, label string) net.Conn
}

// Segment sizes: an Ethernet MTU of 1500 less the IP and TCP headers, as
// a real stack would announce.
const (
	MSS4 = 1460
	MSS6 = 1440
)

// Dir writes one pcapng file per recorded connection into a directory.
type Dir struct {
	path string
	n    atomic.Uint64

	mu    sync.Mutex
	files []string // created by Record, in order
}

// NewDir records into directory path, creating it if missing. Files are
// named by the order of recording and the local and remote addresses, e.g.
// 0003-127.0.0.1_4420-127.0.0.1_51234.pcapng, so a listing reads as the
// run went; numbering continues after the traces already there, so
// commands run one after another into one directory still read in order.
func NewDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	d := &Dir{path: path}
	for _, e := range ents {
		var n uint64
		if _, err := fmt.Sscanf(e.Name(), "%d-", &n); err == nil && strings.HasSuffix(e.Name(), ".pcapng") && n > d.n.Load() {
			d.n.Store(n)
		}
	}
	return d, nil
}

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// Files lists the traces Record created, as paths under Path, in the
// order of recording: what a report links to.
func (d *Dir) Files() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.files)
}

// Record implements Recorder. label is also the file's section comment.
// The connection's file is closed when the connection is. If the file cannot be created, nc is returned as is and
// the failure logged: the connection matters more than its trace.
func (d *Dir) Record(nc net.Conn, client bool, label string) net.Conn {
	c := newConn(nc, client, label)
	n := d.n.Add(1)
	name := fmt.Sprintf("%04d-%s-%s.pcapng", n, fileAddr(c.ep[local]), fileAddr(c.ep[remote]))
	path := filepath.Join(d.path, name)
	p, err := createPcap(path, label)
	if err != nil {
		logFailure(name, err)
		return nc
	}
	d.mu.Lock()
	d.files = append(d.files, path)
	d.mu.Unlock()
	c.out, c.own = p, true
	c.start()
	return c
}

func fileAddr(e endpoint) string {
	ip := e.ip.String()
	if e.ip.To4() == nil {
		ip = strings.ReplaceAll(ip, ":", ".") // colons are not portable in file names
	}
	return fmt.Sprintf("%s_%d", ip, e.port)
}

// File writes every connection it records into one pcapng file, in the
// order their packets happen.
type File struct {
	p *pcapFile
}

// CreateFile creates (or truncates) the pcapng file at path; comment
// becomes its section comment.
func CreateFile(path, comment string) (*File, error) {
	p, err := createPcap(path, comment)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	return &File{p: p}, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.p.path }

// Record implements Recorder.
func (f *File) Record(nc net.Conn, client bool, label string) net.Conn {
	c := newConn(nc, client, label)
	c.out = f.p
	c.start()
	return c
}

// Close flushes and closes the file. Connections still open keep working
// but are no longer recorded.
func (f *File) Close() error { return f.p.close() }

// Annotate adds a packet comment to nc's trace if nc was returned by
// Record, directly or under wrappers: a tcp.AsyncWriter (what an
// initiator queue's Conn().NetConn() returns) or anything with a NetConn
// method (tls.Conn). The comment attaches to the next packet recorded on
// that connection, or to its FIN if none follows before it closes. It
// reports whether nc is recorded.
func Annotate(nc net.Conn, text string) bool {
	for range 8 { // a bound, in case wrappers ever point at each other
		switch x := nc.(type) {
		case *Conn:
			x.Comment(text)
			return true
		case *tcp.AsyncWriter:
			nc = x.Conn
		case interface{ NetConn() net.Conn }:
			nc = x.NetConn()
		default:
			return false
		}
	}
	return false
}

// Indices into per-direction state: what this side sent, what it received.
const (
	local  = 0
	remote = 1
)

type endpoint struct {
	ip   net.IP
	port uint16
	mac  net.HardwareAddr
}

// Fixed, locally administered MACs: the client is always ...:01.
var (
	clientMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	serverMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
)

// window is advertised (scaled by 2^windowShift) in every segment: about
// 1 GiB, so no burst of ours ever looks like it filled the peer's window.
const (
	window      = 65535
	windowShift = 14
)

// Conn is a recorded connection, returned by Record. Its methods are safe
// for concurrent use, as net.Conn's are.
type Conn struct {
	net.Conn

	client bool
	label  string
	v6     bool
	mss    int
	ep     [2]endpoint

	mu       sync.Mutex
	out      *pcapFile
	own      bool // out belongs to this connection: close it with it
	done     bool // closed: nothing more is recorded
	seq      [2]uint32
	fin      [2]bool
	ipid     [2]uint16
	comments []string
	errNoted bool // a socket error is in comments already
	pdus     [2]pduWalker
	sb       gopacket.SerializeBuffer

	// Layers reused for every frame (under mu), so recording a segment
	// allocates nothing.
	tcpL    layers.TCP
	ethL    layers.Ethernet
	ip4L    layers.IPv4
	ip6L    layers.IPv6
	payload gopacket.Payload
}

var fakePort atomic.Uint32

func newConn(nc net.Conn, client bool, label string) *Conn {
	c := &Conn{Conn: nc, client: client, label: label, sb: gopacket.NewSerializeBuffer()}
	la, lok := nc.LocalAddr().(*net.TCPAddr)
	ra, rok := nc.RemoteAddr().(*net.TCPAddr)
	if lok && rok {
		c.ep[local] = endpoint{ip: la.IP, port: uint16(la.Port)}
		c.ep[remote] = endpoint{ip: ra.IP, port: uint16(ra.Port)}
	} else {
		// Not TCP (net.Pipe in tests): invent loopback addresses, the
		// server on the NVMe/TCP port so dissectors recognise it.
		eph := uint16(49152 + fakePort.Add(1)%16384)
		srv := endpoint{ip: net.IPv4(127, 0, 0, 1), port: 4420}
		cli := endpoint{ip: net.IPv4(127, 0, 0, 2), port: eph}
		if client {
			c.ep[local], c.ep[remote] = cli, srv
		} else {
			c.ep[local], c.ep[remote] = srv, cli
		}
	}
	c.v6 = c.ep[local].ip.To4() == nil || c.ep[remote].ip.To4() == nil
	if c.v6 {
		c.mss = MSS6
		for i := range c.ep {
			c.ep[i].ip = c.ep[i].ip.To16()
		}
	} else {
		c.mss = MSS4
		for i := range c.ep {
			c.ep[i].ip = c.ep[i].ip.To4()
		}
	}
	if client {
		c.ep[local].mac, c.ep[remote].mac = clientMAC, serverMAC
	} else {
		c.ep[local].mac, c.ep[remote].mac = serverMAC, clientMAC
	}
	c.seq[local], c.seq[remote] = rand.Uint32(), rand.Uint32()
	c.ipid[local], c.ipid[remote] = uint16(rand.Uint32()), uint16(rand.Uint32())
	if label != "" {
		c.comments = append(c.comments, label)
	}
	return c
}

// start records the handshake, the SYN from whichever side dialed.
func (c *Conn) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, sv := local, remote
	if !c.client {
		cl, sv = remote, local
	}
	syn := c.ack(cl)
	syn.ACK, syn.Ack, syn.SYN, syn.Options = false, 0, true, c.synOptions()
	c.emit(cl, syn, nil)
	c.seq[cl]++
	synack := c.ack(sv)
	synack.SYN, synack.Options = true, c.synOptions()
	c.emit(sv, synack, nil)
	c.seq[sv]++
	c.emit(cl, c.ack(cl), nil)
}

func (c *Conn) synOptions() []layers.TCPOption {
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, uint16(c.mss))},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{windowShift}},
	}
}

// ack is a bare segment from side d acknowledging all the other side
// sent, to adjust and pass to emit before the next call. Called with c.mu
// held.
func (c *Conn) ack(d int) *layers.TCP {
	c.tcpL = layers.TCP{ACK: true, Seq: c.seq[d], Ack: c.seq[1-d], Window: window}
	return &c.tcpL
}

// emit writes one frame from side d. Called with c.mu held, which is what
// keeps the two directions' numbers consistent with the file's order.
func (c *Conn) emit(d int, t *layers.TCP, payload []byte) {
	src, dst := c.ep[d], c.ep[1-d]
	t.SrcPort, t.DstPort = layers.TCPPort(src.port), layers.TCPPort(dst.port)
	c.ethL = layers.Ethernet{SrcMAC: src.mac, DstMAC: dst.mac}
	var ip gopacket.SerializableLayer
	if c.v6 {
		c.ethL.EthernetType = layers.EthernetTypeIPv6
		c.ip6L = layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, SrcIP: src.ip, DstIP: dst.ip}
		_ = t.SetNetworkLayerForChecksum(&c.ip6L)
		ip = &c.ip6L
	} else {
		c.ethL.EthernetType = layers.EthernetTypeIPv4
		c.ipid[d]++
		c.ip4L = layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Id: c.ipid[d],
			Protocol: layers.IPProtocolTCP, SrcIP: src.ip, DstIP: dst.ip}
		_ = t.SetNetworkLayerForChecksum(&c.ip4L)
		ip = &c.ip4L
	}
	c.payload = payload
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	err := gopacket.SerializeLayers(c.sb, opts, &c.ethL, ip, t, &c.payload)
	c.payload = nil // do not keep the caller's buffer
	if err != nil {
		// Only a bug gets here; lose the packet, not the connection.
		logFailure(c.label, err)
		return
	}
	comments := c.comments
	c.comments = nil
	c.out.write(time.Now(), c.sb.Bytes(), comments)
}

// data records b as sent by side d, in MSS-sized segments.
func (c *Conn) data(d int, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.fin[d] {
		return
	}
	c.pdus[d].feed(b)
	for len(b) > 0 {
		n := min(len(b), c.mss)
		t := c.ack(d)
		t.PSH = n == len(b)
		c.emit(d, t, b[:n])
		c.seq[d] += uint32(n)
		b = b[n:]
	}
}

// finish records side d's FIN and the other side's acknowledgement.
// Called with c.mu held.
func (c *Conn) finish(d int) {
	if c.fin[d] {
		return
	}
	t := c.ack(d)
	t.FIN = true
	c.emit(d, t, nil)
	c.seq[d]++
	c.fin[d] = true
	if c.fin[1-d] {
		c.emit(1-d, c.ack(1-d), nil)
	}
}

// Write records b, then writes it: a request is in the trace before its
// answer can be. A write that fails is noted in the trace, since what it
// recorded may not all have reached the peer.
func (c *Conn) Write(b []byte) (int, error) {
	c.data(local, b)
	n, err := c.Conn.Write(b)
	if err != nil {
		c.noteError(fmt.Sprintf("nvmftest: write failed after %d of %d bytes: %v", n, len(b), err))
	}
	return n, err
}

// noteError comments the first socket error (a reset, a timeout) on the
// connection's next packet, usually its FIN, so a trace says how it ended.
func (c *Conn) noteError(text string) {
	c.mu.Lock()
	if !c.done && !c.errNoted {
		c.errNoted = true
		c.comments = append(c.comments, text)
	}
	c.mu.Unlock()
}

// Read reads, then records what arrived. The end of the stream is the
// peer's FIN.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.data(remote, b[:n])
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		c.mu.Lock()
		if !c.done {
			c.finish(remote)
		}
		c.mu.Unlock()
	case errors.Is(err, net.ErrClosed):
		// Closed on this side: Close recorded the end.
	default:
		c.noteError("nvmftest: read failed: " + err.Error())
	}
	return n, err
}

// CloseWrite records this side's FIN and half-closes the connection if it
// can (a *net.TCPConn underneath), as a proxy forwarding one direction's
// end does.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	if !c.done {
		c.finish(local)
	}
	c.mu.Unlock()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close records the FIN exchange (comments still pending land on it) and
// closes the connection, and the trace file if it is the connection's own.
func (c *Conn) Close() error {
	c.mu.Lock()
	if !c.done {
		c.finish(local)
		c.finish(remote)
		c.done = true
		if c.own {
			if err := c.out.close(); err != nil {
				logFailure(c.label, err)
			}
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// NetConn is the recorded connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Comment adds a packet comment to the next packet recorded on c, or to
// its FIN if none follows before c closes.
func (c *Conn) Comment(text string) {
	c.mu.Lock()
	if !c.done {
		c.comments = append(c.comments, truncate(text))
	}
	c.mu.Unlock()
}

// PDUs is the number of complete NVMe/TCP PDUs recorded in each direction,
// found by walking each byte stream by the common header's PLEN.
func (c *Conn) PDUs() (sent, received int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pdus[local].n, c.pdus[remote].n
}

// pduWalker follows PDU boundaries in one direction's byte stream.
type pduWalker struct {
	hdr  [8]byte
	off  int // offset within the current PDU
	plen int
	n    int // complete PDUs
}

func (w *pduWalker) feed(b []byte) {
	for len(b) > 0 {
		if w.off < 8 {
			k := copy(w.hdr[w.off:], b)
			w.off += k
			b = b[k:]
			if w.off < 8 {
				return
			}
			// A PLEN below the header's own size is nonsense; count the
			// header alone so the walk keeps moving.
			w.plen = max(int(binary.LittleEndian.Uint32(w.hdr[4:])), 8)
		} else {
			k := min(len(b), w.plen-w.off)
			w.off += k
			b = b[k:]
		}
		if w.off == w.plen {
			w.n++
			w.off = 0
		}
	}
}

func logFailure(what string, err error) {
	slog.Warn("packet capture failed", "what", what, "err", err)
}
