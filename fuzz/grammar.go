package fuzz

import (
	"crypto/sha256"
	"math/rand/v2"
	"strings"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Identity is who the generated host says it is and what it connects to.
type Identity struct {
	SubNQN  string
	HostNQN string
	HostID  [16]byte
}

// builder assembles one case's steps with valid PDUs.
type builder struct {
	id    Identity
	steps []Step
	enc   map[int]tcp.EncodeOptions
	cid   uint16
}

func newBuilder(id Identity) *builder {
	return &builder{id: id, enc: map[int]tcp.EncodeOptions{}}
}

func (b *builder) add(conn int, p tcp.PDU, data []byte, fix Fix) {
	raw := tcp.AppendPDU(nil, p, data, b.enc[conn])
	b.steps = append(b.steps, Step{Conn: conn, Bytes: raw, Fix: fix | FixDigest})
}

func (b *builder) icreq(conn int, hd, dd bool) {
	var dg uint8
	if hd {
		dg |= tcp.DgstHeader
	}
	if dd {
		dg |= tcp.DgstData
	}
	b.add(conn, &tcp.ICReq{DGST: dg}, nil, 0)
	// What the PDUs after it carry, if the target agrees (they all do).
	b.enc[conn] = tcp.EncodeOptions{Digests: tcp.Digests{Header: hd, Data: dd}}
}

func (b *builder) nextCID() uint16 {
	b.cid++
	return b.cid
}

func (b *builder) cmd(conn int, sqe nvme.SQE, data []byte) {
	sqe.CID = b.nextCID()
	sqe.Flags |= nvme.PSDTSGL
	fix := Fix(0)
	if sqe.Opcode == nvme.AdminFabrics && sqe.FCType() == nvme.FabricsConnect && uint16(sqe.CDW10>>16) != 0 {
		fix = FixCNTLID
	}
	b.add(conn, &tcp.CapsuleCmd{SQE: sqe}, data, fix)
}

func (b *builder) connect(conn int, qid uint16, subnqn string) {
	cd := nvme.ConnectData{HostID: b.id.HostID, CNTLID: nvme.CNTLIDDynamic, SubNQN: subnqn, HostNQN: b.id.HostNQN}
	c := nvme.Connect{QID: qid, SQSIZE: 31, KATO: 30000}
	if qid != 0 {
		c.KATO = 0
	}
	b.cmd(conn, c.SQE(0), cd.Append(nil))
}

// writeR2T is a Write whose data goes by R2T and H2CData: the capsule,
// then the data as one H2CData with the tag the R2T gives (FixTTAG).
func (b *builder) writeR2T(conn int, nsid uint32, blocks uint32) {
	sqe := nvme.WriteCmd(nsid, 0, blocks)
	n := blocks * 512
	nvme.SetDataLength(&sqe, n)
	sqe.CID = b.nextCID()
	b.add(conn, &tcp.CapsuleCmd{SQE: sqe}, nil, 0)
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i)
	}
	b.add(conn, &tcp.H2CData{CCCID: sqe.CID, DATAO: 0, DATAL: n, Last: true}, data, FixTTAG)
}

func (b *builder) writeInCapsule(conn int, nsid uint32) {
	sqe := nvme.WriteCmd(nsid, 1, 1)
	data := make([]byte, 512)
	for i := range data {
		data[i] = byte(255 - i)
	}
	nvme.SetInCapsule(&sqe, uint32(len(data)))
	b.cmd(conn, sqe, data)
}

func propertySet(off uint32, v uint64) nvme.SQE { return nvme.PropertySetCmd(0, off, false, v) }

// ccEnable is CC with EN set, 64-byte SQEs and 16-byte CQEs.
const ccEnable = 1 | 6<<16 | 4<<20

