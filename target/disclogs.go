package target

import (
	"encoding/binary"

	"github.com/nvmftest/nvmftest/nvme"
)

// Log pages a Discovery controller must support besides the Discovery log
// (NVMe Base 2.2 3.1.3.5 Figure 31: Supported Log Pages, Commands
// Supported and Effects, and Feature Identifiers Supported and Effects,
// the last "optional if the Set Features command is not supported").

const (
	logSupported   = 0x00 // Supported Log Pages
	logFIDSupport  = 0x12 // Feature Identifiers Supported and Effects
	lidsLSUPP      = 1 << 0
	lidsIOS        = 1 << 1
	fidSupportSize = 1024 // 256 dwords, one per FID
	logSupportSize = 1024 // 256 dwords, one per LID (Base 2.1 Figure 203)
	// getLogOT is the Offset Type bit of Get Log Page CDW14 (bit 23): the
	// offset is an index into the page's list of data structures.
	getLogOT = 1 << 23
)

// discPersistent reports whether the discovery controllers support
// explicit persistent connections (not the discovery-non-persistent
// personality): then Set/Get Features, Asynchronous Event Request and
// Keep Alive are mandatory, otherwise prohibited (Figure 28 note 6).
func (t *Target) discPersistent() bool { return !t.quirks.discoveryNonPersist }

// discAdminOpcodes are the admin commands a discovery controller supports.
func (t *Target) discAdminOpcodes() []uint8 {
	ops := []uint8{nvme.AdminGetLogPage, nvme.AdminIdentify}
	if t.discPersistent() {
		ops = append(ops, nvme.AdminSetFeatures, nvme.AdminGetFeatures, nvme.AdminAsyncEventReq, nvme.AdminKeepAlive)
	}
	return ops
}

// discLogs are the log pages a discovery controller serves.
func (t *Target) discLogs() []uint8 {
	lids := []uint8{logSupported, nvme.LogCommandsEffects, nvme.LogDiscovery}
	if t.discPersistent() {
		lids = append(lids, logFIDSupport)
	}
	return lids
}

// discSupportedLogs appends a discovery controller's Supported Log Pages
// log page. The Discovery log supports an index offset (IOS): index 0 is
// the header, index n+1 entry n (Base 2.1 5.1.12.3.1).
func (t *Target) discSupportedLogs(b []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, logSupportSize)...)
	for _, lid := range t.discLogs() {
		v := uint32(lidsLSUPP)
		if lid == nvme.LogDiscovery {
			v |= lidsIOS
		}
		binary.LittleEndian.PutUint32(b[n+4*int(lid):], v)
	}
	return b
}

// discCommandsEffects appends a discovery controller's Commands
// Supported and Effects log page: the admin commands it supports, no I/O
// commands.
func (t *Target) discCommandsEffects(b []byte) []byte {
	var l nvme.CommandsEffectsLog
	for _, op := range t.discAdminOpcodes() {
		l.ACS[op] = nvme.CmdEffectsCSUPP
	}
	return l.Append(b)
}

// discFIDSupport appends a discovery controller's Feature Identifiers
// Supported and Effects log page: FSUPP (bit 0) for the Asynchronous
// Event Configuration and Keep Alive Timer features (Figure 32 note 10).
func (t *Target) discFIDSupport(b []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, fidSupportSize)...)
	for _, fid := range []uint8{nvme.FeatAsyncEventConfig, nvme.FeatKeepAliveTimer} {
		binary.LittleEndian.PutUint32(b[n+4*int(fid):], 1)
	}
	return b
}
