package target

import (
	"bytes"
	"encoding/binary"

	"github.com/nvmftest/nvmftest/nvme"
)

// prepareIO checks an NVM command before its data moves: namespace, LBA
// range, MDTS and the SGL.
func (q *queue) prepareIO(c *command, inLen uint32) nvme.Status {
	s := &c.sqe
	switch s.Opcode {
	case nvme.CmdRead, nvme.CmdWrite, nvme.CmdCompare, nvme.CmdWriteZeroes, nvme.CmdDSM, nvme.CmdFlush:
	default:
		return nvme.StatusInvalidOpcode
	}
	switch f := s.Fuse(); {
	case f == nvme.FuseMask,
		f == nvme.FuseFirst && s.Opcode != nvme.CmdCompare,
		f == nvme.FuseSecond && s.Opcode != nvme.CmdWrite:
		c.ploc = 1
		return nvme.StatusInvalidField
	}
	if s.Opcode == nvme.CmdFlush && s.NSID == 0xFFFFFFFF {
		return q.checkSGL(c, 0, false, inLen)
	}
	ns := q.ctrl.sub.table().get(s.NSID)
	if ns == nil && q.t.quirks.inactiveNSIDReadOK && s.Opcode == nvme.CmdRead && s.NSID != 0 && s.NSID <= MaxNSID {
		ns = inactiveNSIDPhantom
	}
	if ns == nil {
		c.ploc = 4
		if q.t.quirks.inactiveNSIDInvalidField && s.NSID != 0 && s.NSID <= MaxNSID {
			return nvme.StatusInvalidField
		}
		return nvme.StatusInvalidNamespace
	}
	c.ns = ns
	if st := q.port.pathStatus(ns); st != 0 {
		return st
	}
	switch s.Opcode {
	case nvme.CmdFlush:
		return q.checkSGL(c, 0, false, inLen)
	case nvme.CmdDSM:
		nr := s.CDW10&0xFF + 1
		return q.checkSGL(c, nr*nvme.DSMRangeSize, true, inLen)
	}
	slba, nlb := s.SLBA(), uint64(s.NLB())
	if slba >= ns.nlba || nlb > ns.nlba-slba ||
		q.t.quirks.lastLBAReadFails && s.Opcode == nvme.CmdRead && nlb == ns.nlba-slba {
		c.ploc = 40
		return nvme.StatusLBAOutOfRange
	}
	if s.Opcode == nvme.CmdWriteZeroes {
		return q.checkSGL(c, 0, false, inLen)
	}
	n := nlb << ns.shift
	if n > uint64(q.t.mdts) {
		c.ploc = 48
		if q.t.quirks.mdtsClose {
			return statusMDTSClose
		}
		return nvme.StatusInvalidField
	}
	return q.checkSGL(c, uint32(n), s.Opcode != nvme.CmdRead, inLen)
}

