//go:build unix

package tcp

import (
	"io"
	"os"
	"syscall"
)

const canPoll = true

// pollRead is one non-blocking read attempt, set up once so a Read
// allocates nothing.
type pollRead struct {
	p     []byte
	n     int
	errno error
	fn    func(fd uintptr) bool
}

// run reads what the socket has without waiting. again reports that it
// had nothing; otherwise n and err are Read's results.
func (s *pollRead) run(rc syscall.RawConn, p []byte) (n int, again bool, err error) {
	s.p, s.n, s.errno = p, 0, nil
	// RawConn.Read checks the read deadline and that the connection is
	// open before calling fn, so deadlines and Close keep working.
	if err := rc.Read(s.fn); err != nil {
		s.p = nil
		return 0, false, err
	}
	n, errno := s.n, s.errno
	s.p, s.errno = nil, nil
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return 0, true, nil
	case errno != nil:
		return 0, false, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, false, io.EOF
	}
	return n, false, nil
}

func (s *pollRead) read(fd uintptr) bool {
	s.n, s.errno = syscall.Read(int(fd), s.p)
	if s.n < 0 {
		s.n = 0
	}
	return true
}
