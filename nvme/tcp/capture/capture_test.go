package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// packet is one frame read back from a trace.
type packet struct {
	tcp      *layers.TCP
	src, dst string // ip:port
	v6       bool
	comments []string
}

func readTrace(t *testing.T, path string) (section string, pkts []packet) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	for {
		data, _, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pk := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if el := pk.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: %v", len(pkts)+1, el.Error())
		}
		tl, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("frame %d has no TCP layer", len(pkts)+1)
		}
		var p packet
		p.tcp, p.comments = tl, opts.Comments
		switch ip := pk.NetworkLayer().(type) {
		case *layers.IPv4:
			p.src = net.JoinHostPort(ip.SrcIP.String(), fmt.Sprint(int(tl.SrcPort)))
			p.dst = net.JoinHostPort(ip.DstIP.String(), fmt.Sprint(int(tl.DstPort)))
		case *layers.IPv6:
			p.v6 = true
			p.src = net.JoinHostPort(ip.SrcIP.String(), fmt.Sprint(int(tl.SrcPort)))
			p.dst = net.JoinHostPort(ip.DstIP.String(), fmt.Sprint(int(tl.DstPort)))
		}
		pkts = append(pkts, p)
	}
	return r.SectionInfo().Comment, pkts
}

// flow is one direction of a connection as the trace shows it.
type flow struct {
	isn, next uint32 // initial sequence number, next expected
	data      []byte
	fin       bool
}

// checkStream checks the TCP rules the synthesized trace promises, for
// the connection between a and b (the first packet must be a's SYN), and
// returns each direction's payload (a to b first).
func checkStream(t *testing.T, pkts []packet, a, b string, mss int) (ab, ba []byte) {
	t.Helper()
	var sel []packet
	for _, p := range pkts {
		if (p.src == a && p.dst == b) || (p.src == b && p.dst == a) {
			sel = append(sel, p)
		}
	}
	if len(sel) < 6 {
		t.Fatalf("%s<->%s: %d packets", a, b, len(sel))
	}
	s0, s1, s2 := sel[0].tcp, sel[1].tcp, sel[2].tcp
	if sel[0].src != a || !s0.SYN || s0.ACK || sel[1].src != b || !s1.SYN || !s1.ACK || s1.Ack != s0.Seq+1 ||
		sel[2].src != a || s2.SYN || !s2.ACK || s2.Seq != s0.Seq+1 || s2.Ack != s1.Seq+1 {
		t.Fatalf("no 3-way handshake: %v / %v / %v", s0, s1, s2)
	}
	for _, s := range []*layers.TCP{s0, s1} {
		var gotMSS int
		var ws = -1
		for _, o := range s.Options {
			switch o.OptionType {
			case layers.TCPOptionKindMSS:
				gotMSS = int(binary.BigEndian.Uint16(o.OptionData))
			case layers.TCPOptionKindWindowScale:
				ws = int(o.OptionData[0])
			}
		}
		if gotMSS != mss || ws != windowShift {
			t.Errorf("SYN options: MSS %d window scale %d", gotMSS, ws)
		}
	}
	fl := map[string]*flow{
		a: {isn: s0.Seq, next: s0.Seq + 1},
		b: {isn: s1.Seq, next: s1.Seq + 1},
	}
	other := map[string]string{a: b, b: a}
	for i, p := range sel[2:] {
		s, f, o := p.tcp, fl[p.src], fl[other[p.src]]
		if s.SYN || s.RST || !s.ACK {
			t.Fatalf("packet %d: flags %v", i+3, s)
		}
		if s.Seq != f.next {
			t.Fatalf("packet %d from %s: seq %d, want %d", i+3, p.src, s.Seq-f.isn, f.next-f.isn)
		}
		if s.Ack != o.next {
			t.Fatalf("packet %d from %s: ack %d, want %d (all the other side sent)", i+3, p.src, s.Ack-o.isn, o.next-o.isn)
		}
		if len(s.Payload) > mss {
			t.Fatalf("packet %d: %d bytes > MSS %d", i+3, len(s.Payload), mss)
		}
		if s.Window != window {
			t.Fatalf("packet %d: window %d", i+3, s.Window)
		}
		if f.fin && (len(s.Payload) > 0 || s.FIN) {
			t.Fatalf("packet %d from %s: sent after its FIN", i+3, p.src)
		}
		f.data = append(f.data, s.Payload...)
		f.next += uint32(len(s.Payload))
		if s.FIN {
			f.fin = true
			f.next++
		}
	}
	if !fl[a].fin || !fl[b].fin {
		t.Fatalf("no FIN exchange: %v %v", fl[a].fin, fl[b].fin)
	}
	if last := sel[len(sel)-1]; last.tcp.FIN || len(last.tcp.Payload) > 0 {
		t.Errorf("last packet does not acknowledge the last FIN: %v", last.tcp)
	}
	return fl[a].data, fl[b].data
}

