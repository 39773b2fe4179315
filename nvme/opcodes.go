package nvme

// Admin command opcodes (NVMe Base 2.0, figure 138).
const (
	AdminDeleteIOSQ       = 0x00
	AdminCreateIOSQ       = 0x01
	AdminGetLogPage       = 0x02
	AdminDeleteIOCQ       = 0x04
	AdminCreateIOCQ       = 0x05
	AdminIdentify         = 0x06
	AdminAbort            = 0x08
	AdminSetFeatures      = 0x09
	AdminGetFeatures      = 0x0A
	AdminAsyncEventReq    = 0x0C
	AdminNSManagement     = 0x0D
	AdminFirmwareCommit   = 0x10
	AdminFirmwareDownload = 0x11
	AdminNSAttachment     = 0x15
	AdminKeepAlive        = 0x18
	AdminFabrics          = 0x7F
)

// I/O (NVM command set) opcodes.
const (
	CmdFlush       = 0x00
	CmdWrite       = 0x01
	CmdRead        = 0x02
	CmdCompare     = 0x05
	CmdWriteZeroes = 0x08
	CmdDSM         = 0x09
	CmdFabrics     = 0x7F
)

// Fabrics command types (NVMe-oF 1.1, figure 12; the byte at SQE offset 4).
const (
	FabricsPropertySet = 0x00
	FabricsConnect     = 0x01
	FabricsPropertyGet = 0x04
	FabricsAuthSend    = 0x05
	FabricsAuthReceive = 0x06
	FabricsDisconnect  = 0x08
)

// Identify CNS values.
const (
	CNSNamespace        = 0x00
	CNSController       = 0x01
	CNSActiveNSList     = 0x02
	CNSNSDescriptorList = 0x03
	CNSCSIController    = 0x06 // I/O command set specific controller
)

// Log page identifiers.
const (
	LogError           = 0x01
	LogSMART           = 0x02
	LogFirmwareSlot    = 0x03
	LogChangedNSList   = 0x04
	LogCommandsEffects = 0x05
	LogANA             = 0x0C
	LogDiscovery       = 0x70
)

// Feature identifiers.
const (
	FeatArbitration       = 0x01
	FeatPowerManagement   = 0x02
	FeatTemperatureThresh = 0x04
	FeatErrorRecovery     = 0x05
	FeatVolatileWC        = 0x06
	FeatNumQueues         = 0x07
	FeatIRQCoalescing     = 0x08
	FeatWriteAtomicity    = 0x0A
	FeatAsyncEventConfig  = 0x0B
	FeatKeepAliveTimer    = 0x0F
	FeatHostIdentifier    = 0x81
)

// Controller properties (NVMe-oF 1.1, figure 35: offsets into the register
// map that fabrics reach with Property Get/Set).
const (
	PropCAP   = 0x00 // 8 bytes
	PropVS    = 0x08
	PropINTMS = 0x0C
	PropINTMC = 0x10
	PropCC    = 0x14
	PropCSTS  = 0x1C
	PropNSSR  = 0x20
)

// CC and CSTS bits.
const (
	CCEnable      = 1 << 0
	CCShnShift    = 14
	CCShnMask     = 3 << CCShnShift
	CCShnNormal   = 1 << CCShnShift
	CCShnAbrupt   = 2 << CCShnShift
	CSTSReady     = 1 << 0
	CSTSFatal     = 1 << 1
	CSTSShstShift = 2
	CSTSShstMask  = 3 << CSTSShstShift
	CSTSShstOccur = 1 << CSTSShstShift
	CSTSShstCmplt = 2 << CSTSShstShift
)

// Well-known names and ports.
const (
	DiscoveryNQN  = "nqn.2014-08.org.nvmexpress.discovery"
	PortIO        = 4420
	PortDiscovery = 8009
)

// Asynchronous event types and information (completion DW0 of an AER).
const (
	AENTypeError  = 0x0
	AENTypeSMART  = 0x1
	AENTypeNotice = 0x2
	AENTypeIOCmd  = 0x6

	AENNoticeNSChanged        = 0x00
	AENNoticeFirmwareActivate = 0x01
	AENNoticeANAChange        = 0x03
	AENNoticeDiscoveryChange  = 0xF0
)

// AEN returns completion dword 0 of an Asynchronous Event Request: event
// type in bits 2:0, event information in bits 15:8, log page in bits 23:16.
func AEN(typ, info, logPage uint8) uint32 {
	return uint32(typ&7) | uint32(info)<<8 | uint32(logPage)<<16
}

// Async Event Configuration feature bits (Set Features FID 0x0B).
const (
	AECNamespaceAttr = 1 << 8
	AECFirmwareAct   = 1 << 9
	AECANAChange     = 1 << 11
	AECDiscovery     = 1 << 31
)
