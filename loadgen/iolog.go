package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// logUnderJobName is a log prefix option given without a name: fio then
// names the log after the job.
const logUnderJobName = "\x00"

// IOLogs are fio's per-I/O logs (write_lat_log, write_bw_log,
// write_iops_log) of a run, one set per clone, opened before any I/O.
//
// Files are named as fio names them: PREFIX_lat.N.log, PREFIX_clat.N.log,
// PREFIX_slat.N.log, PREFIX_bw.N.log and PREFIX_iops.N.log, N counting the
// clones of all jobs from 1 in job order (fio's thread number). Each line
// is fio 3.33's: "time, value, direction, block size, priority" with time
// in ms since the job's measured phase began (after ramp_time), direction
// 0 read and 1 write, priority 0. Values: latency in ns; bandwidth as fio
// computes it per I/O (bytes * 10^6 / clat ns) or, windowed, in KiB/s;
// IOPS 1 per I/O or, windowed, I/Os per second. With log_avg_msec each
// window writes one line per direction (the average latency; block size
// 0); bandwidth and IOPS also write 0 for a window without I/O, so a
// stall shows. lat is from the intended issue time and slat from it to
// the hand-off with rate_iops; without it nothing precedes the hand-off,
// so lat equals clat and the slat log stays empty (as fio's for engines
// without a submission step).
type IOLogs struct {
	files   []*logFile
	workers [][]*ioLog // by target, then clone
}

type logFile struct {
	name string
	c    io.Closer
	w    *bufio.Writer
}

// OpenIOLogs creates the log files the targets' jobs ask for, through
// create(option, file name), which can refuse a file with an error
// (returned as it is). It returns nil, nil when no job logs.
func OpenIOLogs(targets []Target, create func(option, name string) (io.WriteCloser, error)) (*IOLogs, error) {
	l := &IOLogs{workers: make([][]*ioLog, len(targets))}
	n := 0
	for ti, t := range targets {
		j := t.Job
		for range t.Devices {
			n++
			if j.LatLog == "" && j.BWLog == "" && j.IOPSLog == "" {
				l.workers[ti] = append(l.workers[ti], nil)
				continue
			}
			w := &ioLog{avg: int64(j.LogAvgMsec) * 1e6, rate: j.RateIOPS > 0, read: j.Read, write: j.Write}
			w.winEnd = w.avg
			open := func(option, prefix, kind string) (*bufio.Writer, error) {
				if prefix == "" {
					return nil, nil
				}
				if prefix == logUnderJobName {
					prefix = strings.ReplaceAll(j.Name, "/", "_")
				}
				name := fmt.Sprintf("%s_%s.%d.log", prefix, kind, n)
				c, err := create(option, name)
				if err != nil {
					return nil, err
				}
				f := &logFile{name: name, c: c, w: bufio.NewWriterSize(c, 256<<10)}
				l.files = append(l.files, f)
				return f.w, nil
			}
			var err error
			for _, o := range []struct {
				w      **bufio.Writer
				option string
				prefix string
				kind   string
			}{
				{&w.lat, "write_lat_log", j.LatLog, "lat"}, {&w.clat, "write_lat_log", j.LatLog, "clat"},
				{&w.slat, "write_lat_log", j.LatLog, "slat"}, {&w.bw, "write_bw_log", j.BWLog, "bw"},
				{&w.iops, "write_iops_log", j.IOPSLog, "iops"},
			} {
				if *o.w, err = open(o.option, o.prefix, o.kind); err != nil {
					l.Close()
					return nil, err
				}
			}
			l.workers[ti] = append(l.workers[ti], w)
		}
	}
	if len(l.files) == 0 {
		return nil, nil
	}
	return l, nil
}

// Close writes what is buffered and closes every file; the first error
// names its file.
func (l *IOLogs) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, f := range l.files {
		if err := f.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
		if err := f.c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	l.files = nil
	return errors.Join(errs...)
}

func (l *IOLogs) worker(target, clone int) *ioLog {
	if l == nil || target >= len(l.workers) || clone >= len(l.workers[target]) {
		return nil
	}
	return l.workers[target][clone]
}

// ioLog is one clone's logs. add runs on the completion path (under the
// worker's lock): it appends to a fixed scratch buffer and buffered
// writers and allocates nothing.
type ioLog struct {
	lat, clat, slat, bw, iops *bufio.Writer
	rate                      bool
	read, write               bool // the job's directions, for windows without I/O
	avg                       int64
	winStart, winEnd          int64
	acc                       [2]logAcc
	buf                       [80]byte
}

type logAcc struct {
	n, bytes, lat, clat, slat int64
}

func (l *ioLog) line(w *bufio.Writer, t, v int64, op Op, bs int64) {
	if w == nil {
		return
	}
	b := strconv.AppendInt(l.buf[:0], t/1e6, 10)
	b = append(b, ", "...)
	b = strconv.AppendInt(b, v, 10)
	b = append(b, ", "...)
	b = strconv.AppendInt(b, int64(op), 10)
	b = append(b, ", "...)
	b = strconv.AppendInt(b, bs, 10)
	b = append(b, ", 0\n"...)
	_, _ = w.Write(b) // an error sticks in the writer; Close reports it
}

// add logs one I/O that completed t ns into the measured phase.
func (l *ioLog) add(t int64, op Op, bytes int, clat, lat, slat int64) {
	if l.avg == 0 {
		bs := int64(bytes)
		l.line(l.lat, t, lat, op, bs)
		l.line(l.clat, t, clat, op, bs)
		if l.rate {
			l.line(l.slat, t, slat, op, bs)
		}
		bw := int64(0)
		if clat > 0 {
			bw = bs * 1e6 / clat
		}
		l.line(l.bw, t, bw, op, bs)
		l.line(l.iops, t, 1, op, bs)
		return
	}
	for t >= l.winEnd {
		l.flush(l.winEnd, l.winEnd)
		l.winStart, l.winEnd = l.winEnd, l.winEnd+l.avg
	}
	a := &l.acc[op]
	a.n++
	a.bytes += int64(bytes)
	a.lat += lat
	a.clat += clat
	a.slat += slat
}

// flush writes the window that ends at t (ns), stamped at, and clears
// it.
func (l *ioLog) flush(t, at int64) {
	span := t - l.winStart
	if span <= 0 {
		return
	}
	for op := range 2 {
		if op == int(OpRead) && !l.read || op == int(OpWrite) && !l.write {
			continue
		}
		a := &l.acc[op]
		if a.n > 0 {
			l.line(l.lat, at, a.lat/a.n, Op(op), 0)
			l.line(l.clat, at, a.clat/a.n, Op(op), 0)
			if l.rate {
				l.line(l.slat, at, a.slat/a.n, Op(op), 0)
			}
		}
		l.line(l.bw, at, int64(float64(a.bytes)*1e9/1024/float64(span)), Op(op), 0)
		l.line(l.iops, at, a.n*1e9/span, Op(op), 0)
		*a = logAcc{}
	}
}

// finish writes the last, partial window when the clone's measured phase
// ends t ns in. Its rates are over its own length; it is stamped at the
// next whole ms, so it never shares the time of the window before.
func (l *ioLog) finish(t int64) {
	if l.avg == 0 {
		return
	}
	// Windows with no I/O up to the end still say so (a stall at the end).
	for t >= l.winEnd {
		l.flush(l.winEnd, l.winEnd)
		l.winStart, l.winEnd = l.winEnd, l.winEnd+l.avg
	}
	if t > l.winStart {
		l.flush(t, (t+1e6-1)/1e6*1e6)
	}
}