// execIO runs an NVM command whose data is in.
func (q *queue) execIO(c *command) {
	if c.sqe.Fuse() == nvme.FuseFirst {
		q.execFused(c, c.peer)
		return
	}
	s := &c.sqe
	if s.Opcode == nvme.CmdFlush {
		// Flush of NSID FFFFFFFFh has no namespace (c.ns is nil).
		q.complete(c, q.flush(c))
		return
	}
	ns := c.ns
	off := int64(s.SLBA() << ns.shift)
	st := nvme.StatusSuccess
	switch s.Opcode {
	case nvme.CmdRead:
		if q.t.quirks.readsFail {
			st = nvme.StatusInternalError
			break
		}
		data := c.buf
		if _, null := ns.b.(*NullBackend); null && len(data) <= len(zeroes) {
			// A null read is zeroes: send them from one shared buffer
			// rather than clearing this command's on every read.
			data = zeroes[:len(data)]
		} else if _, err := ns.b.ReadAt(data, off); err != nil {
			st = q.ioError(ns, nvme.StatusUnrecoveredRead)
			break
		}
		success := q.flowOff && q.t.cfg.C2HSuccess || q.sqhdRarely()
		if err := q.sendData(c, data, success); err != nil || success {
			if c.st != nil {
				c.st.record(c, nvme.StatusSuccess) // no response capsule: complete is not called
			}
			q.outstanding.Add(-1)
			q.put(c)
			return
		}
	case nvme.CmdWrite:
		if q.t.quirks.writesDropped {
			break
		}
		q.recordUndo(ns, c.buf, off)
		st = q.disabledWriteStatus(q.write(ns, c.buf, off, s.FUA()))
		if q.t.quirks.staleWriteAfterLoss {
			q.lastWrite.Store(&staleWrite{ns: ns, data: append([]byte(nil), c.buf...), off: off})
		}
	case nvme.CmdCompare:
		st = q.compare(ns, c.buf, off)
		if q.t.quirks.compareAlwaysEqual && st.Code() == nvme.StatusCompareFailure {
			st = nvme.StatusSuccess
		}
	case nvme.CmdWriteZeroes:
		n := int64(s.NLB()) << ns.shift
		var err error
		ns.cw.RLock()
		if q.t.quirks.writeZeroesNoop {
			// the quirk: nothing is zeroed
		} else if s.CDW12&nvme.WZDeallocate != 0 {
			err = ns.b.Deallocate(off, n)
		} else {
			err = ns.b.WriteZeroes(off, n)
		}
		// FUA on Write Zeroes (CDW12 bit 30) is FUA as on Write.
		if err == nil && q.durable(ns, s.FUA()) {
			err = ns.b.Flush()
		}
		ns.cw.RUnlock()
		if err != nil {
			st = q.ioError(ns, nvme.StatusWriteFault)
		}
	case nvme.CmdDSM:
		st = q.dsm(c)
	}
	q.complete(c, st)
}

// durable reports whether a write to ns must be on stable storage before
// it completes: FUA, or the host disabled this controller's volatile write
// cache (Set Features 06h WCE=0). A namespace without a volatile cache
// (memory, null) is always durable as far as the host can tell.
func (q *queue) durable(ns *namespace, fua bool) bool {
	return ns.vwc && (fua || q.ctrl.writeThrough.Load())
}

// writeDurable writes b at off and returns once it is on stable storage.
func (ns *namespace) writeDurable(b []byte, off int64) error {
	if ns.fua != nil {
		_, err := ns.fua.WriteAtFUA(b, off)
		return err
	}
	if _, err := ns.b.WriteAt(b, off); err != nil {
		return err
	}
	return ns.b.Flush()
}

// ioError is the status of a backend error on ns: st, unless the namespace
// was removed while the command was in flight, which then completes as a
// command to an inactive NSID would (Base 2.x 8.1.16), as prepareIO
// answers one: Invalid Namespace or Format.
func (q *queue) ioError(ns *namespace, st nvme.Status) nvme.Status {
	if q.ctrl.sub.table().get(ns.id) != ns {
		return nvme.StatusInvalidNamespace
	}
	return st
}

func (q *queue) write(ns *namespace, b []byte, off int64, fua bool) nvme.Status {
	var err error
	ns.cw.RLock()
	if q.durable(ns, fua) {
		err = ns.writeDurable(b, off)
	} else {
		_, err = ns.b.WriteAt(b, off)
	}
	ns.cw.RUnlock()
	if err != nil {
		return q.ioError(ns, nvme.StatusWriteFault)
	}
	return nvme.StatusSuccess
}

// compare reads the blocks back and compares them with want. Compare is
// not on the hot path, so it allocates its read buffer.
func (q *queue) compare(ns *namespace, want []byte, off int64) nvme.Status {
	got := make([]byte, len(want))
	if _, err := ns.b.ReadAt(got, off); err != nil {
		return q.ioError(ns, nvme.StatusUnrecoveredRead)
	}
	if !bytes.Equal(got, want) {
		return nvme.StatusCompareFailure
	}
	return nvme.StatusSuccess
}

