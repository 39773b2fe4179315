package target

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Fuzz input modes (the first byte of an input; the rest is what a host
// sends on one connection).
const (
	// fuzzAdmin: the stream is the whole life of one connection, usually
	// an admin (or discovery) queue.
	fuzzAdmin = 0
	// fuzzIO: before the stream, a well-behaved host connects an admin
	// queue to fuzzNQN on another connection and enables the controller
	// (CNTLID 1), so the stream can Connect an I/O queue and reach the
	// NVM command set.
	fuzzIO = 1
)

const fuzzNQN = testNQN

// fuzzConfig is a small target: a 4 MiB memory namespace (1), a null
// namespace (2) and, when dir is set, a file namespace (3) whose I/O runs
// on worker goroutines; the one listener serves I/O and discovery. No
// timer waits longer than a few milliseconds for a host that went quiet.
func fuzzConfig(dir string) Config {
	c := baseConfig()
	c.Listeners = []ListenerConfig{{Address: "127.0.0.1:0", PortID: 1, Serve: ServeAll}}
	ns := []NamespaceConfig{
		{NSID: 1, Backend: BackendMem, Size: "4MiB", BlockSize: 512},
		{NSID: 2, Backend: BackendNull, Size: "1GiB", BlockSize: 4096},
	}
	if dir != "" {
		ns = append(ns, NamespaceConfig{NSID: 3, Backend: BackendFile, Path: filepath.Join(dir, "ns3"), Size: "1MiB", BlockSize: 512})
	}
	c.Subsystems = []SubsystemConfig{{NQN: fuzzNQN, AllowAnyHost: true, Namespaces: ns}}
	c.QueueSize = 64
	c.InCapsuleDataSize = "8KiB"
	c.MaxH2CData = "8KiB"
	c.C2HDataSize = "16KiB"
	c.MDTS = "128KiB"
	c.ICTimeout = 0
	c.IdleTimeout = 0
	c.MaxKATO = 50 * time.Millisecond
	return c
}

// splitConn is a net.Conn made of two pipes, one per direction, so the
// host side can half-close: the target reads EOF once the input is sent
// while its responses still drain.
type splitConn struct {
	r net.Conn // target reads host->target
	w net.Conn // target writes target->host
}

func (c *splitConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *splitConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c *splitConn) Close() error {
	c.r.Close()
	return c.w.Close()
}
func (c *splitConn) LocalAddr() net.Addr  { return c.r.LocalAddr() }
func (c *splitConn) RemoteAddr() net.Addr { return c.r.RemoteAddr() }
func (c *splitConn) SetDeadline(t time.Time) error {
	c.r.SetDeadline(t)
	return c.w.SetDeadline(t)
}
func (c *splitConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *splitConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }

// fuzzPipe returns the target's end and the host's two ends: in (write
// the input, close it for EOF) and out (read the responses).
func fuzzPipe() (target net.Conn, in, out net.Conn) {
	hr, tr := net.Pipe()
	tw, hw := net.Pipe()
	return &splitConn{r: tr, w: tw}, hr, hw
}

// fuzzAdminConnect connects and enables an admin queue to fuzzNQN on its
// own connection, as the setup of a fuzzIO input.
func fuzzAdminConnect(t testing.TB, tg *Target) net.Conn {
	tc, hc := net.Pipe()
	tg.Serve(tc, 1)
	_ = hc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &client{t: t, nc: hc, conn: tcp.NewConn(hc, false, tcp.Config{})}
	r, err := c.conn.HostInitialize(tcp.ICReq{})
	if err != nil {
		t.Fatal(err)
	}
	c.resp = r
	cqe := c.connect(fuzzNQN, 0, nvme.CNTLIDDynamic, 0)
	mustOK(t, cqe)
	if cqe.DW0 != 1 {
		t.Fatalf("admin CNTLID %d, want 1", cqe.DW0)
	}
	mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil, false, nil))
	_ = hc.SetDeadline(time.Time{})
	return hc
}

