package nvme

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Get Log Page command fields (NVMe Base 2.0, figures 197-199).
const (
	// GetLogPageRAE is the Retain Asynchronous Event bit in CDW10.
	GetLogPageRAE = 1 << 15
	// ANALogRGO is the Return Groups Only bit of the ANA log's LSP.
	ANALogRGO = 1 << 0
)

// GetLogPageCmd builds a Get Log Page command for length bytes of log page
// lid starting at byte offset. length is rounded up to whole dwords and
// encoded as NUMD (0's based, NUMDL in CDW10 bits 31:16, NUMDU in CDW11
// bits 15:0); a length of 0 is sent as one dword. LSP goes to CDW10 bits
// 14:8, the offset to LPOL/LPOU (CDW12/13). The data pointer is a transport
// SGL data block of the rounded length; see SetRAE for the RAE bit.
func GetLogPageCmd(lid uint8, nsid uint32, lsp uint8, offset uint64, length uint32) SQE {
	numd := uint32(0)
	if length > 0 {
		numd = uint32((uint64(length)+3)/4 - 1)
	}
	s := dataCmd(AdminGetLogPage, nsid, uint32(min(uint64(numd+1)*4, math.MaxUint32)))
	s.CDW10 = uint32(lid) | uint32(lsp&0x7F)<<8 | numd<<16
	s.CDW11 = numd >> 16
	s.CDW12 = uint32(offset)
	s.CDW13 = uint32(offset >> 32)
	return s
}

// SetRAE sets the Retain Asynchronous Event bit of a Get Log Page command.
func SetRAE(s *SQE) { s.CDW10 |= GetLogPageRAE }

// LogPageRAE reports the Retain Asynchronous Event bit of a Get Log Page
// command.
func LogPageRAE(s *SQE) bool { return s.CDW10&GetLogPageRAE != 0 }

// LogPageLID returns the log page identifier of a Get Log Page command.
func LogPageLID(s *SQE) uint8 { return uint8(s.CDW10) }

// LogPageLSP returns the log specific parameter (CDW10 bits 14:8).
func LogPageLSP(s *SQE) uint8 { return uint8(s.CDW10>>8) & 0x7F }

// LogPageNUMD returns the 0's based number of dwords requested.
func LogPageNUMD(s *SQE) uint32 { return s.CDW10>>16 | (s.CDW11&0xFFFF)<<16 }

// LogPageLength returns the number of bytes a Get Log Page command asks
// for, (NUMD+1)*4, saturated at math.MaxUint32.
func LogPageLength(s *SQE) uint32 {
	return uint32(min((uint64(LogPageNUMD(s))+1)*4, math.MaxUint32))
}

// LogPageOffset returns the byte offset into the log page (LPOU:LPOL).
func LogPageOffset(s *SQE) uint64 { return uint64(s.CDW13)<<32 | uint64(s.CDW12) }

// LogPageLSI returns the log specific identifier (CDW11 bits 31:16).
func LogPageLSI(s *SQE) uint16 { return uint16(s.CDW11 >> 16) }

// LogPageCSI returns the command set identifier (CDW14 bits 31:24).
func LogPageCSI(s *SQE) uint8 { return uint8(s.CDW14 >> 24) }

// ErrorLogEntrySize is the size of one Error Information log entry.
const ErrorLogEntrySize = 64

// ErrorLogEntry is one entry of the Error Information log page (LID 01h,
// NVMe Base 2.0 figure 206).
type ErrorLogEntry struct {
	ErrorCount         uint64 // 0
	SQID               uint16 // 8
	CID                uint16 // 10
	Status             Status // 12, encoded as the status field: bits 15:1, phase bit 0 clear
	ParamErrorLocation uint16 // 14
	LBA                uint64 // 16
	NSID               uint32 // 24
	VSIA               uint8  // 28, vendor specific information available
	TRTYPE             uint8  // 29
	CSI                uint8  // 30
	Opcode             uint8  // 31 (NVMe 2.1)
	CommandSpecific    uint64 // 32
	TTSI               uint16 // 40, transport type specific information
	LogPageVersion     uint8  // 63 (NVMe 2.1)
}

