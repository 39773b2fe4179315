package nvme

import (
	"encoding/binary"
	"errors"
)

// IdentifyDataSize is the size of every Identify data structure.
const IdentifyDataSize = 4096

// Controller types (Identify Controller CNTRLTYPE, byte 111).
const (
	CntrlTypeIO        = 1
	CntrlTypeDiscovery = 2
	CntrlTypeAdmin     = 3
)

// Identify Controller bit fields that tests and targets commonly need.
const (
	CMICMultiPort = 1 << 0 // CMIC: more than one port
	CMICMultiCtrl = 1 << 1 // CMIC: more than one controller
	CMICANA       = 1 << 3 // CMIC: ANA reporting supported

	ONCSCompare            = 1 << 0
	ONCSWriteUncorrectable = 1 << 1
	ONCSDSM                = 1 << 2
	ONCSWriteZeroes        = 1 << 3
	ONCSSaveSelect         = 1 << 4 // Save in Set Features, Select in Get Features
	ONCSReservations       = 1 << 5

	VWCPresent = 1 << 0

	LPACommandsEffects = 1 << 1 // LPA: Commands Supported and Effects log

	SGLSByteAligned    = 0x1     // SGLS bits 1:0 = 01b
	SGLSDwordAligned   = 0x2     // SGLS bits 1:0 = 10b
	SGLSKeyed          = 1 << 2  // keyed SGL data block descriptor
	SGLSLongerThanData = 1 << 18 // LLDTS: a data SGL longer than the transfer is processed normally
	SGLSOffset         = 1 << 20 // SGL address as offset (in-capsule data)

	OFCSDisconnect = 1 << 0 // OFCS: Disconnect command supported
)

// IdentifyController is the Identify Controller data structure (CNS 01h,
// NVMe Base 2.0 figure 275 and NVMe-oF 1.1 figure 28). Offsets are in the
// field comments; everything not listed is encoded as zero.
type IdentifyController struct {
	VID       uint16   // 0
	SSVID     uint16   // 2
	SN        string   // 4, 20 bytes, ASCII space padded
	MN        string   // 24, 40 bytes, ASCII space padded
	FR        string   // 64, 8 bytes, ASCII space padded
	RAB       uint8    // 72
	IEEE      [3]byte  // 73
	CMIC      uint8    // 76
	MDTS      uint8    // 77, power of two in units of CAP.MPSMIN; 0 = no limit
	CNTLID    uint16   // 78
	VER       uint32   // 80
	RTD3R     uint32   // 84
	RTD3E     uint32   // 88
	OAES      uint32   // 92
	CTRATT    uint32   // 96
	CNTRLTYPE uint8    // 111
	FGUID     [16]byte // 112
	CRDT1     uint16   // 128
	CRDT2     uint16   // 130
	CRDT3     uint16   // 132

	OACS        uint16   // 256
	ACL         uint8    // 258, 0's based
	AERL        uint8    // 259, 0's based
	FRMW        uint8    // 260
	LPA         uint8    // 261
	ELPE        uint8    // 262, 0's based
	NPSS        uint8    // 263, 0's based
	AVSCC       uint8    // 264
	APSTA       uint8    // 265
	WCTEMP      uint16   // 266
	CCTEMP      uint16   // 268
	MTFA        uint16   // 270
	HMPRE       uint32   // 272
	HMMIN       uint32   // 276
	TNVMCAP     [16]byte // 280
	UNVMCAP     [16]byte // 296
	RPMBS       uint32   // 312
	EDSTT       uint16   // 316
	DSTO        uint8    // 318
	FWUG        uint8    // 319
	KAS         uint16   // 320, keep alive granularity in 100 ms units
	HCTMA       uint16   // 322
	MNTMT       uint16   // 324
	MXTMT       uint16   // 326
	SANICAP     uint32   // 328
	HMMINDS     uint32   // 332
	HMMAXD      uint16   // 336
	NVMSETIDMAX uint16   // 338
	ENDGIDMAX   uint16   // 340
	ANATT       uint8    // 342, ANA transition time in seconds
	ANACAP      uint8    // 343
	ANAGRPMAX   uint32   // 344
	NANAGRPID   uint32   // 348
	// CQT is the Command Quiesce Time (386, NVMe Base 2.1 figure 312):
	// the controller's expected worst case, in milliseconds, to stop
	// processing outstanding commands after a keep-alive timeout or other
	// communication loss; 0 means not reported.
	CQT uint16

	SQES   uint8  // 512
	CQES   uint8  // 513
	MAXCMD uint16 // 514
	NN     uint32 // 516
	ONCS   uint16 // 520
	FUSES  uint16 // 522
	FNA    uint8  // 524
	VWC    uint8  // 525
	AWUN   uint16 // 526
	AWUPF  uint16 // 528
	NVSCC  uint8  // 530
	NWPC   uint8  // 531
	ACWU   uint16 // 532
	SGLS   uint32 // 536
	MNAN   uint32 // 540

	SUBNQN string // 768, 256 bytes, NUL padded

	// NVMe over Fabrics attributes (bytes 1792-2047).
	IOCCSZ uint32 // 1792, I/O queue command capsule size in 16-byte units
	IORCSZ uint32 // 1796, I/O queue response capsule size in 16-byte units
	ICDOFF uint16 // 1800, in-capsule data offset in 16-byte units
	FCATT  uint8  // 1802, bit 0: static controller model
	MSDBD  uint8  // 1803, maximum SGL data block descriptors
	OFCS   uint16 // 1804, optional fabrics commands support
	DCTYPE uint8  // 1806, discovery controller type

	PSD0 [32]byte // 2048, power state 0 descriptor, raw
}

