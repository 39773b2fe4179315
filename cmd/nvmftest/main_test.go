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
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %q: %v", args, err)
	}
	return code, out.String(), errb.String()
}
