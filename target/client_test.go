package target

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

const (
	testNQN  = "nqn.2014-08.io.nvmftest:test"
	testHost = "nqn.2014-08.io.nvmftest:host1"
)

var testHostID = [16]byte{1, 2, 3, 4}

func testConfig() Config {
	c := baseConfig()
	c.Listeners = []ListenerConfig{
		{Address: "127.0.0.1:0", PortID: 1, Serve: ServeAll},
		{Address: "127.0.0.1:0", PortID: 2, Serve: ServeDiscovery},
	}
	c.Subsystems = []SubsystemConfig{{
		NQN: testNQN, AllowAnyHost: true,
		Namespaces: []NamespaceConfig{
			{NSID: 1, Backend: BackendMem, Size: "1MiB", BlockSize: 512},
			{NSID: 2, Backend: BackendNull, Size: "1GiB", BlockSize: 4096},
		},
	}, {
		NQN: "nqn.2014-08.io.nvmftest:private", Hosts: []string{"nqn.2014-08.io.nvmftest:other"},
		Namespaces: []NamespaceConfig{{Backend: BackendMem, Size: "1MiB"}},
	}}
	c.InCapsuleDataSize = "8KiB"
	c.MaxH2CData = "8KiB"
	c.C2HDataSize = "16KiB"
	c.MDTS = "128KiB"
	c.ICTimeout = 5 * time.Second
	return c
}

func startTarget(t testing.TB, cfg Config) *Target {
	t.Helper()
	tg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// client is a minimal host over tcp.Conn.
type client struct {
	t      testing.TB
	nc     net.Conn
	conn   *tcp.Conn
	resp   *tcp.ICResp
	cid    uint16
	cntlid uint16
}

func dialRaw(t testing.TB, addr net.Addr) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, nc: nc, conn: tcp.NewConn(nc, false, tcp.Config{})}
}

func dial(t testing.TB, addr net.Addr, dgst uint8) *client {
	t.Helper()
	c := dialRaw(t, addr)
	r, err := c.conn.HostInitialize(tcp.ICReq{DGST: dgst})
	if err != nil {
		t.Fatal(err)
	}
	c.resp = r
	return c
}

// exec sends sqe with out as host-to-controller data (in-capsule when
// inCapsule, else answering R2Ts) and reads C2H data into in.
func (c *client) exec(sqe nvme.SQE, out []byte, inCapsule bool, in []byte) nvme.CQE {
	c.t.Helper()
	cqe, err := c.try(sqe, out, inCapsule, in)
	if err != nil {
		c.t.Fatalf("%v: %v", sqe.String(), err)
	}
	return cqe
}

func (c *client) try(sqe nvme.SQE, out []byte, inCapsule bool, in []byte) (nvme.CQE, error) {
	c.cid++
	sqe.CID = c.cid
	sqe.Flags |= nvme.PSDTSGL
	var data []byte
	switch {
	case out != nil && inCapsule:
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(out)), Type: nvme.SGLDataBlockOffset}
		data = out
	case out != nil:
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(out)), Type: nvme.SGLTransportDataBlock}
	case in != nil:
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(in)), Type: nvme.SGLTransportDataBlock}
	}
	if err := c.conn.Send(&tcp.CapsuleCmd{SQE: sqe}, data); err != nil {
		return nvme.CQE{}, err
	}
	return c.wait(sqe.CID, out, in)
}

func (c *client) wait(cid uint16, out, in []byte) (nvme.CQE, error) {
	for {
		p, err := c.conn.Next()
		if err != nil {
			return nvme.CQE{}, err
		}
		switch v := p.(type) {
		case *tcp.CapsuleResp:
			if v.CQE.CID != cid {
				return v.CQE, errors.New("response for another CID")
			}
			return v.CQE, nil
		case *tcp.R2T:
			max := c.resp.MAXH2CDATA
			for o := v.R2TO; o < v.R2TO+v.R2TL; o += max {
				n := min(max, v.R2TO+v.R2TL-o)
				h := &tcp.H2CData{CCCID: v.CCCID, TTAG: v.TTAG, DATAO: o, DATAL: n, Last: o+n == v.R2TO+v.R2TL}
				if err := c.conn.Send(h, out[o:o+n]); err != nil {
					return nvme.CQE{}, err
				}
			}
		case *tcp.C2HData:
			if err := c.conn.ReadData(in[v.DATAO : v.DATAO+v.DATAL]); err != nil {
				return nvme.CQE{}, err
			}
			if v.Success {
				return nvme.CQE{CID: v.CCCID, SQHD: 0xFFFF}, nil
			}
		case *tcp.TermReq:
			return nvme.CQE{}, &tcp.PeerTerminated{FES: v.FES, FEI: v.FEI}
		default:
			return nvme.CQE{}, errors.New("unexpected PDU " + p.Type().String())
		}
	}
}

