//go:build unix

package tcp

import "syscall"

const canTryWrite = true

type tryState struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// run writes what the socket takes without waiting: the count written,
// and an error only if the connection failed.
func (s *tryState) run(rc syscall.RawConn, b []byte) (int, error) {
	s.b, s.n, s.err = b, 0, nil
	err := rc.Write(s.fn)
	n, werr := s.n, s.err
	s.b, s.err = nil, nil
	if werr == nil {
		werr = err
	}
	return n, werr
}

func (s *tryState) write(fd uintptr) bool {
	for s.n < len(s.b) {
		m, e := syscall.Write(int(fd), s.b[s.n:])
		if m > 0 {
			s.n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return true
		case e != nil:
			s.err = e
			return true
		case m <= 0:
			return true
		}
	}
	return true
}