// Put encodes c into the first IdentifyDataSize bytes of b.
func (c *IdentifyController) Put(b []byte) {
	b = b[:IdentifyDataSize]
	clear(b)
	le := binary.LittleEndian
	le.PutUint16(b[0:], c.VID)
	le.PutUint16(b[2:], c.SSVID)
	putASCII(b[4:24], c.SN)
	putASCII(b[24:64], c.MN)
	putASCII(b[64:72], c.FR)
	b[72] = c.RAB
	copy(b[73:76], c.IEEE[:])
	b[76] = c.CMIC
	b[77] = c.MDTS
	le.PutUint16(b[78:], c.CNTLID)
	le.PutUint32(b[80:], c.VER)
	le.PutUint32(b[84:], c.RTD3R)
	le.PutUint32(b[88:], c.RTD3E)
	le.PutUint32(b[92:], c.OAES)
	le.PutUint32(b[96:], c.CTRATT)
	b[111] = c.CNTRLTYPE
	copy(b[112:128], c.FGUID[:])
	le.PutUint16(b[128:], c.CRDT1)
	le.PutUint16(b[130:], c.CRDT2)
	le.PutUint16(b[132:], c.CRDT3)

	le.PutUint16(b[256:], c.OACS)
	b[258] = c.ACL
	b[259] = c.AERL
	b[260] = c.FRMW
	b[261] = c.LPA
	b[262] = c.ELPE
	b[263] = c.NPSS
	b[264] = c.AVSCC
	b[265] = c.APSTA
	le.PutUint16(b[266:], c.WCTEMP)
	le.PutUint16(b[268:], c.CCTEMP)
	le.PutUint16(b[270:], c.MTFA)
	le.PutUint32(b[272:], c.HMPRE)
	le.PutUint32(b[276:], c.HMMIN)
	copy(b[280:296], c.TNVMCAP[:])
	copy(b[296:312], c.UNVMCAP[:])
	le.PutUint32(b[312:], c.RPMBS)
	le.PutUint16(b[316:], c.EDSTT)
	b[318] = c.DSTO
	b[319] = c.FWUG
	le.PutUint16(b[320:], c.KAS)
	le.PutUint16(b[322:], c.HCTMA)
	le.PutUint16(b[324:], c.MNTMT)
	le.PutUint16(b[326:], c.MXTMT)
	le.PutUint32(b[328:], c.SANICAP)
	le.PutUint32(b[332:], c.HMMINDS)
	le.PutUint16(b[336:], c.HMMAXD)
	le.PutUint16(b[338:], c.NVMSETIDMAX)
	le.PutUint16(b[340:], c.ENDGIDMAX)
	b[342] = c.ANATT
	b[343] = c.ANACAP
	le.PutUint32(b[344:], c.ANAGRPMAX)
	le.PutUint32(b[348:], c.NANAGRPID)
	le.PutUint16(b[386:], c.CQT)

	b[512] = c.SQES
	b[513] = c.CQES
	le.PutUint16(b[514:], c.MAXCMD)
	le.PutUint32(b[516:], c.NN)
	le.PutUint16(b[520:], c.ONCS)
	le.PutUint16(b[522:], c.FUSES)
	b[524] = c.FNA
	b[525] = c.VWC
	le.PutUint16(b[526:], c.AWUN)
	le.PutUint16(b[528:], c.AWUPF)
	b[530] = c.NVSCC
	b[531] = c.NWPC
	le.PutUint16(b[532:], c.ACWU)
	le.PutUint32(b[536:], c.SGLS)
	le.PutUint32(b[540:], c.MNAN)

	putNUL(b[768:1024], c.SUBNQN)

	le.PutUint32(b[1792:], c.IOCCSZ)
	le.PutUint32(b[1796:], c.IORCSZ)
	le.PutUint16(b[1800:], c.ICDOFF)
	b[1802] = c.FCATT
	b[1803] = c.MSDBD
	le.PutUint16(b[1804:], c.OFCS)
	b[1806] = c.DCTYPE

	copy(b[2048:2080], c.PSD0[:])
}

