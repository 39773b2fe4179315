package suites

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// TraceMode says which checks keep the packet trace of their connections.
type TraceMode string

// Trace modes. Every check's connections are recorded while it runs (one
// pcapng per check, all its connections in it); the mode decides what is
// kept when it ends.
const (
	TracesFailed TraceMode = "failed" // keep the traces of checks that failed (the default with a ReportDir)
	TracesAll    TraceMode = "all"    // keep every check's trace
	TracesNone   TraceMode = "none"   // record nothing
)

// ParseTraceMode checks a --traces value.
func ParseTraceMode(s string) (TraceMode, error) {
	switch m := TraceMode(s); m {
	case TracesFailed, TracesAll, TracesNone:
		return m, nil
	}
	return "", fmt.Errorf("%q: use failed, all or none", s)
}

// tracesDir is where kept traces go, relative to the report directory.
const tracesDir = "traces"

// checkTrace is the recording of one check's connections: the
// capture.Recorder its initiator options carry.
type checkTrace struct {
	id   string
	file *capture.File
	rel  string      // path relative to the report directory
	used atomic.Bool // a connection was opened (an empty trace is not kept)
}

// Record labels each connection with the check's ID, so the ID shows as a
// packet comment on the connection's first packet in Wireshark.
func (t *checkTrace) Record(nc net.Conn, client bool, label string) net.Conn {
	t.used.Store(true)
	return t.file.Record(nc, client, t.id+": "+label)
}

// startTrace opens the check's trace file when the run keeps traces.
func (s *Spec) startTrace() {
	runMu.Lock()
	reportDir, dir, mode := runOpts.ReportDir, runOpts.TraceDir, runOpts.Traces
	runMu.Unlock()
	if dir == "" && reportDir != "" {
		dir = filepath.Join(reportDir, tracesDir)
	}
	if dir == "" || mode == TracesNone {
		return
	}
	path := filepath.Join(dir, s.Req.ID+".pcapng")
	// Named relative to the report directory when inside it, so the
	// report directory can move.
	rel := path
	if r, err := filepath.Rel(reportDir, path); reportDir != "" && err == nil && filepath.IsLocal(r) {
		rel = r
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		GinkgoWriter.Printf("no trace for %s: %v\n", s.Req.ID, err)
		return
	}
	f, err := capture.CreateFile(path, fmt.Sprintf("nvmftest conformance check %s (%s, %s): %s", s.Req.ID, s.Req.Section, s.Req.Level, s.Req.Title))
	if err != nil {
		GinkgoWriter.Printf("no trace for %s: %v\n", s.Req.ID, err)
		return
	}
	s.trace = &checkTrace{id: s.Req.ID, file: f, rel: filepath.ToSlash(rel)}
}

// finishTrace runs after the check's connections are closed: it keeps the
// trace, named in the JUnit entry, or removes it.
func (s *Spec) finishTrace() {
	t := s.trace
	if t == nil {
		return
	}
	s.trace = nil
	err := t.file.Close()
	runMu.Lock()
	mode := runOpts.Traces
	runMu.Unlock()
	keep := t.used.Load() && err == nil && (mode == TracesAll || CurrentSpecReport().Failed() || s.killed)
	if !keep {
		_ = os.Remove(t.file.Path())
		return
	}
	// A property of the JUnit test case, and the attachment line that
	// Jenkins' and GitLab's JUnit readers turn into a link.
	AddReportEntry("trace", t.rel)
	GinkgoWriter.Printf("[[ATTACHMENT|%s]]\n", t.file.Path())
}
