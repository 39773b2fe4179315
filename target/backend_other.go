//go:build !linux

package target

// punchHole is Linux only here: elsewhere deallocation writes zeroes.
func punchHole(fileIO, int64, int64) error { return errNoPunchHole }
