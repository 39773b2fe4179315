package target

import "github.com/nvmftest/nvmftest/nvme"

// propsQuirks are the quirks that prove the checks of issue 19's property
// and controller-state rules can fail (FAB-PROP-027 and later, FAB-CTRL-*),
// one field each, embedded in quirkSet. Each breaks one rule at one place
// of the target (named in its Does).
type propsQuirks struct {
	capReservedBit       bool
	reservedPropAQA      bool
	crtoRefused          bool
	capDSTRDNonzero      bool
	discCAPMPS           bool
	discCAPCSSIOCSS      bool
	discCCEntrySizesKept bool
	vsUpperBytes         bool
	mixedControllerModel bool
	resetLosesWrites     bool
	disabledWriteApplied bool
	resetKeepsSHST       bool
	enableKeepsSHST      bool
	logOffsetUnaligned   bool
	fabricsPSDTStrict    bool
	ioqPropertySetOK     bool
}

// propsQuirkTable lists them, in the format of quirkTable.
var propsQuirkTable = []Quirk{
	{Name: "cap-reserved-bit-set", Kind: QuirkDeviation,
		Does: "reports CAP with reserved bit 63 set (NVMe Base 2.2 3.1.4: hardware shall return '0' for all bits that are marked as reserved; Fig. 36: bits 63:62 are reserved)",
		set:  func(s *quirkSet) { s.capReservedBit = true }},
	{Name: "reserved-property-aqa", Kind: QuirkDeviation,
		Does: "answers a Property Get of offset 24h (AQA, reserved for message-based controllers) with the admin queue sizes, as a PCIe controller would (NVMe Base 2.2 Fig. 33 note 2: for message-based controllers this property is reserved; 3.1.4: reserved properties return 0h when read)",
		set:  func(s *quirkSet) { s.reservedPropAQA = true }},
	{Name: "crto-refused", Kind: QuirkDeviation,
		Does: "an I/O controller reporting VS 2.0 refuses a Property Get of CRTO (68h) with Invalid Field in Command (NVMe Base 2.2 Fig. 33: CRTO is mandatory for I/O controllers)",
		set:  func(s *quirkSet) { s.crtoRefused = true }},
	{Name: "cap-dstrd-nonzero", Kind: QuirkDeviation,
		Does: "reports CAP.DSTRD 1 on I/O controllers (NVMe Base 2.2 Fig. 36: for NVMe over Fabrics I/O controllers, this property shall be cleared to a fixed value of 0h)",
		set:  func(s *quirkSet) { s.capDSTRDNonzero = true }},
	{Name: "discovery-cap-mps", Kind: QuirkDeviation,
		Does: "reports CAP.MPSMAX 4 on the discovery controller (NVMe Base 2.2 Fig. 36: for Discovery controllers MPSMAX shall be cleared to 0h)",
		set:  func(s *quirkSet) { s.discCAPMPS = true }},
	{Name: "discovery-cap-css-iocss", Kind: QuirkDeviation,
		Does: "reports CAP.CSS with IOCSS (bit 6) as well as NCSS on the discovery controller (NVMe Base 2.2 Fig. 36: for Discovery controllers, this field should have only the NCSS bit set to 1)",
		set:  func(s *quirkSet) { s.discCAPCSSIOCSS = true }},
	{Name: "discovery-cc-entry-sizes-kept", Kind: QuirkDeviation,
		Does: "keeps CC.IOCQES and CC.IOSQES as written on the discovery controller (NVMe Base 2.2 Fig. 41: if the controller does not support I/O queues, then this field shall be read-only with a value of 0h; for Discovery controllers it is reserved)",
		set:  func(s *quirkSet) { s.discCCEntrySizesKept = true }},
	{Name: "vs-upper-bytes-set", Kind: QuirkDeviation,
		Does: "answers a 4-byte Property Get of VS with the version in bytes 03:00 and again in bytes 07:04 (NVMe Base 2.2 Fig. 553: if the size of the property is four bytes, bytes 07:04 are reserved; 1.4.1.6: a reserved byte shall be cleared to 0h)",
		set:  func(s *quirkSet) { s.vsUpperBytes = true }},
	{Name: "mixed-controller-model", Kind: QuirkDeviation,
		Does: "a controller whose Identify is read while two others of the same host and subsystem are associated reports the static controller model in Identify FCATT, the others the dynamic one (NVMe Base 2.2 3.1: all controllers in an NVM subsystem shall support the same controller model)",
		set:  func(s *quirkSet) { s.mixedControllerModel = true }},
	{Name: "reset-loses-writes", Kind: QuirkDeviation,
		Does: "a Controller Reset (CC.EN 1 to 0) undoes the last Write the controller completed, like a volatile cache dropped (NVMe Base 2.2 Fig. 41: the controller shall ensure that there is no impact, e.g. data loss, caused by that Controller Reset to the results of commands that have had completion queue entries posted)",
		set:  func(s *quirkSet) { s.resetLosesWrites = true }},
	{Name: "disabled-write-applied", Kind: QuirkDeviation,
		Does: "after CC.EN is cleared, an I/O queue still executes a Write (the data reaches the namespace) though it answers Command Sequence Error (NVMe Base 2.2 Fig. 41: when EN is cleared to '0', the controller shall not process commands)",
		set:  func(s *quirkSet) { s.disabledWriteApplied = true }},
	{Name: "reset-keeps-shst", Kind: QuirkDeviation,
		Does: "a Controller Reset after a completed controller shutdown leaves CSTS.SHST at 10b until the controller is enabled again (NVMe Base 2.2 Fig. 42: if SHST is 10b when a CLR other than an NVM Subsystem Reset is initiated and CSTS.ST is 0, that CLR shall clear this field to 00b)",
		set:  func(s *quirkSet) { s.resetKeepsSHST = true }},
	{Name: "enable-keeps-shst", Kind: QuirkDeviation,
		Does: "when one CC write sets EN from 0 to 1 and clears SHN after a shutdown done with EN cleared, sets CSTS.RDY and leaves SHST at 10b (NVMe Base 2.2 Fig. 42: before RDY is allowed to be set to '1' from '0', controller shutdown processing shall stop and SHST shall be cleared to 00b)",
		set:  func(s *quirkSet) { s.enableKeepsSHST = true }},
	{Name: "log-offset-unaligned-literal", Kind: QuirkDeviation,
		Does: "returns log page data from an offset whose bits 1:0 are not 00b as given, not as if they were 00b (NVMe Base 2.1 5.1.12 Fig. 199: the controller may report Invalid Field in Command; if it does not, it shall operate as if bits 1:0 are cleared to 00b)",
		set:  func(s *quirkSet) { s.logOffsetUnaligned = true }},
	{Name: "fabrics-psdt-sgl-only", Kind: QuirkDeviation,
		Does: "refuses a Fabrics command whose PSDT is 00b or 10b with Invalid Field in Command, taking only 01b (NVMe Base 2.2 Fig. 95: 00b used for a Fabrics command that transfers data means SGLs are used for the transfer; 10b: Data Transferred)",
		set:  func(s *quirkSet) { s.fabricsPSDTStrict = true }},
	{Name: "ioq-property-set-applied", Kind: QuirkDeviation,
		Does: "applies a Property Set sent on an I/O queue and completes it successfully (NVMe Base 2.2 Fig. 541 note 3: a Fabrics command not supported on an I/O Queue shall be aborted with Invalid Field in Command)",
		set:  func(s *quirkSet) { s.ioqPropertySetOK = true }},
}

