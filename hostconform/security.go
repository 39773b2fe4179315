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
			for _, p := range problems {
				t.Detail("%s", p)
			}
			if len(problems) > 0 {
				t.Conform("other commands before authentication", "authentication before other commands")
			}
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
			for _, p := range problems {
				t.Detail("%s", p)
			}
			if len(problems) > 0 {
				t.Conform("other commands after a failed authentication", "no other command after a failed authentication")
			}
		},
	},
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
