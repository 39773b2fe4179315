package hostconform

import (
	"fmt"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
)

// In-band authentication (NVMe Base 2.2 3.3.2.2, 8.3.4.2; DH-HMAC-CHAP):
// a controller that requires it, and one that refuses the host's secret.
func init() { register(securityChecks...) }

// The DH-HMAC-CHAP secrets of the security checks: the one the test
// controller holds for the host and another one, which fails. Fresh per
// process: nothing of them is worth keeping.
var (
	authHostKey  = nvme.NewDHCHAPKey(0).String()
	authWrongKey = nvme.NewDHCHAPKey(0).String()
)

// authText is NVMe Base 2.1 3.3.2.3's sentence (Base 2.2 3.3.2.2 keeps
// it): the host's duty, which the controller enforces with
// Authentication Required.
const authText = "NVMe in-band authentication shall be performed before the queues may be used to perform other Fabrics commands, Admin commands, or I/O commands."

var securityChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-AUTH-001", Section: "NVMe Base 2.2 3.3.2.2, 8.3.4.2", Keyword: suites.Shall,
			Title:      "On every queue whose Connect response requires authentication (AUTHREQ.ATR) the host completes DH-HMAC-CHAP before any other command",
			Text:       authText,
			Statements: []string{"B-3.3.2.2-02"},
		},
		Area: "fabrics", Deviation: "auth-cmd-before",
		Controller: authController(authHostKey),
		Run: func(t *T) {
			authNeedsNQN(t)
			t.MustConnect("dhchap_secret", authHostKey)
			var problems []string
			queues := 0
			for _, c := range t.Ctrl.Conns() {
				if !authRequired(c) {
					continue
				}
				queues++
				problems = append(problems, authBefore(c)...)
			}
			if queues == 0 {
				t.Failf("%s: no Connect response asked the host to authenticate", t.Check.ID)
			}
			if ok := authSucceeded(t); ok == 0 {
				// Nothing to judge: a host that never authenticated may
				// not have been given the secret.
				t.Failf("%s: the host completed no authentication with the secret it was given", t.Check.ID)
			}
			t.Detail("%d queues authenticated", queues)
			t.ConformNone(problems, "other commands before authentication", "authentication before other commands")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-AUTH-002", Section: "NVMe Base 2.2 3.3.2.2, 8.3.4.2", Keyword: suites.Shall,
			Title:      "After the controller failed its authentication (AUTH_Failure1) the host uses the queue for nothing but another authentication",
			Text:       authText,
			Statements: []string{"B-3.3.2.2-02"},
		},
		Area: "fabrics", Deviation: "auth-failure-ignored",
		Controller: authController(authHostKey),
		Run: func(t *T) {
			authNeedsNQN(t)
			if err := t.Connect("dhchap_secret", authWrongKey); err == nil {
				t.Detail("the host control reported the connect as done")
			}
			var problems []string
			failed := 0
			for _, c := range t.Ctrl.Conns() {
				seq := authFailure1(c)
				if seq == 0 {
					continue
				}
				failed++
				for _, f := range c.Sent() {
					if s := Command(f); s != nil && f.Seq > seq && !isAuthCommand(s) {
						problems = append(problems, fmt.Sprintf("connection %d: opcode %#x (fctype %#x) after AUTH_Failure1", c.ID(), s.Opcode, s.FCType()))
					}
				}
			}
			if failed == 0 {
				t.Failf("%s: the host got no AUTH_Failure1 (did it authenticate with the secret it was given?)", t.Check.ID)
			}
			t.ConformNone(problems, "other commands after a failed authentication", "no other command after a failed authentication")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-AUTH-003", Section: "NVMe Base 2.1 8.3.4.5.1", Keyword: suites.Shall,
			Title:      "The host's DH-HMAC-CHAP_Reply follows the controller's choice (T_ID, a response of the chosen hash's length, a DH value of the chosen group's size) and, authenticating the controller too, carries its own challenge and ends with DH-HMAC-CHAP_Success2",
			Text:       "the host shall send a DH-HMAC-CHAP_Reply message carrying the same transaction identifier value (T_ID), the response R1 to the challenge value C1, and its own DH exponential ... If bidirectional authentication is requested, then the DH-HMAC-CHAP_Reply message shall carry also a sequence number S2 and a random challenge value C2 that differs from the challenge value C1 ... if the authentication verification by the host succeeds, then the host shall send a DH-HMAC-CHAP_Success2 message",
			Statements: []string{"B-8.3.4.5.1-01", "B-8.3.4.5.1-02"},
		},
		Area: "fabrics", Deviation: "auth-no-success2",
		Controller: authBidiController,
		Run: func(t *T) {
			authNeedsNQN(t)
			// A host that breaks the exchange fails to connect: judged
			// from the wire either way.
			if err := t.Connect("dhchap_secret", authHostKey, "dhchap_ctrl_secret", authCtrlKey); err != nil {
				t.Detail("the connect failed: %v", err)
			}
			seen := map[string]bool{}
			var problems []string
			queues := 0
			for _, c := range t.Ctrl.Conns() {
				if !authRequired(c) {
					continue
				}
				ms := authMessages(c)
				if !authChallenged(ms) {
					continue
				}
				queues++
				for _, p := range authReplyProblems(ms) {
					if !seen[p] {
						seen[p] = true
						problems = append(problems, p)
					}
				}
			}
			if queues == 0 {
				// SHA-384 and the DH groups are optional for a host
				// (SHA-256 and ffdhe2048 are the mandatory ones): a host
				// that offered neither got no Challenge to answer.
				t.Skipf("the controller sent no DH-HMAC-CHAP_Challenge: the host did not offer SHA-384 with ffdhe2048")
			}
			t.Detail("%d queues challenged (SHA-384, ffdhe2048, both ways)", queues)
			t.ConformAll(problems, "a Reply that follows the Challenge, then Success2")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-AUTH-004", Section: "NVMe Base 2.1 8.3.4.5.1", Keyword: suites.Shall,
			Title:      "A host authenticating the controller that gets a wrong response in DH-HMAC-CHAP_Success1 sends AUTH_Failure2, disconnects, and sends nothing else",
			Text:       "If the authentication verification fails, then the host shall send an AUTH_Failure2 message and disconnect the NVMe over Fabrics connection upon transmitting it.",
			Statements: []string{"B-8.3.4.5.1-02", "B-3.3.2.2-02"},
		},
		Area: "fabrics", Deviation: "auth-ctrl-unchecked",
		Controller: func(s *Setup) {
			authBidiController(s)
			s.ToHost = wrongSuccess1
			// The host's AUTH_Failure2 does not reach the target, which
			// would close the connection on it: the test controller
			// completes it, and the close is the host's to do.
			s.FromHost = func(c *Conn, f *Frame) [][]byte {
				if p, ok := f.PDU.(*tcp.CapsuleCmd); ok && isAuthCommand(&p.SQE) {
					if h, err := nvme.PeekAuth(f.Data()); err == nil && h.Type == nvme.AuthCommonMessages && h.ID == nvme.AuthFailure2ID {
						_ = c.Inject(capsuleResp(c, p.SQE.CID, nvme.StatusSuccess))
						return nil
					}
				}
				return pass(f)
			}
		},
		Run: func(t *T) {
			authNeedsNQN(t)
			_ = t.Connect("dhchap_secret", authHostKey, "dhchap_ctrl_secret", authCtrlKey) // expected to fail
			bad, success1 := injected(t.Ctrl.Conns(), tcp.TypeC2HData)
			if bad == nil {
				t.Failf("%s: the host got no DH-HMAC-CHAP_Success1 (did it authenticate the controller with the secret it was given?)", t.Check.ID)
			}
			var problems []string
			failure2 := false
			for _, m := range authMessages(bad) {
				if m.fromHost && m.seq > success1.Seq {
					if h, err := nvme.PeekAuth(m.data); err == nil && h.Type == nvme.AuthCommonMessages && h.ID == nvme.AuthFailure2ID {
						failure2 = true
					}
				}
			}
			if !failure2 {
				problems = append(problems, "no AUTH_Failure2")
			}
			for _, f := range bad.Sent() {
				if s := Command(f); s != nil && f.Seq > success1.Seq && !isAuthCommand(s) {
					problems = append(problems, "other commands after the failed verification")
					break
				}
			}
			if by := t.WaitClosed(bad); by != "host" && by != "host reset" {
				problems = append(problems, "connection kept")
			}
			t.ConformAll(problems, "AUTH_Failure2, then disconnect")
		},
	},
}

