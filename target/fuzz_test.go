package target

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	// A small R2T budget, so that small inputs reach the commands that
	// wait for it.
	c.R2TBuffer = "32KiB"
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
//
// To answer R2Ts without reading them, it predicts each command's R2T
// transfer tag, which is the index of the target's command slot: it keeps
// the target's LIFO stack of free slots, knowing that a command on the
// admin queue, on the memory and null namespaces, and a Flush of every
// namespace, completes before the target reads the next PDU; a command
// waiting for R2T data holds its slot until its data is in; a fused first
// command holds its slot until its second runs; an AER holds its slot.
// Commands on the file namespace (3) complete on workers, whenever: after
// one, tags are unknown and r2t refuses to build.
type sessionBuilder struct {
	b   []byte
	enc tcp.EncodeOptions
	cid uint16

	free    []uint16 // the target's free slots, top last
	nslots  uint16   // slots the target has made
	fused   int      // slot of a fused first command waiting, or -1
	unknown bool     // a worker holds a slot for a while: tags unknown
	pending map[uint16]uint16
}

func newSession(mode byte, dgst uint8) *sessionBuilder {
	s := &sessionBuilder{b: []byte{mode}, fused: -1, pending: map[uint16]uint16{}}
	s.b = tcp.AppendPDU(s.b, &tcp.ICReq{DGST: dgst, MAXR2T: 0}, nil, tcp.EncodeOptions{})
	s.enc.Header = dgst&tcp.DgstHeader != 0
	s.enc.Data = dgst&tcp.DgstData != 0
	return s
}

func (s *sessionBuilder) take() uint16 {
	if n := len(s.free); n > 0 {
		t := s.free[n-1]
		s.free = s.free[:n-1]
		return t
	}
	s.nslots++
	return s.nslots - 1
}

func (s *sessionBuilder) release(slot uint16) { s.free = append(s.free, slot) }

// done records that the command in slot completed (with its fused first,
// if it is a second).
func (s *sessionBuilder) done(sqe nvme.SQE, slot uint16) {
	switch {
	case sqe.Opcode == nvme.AdminAsyncEventReq:
		return // held until an event
	case sqe.NSID == 3 && sqe.Opcode != nvme.AdminFabrics:
		s.unknown = true // completes on a worker
		return
	case sqe.Fuse() == nvme.FuseFirst:
		s.fused = int(slot)
		return
	case sqe.Fuse() == nvme.FuseSecond && s.fused >= 0:
		s.release(uint16(s.fused))
		s.fused = -1
	}
	s.release(slot)
}

// send writes a capsule and returns the slot it takes.
func (s *sessionBuilder) send(sqe nvme.SQE, data []byte) (nvme.SQE, uint16) {
	s.cid++
	sqe.CID = s.cid
	sqe.Flags |= nvme.PSDTSGL
	if data != nil {
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLDataBlockOffset}
	}
	s.b = tcp.AppendPDU(s.b, &tcp.CapsuleCmd{SQE: sqe}, data, s.enc)
	return sqe, s.take()
}

// cmd sends sqe with in-capsule data (if any); it completes at once.
func (s *sessionBuilder) cmd(sqe nvme.SQE, data []byte) {
	sqe, slot := s.send(sqe, data)
	s.done(sqe, slot)
}

// read sends a command that moves n bytes to the host.
func (s *sessionBuilder) read(sqe nvme.SQE, n int) {
	sqe.DPTR = nvme.SGLDescriptor{Length: uint32(n), Type: nvme.SGLTransportDataBlock}
	s.cmd(sqe, nil)
}

// announce sends a command whose n bytes of data the target asks for with
// an R2T, and returns its CID and transfer tag for h2c.
func (s *sessionBuilder) announce(sqe nvme.SQE, n int) (cid, tag uint16) {
	if s.unknown {
		panic("sessionBuilder: R2T transfer tag unknown after a command on a worker")
	}
	sqe.DPTR = nvme.SGLDescriptor{Length: uint32(n), Type: nvme.SGLTransportDataBlock}
	sqe, slot := s.send(sqe, nil)
	s.pending[sqe.CID] = slot
	return sqe.CID, slot
}