// Append appends the 4096-byte encoding of c to b.
func (c *IdentifyController) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, IdentifyDataSize)
	c.Put(b[n:])
	return b
}

// Decode decodes c from the first IdentifyDataSize bytes of b.
func (c *IdentifyController) Decode(b []byte) error {
	if len(b) < IdentifyDataSize {
		return ErrShort
	}
	le := binary.LittleEndian
	c.VID = le.Uint16(b[0:])
	c.SSVID = le.Uint16(b[2:])
	c.SN = getASCII(b[4:24])
	c.MN = getASCII(b[24:64])
	c.FR = getASCII(b[64:72])
	c.RAB = b[72]
	copy(c.IEEE[:], b[73:76])
	c.CMIC = b[76]
	c.MDTS = b[77]
	c.CNTLID = le.Uint16(b[78:])
	c.VER = le.Uint32(b[80:])
	c.RTD3R = le.Uint32(b[84:])
	c.RTD3E = le.Uint32(b[88:])
	c.OAES = le.Uint32(b[92:])
	c.CTRATT = le.Uint32(b[96:])
	c.CNTRLTYPE = b[111]
	copy(c.FGUID[:], b[112:128])
	c.CRDT1 = le.Uint16(b[128:])
	c.CRDT2 = le.Uint16(b[130:])
	c.CRDT3 = le.Uint16(b[132:])

	c.OACS = le.Uint16(b[256:])
	c.ACL = b[258]
	c.AERL = b[259]
	c.FRMW = b[260]
	c.LPA = b[261]
	c.ELPE = b[262]
	c.NPSS = b[263]
	c.AVSCC = b[264]
	c.APSTA = b[265]
	c.WCTEMP = le.Uint16(b[266:])
	c.CCTEMP = le.Uint16(b[268:])
	c.MTFA = le.Uint16(b[270:])
	c.HMPRE = le.Uint32(b[272:])
	c.HMMIN = le.Uint32(b[276:])
	copy(c.TNVMCAP[:], b[280:296])
	copy(c.UNVMCAP[:], b[296:312])
	c.RPMBS = le.Uint32(b[312:])
	c.EDSTT = le.Uint16(b[316:])
	c.DSTO = b[318]
	c.FWUG = b[319]
	c.KAS = le.Uint16(b[320:])
	c.HCTMA = le.Uint16(b[322:])
	c.MNTMT = le.Uint16(b[324:])
	c.MXTMT = le.Uint16(b[326:])
	c.SANICAP = le.Uint32(b[328:])
	c.HMMINDS = le.Uint32(b[332:])
	c.HMMAXD = le.Uint16(b[336:])
	c.NVMSETIDMAX = le.Uint16(b[338:])
	c.ENDGIDMAX = le.Uint16(b[340:])
	c.ANATT = b[342]
	c.ANACAP = b[343]
	c.ANAGRPMAX = le.Uint32(b[344:])
	c.NANAGRPID = le.Uint32(b[348:])
	c.CQT = le.Uint16(b[386:])

	c.SQES = b[512]
	c.CQES = b[513]
	c.MAXCMD = le.Uint16(b[514:])
	c.NN = le.Uint32(b[516:])
	c.ONCS = le.Uint16(b[520:])
	c.FUSES = le.Uint16(b[522:])
	c.FNA = b[524]
	c.VWC = b[525]
	c.AWUN = le.Uint16(b[526:])
	c.AWUPF = le.Uint16(b[528:])
	c.NVSCC = b[530]
	c.NWPC = b[531]
	c.ACWU = le.Uint16(b[532:])
	c.SGLS = le.Uint32(b[536:])
	c.MNAN = le.Uint32(b[540:])

	c.SUBNQN = getNUL(b[768:1024])

	c.IOCCSZ = le.Uint32(b[1792:])
	c.IORCSZ = le.Uint32(b[1796:])
	c.ICDOFF = le.Uint16(b[1800:])
	c.FCATT = b[1802]
	c.MSDBD = b[1803]
	c.OFCS = le.Uint16(b[1804:])
	c.DCTYPE = b[1806]

	copy(c.PSD0[:], b[2048:2080])
	return nil
}

