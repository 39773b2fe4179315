//go:build !linux

package cpuset

import (
	"errors"
	"time"
)

func pin([]int) error { return errors.New("pinning to CPUs is only supported on Linux") }

// Allowed is not known off Linux.
func Allowed() ([]int, error) { return nil, errors.New("CPU affinity is only known on Linux") }

// SampleBusy is not available off Linux.
func SampleBusy(time.Duration) (Busy, error) {
	return nil, errors.New("CPU load is only sampled on Linux")
}
