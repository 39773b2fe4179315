package target

import (
	"encoding/binary"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// tcp2Quirks are the quirks that prove the second round of transport and
// keep alive checks can fail (suites/transport_rules2.go and
// suites/keepalive_rules.go), one field each, embedded in quirkSet.
type tcp2Quirks struct {
	tbkasKeepAliveOnly  bool
	setKATONoRestart    bool
	katoStaleAtEnable   bool
	katoKeepsIOQueues   bool
	keepAliveLate       bool
	katoMax1h           bool
	termReqDataCHOnly   bool
	termReqFEIReserved  bool
	r2tReservedSet      bool
	h2cAfterLastIgnored bool
	r2tInOrderOnly      bool
	adminInCapsule4K    bool
	r2tWindowRepeats    bool
	feiNotLowest        bool
	katoDefaultZero     bool
}

// tcp2QuirkTable lists them, in the format of quirkTable.
var tcp2QuirkTable = []Quirk{
	{Name: "tbkas-keep-alive-only", Kind: QuirkDeviation,
		Does: "claims Traffic Based Keep Alive (CTRATT.TBKAS) but restarts its Keep Alive Timeout Interval only on Keep Alive and Set Features Keep Alive Timer: other admin and I/O commands do not keep the association alive (NVMe Base 2.2 3.9.4.1: a timeout occurs only after an interval in which no Admin or I/O command was fetched)",
		set:  func(s *quirkSet) { s.tbkasKeepAliveOnly = true }},
	{Name: "set-kato-no-restart", Kind: QuirkDeviation,
		Does: "neither restarts the keep alive timer on a successful Set Features Keep Alive Timer nor counts it as command traffic (NVMe Base 2.2 3.9.3.1, 3.9.4.1: the timer restarts, a new interval starts, when such a command completes successfully)",
		set:  func(s *quirkSet) { s.setKATONoRestart = true }},
	{Name: "kato-stale-at-enable", Kind: QuirkDeviation,
		Does: "measures the keep alive timeout from the Connect, not from the timer's activation, so an association that waited longer than KATO between Connect and CC.EN=1 ends as soon as it is enabled (NVMe Base 2.2 3.9.2: activating the timer shall initialize it to the Keep Alive Timeout value)",
		set:  func(s *quirkSet) { s.katoStaleAtEnable = true }},
	{Name: "kato-keeps-io-queues", Kind: QuirkDeviation,
		Does: "on a Keep Alive Timeout closes the admin queue's connection but leaves the association's I/O queue connections open (NVMe Base 2.2 3.9.5: the controller shall terminate the NVMe Transport connections for this association)",
		set:  func(s *quirkSet) { s.katoKeepsIOQueues = true }},
	{Name: "keep-alive-late", Kind: QuirkDeviation,
		Does: "completes a Keep Alive command to an I/O controller only KATO/2 after it was fetched, as a housekeeping pass every KATO/2 would (NVMe Base 2.2 5.1.14: the controller should process the Keep Alive command as soon as it is fetched)",
		set:  func(s *quirkSet) { s.keepAliveLate = true }},
	{Name: "kato-max-1h", Kind: QuirkDeviation,
		Does: "refuses a Keep Alive Timeout above one hour with Keep Alive Timeout Invalid (NVMe/TCP 1.0 3.4: the transport imposes no maximum; NVMe Base 2.2 3.9.1 refuses only values above the transport's maximum)",
		set:  func(s *quirkSet) { s.katoMax1h = true }},
	{Name: "termreq-data-common-header-only", Kind: QuirkDeviation,
		Does: "copies only the 8-byte common header of the offending PDU into a C2HTermReq's data (NVMe/TCP 1.0 3.5.1: the PDU data is filled with the PDU Header that was being processed)",
		set:  func(s *quirkSet) { s.termReqDataCHOnly = true }},
	{Name: "termreq-fei-reserved-set", Kind: QuirkDeviation,
		Does: "fills the FEI of C2HTermReqs with FES 02h, 04h and 05h with FFFFFFFFh (NVMe/TCP 1.0 3.6.2.5: for those FES the FEI is reserved)",
		set:  func(s *quirkSet) { s.termReqFEIReserved = true }},
	{Name: "r2t-reserved-set", Kind: QuirkDeviation,
		Does: "sets the reserved bytes 23:20 of every R2T (NVMe/TCP 1.0 3.6.2.10; reserved fields are cleared to zero, NVMe Base 2.2 1.4.2)",
		set:  func(s *quirkSet) { s.r2tReservedSet = true }},
	{Name: "h2cdata-after-last-ignored", Kind: QuirkDeviation,
		Does: "drops an H2CData PDU that arrives for a transfer whose R2T was already satisfied (LAST_PDU seen) instead of treating it as a fatal error (NVMe/TCP 1.0 3.3.2.2: an unexpected H2CData is a PDU Sequence Error)",
		set:  func(s *quirkSet) { s.h2cAfterLastIgnored = true }},
	{Name: "r2t-in-order-only", Kind: QuirkDeviation,
		Does: "treats H2CData for a command's R2T as a PDU Sequence Error while an R2T it sent earlier for another command is still unanswered (NVMe/TCP 1.0 3.3.2.2: R2Ts of different commands may be serviced in any order)",
		set:  func(s *quirkSet) { s.r2tInOrderOnly = true }},
	{Name: "admin-in-capsule-4k", Kind: QuirkDeviation,
		Does: "accepts at most 4,096 bytes of in-capsule data in admin command capsules; a larger one is a fatal error (NVMe/TCP 1.0 3.3.1, Figure 11: controllers must support in-capsule data up to 8,192 bytes in Fabrics and Admin command capsules)",
		set:  func(s *quirkSet) { s.adminInCapsule4K = true }},
	{Name: "r2t-window-repeats", Kind: QuirkDeviation,
		Does: "when the host's MAXR2T allows more than one outstanding R2T, sends with a write's R2T a second one asking for the same data again (NVMe/TCP 1.0 3.3.2.2: a further R2T may go out before the previous one's data, but R2Ts solicit the data sequentially, each R2TO the previous R2TO plus R2TL)",
		set:  func(s *quirkSet) { s.r2tWindowRepeats = true }},
	{Name: "fei-not-lowest", Kind: QuirkDeviation,
		Does: "for an ICReq with an invalid HPDA and reserved DGST bits set reports Invalid PDU Header Field at DGST (offset 11), not at HPDA (offset 10) (NVMe/TCP 1.0 3.6.2.5: with several errors the FEI indicates the lowest offset)",
		set:  func(s *quirkSet) { s.feiNotLowest = true }},
	{Name: "kato-default-zero", Kind: QuirkDeviation,
		Does: "reports 0 as the default Keep Alive Timeout (Get Features Select 001b), the default of transports without keep alive (NVMe Base 2.1 5.1.25.1.8: where the transport requires keep alive, as NVMe/TCP does, the default is 120,000 ms rounded up to the KAS granularity)",
		set:  func(s *quirkSet) { s.katoDefaultZero = true }},
}

// tcp2Traffic reports whether a keep alive quirk decides which fetched
// commands count as traffic for the keep alive timer.
func (s *quirkSet) tcp2Traffic() bool { return s.tbkasKeepAliveOnly || s.setKATONoRestart }

// countsAsTraffic is, under tbkas-keep-alive-only and set-kato-no-restart,
// whether a fetched command restarts the Keep Alive Timeout Interval.
func (q *queue) countsAsTraffic(sqe *nvme.SQE) bool {
	admin := q.qid == 0
	keepAlive := admin && sqe.Opcode == nvme.AdminKeepAlive
	setKATO := admin && sqe.Opcode == nvme.AdminSetFeatures && uint8(sqe.CDW10) == nvme.FeatKeepAliveTimer
	switch {
	case setKATO && q.t.quirks.setKATONoRestart:
		return false
	case q.t.quirks.tbkasKeepAliveOnly:
		return keepAlive || setKATO
	}
	return true
}

// sendR2TReservedSet sends r with its reserved bytes 23:20 set, the
// header digest (if negotiated) computed over what is sent.
func (q *queue) sendR2TReservedSet(r *tcp.R2T) error {
	d := q.conn.Rules().Digests
	b := tcp.AppendPDU(nil, r, nil, tcp.EncodeOptions{Digests: d})
	binary.LittleEndian.PutUint32(b[20:], 0xFFFFFFFF)
	if d.Header {
		binary.LittleEndian.PutUint32(b[tcp.HLenData:], tcp.Checksum(b[:tcp.HLenData]))
	}
	return q.conn.SendRaw(b)
}

// olderR2TOutstanding reports whether an R2T sent before c's is still
// waiting for its data (the r2t-in-order-only quirk).
func (q *queue) olderR2TOutstanding(c *command) bool {
	q.r2tMu.Lock()
	defer q.r2tMu.Unlock()
	return q.r2tOut.head != nil && q.r2tOut.head != c
}

// tcp2TermReq applies termreq-data-common-header-only and
// termreq-fei-reserved-set to the C2HTermReq fe is about to become.
func tcp2TermReq(qk *quirkSet, fe *tcp.FatalError) *tcp.FatalError {
	x := *fe
	if qk.termReqDataCHOnly && len(x.Header) > tcp.CommonHeaderSize {
		x.Header = x.Header[:tcp.CommonHeaderSize]
	}
	switch x.FES {
	case tcp.FESPDUSequenceError, tcp.FESDataOutOfRange, tcp.FESDataLimitExceeded:
		if qk.termReqFEIReserved {
			x.FEI = 0xFFFFFFFF
		}
	}
	return &x
}

// feiNotLowest is the fei-not-lowest quirk: an ICReq refused for its HPDA
// that also has reserved DGST bits set is reported at DGST instead.
func feiNotLowest(req *tcp.ICReq, err error) error {
	fe, ok := err.(*tcp.FatalError)
	if !ok || req == nil || fe.FES != tcp.FESInvalidHeaderField || fe.FEI != 10 || req.DGST&^(tcp.DgstHeader|tcp.DgstData) == 0 {
		return err
	}
	x := *fe
	x.FEI = 11 // DGST
	return &x
}
