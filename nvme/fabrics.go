package nvme

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ConnectDataSize is the size of the Connect command's data.
const ConnectDataSize = 1024

// Connect command and data field offsets (NVMe-oF 1.1 figures 19 and 20),
// for ConnectInvalidParam: the SQE offsets with inData false, the data
// offsets with inData true.
const (
	ConnectOffRECFMT = 40
	ConnectOffQID    = 42
	ConnectOffSQSIZE = 44
	ConnectOffCATTR  = 46
	ConnectOffKATO   = 48

	ConnectDataOffHOSTID  = 0
	ConnectDataOffCNTLID  = 16
	ConnectDataOffSUBNQN  = 256
	ConnectDataOffHOSTNQN = 512
)

// Connect attributes and response bits.
const (
	// CATTRDisableSQFlow asks to disable SQ flow control (CATTR bit 2).
	CATTRDisableSQFlow = 1 << 2

	// CNTLIDDynamic in the Connect data asks for any controller of a
	// dynamic controller subsystem (admin queue Connect).
	CNTLIDDynamic = 0xFFFF
	// CNTLIDStatic asks for any controller of a static subsystem.
	CNTLIDStatic = 0xFFFE

	// Connect response DW0: CNTLID in bits 15:0, AUTHREQ bits.
	ConnectAuthReqATR  = 1 << 17 // authentication transaction required
	ConnectAuthReqASCR = 1 << 18 // secure channel concatenation required
)

// ConnectData is the 1024-byte data of a Connect command, laid out as the
// Linux kernel's struct nvmf_connect_data.
type ConnectData struct {
	HostID  [16]byte // 0
	CNTLID  uint16   // 16
	SubNQN  string   // 256, 256 bytes, NUL padded
	HostNQN string   // 512, 256 bytes, NUL padded
}

// Put encodes d into the first 1024 bytes of b.
func (d *ConnectData) Put(b []byte) {
	b = b[:ConnectDataSize]
	copy(b[0:16], d.HostID[:])
	binary.LittleEndian.PutUint16(b[16:], d.CNTLID)
	clear(b[18:256])
	putNUL(b[256:512], d.SubNQN)
	putNUL(b[512:768], d.HostNQN)
	clear(b[768:])
}

// Append appends the 1024-byte encoding of d to b.
func (d *ConnectData) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, ConnectDataSize)
	d.Put(b[n:])
	return b
}

// Decode decodes d from the first 1024 bytes of b.
func (d *ConnectData) Decode(b []byte) error {
	if len(b) < ConnectDataSize {
		return ErrShort
	}
	copy(d.HostID[:], b[0:16])
	d.CNTLID = binary.LittleEndian.Uint16(b[16:])
	d.SubNQN = getNUL(b[256:512])
	d.HostNQN = getNUL(b[512:768])
	return nil
}

// Connect holds the command-specific fields of a Fabrics Connect command.
type Connect struct {
	RECFMT uint16 // bytes 40-41, record format, 0
	QID    uint16 // bytes 42-43, 0 for the admin queue
	SQSIZE uint16 // bytes 44-45, 0's based
	CATTR  uint8  // byte 46
	KATO   uint32 // bytes 48-51, keep alive timeout in ms (admin queue)
}

// SQE builds the Connect submission queue entry as the Linux NVMe/TCP host
// sends it: opcode 7Fh, FCTYPE 01h, PSDT SGL, and a Data Block descriptor
// with the Offset subtype for 1024 bytes of in-capsule data at offset 0.
func (c *Connect) SQE(cid uint16) SQE {
	s := fabricsCmd(cid, FabricsConnect)
	s.DPTR = SGLDescriptor{Addr: 0, Length: ConnectDataSize, Type: SGLDataBlockOffset}
	s.CDW10 = uint32(c.RECFMT) | uint32(c.QID)<<16
	s.CDW11 = uint32(c.SQSIZE) | uint32(c.CATTR)<<16
	s.CDW12 = c.KATO
	return s
}

// DecodeConnect extracts the Connect fields from s. It does not check the
// opcode or FCTYPE.
func DecodeConnect(s *SQE) Connect {
	return Connect{
		RECFMT: uint16(s.CDW10),
		QID:    uint16(s.CDW10 >> 16),
		SQSIZE: uint16(s.CDW11),
		CATTR:  uint8(s.CDW11 >> 16),
		KATO:   s.CDW12,
	}
}

// ConnectInvalidParam encodes completion DW0 for the Connect Invalid
// Parameters status (SCT 1h, SC 82h), as nvmet's IPO_IATTR_CONNECT_DATA and
// IPO_IATTR_CONNECT_SQE do: the byte offset of the offending field in bits
// 15:0 (IPO) and bit 16 (IATTR bit 0) set when that offset is in the
// Connect data rather than the SQE.
func ConnectInvalidParam(inData bool, offset uint16) uint32 {
	v := uint32(offset)
	if inData {
		v |= 1 << 16
	}
	return v
}

// DecodeConnectInvalidParam decodes ConnectInvalidParam's encoding.
func DecodeConnectInvalidParam(dw0 uint32) (inData bool, offset uint16) {
	return dw0&(1<<16) != 0, uint16(dw0)
}

// ConnectRefusedAtCNTLID reports whether a Connect completed (cqe, err)
// with Connect Invalid Parameters at the CNTLID of its data: what a
// static-model subsystem answers to FFFFh (any dynamic controller), so a
// host asks again with CNTLIDStatic (NVMe Base 2.2 6.3).
func ConnectRefusedAtCNTLID(cqe CQE, err error) bool {
	var st Status
	if !errors.As(err, &st) || st.Code() != StatusConnectInvalidParameters {
		return false
	}
	in, off := DecodeConnectInvalidParam(cqe.DW0)
	return in && off == ConnectDataOffCNTLID
}

