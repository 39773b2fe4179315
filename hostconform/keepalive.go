package hostconform

import (
	"context"
	"encoding/binary"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/suites"
)

// Keep Alive (NVMe Base 2.2 3.9; NVMe/TCP 1.0 3.4 requires the feature):
// what the host sends while idle and while busy, and what it does when
// the controller stops completing its Keep Alive commands.
func init() { register(keepAliveChecks...) }

// kaSeconds is the Keep Alive Timeout the keep alive checks ask the host
// to connect with: short, so a check watches several periods quickly,
// and a whole number of seconds, as nvme connect --keep-alive-tmo takes.
const kaSeconds = 2

// ctrattTBKAS is Identify Controller CTRATT bit 6, Traffic Based Keep
// Alive Support.
const ctrattTBKAS = 1 << 6

// offIDCTRATT is CTRATT's byte offset in the Identify Controller data.
const offIDCTRATT = 96

var keepAliveChecks = []Check{
	{
		Requirement: suites.Requirement{
			ID: "HOST-KA-001", Section: "NVMe Base 2.2 3.9.3.2, 3.9.4.2", Keyword: suites.Should,
			Title:      "An idle host sends Keep Alive often enough that KATT never passes without one (every KATT/2 recommended)",
			Text:       "To prevent the controller from detecting a Keep Alive Timeout during the use of Command Based Keep Alive on the host, the host should send Keep Alive commands at KATT/2 to account for delays (e.g., transport round-trip times, ...)",
			Statements: []string{"B-3.9.3.2-01"},
		},
		Area: "admin", Deviation: "keepalive-late",
		Run: func(t *T) {
			t.MustConnect("kato", strconv.Itoa(kaSeconds))
			admin, katt := kaAdmin(t)
			start := readyAt(admin)
			if start.IsZero() {
				t.Failf("%s: the host never read CSTS.RDY=1", t.Check.ID)
			}
			// Idle for 1.5 KATT: a host on time has sent within every
			// KATT of it; one that waits longer shows a gap over KATT.
			sleepCtx(t, start.Add(katt*3/2))
			end := time.Now()
			gap, at := kaLongestGap(t, admin, start, end)
			t.Detail("KATT %v; longest time without a keep alive %v (from %v after CSTS.RDY)", katt, gap.Round(time.Millisecond), at.Round(time.Millisecond))
			kaVerdict(t, admin, gap, katt)
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-KA-002", Section: "NVMe Base 2.2 3.9.4.2, 3.9.3.2", Keyword: suites.Should,
			Title:      "A busy host keeps sending Keep Alive to a controller using Command Based Keep Alive (CTRATT.TBKAS 0): I/O traffic does not stand in for it",
			Text:       "The host should not use Traffic Based Keep Alive if the controller is not using Traffic Based Keep Alive because a controller that uses Command Based Keep Alive detects a Keep Alive Timeout based on the absence of Keep Alive commands, not the absence of all commands",
			Statements: []string{"B-3.9.4.2-01", "B-3.9.3.2-01"},
		},
		Area: "admin", Deviation: "keepalive-traffic-based",
		Controller: func(s *Setup) {
			s.ToHost = kaBusyController()
		},
		Run: func(t *T) {
			t.MustConnect("kato", strconv.Itoa(kaSeconds))
			admin, katt := kaAdmin(t)
			if id := identifySeen(admin); id == nil || id.CTRATT&ctrattTBKAS != 0 {
				t.Failf("%s: the host did not get the Identify Controller data with TBKAS cleared", t.Check.ID)
			}
			// The controller answers I/O slowly (kaBusyDelay per
			// command): 10 reads one after another keep I/O in flight
			// for over 1.5 KATT.
			start := time.Now()
			ioErr := t.IO("read", 4096, 10*4096)
			end := time.Now()
			if ioErr != nil {
				t.Failf("%s: the host's reads failed: %v", t.Check.ID, ioErr)
			}
			if end.Sub(start) < katt*3/2 {
				t.Skipf("the host's I/O took %v, not long enough to judge keep alive under load (KATT %v)", end.Sub(start), katt)
			}
			gap, at := kaLongestGap(t, admin, start, end)
			t.Detail("KATT %v; I/O in flight for %v; longest time without a keep alive %v (from %v into the I/O)", katt, end.Sub(start).Round(time.Millisecond), gap.Round(time.Millisecond), at.Round(time.Millisecond))
			kaVerdict(t, admin, gap, katt)
		},
	},
	{
		Requirement: suites.Requirement{
			ID: "HOST-KA-003", Section: "NVMe Base 2.2 3.9.3.2, 3.1", Keyword: suites.May,
			Title:      "A host whose Keep Alive commands get no completion within KATT detects a Keep Alive Timeout and ends (or re-establishes) the association",
			Text:       "The host detects a Keep Alive Timeout if the host sends a Keep Alive command and does not receive a completion for the Keep Alive command before KATT elapses from when the Keep Alive command was sent (example host implementation)",
			Statements: []string{"B-3.9.3.2-03"},
		},
		Area: "admin", Deviation: "keepalive-timeout-ignored",
		Controller: func(s *Setup) {
			// The controller's own Keep Alive Timer never expires: only
			// the host may end the association.
			s.Config.Quirks = append(s.Config.Quirks, "kato-never-expires")
			s.ToHost = func(c *Conn, f *Frame) [][]byte {
				r, ok := f.PDU.(*tcp.CapsuleResp)
				if !ok || c.QID() != 0 {
					return pass(f)
				}
				if s := commandOf(c, r.CQE.CID); s != nil && s.Opcode == nvme.AdminKeepAlive {
					if _, mute := kaMuted.Load(c); mute {
						return nil // the controller stops answering
					}
				}
				return pass(f)
			}
		},
		Run: func(t *T) {
			t.MustConnect("kato", strconv.Itoa(kaSeconds))
			admin, katt := kaAdmin(t)
			mutedAt := time.Now()
			kaMuted.Store(admin, struct{}{})
			defer kaMuted.Delete(admin)
			// A host that sends at KATT/2 detects it by 1.5 KATT, then
			// has the run's close bound to end the association.
			deadline := mutedAt.Add(katt*3/2 + t.Cfg.CloseWait)
			ended := t.Ctrl.WaitFor(ctxUntil(t, deadline), func() bool {
				by, _ := admin.CloseInfo()
				return by != ""
			})
			by, at := admin.CloseInfo()
			unanswered := 0
			for _, f := range admin.Sent() {
				if s := Command(f); s != nil && s.Opcode == nvme.AdminKeepAlive && f.At.After(mutedAt) {
					unanswered++
				}
			}
			t.Detail("KATT %v; %d Keep Alive commands left unanswered", katt, unanswered)
			switch {
			case ended && (by == "host" || by == "host reset"):
				t.Detail("the host closed the admin connection %v after the controller went silent", at.Sub(mutedAt).Round(time.Millisecond))
			case ended:
				t.Failf("%s: the test controller closed the admin connection itself (%s): nothing to judge", t.Check.ID, by)
			case unanswered == 0:
				t.Conform("sent no Keep Alive", "ended the association")
			default:
				t.Conform("kept the association without Keep Alive completions", "ended the association")
			}
		},
	},
}

