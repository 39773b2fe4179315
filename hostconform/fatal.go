package hostconform

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
)

// Fatal transport errors (NVMe/TCP 1.0 3.3.2.1, 3.5.1, 3.5.2): what the
// host does after a C2HTermReq, and when the controller sends it a PDU
// that is a fatal error for the host to find.
func init() { register(fatalChecks...) }

// reaction is what the host did on a connection after something fatal
// reached it.
type reaction struct {
	term   *tcp.TermReq // its H2CTermReq, if it sent one
	frame  *Frame       // that H2CTermReq
	closed string       // who closed the connection ("" still open)
	after  []string     // PDUs it sent after its H2CTermReq
	before []string     // PDUs other than an H2CTermReq it sent first
}

// String is the reaction in the canonical words fatal checks compare
// (FEI left out when withFEI is false: FES 02h, 04h and 05h have none).
func (r reaction) words(withFEI bool) string {
	switch {
	case r.term != nil && withFEI:
		return fmt.Sprintf("H2CTermReq FES %#x FEI %#x", r.term.FES, r.term.FEI)
	case r.term != nil:
		return fmt.Sprintf("H2CTermReq FES %#x", r.term.FES)
	case r.closed == "host":
		return "close without H2CTermReq"
	case r.closed == "host reset":
		return "reset without H2CTermReq"
	case len(r.before) > 0:
		return "no H2CTermReq: went on (sent " + r.before[0] + ")"
	case r.closed == "controller":
		return "nothing until the controller closed"
	}
	return "nothing (connection still open)"
}

// hostReaction waits, up to wait, for the host to send an H2CTermReq on
// c or to close it, looking only at what it sent after its PDU number
// since; then it gives the host a moment more to show whether it goes on
// sending.
func hostReaction(t *T, c *Conn, since int, wait time.Duration) reaction {
	var r reaction
	scan := func() bool {
		r = reaction{}
		// Who closed first, then the frames: a frame is recorded before
		// the close it may cause (the target closes on an H2CTermReq
		// within a millisecond), so every frame sent before the close is
		// seen. The other order once took a host's H2CTermReq, recorded
		// between the two reads, for "nothing until the controller
		// closed" (SPDK, HOST-FATAL-010).
		r.closed, _ = c.CloseInfo()
		for _, f := range c.Sent() {
			if f.Seq <= since {
				continue
			}
			if r.term != nil {
				r.after = append(r.after, f.CH.Type.String())
				continue
			}
			if tr, ok := f.PDU.(*tcp.TermReq); ok && f.CH.Type == tcp.TypeH2CTermReq {
				r.term, r.frame = tr, f
				continue
			}
			if f.CH.Type == tcp.TypeH2CTermReq {
				r.frame = f // malformed, judged by the caller
				r.term = &tcp.TermReq{H2C: true, FES: binary.LittleEndian.Uint16(f.Raw[8:]), FEI: binary.LittleEndian.Uint32(f.Raw[10:])}
				continue
			}
			r.before = append(r.before, f.CH.Type.String())
		}
		// PDUs the host sends after the bad one do not end the wait: some
		// may have crossed it on the wire, and a TermReq or a close may
		// follow.
		return r.term != nil || r.closed != ""
	}
	ctx := t.Ctx
	deadline := time.Now().Add(wait)
	for !scan() && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-c.Closed():
		case <-time.After(20 * time.Millisecond):
		}
	}
	if r.term != nil && r.closed == "" {
		// Anything it still sends shows in a moment, or never.
		select {
		case <-c.Closed():
		case <-time.After(200 * time.Millisecond):
		}
		scan()
	}
	return r
}

// corruptedRead has the connected host read checkReadSize bytes through a
// controller whose first C2HData on an I/O queue the check's hook
// changed, and returns the host's reaction on that connection.
func corruptedRead(t *T) (reaction, *Conn) {
	_ = t.IO("read", checkReadSize, checkReadSize) // expected to fail: the host must refuse the data
	if c, f := injected(t.Ctrl.Conns(), tcp.TypeC2HData); f != nil {
		return hostReaction(t, c, f.Seq, t.Cfg.CloseWait), c
	}
	t.Failf("%s: the host read nothing on an I/O queue: the test controller had no C2HData to change", t.Check.ID)
	return reaction{}, nil
}