// grammarCase builds a valid exchange from r: an admin queue (ICReq,
// Connect and its data, enabling the controller, Identify, Get Log Page,
// Get Features, Keep Alive, Property Get), often an I/O queue (Connect
// with the controller ID, Writes with in-capsule data and by R2T and
// H2CData, Read, Flush, Disconnect), or a discovery association; digests
// on or off.
func grammarCase(r *rand.Rand, id Identity) *Case {
	b := newBuilder(id)
	hd, dd := r.IntN(3) == 0, r.IntN(3) == 0
	if r.IntN(6) == 0 {
		b.icreq(0, hd, dd)
		b.connect(0, 0, nvme.DiscoveryNQN)
		b.cmd(0, propertySet(0x14, ccEnable), nil)
		b.cmd(0, nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, 1024), nil)
		return &Case{Origin: "grammar:discovery", Steps: b.steps}
	}
	b.icreq(0, hd, dd)
	b.connect(0, 0, id.SubNQN)
	b.cmd(0, propertySet(0x14, ccEnable), nil)
	admin := []func(){
		func() { b.cmd(0, nvme.IdentifyCmd(1, 0, 0), nil) },
		func() { b.cmd(0, nvme.IdentifyCmd(2, 0, 0), nil) },
		func() { b.cmd(0, nvme.IdentifyCmd(0, 1, 0), nil) },
		func() { b.cmd(0, nvme.GetLogPageCmd(1, 0xFFFFFFFF, 0, 0, 64), nil) },
		func() { b.cmd(0, nvme.GetLogPageCmd(2, 0xFFFFFFFF, 0, 0, 512), nil) },
		func() { b.cmd(0, nvme.GetLogPageCmd(0x0C, 0, 0, 0, 4096), nil) },
		func() { b.cmd(0, nvme.KeepAliveCmd(), nil) },
		func() { b.cmd(0, nvme.PropertyGetCmd(0, 0x00, true), nil) },
		func() { b.cmd(0, nvme.PropertyGetCmd(0, 0x1C, false), nil) },
		func() { b.cmd(0, nvme.GetFeaturesCmd(0x07, 0, 0), nil) },
	}
	for range r.IntN(4) {
		admin[r.IntN(len(admin))]()
	}
	origin := "grammar:admin"
	if r.IntN(3) > 0 {
		origin = "grammar:io"
		qhd, qdd := r.IntN(3) == 0, r.IntN(3) == 0
		b.icreq(1, qhd, qdd)
		b.connect(1, 1, id.SubNQN)
		io := []func(){
			func() { b.writeInCapsule(1, 1) },
			func() { b.writeR2T(1, 1, uint32(1+r.IntN(16))) },
			func() { b.cmd(1, nvme.ReadCmd(1, 0, 1+uint32(r.IntN(8))), nil) },
			func() { b.cmd(1, nvme.FlushCmd(1), nil) },
		}
		for range 1 + r.IntN(4) {
			io[r.IntN(len(io))]()
		}
		if r.IntN(2) == 0 {
			b.cmd(1, nvme.DisconnectCmd(0), nil)
		}
	}
	if r.IntN(6) == 0 {
		// A host ending a connection with an H2CTermReq, as it may.
		last := b.steps[len(b.steps)-1].Conn
		b.add(last, &tcp.TermReq{H2C: true, FES: tcp.FESInvalidHeaderField}, nil, 0)
	}
	return &Case{Origin: origin, Steps: b.steps}
}

// grammarPDU is one valid PDU to insert somewhere it may not belong: a
// second ICReq, a command before Connect or after Disconnect, an H2CData
// no R2T asked for, an H2CTermReq, a Connect on a queue that has one.
func grammarPDU(r *rand.Rand, id Identity, conn int, hd, dd bool) Step {
	b := newBuilder(id)
	b.enc[conn] = tcp.EncodeOptions{Digests: tcp.Digests{Header: hd, Data: dd}}
	b.cid = uint16(r.IntN(200))
	switch r.IntN(9) {
	case 0:
		b.add(conn, &tcp.ICReq{DGST: uint8(r.IntN(4))}, nil, 0)
	case 1:
		b.connect(conn, uint16(r.IntN(3)), id.SubNQN)
	case 2:
		b.cmd(conn, nvme.IdentifyCmd(1, 0, 0), nil)
	case 3:
		data := make([]byte, 512)
		b.add(conn, &tcp.H2CData{CCCID: uint16(r.IntN(8)), TTAG: uint16(r.IntN(4)), DATAL: 512, Last: true}, data, 0)
	case 4:
		b.add(conn, &tcp.TermReq{H2C: true, FES: uint16(1 + r.IntN(6))}, make([]byte, r.IntN(3)*24), 0)
	case 5:
		b.cmd(conn, nvme.DisconnectCmd(0), nil)
	case 6:
		b.writeInCapsule(conn, 1)
	case 7:
		b.cmd(conn, nvme.KeepAliveCmd(), nil)
	default:
		b.cmd(conn, nvme.ReadCmd(1, 0, 1), nil)
	}
	return b.steps[0]
}

// withDefaults fills in the host NQN (initiator.DefaultHostNQN) and the
// host ID (the NQN's UUID if it has one, else derived from the NQN).
func (id Identity) withDefaults() Identity {
	if id.HostNQN == "" {
		id.HostNQN = initiator.DefaultHostNQN()
	}
	if id.HostID == ([16]byte{}) {
		if i := strings.LastIndex(id.HostNQN, ":uuid:"); i >= 0 {
			if h, err := initiator.ParseHostID(id.HostNQN[i+6:]); err == nil {
				id.HostID = h
				return id
			}
		}
		sum := sha256.Sum256([]byte("nvmftest-fuzz-hostid:" + id.HostNQN))
		copy(id.HostID[:], sum[:16])
		id.HostID[6] = id.HostID[6]&0x0F | 0x40 // version 4 layout
		id.HostID[8] = id.HostID[8]&0x3F | 0x80
	}
	return id
}
