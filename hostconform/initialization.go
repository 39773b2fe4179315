package hostconform

import (
	"errors"
	"fmt"

	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
)

// Connection initialization (NVMe/TCP 1.0 3.1, 3.3, 3.3.1.1, 3.6.2.2,
// 3.6.2.3): what the host's ICReq says and what it does with each
// ICResp the controller may send.
func init() { register(initChecks...) }

var initChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-IC-001", Section: "NVMe/TCP 1.0 3.1, 3.6.2.2", Keyword: suites.Shall,
			Title:      "The host's first PDU on every connection is an ICReq with HLEN and PLEN 128, PFV 0 and its reserved fields cleared",
			Text:       "Once a TCP connection has been established, the host sends an Initialize Connection Request (ICReq) PDU ... PFV ... shall be cleared to 0h",
			Statements: []string{"T-3.1-01", "T-3.6.2.2-01", "T-3.6.2.2-02", "T-3.6.2-02"},
		},
		Area: "transport", Deviation: "icreq-pfv1",
		Run: func(t *T) {
			_ = t.Connect() // a host whose ICReq is refused fails to connect: the wire says why
			conns := t.Ctrl.Conns()
			if len(conns) == 0 {
				t.Failf("%s: the host never connected to the test controller at %s", t.Check.ID, t.Cfg.Listen)
			}
			var problems []string
			for _, c := range conns {
				req, f := c.ICReq()
				switch {
				case f == nil:
					continue // closed before sending anything
				case req == nil:
					problems = append(problems, fmt.Sprintf("connection %d: first PDU %v, not ICReq", c.ID(), f.CH.Type))
					continue
				}
				if f.CH.HLEN != 128 || f.CH.PLEN != 128 {
					problems = append(problems, fmt.Sprintf("connection %d: ICReq HLEN %d PLEN %d", c.ID(), f.CH.HLEN, f.CH.PLEN))
				}
				if req.PFV != 0 {
					problems = append(problems, fmt.Sprintf("connection %d: ICReq PFV %d", c.ID(), req.PFV))
				}
				if f.CH.Flags != 0 || f.CH.PDO != 0 {
					problems = append(problems, fmt.Sprintf("connection %d: ICReq FLAGS %#x PDO %d (reserved)", c.ID(), f.CH.Flags, f.CH.PDO))
				}
				if req.DGST&^(tcp.DgstHeader|tcp.DgstData) != 0 {
					problems = append(problems, fmt.Sprintf("connection %d: ICReq DGST %#x has reserved bits", c.ID(), req.DGST))
				}
				for i := 16; i < len(f.Raw); i++ {
					if f.Raw[i] != 0 {
						problems = append(problems, fmt.Sprintf("connection %d: ICReq reserved byte %d is %#x", c.ID(), i, f.Raw[i]))
						break
					}
				}
			}
			t.ConformAll(problems, "ICReq first, HLEN/PLEN 128, PFV 0, reserved 0")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-IC-002", Section: "NVMe/TCP 1.0 3.3, 3.6.2.2", Keyword: suites.Shall,
			Title:      "The host's ICReq asks an HPDA of 0 to 31 (at most 128-byte alignment)",
			Text:       "HPDA ... in the range 0 to 31 ... Neither the Host PDU Data Alignment field (HPDA) nor the Controller PDU Data Alignment field shall exceed 128 bytes",
			Statements: []string{"T-3.6.2.2-03", "T-3.3-06"},
		},
		Area: "transport", Deviation: "icreq-hpda-32",
		Run: func(t *T) {
			_ = t.Connect()
			var problems []string
			seen := 0
			for _, c := range t.Ctrl.Conns() {
				if req, _ := c.ICReq(); req != nil {
					seen++
					if req.HPDA > 31 {
						problems = append(problems, fmt.Sprintf("connection %d: HPDA %d (%d-byte alignment)", c.ID(), req.HPDA, (int(req.HPDA)+1)*4))
					}
				}
			}
			if seen == 0 {
				t.Failf("%s: the host sent no ICReq to the test controller at %s", t.Check.ID, t.Cfg.Listen)
			}
			t.ConformAll(problems, "HPDA 0..31")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-IC-003", Section: "NVMe/TCP 1.0 3.3, 3.6.2.6, 3.6.2.8", Keyword: suites.Shall,
			Title:      "The host pads every CapsuleCmd with data and every H2CData to the CPDA the ICResp asked (64 bytes here), with exactly the padding needed",
			Text:       "An appropriate number of padding bytes shall be inserted by the controller or host in the PAD field to achieve the required alignment ... PDO ... shall be a multiple of the data alignment specified by the CPDA field",
			Statements: []string{"T-3.3-04", "T-3.6.2.6-02", "T-3.6.2.8-01"},
		},
		Area: "transport", Deviation: "ignore-cpda",
		Controller: func(s *Setup) { s.Config.CPDA = 15 },
		Run: func(t *T) {
			ioErr := t.Connect() // the Connect's own data is judged too
			if ioErr != nil {
				// NVMe/TCP 1.0 3.1 lets a host find a parameter it does
				// not support, saying so with an H2CTermReq (FES 06h at
				// the field's offset): then there is no padding to judge.
				if c := firstConn(t); c != nil && c.ICResp() != nil && !anyData(c) {
					r := hostReaction(t, c, icrespSeq(c), t.Cfg.CloseWait)
					want := fmt.Sprintf("H2CTermReq FES %#x FEI %#x", tcp.FESUnsupportedParameter, offICRespCPDA)
					if w := r.words(true); w == want {
						t.Skipf("the host does not support CPDA 15 and refused it as 3.1 allows (%s)", w)
					}
					t.Conform("refused CPDA 15: "+r.words(true), "PDO aligned to CPDA with the least padding, or "+want)
				}
			}
			if ioErr == nil {
				ioErr = t.IO("write", 4096, 8192)
			}
			if ioErr == nil {
				ioErr = t.IO("write", 64<<10, 64<<10)
			}
			var problems []string
			n := 0
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Sent() {
					if (f.CH.Type != tcp.TypeCapsuleCmd && f.CH.Type != tcp.TypeH2CData) || f.CH.PDO == 0 {
						continue
					}
					n++
					if want := pdo(int(f.CH.HLEN), f.CH.Flags&tcp.FlagHDGST != 0, 15); int(f.CH.PDO) != want {
						problems = append(problems, fmt.Sprintf("%s: PDO %d, CPDA 15 asks %d", describe(c, f), f.CH.PDO, want))
					}
				}
			}
			if n == 0 {
				t.Failf("%s: the host sent no PDU with data (%v)", t.Check.ID, ioErr)
			}
			t.Detail("%d PDUs with data", n)
			t.ConformAll(problems, "PDO aligned to CPDA with the least padding")
			if ioErr != nil {
				t.Failf("%s: the host's writes failed: %v", t.Check.ID, ioErr)
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-IC-004", Section: "NVMe/TCP 1.0 3.3.1.1, 3.1", Keyword: suites.Shall,
			Title:      "An ICResp enabling a digest the host did not ask for makes it send an H2CTermReq with FES 01h and FEI 11 (the DGST offset)",
			Text:       "If a host did not request the use of header digest or data digest in the ICReq PDU but the use of the digest was enabled by the controller in the ICResp PDU, then the host shall treat that ICResp PDU as a fatal transport error ... \"Invalid PDU Header Field\" and the Additional Error Information field containing the HDGST or DDGST field byte offset",
			Statements: []string{"T-3.3.1.1-12", "T-3.1-07"},
		},
		Area: "transport", Deviation: "accept-unrequested-digest",
		Controller: func(s *Setup) {
			s.ToHost = editICResp(func(req *tcp.ICReq, raw []byte) {
				if req.DGST&tcp.DgstHeader == 0 {
					raw[offICRespDGST] |= tcp.DgstHeader
				} else if req.DGST&tcp.DgstData == 0 {
					raw[offICRespDGST] |= tcp.DgstData
				}
			})
		},
		Run: func(t *T) { icrespRefused(t, offICRespDGST) },
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-IC-005", Section: "NVMe/TCP 1.0 3.1, 3.6.2.3", Keyword: suites.Indicative,
			Title:      "An ICResp with an invalid field (CPDA 32, outside 0 to 31) makes the host send an H2CTermReq with FES 01h and FEI 10 (the CPDA offset)",
			Text:       "Reception of an ICResp PDU with an invalid field is treated as a fatal transport error with the Fatal Error Status field in the H2CTermReq PDU set to \"Invalid PDU Header Field\" and the Additional Error Information field containing the invalid PDU field byte offset",
			Statements: []string{"T-3.1-07"},
		},
		Area: "transport", Deviation: "accept-invalid-icresp",
		Controller: func(s *Setup) {
			s.ToHost = editICResp(func(_ *tcp.ICReq, raw []byte) { raw[offICRespCPDA] = 32 })
		},
		Run: func(t *T) { icrespRefused(t, offICRespCPDA) },
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DG-001", Section: "NVMe/TCP 1.0 3.3.1.1", Keyword: suites.Shall,
			Title:      "With the header digest negotiated, every host PDU after the ICReq but H2CTermReq has HDGSTF set and a correct CRC32C HDGST",
			Text:       "If the PDU Header Digest is enabled, then all the subsequent PDUs transferred in this connection except H2CTermReq and C2HTermReq PDUs shall contain a HDGST field and have the HDGSTF flag set to '1'",
			Statements: []string{"T-3.3.1.1-03", "T-3.3.1.1-13"},
		},
		Area: "transport", Deviation: "digest-off",
		Run: func(t *T) {
			err := digestTraffic(t, "hdr_digest", tcp.DgstHeader)
			var problems []string
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Sent() {
					if !digestible(f.CH.Type) {
						continue
					}
					if f.CH.Flags&tcp.FlagHDGST == 0 {
						problems = append(problems, describe(c, f)+": no HDGST")
					} else if fe, ok := f.Err.(*tcp.FatalError); ok && fe.FES == tcp.FESHeaderDigestError {
						problems = append(problems, describe(c, f)+": wrong HDGST")
					}
				}
			}
			t.ConformAll(problems, "HDGST on every PDU")
			if err != nil {
				t.Failf("%s: %v", t.Check.ID, err)
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DG-002", Section: "NVMe/TCP 1.0 3.3.1.1", Keyword: suites.Shall,
			Title:      "With the data digest negotiated, every CapsuleCmd with in-capsule data and every H2CData has DDGSTF set and a correct CRC32C DDGST",
			Text:       "If the PDU Data Digest is enabled, then Command Capsule PDUs containing in-capsule data, H2CData PDUs, and C2HData PDUs transferred in this connection shall contain a DDGST field and have the DDGSTF flag set to '1'",
			Statements: []string{"T-3.3.1.1-08", "T-3.3.1.1-13"},
		},
		Area: "transport", Deviation: "digest-off",
		Run: func(t *T) {
			err := digestTraffic(t, "data_digest", tcp.DgstData)
			var problems []string
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Sent() {
					if f.CH.Type != tcp.TypeH2CData && (f.CH.Type != tcp.TypeCapsuleCmd || f.CH.PDO == 0) {
						continue
					}
					if f.CH.Flags&tcp.FlagDDGST == 0 {
						problems = append(problems, describe(c, f)+": no DDGST")
					} else if errors.Is(f.Err, tcp.ErrDataDigest) {
						problems = append(problems, describe(c, f)+": wrong DDGST")
					}
				}
			}
			t.ConformAll(problems, "DDGST on every PDU with data")
			if err != nil {
				t.Failf("%s: %v", t.Check.ID, err)
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DG-003", Section: "NVMe/TCP 1.0 3.3.1.1", Keyword: suites.Shall,
			Title:      "When the ICResp refuses the digests the host asked for, its PDUs carry none (or it abandons the connection)",
			Text:       "If PDU Header Digest is not enabled, then all subsequent PDUs shall not contain a HDGST field and shall have the HDGSTF flag ... cleared to '0' ... the host may refuse the connection establishment and terminate the NVMe/TCP connection",
			Statements: []string{"T-3.3.1.1-05", "T-3.3.1.1-10", "T-3.3.1.1-11", "T-3.6.2.2-04", "T-3.6.2.2-05"},
		},
		Area: "transport", Deviation: "digest-ignore-icresp",
		Controller: func(s *Setup) { s.Config.HeaderDigest, s.Config.DataDigest = false, false },
		Run: func(t *T) {
			err := t.Connect("hdr_digest", "true", "data_digest", "true")
			if err == nil {
				_ = t.IO("write", 4096, 4096)
				_ = t.IO("write", 64<<10, 64<<10)
			}
			var problems []string
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Sent() {
					if digestible(f.CH.Type) && f.CH.Flags&(tcp.FlagHDGST|tcp.FlagDDGST) != 0 {
						problems = append(problems, fmt.Sprintf("%s: FLAGS %#x", describe(c, f), f.CH.Flags))
					}
				}
			}
			if err != nil && len(problems) == 0 {
				t.Detail("the host abandoned the connection without its digests: %v", err)
			}
			t.ConformAll(problems, "no digests")
		},
	},
}