// injectedHeader is the header (with digest) of the PDU the check
// changed on c: what an H2CTermReq's data must hold.
func injectedHeader(c *Conn) []byte {
	for _, f := range c.Received() {
		if f.Injected && f.CH.Type == tcp.TypeC2HData {
			return f.Raw[:f.HeaderLen()]
		}
	}
	return nil
}

// c2hTermReqAfterLive connects the host, then sends a C2HTermReq of plen
// bytes in the controller's name on its first I/O queue, and returns
// that connection and who closed it within the bound.
func c2hTermReqAfterLive(t *T, plen int, bound time.Duration) (*Conn, string) {
	t.MustConnect()
	c := ioConn(t.Ctrl.Conns())
	if c == nil {
		t.Skipf("the host connected no I/O queue")
	}
	raw := termReq(tcp.FESPDUSequenceError, 0, nil)
	if plen >= tcp.HLenTermReq {
		hdr := make([]byte, 24) // the header "being processed": an H2CData's shape
		hdr[0], hdr[2], hdr[4] = byte(tcp.TypeH2CData), 24, 24
		raw = append(raw, make([]byte, plen-tcp.HLenTermReq)...)
		copy(raw[tcp.HLenTermReq:], hdr)
	}
	binary.LittleEndian.PutUint32(raw[offPLEN:], uint32(plen))
	if err := c.Inject(raw); err != nil {
		t.Failf("%s: could not send the C2HTermReq: %v", t.Check.ID, err)
	}
	return c, t.waitClosed(c, bound)
}

// closedWords is who closed, in the canonical words.
func closedWords(by string, bound time.Duration) string {
	switch by {
	case "host", "host reset":
		return "host closed"
	case "controller":
		return "controller closed first"
	}
	return fmt.Sprintf("still open after %v", bound)
}

var fatalChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-001", Section: "NVMe/TCP 1.0 3.5.1", Keyword: suites.Shall,
			Title:      "After a C2HTermReq the host terminates the connection",
			Text:       "In response to a C2HTermReq PDU, the host shall terminate the connection",
			Statements: []string{"T-3.5.1-06", "T-3.5.1-01"},
		},
		Area: "transport", Deviation: "termreq-ignored",
		Run: func(t *T) {
			_, by := c2hTermReqAfterLive(t, tcp.HLenTermReq+24, t.Cfg.CloseWait)
			t.Conform(closedWords(by, t.Cfg.CloseWait), "host closed")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-002", Section: "NVMe/TCP 1.0 3.5.1", Keyword: suites.Shall,
			Title:      "A C2HTermReq with PLEN above 152 makes the host terminate the connection at once",
			Text:       "The host shall ignore a C2HTermReq PDU with a PDU length (PLEN) that exceeds 152 bytes ... and shall terminate the connection immediately",
			Statements: []string{"T-3.5.1-09"},
		},
		Area: "transport", Deviation: "fatal-no-close",
		Run: func(t *T) {
			bound := t.Cfg.CloseWait / 2
			_, by := c2hTermReqAfterLive(t, maxTermReqPLEN+4, bound)
			t.Conform(closedWords(by, bound), "host closed")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-003", Section: "NVMe/TCP 1.0 3.5.1", Keyword: suites.Shall,
			Title:      "A C2HTermReq with PLEN below 24 makes the host terminate the connection at once",
			Text:       "the host shall ignore a C2HTermReq PDU with PLEN less than 24 bytes and shall terminate the connection immediately",
			Statements: []string{"T-3.5.1-10"},
		},
		Area: "transport", Deviation: "fatal-no-close",
		Run: func(t *T) {
			bound := t.Cfg.CloseWait / 2
			_, by := c2hTermReqAfterLive(t, 16, bound)
			t.Conform(closedWords(by, bound), "host closed")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-004", Section: "NVMe/TCP 1.0 3.3.2.1, 3.5.1", Keyword: suites.Indicative,
			Title:      "A C2HData with an unknown CCCID makes the host send an H2CTermReq with FES 01h and FEI 8 (the CCCID's offset)",
			Text:       "Reception of a C2HData PDU with an unknown command capsule identifier (CCCID) is treated as a fatal transport error with the Fatal Error Status field in the H2CTermReq PDU set to \"Invalid PDU Header Field\" and the Additional Error Information field containing the CCCID field byte offset",
			Statements: []string{"T-3.3.2.1-04", "T-3.5.1-13"},
		},
		Area: "transport", Deviation: "fatal-no-termreq",
		Controller: func(s *Setup) {
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				return [][]byte{withField(f.Raw, offCCCID, 2, uint32(unusedCID(c)))}
			})
		},
		Run: func(t *T) {
			t.MustConnect()
			r, _ := corruptedRead(t)
			t.Conform(r.words(true), fmt.Sprintf("H2CTermReq FES %#x FEI %#x", tcp.FESInvalidHeaderField, offCCCID))
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-005", Section: "NVMe/TCP 1.0 3.3.2.1", Keyword: suites.Indicative,
			Title:      "A C2HData reaching past the command's buffer makes the host send an H2CTermReq with FES 04h",
			Text:       "Reception of a C2HData PDU that is outside the Command Data Buffer range is treated as a fatal transport error with the Fatal Error Status field in the H2CTermReq PDU set to \"Data Transfer Out of Range\"",
			Statements: []string{"T-3.3.2.1-03"},
		},
		Area: "transport", Deviation: "fatal-wrong-fes",
		Controller: func(s *Setup) {
			// The first C2HData starts where it should (DATAO 0) but
			// carries 4 KiB more than the read asked for: out of range,
			// and nothing else.
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				return [][]byte{reencodeC2H(c, f, tcp.C2HData{CCCID: d.CCCID, DATAO: 0, DATAL: checkReadSize + 4096, Last: true}, make([]byte, checkReadSize+4096))}
			})
		},
		Run: func(t *T) {
			t.MustConnect()
			r, _ := corruptedRead(t)
			t.Conform(r.words(false), fmt.Sprintf("H2CTermReq FES %#x", tcp.FESDataOutOfRange))
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-006", Section: "NVMe/TCP 1.0 3.3.2.1", Keyword: suites.Indicative,
			Title:      "A non-contiguous C2HData makes the host send an H2CTermReq with FES 02h",
			Text:       "Reception of a non-contiguous C2HData PDU is treated as a fatal transport error with the Fatal Error Status field in the H2CTermReq PDU set to \"PDU Sequence Error\"",
			Statements: []string{"T-3.3.2.1-02"},
		},
		Area: "transport", Deviation: "c2h-datao-unchecked",
		Controller: func(s *Setup) {
			s.Config.C2HDataSize = "4KiB"
			// The first of a 12 KiB read's three C2HData claims the second
			// one's place: inside the buffer, but not where the data stands.
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				return [][]byte{withField(f.Raw, offDATAO, 4, d.DATAO+d.DATAL)}
			})
		},
		Run: func(t *T) {
			t.MustConnect()
			r, _ := corruptedRead(t)
			t.Conform(r.words(false), fmt.Sprintf("H2CTermReq FES %#x", tcp.FESPDUSequenceError))
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-007", Section: "NVMe/TCP 1.0 3.3.2.1", Keyword: suites.Indicative,
			Title:      "A C2HData with SUCCESS set and LAST_PDU clear makes the host send an H2CTermReq with FES 01h and FEI 1 (the FLAGS offset)",
			Text:       "Reception of a C2HData PDU with the SUCCESS flag set to '1' and the LAST_PDU flag cleared to '0' is treated as a fatal transport error with ... \"Invalid PDU Header Field\" and the Additional Error Information field containing the FLAGS field byte offset",
			Statements: []string{"T-3.3.2.1-11"},
		},
		Area: "transport", Deviation: "fatal-fei-zero",
		Controller: func(s *Setup) {
			s.Config.C2HDataSize = "4KiB"
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				return [][]byte{withField(f.Raw, offFlags, 1, uint32(f.CH.Flags|flagSuccess)&^flagLastPDU)}
			})
		},
		Run: func(t *T) {
			t.MustConnect()
			r, _ := corruptedRead(t)
			t.Conform(r.words(true), fmt.Sprintf("H2CTermReq FES %#x FEI %#x", tcp.FESInvalidHeaderField, offFlags))
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-008", Section: "NVMe/TCP 1.0 3.5.1, 3.6.2.4", Keyword: suites.Shall,
			Title:      "On a fatal error the host's H2CTermReq has HLEN 24, carries the offending PDU header as its data (at most 128 bytes), and nothing follows it",
			Text:       "When a host detects a fatal error, that host shall: 1. stop processing any PDUs that arrive on the connection; and 2. send a H2CTermReq PDU with ... the PDU data content filled with the PDU Header that was being processed",
			Statements: []string{"T-3.5.1-12", "T-3.5.1-13", "T-3.5.1-16", "T-3.6.2.4-01", "T-3.6.2.4-02"},
		},
		Area: "transport", Deviation: "termreq-no-header",
		Controller: func(s *Setup) {
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				return [][]byte{withField(f.Raw, offCCCID, 2, uint32(unusedCID(c)))}
			})
		},
		Run: func(t *T) {
			t.MustConnect()
			r, c := corruptedRead(t)
			if r.frame == nil {
				t.Conform(r.words(true), "H2CTermReq")
			}
			var problems []string
			f := r.frame
			hdr := injectedHeader(c)
			data := f.Raw[min(int(f.CH.HLEN), len(f.Raw)):]
			if f.CH.HLEN != tcp.HLenTermReq {
				problems = append(problems, fmt.Sprintf("HLEN %d", f.CH.HLEN))
			}
			if f.CH.PLEN > maxTermReqPLEN || int(f.CH.PLEN) != len(f.Raw) {
				problems = append(problems, fmt.Sprintf("PLEN %d", f.CH.PLEN))
			}
			if !bytes.Equal(data, hdr) && !bytes.Equal(data, hdr[:min(int(hdr[2]), len(hdr))]) {
				problems = append(problems, fmt.Sprintf("data %x, not the C2HData header %x", data, hdr))
			}
			if len(r.after) > 0 {
				problems = append(problems, fmt.Sprintf("sent %v after it", r.after))
			}
			t.ConformAll(problems, "H2CTermReq with the offending header, nothing after it")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-009", Section: "NVMe/TCP 1.0 3.5.2, 3.6.2.4", Keyword: suites.Shall,
			Title:      "A header digest error makes the host send an H2CTermReq with FES 03h and the HDGST it received as FEI",
			Text:       "When a host detects a PDU Header digest error, the host shall treat the error as a fatal transport error with the Fatal Error Status field set to \"Header Digest Error\"",
			Statements: []string{"T-3.5.2-01"},
		},
		Area: "transport", Deviation: "fatal-wrong-fes",
		Controller: func(s *Setup) {
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				if f.CH.Flags&tcp.FlagHDGST == 0 {
					return pass(f)
				}
				raw := append([]byte(nil), f.Raw...)
				raw[f.CH.HLEN] ^= 0x5A
				return [][]byte{raw}
			})
		},
		Run: func(t *T) {
			t.MustConnect("hdr_digest", "true")
			if c := ioConn(t.Ctrl.Conns()); c == nil || c.ICResp() == nil || c.ICResp().DGST&tcp.DgstHeader == 0 {
				t.Skipf("the header digest was not negotiated (the host did not ask for it when told to)")
			}
			r, c := corruptedRead(t)
			hdr := injectedHeader(c)
			got := binary.LittleEndian.Uint32(hdr[tcp.HLenTermReq:])
			words := r.words(true)
			if r.term != nil && r.term.FES == tcp.FESHeaderDigestError && r.term.FEI == got {
				words = "H2CTermReq FES 0x3, FEI the received HDGST"
			}
			t.Conform(words, "H2CTermReq FES 0x3, FEI the received HDGST")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-DDGST-001", Section: "NVMe/TCP 1.0 3.5.2", Keyword: suites.Shall,
			Title:      "A data digest error in C2HData fails the command, with no fatal error, even though the controller reports success",
			Text:       "When a host detects a data digest error in a C2HData PDU, that host shall continue processing C2HData PDUs associated with the command and when the command processing has completed, if a successful status was returned by the controller, the host shall fail the command with a non-fatal transport error",
			Statements: []string{"T-3.5.2-04", "T-3.5.2-05", "T-3.5.2-03"},
		},
		Area: "transport", Deviation: "ddgst-unchecked",
		Controller: func(s *Setup) {
			s.Config.C2HDataSize = "4KiB"
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				if f.CH.Flags&tcp.FlagDDGST == 0 {
					return pass(f)
				}
				raw := append([]byte(nil), f.Raw...)
				raw[len(raw)-1] ^= 0x5A
				return [][]byte{raw}
			})
		},
		Run: func(t *T) {
			t.MustConnect("data_digest", "true")
			for _, c := range t.Ctrl.Conns() {
				if r := c.ICResp(); r != nil && r.DGST&tcp.DgstData == 0 {
					t.Skipf("the data digest was not negotiated (the host did not ask for it when told to)")
				}
			}
			// A host control whose io runs a controller of its own
			// (SPDK's: a perf per io) closes that controller's
			// connections when the io ends: such a close is the end of
			// the tool, not a reaction to the digest error.
			before := len(t.Ctrl.Conns())
			ioErr := t.IO("read", checkReadSize, checkReadSize)
			badConn, bad := injected(t.Ctrl.Conns(), tcp.TypeC2HData)
			if bad == nil {
				t.Failf("%s: the host made no %d-byte read on an I/O queue (%v)", t.Check.ID, checkReadSize, ioErr)
			}
			r := hostReaction(t, badConn, bad.Seq, 0) // the read has ended: a fatal reaction has shown
			ownIO := badConn.ID() > before
			if r.term != nil || (!ownIO && (r.closed == "host" || r.closed == "host reset")) {
				t.Conform("fatal: "+r.words(true), "command failed, connection kept")
			}
			if ownIO && r.closed != "" {
				t.Detail("the io ran on a controller of its own (connection %d), closed when the io ended", badConn.ID())
			}
			// The host may retry the failed command: a new Read of the
			// same blocks, on any I/O queue, which is not corrupted.
			slba := readSLBA(badConn, bad.PDU.(*tcp.C2HData).CCCID, bad.Seq)
			retries := 0
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Sent() {
					if s := Command(f); s != nil && c.QID() > 0 && s.Opcode == 0x02 && f.At.After(bad.At) &&
						uint64(s.CDW11)<<32|uint64(s.CDW10) == slba {
						retries++
					}
				}
			}
			switch {
			case ioErr != nil:
				t.Detail("the read failed: %v", ioErr)
			case retries > 0:
				t.Detail("the host read the blocks again (%d times)", retries)
			default:
				t.Conform("read succeeded with the corrupted data", "command failed, connection kept")
			}
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-010", Section: "NVMe/TCP 1.0 3.3 (Figure 10), 3.5.1", Keyword: suites.Indicative,
			Title:      "A PDU of a host-to-controller type (an H2CData) arriving at the host makes it send an H2CTermReq",
			Text:       "An NVMe/TCP PDU that is transferred in a direction opposite from that with which it is associated is treated as a fatal transport error",
			Statements: []string{"T-3.3-08", "T-3.3-09"},
		},
		Area: "transport", Deviation: "fatal-no-termreq",
		Run: func(t *T) {
			t.MustConnect()
			c := ioConn(t.Ctrl.Conns())
			if c == nil {
				t.Skipf("the host connected no I/O queue")
			}
			// An H2CData as a host would send it, data and all.
			raw := tcp.AppendPDU(nil, &tcp.H2CData{CCCID: 0, TTAG: 0, DATAO: 0, DATAL: 4, Last: true}, []byte{1, 2, 3, 4}, tcp.EncodeOptions{})
			if r := c.ICResp(); r != nil {
				raw = tcp.AppendPDU(nil, &tcp.H2CData{DATAL: 4, Last: true}, []byte{1, 2, 3, 4},
					tcp.EncodeOptions{Digests: tcp.Digests{Header: r.DGST&tcp.DgstHeader != 0, Data: r.DGST&tcp.DgstData != 0}})
			}
			if err := c.Inject(raw); err != nil {
				t.Failf("%s: could not send the PDU: %v", t.Check.ID, err)
			}
			var seq int
			for _, f := range c.Received() {
				if f.Injected {
					seq = f.Seq
				}
			}
			r := hostReaction(t, c, seq, t.Cfg.CloseWait)
			words := r.words(false)
			if r.term != nil {
				words = "H2CTermReq" // the text names no FES for it
			}
			t.Conform(words, "H2CTermReq")
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-011", Section: "NVMe/TCP 1.0 3.3.2.1", Keyword: suites.Indicative,
			Title:      "A C2HData after the command's last one (LAST_PDU) makes the host send an H2CTermReq with FES 02h",
			Text:       "Reception of an unexpected C2HData PDU is treated as a fatal transport error with the Fatal Error Status field in the H2CTermReq PDU set to \"PDU Sequence Error\" ... Reception of a C2HData PDU after reception of a C2HData PDU with the LAST_PDU flag set to '1'",
			Statements: []string{"T-3.3.2.1-12"},
		},
		Area: "transport", Deviation: "fatal-no-termreq",
		Controller: func(s *Setup) {
			// The read's one C2HData (LAST_PDU), then the same again.
			s.ToHost = onceC2H(func(c *Conn, f *Frame, d *tcp.C2HData) [][]byte {
				return [][]byte{f.Raw, append([]byte(nil), f.Raw...)}
			})
		},
		Run: func(t *T) {
			t.MustConnect()
			r, _ := corruptedRead(t)
			t.Conform(r.words(false), fmt.Sprintf("H2CTermReq FES %#x", tcp.FESPDUSequenceError))
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-FATAL-012", Section: "NVMe/TCP 1.0 3.3.2.2", Keyword: suites.Indicative,
			Title:      "An R2T that does not continue where the command's data transfer stands (the first one not at offset 0) makes the host send an H2CTermReq with FES 02h",
			Text:       "The first R2T PDU of a command shall start with an offset of zero ... Reception of a non-contiguous R2T PDU is treated as a fatal transport error with the Fatal Error Status field ... set to \"PDU Sequence Error\"",
			Statements: []string{"T-3.3.2.2-08"},
		},
		Area: "transport", Deviation: "r2t-unchecked",
		Controller: func(s *Setup) {
			s.Config.InCapsuleDataSize = "4KiB" // a 12 KiB write needs an R2T
			var edited atomic.Bool              // the first R2T only
			s.ToHost = func(c *Conn, f *Frame) [][]byte {
				r, ok := f.PDU.(*tcp.R2T)
				if !ok || commandLength(c, r.CCCID) != checkReadSize {
					return pass(f)
				}
				if !edited.CompareAndSwap(false, true) {
					return pass(f)
				}
				// The second 4 KiB of the buffer first.
				return [][]byte{withField(withField(f.Raw, offDATAO, 4, 4096), offDATAL, 4, r.R2TL-4096)}
			}
		},
		Run: func(t *T) {
			t.MustConnect()
			_ = t.IO("write", checkReadSize, checkReadSize)
			for _, c := range t.Ctrl.Conns() {
				for _, f := range c.Received() {
					if f.Injected && f.CH.Type == tcp.TypeR2T {
						r := hostReaction(t, c, f.Seq, t.Cfg.CloseWait)
						words := r.words(false)
						for _, h := range c.Sent() {
							if h.Seq > f.Seq && (r.frame == nil || h.Seq < r.frame.Seq) && h.CH.Type == tcp.TypeH2CData {
								// The host took the R2T; what the controller
								// then did to its data is no longer the host's.
								words = "answered the non-contiguous R2T with H2CData"
								break
							}
						}
						t.Conform(words, fmt.Sprintf("H2CTermReq FES %#x", tcp.FESPDUSequenceError))
						return
					}
				}
			}
			t.Failf("%s: the host made no %d-byte write through R2T", t.Check.ID, checkReadSize)
		},
	},
}

