package initiator

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// HostDeviation is a named departure from a host rule of the
// specifications that the initiator can be told to have
// (Options.Deviations), so host conformance (package hostconform) can be
// shown to notice: its sensitivity test connects the initiator with each
// deviation and expects the check that owns the rule to fail. They are
// the host's counterpart of the reference target's quirks. Off by
// default; each is one bool tested where the behaviour changes, behind a
// nil check on the I/O path, so a host without deviations pays nothing.
type HostDeviation struct {
	// Name is what Options.Deviations takes.
	Name string
	// Breaks names the statement (suites/statements.tsv) it breaks.
	Breaks string
	// Does says what the host then does.
	Does string

	set func(*deviations)
}

// deviations is the deviations a host has, one field each.
type deviations struct {
	// connection initialization
	icreqPFV1, icreqHPDA32                       bool
	ignoreCPDA, ignoreMAXH2CDATA                 bool
	acceptUnrequestedDigest, acceptInvalidICResp bool
	digestIgnoreICResp, digestOff                bool
	// Connect and controller bring-up
	cmdBeforeConnect, ioqHostIDDiffers, sqsizeBeyondMQES bool
	katoZero, connectTwice, identifyBeforeReady          bool
	connectCNTLIDStatic                                  bool
	// data transfer
	h2cRepeatLast, h2cTTAGZero, h2cDATAORelative, h2cLastEveryPDU bool
	inlineIgnoresIOCCSZ, sglInCapsuleTransport, cidCollide        bool
	c2hDATAOUnchecked, ddgstUnchecked, c2hSuccessIgnored          bool
	r2tUnchecked                                                  bool
	// fatal errors
	termReqIgnored, fatalNoClose, fatalNoTermReq bool
	fatalWrongFES, fatalFEIZero, termReqNoHeader bool
	// keep alive, command errors, authentication (hostconform's
	// behaviour areas)
	keepaliveLate, keepaliveTrafficBased, keepaliveTimeoutIgnored bool
	retryDNR, authCmdBefore, authFailureIgnored                   bool
	aerNone, aenNSIgnored, aenANAIgnored                          bool
	restartDiscoveryIgnored, treqTSCIgnored, aenDiscoveryIgnored  bool
	retryPathInaccessible, authNoSuccess2, authCtrlUnchecked      bool
	referralIgnored                                               bool
}