// Put encodes e into the first 64 bytes of b.
func (e *ErrorLogEntry) Put(b []byte) {
	b = b[:ErrorLogEntrySize]
	le := binary.LittleEndian
	le.PutUint64(b[0:], e.ErrorCount)
	le.PutUint16(b[8:], e.SQID)
	le.PutUint16(b[10:], e.CID)
	le.PutUint16(b[12:], uint16(e.Status)<<1)
	le.PutUint16(b[14:], e.ParamErrorLocation)
	le.PutUint64(b[16:], e.LBA)
	le.PutUint32(b[24:], e.NSID)
	b[28] = e.VSIA
	b[29] = e.TRTYPE
	b[30] = e.CSI
	b[31] = e.Opcode
	le.PutUint64(b[32:], e.CommandSpecific)
	le.PutUint16(b[40:], e.TTSI)
	clear(b[42:63])
	b[63] = e.LogPageVersion
}

// Append appends the 64-byte encoding of e to b.
func (e *ErrorLogEntry) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, ErrorLogEntrySize)
	e.Put(b[n:])
	return b
}

// Decode decodes e from the first 64 bytes of b.
func (e *ErrorLogEntry) Decode(b []byte) error {
	if len(b) < ErrorLogEntrySize {
		return ErrShort
	}
	le := binary.LittleEndian
	e.ErrorCount = le.Uint64(b[0:])
	e.SQID = le.Uint16(b[8:])
	e.CID = le.Uint16(b[10:])
	e.Status = Status(le.Uint16(b[12:]) >> 1)
	e.ParamErrorLocation = le.Uint16(b[14:])
	e.LBA = le.Uint64(b[16:])
	e.NSID = le.Uint32(b[24:])
	e.VSIA = b[28]
	e.TRTYPE = b[29]
	e.CSI = b[30]
	e.Opcode = b[31]
	e.CommandSpecific = le.Uint64(b[32:])
	e.TTSI = le.Uint16(b[40:])
	e.LogPageVersion = b[63]
	return nil
}

// SMARTLogSize is the size of the SMART / Health Information log page.
const SMARTLogSize = 512

// Critical warning bits of the SMART log.
const (
	SMARTCritSpare       = 1 << 0
	SMARTCritTemperature = 1 << 1
	SMARTCritReliability = 1 << 2
	SMARTCritReadOnly    = 1 << 3
	SMARTCritVolatileMem = 1 << 4
	SMARTCritPMR         = 1 << 5
)

// SMARTLog is the SMART / Health Information log page (LID 02h, NVMe Base
// 2.0 figure 207). The 128-bit counters are kept as uint64: they are
// encoded as 16 bytes with a zero upper half, and a decoded value whose
// upper half is not zero saturates at math.MaxUint64.
type SMARTLog struct {
	CriticalWarning         uint8  // 0
	CompositeTemperature    uint16 // 1, Kelvin
	AvailableSpare          uint8  // 3, percent
	AvailableSpareThreshold uint8  // 4, percent
	PercentageUsed          uint8  // 5
	EnduranceGroupCW        uint8  // 6
	DataUnitsRead           uint64 // 32, thousands of 512-byte units
	DataUnitsWritten        uint64 // 48
	HostReadCommands        uint64 // 64
	HostWriteCommands       uint64 // 80
	ControllerBusyTime      uint64 // 96, minutes
	PowerCycles             uint64 // 112
	PowerOnHours            uint64 // 128
	UnsafeShutdowns         uint64 // 144
	MediaErrors             uint64 // 160
	NumErrLogEntries        uint64 // 176
	WarningTempTime         uint32 // 192, minutes
	CriticalCompTime        uint32 // 196, minutes
	TemperatureSensor       [8]uint16
	TMT1TC, TMT2TC          uint32 // 216, 220: thermal management transition counts
	TTTMT1, TTTMT2          uint32 // 224, 228: total time in thermal management
}

