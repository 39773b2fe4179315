package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

type memFile struct{ bytes.Buffer }

func (*memFile) Close() error { return nil }

// memLogs opens the targets' logs into memory, by file name.
func memLogs(t *testing.T, targets []Target) (*IOLogs, map[string]*memFile) {
	t.Helper()
	files := map[string]*memFile{}
	l, err := OpenIOLogs(targets, func(_, name string) (io.WriteCloser, error) {
		f := &memFile{}
		files[name] = f
		return f, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, files
}

// logLines parses fio 3.33 log lines: time, value, direction, bs, prio.
func logLines(t *testing.T, name string, f *memFile) [][5]int64 {
	t.Helper()
	var rows [][5]int64
	for _, line := range strings.Split(strings.TrimSuffix(f.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		parts := strings.Split(line, ", ")
		if len(parts) != 5 {
			t.Fatalf("%s: %q: %d fields, want 5", name, line, len(parts))
		}
		var r [5]int64
		for i, p := range parts {
			n, err := strconv.ParseInt(p, 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			r[i] = n
		}
		rows = append(rows, r)
	}
	return rows
}

// TestIOLogsPerIO: fio's file names (PREFIX_TYPE.N.log, N over all
// clones), one line per I/O in fio's format.
func TestIOLogsPerIO(t *testing.T) {
	a := mustJob(t, "a", "rw", "randrw", "size", "256k", "numjobs", "2", "write_lat_log", "L", "write_iops_log", "")
	b := mustJob(t, "b", "rw", "read", "size", "64k", "write_bw_log", "B", "stonewall", "1")
	targets := []Target{nullTarget(t, a, 1<<12), nullTarget(t, b, 1<<12)}
	logs, files := memLogs(t, targets)
	res, err := Run(context.Background(), targets, RunOptions{IOLogs: logs})
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	want := []string{"L_lat.1.log", "L_clat.1.log", "L_slat.1.log", "a_iops.1.log", "L_lat.2.log", "L_clat.2.log", "L_slat.2.log", "a_iops.2.log", "B_bw.3.log"}
	if len(files) != len(want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for _, n := range want {
		if files[n] == nil {
			t.Fatalf("no %s among %v", n, names)
		}
	}
	ja := res.Jobs[0]
	var clat, iops [2]int64
	for _, n := range []string{"L_clat.1.log", "L_clat.2.log"} {
		for _, r := range logLines(t, n, files[n]) {
			if r[1] <= 0 || r[2] > 1 || r[3] != 4096 || r[4] != 0 {
				t.Fatalf("%s: %v", n, r)
			}
			clat[r[2]]++
		}
	}
	for _, n := range []string{"a_iops.1.log", "a_iops.2.log"} {
		for _, r := range logLines(t, n, files[n]) {
			if r[1] != 1 {
				t.Fatalf("%s: %v", n, r)
			}
			iops[r[2]]++
		}
	}
	if clat[0] != ja.Read.IOs || clat[1] != ja.Write.IOs || iops != clat {
		t.Errorf("clat lines %v, iops lines %v; the job did %d reads, %d writes", clat, iops, ja.Read.IOs, ja.Write.IOs)
	}
	if files["L_slat.1.log"].Len() != 0 {
		t.Errorf("slat without rate_iops:\n%.200s", files["L_slat.1.log"].String())
	}
	if n := int64(len(logLines(t, "B_bw.3.log", files["B_bw.3.log"]))); n != res.Jobs[1].Read.IOs {
		t.Errorf("bw lines %d, reads %d", n, res.Jobs[1].Read.IOs)
	}
}

// TestIOLogsAveraged: log_avg_msec writes one line per window and
// direction; the IOPS lines add up to the I/Os done.
func TestIOLogsAveraged(t *testing.T) {
	j := mustJob(t, "w", "rw", "randwrite", "size", "1m", "runtime", "300ms", "time_based", "1", "rate_iops", "2000",
		"write_iops_log", "I", "write_lat_log", "L", "log_avg_msec", "50")
	targets := []Target{nullTarget(t, j, 1<<12)}
	logs, files := memLogs(t, targets)
	res, err := Run(context.Background(), targets, RunOptions{IOLogs: logs})
	if err != nil {
		t.Fatal(err)
	}
	logs.Close()
	rows := logLines(t, "I_iops.1.log", files["I_iops.1.log"])
	if len(rows) < 3 {
		t.Fatalf("%d windows:\n%s", len(rows), files["I_iops.1.log"].String())
	}
	// A whole 50 ms window's IOPS is its I/O count x 20, exactly; the
	// last window is partial (its rate is over its own length) and holds
	// the rest.
	var whole int64
	last := int64(-1)
	for i, r := range rows {
		if r[2] != 1 || r[3] != 0 || r[0] <= last {
			t.Fatalf("row %v after time %d", r, last)
		}
		last = r[0]
		if i == len(rows)-1 {
			break
		}
		if r[0]%50 != 0 || r[1]%20 != 0 {
			t.Errorf("row %v: not a whole 50 ms window", r)
		}
		whole += r[1] / 20
	}
	if done := res.Jobs[0].Write.IOs; whole > done || whole == 0 || rows[len(rows)-1][1] == 0 && whole != done {
		t.Errorf("whole windows hold %d I/Os, the job did %d", whole, done)
	}
	if len(logLines(t, "L_slat.1.log", files["L_slat.1.log"])) == 0 {
		t.Error("no slat windows with rate_iops")
	}
}

// TestIOLogNoAlloc: logging an I/O allocates nothing, per I/O or
// averaged (and a job without logs has no logger at all).
func TestIOLogNoAlloc(t *testing.T) {
	for _, avg := range []int64{0, 1e6} {
		var b bytes.Buffer
		w := newTestWriter(&b)
		l := &ioLog{lat: w, clat: w, slat: w, bw: w, iops: w, rate: true, read: true, write: true, avg: avg, winEnd: avg}
		now := int64(0)
		if n := testing.AllocsPerRun(1000, func() {
			now += 1000
			l.add(now, OpRead, 4096, 20000, 21000, 1000)
		}); n != 0 {
			t.Errorf("log_avg_msec %d ns: %v allocations per I/O", avg, n)
		}
	}
	targets := []Target{nullTarget(t, mustJob(t, "q", "size", "64k"), 1<<12)}
	if l, err := OpenIOLogs(targets, nil); l != nil || err != nil {
		t.Errorf("no logs asked for: %v %v", l, err)
	}
}

// TestIOLogsRefused: a log file that cannot be made stops the run before
// it starts, with the error as create gave it.
func TestIOLogsRefused(t *testing.T) {
	refused := errors.New("refused")
	targets := []Target{nullTarget(t, mustJob(t, "q", "size", "64k", "write_bw_log", "x"), 1<<12)}
	if _, err := OpenIOLogs(targets, func(string, string) (io.WriteCloser, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Errorf("err %v", err)
	}
}

func newTestWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 1<<20) }

// TestIOLogStallAtEnd: windows without I/O before the end of the phase
// write bandwidth and IOPS 0, so a stall is in the log.
func TestIOLogStallAtEnd(t *testing.T) {
	var b bytes.Buffer
	w := newTestWriter(&b)
	l := &ioLog{iops: w, read: true, avg: 10e6, winEnd: 10e6}
	l.add(1e6, OpRead, 4096, 1000, 1000, 0)
	l.finish(35e6)
	w.Flush()
	if got, want := b.String(), "10, 100, 0, 0, 0\n20, 0, 0, 0, 0\n30, 0, 0, 0, 0\n35, 0, 0, 0, 0\n"; got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}
