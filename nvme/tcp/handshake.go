package tcp

import (
	"fmt"
)

// Byte offsets of ICReq/ICResp fields, for FEI.
const (
	offPFV        = 8
	offHPDA       = 10 // CPDA in an ICResp
	offDGST       = 11
	offMAXH2CDATA = 12
)

// HostInitialize runs the host side of connection initialization: it
// sends req, reads the ICResp, checks it, and switches the connection to
// what was negotiated. A controller that enables a digest the host did
// not ask for, or announces an illegal MAXH2CDATA or CPDA, gets a fatal
// error back (the caller may Terminate with it).
//
// A MAXH2CDATA below 4096 is legal: NVMe/TCP 1.0 3.6.2.3 says it "is a
// multiple of dwords and should be no less than 4,096", a recommendation
// the host must live with (and a conformance run reports), not a reason
// to refuse the connection. Only 0 (no H2CData could carry anything,
// while 3.3 makes Command Data Buffer transfers mandatory) and values
// that are not a multiple of 4 are invalid.
func (c *Conn) HostInitialize(req ICReq) (*ICResp, error) {
	if err := c.Send(&req, nil); err != nil {
		return nil, err
	}
	p, err := c.Next()
	if err != nil {
		return nil, err
	}
	switch v := p.(type) {
	case *ICResp:
		resp := *v
		hdr := c.RawHeader()
		if resp.PFV != 0 {
			return &resp, fatal(FESUnsupportedParameter, offPFV, hdr, "ICResp PFV %d", resp.PFV)
		}
		if resp.CPDA > 31 {
			return &resp, fatal(FESInvalidHeaderField, offHPDA, hdr, "ICResp CPDA %d > 31", resp.CPDA)
		}
		if resp.DGST&^req.DGST != 0 {
			return &resp, fatal(FESInvalidHeaderField, offDGST, hdr, "ICResp enables digests %#x not requested (%#x)", resp.DGST, req.DGST)
		}
		if resp.MAXH2CDATA == 0 || resp.MAXH2CDATA%4 != 0 {
			return &resp, fatal(FESInvalidHeaderField, offMAXH2CDATA, hdr, "ICResp MAXH2CDATA %d: must be a non-zero multiple of 4", resp.MAXH2CDATA)
		}
		c.Negotiated(Digests{Header: resp.DGST&DgstHeader != 0, Data: resp.DGST&DgstData != 0}, req.HPDA, resp.CPDA)
		return &resp, nil
	case *TermReq:
		return nil, &PeerTerminated{FES: v.FES, FEI: v.FEI}
	}
	return nil, fmt.Errorf("nvme/tcp: expected ICResp, got %v", p.Type())
}

// ICPolicy is what a controller accepts and answers in the IC exchange.
type ICPolicy struct {
	// CPDA is the data alignment the controller asks of the host.
	CPDA uint8
	// MaxH2CData is announced in ICResp and enforced on H2CData; zero
	// means 128 KiB. Values below 4096 are announced as they are (the
	// spec only recommends at least 4096), so a test controller can
	// behave like a target that uses them.
	MaxH2CData uint32
	// HeaderDigest and DataDigest say whether the controller grants each
	// digest when the host asks for it.
	HeaderDigest, DataDigest bool
	// MaxCapsuleData bounds the in-capsule data of a command (IOCCSZ*16
	// minus the 64-byte SQE). Zero means 16 KiB, like nvmet; the Linux
	// host expects 8 KiB on the admin queue.
	MaxCapsuleData uint32
	// MaxHPDA is the largest host alignment accepted (the spec allows
	// 0..31; nvmet accepts only 0). Larger values are an unsupported
	// parameter.
	MaxHPDA uint8
	// PFV is the PDU format version ICResp announces. NVMe/TCP 1.0
	// defines only 0; others make a deliberately wrong controller, for
	// testing hosts and conformance checks.
	PFV uint16
	// Deviate, if set, makes a deliberately wrong controller for testing
	// hosts and conformance checks (the reference target's quirks): it
	// sees the ICReq and the encoded ICResp before it is sent, may change
	// the ICResp's bytes, or may refuse the ICReq instead with a fatal
	// error of its choosing (refuse true, fes, fei). The connection is
	// negotiated as if the ICResp were unchanged.
	Deviate func(req *ICReq, resp []byte) (refuse bool, fes uint16, fei uint32)
}

// ControllerInitialize runs the controller side: it reads the ICReq,
// validates it, answers with ICResp and switches the connection to what
// was negotiated. Violations come back as *FatalError for Terminate.
func (c *Conn) ControllerInitialize(pol ICPolicy) (*ICReq, error) {
	p, err := c.Next()
	if err != nil {
		return nil, err
	}
	req, ok := p.(*ICReq)
	if !ok {
		if t, ok := p.(*TermReq); ok {
			return nil, &PeerTerminated{FES: t.FES, FEI: t.FEI}
		}
		return nil, fatal(FESPDUSequenceError, 0, c.RawHeader(), "expected ICReq, got %v", p.Type())
	}
	r := *req
	hdr := c.RawHeader()
	if r.PFV != 0 {
		return &r, fatal(FESUnsupportedParameter, offPFV, hdr, "ICReq PFV %d not supported", r.PFV)
	}
	if r.HPDA > 31 {
		return &r, fatal(FESInvalidHeaderField, offHPDA, hdr, "ICReq HPDA %d > 31", r.HPDA)
	}
	if r.HPDA > pol.MaxHPDA {
		return &r, fatal(FESUnsupportedParameter, offHPDA, hdr, "ICReq HPDA %d not supported (max %d)", r.HPDA, pol.MaxHPDA)
	}
	if r.DGST&^(DgstHeader|DgstData) != 0 {
		return &r, fatal(FESInvalidHeaderField, offDGST, hdr, "ICReq DGST %#x has reserved bits", r.DGST)
	}
	var dgst uint8
	if pol.HeaderDigest {
		dgst |= r.DGST & DgstHeader
	}
	if pol.DataDigest {
		dgst |= r.DGST & DgstData
	}
	maxh2c := pol.MaxH2CData
	if maxh2c == 0 {
		maxh2c = 128 << 10
	}
	resp := ICResp{PFV: pol.PFV, CPDA: pol.CPDA, DGST: dgst, MAXH2CDATA: maxh2c}
	if pol.Deviate != nil {
		b := AppendPDU(nil, &resp, nil, EncodeOptions{})
		if refuse, fes, fei := pol.Deviate(&r, b); refuse {
			return &r, fatal(fes, fei, hdr, "ICReq refused (a deliberate deviation)")
		}
		if err := c.SendRaw(b); err != nil {
			return &r, err
		}
	} else if err := c.Send(&resp, nil); err != nil {
		return &r, err
	}
	c.Negotiated(Digests{Header: dgst&DgstHeader != 0, Data: dgst&DgstData != 0}, pol.CPDA, r.HPDA)
	maxicd := pol.MaxCapsuleData
	if maxicd == 0 {
		maxicd = 16 << 10
	}
	c.SetLimits(maxicd, maxh2c)
	return &r, nil
}

// PeerTerminated reports that the peer sent a TermReq.
type PeerTerminated struct {
	FES uint16
	FEI uint32
}

func (e *PeerTerminated) Error() string {
	return fmt.Sprintf("nvme/tcp: peer terminated the connection: FES %#x (%s), FEI %#x", e.FES, FESString(e.FES), e.FEI)
}
