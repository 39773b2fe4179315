//go:build !linux

package cpuset

import "errors"

func pin([]int) error { return errors.New("pinning to CPUs is only supported on Linux") }
