//go:build !unix

package loadgen

// rusage has nothing to read without getrusage: the CPU fields stay 0.
func rusage() CPUUsage { return CPUUsage{} }