// pdu builds an NVMe/TCP-framed message of n bytes (n >= 8) of type typ.
func pdu(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0], b[2] = typ, 8
	binary.LittleEndian.PutUint32(b[4:], uint32(n))
	for i := 8; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

func tcpPair(t *testing.T, network, addr string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// exchange writes reqs from a to b and resps from b to a, one by one,
// reading each fully on the other side.
func exchange(t *testing.T, a, b net.Conn, reqs, resps [][]byte) {
	t.Helper()
	for i := range reqs {
		for _, m := range []struct {
			w, r net.Conn
			b    []byte
		}{{a, b, reqs[i]}, {b, a, resps[i]}} {
			errc := make(chan error, 1)
			go func() { _, err := m.w.Write(m.b); errc <- err }()
			got := make([]byte, len(m.b))
			if _, err := io.ReadFull(m.r, got); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, m.b) {
				t.Fatal("bytes changed in transit")
			}
		}
	}
}

func TestDirHostSide(t *testing.T) {
	for _, tc := range []struct {
		name, network, addr string
		mss                 int
	}{
		{"IPv4", "tcp4", "127.0.0.1:0", MSS4},
		{"IPv6", "tcp6", "[::1]:0", MSS6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDir(filepath.Join(t.TempDir(), "new", "dir"))
			if err != nil {
				t.Fatal(err)
			}
			cnc, snc := tcpPair(t, tc.network, tc.addr)
			rc := d.Record(cnc, true, "nvmftest host: admin queue")
			c := rc.(*Conn)
			// Two PDUs in one write, one PDU over two writes, one larger than
			// several segments.
			two := append(pdu(4, 72), pdu(4, 80)...)
			big := pdu(6, 3*tc.mss+17)
			reqs := [][]byte{pdu(0, 128), two, big[:100], big[100:]}
			resps := [][]byte{pdu(1, 128), pdu(5, 24), pdu(7, 5000), pdu(5, 24)}
			exchange(t, rc, snc, reqs[:2], resps[:2])
			if !Annotate(rc, "fault: byte flipped at PDU offset 30") {
				t.Fatal("Annotate: not recorded")
			}
			exchange(t, rc, snc, reqs[2:], resps[2:])
			Annotate(rc, "before close")
			if s, r := c.PDUs(); s != 4 || r != 4 {
				t.Errorf("PDUs() = %d, %d; want 4, 4", s, r)
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}

			ents, _ := os.ReadDir(d.Path())
			la, ra := cnc.LocalAddr().(*net.TCPAddr), cnc.RemoteAddr().(*net.TCPAddr)
			want := fmt.Sprintf("0001-%s-%s.pcapng", fileAddr(endpoint{ip: la.IP, port: uint16(la.Port)}), fileAddr(endpoint{ip: ra.IP, port: uint16(ra.Port)}))
			if len(ents) != 1 || ents[0].Name() != want {
				t.Fatalf("files %v, want %s", ents, want)
			}
			section, pkts := readTrace(t, filepath.Join(d.Path(), want))
			if section != "nvmftest host: admin queue" {
				t.Errorf("section comment %q", section)
			}
			ab, ba := checkStream(t, pkts, cnc.LocalAddr().String(), cnc.RemoteAddr().String(), tc.mss)
			if !bytes.Equal(ab, slices.Concat(reqs...)) || !bytes.Equal(ba, slices.Concat(resps...)) {
				t.Error("payloads differ from what was sent")
			}
			for _, p := range pkts {
				if p.v6 != (tc.network == "tcp6") {
					t.Fatal("wrong IP version")
				}
			}
			if c := pkts[0].comments; len(c) != 1 || c[0] != "nvmftest host: admin queue" {
				t.Errorf("first packet comments %q", c)
			}
			// The annotation lands on the next packet: the first segment of
			// the large request.
			var annotated []int
			for i, p := range pkts {
				if len(p.comments) > 0 {
					annotated = append(annotated, i)
				}
			}
			if len(annotated) != 3 {
				t.Fatalf("comments on packets %v", annotated)
			}
			if p := pkts[annotated[1]]; p.comments[0] != "fault: byte flipped at PDU offset 30" || !bytes.HasPrefix(big, p.tcp.Payload) {
				t.Errorf("annotation on %v %q", p.tcp, p.comments)
			}
			if p := pkts[annotated[2]]; !p.tcp.FIN || p.src != cnc.LocalAddr().String() || p.comments[0] != "before close" {
				t.Errorf("comment pending at close is not on our FIN: %v %q", p.tcp, p.comments)
			}
		})
	}
}

