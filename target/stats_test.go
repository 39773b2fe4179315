package target

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// logBuffer collects a target's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startLogged(t *testing.T, cfg Config, level slog.Level) (*Target, *logBuffer) {
	t.Helper()
	var lb logBuffer
	tg, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(&lb, &slog.HandlerOptions{Level: level}))))
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg, &lb
}

// logLine returns the first log line containing every one of want.
func logLine(log string, want ...string) string {
	for l := range strings.SplitSeq(log, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			return l
		}
	}
	return ""
}

// TestRefusedConnectsLogged: every refused Connect leaves a line, at the
// default (info) level, with its reason, the peer address and the NQNs,
// and is counted by reason (review item 11).
func TestRefusedConnectsLogged(t *testing.T) {
	tg, lb := startLogged(t, testConfig(), slog.LevelInfo)
	addr := tg.Addrs()[0]

	c := dial(t, addr, 0)
	wantStatus(t, c.connect("nqn.2014-08.io.nvmftest:nosuch", 0, nvme.CNTLIDDynamic, 0), nvme.StatusConnectInvalidParameters)
	c = dial(t, addr, 0)
	wantStatus(t, c.connect("nqn.2014-08.io.nvmftest:private", 0, nvme.CNTLIDDynamic, 0), nvme.StatusConnectInvalidHost)
	c = dial(t, addr, 0)
	wantStatus(t, c.connect(testNQN, 0, 7, 0), nvme.StatusConnectInvalidParameters)
	c = dial(t, addr, 0)
	wantStatus(t, c.exec(connectSQE(0, 0xFFFF, 0, 0), connectData(testNQN, testHost, nvme.CNTLIDDynamic), true, nil), nvme.StatusConnectInvalidParameters)
	a := admin(t, addr, testNQN, 0)
	c = dial(t, addr, 0)
	wantStatus(t, c.connect(testNQN, 1, a.cntlid+100, 0), nvme.StatusConnectInvalidParameters)

	log := lb.String()
	remote := c.nc.LocalAddr().String()
	for _, tc := range []struct{ reason, subnqn string }{
		{"unknown subsystem", "nqn.2014-08.io.nvmftest:nosuch"},
		{"host not allowed", "nqn.2014-08.io.nvmftest:private"},
		{"bad CNTLID (want FFFFh", testNQN},
		{"queue size", testNQN},
		{"bad CNTLID (no such controller)", testNQN},
	} {
		l := logLine(log, "connect refused", tc.reason)
		if l == "" || !strings.Contains(l, "subnqn="+tc.subnqn) || !strings.Contains(l, "host="+testHost) || !strings.Contains(l, "remote=127.0.0.1:") {
			t.Errorf("no refused-connect line for %q with remote, subnqn and host:\n%s", tc.reason, log)
		}
	}
	if l := logLine(log, "connect refused", "bad CNTLID (no such controller)"); !strings.Contains(l, "remote="+remote) || !strings.Contains(l, "qid=1") {
		t.Errorf("I/O queue refusal lacks its remote %s or qid: %q", remote, l)
	}
	if l := logLine(log, "controller created"); !strings.Contains(l, "level=INFO") || !strings.Contains(l, "remote=127.0.0.1:") || !strings.Contains(l, "host="+testHost) {
		t.Errorf("controller created line %q lacks level INFO, remote or host", l)
	}
	st := tg.Stats()
	for _, r := range []string{"unknown subsystem", "host not allowed", "queue size"} {
		if st.RefusedConnects[r] != 1 {
			t.Errorf("refused connects %v: want 1 %q", st.RefusedConnects, r)
		}
	}
	if strings.Contains(log, "level=DEBUG") {
		t.Errorf("debug lines at info level:\n%s", log)
	}
}

// TestQueueLifecycleLoggedAtDebug: accepted and closed connections and I/O
// queue connects are logged at debug, with peer, CNTLID and QID.
func TestQueueLifecycleLoggedAtDebug(t *testing.T) {
	tg, lb := startLogged(t, testConfig(), slog.LevelDebug)
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	remote := q.nc.LocalAddr().String()
	q.nc.Close()
	waitFor(t, func() bool { return logLine(lb.String(), "connection closed", "remote="+remote) != "" })
	log := lb.String()
	for _, want := range [][]string{
		{"level=DEBUG", "connection accepted", "remote=" + remote},
		{"level=DEBUG", "I/O queue connected", "qid=1", "remote=" + remote, "host=" + testHost},
		{"level=DEBUG", "connection closed", "remote=" + remote, "qid=1", "subnqn=" + testNQN},
	} {
		if logLine(log, want...) == "" {
			t.Errorf("no line with %q:\n%s", want, log)
		}
	}
}

