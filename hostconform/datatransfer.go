package hostconform

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
)

// Data transfer (NVMe/TCP 1.0 3.3, 3.3.2; NVMe Base 2.2 3.3.2.1): how
// the host answers R2Ts with H2CData, what it puts in a capsule, its
// SGL descriptors and its command identifiers.
func init() { register(dataChecks...) }

// r2tScenario is the controller the R2T checks share: MAXH2CDATA 4 KiB
// and every R2T split in three, each with its own transfer tag, so a
// 64 KiB write is answered in several H2CData per R2T and several R2Ts
// per command.
func r2tScenario(s *Setup) {
	s.Config.MaxH2CData = "4KiB"
	newSplitR2T(3).setup(s)
}

// h2cProblems judges every H2CData the host sent against the R2Ts it had
// received, by kind: "unsolicited" (no R2T asked for it, or its data was
// all sent), "ttag" (not the TTAG of an outstanding R2T of its command),
// "offsets" (DATAO/DATAL not from R2TO contiguously up to R2TO+R2TL, or
// not dword multiples), "last" (LAST_PDU not exactly on an R2T's last
// H2CData). It also returns how many H2CData it judged.
func h2cProblems(conns []*Conn) (map[string][]string, int) {
	out := map[string][]string{}
	n := 0
	type g struct {
		r2t  tcp.R2T
		next uint32
		done bool
	}
	for _, c := range conns {
		var grants []*g
		for _, f := range c.Frames() {
			if f.Dir == ToHost {
				if r, ok := f.PDU.(*tcp.R2T); ok {
					grants = append(grants, &g{r2t: *r, next: r.R2TO})
				}
				continue
			}
			h, ok := f.PDU.(*tcp.H2CData)
			if !ok {
				if f.CH.Type == tcp.TypeH2CData {
					out["offsets"] = append(out["offsets"], fmt.Sprintf("%s: undecodable: %v", describe(c, f), f.Err))
				}
				continue
			}
			n++
			var match, open *g
			for _, x := range grants {
				if x.r2t.CCCID != h.CCCID {
					continue
				}
				if x.r2t.TTAG == h.TTAG && (match == nil || match.done) {
					match = x
				}
				if !x.done && open == nil {
					open = x
				}
			}
			where := fmt.Sprintf("H2CData CCCID %d TTAG %#x DATAO %d DATAL %d (%s)", h.CCCID, h.TTAG, h.DATAO, h.DATAL, describe(c, f))
			switch {
			case match == nil && open == nil:
				out["unsolicited"] = append(out["unsolicited"], where+": no R2T asked for it")
				continue
			case match == nil:
				out["ttag"] = append(out["ttag"], fmt.Sprintf("%s: the outstanding R2T's TTAG is %#x", where, open.r2t.TTAG))
				match = open // judge the rest against the R2T it answers
			case match.done:
				out["unsolicited"] = append(out["unsolicited"], where+": its R2T's data was all sent")
				continue
			}
			end := match.r2t.R2TO + match.r2t.R2TL
			if h.DATAO != match.next || uint64(h.DATAO)+uint64(h.DATAL) > uint64(end) {
				out["offsets"] = append(out["offsets"], fmt.Sprintf("%s: R2T R2TO %d R2TL %d, next DATAO %d", where, match.r2t.R2TO, match.r2t.R2TL, match.next))
			}
			if h.DATAO%4 != 0 || h.DATAL%4 != 0 {
				out["offsets"] = append(out["offsets"], where+": not dword multiples")
			}
			match.next = h.DATAO + h.DATAL
			last := match.next >= end
			if h.Last != last {
				out["last"] = append(out["last"], fmt.Sprintf("%s: LAST_PDU %v, the R2T's data ends at %d", where, h.Last, end))
			}
			if last || h.Last {
				match.done = true
			}
		}
	}
	return out, n
}

func h2cCheck(kind, want string) func(t *T) {
	return func(t *T) {
		t.MustConnect()
		ioErr := t.IO("write", 64<<10, 192<<10, "iodepth", "2")
		p, n := h2cProblems(t.Ctrl.Conns())
		if n == 0 {
			t.Failf("%s: the host sent no H2CData for 64 KiB writes (IOCCSZ allows 16 KiB in a capsule): %v", t.Check.ID, ioErr)
		}
		t.Detail("%d H2CData judged", n)
		t.ConformAll(p[kind], want)
		if ioErr != nil {
			t.Failf("%s: the host's writes failed: %v", t.Check.ID, ioErr)
		}
	}
}

var dataChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-001", Section: "NVMe/TCP 1.0 3.3.2.2", Keyword: suites.Indicative,
			Title:      "The host sends H2CData only for data an R2T asked for and it has not sent yet",
			Text:       "H2CData PDUs are sent in response to R2T PDUs and are never sent without receiving a corresponding R2T PDU",
			Statements: []string{"T-3.3.2.2-04", "T-3.3-01"},
		},
		Area: "transport", Deviation: "h2c-repeat-last",
		Controller: r2tScenario,
		Run:        h2cCheck("unsolicited", "H2CData only for R2Ts"),
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-002", Section: "NVMe/TCP 1.0 3.3.2.2, 3.6.2.8", Keyword: suites.Shall,
			Title:      "Every H2CData carries the command's CID and the TTAG of the R2T it answers",
			Text:       "All H2CData PDUs used to satisfy data requested by a controller shall have their Transfer Tag (TTAG) field set to the transfer tag specified in the R2T PDU",
			Statements: []string{"T-3.3.2.2-12", "T-3.6.2.8-03"},
		},
		Area: "transport", Deviation: "h2c-ttag-zero",
		Controller: r2tScenario,
		Run:        h2cCheck("ttag", "the R2T's TTAG"),
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-003", Section: "NVMe/TCP 1.0 3.3.2.2, 3.6.2.8", Keyword: suites.Indicative,
			Title:      "The H2CData answering an R2T start at its R2TO and run contiguously to R2TO+R2TL, in dword multiples",
			Text:       "H2CData PDUs start at the offset specified in the R2T PDU (R2TO) and transfer data contiguously until the data transfer length specified by the R2T PDU (R2TL) is reached",
			Statements: []string{"T-3.3.2.2-06", "T-3.3.2.2-01", "T-3.6.2.8-02"},
		},
		Area: "transport", Deviation: "h2c-datao-relative",
		Controller: r2tScenario,
		Run:        h2cCheck("offsets", "DATAO from R2TO, contiguous"),
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-004", Section: "NVMe/TCP 1.0 3.3.2.2, 3.6.2.8", Keyword: suites.Indicative,
			Title:      "The host sets LAST_PDU on the H2CData that completes an R2T and on no other",
			Text:       "The LAST_PDU flag in H2CData PDUs is cleared to '0' in all but the last H2CData PDU that is associated with a single R2T PDU",
			Statements: []string{"T-3.3.2.2-11"},
		},
		Area: "transport", Deviation: "h2c-last-every-pdu",
		Controller: r2tScenario,
		Run:        h2cCheck("last", "LAST_PDU on each R2T's last H2CData"),
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-005", Section: "NVMe/TCP 1.0 3.3.2.2, 3.6.2.3", Keyword: suites.Indicative,
			Title:      "No H2CData carries more than the MAXH2CDATA the controller announced",
			Text:       "The H2CData PDU length does not exceed the maximum length communicated by the controller during the connection establishment (MAXH2CDATA)",
			Statements: []string{"T-3.3.2.2-07"},
		},
		Area: "transport", Deviation: "ignore-maxh2cdata",
		Controller: func(s *Setup) { s.Config.MaxH2CData = "4KiB" },
		Run: func(t *T) {
			t.MustConnect()
			err := t.IO("write", 64<<10, 128<<10)
			var problems []string
			n := 0
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Sent() {
					if h, ok := f.PDU.(*tcp.H2CData); ok {
						n++
						if h.DATAL > 4096 {
							problems = append(problems, fmt.Sprintf("%s: DATAL %d", describe(c, f), h.DATAL))
						}
					}
				}
			}
			if n == 0 && err == nil {
				t.Failf("%s: the host sent no H2CData for 64 KiB writes", t.Check.ID)
			}
			t.ConformAll(problems, "H2CData DATAL <= MAXH2CDATA 4096")
			if err != nil {
				t.Failf("%s: the host's writes failed: %v", t.Check.ID, err)
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-006", Section: "NVMe/TCP 1.0 3.3 (Capsules)", Keyword: suites.Shall,
			Title:      "The host puts in a capsule no more data than IOCCSZ allows on I/O queues and 8 KiB on the admin queue, and sends the rest with R2T/H2CData",
			Text:       "If more data is required to be transferred than fits in a Command Capsule's PDU Data, then the NVMe/TCP data transfer mechanism described in section 3.3.2.2 shall be used",
			Statements: []string{"T-3.3.1-01", "T-3.3.1-02", "B-3.3.2.1-01"},
		},
		Area: "transport", Deviation: "inline-ignores-ioccsz",
		Controller: func(s *Setup) { s.Config.InCapsuleDataSize = "4KiB" },
		Run: func(t *T) {
			t.MustConnect()
			ioErr := t.IO("write", 8192, 32<<10)
			var problems []string
			for _, c := range t.Ctrl.Conns() {
				limit := 4096
				if c.QID() == 0 {
					limit = 8192
				}
				for _, f := range c.Sent() {
					if f.CH.Type == tcp.TypeCapsuleCmd && len(f.Data()) > limit {
						problems = append(problems, fmt.Sprintf("%s: %d bytes in the capsule, queue %d allows %d", describe(c, f), len(f.Data()), c.QID(), limit))
					}
				}
			}
			t.ConformAll(problems, "in-capsule data within IOCCSZ (4096 bytes) and 8192 on the admin queue")
			if ioErr != nil {
				t.Failf("%s: the host's 8 KiB writes failed: %v", t.Check.ID, ioErr)
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-007", Section: "NVMe/TCP 1.0 3.3.2 (Command Data Buffers and SGLs), 3.3", Keyword: suites.Indicative,
			Title:      "A command carries one SGL descriptor: a Data Block (subtype 1h, offset 0) for in-capsule data, a Transport SGL Data Block (subtype Ah) otherwise",
			Text:       "An SGL Data Block descriptor with an SGL Descriptor Sub Type value of 1h specifies the use of in-capsule data ... Sub Type value of Ah ... specifies the use of the NVMe/TCP transport specific data transfer mechanism ... ICDOFF shall be cleared to '0'",
			Statements: []string{"T-3.3.2-01", "B-3.3.2.1.4-05"},
		},
		Area: "transport", Deviation: "sgl-incapsule-transport",
		Run: func(t *T) {
			t.MustConnect()
			_ = t.IO("write", 4096, 16<<10)
			_ = t.IO("write", 64<<10, 64<<10)
			_ = t.IO("read", 4096, 16<<10)
			var problems []string
			n := 0
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Sent() {
					s := Command(f)
					if s == nil || s.DPTR.Length == 0 {
						continue
					}
					n++
					in := len(f.Data())
					d := s.DPTR
					switch {
					case in > 0 && (d.Type != nvme.SGLDataBlockOffset || d.Addr != 0 || int(d.Length) != in):
						problems = append(problems, fmt.Sprintf("%s: %d bytes in the capsule described by SGL type %#x address %d length %d", describe(c, f), in, d.Type, d.Addr, d.Length))
					case in == 0 && d.Type != nvme.SGLTransportDataBlock:
						problems = append(problems, fmt.Sprintf("%s: no data in the capsule, SGL type %#x", describe(c, f), d.Type))
					}
				}
			}
			if n == 0 {
				t.Failf("%s: the host sent no command with data", t.Check.ID)
			}
			t.Detail("%d commands with data", n)
			t.ConformAll(problems, "SGL Data Block 1h for in-capsule data, Transport Data Block Ah otherwise")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-008", Section: "NVMe Base 2.2 3.3.2.1.1", Keyword: suites.Shall,
			Title:      "The host never gives a command the CID of another command still outstanding on its queue",
			Text:       "CIDs are unique among a queue's outstanding commands",
			Statements: []string{"B-3.3.2.1.1-01"},
		},
		Area: "transport", Deviation: "cid-collide",
		Controller: func(s *Setup) {
			// A controller a little slow to complete I/O: the host has
			// several commands outstanding on each queue.
			s.ToHost = func(c *Conn, f *Frame) [][]byte {
				if f.CH.Type == tcp.TypeCapsuleResp && c.QID() > 0 {
					time.Sleep(time.Millisecond)
				}
				return pass(f)
			}
		},
		Run: func(t *T) {
			t.MustConnect()
			ioErr := t.IO("randread", 4096, 512<<10, "iodepth", "16")
			var problems []string
			for _, c := range t.Ctrl.Conns() {
				out := map[uint16]int{}
				for _, f := range c.Frames() {
					switch p := f.PDU.(type) {
					case *tcp.CapsuleCmd:
						if seq, busy := out[p.SQE.CID]; busy {
							problems = append(problems, fmt.Sprintf("%s: CID %d, outstanding since #%d", describe(c, f), p.SQE.CID, seq))
						}
						out[p.SQE.CID] = f.Seq
					case *tcp.CapsuleResp:
						delete(out, p.CQE.CID)
					case *tcp.C2HData:
						if p.Success {
							delete(out, p.CCCID)
						}
					}
				}
			}
			t.ConformAll(problems, "CIDs unique among outstanding commands")
			if ioErr != nil {
				t.Failf("%s: the host's reads failed: %v", t.Check.ID, ioErr)
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DATA-009", Section: "NVMe/TCP 1.0 3.3.2.1, 3.6.2.9", Keyword: suites.Indicative,
			Title:      "A last C2HData with SUCCESS set completes the command successfully: the host expects no response capsule for it",
			Text:       "C2HData PDUs also contain a SUCCESS flag that may be set to '1' in the last C2HData PDU of a command data transfer to indicate that the command has completed successfully. In this case, no Response Capsule is sent by the controller for the command and the host synthesizes a Completion Queue Entry",
			Statements: []string{"T-3.3.2.1-07"},
		},
		Area: "transport", Deviation: "c2h-success-ignored",
		Controller: func(s *Setup) {
			// A controller that supports disabling SQHD updates may set
			// SUCCESS (the text's only condition): this one does on every
			// read, and sends no response capsule for it.
			var mu sync.Mutex
			quiet := map[*Conn]map[uint16]bool{}
			s.ToHost = func(c *Conn, f *Frame) [][]byte {
				if c.QID() <= 0 {
					return pass(f)
				}
				mu.Lock()
				defer mu.Unlock()
				switch p := f.PDU.(type) {
				case *tcp.C2HData:
					if p.Last && !p.Success {
						if quiet[c] == nil {
							quiet[c] = map[uint16]bool{}
						}
						quiet[c][p.CCCID] = true
						return [][]byte{withField(f.Raw, offFlags, 1, uint32(f.CH.Flags|flagSuccess))}
					}
				case *tcp.CapsuleResp:
					if quiet[c][p.CQE.CID] {
						delete(quiet[c], p.CQE.CID)
						if p.CQE.Status.Success() {
							return nil
						}
					}
				}
				return pass(f)
			}
		},
		Run: func(t *T) {
			t.MustConnect()
			// A host that waits for the response capsule waits for ever:
			// give it the close bound, not the check's time.
			ctx, cancel := context.WithTimeout(t.Ctx, t.Cfg.CloseWait)
			defer cancel()
			err := t.Cfg.Control.Do(ctx, control.Action{Verb: VerbIO, Args: map[string]string{"nqn": t.Cfg.SubNQN, "nsid": "1", "rw": "read", "bs": "8192", "size": "65536"}})
			if errors.Is(err, control.ErrUnsupported) {
				t.SkipNeeds("a --host-control that can io", "the host control cannot read")
			}
			n := 0
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Received() {
					if d, ok := f.PDU.(*tcp.C2HData); ok && d.Success && f.Injected {
						n++
					}
				}
			}
			if n == 0 {
				t.Failf("%s: the host read nothing on an I/O queue (%v)", t.Check.ID, err)
			}
			t.Detail("%d C2HData with SUCCESS", n)
			switch {
			case err != nil && ctx.Err() != nil:
				t.Conform("reads never completed", "reads completed by SUCCESS")
			case err != nil:
				t.Detail("%v", err)
				t.Conform("reads failed", "reads completed by SUCCESS")
			}
		},
	},
}