var hostDeviations = []HostDeviation{
	{"icreq-pfv1", "T-3.6.2.2-02", "sends ICReq with PFV 1", func(d *deviations) { d.icreqPFV1 = true }},
	{"icreq-hpda-32", "T-3.6.2.2-03", "asks HPDA 32 (a 132-byte alignment) in ICReq", func(d *deviations) { d.icreqHPDA32 = true }},
	{"ignore-cpda", "T-3.3-04", "pads host PDUs for no alignment, whatever CPDA the ICResp asked", func(d *deviations) { d.ignoreCPDA = true }},
	{"ignore-maxh2cdata", "T-3.3.2.2-07", "answers an R2T with H2CData of up to 1 MiB, whatever MAXH2CDATA", func(d *deviations) { d.ignoreMAXH2CDATA = true }},
	{"accept-unrequested-digest", "T-3.3.1.1-12", "uses a digest an ICResp enabled although the host did not ask for it", func(d *deviations) { d.acceptUnrequestedDigest = true }},
	{"accept-invalid-icresp", "T-3.1-07", "takes an ICResp with an invalid field (CPDA above 31, MAXH2CDATA not a dword multiple)", func(d *deviations) { d.acceptInvalidICResp = true }},
	{"digest-ignore-icresp", "T-3.3.1.1-05", "uses the digests it asked for even when the ICResp refused them", func(d *deviations) { d.digestIgnoreICResp = true }},
	{"digest-off", "T-3.3.1.1-03", "sends no digests although the ICResp enabled them", func(d *deviations) { d.digestOff = true }},
	{"cmd-before-connect", "T-3.1-03", "sends a Keep Alive on the admin queue before its Connect", func(d *deviations) { d.cmdBeforeConnect = true }},
	{"ioq-hostid-differs", "B-6.3-33", "sends another HOSTID in the I/O queues' Connect data than in the admin queue's", func(d *deviations) { d.ioqHostIDDiffers = true }},
	{"sqsize-beyond-mqes", "B-3.3.3.1-01", "asks I/O queues one entry larger than CAP.MQES allows", func(d *deviations) { d.sqsizeBeyondMQES = true }},
	{"kato-zero", "T-3.4-01", "sends KATO 0 in the admin Connect and no Keep Alive", func(d *deviations) { d.katoZero = true }},
	{"connect-twice", "B-3.3.2.2-01", "sends a second Connect on each I/O queue after the first succeeded", func(d *deviations) { d.connectTwice = true }},
	{"identify-before-ready", "B-3.3.2.2-03", "sends Identify before enabling the controller (CSTS.RDY 0)", func(d *deviations) { d.identifyBeforeReady = true }},
	{"connect-cntlid-static", "B-6.3-35", "asks CNTLID 1 in its first admin Connect instead of FFFFh", func(d *deviations) { d.connectCNTLIDStatic = true }},
	{"h2c-repeat-last", "T-3.3.2.2-04", "sends the last H2CData of every R2T a second time", func(d *deviations) { d.h2cRepeatLast = true }},
	{"h2c-ttag-zero", "T-3.3.2.2-12", "sends TTAG 0 in every H2CData instead of the R2T's", func(d *deviations) { d.h2cTTAGZero = true }},
	{"h2c-datao-relative", "T-3.3.2.2-06", "counts H2CData DATAO from the R2T's R2TO instead of the buffer's start", func(d *deviations) { d.h2cDATAORelative = true }},
	{"h2c-last-every-pdu", "T-3.3.2.2-11", "sets LAST_PDU on every H2CData", func(d *deviations) { d.h2cLastEveryPDU = true }},
	{"inline-ignores-ioccsz", "T-3.3.1-02", "sends writes of up to 64 KiB as in-capsule data, whatever IOCCSZ", func(d *deviations) { d.inlineIgnoresIOCCSZ = true }},
	{"sgl-incapsule-transport", "T-3.3.2-01", "describes in-capsule data with a Transport SGL Data Block descriptor", func(d *deviations) { d.sglInCapsuleTransport = true }},
	{"cid-collide", "B-3.3.2.1.1-01", "sends odd CIDs of I/O commands as the even CID below, which may be outstanding", func(d *deviations) { d.cidCollide = true }},
	{"c2h-datao-unchecked", "T-3.3.2.1-02", "takes a non-contiguous C2HData as it comes", func(d *deviations) { d.c2hDATAOUnchecked = true }},
	{"c2h-success-ignored", "T-3.3.2.1-07", "ignores the SUCCESS flag of a C2HData and waits for a response capsule", func(d *deviations) { d.c2hSuccessIgnored = true }},
	{"r2t-unchecked", "T-3.3.2.2-08", "answers an R2T whatever its R2TO, contiguous with the data sent before or not", func(d *deviations) { d.r2tUnchecked = true }},
	{"ddgst-unchecked", "T-3.5.2-05", "ignores data digest errors in C2HData", func(d *deviations) { d.ddgstUnchecked = true }},
	{"termreq-ignored", "T-3.5.1-06", "keeps the connection open after a C2HTermReq", func(d *deviations) { d.termReqIgnored = true }},
	{"fatal-no-close", "T-3.5.1-09", "after a fatal error sends its H2CTermReq and waits for the controller to close", func(d *deviations) { d.fatalNoClose = true }},
	{"fatal-no-termreq", "T-3.5.1-13", "closes without an H2CTermReq on a fatal error", func(d *deviations) { d.fatalNoTermReq = true }},
	{"fatal-wrong-fes", "T-3.3.2.1-03", "reports every fatal error with FES 02h (PDU Sequence Error)", func(d *deviations) { d.fatalWrongFES = true }},
	{"fatal-fei-zero", "T-3.3.2.1-04", "reports every fatal error with FEI 0", func(d *deviations) { d.fatalFEIZero = true }},
	{"termreq-no-header", "T-3.5.1-13", "sends its H2CTermReq without the offending PDU header as data", func(d *deviations) { d.termReqNoHeader = true }},
	{"keepalive-late", "B-3.9.3.2-01", "sends Keep Alive every 3/2 KATO instead of every KATO/2", func(d *deviations) { d.keepaliveLate = true }},
	{"keepalive-traffic-based", "B-3.9.4.2-01", "sends no Keep Alive while I/O is in flight, whether or not the controller reports Traffic Based Keep Alive (CTRATT.TBKAS)", func(d *deviations) { d.keepaliveTrafficBased = true }},
	{"keepalive-timeout-ignored", "B-3.9.3.2-03", "waits for ever for a Keep Alive completion and keeps the association when none comes", func(d *deviations) { d.keepaliveTimeoutIgnored = true }},
	{"retry-dnr", "B-F100-01", "re-submits an I/O command once, unchanged, after the controller failed it with DNR set", func(d *deviations) { d.retryDNR = true }},
	{"auth-cmd-before", "B-3.3.2.2-02", "sends a Property Get on a queue whose Connect response asked for authentication before authenticating", func(d *deviations) { d.authCmdBefore = true }},
	{"aer-none", "B-5.1.2-01", "keeps no Asynchronous Event Request outstanding (HandleEvents does nothing)", func(d *deviations) { d.aerNone = true }},
	{"aen-ns-ignored", "B-F151-01", "reads neither the Changed Namespace List nor the namespaces after an Attached Namespace Attribute Changed event", func(d *deviations) { d.aenNSIgnored = true }},
	{"aen-ana-ignored", "B-F151-02", "does not read the ANA log after an Asymmetric Namespace Access Change event", func(d *deviations) { d.aenANAIgnored = true }},
	{"restart-discovery-ignored", "B-F105-01", "ConnectAll gives up on an entry whose Connect got Connect Restart Discovery instead of reading the Discovery log again", func(d *deviations) { d.restartDiscoveryIgnored = true }},
	{"treq-tsc-ignored", "B-L70-14", "ConnectAll connects in the clear to an entry whose TREQ requires a secure channel", func(d *deviations) { d.treqTSCIgnored = true }},
	{"aen-discovery-ignored", "B-F152-01", "a persistent discovery controller does not read the Discovery log after a Discovery Log Page Change event", func(d *deviations) { d.aenDiscoveryIgnored = true }},
	{"retry-path-inaccessible", "B-F107-01", "re-submits an I/O command once on the same queue after the controller failed it with Asymmetric Access Inaccessible", func(d *deviations) { d.retryPathInaccessible = true }},
	{"auth-no-success2", "B-8.3.4.5.1-02", "authenticating the controller, verifies its response but sends no DH-HMAC-CHAP_Success2", func(d *deviations) { d.authNoSuccess2 = true }},
	{"auth-ctrl-unchecked", "B-8.3.4.5.1-02", "authenticating the controller, takes any response in DH-HMAC-CHAP_Success1 and sends Success2", func(d *deviations) { d.authCtrlUnchecked = true }},
	{"referral-ignored", "B-L70-21", "ConnectAll does not follow referral entries of a Discovery log", func(d *deviations) { d.referralIgnored = true }},
	{"auth-failure-ignored", "B-3.3.2.2-02", "goes on with the controller's bring-up (Property Get) on a queue whose authentication failed", func(d *deviations) { d.authFailureIgnored = true }},
}

