// Package nvme encodes and decodes the transport-independent parts of NVMe
// and NVMe over Fabrics: submission and completion queue entries, opcodes,
// status codes, Identify data, log pages, features, and the fabrics
// commands (Connect, Property Get/Set, Disconnect).
//
// Everything here is pure: no I/O, no goroutines, and the fixed-size
// structures encode into and decode from caller-provided byte slices without
// allocating. Field names follow the NVMe Base Specification 2.0 and the
// NVMe over Fabrics Specification 1.1 so that a reader can look them up.
package nvme

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SQESize and CQESize are the sizes of queue entries on every transport.
const (
	SQESize = 64
	CQESize = 16
)

// ErrShort is returned when a buffer is shorter than the structure decoded
// from it.
var ErrShort = errors.New("nvme: buffer too short")

// SGL descriptor type byte (type in bits 7:4, subtype in bits 3:0) as used
// by NVMe/TCP.
const (
	// SGLDataBlockOffset is a Data Block descriptor with the Offset subtype:
	// the data is in the command capsule (in-capsule data).
	SGLDataBlockOffset = 0x01
	// SGLTransportDataBlock is a Transport SGL Data Block descriptor with
	// subtype 0xA: the transport moves the data (R2T/H2CData, C2HData).
	SGLTransportDataBlock = 0x5A
)

// SGLDescriptor is a 16-byte scatter gather list descriptor (DPTR).
type SGLDescriptor struct {
	Addr   uint64 // for in-capsule data: offset into the capsule's data
	Length uint32
	Type   uint8 // SGLDataBlockOffset or SGLTransportDataBlock on TCP
}

// SQE flag bits (command dword 0, byte 1).
const (
	FuseFirst  = 0x01 // first command of a fused operation
	FuseSecond = 0x02 // second command of a fused operation
	FuseMask   = 0x03
	PSDTSGL    = 0x40 // PSDT = 01b: SGLs for data transfer (required on fabrics)
	PSDTMask   = 0xC0
)

// SQE is a submission queue entry. For fabrics commands (Opcode 0x7F) the
// byte at offset 4 is the fabrics command type: see FCType.
type SQE struct {
	Opcode uint8
	Flags  uint8 // FUSE bits 1:0, PSDT bits 7:6
	CID    uint16
	NSID   uint32 // for fabrics commands, the low byte is FCTYPE
	CDW2   uint32
	CDW3   uint32
	MPTR   uint64
	DPTR   SGLDescriptor
	CDW10  uint32
	CDW11  uint32
	CDW12  uint32
	CDW13  uint32
	CDW14  uint32
	CDW15  uint32
}

// FCType returns the fabrics command type of a fabrics command.
func (s *SQE) FCType() uint8 { return uint8(s.NSID) }

// Fuse returns the fused-operation bits.
func (s *SQE) Fuse() uint8 { return s.Flags & FuseMask }

// Put encodes s into the first 64 bytes of b, which must be at least
// SQESize long. Reserved bytes are zeroed.
func (s *SQE) Put(b []byte) {
	_ = b[63]
	b[0] = s.Opcode
	b[1] = s.Flags
	binary.LittleEndian.PutUint16(b[2:], s.CID)
	binary.LittleEndian.PutUint32(b[4:], s.NSID)
	binary.LittleEndian.PutUint32(b[8:], s.CDW2)
	binary.LittleEndian.PutUint32(b[12:], s.CDW3)
	binary.LittleEndian.PutUint64(b[16:], s.MPTR)
	binary.LittleEndian.PutUint64(b[24:], s.DPTR.Addr)
	binary.LittleEndian.PutUint32(b[32:], s.DPTR.Length)
	b[36], b[37], b[38] = 0, 0, 0
	b[39] = s.DPTR.Type
	binary.LittleEndian.PutUint32(b[40:], s.CDW10)
	binary.LittleEndian.PutUint32(b[44:], s.CDW11)
	binary.LittleEndian.PutUint32(b[48:], s.CDW12)
	binary.LittleEndian.PutUint32(b[52:], s.CDW13)
	binary.LittleEndian.PutUint32(b[56:], s.CDW14)
	binary.LittleEndian.PutUint32(b[60:], s.CDW15)
}