// Put encodes l into the first 512 bytes of b.
func (l *SMARTLog) Put(b []byte) {
	b = b[:SMARTLogSize]
	clear(b)
	le := binary.LittleEndian
	b[0] = l.CriticalWarning
	le.PutUint16(b[1:], l.CompositeTemperature)
	b[3] = l.AvailableSpare
	b[4] = l.AvailableSpareThreshold
	b[5] = l.PercentageUsed
	b[6] = l.EnduranceGroupCW
	for i, v := range l.counters() {
		le.PutUint64(b[32+16*i:], *v)
	}
	le.PutUint32(b[192:], l.WarningTempTime)
	le.PutUint32(b[196:], l.CriticalCompTime)
	for i, t := range l.TemperatureSensor {
		le.PutUint16(b[200+2*i:], t)
	}
	le.PutUint32(b[216:], l.TMT1TC)
	le.PutUint32(b[220:], l.TMT2TC)
	le.PutUint32(b[224:], l.TTTMT1)
	le.PutUint32(b[228:], l.TTTMT2)
}

func (l *SMARTLog) counters() [10]*uint64 {
	return [10]*uint64{&l.DataUnitsRead, &l.DataUnitsWritten, &l.HostReadCommands,
		&l.HostWriteCommands, &l.ControllerBusyTime, &l.PowerCycles, &l.PowerOnHours,
		&l.UnsafeShutdowns, &l.MediaErrors, &l.NumErrLogEntries}
}

// Append appends the 512-byte encoding of l to b.
func (l *SMARTLog) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, SMARTLogSize)
	l.Put(b[n:])
	return b
}

// Decode decodes l from the first 512 bytes of b.
func (l *SMARTLog) Decode(b []byte) error {
	if len(b) < SMARTLogSize {
		return ErrShort
	}
	le := binary.LittleEndian
	l.CriticalWarning = b[0]
	l.CompositeTemperature = le.Uint16(b[1:])
	l.AvailableSpare = b[3]
	l.AvailableSpareThreshold = b[4]
	l.PercentageUsed = b[5]
	l.EnduranceGroupCW = b[6]
	for i, v := range l.counters() {
		o := 32 + 16*i
		*v = le.Uint64(b[o:])
		if le.Uint64(b[o+8:]) != 0 {
			*v = math.MaxUint64
		}
	}
	l.WarningTempTime = le.Uint32(b[192:])
	l.CriticalCompTime = le.Uint32(b[196:])
	for i := range l.TemperatureSensor {
		l.TemperatureSensor[i] = le.Uint16(b[200+2*i:])
	}
	l.TMT1TC = le.Uint32(b[216:])
	l.TMT2TC = le.Uint32(b[220:])
	l.TTTMT1 = le.Uint32(b[224:])
	l.TTTMT2 = le.Uint32(b[228:])
	return nil
}

// FirmwareSlotLogSize is the size of the Firmware Slot Information log.
const FirmwareSlotLogSize = 512

// FirmwareSlotLog is the Firmware Slot Information log page (LID 03h). FRS
// holds the revision in slots 1-7 (FRS[0] is slot 1): 8 ASCII characters,
// space padded; an empty string is encoded as all zeros (no firmware).
type FirmwareSlotLog struct {
	AFI uint8 // active firmware info: slot in bits 2:0, next slot in bits 6:4
	FRS [7]string
}

// Put encodes l into the first 512 bytes of b.
func (l *FirmwareSlotLog) Put(b []byte) {
	b = b[:FirmwareSlotLogSize]
	clear(b)
	b[0] = l.AFI
	for i, s := range l.FRS {
		if s != "" {
			putASCII(b[8+8*i:16+8*i], s)
		}
	}
}

// Append appends the 512-byte encoding of l to b.
func (l *FirmwareSlotLog) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, FirmwareSlotLogSize)
	l.Put(b[n:])
	return b
}

