package target

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// outcome is what the target did with a malformed sequence.
type outcome struct {
	term   bool // C2HTermReq, then close
	fes    uint16
	fei    uint32
	closed bool        // closed without a TermReq
	status nvme.Status // a command failed, the connection lives (cqe)
	cqe    bool
}

func (o outcome) String() string {
	switch {
	case o.term:
		return fmt.Sprintf("TermReq FES %#x FEI %d", o.fes, o.fei)
	case o.closed:
		return "closed"
	case o.cqe:
		return fmt.Sprintf("status %v", o.status)
	}
	return "nothing"
}

// observe reads what the target sends after a malformed sequence: a
// TermReq followed by silence (the host then closes), the close alone, or
// a response.
func observe(c *client) outcome {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		p, err := c.conn.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return outcome{}
			}
			return outcome{closed: true}
		}
		switch v := p.(type) {
		case *tcp.TermReq:
			o := outcome{term: true, fes: v.FES, fei: v.FEI}
			if err := c.silentAfterTerm(); err != nil {
				c.t.Log(err)
				return outcome{} // not what a fatal error does
			}
			c.nc.Close() // the host's duty after a C2HTermReq
			return o
		case *tcp.CapsuleResp:
			return outcome{cqe: true, status: v.CQE.Status.Code()}
		case *tcp.R2T:
			continue
		}
	}
}

func rawHdr(typ tcp.PDUType, flags, hlen, pdo uint8, plen uint32) []byte {
	b := make([]byte, int(max(hlen, 8)))
	b[0], b[1], b[2], b[3] = byte(typ), flags, hlen, pdo
	binary.LittleEndian.PutUint32(b[4:], plen)
	return b
}

func capsule(sqe nvme.SQE, data []byte) []byte {
	sqe.Flags |= nvme.PSDTSGL
	if data != nil {
		sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLDataBlockOffset}
	}
	return tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, data, tcp.EncodeOptions{})
}

