package initiator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Raw is one NVMe/TCP connection driven by hand, for conformance suites:
// nothing happens unless asked, any PDU can be sent (legal or not) and
// every answer is observed, whether a response, a C2HTermReq or the
// connection closing. Raw is not safe for concurrent receives.
type Raw struct {
	// Conn is the framed connection.
	Conn *tcp.Conn
	// ICResp is the controller's answer once Initialize succeeded.
	ICResp *tcp.ICResp

	opts Options
	enc  tcp.EncodeOptions
	cid  uint16
}

// DialRaw opens a TCP connection to addr and wraps it; nothing is sent.
func DialRaw(ctx context.Context, addr string, opts Options) (*Raw, error) {
	nc, err := opts.dialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	return NewRaw(nc, tcp.Config{}, opts), nil
}

// NewRaw wraps nc, a connection the caller opened itself (to set socket
// options before connecting, say, or to go through a proxy), framed with
// cfg; nothing is sent. Everything else is as with DialRaw: opts.Capture
// records it and RawMaxData bounds what it accepts.
func NewRaw(nc net.Conn, cfg tcp.Config, opts Options) *Raw {
	opts = opts.withDefaults(false)
	if opts.Capture != nil {
		nc = opts.Capture.Record(nc, true, "nvmftest host: raw connection")
	}
	c := tcp.NewConn(nc, false, cfg)
	// A hostile or broken target must not make the harness allocate what
	// a PLEN of up to 4 GiB claims: bound every data PDU we buffer.
	c.SetLimits(0, RawMaxData)
	return &Raw{Conn: c, opts: opts}
}

// RawMaxData bounds the data of one PDU that Raw accepts: larger is a
// fatal error (FES 5), not an allocation.
const RawMaxData = 16 << 20

// Close closes the connection.
func (r *Raw) Close() error { return r.Conn.Close() }

// Initialize sends req and reads the ICResp, switching the connection to
// what was negotiated.
func (r *Raw) Initialize(req tcp.ICReq) (*tcp.ICResp, error) {
	_ = r.Conn.NetConn().SetDeadline(time.Now().Add(r.opts.initTimeout()))
	defer func() { _ = r.Conn.NetConn().SetDeadline(time.Time{}) }()
	resp, err := r.Conn.HostInitialize(req)
	if err != nil {
		var pt *tcp.PeerTerminated
		if errors.As(err, &pt) {
			// NVMe/TCP 1.0 3.5.1: "In response to a C2HTermReq PDU, the
			// host shall terminate the connection."
			_ = r.Close()
		}
		return resp, err
	}
	r.ICResp = resp
	r.enc = tcp.EncodeOptions{
		Digests: tcp.Digests{Header: resp.DGST&tcp.DgstHeader != 0, Data: resp.DGST&tcp.DgstData != 0},
		PDA:     resp.CPDA,
	}
	return resp, nil
}

// Encoding returns the encode options the connection negotiated, to start
// from when building deliberately wrong PDUs.
func (r *Raw) Encoding() tcp.EncodeOptions { return r.enc }

// SendPDU encodes p with data under o (whatever it says: digests or not,
// any alignment) and sends it.
func (r *Raw) SendPDU(p tcp.PDU, data []byte, o tcp.EncodeOptions) error {
	return r.Conn.SendRaw(tcp.AppendPDU(nil, p, data, o))
}

// SendBytes sends b as it is.
func (r *Raw) SendBytes(b []byte) error { return r.Conn.SendRaw(b) }

// Recv waits up to timeout (0: Options.Timeout, or DefaultTimeout if that
// is negative: a raw connection never waits without a bound) for the next PDU and
// returns a copy of it, its common header and its data. A data digest
// mismatch returns the PDU and data with tcp.ErrDataDigest; a violation
// returns *tcp.FatalError (nothing is sent back); a closed connection
// returns io.EOF or a net error; a timeout returns a net.Error whose
// Timeout() is true. A C2HTermReq is returned like any PDU and the
// connection stays open: Recv only observes, so a check can still see
// what the controller does next (NVMe/TCP 1.0 3.5.1 has it stop
// processing PDUs); terminating the connection, the host's duty, is then
// the caller's (Close). Command and Initialize close it themselves.
func (r *Raw) Recv(timeout time.Duration) (tcp.PDU, tcp.CommonHeader, []byte, error) {
	if timeout <= 0 {
		timeout = r.opts.initTimeout()
	}
	nc := r.Conn.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	p, err := r.Conn.Next()
	if err != nil {
		return nil, tcp.CommonHeader{}, nil, err
	}
	ch := r.Conn.Header()
	p = clonePDU(p)
	var data []byte
	if n := r.Conn.DataLen(); n > 0 {
		data = make([]byte, n)
		if err := r.Conn.ReadData(data); err != nil {
			return p, ch, data, err
		}
	}
	return p, ch, data, nil
}

func clonePDU(p tcp.PDU) tcp.PDU {
	switch v := p.(type) {
	case *tcp.ICReq:
		c := *v
		return &c
	case *tcp.ICResp:
		c := *v
		return &c
	case *tcp.TermReq:
		c := *v
		return &c
	case *tcp.CapsuleCmd:
		c := *v
		return &c
	case *tcp.CapsuleResp:
		c := *v
		return &c
	case *tcp.H2CData:
		c := *v
		return &c
	case *tcp.C2HData:
		c := *v
		return &c
	case *tcp.R2T:
		c := *v
		return &c
	}
	return p
}

