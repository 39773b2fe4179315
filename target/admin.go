package target

import (
	"encoding/binary"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

func (q *queue) prepareAdmin(c *command, inLen uint32) nvme.Status {
	s := &c.sqe
	disc := q.ctrl.disc
	switch s.Opcode {
	case nvme.AdminIdentify:
		return q.checkSGL(c, nvme.IdentifyDataSize, false, inLen)
	case nvme.AdminGetLogPage:
		n := nvme.LogPageLength(s)
		if n > q.t.mdts {
			// MDTS bounds every command's data, admin ones too (Identify
			// Controller MDTS: Invalid Field in Command beyond it); a
			// longer log page is read in parts with the offset.
			c.ploc = 42
			return nvme.StatusInvalidField
		}
		return q.checkSGL(c, n, false, inLen)
	case nvme.AdminGetFeatures:
		if disc && !q.t.discPersistent() && !q.t.quirks.discNonPersistFeaturesOK {
			// Prohibited without explicit persistent connections (NVMe
			// Base 2.2 Figure 28 note 6), as Set Features is below.
			break
		}
		if nvme.FeatureID(s) == nvme.FeatHostIdentifier && !disc {
			return q.checkSGL(c, 16, false, inLen)
		}
		return q.checkSGL(c, 0, false, inLen)
	case nvme.AdminSetFeatures, nvme.AdminKeepAlive:
		if !disc && s.Opcode == nvme.AdminKeepAlive && q.t.quirks.keepAliveUnsupported {
			break
		}
		if disc && q.t.quirks.discoveryNonPersist && !(s.Opcode == nvme.AdminKeepAlive && q.t.quirks.discNonPersistKeepAlive) {
			// No explicit persistent connections: these commands are
			// prohibited (NVMe Base 2.1 Figure 28 note 6).
			break
		}
		return q.checkSGL(c, 0, false, inLen)
	case nvme.AdminAsyncEventReq:
		if disc && (!q.t.discPersistent() && !q.t.quirks.discNonPersistFeaturesOK || q.t.quirks.discAERRefused) {
			break // Figure 28 note 6, as Get Features above
		}
		return q.checkSGL(c, 0, false, inLen)
	case nvme.AdminAbort:
		if disc {
			break
		}
		return q.checkSGL(c, 0, false, inLen)
	case adminFormatNVM:
		if disc && q.t.quirks.discNVMAdminOK {
			return q.checkSGL(c, 0, false, inLen)
		}
	}
	if q.t.quirks.prohibitedAdminOK(disc, s.Opcode) {
		return nvme.StatusSuccess
	}
	return nvme.StatusInvalidOpcode
}

func (q *queue) execAdmin(c *command) {
	switch c.sqe.Opcode {
	case nvme.AdminIdentify:
		q.identify(c)
	case nvme.AdminGetLogPage:
		q.getLogPage(c)
	case nvme.AdminGetFeatures:
		q.features(c, false)
	case nvme.AdminSetFeatures:
		q.features(c, true)
	case nvme.AdminKeepAlive:
		if q.t.quirks.keepAliveLate && !q.ctrl.disc {
			// A housekeeping pass every KATO/2 answers them.
			q.ctrl.mu.Lock()
			late := q.ctrl.kato/2 + 10*time.Millisecond
			q.ctrl.mu.Unlock()
			time.AfterFunc(late, func() { q.complete(c, nvme.StatusSuccess) })
			return
		}
		q.complete(c, nvme.StatusSuccess)
	case nvme.AdminAsyncEventReq:
		pending, st := q.ctrl.aer(c)
		if !pending {
			q.complete(c, st)
		}
	case nvme.AdminAbort:
		c.dw0 = 1 // not aborted
		if q.t.quirks.abortClearsIANP {
			c.dw0 = 0
		}
		q.complete(c, nvme.StatusSuccess)
	case adminFormatNVM: // discovery-nvm-admin-ok only (prepareAdmin)
		q.complete(c, nvme.StatusSuccess)
	default:
		if q.t.quirks.prohibitedAdminOK(q.ctrl.disc, c.sqe.Opcode) {
			q.complete(c, nvme.StatusSuccess)
			return
		}
		q.complete(c, nvme.StatusInvalidOpcode)
	}
}

// finishData sends c.buf and completes c.
func (q *queue) finishData(c *command) {
	// SUCCESS only where the host asked for SQ flow control off and got
	// it, as on I/O queues (NVMe/TCP 1.0 3.3.2.1); the quirk sends it on
	// every admin queue and never disables flow control.
	success := q.t.quirks.c2hSuccessKeepsFlow || q.flowOff && q.t.cfg.C2HSuccess
	if err := q.sendData(c, c.buf, success); err != nil || success {
		q.outstanding.Add(-1)
		q.put(c)
		return
	}
	q.complete(c, nvme.StatusSuccess)
}

func log2(n uint32) uint8 { return uint8(bits.Len32(n) - 1) }

// volatileCache reports whether a namespace of the subsystem has a volatile
// write cache (Identify VWC).
func (s *subsystem) volatileCache() bool {
	for _, ns := range s.table().list() {
		if ns.vwc {
			return true
		}
	}
	return false
}

func (q *queue) identifyController() *nvme.IdentifyController {
	t, ctrl := q.t, q.ctrl
	id := &nvme.IdentifyController{
		FR:     "1.0",
		RAB:    6,
		MDTS:   log2(t.mdts / 4096),
		CNTLID: ctrl.cntlid,
		VER:    t.vs,
		CTRATT: 1<<0 | 1<<6, // 128-bit host identifier, traffic based keep alive
		ACL:    3,
		AERL:   maxAER - 1,
		ELPE:   errorLogEntries - 1,
		KAS:    uint16(t.kas / (100 * time.Millisecond)),
		CQT:    1000, // ms: once an association ends its sockets close and no command of it starts (queue.go abortIfEnded); only a backend call already running finishes
		SQES:   0x66,
		CQES:   0x44,
		MAXCMD: uint16(t.maxCmd()), // queue_size 65536 must not wrap to 0
		SGLS:   nvme.SGLSByteAligned,
		IOCCSZ: (nvme.SQESize + t.icd) / 16,
		IORCSZ: nvme.CQESize / 16,
		MSDBD:  1,
		OFCS:   nvme.OFCSDisconnect,
	}
	if t.quirks.disconnectWithoutDCS {
		id.OFCS &^= nvme.OFCSDisconnect
	}
	if t.icd > 0 {
		id.SGLS |= nvme.SGLSOffset
	}
	if !t.quirks.sglLongerUnclaimed {
		id.SGLS |= nvme.SGLSLongerThanData
	}
	if t.quirks.capMPSMINAboveMax && id.MDTS > 0 {
		id.MDTS-- // in units of CAP.MPSMIN, now 8 KiB
	}
	if ctrl.disc {
		id.SN = "nvmftest-discovery"
		id.MN = "nvmftest"
		id.CNTRLTYPE = nvme.CntrlTypeDiscovery
		id.OAES = nvme.AECDiscovery
		id.LPA = 1 << 2 // extended data for Get Log Page
		id.SUBNQN = t.discoveryNQN()
		if t.quirks.discoveryNonPersist {
			id.KAS, id.OAES = 0, 0
		}
		if t.quirks.discOAESNoLogChange {
			id.OAES &^= nvme.AECDiscovery
		}
		if t.quirks.discCDCNoExtended {
			id.DCTYPE = dctypeCDC
		}
		return id
	}
	if t.quirks.iorcszWrong {
		id.IORCSZ = 2
	}
	if t.quirks.kasExact {
		id.KAS = uint16(kas10s / (100 * time.Millisecond))
	}
	sub := ctrl.sub
	id.SN = sub.serial
	id.MN = sub.model
	id.CNTRLTYPE = nvme.CntrlTypeIO
	id.CMIC = nvme.CMICMultiPort | nvme.CMICMultiCtrl | nvme.CMICANA
	id.OAES = nvme.AECNamespaceAttr | nvme.AECANAChange
	id.FRMW = 1<<1 | 1                      // one slot, read only
	id.LPA = nvme.LPACommandsEffects | 1<<2 // no per-namespace SMART (bit 0)
	id.NN = MaxNSID
	id.MNAN = MaxNSID
	id.ONCS = nvme.ONCSCompare | nvme.ONCSDSM | nvme.ONCSWriteZeroes | nvme.ONCSSaveSelect
	id.FUSES = 1 // Compare and Write
	id.ANATT = 10
	id.ANACAP = anaCapAll
	id.ANAGRPMAX = MaxANAGroups
	id.NANAGRPID = MaxANAGroups
	id.SUBNQN = sub.nqn
	if t.quirks.staticModel || t.quirks.mixedControllerModel && t.thirdLiveController(ctrl) {
		id.FCATT |= 1 // the static controller model
	}
	if sub.volatileCache() {
		id.VWC = nvme.VWCPresent | 3<<1 // flush with NSID FFFFFFFFh supported
	}
	return id
}

func (q *queue) identify(c *command) {
	s := &c.sqe
	b := c.buf
	clear(b)
	cns := nvme.IdentifyCNS(s)
	ctrl := q.ctrl
	if ctrl == nil { // pre-connect-commands-ok only (prepare)
		q.finishData(c)
		return
	}
	if ctrl.disc && cns != nvme.CNSController {
		if cns == nvme.CNSNamespace && q.t.quirks.discIdentifyNSOK {
			q.finishData(c) // zeroes
			return
		}
		c.ploc = 40
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	switch cns {
	case nvme.CNSController:
		id := q.identifyController()
		q.t.quirks.editIdentify(id, ctrl.disc)
		if ctrl.disc {
			q.t.quirks.editDiscoveryIdentify(id)
		}
		id.Put(b)
	case nvme.CNSNamespace, nvme.CNSNSDescriptorList, 0x08:
		if s.NSID == 0 || s.NSID > MaxNSID {
			q.complete(c, nvme.StatusInvalidNamespace)
			return
		}
		ns := ctrl.sub.table().get(s.NSID)
		if ns == nil {
			if cns == nvme.CNSNSDescriptorList {
				q.complete(c, nvme.StatusInvalidNamespace)
				return
			}
			if q.t.quirks.inactiveNSNonzero {
				b[0] = 1
			}
			break // an inactive NSID reads as zeroes
		}
		switch cns {
		case nvme.CNSNamespace:
			idns := nvme.IdentifyNamespace{NSZE: ns.nlba, NCAP: ns.nlba, NUSE: ns.nlba,
				DLFEAT: 1 | 1<<3, NMIC: 1, ANAGRPID: ns.group(), NGUID: ns.nguid}
			idns.LBAF[0] = nvme.LBAFormat{LBADS: uint8(ns.shift)}
			if q.t.quirks.flbasBeyondNLBAF {
				idns.LBAF[1], idns.FLBAS = idns.LBAF[0], 1
			}
			if q.t.quirks.anaGrpidMismatch {
				idns.ANAGRPID++
			}
			if q.t.quirks.nsNCAPAboveNSZE {
				idns.NCAP, idns.NUSE = ns.nlba+8, ns.nlba+8
			}
			idns.Put(b)
		case nvme.CNSNSDescriptorList:
			descs := []nvme.NSDescriptor{
				{NIDT: nvme.NIDTUUID, NID: ns.uuid[:]},
				{NIDT: nvme.NIDTNGUID, NID: ns.nguid[:]},
				{NIDT: nvme.NIDTCSI, NID: []byte{nvme.CSINVM}},
			}
			if q.t.quirks.nguidMismatch {
				nguid := ns.nguid
				nguid[0] ^= 0xFF
				descs[1].NID = nguid[:]
			}
			if q.t.quirks.nsDescriptorsMissing {
				descs = descs[2:] // the CSI only
			}
			nvme.AppendNSDescriptors(b[:0], descs)
		default: // I/O command set independent Identify Namespace
			b[1] = 1                                         // NMIC shared
			binary.LittleEndian.PutUint32(b[4:], ns.group()) // ANAGRPID
			b[13] = 1                                        // NSTAT ready
		}
	case nvme.CNSActiveNSList:
		if s.NSID >= 0xFFFFFFFE {
			q.complete(c, nvme.StatusInvalidNamespace)
			return
		}
		var ids []uint32
		for _, ns := range ctrl.sub.table().list() {
			if ns.id > s.NSID || q.t.quirks.activeListFromStart {
				ids = append(ids, ns.id)
			}
		}
		if q.t.quirks.activeListStale {
			ids = slices.DeleteFunc(slices.Clone(ctrl.nsAtCreation), func(id uint32) bool { return id <= s.NSID })
		}
		nvme.AppendNSList(b[:0], ids)
	case nvme.CNSCSIController, 0x05:
		if uint8(s.CDW11>>24) != nvme.CSINVM {
			c.ploc = 44
			q.complete(c, nvme.StatusInvalidField)
			return
		}
		// NVM command set specific data: no limits, all zero.
	default:
		if q.t.quirks.identifyReservedCNS {
			break // zeroes
		}
		c.ploc = 40
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	q.finishData(c)
}

// testHookLogPage, when set, runs between building a log page and
// unmasking its event kind (tests use it to make an event race the read).
var testHookLogPage atomic.Pointer[func(lid uint8)]

// logEventKind is the event kind a read of log lid unmasks, 0 for none.
func logEventKind(disc bool, lid uint8) uint8 {
	switch {
	case disc && lid == nvme.LogDiscovery:
		return maskDiscovery
	case !disc && lid == nvme.LogChangedNSList:
		return maskNSChanged
	case !disc && lid == nvme.LogANA:
		return maskANA
	}
	return 0
}

func (q *queue) getLogPage(c *command) {
	s := &c.sqe
	ctrl := q.ctrl
	lid := nvme.LogPageLID(s)
	rae := nvme.LogPageRAE(s)
	page := q.scratch[:0]
	unmask := logEventKind(ctrl.disc, lid)
	var seen uint64 // events of the kind before the page is built
	if unmask != 0 {
		seen = ctrl.eventGen(unmask)
	}
	supported := true
	if ctrl.disc {
		switch {
		case lid == nvme.LogDiscovery:
			page = q.t.discoveryLog(page, ctrl.host, q)
		case q.t.quirks.discMandatoryLogsMissing || !slices.Contains(q.t.discLogs(), lid):
			supported = q.t.quirks.discIOLogsServed && lid != nvme.LogDiscovery
			if supported {
				page = append(page, make([]byte, nvme.LogPageLength(s))...)
			}
		case lid == logSupported:
			page = q.t.discSupportedLogs(page)
		case lid == nvme.LogCommandsEffects:
			page = q.t.discCommandsEffects(page)
		case lid == logFIDSupport:
			page = q.t.discFIDSupport(page)
		}
	} else {
		switch lid {
		case nvme.LogDiscovery:
			// Not an I/O controller's page (it falls to the default's
			// refusal below) unless the io-discovery-log-served quirk.
			if !q.t.quirks.ioDiscoveryLog {
				supported = false
				break
			}
			page = q.t.discoveryLog(page, ctrl.host, q)
		case nvme.LogError:
			ctrl.mu.Lock()
			for i := range ctrl.errs {
				page = ctrl.errs[i].Append(page)
			}
			ctrl.mu.Unlock()
		case nvme.LogSMART:
			// Controller-wide only (LPA bit 0 clear): the counters are
			// kept per queue, not per namespace. A namespace's own page
			// "should" then fail with Invalid Field in Command.
			if nsid := s.NSID; nsid != 0 && nsid != 0xFFFFFFFF {
				q.scratch = page[:0]
				c.ploc = 4
				q.complete(c, nvme.StatusInvalidField)
				return
			}
			l := nvme.SMARTLog{CompositeTemperature: 300, AvailableSpare: 100, AvailableSpareThreshold: 10, PowerCycles: 1}
			if q.t.quirks.reservedNonzero {
				l.CriticalWarning |= 0xC0 // bits 7:6 are reserved
			}
			if q.t.quirks.smartTempZero {
				l.CompositeTemperature = 0
			}
			if q.t.quirks.smartZero {
				var zero nvme.SMARTLog
				page = zero.Append(page)
				break
			}
			// What the subsystem's namespaces served since the target
			// started, through every association (as nvmet reports its
			// block devices' counts), not only this controller's.
			var io IOStats
			q.t.mu.Lock()
			if ctrl.sub != nil {
				for _, ns := range ctrl.sub.table().list() {
					x := q.t.nsIOStats(ns.st)
					io.Add(&x)
				}
			}
			q.t.mu.Unlock()
			l.HostReadCommands, l.HostWriteCommands = io.ReadOK, io.WriteOK
			l.DataUnitsRead, l.DataUnitsWritten = dataUnits(io.BytesRead), dataUnits(io.BytesWritten)
			ctrl.mu.Lock()
			l.NumErrLogEntries = ctrl.errCnt
			ctrl.mu.Unlock()
			page = l.Append(page)
		case nvme.LogFirmwareSlot:
			l := nvme.FirmwareSlotLog{AFI: 1, FRS: [7]string{"1.0"}}
			if q.t.quirks.fwLogNoActive {
				l.AFI = 0
			}
			page = l.Append(page)
		case nvme.LogChangedNSList:
			ctrl.mu.Lock()
			ids := ctrl.changed
			if ctrl.ovfl {
				ids = []uint32{nvme.ChangedNSListOverflow}
			}
			if q.t.quirks.changedNSLogBad {
				ids = append(slices.Clone(ids), 0xFFFFFFFE)
			}
			page = nvme.AppendChangedNSList(page, ids)
			if !rae {
				ctrl.changed, ctrl.ovfl = nil, false
			}
			ctrl.mu.Unlock()
		case nvme.LogCommandsEffects:
			var l nvme.CommandsEffectsLog
			for _, op := range []uint8{nvme.AdminGetLogPage, nvme.AdminIdentify, nvme.AdminAbort,
				nvme.AdminSetFeatures, nvme.AdminGetFeatures, nvme.AdminAsyncEventReq, nvme.AdminKeepAlive} {
				l.ACS[op] = nvme.CmdEffectsCSUPP
			}
			l.IOCS[nvme.CmdRead] = nvme.CmdEffectsCSUPP
			for _, op := range []uint8{nvme.CmdWrite, nvme.CmdFlush, nvme.CmdWriteZeroes, nvme.CmdDSM} {
				l.IOCS[op] = nvme.CmdEffectsCSUPP | nvme.CmdEffectsLBCC
			}
			l.IOCS[nvme.CmdCompare] = nvme.CmdEffectsCSUPP
			if q.t.quirks.effectsNoRead {
				l.IOCS[nvme.CmdRead] = 0
			}
			if q.t.quirks.effectsNoDSM {
				l.IOCS[nvme.CmdDSM] = 0
			}
			page = l.Append(page)
		case nvme.LogANA:
			l := ctrl.sub.anaLog(ctrl.port)
			page = l.Append(page, nvme.LogPageLSP(s)&nvme.ANALogRGO != 0)
		default:
			supported = false
		}
	}
	if !supported && q.t.quirks.logReservedOK {
		supported = true
		page = append(page, make([]byte, nvme.LogPageLength(s))...)
	}
	q.scratch = page[:0]
	if !supported {
		c.ploc = 40
		if q.t.cfg.InvalidLogPage {
			q.complete(c, nvme.StatusInvalidLogPage)
		} else {
			q.complete(c, nvme.StatusInvalidField)
		}
		return
	}
	off := nvme.LogPageOffset(s)
	if ctrl.disc && lid == nvme.LogDiscovery && s.CDW14&getLogOT != 0 && !q.t.quirks.discIndexOffsetIgnored {
		// An index offset (IOS): 0 is the header, n+1 entry n, each
		// 1024 bytes (NVMe Base 2.1 5.1.12.3.1).
		off *= nvme.DiscoveryLogEntrySize
	}
	if q.t.quirks.logOffsetIgnored && !ctrl.disc || ctrl.disc && q.t.quirks.discLogOffsetIgnored {
		off = 0
	}
	if off&3 != 0 && !q.t.quirks.logOffsetUnaligned || off > uint64(len(page)) {
		c.ploc = 48
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	if ctrl.disc && lid == nvme.LogDiscovery && q.t.quirks.discReadAfterChangeError {
		q.t.mu.Lock()
		gen := q.t.genctr
		q.t.mu.Unlock()
		if off == 0 {
			ctrl.discGenRead = gen
		} else if gen != ctrl.discGenRead {
			q.complete(c, nvme.StatusInternalError)
			return
		}
	}
	n := copy(c.buf, page[off:])
	clear(c.buf[n:])
	if h := testHookLogPage.Load(); h != nil {
		(*h)(lid)
	}
	if !rae && unmask != 0 {
		ctrl.unmask(unmask, seen)
	}
	q.finishData(c)
}

// discoveryNQN is the NQN the discovery subsystem reports as its own:
// the well-known one, or a unique one (unique-discovery-nqn quirk).
func (t *Target) discoveryNQN() string {
	if t.quirks.uniqueDiscoveryNQN {
		return uniqueDiscoveryNQN
	}
	return nvme.DiscoveryNQN
}

// discoveryLog appends the discovery log page for host, read through q.
// It lists one entry per (subsystem, port) the host may use and one
// current discovery subsystem entry per port that serves discovery.
func (t *Target) discoveryLog(b []byte, host string, q *queue) []byte {
	t.mu.Lock()
	if t.quirks.discGENCTRUnstable {
		t.genctr++
	}
	l := nvme.DiscoveryLog{GENCTR: t.genctr}
	if t.quirks.discGENCTRLags {
		// The counter a read shows is the one of the read before.
		l.GENCTR, t.discGENCTRShown = t.discGENCTRShown, t.genctr
	}
	for _, s := range t.subsys {
		if !s.hostAllowed(host) {
			continue
		}
		for _, p := range t.ports {
			if s.onPort(p) {
				e := t.discEntry(p, q, nvme.SubtypeNVM, s.nqn)
				if t.quirks.discSubtypeWrong {
					e.SUBTYPE = 5
				}
				if t.quirks.staticModel {
					e.CNTLID = nvme.CNTLIDStatic
				}
				if t.quirks.discEntryPortShifted {
					if p, err := strconv.Atoi(e.TRSVCID); err == nil {
						e.TRSVCID = strconv.Itoa(p + 1)
					}
				}
				if t.quirks.discSQFCDClear {
					e.TREQ &^= nvme.TREQDisableSQFlow
				}
				if t.quirks.discNCCSet {
					e.EFLAGS |= nvme.EFlagsNCC
				}
				l.Entries = append(l.Entries, e)
			}
		}
	}
	for _, p := range t.ports {
		if p.cfg.servesDiscovery() {
			e := t.discEntry(p, q, nvme.SubtypeCurrentDiscovery, t.discoveryNQN())
			e.EFLAGS = nvme.EFlagsDUPRETINFO | nvme.EFlagsEPCSD
			if t.quirks.discoveryNonPersist || t.quirks.discEPCSDMissing {
				e.EFLAGS &^= nvme.EFlagsEPCSD
			}
			if t.quirks.discOwnEntryStatic {
				e.CNTLID = nvme.CNTLIDStatic
			}
			l.Entries = append(l.Entries, e)
		}
	}
	t.mu.Unlock()
	if t.quirks.discReferralDangling && len(t.ports) > 0 {
		e := t.discEntry(t.ports[0], q, nvme.SubtypeReferral, nvme.DiscoveryNQN)
		e.TRADDR, e.ADRFAM, e.TRSVCID = "127.0.0.1", 1, "1" // nothing listens there
		l.Entries = append(l.Entries, e)
	}
	if t.quirks.discLogRECFMT1 {
		l.RECFMT = 1
	}
	l.NUMREC = uint64(len(l.Entries))
	return l.Append(b)
}

func (t *Target) discEntry(p *port, q *queue, subtype uint8, nqn string) nvme.DiscoveryLogEntry {
	host, svc, _ := net.SplitHostPort(p.cfg.Address)
	if p.ln != nil {
		if a, ok := p.ln.Addr().(*net.TCPAddr); ok {
			svc = strconv.Itoa(a.Port)
			if a.IP != nil && !a.IP.IsUnspecified() {
				host = a.IP.String()
			}
		}
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if a, ok := q.nc.LocalAddr().(*net.TCPAddr); ok {
			host = a.IP.String()
		}
	}
	fam := uint8(1) // IPv4
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		fam = 2
	}
	e := nvme.DiscoveryLogEntry{
		TRTYPE: nvme.TRTypeTCP, ADRFAM: fam, SUBTYPE: subtype,
		TREQ:   nvme.TREQNotSpecified | nvme.TREQDisableSQFlow,
		PORTID: p.cfg.PortID, CNTLID: nvme.CNTLIDDynamic, ASQSZ: adminASQSZ,
		TRSVCID: svc, SUBNQN: nqn, TRADDR: host,
	}
	if t.quirks.discASQSZSmall {
		e.ASQSZ = 16
	}
	if subtype == nvme.SubtypeNVM {
		// NVMe Base 2.1 Fig. 294 TREQ bit 3, ZHIDS: the I/O controllers
		// take a Host Identifier of 0h in an I/O queue Connect.
		e.TREQ |= treqZHIDS
	}
	if t.quirks.discEntryCNTLIDSpecific && subtype == nvme.SubtypeNVM {
		e.CNTLID = 1
	}
	if t.quirks.nvmEntryPort8009 && subtype == nvme.SubtypeNVM {
		e.TRSVCID = "8009"
	}
	if t.quirks.discTRSVCIDName {
		e.TRSVCID = "nvme"
	}
	if t.quirks.discADRFAMWrong && e.ADRFAM == 1 {
		e.ADRFAM = 2
	}
	if t.quirks.discSECTYPEBad {
		e.TSAS[0] = 9
	}
	return e
}

func (q *queue) features(c *command, set bool) {
	s := &c.sqe
	ctrl := q.ctrl
	fid := nvme.FeatureID(s)
	if set && nvme.FeatureSave(s) {
		c.ploc = 43
		q.complete(c, nvme.StatusFeatureNotSaveable)
		return
	}
	known := map[bool][]uint8{
		true:  {nvme.FeatAsyncEventConfig, nvme.FeatKeepAliveTimer},
		false: {nvme.FeatArbitration, nvme.FeatPowerManagement, nvme.FeatTemperatureThresh, nvme.FeatErrorRecovery, nvme.FeatVolatileWC, nvme.FeatNumQueues, nvme.FeatWriteAtomicity, nvme.FeatAsyncEventConfig, nvme.FeatKeepAliveTimer, nvme.FeatHostIdentifier},
	}[ctrl.disc]
	if ctrl.disc && set && fid == nvme.FeatNumQueues && q.t.quirks.discNumQueuesOK {
		q.complete(c, nvme.StatusSuccess) // a discovery controller has no I/O queues to allocate
		return
	}
	// Base 2.x 5.2.26.1.4: without a volatile write cache the Volatile
	// Write Cache feature does not exist: Invalid Field for Set and Get.
	// (vwc-inconsistent answers the other way round.)
	if ctrl.disc && set && q.t.quirks.discAECRefused && fid == nvme.FeatAsyncEventConfig {
		c.ploc = 40
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	if ctrl.disc && q.t.quirks.discProhibitedFeatureOK && !slices.Contains(known, fid) {
		q.complete(c, nvme.StatusSuccess) // dword 0 is 0
		return
	}
	if !slices.Contains(known, fid) || fid == nvme.FeatVolatileWC && ctrl.sub.volatileCache() == q.t.quirks.vwcInconsistent {
		if q.t.quirks.featuresReservedOK && !set {
			q.complete(c, nvme.StatusSuccess)
			return
		}
		c.ploc = 40
		q.complete(c, nvme.StatusInvalidField)
		return
	}
	if !set && nvme.FeatureSelect(s) == nvme.SelSupportedCaps {
		c.dw0 = 1 << 2 // changeable
		q.complete(c, nvme.StatusSuccess)
		return
	}
	v := s.CDW11
	sel := nvme.FeatureSelect(s)
	ctrl.mu.Lock()
	st := nvme.StatusSuccess
	switch fid {
	case nvme.FeatNumQueues:
		if set && (uint16(v) == 0xFFFF || uint16(v>>16) == 0xFFFF) {
			st = nvme.StatusInvalidField
		}
		c.dw0 = nvme.NumQueuesValue(ctrl.numQ, ctrl.numQ)
		if q.t.quirks.numQueuesFFFF && !set {
			c.dw0 = 0xFFFFFFFF
		}
	case nvme.FeatAsyncEventConfig:
		if set {
			ctrl.aec = v & (nvme.AECNamespaceAttr | nvme.AECANAChange | nvme.AECDiscovery)
		}
		c.dw0 = ctrl.aec
		if q.t.quirks.aecReadbackWrong && !ctrl.disc {
			c.dw0 = 0
		}
	case nvme.FeatKeepAliveTimer:
		if set {
			kato := time.Duration(v) * time.Millisecond
			switch {
			case q.t.cfg.MaxKATO > 0 && kato > q.t.cfg.MaxKATO, q.t.quirks.katoMax1h && kato > time.Hour:
				st = nvme.StatusKeepAliveInvalid
			case kato == 0 && !q.t.quirks.setKATO0Accepted:
				// NVMe/TCP requires keep alive (NVMe/TCP 1.0 3.4), so
				// clearing KATO to 0h is refused and KATO stays (NVMe
				// Base 2.2 3.9.1).
				st = nvme.StatusKeepAliveInvalid
			case q.t.quirks.katoSetIgnored:
			default:
				ctrl.kato = q.t.katoFor(kato)
			}
		}
		c.dw0 = uint32(ctrl.kato / time.Millisecond)
	case nvme.FeatVolatileWC:
		// WCE=0 makes every write through this controller durable
		// before it completes (see queue.write).
		if set {
			ctrl.writeThrough.Store(v&1 == 0)
		}
		if !ctrl.writeThrough.Load() || q.t.quirks.vwcInconsistent {
			c.dw0 = 1
		}
	case nvme.FeatPowerManagement:
		if set && v&0x1F != 0 {
			st = nvme.StatusInvalidField
		}
	case nvme.FeatTemperatureThresh:
		c.dw0 = 343 // Kelvin
	case nvme.FeatHostIdentifier:
		if set {
			st = nvme.StatusCommandSequenceError // as nvmet: fixed at Connect
		} else {
			if q.t.quirks.hostIDFeatureZero {
				clear(c.buf)
			} else {
				copy(c.buf, ctrl.hostid[:])
			}
		}
	}
	ctrl.mu.Unlock()
	if !set && (sel == nvme.SelDefault || sel == nvme.SelSaved) {
		// ONCS bit 4: Select is supported. Nothing is saveable (Set
		// Features with Save fails above), so the saved value is the
		// default.
		if d, ok := q.featureDefault(fid); ok {
			c.dw0 = d
		}
	}
	if st == nvme.StatusSuccess && set && fid == nvme.FeatKeepAliveTimer && !q.t.quirks.setKATONoRestart {
		ctrl.armTimer()
	}
	if st == nvme.StatusSuccess && !set && c.xfer > 0 {
		q.finishData(c)
		return
	}
	if st != nvme.StatusSuccess {
		c.ploc = 44
	}
	q.complete(c, st)
}

// dataUnits converts bytes to SMART Data Units: thousands of 512-byte
// units, rounded up ("a value of 1 corresponds to 1,000 units of 512
// bytes ... one indicates that the number of 512 byte data units read is
// from 1 to 1,000", NVMe Base 2.0 Figure 208).
func dataUnits(bytes uint64) uint64 {
	units := (bytes + 511) / 512
	return (units + 999) / 1000
}

// featureDefault is the default value (Get Features Select 001b) of the
// features whose current value a host can change; the others read the
// same either way.
func (q *queue) featureDefault(fid uint8) (uint32, bool) {
	switch fid {
	case nvme.FeatKeepAliveTimer:
		// NVMe/TCP requires keep alive, so the default is 120,000 ms
		// rounded up to the KAS granularity (NVMe Base 2.1 5.1.25.1.8).
		if q.t.quirks.katoDefaultZero {
			return 0, true
		}
		return uint32(q.t.roundKATO(2*time.Minute) / time.Millisecond), true
	case nvme.FeatAsyncEventConfig:
		if q.ctrl.disc {
			return 0, true
		}
		return nvme.AECNamespaceAttr | nvme.AECANAChange, true
	case nvme.FeatVolatileWC:
		return 1, true // the write cache is enabled until a host disables it
	}
	return 0, false
}
