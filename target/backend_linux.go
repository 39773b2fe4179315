package target

import (
	"os"
	"syscall"
)

// fallocate(2) modes (linux/falloc.h); package syscall does not name them.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// punchHole deallocates n bytes at off of a file namespace: they read as
// zeroes afterwards (Identify Namespace DLFEAT says so) and give their
// disk space back, as nvmet's file backend does for Dataset Management.
// Writing zeroes instead would allocate the whole range: one DSM command
// of 256 whole-namespace ranges would write 256 namespaces of zeroes.
func punchHole(f fileIO, off, n int64) error {
	of, ok := f.(*os.File)
	if !ok {
		return errNoPunchHole
	}
	rc, err := of.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = syscall.Fallocate(int(fd), fallocPunchHole|fallocKeepSize, off, n)
	}); err != nil {
		return err
	}
	if ferr == syscall.EOPNOTSUPP || ferr == syscall.ENOSYS {
		return errNoPunchHole
	}
	return ferr
}
