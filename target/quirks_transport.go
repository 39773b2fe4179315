package target

import "github.com/nvmftest/nvmftest/nvme/tcp"

// transportQuirks are the quirks that prove the transport (TCP-*) checks can fail, one field each,
// embedded in quirkSet.
type transportQuirks struct {
	c2hNoLastPDU        bool
	c2hSuccessKeepsFlow bool
	r2tCCCIDWrong       bool
	r2tPastMAXR2T       bool
	shortH2CDataFails   bool
	noR2TSmallWrite     bool
	digestErrorCloses   bool
	termReqPLENWrong    bool
	fatalStreakRefuses  bool
	fatalEndsAll        bool
	icrespFlagsSet      bool
	icrespCPDA32        bool
	icrespDigestUnasked bool
	hpdaIgnored         bool
	hdgstRefusedSent    bool
	ddgstRefusedSent    bool
	maxR2TInvalidField  bool
	h2cTermReqIgnored   bool
}

// transportQuirkTable lists them, in the format of quirkTable.
var transportQuirkTable = []Quirk{
	{Name: "c2h-no-last-pdu", Kind: QuirkDeviation,
		Does: "sends the last C2HData PDU of a command without LAST_PDU (NVMe/TCP 1.0 3.3.2.1, 3.6.2.9: LAST_PDU marks the last C2HData of a command)",
		set:  func(s *quirkSet) { s.c2hNoLastPDU = true }},
	{Name: "c2h-success-keeps-sq-flow-control", Kind: QuirkDeviation,
		Does: "ends the data of admin commands with a C2HData carrying SUCCESS (no response capsule), yet never disables SQ flow control, even when Connect asks (NVMe/TCP 1.0 3.3.2.1: SUCCESS may be set only if the controller supports disabling SQ flow control)",
		set:  func(s *quirkSet) { s.c2hSuccessKeepsFlow = true }},
	{Name: "r2t-cccid-wrong", Kind: QuirkDeviation,
		Does: "names in every R2T a command identifier one above the command's (and takes the H2CData by its TTAG alone) (NVMe/TCP 1.0 3.3.2.2: the R2T specifies the command identifier)",
		set:  func(s *quirkSet) { s.r2tCCCIDWrong = true }},
	{Name: "r2t-exceeds-maxr2t", Kind: QuirkDeviation,
		Does: "asks for a write's data in two R2Ts sent at once, whatever MAXR2T the host gave (NVMe/TCP 1.0 3.3.2.2: the controller shall not exceed MAXR2T)",
		set:  func(s *quirkSet) { s.r2tPastMAXR2T = true }},
	{Name: "write-short-h2cdata-fails", Kind: QuirkDeviation,
		Does: "fails with Data Transfer Error a write whose data comes in H2CData PDUs shorter than MAXH2CDATA before the last (NVMe/TCP 1.0 3.3.2.2: \"one or more H2CData PDUs\")",
		set:  func(s *quirkSet) { s.shortH2CDataFails = true }},
	{Name: "no-r2t-small-write", Kind: QuirkDeviation,
		Does: "never sends an R2T for an I/O write sent without in-capsule data whose data would have fit in the capsule: the command hangs (NVMe/TCP 1.0 3.3: all implementations shall support Command Data Buffers)",
		set:  func(s *quirkSet) { s.noR2TSmallWrite = true }},
	{Name: "digest-error-closes", Kind: QuirkDeviation,
		Does: "fails a command with a data digest error with Transient Transport Error, then closes the connection (NVMe/TCP 1.0 3.5.2: a data digest error is a non-fatal transport error)",
		set:  func(s *quirkSet) { s.digestErrorCloses = true }},
	{Name: "termreq-plen-wrong", Kind: QuirkDeviation,
		Does: "sends C2HTermReqs whose PLEN claims 160 bytes, beyond the 152 allowed (NVMe/TCP 1.0 3.6.2.5)",
		set:  func(s *quirkSet) { s.termReqPLENWrong = true }},
	{Name: "fatal-streak-refuses", Kind: QuirkDeviation,
		Does: "after six fatal transport errors with no successful Connect in between refuses the next Connect (NVMe/TCP 1.0 3.5.1: fatal errors are handled by terminating the connection)",
		set:  func(s *quirkSet) { s.fatalStreakRefuses = true }},
	{Name: "fatal-ends-all-associations", Kind: QuirkDeviation,
		Does: "on a fatal transport error ends every association of the target (NVMe/TCP 1.0 3.5.1: fatal errors are handled by terminating the connection)",
		set:  func(s *quirkSet) { s.fatalEndsAll = true }},
	{Name: "icresp-flags-set", Kind: QuirkDeviation,
		Does: "sets the reserved FLAGS bit 0 in ICResp (NVMe/TCP 1.0 3.6.2.3: FLAGS reserved)",
		set:  func(s *quirkSet) { s.icrespFlagsSet = true }},
	{Name: "icresp-cpda-32", Kind: QuirkDeviation,
		Does: "answers ICReq with CPDA 32, outside 0 to 31 (NVMe/TCP 1.0 3.6.2.3); a conforming host refuses it",
		set:  func(s *quirkSet) { s.icrespCPDA32 = true }},
	{Name: "icresp-digest-unasked", Kind: QuirkDeviation,
		Does: "grants header and data digests in every ICResp, asked for or not (NVMe/TCP 1.0 3.6.2.2: a digest the host did not ask for shall not be used); a conforming host refuses it",
		set:  func(s *quirkSet) { s.icrespDigestUnasked = true }},
	{Name: "hpda-ignored", Kind: QuirkDeviation,
		Does: "accepts any HPDA but pads C2HData as if it were 0 (NVMe/TCP 1.0 3.3: padding shall be inserted to achieve the required alignment)",
		set:  func(s *quirkSet) { s.hpdaIgnored = true }},
	{Name: "header-digest-refused-but-sent", Kind: QuirkDeviation,
		Does: "refuses a header digest in ICResp DGST but then sends (and expects) PDUs with header digests (NVMe/TCP 1.0 3.3.1.1: if not enabled, PDUs shall not contain a HDGST field)",
		set:  func(s *quirkSet) { s.hdgstRefusedSent = true }},
	{Name: "data-digest-refused-but-sent", Kind: QuirkDeviation,
		Does: "refuses a data digest in ICResp DGST but then sends (and expects) PDUs with data digests (NVMe/TCP 1.0 3.3.1.1: if not enabled, PDUs shall not contain a DDGST field)",
		set:  func(s *quirkSet) { s.ddgstRefusedSent = true }},
	{Name: "maxr2t-invalid-field", Kind: QuirkDeviation,
		Does: "refuses an ICReq with MAXR2T above 15 as a fatal Invalid PDU Header Field at MAXR2T (NVMe/TCP 1.0 3.1: an ICReq parameter the controller does not support is an Unsupported Parameter)",
		set:  func(s *quirkSet) { s.maxR2TInvalidField = true }},
	{Name: "h2ctermreq-ignored", Kind: QuirkDeviation,
		Does: "ignores an H2CTermReq and keeps the connection open (NVMe/TCP 1.0 3.5.1: in response to a H2CTermReq the controller shall terminate the connection)",
		set:  func(s *quirkSet) { s.h2cTermReqIgnored = true }},
}

// fatalStreakLimit is how many fatal errors without a successful Connect
// in between the fatal-streak-refuses quirk tolerates. It is below the
// eight TCP-FATAL-004 provokes so that a connection whose error the target
// has not yet counted when the check connects does not let it pass.
const fatalStreakLimit = 6

// termReqBadPLEN is the PLEN the termreq-plen-wrong quirk claims.
const termReqBadPLEN = 160

// deviateIC is the tcp.ICPolicy hook of the quirks that change the ICResp
// or refuse the ICReq; nil when none is on.
func (s *transportQuirks) deviateIC() func(*tcp.ICReq, []byte) (bool, uint16, uint32) {
	if !s.icrespFlagsSet && !s.icrespDigestUnasked && !s.maxR2TInvalidField {
		return nil
	}
	return func(req *tcp.ICReq, resp []byte) (bool, uint16, uint32) {
		if s.maxR2TInvalidField && req.MAXR2T > 15 {
			return true, tcp.FESInvalidHeaderField, 12
		}
		if s.icrespFlagsSet {
			resp[1] |= 1
		}
		if s.icrespDigestUnasked {
			resp[11] = tcp.DgstHeader | tcp.DgstData // DGST
		}
		return false, 0, 0
	}
}