// Decode decodes l from the first 512 bytes of b.
func (l *FirmwareSlotLog) Decode(b []byte) error {
	if len(b) < FirmwareSlotLogSize {
		return ErrShort
	}
	l.AFI = b[0]
	for i := range l.FRS {
		l.FRS[i] = getASCII(b[8+8*i : 16+8*i])
	}
	return nil
}

// ChangedNSListOverflow is the single entry of a Changed Namespace List
// that reports more than 1024 changed namespaces.
const ChangedNSListOverflow = 0xFFFFFFFF

// AppendChangedNSList appends a Changed Namespace List log page (LID 04h):
// 4096 bytes with up to 1024 NSIDs, zero filled. With more than 1024 NSIDs
// the first entry is ChangedNSListOverflow and the rest are zero.
func AppendChangedNSList(b []byte, nsids []uint32) []byte {
	if len(nsids) > MaxNSList {
		nsids = []uint32{ChangedNSListOverflow}
	}
	return AppendNSList(b, nsids)
}

// DecodeChangedNSList decodes a Changed Namespace List log page: entries up
// to the first zero, at most 1024. An overflowed list decodes as
// []uint32{ChangedNSListOverflow}.
func DecodeChangedNSList(b []byte) []uint32 { return DecodeNSList(b) }

// CommandsEffectsLogSize is the size of the Commands Supported and Effects
// log page.
const CommandsEffectsLogSize = 4096

// Commands Supported and Effects data structure bits (NVMe Base 2.0 figure
// 210).
const (
	CmdEffectsCSUPP = 1 << 0 // command supported
	CmdEffectsLBCC  = 1 << 1 // logical block content change
	CmdEffectsNCC   = 1 << 2 // namespace capability change
	CmdEffectsNIC   = 1 << 3 // namespace inventory change
	CmdEffectsCCC   = 1 << 4 // controller capability change
)

// CommandsEffectsLog is the Commands Supported and Effects log page (LID
// 05h): one dword per admin (ACS) and I/O (IOCS) opcode.
type CommandsEffectsLog struct {
	ACS  [256]uint32
	IOCS [256]uint32
}

// Put encodes l into the first 4096 bytes of b.
func (l *CommandsEffectsLog) Put(b []byte) {
	b = b[:CommandsEffectsLogSize]
	le := binary.LittleEndian
	for i, v := range l.ACS {
		le.PutUint32(b[4*i:], v)
	}
	for i, v := range l.IOCS {
		le.PutUint32(b[1024+4*i:], v)
	}
	clear(b[2048:])
}

// Append appends the 4096-byte encoding of l to b.
func (l *CommandsEffectsLog) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, CommandsEffectsLogSize)
	l.Put(b[n:])
	return b
}

// Decode decodes l from the first 4096 bytes of b.
func (l *CommandsEffectsLog) Decode(b []byte) error {
	if len(b) < CommandsEffectsLogSize {
		return ErrShort
	}
	le := binary.LittleEndian
	for i := range l.ACS {
		l.ACS[i] = le.Uint32(b[4*i:])
	}
	for i := range l.IOCS {
		l.IOCS[i] = le.Uint32(b[1024+4*i:])
	}
	return nil
}

// ANA states (ANA group descriptor byte 16).
const (
	ANAOptimized      = 0x1
	ANANonOptimized   = 0x2
	ANAInaccessible   = 0x3
	ANAPersistentLoss = 0x4
	ANAChange         = 0xF
)

// ANAStateString names an ANA state as the Linux kernel does in sysfs.
func ANAStateString(state uint8) string {
	switch state {
	case ANAOptimized:
		return "optimized"
	case ANANonOptimized:
		return "non-optimized"
	case ANAInaccessible:
		return "inaccessible"
	case ANAPersistentLoss:
		return "persistent-loss"
	case ANAChange:
		return "change"
	}
	return fmt.Sprintf("unknown(%#x)", state)
}

// Sizes of the ANA log page header and group descriptor header.
const (
	ANALogHeaderSize       = 16
	ANAGroupDescriptorSize = 32 // without the NSID list
)