// The accepting side: the SYN comes from the peer, and the peer closing
// first is its FIN where our Read saw the end of the stream.
func TestServerSidePeerCloses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.pcapng")
	f, err := CreateFile(path, "server side")
	if err != nil {
		t.Fatal(err)
	}
	cnc, snc := tcpPair(t, "tcp4", "127.0.0.1:0")
	rs := f.Record(snc, false, "nvmftest target: port 1")
	exchange(t, cnc, rs, [][]byte{pdu(0, 128)}, [][]byte{pdu(1, 128)})
	cnc.Close()
	if n, err := rs.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read %d %v", n, err)
	}
	rs.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	section, pkts := readTrace(t, path)
	if section != "server side" {
		t.Errorf("section %q", section)
	}
	checkStream(t, pkts, cnc.LocalAddr().String(), cnc.RemoteAddr().String(), MSS4)
	// The peer's FIN comes before ours.
	var fins []string
	for _, p := range pkts {
		if p.tcp.FIN {
			fins = append(fins, p.src)
		}
	}
	if len(fins) != 2 || fins[0] != cnc.LocalAddr().String() {
		t.Errorf("FINs from %v", fins)
	}
}

// Many connections into one File at once, each reading and writing on
// two goroutines: every flow must still be continuous.
func TestFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "all.pcapng")
	f, err := CreateFile(path, "concurrent")
	if err != nil {
		t.Fatal(err)
	}
	const conns, msgs = 8, 50
	type pairT struct{ c, s net.Conn }
	pairs := make([]pairT, conns)
	for i := range pairs {
		c, s := tcpPair(t, "tcp4", "127.0.0.1:0")
		pairs[i] = pairT{c, s}
	}
	var wg sync.WaitGroup
	recs := make([]*Conn, conns)
	for i := range pairs {
		rc := f.Record(pairs[i].c, true, fmt.Sprintf("I/O queue %d", i+1)).(*Conn)
		recs[i] = rc
		wg.Add(3)
		go func() { // host writes commands
			defer wg.Done()
			for j := range msgs {
				rc.Write(pdu(4, 72+j*97))
				if j == msgs/2 {
					rc.Comment("halfway")
				}
			}
		}()
		go func() { // peer answers each
			defer wg.Done()
			for j := range msgs {
				io.ReadFull(pairs[i].s, make([]byte, 72+j*97))
				pairs[i].s.Write(pdu(5, 24))
			}
		}()
		go func() { // host reads answers
			defer wg.Done()
			io.ReadFull(rc, make([]byte, 24*msgs))
		}()
	}
	wg.Wait()
	for _, rc := range recs {
		if s, r := rc.PDUs(); s != msgs || r != msgs {
			t.Errorf("PDUs %d %d", s, r)
		}
		rc.Close()
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, pkts := readTrace(t, path)
	comments := 0
	for _, p := range pkts {
		comments += len(p.comments)
	}
	if comments != 2*conns {
		t.Errorf("%d comments, want %d", comments, 2*conns)
	}
	if sum, err := Summarize(path); err != nil || sum.Frames != len(pkts) || len(sum.Comments) != comments {
		t.Errorf("Summarize: %d frames, %d comments, %v; want %d, %d", sum.Frames, len(sum.Comments), err, len(pkts), comments)
	}
	for i := range pairs {
		ab, ba := checkStream(t, pkts, pairs[i].c.LocalAddr().String(), pairs[i].c.RemoteAddr().String(), MSS4)
		var w walker
		w.feed(ab)
		if w.n != msgs || len(ba) != 24*msgs {
			t.Errorf("conn %d: %d PDUs out, %d bytes in", i, w.n, len(ba))
		}
	}
}

type walker = pduWalker

func TestPDUWalker(t *testing.T) {
	stream := slices.Concat(pdu(4, 72), pdu(7, 4096+24), pdu(5, 24), pdu(5, 24)[:10])
	for _, step := range []int{1, 3, 7, 8, 100, len(stream)} {
		var w pduWalker
		for b := stream; len(b) > 0; {
			n := min(step, len(b))
			w.feed(b[:n])
			b = b[n:]
		}
		if w.n != 3 {
			t.Errorf("step %d: %d PDUs, want 3", step, w.n)
		}
	}
}

// Annotate finds the recorded connection under the wrappers the initiator
// puts around it.
func TestAnnotateWrapped(t *testing.T) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer b.Close()
	rc := d.Record(a, true, "")
	defer rc.Close()
	aw := tcp.NewAsyncWriter(rc, 1<<20)
	if !Annotate(aw, "x") || !Annotate(tcp.NewAsyncWriter(aw, 1<<20), "y") {
		t.Error("not found under an AsyncWriter")
	}
	if c := rc.(*Conn).comments; len(c) != 2 {
		t.Errorf("comments %q", c)
	}
}