// kaAdmin returns the admin connection of the host's association and the
// KATT it has: its Connect's KATO rounded up to the KAS granularity the
// Identify Controller data gave (NVMe Base 2.2 3.9.1).
func kaAdmin(t *T) (*Conn, time.Duration) {
	for _, c := range t.Ctrl.Conns() {
		s, d := c.Connect()
		if s == nil || nvme.DecodeConnect(s).QID != 0 || d == nil || d.SubNQN != t.Cfg.SubNQN {
			continue
		}
		kato := time.Duration(nvme.DecodeConnect(s).KATO) * time.Millisecond
		if kato == 0 {
			t.Skipf("the host connected with KATO 0 when asked for %d s (HOST-CONN-004 judges that)", kaSeconds)
		}
		if id := identifySeen(c); id != nil && id.KAS > 0 {
			g := time.Duration(id.KAS) * 100 * time.Millisecond
			kato = (kato + g - 1) / g * g
		}
		return c, kato
	}
	t.Failf("%s: the host connected no admin queue to %s", t.Check.ID, t.Cfg.SubNQN)
	return nil, 0
}

// kaLongestGap is the longest stretch of [from, to] in which the host
// sent nothing that restarts the controller's Keep Alive Timer: a Keep
// Alive command, or any command when the Identify Controller data the
// host got reported Traffic Based Keep Alive. It ends at the admin
// connection's close if that came first.
func kaLongestGap(t *T, admin *Conn, from, to time.Time) (gap, at time.Duration) {
	if _, closed := admin.CloseInfo(); !closed.IsZero() && closed.Before(to) {
		to = closed
	}
	traffic := false
	if id := identifySeen(admin); id != nil && id.CTRATT&ctrattTBKAS != 0 {
		traffic = true
	}
	var times []time.Time
	for _, c := range t.Ctrl.Conns() {
		if c != admin && !traffic {
			continue
		}
		for _, f := range c.Sent() {
			s := Command(f)
			if s == nil || f.At.Before(from) || f.At.After(to) {
				continue
			}
			if (c == admin && s.Opcode == nvme.AdminKeepAlive) || traffic {
				times = append(times, f.At)
			}
		}
	}
	last := from
	for _, tm := range append(sortTimes(times), to) {
		if d := tm.Sub(last); d > gap {
			gap, at = d, last.Sub(from)
		}
		last = tm
	}
	return gap, at
}