// propsCAP applies the CAP quirks of this file to v, c's CAP.
func (c *controller) propsCAP(v uint64) uint64 {
	q := &c.t.quirks
	if q.capReservedBit {
		v |= 1 << 63
	}
	if q.capDSTRDNonzero && !c.disc {
		v |= 1 << 32
	}
	if c.disc && q.discCAPMPS {
		v |= 4 << 52
	}
	if c.disc && q.discCAPCSSIOCSS {
		v |= uint64(nvme.CSSIOCS) << 37
	}
	return v
}

// propCRTO is offset 68h, CRTO (NVMe Base 2.2 Fig. 33).
const propCRTO = 0x68

// undoWrite is what the reset-loses-writes quirk restores at a
// Controller Reset: the blocks the last completed Write overwrote.
type undoWrite struct {
	ns  *namespace
	old []byte
	off int64
}

// ccEntrySizes are CC.IOCQES (bits 23:20) and CC.IOSQES (bits 19:16).
const ccEntrySizes = 0xFF << 16

// recordUndo keeps, for the reset-loses-writes quirk, the blocks a Write
// of b at off is about to overwrite.
func (q *queue) recordUndo(ns *namespace, b []byte, off int64) {
	if !q.t.quirks.resetLosesWrites || q.ctrl == nil {
		return
	}
	old := make([]byte, len(b))
	if _, err := ns.b.ReadAt(old, off); err != nil {
		return
	}
	q.ctrl.undo.Store(&undoWrite{ns: ns, old: old, off: off})
}

// undoLastWrite is the reset-loses-writes quirk's Controller Reset: the
// last completed Write is rolled back.
func (c *controller) undoLastWrite() {
	u := c.undo.Swap(nil)
	if u == nil {
		return
	}
	u.ns.cw.RLock()
	_, _ = u.ns.b.WriteAt(u.old, u.off)
	u.ns.cw.RUnlock()
}

// disabledWriteStatus is the status of a Write an I/O queue executed
// under the disabled-write-applied quirk: Command Sequence Error when the
// controller is disabled, as if it had not run.
func (q *queue) disabledWriteStatus(st nvme.Status) nvme.Status {
	if q.t.quirks.disabledWriteApplied && q.qid != 0 && !q.ctrl.enabled.Load() {
		return nvme.StatusCommandSequenceError
	}
	return st
}

// fabricsPSDTOK reports whether flags carry a PSDT a Fabrics command may
// use: 00b (no data, or SGLs for a command that transfers data), 10b
// (data transferred, SGLs) per NVMe Base 2.2 Fig. 95, and 01b, which Fig.
// 95 reserves but Linux and SPDK hosts send (the SGL value of Fig. 91).
func (q *queue) fabricsPSDTOK(flags uint8) bool {
	switch flags & nvme.PSDTMask {
	case nvme.PSDTSGL:
		return true
	case 0x00, 0x80:
		return !q.t.quirks.fabricsPSDTStrict
	}
	return false
}

// thirdLiveController reports, for the mixed-controller-model quirk,
// whether two other controllers of c's host and subsystem are associated.
func (t *Target) thirdLiveController(c *controller) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, o := range t.ctrls {
		if o != c && o.sub == c.sub && o.host == c.host && !o.ended.Load() {
			n++
		}
	}
	return n >= 2
}
