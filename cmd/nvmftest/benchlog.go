package main

import (
	"io"

	"github.com/nvmftest/nvmftest/loadgen"
)

// openIOLogs creates the jobs' fio logs before any I/O; a file that
// cannot be made is a usage error naming the option.
func openIOLogs(targets []loadgen.Target) (*loadgen.IOLogs, error) {
	return loadgen.OpenIOLogs(targets, func(option, name string) (io.WriteCloser, error) {
		return createOutput("--"+option, name)
	})
}
