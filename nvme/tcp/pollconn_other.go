//go:build !unix

package tcp

import "syscall"

// Without non-blocking reads on the raw socket a PollConn is not made.
const canPoll = false

type pollRead struct{ fn func(uintptr) bool }

func (s *pollRead) read(uintptr) bool { return true }

func (s *pollRead) run(syscall.RawConn, []byte) (int, bool, error) { return 0, false, nil }
