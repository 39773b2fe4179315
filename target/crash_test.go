package target

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
)

// crashChildEnv names the file a child target serves (see TestCrashChild).
const crashChildEnv = "NVMFTEST_CRASH_CHILD_FILE"

// TestCrashChild is not a test: TestCrashFlushFUA runs the test binary
// again with only this test and crashChildEnv set, and the child serves a
// file namespace on a free port, prints it, and waits to be killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("run by TestCrashFlushFUA")
	}
	tg, err := New(fileTargetConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", tg.Addrs()[0])
	select {}
}

// startChildTarget runs the test binary again with only the test named
// (a child that serves a target and prints "ADDR host:port") and env
// set, its standard error to stderr, and returns it and the address it
// printed. The child is killed when t ends.
func startChildTarget(t *testing.T, test, env string, stderr io.Writer) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("child target %s exited without serving", test)
		}
		return cmd, a
	case <-time.After(time.Minute):
		t.Fatalf("child target %s did not start", test)
	}
	return nil, ""
}

// TestCrashFlushFUA kills the target process (SIGKILL) while a host runs
// verified writes, a quarter of them FUA, with a Flush every few
// milliseconds, then restarts it on the same file and checks that every
// write acknowledged before a completed Flush, and every acknowledged FUA
// write, is intact (and no slot holds a generation never sent, or a torn or
// misplaced block). Five crashes in a row, each at a different moment.
//
// SIGKILL loses what only the process held, not the kernel's page cache;
// the test proves that an acknowledgement is sent only after the data left
// the process and that Flush and FUA reach fsync. Power loss is beyond
// what a test can do here.
func TestCrashFlushFUA(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := t.TempDir() + "/ns.img"
	const slots = 48
	s := newSlotState(slots)
	for round := range 6 {
		cmd, addr := startChildTarget(t, "TestCrashChild", crashChildEnv+"="+path, os.Stderr)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := initiator.Connect(ctx, addr, testNQN, initiator.Options{NrIOQueues: 2, QueueSize: 33})
		if err != nil {
			t.Fatal(err)
		}
		gens, err := readSlots(ctx, c.IOQueues()[0], 1, slots)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.check(gens, true); err != nil {
			t.Fatalf("round %d, after SIGKILL and restart: %v", round, err)
		}
		lost := 0
		s.mu.Lock()
		for i, g := range gens {
			if g < s.acked[i] {
				lost++
			}
		}
		s.mu.Unlock()
		if round > 0 {
			t.Logf("round %d: restart found every durable write; %d slots lost an acknowledged but unflushed write", round, lost)
		}
		if round == 5 {
			c.Close()
			cancel()
			break
		}
		s.from(gens)
		done := make(chan struct{})
		go func() {
			writeSlots(c, 1, s, 3*time.Millisecond, nil)
			close(done)
		}()
		time.Sleep(time.Duration(100+37*round) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("host commands neither completed nor failed after the target was killed")
		}
		c.Close()
		cancel()
		s.mu.Lock()
		var durable uint64
		for _, g := range s.durable {
			durable += g
		}
		t.Logf("round %d: killed with %d durable writes in all, %d commands failed", round, durable, s.errs)
		s.mu.Unlock()
	}
}
