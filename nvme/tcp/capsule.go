package tcp

import (
	"encoding/binary"

	"github.com/nvmftest/nvmftest/nvme"
)

// CapsuleCmd carries a submission queue entry and, for writes that fit,
// in-capsule data (passed beside it to AppendPDU).
type CapsuleCmd struct {
	SQE nvme.SQE
}

// Type implements PDU.
func (*CapsuleCmd) Type() PDUType              { return TypeCapsuleCmd }
func (*CapsuleCmd) flags() uint8               { return 0 }
func (p *CapsuleCmd) put(b []byte)             { p.SQE.Put(b) }
func (p *CapsuleCmd) decode(b []byte, _ uint8) { _ = p.SQE.Decode(b) }

// CapsuleResp carries a completion queue entry.
type CapsuleResp struct {
	CQE nvme.CQE
}

// Type implements PDU.
func (*CapsuleResp) Type() PDUType              { return TypeCapsuleResp }
func (*CapsuleResp) flags() uint8               { return 0 }
func (p *CapsuleResp) put(b []byte)             { p.CQE.Put(b) }
func (p *CapsuleResp) decode(b []byte, _ uint8) { _ = p.CQE.Decode(b) }

// H2CData carries write data the controller asked for with an R2T.
type H2CData struct {
	CCCID uint16 // command capsule CID
	TTAG  uint16 // transfer tag from the R2T
	DATAO uint32 // offset of this data in the command's buffer
	DATAL uint32 // length of this PDU's data
	Last  bool   // LAST_PDU: last H2CData of this R2T
}

// Type implements PDU.
func (*H2CData) Type() PDUType { return TypeH2CData }

func (p *H2CData) flags() uint8 {
	if p.Last {
		return FlagLastPDU
	}
	return 0
}

func (p *H2CData) put(b []byte) {
	binary.LittleEndian.PutUint16(b[0:], p.CCCID)
	binary.LittleEndian.PutUint16(b[2:], p.TTAG)
	binary.LittleEndian.PutUint32(b[4:], p.DATAO)
	binary.LittleEndian.PutUint32(b[8:], p.DATAL)
}

func (p *H2CData) decode(b []byte, flags uint8) {
	p.Last = flags&FlagLastPDU != 0
	p.CCCID = binary.LittleEndian.Uint16(b[0:])
	p.TTAG = binary.LittleEndian.Uint16(b[2:])
	p.DATAO = binary.LittleEndian.Uint32(b[4:])
	p.DATAL = binary.LittleEndian.Uint32(b[8:])
}

// C2HData carries read data to the host.
type C2HData struct {
	CCCID   uint16
	DATAO   uint32
	DATAL   uint32
	Last    bool // LAST_PDU
	Success bool // SUCCESS: no CapsuleResp follows (needs Last)
}

// Type implements PDU.
func (*C2HData) Type() PDUType { return TypeC2HData }

func (p *C2HData) flags() uint8 {
	var f uint8
	if p.Last {
		f |= FlagLastPDU
	}
	if p.Success {
		f |= FlagSuccess
	}
	return f
}

func (p *C2HData) put(b []byte) {
	binary.LittleEndian.PutUint16(b[0:], p.CCCID)
	binary.LittleEndian.PutUint32(b[4:], p.DATAO)
	binary.LittleEndian.PutUint32(b[8:], p.DATAL)
}

func (p *C2HData) decode(b []byte, flags uint8) {
	p.Last = flags&FlagLastPDU != 0
	p.Success = flags&FlagSuccess != 0
	p.CCCID = binary.LittleEndian.Uint16(b[0:])
	p.DATAO = binary.LittleEndian.Uint32(b[4:])
	p.DATAL = binary.LittleEndian.Uint32(b[8:])
}

// R2T asks the host for R2TL bytes of write data from offset R2TO.
type R2T struct {
	CCCID uint16
	TTAG  uint16
	R2TO  uint32
	R2TL  uint32
}

// Type implements PDU.
func (*R2T) Type() PDUType { return TypeR2T }
func (*R2T) flags() uint8  { return 0 }

func (p *R2T) put(b []byte) {
	binary.LittleEndian.PutUint16(b[0:], p.CCCID)
	binary.LittleEndian.PutUint16(b[2:], p.TTAG)
	binary.LittleEndian.PutUint32(b[4:], p.R2TO)
	binary.LittleEndian.PutUint32(b[8:], p.R2TL)
}

func (p *R2T) decode(b []byte, _ uint8) {
	p.CCCID = binary.LittleEndian.Uint16(b[0:])
	p.TTAG = binary.LittleEndian.Uint16(b[2:])
	p.R2TO = binary.LittleEndian.Uint32(b[4:])
	p.R2TL = binary.LittleEndian.Uint32(b[8:])
}
