package nvme

import "fmt"

// Status is the 15-bit status field of a completion queue entry, without
// the phase tag: SC in bits 7:0, SCT in bits 10:8, CRD in bits 12:11, More
// in bit 13 and DNR in bit 14. The constants below carry their SCT, as the
// Linux kernel's NVME_SC_* values do, so Status(x).SCT() works on them.
type Status uint16

// Status code types.
const (
	SCTGeneric         = 0x0
	SCTCommandSpecific = 0x1
	SCTMediaError      = 0x2
	SCTPath            = 0x3
	SCTVendor          = 0x7
)

// Status bits beyond SCT/SC.
const (
	StatusCRDMask Status = 0x1800
	StatusMore    Status = 0x2000
	StatusDNR     Status = 0x4000
)

// Generic command status (SCT 0).
const (
	StatusSuccess              Status = 0x00
	StatusInvalidOpcode        Status = 0x01
	StatusInvalidField         Status = 0x02
	StatusCIDConflict          Status = 0x03
	StatusDataTransferError    Status = 0x04
	StatusPowerLoss            Status = 0x05
	StatusInternalError        Status = 0x06
	StatusAbortRequested       Status = 0x07
	StatusAbortSQDeleted       Status = 0x08
	StatusAbortFusedFail       Status = 0x09
	StatusAbortFusedMissing    Status = 0x0A
	StatusInvalidNamespace     Status = 0x0B
	StatusCommandSequenceError Status = 0x0C
	StatusSGLInvalidLast       Status = 0x0D
	StatusSGLInvalidCount      Status = 0x0E
	StatusSGLInvalidDataLength Status = 0x0F
	StatusSGLInvalidMetaLength Status = 0x10
	StatusSGLInvalidType       Status = 0x11
	StatusSGLInvalidOffset     Status = 0x16
	StatusHostIDInconsistent   Status = 0x18
	StatusKeepAliveExpired     Status = 0x19
	StatusKeepAliveInvalid     Status = 0x1A
	StatusNSWriteProtected     Status = 0x20
	StatusCommandInterrupted   Status = 0x21
	StatusTransientTransport   Status = 0x22
	StatusLBAOutOfRange        Status = 0x80
	StatusCapacityExceeded     Status = 0x81
	StatusNamespaceNotReady    Status = 0x82
	StatusReservationConflict  Status = 0x83
	StatusFormatInProgress     Status = 0x84
)

// Command specific status (SCT 1).
const (
	StatusInvalidCQ              Status = 0x100
	StatusInvalidQID             Status = 0x101
	StatusInvalidQueueSize       Status = 0x102
	StatusAbortLimitExceeded     Status = 0x103
	StatusAsyncEventLimit        Status = 0x105
	StatusInvalidLogPage         Status = 0x109
	StatusInvalidFormat          Status = 0x10A
	StatusFeatureNotSaveable     Status = 0x10D
	StatusFeatureNotChangeable   Status = 0x10E
	StatusFeatureNotPerNamespace Status = 0x10F

	// Fabrics Connect (NVMe-oF 1.1, figure 20).
	StatusConnectIncompatibleFormat Status = 0x180
	StatusConnectControllerBusy     Status = 0x181
	StatusConnectInvalidParameters  Status = 0x182
	StatusConnectRestartDiscovery   Status = 0x183
	StatusConnectInvalidHost        Status = 0x184
	StatusInvalidQueueType          Status = 0x185 // Disconnect sent on an admin queue
	StatusDiscoveryRestart          Status = 0x190
	StatusAuthenticationRequired    Status = 0x191

	// NVM command set specific.
	StatusConflictingAttributes Status = 0x180
	StatusInvalidProtectionInfo Status = 0x181
	StatusWriteToReadOnly       Status = 0x182
)

// Media and data integrity errors (SCT 2).
const (
	StatusWriteFault      Status = 0x280
	StatusUnrecoveredRead Status = 0x281
	StatusCompareFailure  Status = 0x285
	StatusAccessDenied    Status = 0x286
	StatusUnwrittenBlock  Status = 0x287
)

// Path related status (SCT 3).
const (
	StatusInternalPathError Status = 0x300
	StatusANAPersistentLoss Status = 0x301
	StatusANAInaccessible   Status = 0x302
	StatusANATransition     Status = 0x303
	StatusHostPathError     Status = 0x370
	StatusHostAbortedCmd    Status = 0x371
)

// MakeStatus builds a status from its type and code.
func MakeStatus(sct, sc uint8) Status { return Status(sct&7)<<8 | Status(sc) }

// SC returns the status code.
func (s Status) SC() uint8 { return uint8(s) }

// SCT returns the status code type.
func (s Status) SCT() uint8 { return uint8(s>>8) & 7 }

// DNR reports the Do Not Retry bit.
func (s Status) DNR() bool { return s&StatusDNR != 0 }