// r2t sends a command whose data follows in H2CData PDUs of at most max
// bytes, as if answering the target's R2T.
func (s *sessionBuilder) r2t(sqe nvme.SQE, data []byte, max int) {
	cid, tag := s.announce(sqe, len(data))
	sqe.CID = cid
	s.h2c(cid, tag, data, max)
	delete(s.pending, cid)
	s.done(sqe, tag)
}

// h2c sends data for an announced command.
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
			// The file namespace last, its R2T first: its commands
			// complete on workers, after which tags are unknown.
			s.r2t(nvme.WriteCmd(3, 16, 32), fuzzPattern(16<<10, 6), 8192)
			s.cmd(nvme.WriteCmd(3, 0, 8), w)
			s.read(nvme.ReadCmd(3, 0, 8), 4096)
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
		var cids, tags []uint16
		for i := range 4 {
			cid, tag := s.announce(nvme.WriteCmd(1, uint64(i*16), 16), 8192)
			cids, tags = append(cids, cid), append(tags, tag)
		}
		for i := 3; i >= 0; i-- {
			s.h2c(cids[i], tags[i], fuzzPattern(8192, byte(i)), 8192)
		}
		seeds = append(seeds, s.bytes())
	}

	// More announced write data than the R2T budget (r2t_buffer 32 KiB,
	// 5 x 8 KiB): the last waits without an R2T until the first
	// completes, and its data follows then.
	{
		s := newSession(fuzzIO, 0)
		s.connect(fuzzNQN, 1, 1, 0, 0)
		var cids, tags []uint16
		for i := range 5 {
			cid, tag := s.announce(nvme.WriteCmd(1, uint64(i*16), 16), 8192)
			cids, tags = append(cids, cid), append(tags, tag)
		}
		for i := range 5 {
			s.h2c(cids[i], tags[i], fuzzPattern(8192, byte(i)), 8192)
			s.done(nvme.WriteCmd(1, 0, 1), tags[i])
		}
		seeds = append(seeds, s.bytes())
	}
	return seeds
}

// fuzzStateSeed is a session that breaks the Connect and fused-command
// rules: what the target must answer is in want (statuses that must all
// appear, in order) and term (a C2HTermReq with this FES, or 0).
type fuzzStateSeed struct {
	name string
	in   []byte
	want []nvme.Status
	term uint16
}