// LBAFormat is one LBA Format descriptor of Identify Namespace.
type LBAFormat struct {
	MS    uint16 // metadata size in bytes
	LBADS uint8  // LBA data size as a power of two
	RP    uint8  // relative performance, bits 1:0
}

// IdentifyNamespace is the Identify Namespace data structure for the NVM
// command set (CNS 00h, NVMe NVM Command Set 1.0 figure 97). Everything
// not listed is encoded as zero.
type IdentifyNamespace struct {
	NSZE     uint64   // 0
	NCAP     uint64   // 8
	NUSE     uint64   // 16
	NSFEAT   uint8    // 24
	NLBAF    uint8    // 25, 0's based
	FLBAS    uint8    // 26
	MC       uint8    // 27
	DPC      uint8    // 28
	DPS      uint8    // 29
	NMIC     uint8    // 30
	RESCAP   uint8    // 31
	FPI      uint8    // 32
	DLFEAT   uint8    // 33
	NAWUN    uint16   // 34
	NAWUPF   uint16   // 36
	NACWU    uint16   // 38
	NABSN    uint16   // 40
	NABO     uint16   // 42
	NABSPF   uint16   // 44
	NOIOB    uint16   // 46
	NVMCAP   [16]byte // 48
	NPWG     uint16   // 64
	NPWA     uint16   // 66
	NPDG     uint16   // 68
	NPDA     uint16   // 70
	NOWS     uint16   // 72
	ANAGRPID uint32   // 92
	NSATTR   uint8    // 99
	NVMSETID uint16   // 100
	ENDGID   uint16   // 102
	NGUID    [16]byte // 104
	EUI64    [8]byte  // 120
	LBAF     [64]LBAFormat
}

// Put encodes ns into the first IdentifyDataSize bytes of b.
func (ns *IdentifyNamespace) Put(b []byte) {
	b = b[:IdentifyDataSize]
	clear(b)
	le := binary.LittleEndian
	le.PutUint64(b[0:], ns.NSZE)
	le.PutUint64(b[8:], ns.NCAP)
	le.PutUint64(b[16:], ns.NUSE)
	b[24] = ns.NSFEAT
	b[25] = ns.NLBAF
	b[26] = ns.FLBAS
	b[27] = ns.MC
	b[28] = ns.DPC
	b[29] = ns.DPS
	b[30] = ns.NMIC
	b[31] = ns.RESCAP
	b[32] = ns.FPI
	b[33] = ns.DLFEAT
	le.PutUint16(b[34:], ns.NAWUN)
	le.PutUint16(b[36:], ns.NAWUPF)
	le.PutUint16(b[38:], ns.NACWU)
	le.PutUint16(b[40:], ns.NABSN)
	le.PutUint16(b[42:], ns.NABO)
	le.PutUint16(b[44:], ns.NABSPF)
	le.PutUint16(b[46:], ns.NOIOB)
	copy(b[48:64], ns.NVMCAP[:])
	le.PutUint16(b[64:], ns.NPWG)
	le.PutUint16(b[66:], ns.NPWA)
	le.PutUint16(b[68:], ns.NPDG)
	le.PutUint16(b[70:], ns.NPDA)
	le.PutUint16(b[72:], ns.NOWS)
	le.PutUint32(b[92:], ns.ANAGRPID)
	b[99] = ns.NSATTR
	le.PutUint16(b[100:], ns.NVMSETID)
	le.PutUint16(b[102:], ns.ENDGID)
	copy(b[104:120], ns.NGUID[:])
	copy(b[120:128], ns.EUI64[:])
	for i := range ns.LBAF {
		o := 128 + 4*i
		le.PutUint16(b[o:], ns.LBAF[i].MS)
		b[o+2] = ns.LBAF[i].LBADS
		b[o+3] = ns.LBAF[i].RP
	}
}

