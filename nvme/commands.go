package nvme

import (
	"encoding/binary"
	"fmt"
)

// Command builders. Every builder returns an SQE as the Linux NVMe/TCP host
// encodes it: PSDT set to SGL (Flags 0x40) and DPTR a Transport SGL Data
// Block descriptor (type 5Ah, address 0) whose length is the data the
// command moves, 0 when it moves none. The CID is left 0 unless it is an
// argument. Builders for commands whose data length depends on the
// namespace (Read, Write, Compare) leave the length 0: set it with
// SetDataLength, or SetInCapsule to send write data in the capsule.

// Read/write-class command bits (CDW12).
const (
	RWFUA        = 1 << 30 // force unit access
	RWLR         = 1 << 31 // limited retry
	WZDeallocate = 1 << 25 // Write Zeroes DEAC
)

// Dataset Management attributes (CDW11).
const (
	DSMIDR = 1 << 0 // integral dataset for read
	DSMIDW = 1 << 1 // integral dataset for write
	DSMAD  = 1 << 2 // deallocate
)

// DSMRangeSize is the size of one Dataset Management range.
const DSMRangeSize = 16

// dataCmd returns an SQE with the given opcode and NSID, PSDT SGL and a
// transport SGL data block of length bytes.
func dataCmd(opc uint8, nsid uint32, length uint32) SQE {
	return SQE{
		Opcode: opc,
		Flags:  PSDTSGL,
		NSID:   nsid,
		DPTR:   SGLDescriptor{Length: length, Type: SGLTransportDataBlock},
	}
}

// SetDataLength sets PSDT to SGL and DPTR to a Transport SGL Data Block of
// n bytes, the data moving by C2HData or R2T/H2CData.
func SetDataLength(s *SQE, n uint32) {
	s.Flags = s.Flags&^PSDTMask | PSDTSGL
	s.DPTR = SGLDescriptor{Length: n, Type: SGLTransportDataBlock}
}

// SetInCapsule sets PSDT to SGL and DPTR to a Data Block descriptor with
// the Offset subtype: n bytes of in-capsule data at offset 0 (the Linux
// host uses Identify ICDOFF, which nvmet reports as 0).
func SetInCapsule(s *SQE, n uint32) {
	s.Flags = s.Flags&^PSDTMask | PSDTSGL
	s.DPTR = SGLDescriptor{Length: n, Type: SGLDataBlockOffset}
}

// DataLength returns the data length the command's SGL describes.
func DataLength(s *SQE) uint32 { return s.DPTR.Length }

// IdentifyCmd builds an Identify command: CNS in CDW10 bits 7:0, CNTID in
// bits 31:16, 4096 bytes of data.
func IdentifyCmd(cns uint8, nsid uint32, cntid uint16) SQE {
	s := dataCmd(AdminIdentify, nsid, IdentifyDataSize)
	s.CDW10 = uint32(cns) | uint32(cntid)<<16
	return s
}

// IdentifyCNS returns the CNS of an Identify command.
func IdentifyCNS(s *SQE) uint8 { return uint8(s.CDW10) }

// IdentifyCNTID returns the CNTID of an Identify command.
func IdentifyCNTID(s *SQE) uint16 { return uint16(s.CDW10 >> 16) }

// rwCmd builds a read/write-class command: SLBA in CDW10-11 and the 0's
// based NLB in CDW12 bits 15:0.
func rwCmd(opc uint8, nsid uint32, slba uint64, nlb uint32) SQE {
	s := dataCmd(opc, nsid, 0)
	s.CDW10 = uint32(slba)
	s.CDW11 = uint32(slba >> 32)
	s.CDW12 = (nlb - 1) & 0xFFFF
	return s
}

// ReadCmd builds a Read of nlb blocks (a count, 1-65536, encoded 0's
// based) at slba. Set the data length with SetDataLength.
func ReadCmd(nsid uint32, slba uint64, nlb uint32) SQE { return rwCmd(CmdRead, nsid, slba, nlb) }

// WriteCmd builds a Write of nlb blocks at slba; see ReadCmd, SetFUA and
// SetInCapsule.
func WriteCmd(nsid uint32, slba uint64, nlb uint32) SQE { return rwCmd(CmdWrite, nsid, slba, nlb) }