// authCtrlKey is the controller's DH-HMAC-CHAP secret of the checks that
// authenticate both ways.
var authCtrlKey = nvme.NewDHCHAPKey(0).String()

// authBidiController requires DH-HMAC-CHAP both ways of the run's host,
// with SHA-384 and ffdhe2048: a hash and a group that are not the first
// a host proposes, so the host must follow the controller's choice.
func authBidiController(s *Setup) {
	if s.HostNQN == "" {
		return
	}
	s.Config.DHCHAP = append(s.Config.DHCHAP, target.DHCHAPHost{HostNQN: s.HostNQN, Key: authHostKey, CtrlKey: authCtrlKey, Hash: "sha384", DHGroup: "ffdhe2048"})
}

// wrongSuccess1 is a controller whose DH-HMAC-CHAP_Success1 carries a
// wrong response R2 (one byte changed): it fails the host's verification
// of the controller.
func wrongSuccess1(c *Conn, f *Frame) [][]byte {
	if _, ok := f.PDU.(*tcp.C2HData); !ok {
		return pass(f)
	}
	data := f.Data()
	var m nvme.DHCHAPSuccess1
	if m.Decode(data) != nil || !m.RValid || len(m.R) == 0 {
		return pass(f)
	}
	raw := append([]byte(nil), f.Raw...)
	raw[int(f.CH.PDO)+16] ^= 0x5A // the first byte of R2
	return [][]byte{FixDigests(raw)}
}