// runFuzzSession runs one fuzz input against a fresh target.
func runFuzzSession(t *testing.T, dir string, in []byte) {
	if len(in) == 0 {
		return
	}
	mode, stream := in[0], in[1:]
	tg, err := New(fuzzConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	// A hang is a failure with every goroutine's stack, not a stuck fuzzer.
	watchdog := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic("target session hung:\n" + string(buf))
	})
	defer watchdog.Stop()

	var adminConn net.Conn
	var adminDone chan struct{}
	if mode&1 == fuzzIO {
		adminConn = fuzzAdminConnect(t, tg)
		adminDone = make(chan struct{})
		go func() { // keep reading so the target never blocks on it
			io.Copy(io.Discard, adminConn)
			close(adminDone)
		}()
	}

	tc, hin, hout := fuzzPipe()
	tg.Serve(tc, 1)
	drained := make(chan struct{})
	go func() {
		io.Copy(io.Discard, hout)
		close(drained)
	}()
	_, _ = hin.Write(stream) // fails early if the target hangs up
	hin.Close()              // half-close: the target reads EOF
	<-drained                // the target closed its end
	hout.Close()
	if adminConn != nil {
		adminConn.Close()
		<-adminDone
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	watchdog.Stop()
	checkNoTargetGoroutines(t)
}

// checkNoTargetGoroutines fails if a goroutine running target or
// nvme/tcp code outlives the target (after a short settling time for
// timers that already fired).
func checkNoTargetGoroutines(t testing.TB) {
	var left string
	for i := 0; i < 200; i++ {
		left = targetGoroutines()
		if left == "" {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("goroutines left behind:\n%s", left)
}

func targetGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // this goroutine
		}
		if strings.Contains(g, "nvmftest/nvmftest/target.(") || strings.Contains(g, "nvmftest/nvmftest/nvme/tcp.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// sessionBuilder writes what a host sends on one connection.
type sessionBuilder struct {
	b   []byte
	enc tcp.EncodeOptions
	cid uint16
	n   uint16 // commands sent after ICReq: the slot (R2T TTAG) of the next one
}

func newSession(mode byte, dgst uint8) *sessionBuilder {
	s := &sessionBuilder{b: []byte{mode}}
	s.b = tcp.AppendPDU(s.b, &tcp.ICReq{DGST: dgst, MAXR2T: 0}, nil, tcp.EncodeOptions{})
	s.enc.Header = dgst&tcp.DgstHeader != 0
	s.enc.Data = dgst&tcp.DgstData != 0
	return s
}

// cmd sends sqe with in-capsule data (if any) and returns its slot.
func (s *sessionBuilder) cmd(sqe nvme.SQE, data []byte) uint16 {
	s.cid++
	sqe.CID = s.cid
	sqe.Flags |= nvme.PSDTSGL
	if data != nil {
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLDataBlockOffset}
	}
	s.b = tcp.AppendPDU(s.b, &tcp.CapsuleCmd{SQE: sqe}, data, s.enc)
	slot := s.n
	s.n++
	return slot
}

// read sends a command that moves n bytes to the host.
func (s *sessionBuilder) read(sqe nvme.SQE, n int) {
	sqe.DPTR = nvme.SGLDescriptor{Length: uint32(n), Type: nvme.SGLTransportDataBlock}
	s.cmd(sqe, nil)
}

// r2t sends a command whose data follows in H2CData PDUs of at most max
// bytes, as if answering the target's R2T.
func (s *sessionBuilder) r2t(sqe nvme.SQE, data []byte, max int) {
	sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLTransportDataBlock}
	cid := s.cid + 1
	tag := s.cmd(sqe, nil)
	s.h2c(cid, tag, data, max)
}

func (s *sessionBuilder) h2c(cid, tag uint16, data []byte, max int) {
	for o := 0; o < len(data); o += max {
		n := min(max, len(data)-o)
		h := &tcp.H2CData{CCCID: cid, TTAG: tag, DATAO: uint32(o), DATAL: uint32(n), Last: o+n == len(data)}
		s.b = tcp.AppendPDU(s.b, h, data[o:o+n], s.enc)
	}
}

