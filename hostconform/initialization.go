package hostconform

import (
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
}
