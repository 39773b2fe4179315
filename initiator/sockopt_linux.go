package initiator

import (
	"fmt"
	"strings"
	"syscall"
)

// setSockopts binds the socket to iface (SO_BINDTODEVICE) and sets its
// IP TOS (IP_TOS, or IPV6_TCLASS for IPv6), before it connects.
func setSockopts(rc syscall.RawConn, network, iface string, tos int) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if iface != "" {
			if e := syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, iface); e != nil {
				serr = fmt.Errorf("bind to interface %s: %w", iface, e)
				return
			}
		}
		if tos > 0 {
			lvl, opt := syscall.IPPROTO_IP, syscall.IP_TOS
			if strings.HasSuffix(network, "6") {
				lvl, opt = syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS
			}
			if e := syscall.SetsockoptInt(int(fd), lvl, opt, tos); e != nil {
				serr = fmt.Errorf("set TOS %d: %w", tos, e)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
