package fuzz

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// maxSeedSteps bounds the PDUs a seed case keeps, so that a long capture
// does not make every case long: the set-up and the first commands are
// kept.
const maxSeedSteps = 200

// LoadSeeds reads a pcap or pcapng capture and returns one seed case
// holding, for every TCP connection whose host side starts with an ICReq,
// the PDUs the host sent, in the order the capture saw them. Connect data
// is rewritten for id (the subsystem and host NQN and host ID under
// test, the discovery NQN kept), and the fields that depend on the
// target's answers are marked for fixing at send time.
func LoadSeeds(path string, id Identity) ([]*Case, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cs, err := seedsFrom(f, "seed:"+filepath.Base(path), id.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cs, nil
}

func seedsFrom(r io.Reader, origin string, id Identity) ([]*Case, error) {
	pkts, err := readPackets(r)
	if err != nil {
		return nil, err
	}
	steps, err := hostPDUs(pkts)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return nil, errors.New("no NVMe/TCP connection starting with an ICReq")
	}
	if len(steps) > maxSeedSteps {
		steps = steps[:maxSeedSteps]
	}
	for i := range steps {
		normalize(&steps[i], id)
	}
	c := &Case{Origin: origin, Steps: steps}
	c.renumber()
	return []*Case{c}, nil
}

// LoadCorpus loads every pcap and pcapng file in dir (not recursive).
func LoadCorpus(dir string, id Identity) ([]*Case, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*Case
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".pcap" && ext != ".pcapng") {
			continue
		}
		cs, err := LoadSeeds(filepath.Join(dir, e.Name()), id)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .pcap or .pcapng file", dir)
	}
	return out, nil
}

type packet struct {
	ts   time.Time
	data []byte
	link layers.LinkType
}

// readPackets reads every packet of a pcap or pcapng stream.
func readPackets(r io.Reader) ([]packet, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("not a capture: %w", err)
	}
	var next func() ([]byte, gopacket.CaptureInfo, error)
	var link func() layers.LinkType
	if binary.LittleEndian.Uint32(magic) == 0x0A0D0D0A {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, err
		}
		next, link = ng.ReadPacketData, ng.LinkType
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, err
		}
		next, link = pr.ReadPacketData, pr.LinkType
	}
	var out []packet
	for {
		data, ci, err := next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, packet{ts: ci.Timestamp, data: data, link: link()})
	}
}

type segment struct {
	seq  uint32
	ts   time.Time
	data []byte
}

type half struct {
	isn    uint32
	hasSYN bool
	segs   []segment
}

// stream reassembles the direction by sequence number and returns its
// bytes with, for each byte offset where a segment starts, its time.
func (h *half) stream() ([]byte, []segment) {
	segs := append([]segment(nil), h.segs...)
	base := h.isn + 1
	if !h.hasSYN && len(segs) > 0 {
		base = segs[0].seq
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].seq-base < segs[j].seq-base })
	var out []byte
	var starts []segment
	for _, s := range segs {
		off := int(s.seq - base)
		if off > len(out) || off < 0 {
			break // a hole: keep what came before it
		}
		if off+len(s.data) <= len(out) {
			continue
		}
		starts = append(starts, segment{seq: uint32(len(out)), ts: s.ts})
		out = append(out, s.data[len(out)-off:]...)
	}
	return out, starts
}

type flow struct {
	a, b   netip.AddrPort
	ab, ba half
	first  time.Time
}