// readSLBA is the starting LBA of the Read the host sent on c with
// identifier cid before its PDU number seq.
func readSLBA(c *Conn, cid uint16, seq int) uint64 {
	var slba uint64
	for _, f := range c.Sent() {
		if s := Command(f); s != nil && f.Seq < seq && s.CID == cid {
			slba = uint64(s.CDW11)<<32 | uint64(s.CDW10)
		}
	}
	return slba
}

// unusedCID is a command identifier no command outstanding on c has.
func unusedCID(c *Conn) uint16 {
	out := map[uint16]bool{}
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			out[p.SQE.CID] = true
		case *tcp.CapsuleResp:
			delete(out, p.CQE.CID)
		}
	}
	for cid := uint16(0xFFFE); ; cid-- {
		if !out[cid] {
			return cid
		}
	}
}

// reencodeC2H encodes a C2HData as the target would on c (its digests,
// the host's HPDA), with data.
func reencodeC2H(c *Conn, f *Frame, d tcp.C2HData, data []byte) []byte {
	var hpda uint8
	if req, _ := c.ICReq(); req != nil && req.HPDA <= 31 {
		hpda = req.HPDA
	}
	o := tcp.EncodeOptions{Digests: tcp.Digests{Header: f.CH.Flags&tcp.FlagHDGST != 0, Data: f.CH.Flags&tcp.FlagDDGST != 0}, PDA: hpda}
	return tcp.AppendPDU(nil, &d, data, o)
}
