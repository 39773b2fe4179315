package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// envRunMain makes the test binary act as nvmftest itself (see runChild).
const envRunMain = "NVMFTEST_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runChild runs a command line in a child process of the test binary.
// Commands that run the conformance suites need it when this process has
// run them already: Ginkgo runs once per process.
func runChild(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := childCmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return childExit(t, args, cmd.Run()), out.String(), errb.String()
}

// childCmd is the test binary set to run as nvmftest with args.
func childCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	return cmd
}

// childExit is the exit status of a child that ended with err; a child
// that could not run at all fails t.
func childExit(t *testing.T, args []string, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("run %q: %v", args, err)
	return 0
}