// authMsg is one authentication message on a connection: sent by the
// host (Authentication Send data) or got by it (Authentication Receive
// data), with the frame it ended in.
type authMsg struct {
	fromHost bool
	seq      int
	data     []byte
}

// authMessages returns the authentication messages on c in order.
func authMessages(c *Conn) []authMsg {
	var out []authMsg
	send := map[uint16][]byte{} // Authentication Send data arriving in H2CData
	recv := map[uint16][]byte{}
	kind := map[uint16]uint8{}
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			if f.Dir != FromHost || !isAuthCommand(&p.SQE) {
				delete(kind, p.SQE.CID)
				continue
			}
			kind[p.SQE.CID] = p.SQE.FCType()
			if p.SQE.FCType() == nvme.FabricsAuthSend {
				if d := f.Data(); len(d) > 0 {
					out = append(out, authMsg{fromHost: true, seq: f.Seq, data: d})
					delete(kind, p.SQE.CID)
				}
			}
		case *tcp.H2CData:
			if kind[p.CCCID] == nvme.FabricsAuthSend {
				send[p.CCCID] = append(send[p.CCCID], f.Data()...)
				if p.Last {
					out = append(out, authMsg{fromHost: true, seq: f.Seq, data: send[p.CCCID]})
					delete(send, p.CCCID)
				}
			}
		case *tcp.C2HData:
			if kind[p.CCCID] == nvme.FabricsAuthReceive {
				recv[p.CCCID] = append(recv[p.CCCID], f.Data()...)
				if p.Last {
					out = append(out, authMsg{seq: f.Seq, data: recv[p.CCCID]})
					delete(recv, p.CCCID)
				}
			}
		}
	}
	return out
}

// authChallenged reports whether the controller sent a
// DH-HMAC-CHAP_Challenge among ms.
func authChallenged(ms []authMsg) bool {
	for _, m := range ms {
		var ch nvme.DHCHAPChallenge
		if !m.fromHost && ch.Decode(m.data) == nil {
			return true
		}
	}
	return false
}

// authReplyProblems judges one queue's DH-HMAC-CHAP transaction from the
// host's side: its Reply against its Negotiate and the controller's
// Challenge, and its Success2 after a Success1 that carried R2.
func authReplyProblems(ms []authMsg) []string {
	var neg nvme.AuthNegotiate
	var ch nvme.DHCHAPChallenge
	var rep nvme.DHCHAPReply
	var s1 nvme.DHCHAPSuccess1
	haveNeg, haveCh, haveRep, haveS1, haveS2 := false, false, false, false, false
	for _, m := range ms {
		switch {
		case m.fromHost && !haveNeg && neg.Decode(m.data) == nil:
			haveNeg = true
		case !m.fromHost && !haveCh && ch.Decode(m.data) == nil:
			haveCh = true
		case m.fromHost && haveCh && !haveRep && rep.Decode(m.data) == nil:
			haveRep = true
		case !m.fromHost && haveRep && !haveS1 && s1.Decode(m.data) == nil:
			haveS1 = true
		case m.fromHost && haveS1:
			var s2 nvme.DHCHAPSuccess2
			haveS2 = haveS2 || s2.Decode(m.data) == nil && s2.TID == neg.TID
		}
	}
	switch {
	case !haveNeg:
		return []string{"no AUTH_Negotiate"}
	case !haveCh:
		return nil // the controller's part: nothing of the host's to judge
	case !haveRep:
		return []string{"no DH-HMAC-CHAP_Reply to the Challenge"}
	}
	var out []string
	if rep.TID != neg.TID {
		out = append(out, "Reply T_ID differs from the Negotiate's")
	}
	if hl := nvme.HashLen(ch.HashID); len(rep.R) != hl {
		out = append(out, fmt.Sprintf("response of %d bytes for a %d-byte hash", len(rep.R), hl))
	}
	switch want := nvme.DHGroupSize(ch.DHGroup); {
	case ch.DHGroup == nvme.DHGroupNull && len(rep.DHV) != 0:
		out = append(out, "a DH value with the NULL DH group")
	case ch.DHGroup != nvme.DHGroupNull && len(rep.DHV) != want:
		out = append(out, fmt.Sprintf("a DH value of %d bytes for a %d-byte group", len(rep.DHV), want))
	}
	switch {
	case !rep.CValid:
		out = append(out, "no challenge C2 although authenticating the controller")
	case string(rep.C2) == string(ch.C):
		out = append(out, "C2 equal to C1")
	case haveS1 && s1.RValid && !haveS2:
		out = append(out, "no DH-HMAC-CHAP_Success2 after the controller's Success1")
	}
	return out
}