// Append appends the 4096-byte encoding of ns to b.
func (ns *IdentifyNamespace) Append(b []byte) []byte {
	n := len(b)
	b = grow(b, IdentifyDataSize)
	ns.Put(b[n:])
	return b
}

// Decode decodes ns from the first IdentifyDataSize bytes of b.
func (ns *IdentifyNamespace) Decode(b []byte) error {
	if len(b) < IdentifyDataSize {
		return ErrShort
	}
	le := binary.LittleEndian
	ns.NSZE = le.Uint64(b[0:])
	ns.NCAP = le.Uint64(b[8:])
	ns.NUSE = le.Uint64(b[16:])
	ns.NSFEAT = b[24]
	ns.NLBAF = b[25]
	ns.FLBAS = b[26]
	ns.MC = b[27]
	ns.DPC = b[28]
	ns.DPS = b[29]
	ns.NMIC = b[30]
	ns.RESCAP = b[31]
	ns.FPI = b[32]
	ns.DLFEAT = b[33]
	ns.NAWUN = le.Uint16(b[34:])
	ns.NAWUPF = le.Uint16(b[36:])
	ns.NACWU = le.Uint16(b[38:])
	ns.NABSN = le.Uint16(b[40:])
	ns.NABO = le.Uint16(b[42:])
	ns.NABSPF = le.Uint16(b[44:])
	ns.NOIOB = le.Uint16(b[46:])
	copy(ns.NVMCAP[:], b[48:64])
	ns.NPWG = le.Uint16(b[64:])
	ns.NPWA = le.Uint16(b[66:])
	ns.NPDG = le.Uint16(b[68:])
	ns.NPDA = le.Uint16(b[70:])
	ns.NOWS = le.Uint16(b[72:])
	ns.ANAGRPID = le.Uint32(b[92:])
	ns.NSATTR = b[99]
	ns.NVMSETID = le.Uint16(b[100:])
	ns.ENDGID = le.Uint16(b[102:])
	copy(ns.NGUID[:], b[104:120])
	copy(ns.EUI64[:], b[120:128])
	for i := range ns.LBAF {
		o := 128 + 4*i
		ns.LBAF[i] = LBAFormat{MS: le.Uint16(b[o:]), LBADS: b[o+2], RP: b[o+3]}
	}
	return nil
}

// LBAFIndex returns the index of the LBA format selected by FLBAS: bits 3:0
// are the low four bits and bits 6:5 the high two bits of the index.
func (ns *IdentifyNamespace) LBAFIndex() int {
	return int(ns.FLBAS&0x0F) | int(ns.FLBAS&0x60)>>1
}

// BlockSize returns the logical block size in bytes of the format that
// FLBAS selects, or 0 if that format's LBADS is 0 or too large (>= 32).
func (ns *IdentifyNamespace) BlockSize() uint32 {
	ds := ns.LBAF[ns.LBAFIndex()].LBADS
	if ds == 0 || ds >= 32 {
		return 0
	}
	return 1 << ds
}

// Namespace Identification Descriptor types (NIDT) for Identify CNS 03h.
const (
	NIDTEUI64 = 0x1
	NIDTNGUID = 0x2
	NIDTUUID  = 0x3
	NIDTCSI   = 0x4
)

// Command set identifiers (CSI).
const (
	CSINVM = 0x0
	CSIZNS = 0x2
)

// NSDescriptor is one Namespace Identification Descriptor: a type and an
// identifier whose length (NIDL) is len(NID).
type NSDescriptor struct {
	NIDT uint8
	NID  []byte
}