func (s *sessionBuilder) connect(subnqn string, qid, cntlid uint16, kato uint32, cattr uint8) {
	s.cmd(connectSQE(qid, 31, kato, cattr), connectData(subnqn, testHost, cntlid))
}

func (s *sessionBuilder) enable() {
	s.cmd(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil)
}

func (s *sessionBuilder) bytes() []byte { return s.b }

func fuzzPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// fuzzSeeds returns valid sessions that reach deep into the target.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	digests := []uint8{0, tcp.DgstHeader, tcp.DgstData, tcp.DgstHeader | tcp.DgstData}

	// Admin queue: everything an admin queue does.
	for _, dg := range digests {
		s := newSession(fuzzAdmin, dg)
		s.connect(fuzzNQN, 0, nvme.CNTLIDDynamic, 0, 0)
		s.cmd(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil)
		s.cmd(nvme.PropertyGetCmd(0, nvme.PropVS, false), nil)
		s.enable()
		s.cmd(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil)
		s.read(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nvme.IdentifyDataSize)
		s.read(nvme.IdentifyCmd(nvme.CNSNamespace, 1, 0), nvme.IdentifyDataSize)
		s.read(nvme.IdentifyCmd(nvme.CNSActiveNSList, 0, 0), nvme.IdentifyDataSize)
		s.read(nvme.IdentifyCmd(nvme.CNSNSDescriptorList, 1, 0), nvme.IdentifyDataSize)
		s.read(nvme.IdentifyCmd(0x08, 2, 0), nvme.IdentifyDataSize)
		s.read(nvme.GetLogPageCmd(nvme.LogError, 0xFFFFFFFF, 0, 0, 4096), 4096)
		s.read(nvme.GetLogPageCmd(nvme.LogSMART, 0xFFFFFFFF, 0, 0, nvme.SMARTLogSize), nvme.SMARTLogSize)
		s.read(nvme.GetLogPageCmd(nvme.LogFirmwareSlot, 0, 0, 0, nvme.FirmwareSlotLogSize), nvme.FirmwareSlotLogSize)
		s.read(nvme.GetLogPageCmd(nvme.LogChangedNSList, 0, 0, 0, 4096), 4096)
		s.read(nvme.GetLogPageCmd(nvme.LogCommandsEffects, 0, 0, 0, nvme.CommandsEffectsLogSize), nvme.CommandsEffectsLogSize)
		s.read(nvme.GetLogPageCmd(nvme.LogANA, 0, 0, 0, 4096), 4096)
		s.read(nvme.GetLogPageCmd(nvme.LogANA, 0, 1, 8, 64), 64)
		s.cmd(nvme.SetFeaturesCmd(nvme.FeatNumQueues, 0, 3|3<<16, false), nil)
		s.cmd(nvme.SetAsyncEventConfigCmd(nvme.AECNamespaceAttr|nvme.AECANAChange), nil)
		s.cmd(nvme.SetKeepAliveTimerCmd(20), nil)
		s.cmd(nvme.SetFeaturesCmd(nvme.FeatVolatileWC, 0, 1, false), nil)
		s.cmd(nvme.GetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, 0), nil)
		s.cmd(nvme.GetFeaturesCmd(nvme.FeatTemperatureThresh, 0, 3), nil)
		s.read(nvme.GetFeaturesCmd(nvme.FeatHostIdentifier, 0, 0), 16)
		s.cmd(nvme.KeepAliveCmd(), nil)
		s.cmd(nvme.AsyncEventRequestCmd(), nil)
		s.cmd(nvme.AsyncEventRequestCmd(), nil)
		s.cmd(nvme.AbortCmd(0, 1), nil)
		if dg == 0 {
			s.cmd(nvme.DisconnectCmd(0), nil)
		}
		seeds = append(seeds, s.bytes())
	}

	// Discovery controller.
	for _, dg := range []uint8{0, tcp.DgstHeader | tcp.DgstData} {
		s := newSession(fuzzAdmin, dg)
		s.connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0, 0)
		s.enable()
		s.read(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nvme.IdentifyDataSize)
		s.cmd(nvme.SetAsyncEventConfigCmd(nvme.AECDiscovery), nil)
		s.cmd(nvme.AsyncEventRequestCmd(), nil)
		s.read(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, 1024), 1024)
		s.read(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, 4096), 4096)
		s.cmd(nvme.KeepAliveCmd(), nil)
		seeds = append(seeds, s.bytes())
	}

	// An I/O queue on a connection of its own, CNTLID that does not exist.
	{
		s := newSession(fuzzAdmin, 0)
		s.connect(fuzzNQN, 1, 7, 0, 0)
		s.read(nvme.ReadCmd(1, 0, 8), 4096)
		seeds = append(seeds, s.bytes())
	}

	// I/O queues of the controller set up before the stream.
	for i, dg := range digests {
		for _, cattr := range []uint8{0, nvme.CATTRDisableSQFlow} {
			s := newSession(fuzzIO, dg)
			s.connect(fuzzNQN, uint16(1+i), 1, 0, cattr)
			w := fuzzPattern(4096, byte(i))
			s.cmd(nvme.WriteCmd(1, 8, 8), w)
			s.read(nvme.ReadCmd(1, 8, 8), 4096)
			s.cmd(nvme.CompareCmd(1, 8, 8), w)
			big := fuzzPattern(20<<10, byte(i+1))
			s.r2t(nvme.WriteCmd(1, 64, 40), big, 8192)
			s.read(nvme.ReadCmd(1, 64, 40), len(big))
			// Fused compare and write, in capsule and through R2T.
			cmp := nvme.CompareCmd(1, 8, 8)
			cmp.Flags |= nvme.FuseFirst
			wr := nvme.WriteCmd(1, 8, 8)
			wr.Flags |= nvme.FuseSecond
			s.cmd(cmp, w)
			s.cmd(wr, fuzzPattern(4096, 9))
			cmp2 := nvme.CompareCmd(1, 64, 40)
			cmp2.Flags |= nvme.FuseFirst
			wr2 := nvme.WriteCmd(1, 64, 40)
			wr2.Flags |= nvme.FuseSecond
			s.r2t(cmp2, big, 8192)
			s.r2t(wr2, fuzzPattern(20<<10, 3), 4096)
			s.cmd(nvme.WriteZeroesCmd(1, 100, 16, false), nil)
			s.cmd(nvme.WriteZeroesCmd(1, 200, 16, true), nil)
			var dsm []byte
			dsm = (&nvme.DSMRange{NLB: 8, SLBA: 300}).Append(dsm)
			dsm = (&nvme.DSMRange{NLB: 0, SLBA: 0}).Append(dsm)
			s.cmd(nvme.DSMCmd(1, 2, true), dsm)
			s.cmd(nvme.FlushCmd(1), nil)
			s.cmd(nvme.FlushCmd(0xFFFFFFFF), nil)
			s.read(nvme.ReadCmd(2, 0, 32), 128<<10)
			s.r2t(nvme.WriteCmd(2, 0, 4), fuzzPattern(16<<10, 5), 8192)
			s.cmd(nvme.WriteCmd(3, 0, 8), w)
			s.read(nvme.ReadCmd(3, 0, 8), 4096)
			s.r2t(nvme.WriteCmd(3, 16, 32), fuzzPattern(16<<10, 6), 8192)
			s.cmd(nvme.FlushCmd(3), nil)
			if cattr == 0 {
				s.cmd(nvme.DisconnectCmd(0), nil)
			}
			seeds = append(seeds, s.bytes())
		}
	}

	// Many writes waiting for data at once, then their data out of order.
	{
		s := newSession(fuzzIO, 0)
		s.connect(fuzzNQN, 1, 1, 0, 0)
		var tags []uint16
		for i := range 4 {
			sqe := nvme.WriteCmd(1, uint64(i*16), 16)
			sqe.DPTR = nvme.SGLDescriptor{Length: 8192, Type: nvme.SGLTransportDataBlock}
			tags = append(tags, s.cmd(sqe, nil))
		}
		for i := 3; i >= 0; i-- {
			s.h2c(uint16(i+2), tags[i], fuzzPattern(8192, byte(i)), 8192)
		}
		seeds = append(seeds, s.bytes())
	}
	return seeds
}