// hostPDUs finds the TCP connections whose one direction starts with an
// ICReq and returns that direction's PDUs as steps, interleaved across
// connections by the time of the segment each PDU starts in.
func hostPDUs(pkts []packet) ([]Step, error) {
	var (
		eth     layers.Ethernet
		lo      layers.Loopback
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcpl    layers.TCP
		payload gopacket.Payload
	)
	flows := map[[2]netip.AddrPort]*flow{}
	var order []*flow
	for _, p := range pkts {
		var first gopacket.LayerType
		switch p.link {
		case layers.LinkTypeEthernet:
			first = layers.LayerTypeEthernet
		case layers.LinkTypeNull, layers.LinkTypeLoop:
			first = layers.LayerTypeLoopback
		case layers.LinkTypeRaw, layers.LinkTypeIPv4:
			first = layers.LayerTypeIPv4
		default:
			return nil, fmt.Errorf("link type %v not supported (want Ethernet, loopback or raw IP)", p.link)
		}
		parser := gopacket.NewDecodingLayerParser(first, &eth, &lo, &ip4, &ip6, &tcpl, &payload)
		parser.IgnoreUnsupported = true
		var decoded []gopacket.LayerType
		_ = parser.DecodeLayers(p.data, &decoded)
		var src, dst netip.Addr
		isTCP := false
		for _, lt := range decoded {
			switch lt {
			case layers.LayerTypeIPv4:
				src, _ = netip.AddrFromSlice(ip4.SrcIP)
				dst, _ = netip.AddrFromSlice(ip4.DstIP)
			case layers.LayerTypeIPv6:
				src, _ = netip.AddrFromSlice(ip6.SrcIP)
				dst, _ = netip.AddrFromSlice(ip6.DstIP)
			case layers.LayerTypeTCP:
				isTCP = true
			}
		}
		if !isTCP {
			continue
		}
		sp := netip.AddrPortFrom(src, uint16(tcpl.SrcPort))
		dp := netip.AddrPortFrom(dst, uint16(tcpl.DstPort))
		key, fwd := [2]netip.AddrPort{sp, dp}, true
		fl := flows[key]
		if fl == nil {
			if fl = flows[[2]netip.AddrPort{dp, sp}]; fl != nil {
				fwd = false
			}
		}
		if fl == nil || (tcpl.SYN && !tcpl.ACK && fl.ab.hasSYN && fl.ab.isn != tcpl.Seq) {
			// A new connection (or the same ports used again).
			fl = &flow{a: sp, b: dp, first: p.ts}
			flows[key] = fl
			delete(flows, [2]netip.AddrPort{dp, sp})
			order = append(order, fl)
			fwd = true
		}
		h := &fl.ab
		if !fwd {
			h = &fl.ba
		}
		if tcpl.SYN {
			h.isn, h.hasSYN = tcpl.Seq, true
		}
		if len(tcpl.Payload) > 0 {
			h.segs = append(h.segs, segment{seq: tcpl.Seq, ts: p.ts, data: bytes.Clone(tcpl.Payload)})
		}
	}
	type timed struct {
		ts time.Time
		s  Step
	}
	var all []timed
	for ci, fl := range order {
		for _, h := range []*half{&fl.ab, &fl.ba} {
			st, starts := h.stream()
			if len(st) < tcp.HLenIC || st[0] != byte(tcp.TypeICReq) || st[2] != tcp.HLenIC {
				continue
			}
			for off := 0; off+tcp.CommonHeaderSize <= len(st); {
				plen := int(binary.LittleEndian.Uint32(st[off+4:]))
				if plen < tcp.CommonHeaderSize || off+plen > len(st) {
					break
				}
				k := sort.Search(len(starts), func(i int) bool { return int(starts[i].seq) > off }) - 1
				ts := fl.first
				if k >= 0 {
					ts = starts[k].ts
				}
				all = append(all, timed{ts, Step{Conn: ci, Bytes: bytes.Clone(st[off : off+plen])}})
				off += plen
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ts.Before(all[j].ts) })
	out := make([]Step, len(all))
	for i, t := range all {
		out[i] = t.s
	}
	return out, nil
}

// normalize rewrites a captured PDU for the target under test: Connect
// data names id's subsystem (unless it is the discovery NQN), host NQN and
// host ID; an I/O Connect takes the controller ID at send time; an
// H2CData the transfer tag; every digest is recomputed.
func normalize(s *Step, id Identity) {
	b := s.Bytes
	s.Fix |= FixDigest
	if len(b) < tcp.CommonHeaderSize {
		return
	}
	switch tcp.PDUType(b[0]) {
	case tcp.TypeH2CData:
		s.Fix |= FixTTAG
	case tcp.TypeCapsuleCmd:
		pdo := int(b[3])
		if len(b) < tcp.HLenCapsuleCmd || b[8] != nvme.AdminFabrics || b[12] != nvme.FabricsConnect || pdo < tcp.HLenCapsuleCmd || len(b) < pdo+nvme.ConnectDataSize {
			return
		}
		var cd nvme.ConnectData
		_ = cd.Decode(b[pdo:])
		if cd.SubNQN != nvme.DiscoveryNQN && id.SubNQN != "" {
			cd.SubNQN = id.SubNQN
		}
		if id.HostNQN != "" {
			cd.HostNQN = id.HostNQN
			cd.HostID = id.HostID
		}
		cd.Put(b[pdo : pdo+nvme.ConnectDataSize])
		if binary.LittleEndian.Uint16(b[50:]) != 0 {
			s.Fix |= FixCNTLID
		}
	}
}

//go:embed seeds/*.pcap
var builtinSeeds embed.FS

// BuiltinSeeds are the seed cases nvmftest carries: the two Linux 6.12
// host captures of fixtures/traces (discovery, admin and I/O queues,
// in-capsule and R2T writes, reads, with and without digests), rewritten
// for id.
func BuiltinSeeds(id Identity) ([]*Case, error) {
	id = id.withDefaults()
	ents, err := builtinSeeds.ReadDir("seeds")
	if err != nil {
		return nil, err
	}
	var out []*Case
	for _, e := range ents {
		b, err := builtinSeeds.ReadFile("seeds/" + e.Name())
		if err != nil {
			return nil, err
		}
		cs, err := seedsFrom(bytes.NewReader(b), "builtin:"+e.Name(), id)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}