// CompareCmd builds a Compare of nlb blocks at slba; the host sends the
// data to compare as with a Write.
func CompareCmd(nsid uint32, slba uint64, nlb uint32) SQE {
	return rwCmd(CmdCompare, nsid, slba, nlb)
}

// SetFUA sets the Force Unit Access bit of a read/write-class command.
func SetFUA(s *SQE) { s.CDW12 |= RWFUA }

// WriteZeroesCmd builds a Write Zeroes of nlb blocks at slba, with DEAC
// (CDW12 bit 25) when deallocate is set. It moves no data.
func WriteZeroesCmd(nsid uint32, slba uint64, nlb uint32, deallocate bool) SQE {
	s := rwCmd(CmdWriteZeroes, nsid, slba, nlb)
	if deallocate {
		s.CDW12 |= WZDeallocate
	}
	return s
}

// FlushCmd builds a Flush of nsid (0xFFFFFFFF for all namespaces).
func FlushCmd(nsid uint32) SQE { return dataCmd(CmdFlush, nsid, 0) }

// DSMCmd builds a Dataset Management command over nr ranges (1-256; NR in
// CDW10 bits 7:0 is 0's based), with AD (CDW11 bit 2) when deallocate is
// set. The data is nr DSMRange structures, 16 bytes each.
func DSMCmd(nsid uint32, nr int, deallocate bool) SQE {
	var n uint32
	if nr > 0 {
		n = uint32(nr) * DSMRangeSize
	}
	s := dataCmd(CmdDSM, nsid, n)
	s.CDW10 = uint32(nr-1) & 0xFF
	if deallocate {
		s.CDW11 = DSMAD
	}
	return s
}

// DSMRange is one Dataset Management range: NLB is a count (not 0's
// based).
type DSMRange struct {
	CATTR uint32 // 0, context attributes
	NLB   uint32 // 4
	SLBA  uint64 // 8
}

// Put encodes r into the first 16 bytes of b.
func (r *DSMRange) Put(b []byte) {
	b = b[:DSMRangeSize]
	binary.LittleEndian.PutUint32(b[0:], r.CATTR)
	binary.LittleEndian.PutUint32(b[4:], r.NLB)
	binary.LittleEndian.PutUint64(b[8:], r.SLBA)
}

// Append appends the 16-byte encoding of r to b.
func (r *DSMRange) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, DSMRangeSize)
	r.Put(b[n:])
	return b
}

// Decode decodes r from the first 16 bytes of b.
func (r *DSMRange) Decode(b []byte) error {
	if len(b) < DSMRangeSize {
		return ErrShort
	}
	r.CATTR = binary.LittleEndian.Uint32(b[0:])
	r.NLB = binary.LittleEndian.Uint32(b[4:])
	r.SLBA = binary.LittleEndian.Uint64(b[8:])
	return nil
}

// KeepAliveCmd builds a Keep Alive command.
func KeepAliveCmd() SQE { return dataCmd(AdminKeepAlive, 0, 0) }

// AsyncEventRequestCmd builds an Asynchronous Event Request.
func AsyncEventRequestCmd() SQE { return dataCmd(AdminAsyncEventReq, 0, 0) }

// AbortCmd builds an Abort of command cid on submission queue sqid (CDW10:
// SQID bits 15:0, CID bits 31:16).
func AbortCmd(sqid, cid uint16) SQE {
	s := dataCmd(AdminAbort, 0, 0)
	s.CDW10 = uint32(sqid) | uint32(cid)<<16
	return s
}

// IsDataOut reports whether an opcode moves data from host to controller
// (opcode bit 0). Fabrics commands (7Fh) set both bits; see IsWrite.
func IsDataOut(opc uint8) bool { return opc&1 != 0 }

// IsDataIn reports whether an opcode moves data from controller to host
// (opcode bit 1).
func IsDataIn(opc uint8) bool { return opc&2 != 0 }

// IsWrite reports whether a command sends data to the controller, taking
// the direction of a fabrics command from FCTYPE bit 0 as the Linux kernel
// does (nvme_is_write).
func IsWrite(s *SQE) bool {
	if s.Opcode == AdminFabrics {
		return s.FCType()&1 != 0
	}
	return IsDataOut(s.Opcode)
}