// TestMalformedSequences is a corpus of malformed PDU sequences, one
// connection each: every header field out of range, PDUs of the wrong
// direction or order, truncated and oversized PDUs and digest errors. Each
// gets the fatal-error handling NVMe/TCP prescribes (C2HTermReq with FES
// and FEI, then close) or, where the spec makes it a command error, a
// failed command on a connection that lives; after each, a second host's
// association is verified to be untouched.
func TestMalformedSequences(t *testing.T) {
	cfg := testConfig()
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[0]
	good := admin(t, addr, testNQN, 0)
	gq := ioQueue(t, addr, good.cntlid, 1, 0)
	checkGood := func(t *testing.T) {
		t.Helper()
		mustOK(t, good.exec(nvme.KeepAliveCmd(), nil, false, nil))
		mustOK(t, gq.exec(nvme.ReadCmd(1, 0, 1), nil, false, make([]byte, 512)))
	}
	const (
		offFlags = 1
		offHLEN  = 2
		offPDO   = 3
		offPLEN  = 4
	)
	fatal := func(fes uint16, fei uint32) outcome { return outcome{term: true, fes: fes, fei: fei} }
	// The header digest of a Keep Alive capsule as the digest case
	// below damages it: FES 03h's FEI is the HDGST received (NVMe/TCP
	// 1.0 3.6.2.5).
	kaPDU := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.KeepAliveCmd()}, nil, tcp.EncodeOptions{Digests: tcp.Digests{Header: true}})
	badHDGST := binary.LittleEndian.Uint32(kaPDU[len(kaPDU)-tcp.DigestSize:]) ^ 0x40<<16
	cases := []struct {
		name string
		// run sends the sequence on a fresh connection (raw: before ICReq)
		raw  bool
		send func(t *testing.T, c *client)
		want outcome
	}{
		// Before ICReq.
		{"capsule before ICReq", true, func(t *testing.T, c *client) {
			_, _ = c.nc.Write(capsule(nvme.KeepAliveCmd(), nil))
		}, fatal(tcp.FESPDUSequenceError, 0)},
		{"ICReq PFV 1", true, func(t *testing.T, c *client) {
			_, _ = c.nc.Write(tcp.AppendPDU(nil, &tcp.ICReq{PFV: 1}, nil, tcp.EncodeOptions{}))
		}, fatal(tcp.FESUnsupportedParameter, 8)},
		{"ICReq HPDA 32", true, func(t *testing.T, c *client) {
			_, _ = c.nc.Write(tcp.AppendPDU(nil, &tcp.ICReq{HPDA: 32}, nil, tcp.EncodeOptions{}))
		}, fatal(tcp.FESInvalidHeaderField, 10)}, // out of 0..31: a bad field, not an unsupported value
		{"ICReq plen 127", true, func(t *testing.T, c *client) {
			b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
			binary.LittleEndian.PutUint32(b[offPLEN:], 127)
			_, _ = c.nc.Write(b)
		}, fatal(tcp.FESInvalidHeaderField, offPLEN)},
		{"ICReq hlen 24", true, func(t *testing.T, c *client) {
			b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
			b[offHLEN] = 24
			_, _ = c.nc.Write(b)
		}, fatal(tcp.FESInvalidHeaderField, offHLEN)},
		{"truncated ICReq then close", true, func(t *testing.T, c *client) {
			b := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
			_, _ = c.nc.Write(b[:50])
			_ = c.nc.(*net.TCPConn).CloseWrite()
		}, outcome{closed: true}},

		// After ICReq: header fields.
		{"CapsuleCmd hlen 70", false, func(t *testing.T, c *client) {
			b := capsule(nvme.KeepAliveCmd(), nil)
			b[offHLEN] = 70
			_ = c.conn.SendRaw(b)
		}, fatal(tcp.FESInvalidHeaderField, offHLEN)},
		{"CapsuleCmd plen below hlen", false, func(t *testing.T, c *client) {
			b := capsule(nvme.KeepAliveCmd(), nil)
			binary.LittleEndian.PutUint32(b[offPLEN:], 8)
			_ = c.conn.SendRaw(b)
		}, fatal(tcp.FESInvalidHeaderField, offPLEN)},
		{"CapsuleCmd oversized (1 GiB of data)", false, func(t *testing.T, c *client) {
			b := capsule(nvme.KeepAliveCmd(), nil)
			binary.LittleEndian.PutUint32(b[offPLEN:], 1<<30)
			b[offPDO] = 72
			_ = c.conn.SendRaw(b)
		}, fatal(tcp.FESInvalidHeaderField, offPLEN)}, // refused from the header, before any data is read
		{"CapsuleCmd PDO inside the header", false, func(t *testing.T, c *client) {
			b := capsule(nvme.KeepAliveCmd(), make([]byte, 64))
			b[offPDO] = 8
			_ = c.conn.SendRaw(b)
		}, fatal(tcp.FESInvalidHeaderField, offPDO)},
		{"HDGSTF without negotiated header digest", false, func(t *testing.T, c *client) {
			b := capsule(nvme.KeepAliveCmd(), nil)
			b[offFlags] |= tcp.FlagHDGST
			_ = c.conn.SendRaw(b)
		}, fatal(tcp.FESInvalidHeaderField, offFlags)},
		{"unknown PDU type 0x0A", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(rawHdr(0x0A, 0, 24, 0, 24))
		}, fatal(tcp.FESInvalidHeaderField, 0)},
		{"unknown PDU type 0xFF", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(rawHdr(0xFF, 0, 24, 0, 24))
		}, fatal(tcp.FESInvalidHeaderField, 0)},

		// Wrong direction or order.
		{"second ICReq", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{}))
		}, fatal(tcp.FESPDUSequenceError, 0)},
		{"host sends ICResp", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.ICResp{MAXH2CDATA: 4096}, nil, tcp.EncodeOptions{}))
		}, fatal(tcp.FESInvalidHeaderField, 0)},
		{"host sends CapsuleResp", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.CapsuleResp{}, nil, tcp.EncodeOptions{}))
		}, fatal(tcp.FESInvalidHeaderField, 0)},
		{"host sends C2HData", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.C2HData{DATAL: 4}, make([]byte, 4), tcp.EncodeOptions{}))
		}, fatal(tcp.FESInvalidHeaderField, 0)},
		{"host sends R2T", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.R2T{R2TL: 512}, nil, tcp.EncodeOptions{}))
		}, fatal(tcp.FESInvalidHeaderField, 0)},
		{"host sends C2HTermReq", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.TermReq{FES: 1}, nil, tcp.EncodeOptions{}))
		}, fatal(tcp.FESInvalidHeaderField, 0)},
		{"H2CTermReq from the host", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(tcp.AppendPDU(nil, &tcp.TermReq{H2C: true, FES: tcp.FESInvalidHeaderField}, nil, tcp.EncodeOptions{}))
		}, outcome{closed: true}},
		// NVMe/TCP 1.0 3.5.1: an H2CTermReq with PLEN above 152 or below
		// 24 is ignored and the connection closed at once, no C2HTermReq.
		{"H2CTermReq plen 160", false, func(t *testing.T, c *client) {
			b := tcp.AppendPDU(nil, &tcp.TermReq{H2C: true, FES: tcp.FESInvalidHeaderField}, make([]byte, 136), tcp.EncodeOptions{})
			binary.LittleEndian.PutUint32(b[offPLEN:], 160)
			_ = c.conn.SendRaw(b)
		}, outcome{closed: true}},
		{"H2CTermReq plen 16", false, func(t *testing.T, c *client) {
			b := tcp.AppendPDU(nil, &tcp.TermReq{H2C: true, FES: tcp.FESInvalidHeaderField}, nil, tcp.EncodeOptions{})
			binary.LittleEndian.PutUint32(b[offPLEN:], 16)
			_ = c.conn.SendRaw(b)
		}, outcome{closed: true}},
		{"H2CData with no command", false, func(t *testing.T, c *client) {
			_ = c.conn.Send(&tcp.H2CData{CCCID: 1, TTAG: 0, DATAL: 512, Last: true}, make([]byte, 512))
		}, fatal(tcp.FESInvalidHeaderField, 10)},

		// Data: sizes, offsets, digests.
		{"in-capsule data above the admin limit", false, func(t *testing.T, c *client) {
			_ = c.conn.SendRaw(capsule(nvme.KeepAliveCmd(), make([]byte, 12288)))
		}, fatal(tcp.FESInvalidHeaderField, offPLEN)},
		{"H2CData above MAXH2CDATA", false, func(t *testing.T, c *client) {
			io := ioQueue(t, addr, good.cntlid, 5, 0)
			w := nvme.WriteCmd(1, 0, 32)
			w.CID = 3
			nvme.SetDataLength(&w, 16384)
			_ = io.conn.Send(&tcp.CapsuleCmd{SQE: w}, nil)
			p, err := io.conn.Next()
			if err != nil {
				t.Fatal(err)
			}
			r := p.(*tcp.R2T)
			_ = io.conn.Send(&tcp.H2CData{CCCID: 3, TTAG: r.TTAG, DATAL: 12288}, make([]byte, 12288))
			*c = *io
		}, fatal(tcp.FESDataLimitExceeded, 0)},
		{"H2CData past the R2T", false, func(t *testing.T, c *client) {
			io := ioQueue(t, addr, good.cntlid, 6, 0)
			w := nvme.WriteCmd(1, 0, 2)
			w.CID = 4
			nvme.SetDataLength(&w, 1024)
			_ = io.conn.Send(&tcp.CapsuleCmd{SQE: w}, nil)
			p, err := io.conn.Next()
			if err != nil {
				t.Fatal(err)
			}
			r := p.(*tcp.R2T)
			_ = io.conn.Send(&tcp.H2CData{CCCID: 4, TTAG: r.TTAG, DATAL: 2048, Last: true}, make([]byte, 2048))
			*c = *io
		}, fatal(tcp.FESDataOutOfRange, 0)},
		{"header digest error", false, func(t *testing.T, c *client) {
			io := dial(t, addr, tcp.DgstHeader)
			b := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: nvme.KeepAliveCmd()}, nil, tcp.EncodeOptions{Digests: tcp.Digests{Header: true}})
			b[len(b)-2] ^= 0x40
			_ = io.conn.SendRaw(b)
			*c = *io
		}, fatal(tcp.FESHeaderDigestError, badHDGST)},
		{"data digest error (a command error unless data_digest_fatal)", false, func(t *testing.T, c *client) {
			io := dial(t, addr, tcp.DgstData)
			sqe := connectSQE(0, 31, 0, 0)
			sqe.CID = 77
			sqe.Flags |= nvme.PSDTSGL
			data := connectData(testNQN, testHost, nvme.CNTLIDDynamic)
			sqe.DPTR = nvme.SGLDescriptor{Length: uint32(len(data)), Type: nvme.SGLDataBlockOffset}
			b := tcp.AppendPDU(nil, &tcp.CapsuleCmd{SQE: sqe}, data, tcp.EncodeOptions{Digests: tcp.Digests{Data: true}})
			b[len(b)-1] ^= 1
			_ = io.conn.SendRaw(b)
			*c = *io
		}, outcome{cqe: true, status: nvme.StatusTransientTransport}},
		{"truncated capsule then close", false, func(t *testing.T, c *client) {
			b := capsule(nvme.KeepAliveCmd(), nil)
			_ = c.conn.SendRaw(b[:40])
			_ = c.nc.(*net.TCPConn).CloseWrite()
		}, outcome{closed: true}},

		// Queue depth.
		{"more outstanding than the queue size", false, func(t *testing.T, c *client) {
			// An overrun ends the association (NVMe Base 2.1 3.3.2.6):
			// one of its own, not the good one.
			other := admin(t, addr, testNQN, 0)
			mustOK(t, c.exec(connectSQE(7, 1, 0, 0), connectData(testNQN, testHost, other.cntlid), true, nil))
			w := nvme.WriteCmd(1, 0, 1)
			nvme.SetDataLength(&w, 512)
			for i := range 3 {
				w.CID = uint16(100 + i)
				_ = c.conn.Send(&tcp.CapsuleCmd{SQE: w}, nil)
			}
		}, fatal(tcp.FESPDUSequenceError, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *client
			if tc.raw {
				c = dialRaw(t, addr)
				c.resp = &tcp.ICResp{MAXH2CDATA: 8192}
			} else {
				c = dial(t, addr, 0)
			}
			tc.send(t, c)
			got := observe(c)
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			checkGood(t)
		})
	}
	// Every malformed connection is gone; only the good association's two
	// queues remain.
	waitCounts(t, tg, 2, 1)
}