// ErrNIDL is returned by DecodeNSDescriptors when a descriptor's NIDL does
// not match the length its NIDT requires.
var ErrNIDL = errors.New("nvme: namespace identification descriptor length does not match its type")

// nidlFor returns the NIDL a descriptor type requires, or -1 if the type is
// unknown (and any length is accepted).
func nidlFor(nidt uint8) int {
	switch nidt {
	case NIDTEUI64:
		return 8
	case NIDTNGUID, NIDTUUID:
		return 16
	case NIDTCSI:
		return 1
	}
	return -1
}

// AppendNSDescriptors appends the descriptors to b, each as NIDT, NIDL, two
// reserved bytes and NID. NIDs longer than 255 bytes are truncated. The
// caller pads the list to IdentifyDataSize; a zero NIDT ends the list.
func AppendNSDescriptors(b []byte, ds []NSDescriptor) []byte {
	for _, d := range ds {
		nid := d.NID
		if len(nid) > 255 {
			nid = nid[:255]
		}
		b = append(b, d.NIDT, uint8(len(nid)), 0, 0)
		b = append(b, nid...)
	}
	return b
}

// DecodeNSDescriptors decodes a Namespace Identification Descriptor list.
// It stops at a descriptor whose NIDT is 0 or at the end of b; it returns
// ErrNIDL if a known type has the wrong NIDL and ErrShort if a descriptor
// runs past the end of b. The NIDs are copies.
func DecodeNSDescriptors(b []byte) ([]NSDescriptor, error) {
	var ds []NSDescriptor
	for len(b) > 0 && b[0] != 0 {
		if len(b) < 4 {
			return ds, ErrShort
		}
		nidt, nidl := b[0], int(b[1])
		if want := nidlFor(nidt); want >= 0 && nidl != want {
			return ds, ErrNIDL
		}
		if len(b) < 4+nidl {
			return ds, ErrShort
		}
		ds = append(ds, NSDescriptor{NIDT: nidt, NID: append([]byte(nil), b[4:4+nidl]...)})
		b = b[4+nidl:]
	}
	return ds, nil
}

// MaxNSList is the number of entries in a namespace list (CNS 02h) or the
// Changed Namespace List log page.
const MaxNSList = 1024

// AppendNSList appends an Active Namespace ID list (Identify CNS 02h):
// exactly IdentifyDataSize bytes holding up to 1024 NSIDs, zero filled
// after the last. NSIDs beyond the 1024th are dropped.
func AppendNSList(b []byte, nsids []uint32) []byte {
	n := len(b)
	b = grow(b, IdentifyDataSize)
	putNSList(b[n:], nsids)
	return b
}

func putNSList(b []byte, nsids []uint32) {
	b = b[:IdentifyDataSize]
	clear(b)
	if len(nsids) > MaxNSList {
		nsids = nsids[:MaxNSList]
	}
	for i, id := range nsids {
		binary.LittleEndian.PutUint32(b[4*i:], id)
	}
}

// DecodeNSList decodes a namespace list: NSIDs up to the first zero entry,
// at most 1024 of them, from as many whole entries as b holds.
func DecodeNSList(b []byte) []uint32 {
	n := min(len(b)/4, MaxNSList)
	var ids []uint32
	for i := range n {
		id := binary.LittleEndian.Uint32(b[4*i:])
		if id == 0 {
			break
		}
		if ids == nil {
			ids = make([]uint32, 0, n-i)
		}
		ids = append(ids, id)
	}
	return ids
}

// putASCII writes s into dst padded with spaces, truncating if needed.
func putASCII(dst []byte, s string) {
	n := copy(dst, s)
	for i := n; i < len(dst); i++ {
		dst[i] = ' '
	}
}

// putNUL writes s into dst padded with NULs, truncating if needed.
func putNUL(dst []byte, s string) {
	n := copy(dst, s)
	clear(dst[n:])
}

// getASCII returns the space (or NUL) padded string in b without padding.
func getASCII(b []byte) string {
	i := len(b)
	for i > 0 && (b[i-1] == ' ' || b[i-1] == 0) {
		i--
	}
	return string(b[:i])
}

// getNUL returns the NUL-terminated string in b.
func getNUL(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