// fuzzStateSeeds reach the Connect-state and fused-command paths with
// what a host must not send: fused Connects, fused admin and Fabrics
// commands, commands before Connect and after Disconnect, commands on the
// wrong queue, a queue overrun.
func fuzzStateSeeds() []fuzzStateSeed {
	var seeds []fuzzStateSeed
	fuse := func(sqe nvme.SQE, f uint8) nvme.SQE {
		sqe.Flags |= f
		return sqe
	}
	cd := connectData(fuzzNQN, testHost, nvme.CNTLIDDynamic)
	{
		s := newSession(fuzzAdmin, 0)
		s.cmd(fuse(connectSQE(0, 31, 0, 0), nvme.FuseFirst), cd)
		s.cmd(fuse(connectSQE(0, 31, 0, 0), nvme.FuseSecond), cd)
		s.connect(fuzzNQN, 0, nvme.CNTLIDDynamic, 0, 0)
		seeds = append(seeds, fuzzStateSeed{"fused Connect pair", s.bytes(),
			[]nvme.Status{nvme.StatusConnectInvalidParameters, nvme.StatusAbortFusedFail, nvme.StatusSuccess}, 0})
	}
	for _, nqn := range []string{fuzzNQN, nvme.DiscoveryNQN} {
		s := newSession(fuzzAdmin, 0)
		// Before Connect: nothing but Connect.
		s.cmd(nvme.KeepAliveCmd(), nil)
		s.read(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nvme.IdentifyDataSize)
		s.cmd(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil)
		s.cmd(nvme.DisconnectCmd(0), nil)
		s.read(nvme.ReadCmd(1, 0, 8), 4096)
		s.cmd(fuse(nvme.KeepAliveCmd(), nvme.FuseFirst), nil)
		s.connect(nqn, 0, nvme.CNTLIDDynamic, 0, 0)
		s.connect(nqn, 0, nvme.CNTLIDDynamic, 0, 0) // a second Connect on the queue
		s.cmd(nvme.KeepAliveCmd(), nil)             // not enabled yet
		s.enable()
		s.cmd(fuse(nvme.KeepAliveCmd(), nvme.FuseFirst), nil)
		s.cmd(fuse(nvme.KeepAliveCmd(), nvme.FuseSecond), nil)
		s.read(fuse(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nvme.FuseFirst), nvme.IdentifyDataSize)
		s.read(fuse(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nvme.FuseSecond), nvme.IdentifyDataSize)
		s.cmd(fuse(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nvme.FuseFirst), nil)
		s.cmd(fuse(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nvme.FuseSecond), nil)
		s.cmd(fuse(nvme.KeepAliveCmd(), nvme.FuseSecond), nil) // a second without a first
		s.cmd(fuse(nvme.AsyncEventRequestCmd(), nvme.FuseFirst), nil)
		s.cmd(nvme.KeepAliveCmd(), nil)                  // the failed first is forgotten
		s.cmd(nvme.WriteCmd(1, 0, 1), make([]byte, 512)) // an NVM command on the admin queue
		s.cmd(fuse(nvme.KeepAliveCmd(), nvme.FuseMask), nil)
		s.cmd(nvme.DisconnectCmd(0), nil)
		s.cmd(nvme.KeepAliveCmd(), nil) // after Disconnect
		seq, inv, fail := nvme.StatusCommandSequenceError, nvme.StatusInvalidField, nvme.StatusAbortFusedFail
		// The admin queue's Disconnect: a Discovery controller supports
		// none (NVMe Base 2.2 3.1.3.3: Invalid Queue Type, 6.4) and the
		// Keep Alive after it runs.
		tail := []nvme.Status{nvme.StatusSuccess}
		if nqn == nvme.DiscoveryNQN {
			tail = []nvme.Status{nvme.StatusInvalidQueueType, nvme.StatusSuccess}
		}
		seeds = append(seeds, fuzzStateSeed{"before and after Connect, fused admin on " + nqn, s.bytes(),
			append([]nvme.Status{seq, seq, seq, seq, seq, seq, nvme.StatusSuccess, seq, seq, nvme.StatusSuccess,
				inv, fail, inv, fail, inv, fail, nvme.StatusAbortFusedMissing, inv, nvme.StatusSuccess,
				nvme.StatusInvalidOpcode, inv}, tail...), 0})
	}
	{
		s := newSession(fuzzIO, 0)
		s.connect(fuzzNQN, 1, 1, 0, 0)
		s.read(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nvme.IdentifyDataSize) // admin on an I/O queue
		s.cmd(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil)
		s.cmd(nvme.AsyncEventRequestCmd(), nil)
		s.connect(fuzzNQN, 1, 1, 0, 0)
		s.cmd(fuse(nvme.CompareCmd(1, 0, 1), nvme.FuseFirst), make([]byte, 512))
		s.cmd(fuse(nvme.DisconnectCmd(0), nvme.FuseSecond), nil)
		s.cmd(fuse(nvme.CompareCmd(1, 0, 1), nvme.FuseFirst), make([]byte, 512))
		s.cmd(fuse(nvme.FlushCmd(1), nvme.FuseSecond), nil)
		s.cmd(fuse(nvme.WriteCmd(1, 0, 1), nvme.FuseSecond), make([]byte, 512))
		s.cmd(fuse(nvme.CompareCmd(1, 0, 1), nvme.FuseFirst), make([]byte, 512))
		s.cmd(nvme.DisconnectCmd(0), nil) // ends the first of a pair, then the queue
		s.cmd(nvme.ReadCmd(1, 0, 1), nil)
		inv, fail := nvme.StatusInvalidField, nvme.StatusAbortFusedFail
		seeds = append(seeds, fuzzStateSeed{"wrong queue, fused Disconnect", s.bytes(),
			[]nvme.Status{nvme.StatusSuccess, nvme.StatusInvalidOpcode, inv, nvme.StatusInvalidOpcode,
				nvme.StatusCommandSequenceError, fail, inv, fail, inv, nvme.StatusAbortFusedMissing,
				nvme.StatusAbortFusedMissing, nvme.StatusSuccess}, 0})
	}
	for _, cattr := range []uint8{0, nvme.CATTRDisableSQFlow} {
		// A 4-entry queue and 4 writes waiting for data: an overrun.
		s := newSession(fuzzIO, 0)
		s.cmd(connectSQE(1, 3, 0, cattr), connectData(fuzzNQN, testHost, 1))
		for range 4 {
			s.announce(nvme.WriteCmd(1, 0, 1), 512)
		}
		seeds = append(seeds, fuzzStateSeed{fmt.Sprintf("overrun, CATTR %d", cattr), s.bytes(),
			[]nvme.Status{nvme.StatusSuccess}, tcp.FESPDUSequenceError})
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
	for _, s := range fuzzStateSeeds() {
		f.Add(s.in)
	}
	for _, s := range captureSeeds(f) {
		f.Add(s)
	}
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		runFuzzSession(t, dir, in)
	})
}