// digestTraffic connects the host asking for one digest and has it send
// in-capsule data, H2CData and commands without data; the controller
// grants it (or the check cannot judge: skipped). It returns the first
// error (the wire is judged first: it says why).
func digestTraffic(t *T, arg string, bit uint8) error {
	if err := t.Connect(arg, "true"); err != nil {
		return fmt.Errorf("the host did not connect: %w", err)
	}
	for _, c := range t.Ctrl.Conns() {
		if r := c.ICResp(); r != nil && r.DGST&bit == 0 {
			t.Skipf("the host did not ask for the digest it was told to (%s=true)", arg)
		}
	}
	for _, io := range []struct {
		rw       string
		bs, size int
	}{{"write", 4096, 8192}, {"write", 64 << 10, 64 << 10}, {"read", 4096, 8192}} {
		if err := t.IO(io.rw, io.bs, io.size); err != nil {
			return fmt.Errorf("the host's %s failed: %w", io.rw, err)
		}
	}
	return nil
}

// firstConn is the host's first connection to the check's controller.
func firstConn(t *T) *Conn {
	if cs := t.Ctrl.Conns(); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

// icrespSeq is the number of the ICResp the host got on c (0 if none).
func icrespSeq(c *Conn) int {
	for _, f := range c.Received() {
		if f.CH.Type == tcp.TypeICResp {
			return f.Seq
		}
	}
	return 0
}

// anyData reports whether the host sent a PDU with data on c.
func anyData(c *Conn) bool {
	for _, f := range c.Sent() {
		if (f.CH.Type == tcp.TypeCapsuleCmd || f.CH.Type == tcp.TypeH2CData) && f.CH.PDO != 0 {
			return true
		}
	}
	return false
}

// icrespRefused judges a host that got an ICResp it must refuse: an
// H2CTermReq with FES 01h and FEI fei on the connection, before anything
// else.
func icrespRefused(t *T, fei int) {
	err := t.Connect()
	conns := t.Ctrl.Conns()
	if len(conns) == 0 {
		t.Failf("%s: the host never connected to the test controller at %s", t.Check.ID, t.Cfg.Listen)
	}
	c := conns[0]
	since := icrespSeq(c)
	if since == 0 {
		t.Failf("%s: the host's first connection got no ICResp", t.Check.ID)
	}
	r := hostReaction(t, c, since, t.Cfg.CloseWait)
	if err == nil {
		t.Detail("the host's connect succeeded")
	}
	t.Conform(r.words(true), fmt.Sprintf("H2CTermReq FES %#x FEI %#x", tcp.FESInvalidHeaderField, fei))
}