// authController is a test controller that requires DH-HMAC-CHAP of the
// run's host with secret key (SHA-256, no DH group: the checks judge the
// host's order of commands, not its arithmetic).
func authController(key string) func(s *Setup) {
	return func(s *Setup) {
		if s.HostNQN == "" {
			return // the check skips: it needs the host's NQN
		}
		s.Config.DHCHAP = append(s.Config.DHCHAP, target.DHCHAPHost{HostNQN: s.HostNQN, Key: key})
	}
}

func authNeedsNQN(t *T) {
	if t.Cfg.HostNQN == "" {
		t.SkipNeeds("the host's NQN (--hostnqn)", "the test controller must know the host's NQN to hold its DH-HMAC-CHAP secret")
	}
}

// authRequired reports whether the Connect response on c set AUTHREQ.ATR.
func authRequired(c *Conn) bool {
	s, _ := c.Connect()
	if s == nil {
		return false
	}
	r := responseTo(c, s.CID)
	return r != nil && r.Status.Success() && r.DW0&nvme.ConnectAuthReqATR != 0
}

// isAuthCommand reports whether s is an Authentication Send or Receive.
func isAuthCommand(s *nvme.SQE) bool {
	return s.Opcode == nvme.CmdFabrics && (s.FCType() == nvme.FabricsAuthSend || s.FCType() == nvme.FabricsAuthReceive)
}

// authBefore lists the commands the host sent on c after its Connect and
// before its last authentication command, and those the controller
// answered with Authentication Required.
func authBefore(c *Conn) []string {
	var out []string
	last := 0
	for _, f := range c.Sent() {
		if s := Command(f); s != nil && isAuthCommand(s) {
			last = f.Seq
		}
	}
	pending := map[uint16]*nvme.SQE{}
	connected := false
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			if f.Dir != FromHost {
				continue
			}
			s := &p.SQE
			pending[s.CID] = s
			if IsConnect(s) {
				connected = true
				continue
			}
			if connected && f.Seq < last && !isAuthCommand(s) {
				out = append(out, fmt.Sprintf("connection %d: opcode %#x (fctype %#x) during authentication", c.ID(), s.Opcode, s.FCType()))
			}
		case *tcp.CapsuleResp:
			if p.CQE.Status.Code() == nvme.StatusAuthenticationRequired {
				if s := pending[p.CQE.CID]; s != nil && f.Seq > last {
					out = append(out, fmt.Sprintf("connection %d: opcode %#x (fctype %#x) answered Authentication Required", c.ID(), s.Opcode, s.FCType()))
				}
			}
		}
	}
	return out
}

// authFailure1 is the frame sequence number of the AUTH_Failure1 the host
// got on c (0 if none): the data of an Authentication Receive.
func authFailure1(c *Conn) int {
	return authMessage(c, nvme.AuthCommonMessages, nvme.AuthFailure1ID)
}

// authMessage is the frame sequence number of the first authentication
// message of type typ and id the host got on c in an Authentication
// Receive's data (0 if none).
func authMessage(c *Conn, typ, id uint8) int {
	recv := map[uint16]bool{}
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			if f.Dir == FromHost {
				recv[p.SQE.CID] = isAuthCommand(&p.SQE) && p.SQE.FCType() == nvme.FabricsAuthReceive
			}
		case *tcp.C2HData:
			if recv[p.CCCID] {
				if h, err := nvme.PeekAuth(f.Data()); err == nil && h.Type == typ && h.ID == id {
					return f.Seq
				}
			}
		}
	}
	return 0
}

// authSucceeded counts the queues on which the host got the controller's
// DH-HMAC-CHAP_Success1.
func authSucceeded(t *T) int {
	n := 0
	for _, c := range t.Ctrl.Conns() {
		if authMessage(c, nvme.AuthDHCHAPMessages, nvme.AuthSuccess1ID) > 0 {
			n++
		}
	}
	return n
}
