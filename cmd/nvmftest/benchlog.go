package main

import (
	"io"

	"github.com/nvmftest/nvmftest/loadgen"
)

// The log options are job options, as in fio (a job file may set them per
// job, the flags are defaults). They join the job flags here rather than
// in benchFioFlags' literal, which the job-option work edits.
func init() {
	benchFioFlags = append(benchFioFlags, []struct{ name, usage string }{
		{"write_lat_log", "write fio's per-I/O latency logs `PREFIX`_lat.N.log, _clat.N.log and _slat.N.log (N: clone number)"},
		{"write_bw_log", "write fio's bandwidth log `PREFIX`_bw.N.log"},
		{"write_iops_log", "write fio's IOPS log `PREFIX`_iops.N.log"},
		{"log_avg_msec", "average the logs over windows of this many ms (default 0: one line per I/O)"},
	}...)
}

// openIOLogs creates the jobs' fio logs before any I/O; a file that
// cannot be made is a usage error naming the option.
func openIOLogs(targets []loadgen.Target) (*loadgen.IOLogs, error) {
	return loadgen.OpenIOLogs(targets, func(option, name string) (io.WriteCloser, error) {
		return createOutput("--"+option, name)
	})
}