// ANAGroupDescriptor is one ANA Group Descriptor of the ANA log page.
type ANAGroupDescriptor struct {
	ANAGRPID uint32
	CHGCNT   uint64
	State    uint8 // ANA state in bits 3:0
	NSIDs    []uint32
}

// ANALog is the Asymmetric Namespace Access log page (LID 0Ch, NVMe Base
// 2.0 figures 217-218): a 16-byte header (CHGCNT, NGRPS) and NGRPS group
// descriptors of 32 bytes plus 4 bytes per NSID.
type ANALog struct {
	CHGCNT uint64
	Groups []ANAGroupDescriptor
}

// ErrANALog is returned by DecodeANALog for a log whose counts exceed the
// data it holds.
var ErrANALog = errors.New("nvme: ANA log group or NSID count exceeds the data")

// Size returns the encoded size of the log; rgo omits the NSID lists.
func (l *ANALog) Size(rgo bool) int {
	n := ANALogHeaderSize + ANAGroupDescriptorSize*len(l.Groups)
	if !rgo {
		for i := range l.Groups {
			n += 4 * len(l.Groups[i].NSIDs)
		}
	}
	return n
}

// Append appends the encoded log to b. NGRPS is len(Groups) (at most
// 65535 groups are written). With rgo (Return Groups Only, LSP bit 0) the
// NSID lists are left out and each NNSID is written as 0.
func (l *ANALog) Append(b []byte, rgo bool) []byte {
	groups := l.Groups
	if len(groups) > math.MaxUint16 {
		groups = groups[:math.MaxUint16]
	}
	le := binary.LittleEndian
	b = le.AppendUint64(b, l.CHGCNT)
	b = le.AppendUint16(b, uint16(len(groups)))
	b = append(b, 0, 0, 0, 0, 0, 0)
	for i := range groups {
		g := &groups[i]
		b = le.AppendUint32(b, g.ANAGRPID)
		nn := len(g.NSIDs)
		if rgo {
			nn = 0
		}
		b = le.AppendUint32(b, uint32(nn))
		b = le.AppendUint64(b, g.CHGCNT)
		b = append(b, g.State)
		b = append(b, make([]byte, 15)...)
		for _, id := range g.NSIDs[:nn] {
			b = le.AppendUint32(b, id)
		}
	}
	return b
}

// DecodeANALog decodes an ANA log page. It returns ErrShort if b is shorter
// than the header, and ErrANALog if NGRPS or an NNSID counts more than b
// holds; bytes after the last group are ignored. Allocation is bounded by
// len(b).
func DecodeANALog(b []byte) (*ANALog, error) {
	if len(b) < ANALogHeaderSize {
		return nil, ErrShort
	}
	le := binary.LittleEndian
	l := &ANALog{CHGCNT: le.Uint64(b)}
	ngrps := int(le.Uint16(b[8:]))
	b = b[ANALogHeaderSize:]
	if ngrps > len(b)/ANAGroupDescriptorSize {
		return nil, ErrANALog
	}
	if ngrps > 0 {
		l.Groups = make([]ANAGroupDescriptor, 0, ngrps)
	}
	for range ngrps {
		if len(b) < ANAGroupDescriptorSize {
			return nil, ErrANALog
		}
		g := ANAGroupDescriptor{
			ANAGRPID: le.Uint32(b),
			CHGCNT:   le.Uint64(b[8:]),
			State:    b[16],
		}
		nn := uint64(le.Uint32(b[4:]))
		b = b[ANAGroupDescriptorSize:]
		if nn > uint64(len(b)/4) {
			return nil, ErrANALog
		}
		if nn > 0 {
			g.NSIDs = make([]uint32, nn)
			for j := range g.NSIDs {
				g.NSIDs[j] = le.Uint32(b[4*j:])
			}
			b = b[4*nn:]
		}
		l.Groups = append(l.Groups, g)
	}
	return l, nil
}
