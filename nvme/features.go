package nvme

// Set/Get Features command fields (NVMe Base 2.0 figures 191 and 317).
const (
	// SetFeaturesSV is the Save bit in CDW10 of Set Features.
	SetFeaturesSV = 1 << 31

	// Get Features SEL values (CDW10 bits 10:8).
	SelCurrent       = 0
	SelDefault       = 1
	SelSaved         = 2
	SelSupportedCaps = 3
)

// SetFeaturesCmd builds a Set Features command: FID in CDW10 bits 7:0, SV
// in bit 31, the feature value in CDW11. Features that carry a data buffer
// need the caller to set the data length (SetDataLength or SetInCapsule).
func SetFeaturesCmd(fid uint8, nsid uint32, cdw11 uint32, save bool) SQE {
	s := dataCmd(AdminSetFeatures, nsid, 0)
	s.CDW10 = uint32(fid)
	if save {
		s.CDW10 |= SetFeaturesSV
	}
	s.CDW11 = cdw11
	return s
}

// GetFeaturesCmd builds a Get Features command: FID in CDW10 bits 7:0 and
// SEL in bits 10:8. The result is in completion DW0.
func GetFeaturesCmd(fid uint8, nsid uint32, sel uint8) SQE {
	s := dataCmd(AdminGetFeatures, nsid, 0)
	s.CDW10 = uint32(fid) | uint32(sel&7)<<8
	return s
}

// FeatureID returns the feature identifier of a Set or Get Features
// command.
func FeatureID(s *SQE) uint8 { return uint8(s.CDW10) }

// FeatureSave reports the SV bit of a Set Features command.
func FeatureSave(s *SQE) bool { return s.CDW10&SetFeaturesSV != 0 }

// FeatureSelect returns the SEL field of a Get Features command.
func FeatureSelect(s *SQE) uint8 { return uint8(s.CDW10>>8) & 7 }

// NumQueuesValue encodes the Number of Queues feature (FID 07h) for CDW11
// of Set Features, or DW0 of its completion. The arguments are counts of
// I/O submission and completion queues; the field is 0's based, so each is
// stored minus one (NSQR in bits 15:0, NCQR in bits 31:16). A count of 0
// wraps to 0xFFFF, the value the spec forbids; conformance tests may want
// to send it.
func NumQueuesValue(nsqr, ncqr uint16) uint32 {
	return uint32(nsqr-1) | uint32(ncqr-1)<<16
}

// DecodeNumQueues decodes a Number of Queues value (CDW11 or completion
// DW0) into counts: each 0's based field plus one. A field of 0xFFFF
// decodes as 0.
func DecodeNumQueues(dw uint32) (nsq, ncq uint16) {
	return uint16(dw) + 1, uint16(dw>>16) + 1
}

// SetKeepAliveTimerCmd builds Set Features Keep Alive Timer (FID 0Fh):
// KATO in milliseconds in CDW11.
func SetKeepAliveTimerCmd(katoMS uint32) SQE {
	return SetFeaturesCmd(FeatKeepAliveTimer, 0, katoMS, false)
}

// SetAsyncEventConfigCmd builds Set Features Asynchronous Event
// Configuration (FID 0Bh) with the AEC* bits in CDW11.
func SetAsyncEventConfigCmd(aec uint32) SQE {
	return SetFeaturesCmd(FeatAsyncEventConfig, 0, aec, false)
}
