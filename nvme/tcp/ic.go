package tcp

import "encoding/binary"

// Digest negotiation bits in ICReq/ICResp DGST.
const (
	DgstHeader = 1 << 0
	DgstData   = 1 << 1
)

// MinMaxH2CData is the smallest MAXH2CDATA NVMe/TCP 1.0 3.6.2.3 recommends
// ("should be no less than 4,096"); smaller non-zero dword multiples are
// legal.
const MinMaxH2CData = 4096

// ICReq is the Initialize Connection Request a host sends first.
type ICReq struct {
	PFV    uint16 // PDU format version, 0 for NVMe/TCP 1.0
	HPDA   uint8  // host PDU data alignment, 0's based dwords (0..31)
	DGST   uint8  // requested digests: DgstHeader | DgstData
	MAXR2T uint32 // maximum outstanding R2Ts per command, 0's based
}

// Type implements PDU.
func (*ICReq) Type() PDUType { return TypeICReq }
func (*ICReq) flags() uint8  { return 0 }

func (p *ICReq) put(b []byte) {
	binary.LittleEndian.PutUint16(b[0:], p.PFV)
	b[2] = p.HPDA
	b[3] = p.DGST
	binary.LittleEndian.PutUint32(b[4:], p.MAXR2T)
}

func (p *ICReq) decode(b []byte, _ uint8) {
	p.PFV = binary.LittleEndian.Uint16(b[0:])
	p.HPDA = b[2]
	p.DGST = b[3]
	p.MAXR2T = binary.LittleEndian.Uint32(b[4:])
}

// ICResp is the controller's answer to ICReq.
type ICResp struct {
	PFV        uint16
	CPDA       uint8  // controller PDU data alignment, 0's based dwords
	DGST       uint8  // digests enabled for the connection
	MAXH2CDATA uint32 // largest H2CData payload the controller accepts
}

// Type implements PDU.
func (*ICResp) Type() PDUType { return TypeICResp }
func (*ICResp) flags() uint8  { return 0 }

func (p *ICResp) put(b []byte) {
	binary.LittleEndian.PutUint16(b[0:], p.PFV)
	b[2] = p.CPDA
	b[3] = p.DGST
	binary.LittleEndian.PutUint32(b[4:], p.MAXH2CDATA)
}

func (p *ICResp) decode(b []byte, _ uint8) {
	p.PFV = binary.LittleEndian.Uint16(b[0:])
	p.CPDA = b[2]
	p.DGST = b[3]
	p.MAXH2CDATA = binary.LittleEndian.Uint32(b[4:])
}

// Fatal Error Status values carried by a TermReq.
const (
	FESInvalidHeaderField   = 0x01
	FESPDUSequenceError     = 0x02
	FESHeaderDigestError    = 0x03
	FESDataOutOfRange       = 0x04
	FESDataLimitExceeded    = 0x05 // also "R2T Limit Exceeded" in 1.0
	FESUnsupportedParameter = 0x06
)

// FESString names a Fatal Error Status.
func FESString(fes uint16) string {
	switch fes {
	case FESInvalidHeaderField:
		return "Invalid PDU Header Field"
	case FESPDUSequenceError:
		return "PDU Sequence Error"
	case FESHeaderDigestError:
		return "Header Digest Error"
	case FESDataOutOfRange:
		return "Data Transfer Out of Range"
	case FESDataLimitExceeded:
		return "Data Transfer Limit Exceeded"
	case FESUnsupportedParameter:
		return "Unsupported Parameter"
	}
	return "Reserved"
}

// TermReq is an H2CTermReq (H2C true) or C2HTermReq: the sender found a
// fatal transport error and closes the connection after sending it. Its
// data, passed beside it to AppendPDU, is the header of the PDU that caused
// the error (at most MaxTermReqData bytes).
type TermReq struct {
	H2C bool
	FES uint16
	FEI uint32 // for FES 1 the byte offset of the bad field; for 6 too
}

// Type implements PDU.
func (p *TermReq) Type() PDUType {
	if p.H2C {
		return TypeH2CTermReq
	}
	return TypeC2HTermReq
}
func (*TermReq) flags() uint8 { return 0 }

func (p *TermReq) put(b []byte) {
	binary.LittleEndian.PutUint16(b[0:], p.FES)
	binary.LittleEndian.PutUint32(b[2:], p.FEI)
}

func (p *TermReq) decode(b []byte, _ uint8) {
	p.FES = binary.LittleEndian.Uint16(b[0:])
	p.FEI = binary.LittleEndian.Uint32(b[2:])
}
