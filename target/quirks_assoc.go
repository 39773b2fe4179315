package target

import "time"

// assocQuirks are the quirks that prove the association-lifetime and
// termination checks (suites/association.go) can fail, one field each,
// embedded in quirkSet.
type assocQuirks struct {
	h2cTermReqBadPLENFatal bool
	sqOverrunConnOnly      bool
	adminLossKeepsAssoc    bool
	katoFromConnect        bool
	disconnectFirst        bool
	ioqRunsDisabled        bool
	staleWriteAfterLoss    bool
}

// assocQuirkTable lists them, in the format of quirkTable.
var assocQuirkTable = []Quirk{
	{Name: "h2ctermreq-bad-plen-fatal", Kind: QuirkDeviation,
		Does: "treats an H2CTermReq whose PLEN is outside 24..152 as a fatal error: sends a C2HTermReq and waits for the host to close (NVMe/TCP 1.0 3.5.1: the controller shall ignore it and shall terminate the connection immediately)",
		set:  func(s *quirkSet) { s.h2cTermReqBadPLENFatal = true }},
	{Name: "sq-overrun-connection-only", Kind: QuirkDeviation,
		Does: "on a capsule sent to a full submission queue ends only that connection: CSTS.CFS stays clear and the association lives on (NVMe Base 2.2 3.3.2.5, 3.3.2.6: stop, set CSTS.CFS, terminate the connection and end the association)",
		set:  func(s *quirkSet) { s.sqOverrunConnOnly = true }},
	{Name: "admin-loss-keeps-association", Kind: QuirkDeviation,
		Does: "when the admin queue's connection is lost keeps the association, its I/O queues serving commands, and stops its keep alive timer (NVMe Base 2.2 3.1.2: an association is terminated if the connection for the Admin Queue is lost)",
		set:  func(s *quirkSet) { s.adminLossKeepsAssoc = true }},
	{Name: "kato-from-connect", Kind: QuirkDeviation,
		Does: "starts the keep alive timer at Connect, before the controller is enabled, and keeps it running while disabled (NVMe Base 2.2 3.9.2: unless CC.EN and CSTS.RDY are 1 the Keep Alive Timer is inactive and a Keep Alive Timeout shall not occur)",
		set:  func(s *quirkSet) { s.katoFromConnect = true }},
	{Name: "disconnect-completes-first", Kind: QuirkDeviation,
		Does: "completes a Disconnect before the commands still waiting for their data, which it then aborts (NVMe Base 2.2 6.4: the completion queue entry for the Disconnect command shall be the last entry submitted to the I/O Queue Completion Queue)",
		set:  func(s *quirkSet) { s.disconnectFirst = true }},
	{Name: "ioq-runs-while-disabled", Kind: QuirkDeviation,
		Does: "keeps running the commands of an existing I/O queue after CC.EN is cleared (NVMe Base 2.2 3.3.2.3: a created I/O queue shall abort all commands with Command Sequence Error if the associated controller is disabled)",
		set:  func(s *quirkSet) { s.ioqRunsDisabled = true }},
	{Name: "stale-write-after-loss", Kind: QuirkDeviation,
		Does: "when an I/O queue's connection ends on its own (no Disconnect, its association alive), writes its last Write once more 2.5 s later (past the 1 s CQT it reports), like a stale command still running on a dead path (NVMe Base 2.2 3.3.2.4: stop processing the connection's commands within CQT)",
		set:  func(s *quirkSet) { s.staleWriteAfterLoss = true }},
}

// staleWrite is the last Write of an I/O queue, kept by the
// stale-write-after-loss quirk.
type staleWrite struct {
	ns   *namespace
	data []byte
	off  int64
}

// staleWriteDelay is how long after the loss of its connection the
// stale-write-after-loss quirk replays the last Write: past the CQT the
// target reports (1000 ms).
const staleWriteDelay = 2500 * time.Millisecond

// replayStaleWrite is the stale-write-after-loss quirk's late write.
func (q *queue) replayStaleWrite() {
	w := q.lastWrite.Load()
	if w == nil {
		return
	}
	time.AfterFunc(staleWriteDelay, func() {
		w.ns.cw.RLock()
		_, _ = w.ns.b.WriteAt(w.data, w.off)
		w.ns.cw.RUnlock()
	})
}
