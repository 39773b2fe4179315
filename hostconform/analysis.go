package hostconform

import (
	"fmt"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Helpers that read a connection's frames the way checks need them.

// Sent returns the PDUs the host sent on c, in order.
func (c *Conn) Sent() []*Frame { return c.dir(FromHost) }

// Received returns the PDUs the host got on c, in order.
func (c *Conn) Received() []*Frame { return c.dir(ToHost) }

func (c *Conn) dir(d Dir) []*Frame {
	var out []*Frame
	for _, f := range c.Frames() {
		if f.Dir == d {
			out = append(out, f)
		}
	}
	return out
}

// ICReq returns the host's ICReq on c, if its first PDU was one.
func (c *Conn) ICReq() (*tcp.ICReq, *Frame) {
	s := c.Sent()
	if len(s) == 0 {
		return nil, nil
	}
	if r, ok := s[0].PDU.(*tcp.ICReq); ok {
		return r, s[0]
	}
	return nil, s[0]
}

// ICResp returns the ICResp the host got on c.
func (c *Conn) ICResp() *tcp.ICResp {
	for _, f := range c.Received() {
		if r, ok := f.PDU.(*tcp.ICResp); ok {
			return r
		}
	}
	return nil
}

// Command returns the SQE of a CapsuleCmd frame, or nil.
func Command(f *Frame) *nvme.SQE {
	if p, ok := f.PDU.(*tcp.CapsuleCmd); ok {
		return &p.SQE
	}
	return nil
}

// IsConnect reports whether s is a Fabrics Connect.
func IsConnect(s *nvme.SQE) bool {
	return s != nil && s.Opcode == nvme.CmdFabrics && s.FCType() == nvme.FabricsConnect
}

// Connect returns the host's first Connect on c and its data (nil if it
// sent none).
func (c *Conn) Connect() (*nvme.SQE, *nvme.ConnectData) {
	for _, f := range c.Sent() {
		if s := Command(f); IsConnect(s) {
			var d nvme.ConnectData
			data := f.Data()
			if len(data) < nvme.ConnectDataSize || d.Decode(data) != nil {
				return s, nil
			}
			return s, &d
		}
	}
	return nil, nil
}

// QID is the queue the host's first Connect on the connection names (-1
// before it).
func (c *Conn) QID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.qid
}

// Live reports whether the host has connected an association on the
// controller's connections: an admin queue and, if ioQueues, an I/O
// queue whose Connect succeeded.
func Live(conns []*Conn, ioQueues bool) bool {
	for _, c := range conns {
		qid := c.QID()
		if qid < 0 || (qid == 0) == ioQueues {
			continue
		}
		s, _ := c.Connect()
		for _, f := range c.Received() {
			if r, ok := f.PDU.(*tcp.CapsuleResp); ok && r.CQE.CID == s.CID {
				if r.CQE.Status.Success() {
					return true
				}
				break
			}
		}
	}
	return false
}

// pdo is where a host PDU's data must start after a header of hlen
// bytes (plus its digest) when the controller asked CPDA cpda: the
// smallest multiple of (cpda+1)*4 at or past the header (NVMe/TCP 1.0
// 3.3: "An appropriate number of padding bytes", 3.6.2.8: PAD "the
// necessary number of bytes required to achieve the alignment").
func pdo(hlen int, hdgst bool, cpda uint8) int {
	off := hlen
	if hdgst {
		off += tcp.DigestSize
	}
	align := (int(cpda) + 1) * 4
	return (off + align - 1) / align * align
}

// describe is a frame for a problem list: its type and where it was.
func describe(c *Conn, f *Frame) string {
	return fmt.Sprintf("%v #%d on connection %d", f.CH.Type, f.Seq, c.ID())
}