// execFused runs a Compare and Write pair atomically with respect to every
// other write of the namespace.
func (q *queue) execFused(first, second *command) {
	if second == nil {
		q.complete(first, nvme.StatusAbortFusedMissing)
		return
	}
	ns := first.ns
	if second.ns != ns || first.sqe.SLBA() != second.sqe.SLBA() || first.sqe.NLB() != second.sqe.NLB() {
		q.complete(first, nvme.StatusInvalidField)
		q.complete(second, nvme.StatusAbortFusedFail)
		return
	}
	off := int64(first.sqe.SLBA() << ns.shift)
	ns.cw.Lock()
	st := q.compare(ns, first.buf, off)
	st2 := nvme.StatusAbortFusedFail
	if st == nvme.StatusSuccess {
		var err error
		if q.durable(ns, second.sqe.FUA()) {
			err = ns.writeDurable(second.buf, off)
		} else {
			_, err = ns.b.WriteAt(second.buf, off)
		}
		st2 = nvme.StatusSuccess
		if err != nil {
			st2 = q.ioError(ns, nvme.StatusWriteFault)
		}
	}
	ns.cw.Unlock()
	q.complete(first, st)
	q.complete(second, st2)
}

// dsm deallocates the ranges of a Dataset Management command with AD, all
// or nothing as far as range checks go: every range is checked before any
// is deallocated.
func (q *queue) dsm(c *command) nvme.Status {
	ns := c.ns
	if c.sqe.CDW11&nvme.DSMAD == 0 {
		return nvme.StatusSuccess // hints only
	}
	for b := c.buf; len(b) >= nvme.DSMRangeSize; b = b[nvme.DSMRangeSize:] {
		nlb := uint64(binary.LittleEndian.Uint32(b[4:]))
		slba := binary.LittleEndian.Uint64(b[8:])
		if nlb != 0 && (slba >= ns.nlba || nlb > ns.nlba-slba) {
			return nvme.StatusLBAOutOfRange
		}
	}
	ns.cw.RLock()
	defer ns.cw.RUnlock()
	for b := c.buf; len(b) >= nvme.DSMRangeSize; b = b[nvme.DSMRangeSize:] {
		nlb := uint64(binary.LittleEndian.Uint32(b[4:]))
		slba := binary.LittleEndian.Uint64(b[8:])
		if nlb == 0 {
			continue
		}
		if err := ns.b.Deallocate(int64(slba<<ns.shift), int64(nlb<<ns.shift)); err != nil {
			return q.ioError(ns, nvme.StatusInternalError)
		}
	}
	if q.t.quirks.dsmWrongFill {
		ff := bytes.Repeat([]byte{0xFF}, 1<<ns.shift)
		for b := c.buf; len(b) >= nvme.DSMRangeSize; b = b[nvme.DSMRangeSize:] {
			nlb := uint64(binary.LittleEndian.Uint32(b[4:]))
			slba := binary.LittleEndian.Uint64(b[8:])
			for i := range nlb {
				_, _ = ns.b.WriteAt(ff, int64((slba+i)<<ns.shift))
			}
		}
	}
	// Deallocated blocks read as zeroes (DLFEAT); with the write cache
	// disabled that must survive a power loss too.
	if q.durable(ns, false) && ns.b.Flush() != nil {
		return q.ioError(ns, nvme.StatusWriteFault)
	}
	return nvme.StatusSuccess
}

func (q *queue) flush(c *command) nvme.Status {
	if q.t.quirks.flushFails {
		return nvme.StatusInternalError
	}
	if c.ns != nil {
		if c.ns.b.Flush() != nil {
			return q.ioError(c.ns, nvme.StatusWriteFault)
		}
		return nvme.StatusSuccess
	}
	for _, ns := range q.ctrl.sub.table().list() {
		// A namespace removed meanwhile is no longer one of "all".
		if ns.b.Flush() != nil && q.ioError(ns, nvme.StatusWriteFault) == nvme.StatusWriteFault {
			return nvme.StatusWriteFault
		}
	}
	return nvme.StatusSuccess
}

// zeroes is what a null namespace reads (never written). Untouched BSS, so
// it costs no memory beyond the kernel's shared zero page.
var zeroes [1 << 20]byte
