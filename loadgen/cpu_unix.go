//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// rusage reads the process's totals so far (RUSAGE_SELF: every thread).
func rusage() CPUUsage {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return CPUUsage{}
	}
	return CPUUsage{User: time.Duration(ru.Utime.Nano()), Sys: time.Duration(ru.Stime.Nano()),
		Ctx: int64(ru.Nvcsw) + int64(ru.Nivcsw), MajFlt: int64(ru.Majflt), MinFlt: int64(ru.Minflt)}
}
