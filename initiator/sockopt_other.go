//go:build !linux

package initiator

import (
	"errors"
	"syscall"
)

// setSockopts: binding to an interface and setting the TOS are Linux
// only here.
func setSockopts(_ syscall.RawConn, _, _ string, _ int) error {
	return errors.New("--host-iface and --tos need Linux")
}