// TestStatsAndSMARTCountIO: the counters per namespace, controller and
// queue count reads, writes, bytes, errors by status and latency, and
// the SMART log read through a new association shows the I/O an earlier
// one did, in Data Units rounded up (review item 11: it always said 0).
func TestStatsAndSMARTCountIO(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]
	a := admin(t, addr, testNQN, 0)
	q := ioQueue(t, addr, a.cntlid, 1, 0)
	ioLoop(t, q, true, 10, 4) // 10 writes of 4 KiB to NSID 1
	ioLoop(t, q, false, 7, 4) // 7 reads of 4 KiB from NSID 1
	// One read past the end of NSID 1: an error, LBA Out of Range.
	s := nvme.ReadCmd(1, 1<<20, 1)
	nvme.SetDataLength(&s, 512)
	wantStatus(t, q.exec(s, nil, false, make([]byte, 512)), nvme.StatusLBAOutOfRange)

	st := tg.Stats()
	if len(st.Controllers) != 1 || len(st.Controllers[0].Queues) != 1 {
		t.Fatalf("controllers %+v", st.Controllers)
	}
	c := st.Controllers[0]
	if c.Writes != 10 || c.Reads != 8 || c.Errors != 1 || c.BytesWritten != 40960 || c.BytesRead != 7*4096 || c.Remote == "" || c.Host != testHost {
		t.Errorf("controller stats %+v", c)
	}
	if c.Queues[0].QID != 1 || c.Queues[0].Writes != 10 {
		t.Errorf("queue stats %+v", c.Queues[0])
	}
	if n := c.ErrorsByStatus[StatusName(nvme.StatusLBAOutOfRange)]; n != 1 {
		t.Errorf("errors by status %v", c.ErrorsByStatus)
	}
	if l := c.Latency["write"]; l.Count != 10 || l.MaxUs <= 0 {
		t.Errorf("write latency %+v", l)
	}
	ns := st.Subsystems[0].Namespaces
	if len(ns) != 2 || ns[0].Writes != 10 || ns[0].Reads != 8 || ns[0].Errors != 1 || ns[0].BytesRead != 7*4096 || ns[1].Commands() != 0 {
		t.Errorf("namespace stats %+v", ns)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}

	// The first association ends; a new one reads the SMART log.
	q.nc.Close()
	a.nc.Close()
	waitFor(t, func() bool { return len(tg.Stats().Controllers) == 0 })
	b := admin(t, addr, testNQN, 0)
	page := make([]byte, nvme.SMARTLogSize)
	mustOK(t, b.exec(nvme.GetLogPageCmd(nvme.LogSMART, 0xFFFFFFFF, 0, 0, nvme.SMARTLogSize), nil, false, page))
	var l nvme.SMARTLog
	if err := l.Decode(page); err != nil {
		t.Fatal(err)
	}
	// 7 reads of 4 KiB = 56 units of 512 bytes: 1 data unit (rounded up);
	// 10 writes of 4 KiB = 80 units: 1.
	if l.HostReadCommands != 7 || l.HostWriteCommands != 10 || l.DataUnitsRead != 1 || l.DataUnitsWritten != 1 {
		t.Errorf("SMART through a new association: reads %d writes %d DUR %d DUW %d, want 7 10 1 1",
			l.HostReadCommands, l.HostWriteCommands, l.DataUnitsRead, l.DataUnitsWritten)
	}
	total := tg.Stats().Total
	if total.Writes != 10 || total.Reads != 8 || total.Errors != 1 {
		t.Errorf("target totals after the association ended %+v", total)
	}
	if got := dataUnits(1000 * 512); got != 1 {
		t.Errorf("dataUnits(1000 units) = %d, want 1", got)
	}
	if got := dataUnits(1001 * 512); got != 2 {
		t.Errorf("dataUnits(1001 units) = %d, want 2", got)
	}
}

// waitFor polls cond for up to 10 s (a bound that turns a hang into a
// failure, not a speed requirement).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// BenchmarkStatsRecord is what counting costs per I/O: the clock read at
// completion, the atomic counters and the histogram under its lock.
func BenchmarkStatsRecord(b *testing.B) {
	q := &queue{t: &Target{started0: time.Now()}}
	c := &command{q: q, sqe: nvme.ReadCmd(1, 0, 8), xfer: 4096, start: time.Since(q.t.started0)}
	var s nsStats
	s.record(c, nvme.StatusSuccess)
	b.ReportAllocs()
	for b.Loop() {
		s.record(c, nvme.StatusSuccess)
	}
}
