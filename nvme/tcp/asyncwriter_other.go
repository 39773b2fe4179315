//go:build !unix

package tcp

import "syscall"

// Without a non-blocking write every write goes through the writer
// goroutine.
const canTryWrite = false

type tryState struct{ fn func(uintptr) bool }

func (s *tryState) write(uintptr) bool { return true }

func (s *tryState) run(syscall.RawConn, []byte) (int, error) { return 0, nil }