// identifyController reads and decodes Identify Controller.
func (c *client) identifyController() *nvme.IdentifyController {
	c.t.Helper()
	b := make([]byte, nvme.IdentifyDataSize)
	mustOK(c.t, c.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, b))
	var id nvme.IdentifyController
	if err := id.Decode(b); err != nil {
		c.t.Fatal(err)
	}
	return &id
}

func connectSQE(qid, sqsize uint16, kato uint32, cattr uint8) nvme.SQE {
	a := nvme.Connect{QID: qid, SQSIZE: sqsize, KATO: kato, CATTR: cattr}
	return a.SQE(0)
}

func connectData(subnqn, hostnqn string, cntlid uint16) []byte {
	d := nvme.ConnectData{HostID: testHostID, CNTLID: cntlid, SubNQN: subnqn, HostNQN: hostnqn}
	return d.Append(nil)
}

func (c *client) connect(subnqn string, qid, cntlid uint16, kato uint32) nvme.CQE {
	c.t.Helper()
	return c.exec(connectSQE(qid, 31, kato, 0), connectData(subnqn, testHost, cntlid), true, nil)
}

func mustOK(t testing.TB, cqe nvme.CQE) {
	t.Helper()
	if !cqe.Status.Success() {
		t.Fatalf("status %v", cqe.Status)
	}
}

func wantStatus(t testing.TB, cqe nvme.CQE, want nvme.Status) {
	t.Helper()
	if cqe.Status.Code() != want {
		t.Fatalf("status %v, want %v", cqe.Status, want)
	}
}

const ccEnable = nvme.CCEnable | 6<<16 | 4<<20

// admin connects an admin queue and enables the controller.
// admin connects and enables an admin queue whose Connect sets
// CATTR.INDIVIOQDELS: the tests that end one I/O connection and carry on
// with the association need it (NVMe Base 2.2 3.1.2: without it the loss
// of an I/O connection ends the association); adminCATTR chooses.
func admin(t testing.TB, addr net.Addr, subnqn string, kato uint32) *client {
	t.Helper()
	return adminCATTR(t, addr, subnqn, kato, cattrIndivIOQDel)
}

// adminCATTR is admin with the admin Connect's CATTR.
func adminCATTR(t testing.TB, addr net.Addr, subnqn string, kato uint32, cattr uint8) *client {
	t.Helper()
	c := dial(t, addr, 0)
	r := c.exec(connectSQE(0, 31, kato, cattr), connectData(subnqn, testHost, nvme.CNTLIDDynamic), true, nil)
	mustOK(t, r)
	c.cntlid = uint16(r.DW0)
	mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil, false, nil))
	return c
}

func ioQueue(t testing.TB, addr net.Addr, cntlid, qid uint16, dgst uint8) *client {
	t.Helper()
	c := dial(t, addr, dgst)
	mustOK(t, c.connect(testNQN, qid, cntlid, 0))
	c.cntlid = cntlid
	return c
}

// expectTerm reads until a C2HTermReq and then the close.
func (c *client) expectTerm(fes uint16, fei uint32) {
	c.t.Helper()
	for {
		p, err := c.conn.Next()
		if err != nil {
			c.t.Fatalf("want C2HTermReq FES %d, got %v", fes, err)
		}
		if v, ok := p.(*tcp.TermReq); ok {
			if v.FES != fes || v.FEI != fei {
				c.t.Fatalf("TermReq FES %d FEI %d, want FES %d FEI %d", v.FES, v.FEI, fes, fei)
			}
			break
		}
	}
	if err := c.silentAfterTerm(); err != nil {
		c.t.Fatal(err)
	}
	c.nc.Close()
}

// termQuiet is how long a test watches a connection after the target's
// C2HTermReq: it must stay open and send nothing more.
const termQuiet = 50 * time.Millisecond

// silentAfterTerm checks the target's side of NVMe/TCP 1.0 3.5.1 after it
// sent a C2HTermReq: it processes nothing more (sends nothing) and leaves
// closing the connection to the host, which the caller then does (the
// host "shall terminate the connection").
func (c *client) silentAfterTerm() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(termQuiet))
	defer func() { _ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second)) }()
	p, err := c.conn.Next()
	var ne net.Error
	switch {
	case err == nil:
		return fmt.Errorf("%v after the C2HTermReq: the target went on processing", p.Type())
	case !errors.As(err, &ne) || !ne.Timeout():
		return fmt.Errorf("connection closed right after the C2HTermReq (%v): the target waits for the host to close it", err)
	}
	return nil
}

// expectClosed waits for the target to close the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	for {
		if _, err := c.conn.Next(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("connection not closed")
			}
			return
		}
	}
}