// captureSeeds prefixes an ICReq to the CapsuleCmd and H2CData PDUs of
// the Linux captures that nvme/tcp fuzzes with.
func captureSeeds(t testing.TB) [][]byte {
	dir := filepath.Join("..", "nvme", "tcp", "testdata", "fuzz", "FuzzParse")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var seeds [][]byte
	for _, e := range ents {
		if !strings.Contains(e.Name(), "CapsuleCmd") && !strings.Contains(e.Name(), "H2CData") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			continue
		}
		pdu, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			continue
		}
		var dg uint8
		if strings.Contains(e.Name(), "digests") {
			dg = tcp.DgstHeader | tcp.DgstData
		}
		for _, mode := range []byte{fuzzAdmin, fuzzIO} {
			s := newSession(mode, dg)
			if mode == fuzzIO {
				s.connect(fuzzNQN, 1, 1, 0, 0)
			}
			s.b = append(s.b, pdu...)
			seeds = append(seeds, s.bytes())
		}
	}
	return seeds
}

// fuzzDir is where the file namespace lives: memory-backed if possible,
// so Flush (fsync) does not dominate the fuzzer's speed.
func fuzzDir(f *testing.F) string {
	if d, err := os.MkdirTemp("/dev/shm", "nvmftest-fuzz-"); err == nil {
		f.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return f.TempDir()
}

func FuzzTargetSession(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	for _, s := range captureSeeds(f) {
		f.Add(s)
	}
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		runFuzzSession(t, dir, in)
	})
}