// Property Get/Set ATTRIB values (CDW10 bits 2:0).
const (
	PropertySize4 = 0
	PropertySize8 = 1
)

// PropertyGetCmd builds a Fabrics Property Get: ATTRIB (byte 40) 1 for an
// 8-byte property, OFST in CDW11. The value comes back in CQE DW0 (and
// DW1 for 8 bytes); see PropertyValue.
func PropertyGetCmd(cid uint16, offset uint32, size8 bool) SQE {
	s := fabricsCmd(cid, FabricsPropertyGet)
	if size8 {
		s.CDW10 = PropertySize8
	}
	s.CDW11 = offset
	return s
}

// PropertySetCmd builds a Fabrics Property Set: ATTRIB as for Property Get,
// OFST in CDW11 and VALUE in bytes 48-55 (CDW12 low, CDW13 high).
func PropertySetCmd(cid uint16, offset uint32, size8 bool, value uint64) SQE {
	s := fabricsCmd(cid, FabricsPropertySet)
	if size8 {
		s.CDW10 = PropertySize8
	}
	s.CDW11 = offset
	s.CDW12 = uint32(value)
	s.CDW13 = uint32(value >> 32)
	return s
}

// DecodeProperty extracts the fields of a Property Get or Set command;
// value is meaningful for Property Set only. size8 reflects ATTRIB bits
// 2:0 being 1; other ATTRIB values (reserved) read as false.
func DecodeProperty(s *SQE) (offset uint32, size8 bool, value uint64) {
	return s.CDW11, s.CDW10&7 == PropertySize8, uint64(s.CDW13)<<32 | uint64(s.CDW12)
}

// PropertyValue returns a Property Get result: DW0 low, DW1 high.
func PropertyValue(c *CQE) uint64 { return uint64(c.DW1)<<32 | uint64(c.DW0) }

// SetPropertyValue stores a Property Get result in DW0 and DW1.
func SetPropertyValue(c *CQE, v uint64) {
	c.DW0 = uint32(v)
	c.DW1 = uint32(v >> 32)
}

// DisconnectCmd builds a Fabrics Disconnect command (FCTYPE 08h), which
// deletes the I/O queue it is sent on.
func DisconnectCmd(cid uint16) SQE { return fabricsCmd(cid, FabricsDisconnect) }

// fabricsCmd returns a fabrics command with no data, encoded as the Linux
// TCP host does: PSDT SGL and a null transport SGL data block.
func fabricsCmd(cid uint16, fctype uint8) SQE {
	s := dataCmd(AdminFabrics, uint32(fctype), 0)
	s.CID = cid
	return s
}

// CAP is the Controller Capabilities property (offset 00h, 8 bytes).
type CAP uint64

// CAP bits that have no accessor arguments.
const (
	CAPCQR   CAP = 1 << 16 // contiguous queues required
	CAPNSSRS CAP = 1 << 36 // NVM subsystem reset supported

	// CAP.CSS bits (command sets supported), as passed to MakeCAP.
	CSSNVM       = 1 << 0
	CSSIOCS      = 1 << 6 // one or more I/O command sets
	CSSAdminOnly = 1 << 7 // no I/O command set
)

// MakeCAP builds a CAP value: MQES (0's based maximum queue entries) in
// bits 15:0, TO (500 ms units) in bits 31:24, CSS in bits 44:37. Other
// fields (CQR, DSTRD, MPSMIN/MPSMAX ...) are zero; OR them in as needed.
func MakeCAP(mqes uint16, to uint8, css uint8) CAP {
	return CAP(mqes) | CAP(to)<<24 | CAP(css)<<37
}

// MQES returns the maximum queue entries supported, 0's based.
func (c CAP) MQES() uint16 { return uint16(c) }

// CQR reports contiguous queues required.
func (c CAP) CQR() bool { return c&CAPCQR != 0 }

// AMS returns the arbitration mechanisms supported (bits 18:17).
func (c CAP) AMS() uint8 { return uint8(c>>17) & 3 }

// TO returns the worst-case ready timeout in 500 ms units.
func (c CAP) TO() uint8 { return uint8(c >> 24) }

// DSTRD returns the doorbell stride (bits 35:32).
func (c CAP) DSTRD() uint8 { return uint8(c>>32) & 0xF }

// NSSRS reports NVM subsystem reset support.
func (c CAP) NSSRS() bool { return c&CAPNSSRS != 0 }

// CSS returns the command sets supported (bits 44:37).
func (c CAP) CSS() uint8 { return uint8(c >> 37) }

// MPSMIN returns the minimum memory page size as 2^(12+MPSMIN).
func (c CAP) MPSMIN() uint8 { return uint8(c>>48) & 0xF }

// MPSMAX returns the maximum memory page size as 2^(12+MPSMAX).
func (c CAP) MPSMAX() uint8 { return uint8(c>>52) & 0xF }

// MakeVersion builds a VS property / Identify VER value.
func MakeVersion(major uint16, minor, tertiary uint8) uint32 {
	return uint32(major)<<16 | uint32(minor)<<8 | uint32(tertiary)
}

// VersionString formats a version as "major.minor", adding ".tertiary"
// when it is not zero (nvme-cli style: "1.3", "2.0.1").
func VersionString(v uint32) string {
	if t := v & 0xFF; t != 0 {
		return fmt.Sprintf("%d.%d.%d", v>>16, (v>>8)&0xFF, t)
	}
	return fmt.Sprintf("%d.%d", v>>16, (v>>8)&0xFF)
}