// Code returns the status with CRD, More and DNR cleared, for comparison
// with the Status constants.
func (s Status) Code() Status { return s & 0x7FF }

// Success reports whether the command succeeded.
func (s Status) Success() bool { return s.Code() == StatusSuccess }

// Error makes a non-success Status usable as an error.
func (s Status) Error() string { return s.String() }

var statusNames = map[Status]string{
	StatusSuccess:              "Success",
	StatusInvalidOpcode:        "Invalid Command Opcode",
	StatusInvalidField:         "Invalid Field in Command",
	StatusCIDConflict:          "Command ID Conflict",
	StatusDataTransferError:    "Data Transfer Error",
	StatusPowerLoss:            "Commands Aborted due to Power Loss Notification",
	StatusInternalError:        "Internal Error",
	StatusAbortRequested:       "Command Abort Requested",
	StatusAbortSQDeleted:       "Command Aborted due to SQ Deletion",
	StatusAbortFusedFail:       "Command Aborted due to Failed Fused Command",
	StatusAbortFusedMissing:    "Command Aborted due to Missing Fused Command",
	StatusInvalidNamespace:     "Invalid Namespace or Format",
	StatusCommandSequenceError: "Command Sequence Error",
	StatusSGLInvalidLast:       "Invalid SGL Segment Descriptor",
	StatusSGLInvalidCount:      "Invalid Number of SGL Descriptors",
	StatusSGLInvalidDataLength: "Data SGL Length Invalid",
	StatusSGLInvalidMetaLength: "Metadata SGL Length Invalid",
	StatusSGLInvalidType:       "SGL Descriptor Type Invalid",
	StatusSGLInvalidOffset:     "SGL Offset Invalid",
	StatusHostIDInconsistent:   "Host Identifier Inconsistent Format",
	StatusKeepAliveExpired:     "Keep Alive Timer Expired",
	StatusKeepAliveInvalid:     "Keep Alive Timeout Invalid",
	StatusNSWriteProtected:     "Namespace is Write Protected",
	StatusCommandInterrupted:   "Command Interrupted",
	StatusTransientTransport:   "Transient Transport Error",
	StatusLBAOutOfRange:        "LBA Out of Range",
	StatusCapacityExceeded:     "Capacity Exceeded",
	StatusNamespaceNotReady:    "Namespace Not Ready",
	StatusReservationConflict:  "Reservation Conflict",
	StatusFormatInProgress:     "Format In Progress",

	StatusInvalidCQ:                 "Completion Queue Invalid",
	StatusInvalidQID:                "Invalid Queue Identifier",
	StatusInvalidQueueSize:          "Invalid Queue Size",
	StatusAbortLimitExceeded:        "Abort Command Limit Exceeded",
	StatusAsyncEventLimit:           "Asynchronous Event Request Limit Exceeded",
	StatusInvalidLogPage:            "Invalid Log Page",
	StatusInvalidFormat:             "Invalid Format",
	StatusFeatureNotSaveable:        "Feature Identifier Not Saveable",
	StatusFeatureNotChangeable:      "Feature Not Changeable",
	StatusFeatureNotPerNamespace:    "Feature Not Namespace Specific",
	StatusConnectIncompatibleFormat: "Connect Incompatible Format / Conflicting Attributes",
	StatusConnectControllerBusy:     "Connect Controller Busy / Invalid Protection Information",
	StatusConnectInvalidParameters:  "Connect Invalid Parameters / Attempted Write to Read Only Range",
	StatusConnectRestartDiscovery:   "Connect Restart Discovery",
	StatusConnectInvalidHost:        "Connect Invalid Host",
	StatusInvalidQueueType:          "Invalid Queue Type",
	StatusDiscoveryRestart:          "Discovery Restart",
	StatusAuthenticationRequired:    "Authentication Required",

	StatusWriteFault:      "Write Fault",
	StatusUnrecoveredRead: "Unrecovered Read Error",
	StatusCompareFailure:  "Compare Failure",
	StatusAccessDenied:    "Access Denied",
	StatusUnwrittenBlock:  "Deallocated or Unwritten Logical Block",

	StatusInternalPathError: "Internal Path Error",
	StatusANAPersistentLoss: "Asymmetric Access Persistent Loss",
	StatusANAInaccessible:   "Asymmetric Access Inaccessible",
	StatusANATransition:     "Asymmetric Access Transition",
	StatusHostPathError:     "Host Pathing Error",
	StatusHostAbortedCmd:    "Command Aborted By Host",
}

// String renders the status as nvme-cli does: name, then SCT/SC in hex and
// the DNR bit.
func (s Status) String() string {
	name, ok := statusNames[s.Code()]
	if !ok {
		name = "Unknown Status"
	}
	dnr := ""
	if s.DNR() {
		dnr = " DNR"
	}
	return fmt.Sprintf("%s (sct=%#x sc=%#02x%s)", name, s.SCT(), s.SC(), dnr)
}