// OpcodeName names an admin (admin true) or NVM I/O opcode for people.
// Unknown opcodes are shown in hex.
func OpcodeName(admin bool, opc uint8) string {
	if opc == AdminFabrics {
		return "Fabrics Command"
	}
	if admin {
		switch opc {
		case AdminDeleteIOSQ:
			return "Delete I/O Submission Queue"
		case AdminCreateIOSQ:
			return "Create I/O Submission Queue"
		case AdminGetLogPage:
			return "Get Log Page"
		case AdminDeleteIOCQ:
			return "Delete I/O Completion Queue"
		case AdminCreateIOCQ:
			return "Create I/O Completion Queue"
		case AdminIdentify:
			return "Identify"
		case AdminAbort:
			return "Abort"
		case AdminSetFeatures:
			return "Set Features"
		case AdminGetFeatures:
			return "Get Features"
		case AdminAsyncEventReq:
			return "Asynchronous Event Request"
		case AdminNSManagement:
			return "Namespace Management"
		case AdminFirmwareCommit:
			return "Firmware Commit"
		case AdminFirmwareDownload:
			return "Firmware Image Download"
		case 0x14:
			return "Device Self-test"
		case AdminNSAttachment:
			return "Namespace Attachment"
		case AdminKeepAlive:
			return "Keep Alive"
		case 0x19:
			return "Directive Send"
		case 0x1A:
			return "Directive Receive"
		case 0x1C:
			return "Virtualization Management"
		case 0x1D:
			return "NVMe-MI Send"
		case 0x1E:
			return "NVMe-MI Receive"
		case 0x7C:
			return "Doorbell Buffer Config"
		case 0x80:
			return "Format NVM"
		case 0x81:
			return "Security Send"
		case 0x82:
			return "Security Receive"
		case 0x84:
			return "Sanitize"
		case 0x86:
			return "Get LBA Status"
		}
		if opc >= 0xC0 {
			return fmt.Sprintf("Vendor Specific (0x%02X)", opc)
		}
		return fmt.Sprintf("Unknown Admin Command (0x%02X)", opc)
	}
	switch opc {
	case CmdFlush:
		return "Flush"
	case CmdWrite:
		return "Write"
	case CmdRead:
		return "Read"
	case 0x04:
		return "Write Uncorrectable"
	case CmdCompare:
		return "Compare"
	case CmdWriteZeroes:
		return "Write Zeroes"
	case CmdDSM:
		return "Dataset Management"
	case 0x0C:
		return "Verify"
	case 0x0D:
		return "Reservation Register"
	case 0x0E:
		return "Reservation Report"
	case 0x11:
		return "Reservation Acquire"
	case 0x15:
		return "Reservation Release"
	case 0x19:
		return "Copy"
	case 0x79:
		return "Zone Management Send"
	case 0x7A:
		return "Zone Management Receive"
	case 0x7D:
		return "Zone Append"
	}
	if opc >= 0x80 {
		return fmt.Sprintf("Vendor Specific (0x%02X)", opc)
	}
	return fmt.Sprintf("Unknown I/O Command (0x%02X)", opc)
}

// FabricsTypeName names a fabrics command type (FCTYPE).
func FabricsTypeName(fctype uint8) string {
	switch fctype {
	case FabricsPropertySet:
		return "Property Set"
	case FabricsConnect:
		return "Connect"
	case FabricsPropertyGet:
		return "Property Get"
	case FabricsAuthSend:
		return "Authentication Send"
	case FabricsAuthReceive:
		return "Authentication Receive"
	case FabricsDisconnect:
		return "Disconnect"
	}
	return fmt.Sprintf("Unknown Fabrics Command (0x%02X)", fctype)
}

// CommandName names the command in s: OpcodeName, or FabricsTypeName for
// a fabrics command.
func CommandName(admin bool, s *SQE) string {
	if s.Opcode == AdminFabrics {
		return FabricsTypeName(s.FCType())
	}
	return OpcodeName(admin, s.Opcode)
}