// kaVerdict judges the longest gap against KATT; a controller that ended
// the association on a Keep Alive Timeout judged it first.
func kaVerdict(t *T, admin *Conn, gap, katt time.Duration) {
	if by, _ := admin.CloseInfo(); by == "controller" || gap > katt {
		t.Detail("the admin connection: %s", map[bool]string{true: "closed by the controller", false: "open"}[by == "controller"])
		t.Conform("more than KATT without a Keep Alive", "a Keep Alive within every KATT")
	}
}

// kaBusyDelay is how long the HOST-KA-002 controller holds each I/O
// completion: I/O stays in flight while the host waits.
const kaBusyDelay = 350 * time.Millisecond

// kaBusyController is a controller using Command Based Keep Alive (the
// Identify Controller data the host gets has TBKAS cleared) that is slow
// to complete I/O.
func kaBusyController() Hook {
	return func(c *Conn, f *Frame) [][]byte {
		switch p := f.PDU.(type) {
		case *tcp.C2HData:
			if c.QID() == 0 {
				if s := commandOf(c, p.CCCID); s != nil && s.Opcode == nvme.AdminIdentify && uint8(s.CDW10) == nvme.CNSController && p.DATAO <= offIDCTRATT && p.DATAO+p.DATAL >= offIDCTRATT+4 {
					raw := append([]byte(nil), f.Raw...)
					off := int(f.CH.PDO) + offIDCTRATT - int(p.DATAO)
					v := binary.LittleEndian.Uint32(raw[off:])
					binary.LittleEndian.PutUint32(raw[off:], v&^ctrattTBKAS)
					return [][]byte{FixDigests(raw)}
				}
				return pass(f)
			}
			if p.Success {
				time.Sleep(kaBusyDelay)
			}
		case *tcp.CapsuleResp:
			if s := commandOf(c, p.CQE.CID); c.QID() > 0 && s != nil && s.Opcode != nvme.CmdFabrics {
				time.Sleep(kaBusyDelay)
			}
		}
		return pass(f)
	}
}

// commandOf returns the last command the host sent on c with identifier
// cid (nil if none).
func commandOf(c *Conn, cid uint16) *nvme.SQE {
	fs := c.Sent()
	for i := len(fs) - 1; i >= 0; i-- {
		if s := Command(fs[i]); s != nil && s.CID == cid {
			return s
		}
	}
	return nil
}

// identifySeen decodes the Identify Controller data the host got on
// admin connection c, as it got it (nil if it read none).
func identifySeen(c *Conn) *nvme.IdentifyController {
	want := map[uint16]bool{}
	var buf []byte
	for _, f := range c.Frames() {
		switch p := f.PDU.(type) {
		case *tcp.CapsuleCmd:
			if f.Dir == FromHost && p.SQE.Opcode == nvme.AdminIdentify && uint8(p.SQE.CDW10) == nvme.CNSController {
				want[p.SQE.CID] = true
			}
		case *tcp.C2HData:
			if f.Dir == ToHost && want[p.CCCID] {
				if buf == nil || p.DATAO == 0 {
					buf = make([]byte, nvme.IdentifyDataSize)
				}
				if d := f.Data(); int(p.DATAO) < len(buf) {
					copy(buf[p.DATAO:], d)
				}
			}
		}
	}
	if buf == nil {
		return nil
	}
	id := new(nvme.IdentifyController)
	if id.Decode(buf) != nil {
		return nil
	}
	return id
}

// kaMuted holds the admin connections whose Keep Alive completions the
// HOST-KA-003 controller drops (set by the check, read by its hook on the
// target's goroutine).
var kaMuted sync.Map // *Conn -> struct{}

// sleepCtx waits until when or the check's end.
func sleepCtx(t *T, when time.Time) {
	tm := time.NewTimer(time.Until(when))
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-t.Ctx.Done():
		t.Failf("%s: the check's time ran out while the host idled", t.Check.ID)
	}
}

// sortTimes sorts ts in place.
func sortTimes(ts []time.Time) []time.Time {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	return ts
}

// ctxUntil is the check's context ending at deadline too; its timer is
// released when the check ends.
func ctxUntil(t *T, deadline time.Time) context.Context {
	ctx, cancel := context.WithDeadline(t.Ctx, deadline)
	context.AfterFunc(t.Ctx, cancel)
	return ctx
}