// HostDeviations returns every deviation the initiator can have, by name.
func HostDeviations() []HostDeviation {
	out := append([]HostDeviation(nil), hostDeviations...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// parseDeviations turns Options.Deviations into the set; nil for none.
func parseDeviations(names []string) (*deviations, error) {
	if len(names) == 0 {
		return nil, nil
	}
	d := &deviations{}
	for _, n := range names {
		found := false
		for _, hd := range hostDeviations {
			if hd.Name == n {
				hd.set(d)
				found = true
			}
		}
		if !found {
			var all []string
			for _, hd := range hostDeviations {
				all = append(all, hd.Name)
			}
			return nil, fmt.Errorf("initiator: unknown host deviation %q (known: %s)", n, strings.Join(all, ", "))
		}
	}
	return d, nil
}

// icreq applies the ICReq deviations.
func (d *deviations) icreq(r *tcp.ICReq) {
	if d.icreqPFV1 {
		r.PFV = 1
	}
	if d.icreqHPDA32 {
		r.HPDA = 32
	}
}

// initialize is tcp.Conn.HostInitialize with the initialization
// deviations: the same exchange, with the checks a deviation turns off
// left out and the negotiation it bends.
func (d *deviations) initialize(conn *tcp.Conn, req tcp.ICReq) (*tcp.ICResp, error) {
	if !d.acceptUnrequestedDigest && !d.acceptInvalidICResp && !d.digestIgnoreICResp && !d.digestOff && !d.ignoreCPDA {
		return conn.HostInitialize(req)
	}
	if err := conn.Send(&req, nil); err != nil {
		return nil, err
	}
	p, err := conn.Next()
	if err != nil {
		return nil, err
	}
	v, ok := p.(*tcp.ICResp)
	if !ok {
		if t, ok := p.(*tcp.TermReq); ok {
			return nil, &tcp.PeerTerminated{FES: t.FES, FEI: t.FEI}
		}
		return nil, fmt.Errorf("nvme/tcp: expected ICResp, got %v", p.Type())
	}
	resp := *v
	hdr := append([]byte(nil), conn.RawHeader()...)
	if !d.acceptInvalidICResp {
		if resp.PFV != 0 {
			return &resp, &tcp.FatalError{FES: tcp.FESUnsupportedParameter, FEI: 8, Header: hdr, Reason: "ICResp PFV"}
		}
		if resp.CPDA > 31 || resp.MAXH2CDATA == 0 || resp.MAXH2CDATA%4 != 0 {
			return &resp, &tcp.FatalError{FES: tcp.FESInvalidHeaderField, FEI: 10, Header: hdr, Reason: "ICResp field"}
		}
	}
	if !d.acceptUnrequestedDigest && resp.DGST&^req.DGST != 0 {
		return &resp, &tcp.FatalError{FES: tcp.FESInvalidHeaderField, FEI: 11, Header: hdr, Reason: "ICResp enables digests not requested"}
	}
	dg := resp.DGST
	if d.digestIgnoreICResp {
		dg = req.DGST
	}
	if d.digestOff {
		dg = 0
	}
	cpda := resp.CPDA
	if d.ignoreCPDA || cpda > 31 {
		cpda = 0
	}
	// The controller sends what the ICResp says: receive that, send what
	// the deviation bends.
	conn.Negotiated(tcp.Digests{Header: resp.DGST&tcp.DgstHeader != 0, Data: resp.DGST&tcp.DgstData != 0}, req.HPDA, cpda)
	if dg != resp.DGST {
		conn.SetSendDigests(tcp.Digests{Header: dg&tcp.DgstHeader != 0, Data: dg&tcp.DgstData != 0})
	}
	return &resp, nil
}

// terminate is what the host does on a fatal transport error fe it
// detected, with the fatal-error deviations: normally an H2CTermReq (FES,
// FEI, the offending header) and the close.
func (q *Queue) terminate(fe *tcp.FatalError) {
	d := q.dev
	if d == nil {
		_ = q.conn.Terminate(fe)
		return
	}
	if d.fatalNoTermReq {
		_ = q.conn.Close()
		return
	}
	sent := *fe
	if d.fatalWrongFES {
		sent.FES = tcp.FESPDUSequenceError
	}
	if d.fatalFEIZero {
		sent.FEI = 0
	}
	if d.termReqNoHeader {
		sent.Header = nil
	}
	if !d.fatalNoClose {
		_ = q.conn.Terminate(&sent)
		return
	}
	// Stay until the controller closes, reading and discarding.
	_ = q.conn.SendTermReq(&sent)
	for {
		if _, err := q.conn.Next(); err != nil {
			var fe *tcp.FatalError
			if !errors.As(err, &fe) {
				return
			}
		}
	}
}

// capsule applies the deviations of a command capsule: the SGL of
// in-capsule data, the CID on the wire.
func (d *deviations) capsule(q *Queue, s *nvme.SQE, inline bool) {
	if d.sglInCapsuleTransport && inline && s.Opcode != nvme.CmdFabrics {
		s.DPTR.Type = nvme.SGLTransportDataBlock
	}
	if d.cidCollide && q.qid != 0 {
		s.CID &^= 1
	}
}

// h2cData applies the deviations of an H2CData answering r.
func (d *deviations) h2cData(h *tcp.H2CData, r *tcp.R2T) {
	if d.h2cTTAGZero {
		h.TTAG = 0
	}
	if d.h2cDATAORelative {
		h.DATAO -= r.R2TO
	}
	if d.h2cLastEveryPDU {
		h.Last = true
	}
}