// Append appends the 64-byte encoding of s to b.
func (s *SQE) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, SQESize)
	s.Put(b[n:])
	return b
}

// Decode decodes s from the first 64 bytes of b.
func (s *SQE) Decode(b []byte) error {
	if len(b) < SQESize {
		return ErrShort
	}
	s.Opcode = b[0]
	s.Flags = b[1]
	s.CID = binary.LittleEndian.Uint16(b[2:])
	s.NSID = binary.LittleEndian.Uint32(b[4:])
	s.CDW2 = binary.LittleEndian.Uint32(b[8:])
	s.CDW3 = binary.LittleEndian.Uint32(b[12:])
	s.MPTR = binary.LittleEndian.Uint64(b[16:])
	s.DPTR.Addr = binary.LittleEndian.Uint64(b[24:])
	s.DPTR.Length = binary.LittleEndian.Uint32(b[32:])
	s.DPTR.Type = b[39]
	s.CDW10 = binary.LittleEndian.Uint32(b[40:])
	s.CDW11 = binary.LittleEndian.Uint32(b[44:])
	s.CDW12 = binary.LittleEndian.Uint32(b[48:])
	s.CDW13 = binary.LittleEndian.Uint32(b[52:])
	s.CDW14 = binary.LittleEndian.Uint32(b[56:])
	s.CDW15 = binary.LittleEndian.Uint32(b[60:])
	return nil
}

// SLBA returns the starting LBA of an NVM read/write-class command
// (CDW10-11).
func (s *SQE) SLBA() uint64 { return uint64(s.CDW11)<<32 | uint64(s.CDW10) }

// NLB returns the number of logical blocks of an NVM read/write-class
// command; CDW12 bits 15:0 hold it 0's based.
func (s *SQE) NLB() uint32 { return s.CDW12&0xFFFF + 1 }

// FUA reports whether the Force Unit Access bit (CDW12 bit 30) is set.
func (s *SQE) FUA() bool { return s.CDW12&(1<<30) != 0 }

// String formats the fields a person needs to identify the command.
func (s *SQE) String() string {
	return fmt.Sprintf("opc=%#02x flags=%#02x cid=%d nsid=%d cdw10=%#x cdw11=%#x cdw12=%#x",
		s.Opcode, s.Flags, s.CID, s.NSID, s.CDW10, s.CDW11, s.CDW12)
}

// CQE is a completion queue entry.
type CQE struct {
	DW0    uint32 // command specific result
	DW1    uint32
	SQHD   uint16
	SQID   uint16
	CID    uint16
	Status Status // status field without the phase tag
	Phase  bool   // phase tag; unused by fabrics, kept for round trips
}

// Put encodes c into the first 16 bytes of b.
func (c *CQE) Put(b []byte) {
	_ = b[15]
	binary.LittleEndian.PutUint32(b[0:], c.DW0)
	binary.LittleEndian.PutUint32(b[4:], c.DW1)
	binary.LittleEndian.PutUint16(b[8:], c.SQHD)
	binary.LittleEndian.PutUint16(b[10:], c.SQID)
	binary.LittleEndian.PutUint16(b[12:], c.CID)
	sf := uint16(c.Status) << 1
	if c.Phase {
		sf |= 1
	}
	binary.LittleEndian.PutUint16(b[14:], sf)
}

// Append appends the 16-byte encoding of c to b.
func (c *CQE) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, CQESize)
	c.Put(b[n:])
	return b
}

// Decode decodes c from the first 16 bytes of b.
func (c *CQE) Decode(b []byte) error {
	if len(b) < CQESize {
		return ErrShort
	}
	c.DW0 = binary.LittleEndian.Uint32(b[0:])
	c.DW1 = binary.LittleEndian.Uint32(b[4:])
	c.SQHD = binary.LittleEndian.Uint16(b[8:])
	c.SQID = binary.LittleEndian.Uint16(b[10:])
	c.CID = binary.LittleEndian.Uint16(b[12:])
	sf := binary.LittleEndian.Uint16(b[14:])
	c.Status = Status(sf >> 1)
	c.Phase = sf&1 != 0
	return nil
}

// grow extends b by n bytes, reusing capacity when there is enough.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}