// ConnectAdmin sends Fabrics Connect for the admin queue (any controller:
// CNTLID FFFFh, then FFFEh if a static-model subsystem refuses FFFFh;
// Options.KATO) and returns the response.
func (r *Raw) ConnectAdmin(subnqn, hostnqn string) (nvme.CQE, error) {
	if hostnqn == "" {
		hostnqn = r.opts.HostNQN
	}
	cd := nvme.ConnectData{HostID: r.opts.HostID, CNTLID: nvme.CNTLIDDynamic, SubNQN: subnqn, HostNQN: hostnqn}
	cmd := nvme.Connect{QID: 0, SQSIZE: AdminQueueSize - 1, KATO: katoMillis(r.opts.KATO)}
	cqe, _, err := r.Command(cmd.SQE(0), cd.Append(nil))
	if nvme.ConnectRefusedAtCNTLID(cqe, err) {
		cd.CNTLID = nvme.CNTLIDStatic // a static-model subsystem
		cqe, _, err = r.Command(cmd.SQE(0), cd.Append(nil))
	}
	return cqe, err
}

// StrayCompletionError is Command's error when the controller completes
// another command identifier than the one Command waits for.
type StrayCompletionError struct{ CID, Want uint16 }

func (e *StrayCompletionError) Error() string {
	return fmt.Sprintf("response for CID %d, expected %d", e.CID, e.Want)
}

// NextCID returns a fresh command identifier.
func (r *Raw) NextCID() uint16 {
	r.cid++
	return r.cid
}

// Command sends sqe and waits for its completion, answering R2Ts from data
// and collecting C2HData. If sqe.CID is 0 a fresh CID is used. If
// sqe.DPTR.Type is 0 the SGL is filled in: data goes in-capsule, and a
// read length can be given as sqe.DPTR.Length with no data. A non-success
// status is returned as the error (an nvme.Status) with the CQE. A
// C2HTermReq closes the connection and returns *tcp.PeerTerminated.
func (r *Raw) Command(sqe nvme.SQE, data []byte) (nvme.CQE, []byte, error) {
	if sqe.CID == 0 {
		sqe.CID = r.NextCID()
	}
	var inline []byte
	if sqe.DPTR.Type == 0 {
		sqe.Flags |= nvme.PSDTSGL
		if len(data) > 0 {
			nvme.SetInCapsule(&sqe, uint32(len(data)))
			inline = data
		} else {
			nvme.SetDataLength(&sqe, sqe.DPTR.Length)
		}
	} else if sqe.DPTR.Type == nvme.SGLDataBlockOffset {
		inline = data
	}
	if err := r.Conn.Send(&tcp.CapsuleCmd{SQE: sqe}, inline); err != nil {
		return nvme.CQE{}, nil, err
	}
	var rdata []byte
	for {
		p, _, d, err := r.Recv(0)
		if err != nil {
			return nvme.CQE{}, rdata, err
		}
		switch v := p.(type) {
		case *tcp.CapsuleResp:
			if v.CQE.CID != sqe.CID {
				return v.CQE, rdata, &StrayCompletionError{CID: v.CQE.CID, Want: sqe.CID}
			}
			if !v.CQE.Status.Success() {
				return v.CQE, rdata, v.CQE.Status
			}
			return v.CQE, rdata, nil
		case *tcp.C2HData:
			end := int(v.DATAO) + len(d)
			if uint64(end) > uint64(sqe.DPTR.Length) {
				return nvme.CQE{}, rdata, fmt.Errorf("C2HData DATAO %d DATAL %d beyond the command's %d bytes", v.DATAO, len(d), sqe.DPTR.Length)
			}
			if end > len(rdata) {
				rdata = append(rdata, make([]byte, end-len(rdata))...)
			}
			copy(rdata[v.DATAO:], d)
			if v.Success {
				return nvme.CQE{CID: v.CCCID}, rdata, nil
			}
		case *tcp.R2T:
			if err := r.answerR2T(v, data); err != nil {
				return nvme.CQE{}, rdata, err
			}
		case *tcp.TermReq:
			// The host's duty (NVMe/TCP 1.0 3.5.1): terminate the
			// connection in response to a C2HTermReq.
			_ = r.Close()
			return nvme.CQE{}, rdata, &tcp.PeerTerminated{FES: v.FES, FEI: v.FEI}
		default:
			return nvme.CQE{}, rdata, fmt.Errorf("unexpected %v", p.Type())
		}
	}
}

func (r *Raw) answerR2T(v *tcp.R2T, data []byte) error {
	end := uint64(v.R2TO) + uint64(v.R2TL)
	if end > uint64(len(data)) {
		return errors.New("R2T beyond the command's data")
	}
	maxData := uint32(tcp.MinMaxH2CData)
	if r.ICResp != nil {
		maxData = r.ICResp.MAXH2CDATA
	}
	for off := v.R2TO; uint64(off) < end; {
		n := min(uint32(end)-off, maxData)
		h := &tcp.H2CData{CCCID: v.CCCID, TTAG: v.TTAG, DATAO: off, DATAL: n, Last: uint64(off+n) == end}
		if err := r.Conn.Send(h, data[off:off+n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}