// replayResult is what the target answered to a seed.
type replayResult struct {
	statuses []nvme.Status // response capsules, in order
	n        int           // completions (capsules and C2HData SUCCESS)
	term     *tcp.TermReq
	err      error
}

// replaySeed runs a seed against a fresh fuzz target with a host that
// reads every answer.
func replaySeed(t *testing.T, seed []byte) replayResult {
	t.Helper()
	tg, err := New(fuzzConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	var adminConn net.Conn
	if seed[0]&1 == fuzzIO {
		adminConn = fuzzAdminConnect(t, tg)
		defer adminConn.Close()
	}
	tc, hin, hout := fuzzPipe()
	defer hout.Close()
	tg.Serve(tc, 1)
	_ = hout.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = hin.Write(seed[1:])
		hin.Close()
	}()
	conn := tcp.NewConn(hout, false, tcp.Config{})
	p, err := conn.Next()
	if err != nil {
		return replayResult{err: err}
	}
	resp := p.(*tcp.ICResp)
	conn.Negotiated(tcp.Digests{Header: resp.DGST&tcp.DgstHeader != 0, Data: resp.DGST&tcp.DgstData != 0}, 0, resp.CPDA)
	var r replayResult
	for {
		p, err := conn.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.err = err
			}
			return r
		}
		switch v := p.(type) {
		case *tcp.CapsuleResp:
			r.n++
			r.statuses = append(r.statuses, v.CQE.Status)
		case *tcp.C2HData:
			if err := conn.ReadData(make([]byte, v.DATAL)); err != nil {
				r.err = err
				return r
			}
			if v.Success {
				r.n++
			}
		case *tcp.TermReq:
			tr := *v
			r.term = &tr
		}
	}
}

// TestFuzzSeedsAreValid checks that the hand-built seeds are what they
// claim: replayed with a host reading the answers, every command succeeds
// and no connection error happens, so the fuzzer starts from deep inside
// the state machine.
func TestFuzzSeedsAreValid(t *testing.T) {
	tg, err := New(fuzzConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	_ = tg.Close() // check New and Close alone leave nothing behind
	for i, seed := range fuzzSeeds() {
		r := replaySeed(t, seed)
		if r.err != nil {
			t.Errorf("seed %d: %v", i, r.err)
		}
		for _, st := range r.statuses {
			if !st.Success() && i != fuzzBadCntlidSeed {
				t.Errorf("seed %d: status %v", i, st)
			}
		}
		if r.term != nil {
			t.Errorf("seed %d: C2HTermReq FES %d FEI %d", i, r.term.FES, r.term.FEI)
		}
		if r.n < 2 {
			t.Errorf("seed %d: %d responses", i, r.n)
		}
	}
}

// TestFuzzStateSeeds checks the rule-breaking seeds get the answers the
// spec asks for, so the fuzzer starts on those paths (and a regression
// there shows here first).
func TestFuzzStateSeeds(t *testing.T) {
	for _, seed := range fuzzStateSeeds() {
		r := replaySeed(t, seed.in)
		if r.err != nil {
			t.Errorf("%s: %v", seed.name, r.err)
			continue
		}
		var got []nvme.Status
		for _, st := range r.statuses {
			got = append(got, st.Code())
		}
		if len(got) != len(seed.want) || !slices.Equal(got, seed.want) {
			t.Errorf("%s: statuses\n got  %v\n want %v", seed.name, got, seed.want)
		}
		switch {
		case seed.term == 0 && r.term != nil:
			t.Errorf("%s: C2HTermReq FES %d", seed.name, r.term.FES)
		case seed.term != 0 && (r.term == nil || r.term.FES != seed.term):
			t.Errorf("%s: TermReq %+v, want FES %d", seed.name, r.term, seed.term)
		}
	}
}

// fuzzBadCntlidSeed is the index of the seed whose Connect must fail.
const fuzzBadCntlidSeed = 6