func TestAnnotateUnrecorded(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Annotate(a, "x") {
		t.Error("Annotate on a connection never recorded")
	}
}

// A trace that cannot be written must not matter to the connection.
func TestWriteFailureKeepsConnection(t *testing.T) {
	f, err := CreateFile(filepath.Join(t.TempDir(), "x.pcapng"), "")
	if err != nil {
		t.Fatal(err)
	}
	f.p.f.Close() // every flush from now on fails
	cnc, snc := tcpPair(t, "tcp4", "127.0.0.1:0")
	rc := f.Record(cnc, true, "doomed")
	big := pdu(6, 1<<20)
	exchange(t, rc, snc, [][]byte{big}, [][]byte{pdu(5, 24)})
	if f.p.err == nil {
		t.Error("write error not noticed")
	}
	if err := rc.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := f.Close(); err == nil {
		t.Error("File.Close hid the write error")
	}
}

// net.Pipe has no TCP addresses: the trace invents loopback ones with the
// server on 4420.
func TestPipe(t *testing.T) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	ra := d.Record(a, false, "target")
	go func() { b.Write(pdu(0, 128)); b.Close() }()
	if _, err := io.ReadAll(ra); err != nil {
		t.Fatal(err)
	}
	ra.Close()
	ents, _ := os.ReadDir(d.Path())
	_, pkts := readTrace(t, filepath.Join(d.Path(), ents[0].Name()))
	if pkts[0].dst != "127.0.0.1:4420" {
		t.Errorf("SYN to %s", pkts[0].dst)
	}
	checkStream(t, pkts, pkts[0].src, pkts[0].dst, MSS4)
}

// A second Dir on the same directory numbers on after the first's traces;
// each Dir's Files lists only its own.
func TestDirContinuesNumbering(t *testing.T) {
	dir := t.TempDir()
	for i, want := range []string{"0001-", "0002-"} {
		d, err := NewDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		d.Record(a, true, "").Close()
		b.Close()
		ents, _ := os.ReadDir(dir)
		if len(ents) != i+1 || !strings.HasPrefix(ents[i].Name(), want) {
			t.Fatalf("traces %v", ents)
		}
		if f := d.Files(); len(f) != 1 || f[0] != filepath.Join(dir, ents[i].Name()) {
			t.Errorf("Files() = %v, want [%s]", f, filepath.Join(dir, ents[i].Name()))
		}
	}
}

// A trace that cannot be created leaves the connection as it was.
func TestDirCreateFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer b.Close()
	if nc := d.Record(a, true, "x"); nc != a || Annotate(nc, "y") {
		t.Errorf("Record returned %T", nc)
	}
	if f := d.Files(); len(f) != 0 {
		t.Errorf("Files() = %v after a failed create", f)
	}
	a.Close()
}

// What is recorded reaches the file within FlushInterval, before Close: a
// run that hangs still leaves its trace.
func TestPeriodicFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.pcapng")
	f, err := CreateFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cnc, snc := tcpPair(t, "tcp4", "127.0.0.1:0")
	rc := f.Record(cnc, true, "flush")
	exchange(t, rc, snc, [][]byte{pdu(0, 128)}, [][]byte{pdu(1, 128)})
	deadline := time.Now().Add(FlushInterval + 5*time.Second)
	for {
		if _, pkts := readTrace(t, path); len(pkts) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("packets not flushed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rc.Close()
}

// A connection reset by the peer says so in the trace.
func TestResetNoted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.pcapng")
	f, err := CreateFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	cnc, snc := tcpPair(t, "tcp4", "127.0.0.1:0")
	rc := f.Record(cnc, true, "")
	exchange(t, rc, snc, [][]byte{pdu(0, 128)}, [][]byte{pdu(1, 128)})
	snc.(*net.TCPConn).SetLinger(0)
	rc.Write(pdu(4, 72)) // unread on the peer: closing it then resets
	time.Sleep(10 * time.Millisecond)
	snc.Close()
	if _, err := rc.Read(make([]byte, 10)); err == nil {
		t.Fatal("read after reset succeeded")
	}
	rc.Close()
	f.Close()
	_, pkts := readTrace(t, path)
	var got []string
	for _, p := range pkts {
		got = append(got, p.comments...)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "nvmftest: read failed: ") {
		t.Errorf("comments %q", got)
	}
	if !pkts[len(pkts)-3].tcp.FIN {
		t.Error("no FIN exchange after the reset")
	}
}
