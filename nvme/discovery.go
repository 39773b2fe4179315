package nvme

import (
	"encoding/binary"
	"strings"
)

// Discovery log page sizes (NVMe-oF 1.1 figures 39-40; NVMe Base 2.0
// figures 262-263).
const (
	DiscoveryLogHeaderSize = 1024
	DiscoveryLogEntrySize  = 1024
)

// Transport types (TRTYPE).
const (
	TRTypeRDMA = 1
	TRTypeFC   = 2
	TRTypeTCP  = 3
	TRTypeLoop = 254 // reserved for host usage (Linux nvme-loop)
)

// Address families (ADRFAM).
const (
	AdrFamPCI  = 0
	AdrFamIPv4 = 1
	AdrFamIPv6 = 2
	AdrFamIB   = 3
	AdrFamFC   = 4
)

// Subsystem types (SUBTYPE).
const (
	SubtypeReferral         = 1 // referral to another discovery subsystem
	SubtypeNVM              = 2 // NVM subsystem
	SubtypeCurrentDiscovery = 3 // the discovery subsystem being read
)

// Transport requirements (TREQ): secure channel in bits 1:0, SQ flow
// control disable support in bit 2.
const (
	TREQNotSpecified  = 0
	TREQRequired      = 1
	TREQNotRequired   = 2
	TREQSecureMask    = 3
	TREQDisableSQFlow = 1 << 2
)

// Entry flags (EFLAGS).
const (
	EFlagsDUPRETINFO = 1 << 0 // duplicate returned information
	EFlagsEPCSD      = 1 << 1 // explicit persistent connection support
	EFlagsNCC        = 1 << 2 // no CDC connectivity
)

// TCP security types (TSAS byte 0, SECTYPE, for TRTYPE TCP).
const (
	TCPSecTypeNone  = 0
	TCPSecTypeTLS12 = 1
	TCPSecTypeTLS13 = 2
)

// DiscoveryLogEntry is one 1024-byte Discovery Log Page Entry, laid out as
// the Linux kernel's struct nvmf_disc_rsp_page_entry.
type DiscoveryLogEntry struct {
	TRTYPE  uint8     // 0
	ADRFAM  uint8     // 1
	SUBTYPE uint8     // 2
	TREQ    uint8     // 3
	PORTID  uint16    // 4
	CNTLID  uint16    // 6, 0xFFFF dynamic, 0xFFFE static (any)
	ASQSZ   uint16    // 8, admin max SQ size
	EFLAGS  uint16    // 10
	TRSVCID string    // 32, 32 bytes, NUL padded (TCP: port number)
	SUBNQN  string    // 256, 256 bytes, NUL padded
	TRADDR  string    // 512, 256 bytes, NUL padded
	TSAS    [256]byte // 768, transport specific; TCP: byte 0 is SECTYPE
}

// SECTYPE returns the TCP security type (TSAS byte 0).
func (e *DiscoveryLogEntry) SECTYPE() uint8 { return e.TSAS[0] }

// Put encodes e into the first 1024 bytes of b.
func (e *DiscoveryLogEntry) Put(b []byte) {
	b = b[:DiscoveryLogEntrySize]
	le := binary.LittleEndian
	b[0] = e.TRTYPE
	b[1] = e.ADRFAM
	b[2] = e.SUBTYPE
	b[3] = e.TREQ
	le.PutUint16(b[4:], e.PORTID)
	le.PutUint16(b[6:], e.CNTLID)
	le.PutUint16(b[8:], e.ASQSZ)
	le.PutUint16(b[10:], e.EFLAGS)
	clear(b[12:32])
	putNUL(b[32:64], e.TRSVCID)
	clear(b[64:256])
	putNUL(b[256:512], e.SUBNQN)
	putNUL(b[512:768], e.TRADDR)
	copy(b[768:1024], e.TSAS[:])
}

// Append appends the 1024-byte encoding of e to b.
func (e *DiscoveryLogEntry) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, DiscoveryLogEntrySize)
	e.Put(b[n:])
	return b
}

// Decode decodes e from the first 1024 bytes of b.
func (e *DiscoveryLogEntry) Decode(b []byte) error {
	if len(b) < DiscoveryLogEntrySize {
		return ErrShort
	}
	le := binary.LittleEndian
	e.TRTYPE = b[0]
	e.ADRFAM = b[1]
	e.SUBTYPE = b[2]
	e.TREQ = b[3]
	e.PORTID = le.Uint16(b[4:])
	e.CNTLID = le.Uint16(b[6:])
	e.ASQSZ = le.Uint16(b[8:])
	e.EFLAGS = le.Uint16(b[10:])
	// TRSVCID and TRADDR are ASCII strings in fixed fields that targets
	// pad with NULs or with spaces (SPDK pads with spaces): either way the
	// padding is not part of the address a host dials.
	e.TRSVCID = strings.TrimRight(getNUL(b[32:64]), " ")
	e.SUBNQN = getNUL(b[256:512])
	e.TRADDR = strings.TrimRight(getNUL(b[512:768]), " ")
	copy(e.TSAS[:], b[768:1024])
	return nil
}

// DiscoveryLog is the Discovery log page (LID 70h): a 1024-byte header
// (GENCTR @0, NUMREC @8, RECFMT @16) followed by 1024-byte entries.
type DiscoveryLog struct {
	GENCTR  uint64
	NUMREC  uint64 // written as given: set it to len(Entries) for a whole log
	RECFMT  uint16
	Entries []DiscoveryLogEntry
}

// Append appends the header and every entry to b. NUMREC is written as
// given, so a target can describe more records than it sends.
func (l *DiscoveryLog) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, DiscoveryLogHeaderSize)
	h := b[n:]
	clear(h)
	binary.LittleEndian.PutUint64(h[0:], l.GENCTR)
	binary.LittleEndian.PutUint64(h[8:], l.NUMREC)
	binary.LittleEndian.PutUint16(h[16:], l.RECFMT)
	for i := range l.Entries {
		b = l.Entries[i].Append(b)
	}
	return b
}

// DecodeDiscoveryLogHeader decodes the first 18 bytes of the header; a host
// reads them to learn how much of the log to fetch.
func DecodeDiscoveryLogHeader(b []byte) (genctr, numrec uint64, recfmt uint16, err error) {
	if len(b) < 18 {
		return 0, 0, 0, ErrShort
	}
	le := binary.LittleEndian
	return le.Uint64(b), le.Uint64(b[8:]), le.Uint16(b[16:]), nil
}

// DecodeDiscoveryLog decodes the header and as many whole entries as b
// holds, up to NUMREC. b must hold at least the 1024-byte header.
func DecodeDiscoveryLog(b []byte) (*DiscoveryLog, error) {
	if len(b) < DiscoveryLogHeaderSize {
		return nil, ErrShort
	}
	l := &DiscoveryLog{}
	l.GENCTR, l.NUMREC, l.RECFMT, _ = DecodeDiscoveryLogHeader(b)
	b = b[DiscoveryLogHeaderSize:]
	n := uint64(len(b) / DiscoveryLogEntrySize)
	n = min(n, l.NUMREC)
	if n > 0 {
		l.Entries = make([]DiscoveryLogEntry, n)
		for i := range l.Entries {
			_ = l.Entries[i].Decode(b[i*DiscoveryLogEntrySize:])
		}
	}
	return l, nil
}