// TestFuzzSeedsAreValid checks that the hand-built seeds are what they
// claim: replayed with a host reading the answers, every command succeeds
// and no connection error happens, so the fuzzer starts from deep inside
// the state machine.
func TestFuzzSeedsAreValid(t *testing.T) {
	for i, seed := range fuzzSeeds() {
		tg, err := New(fuzzConfig(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		_ = tg.Close() // check New and Close alone leave nothing behind
		tg, err = New(fuzzConfig(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		var adminConn net.Conn
		if seed[0]&1 == fuzzIO {
			adminConn = fuzzAdminConnect(t, tg)
		}
		tc, hin, hout := fuzzPipe()
		tg.Serve(tc, 1)
		_ = hout.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			_, _ = hin.Write(seed[1:])
			hin.Close()
		}()
		conn := tcp.NewConn(hout, false, tcp.Config{})
		p, err := conn.Next()
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		resp := p.(*tcp.ICResp)
		conn.Negotiated(tcp.Digests{Header: resp.DGST&tcp.DgstHeader != 0, Data: resp.DGST&tcp.DgstData != 0}, 0, resp.CPDA)
		n := 0
		for {
			p, err := conn.Next()
			if err != nil {
				break
			}
			switch v := p.(type) {
			case *tcp.CapsuleResp:
				n++
				if !v.CQE.Status.Success() && i != fuzzBadCntlidSeed {
					t.Errorf("seed %d: CID %d status %v", i, v.CQE.CID, v.CQE.Status)
				}
			case *tcp.C2HData:
				if err := conn.ReadData(make([]byte, v.DATAL)); err != nil {
					t.Errorf("seed %d: %v", i, err)
				}
				if v.Success {
					n++
				}
			case *tcp.TermReq:
				t.Errorf("seed %d: C2HTermReq FES %d FEI %d", i, v.FES, v.FEI)
			}
		}
		if n < 2 {
			t.Errorf("seed %d: %d responses", i, n)
		}
		hout.Close()
		if adminConn != nil {
			adminConn.Close()
		}
		tg.Close()
	}
}

// fuzzBadCntlidSeed is the index of the seed whose Connect must fail.
const fuzzBadCntlidSeed = 6
