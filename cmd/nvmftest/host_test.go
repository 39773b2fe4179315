package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

func startHostTestTarget(t *testing.T) (host, port string) {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	tg := targettest.Start(t, cfg)
	host, port, _ = net.SplitHostPort(tg.Addrs()[0].String())
	return host, port
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIHostCommands(t *testing.T) {
	h, p := startHostTestTarget(t)
	nqn := target.DefaultSubsystemNQN
	addr := []string{"-t", "tcp", "-a", h, "-s", p}
	withNQN := append(append([]string{}, addr...), "-n", nqn)

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"discover", append([]string{"discover"}, addr...), []string{"Discovery Log Number of Records", "=====Discovery Log Entry 0======", "trtype:  tcp", "subnqn:  " + nqn, "adrfam:  ipv4"}},
		{"connect", append([]string{"connect", "-g", "-G", "-i", "2"}, withNQN...), []string{"connected to " + nqn, "queue  0: admin", "queue  2: I/O", "hdgst true, ddgst true", "disconnected"}},
		{"id-ctrl", append([]string{"id-ctrl"}, withNQN...), []string{"NVME Identify Controller:", "vid       : 0x", "subnqn    : " + nqn, "ioccsz    : ", "msdbd     : "}},
		{"id-ns", append([]string{"id-ns", "--nsid", "1"}, withNQN...), []string{"NVME Identify Namespace 1:", "nsze    : 0x", "(in use)"}},
		{"list-ns", append([]string{"list-ns"}, withNQN...), []string{"[   0]:0x1"}},
		{"get-log smart", append([]string{"get-log", "-i", "2"}, withNQN...), []string{"Smart Log for NVME device", "power_cycles"}},
		{"get-log raw hex", append([]string{"get-log", "-i", "2", "-l", "32", "--lsp", "0"}, withNQN...), []string{"log-id:0x2", "0000: 00"}},
		{"get-feature", append([]string{"get-feature", "-f", "7"}, withNQN...), []string{"get-feature:0x07 (Number of Queues), Current value:0x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, "", tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("write-read", func(t *testing.T) {
		dir := t.TempDir()
		in := bytes.Repeat([]byte("0123456789abcdef"), 2*512/16)
		inFile, outFile := filepath.Join(dir, "in"), filepath.Join(dir, "out")
		if err := os.WriteFile(inFile, in, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errs := runCLI(t, "", append([]string{"write", "-S", "10", "-c", "1", "-d", inFile}, withNQN...)...)
		if code != 0 || !strings.Contains(errs, "write: Success") {
			t.Fatalf("write: exit %d %q", code, errs)
		}
		code, _, errs = runCLI(t, "", append([]string{"read", "-S", "10", "-c", "1", "-d", outFile}, withNQN...)...)
		if code != 0 || !strings.Contains(errs, "read: Success") {
			t.Fatalf("read: exit %d %q", code, errs)
		}
		got, _ := os.ReadFile(outFile)
		if !bytes.Equal(got, in) {
			t.Fatal("read back differs from what was written")
		}
		code, out, _ := runCLI(t, "", append([]string{"read", "-S", "10"}, withNQN...)...)
		if code != 0 || !strings.Contains(out, `0000: 30 31 32 33`) || !strings.Contains(out, `"0123456789abcdef"`) {
			t.Fatalf("read hex dump: exit %d\n%s", code, out)
		}
	})

	t.Run("json", func(t *testing.T) {
		code, out, errs := runCLI(t, "", append([]string{"id-ctrl", "-o", "json"}, withNQN...)...)
		var m map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m["subnqn"] != nqn {
			t.Fatalf("exit %d %q: %s", code, errs, out)
		}
		code, out, _ = runCLI(t, "", append([]string{"discover", "-o", "json"}, addr...)...)
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m["records"] == nil {
			t.Fatalf("discover json: exit %d: %s", code, out)
		}
	})

	t.Run("target errors exit 1", func(t *testing.T) {
		code, out, errs := runCLI(t, "", append([]string{"id-ctrl", "-n", "nqn.2014-08.io.nvmftest:nope"}, addr...)...)
		if code != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "failed to connect") || out != "" {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		code, _, errs = runCLI(t, "", append([]string{"get-log", "-i", "0xbf", "-l", "512"}, withNQN...)...)
		if code != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "get log page 0xbf") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
	})
}

func TestCLIUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"discover", "-t", "rdma", "-a", "127.0.0.1"}, "only (use -t tcp)"},
		{[]string{"discover"}, "-a/--traddr"},
		{[]string{"id-ctrl", "-a", "127.0.0.1"}, "-n/--nqn"},
		{[]string{"id-ctrl", "-a", "127.0.0.1", "-n", "x", "-s", "notaport"}, "--trsvcid"},
		{[]string{"id-ctrl", "-a", "127.0.0.1", "-n", "x", "-o", "xml"}, "normal, json or binary"},
		{[]string{"id-ns", "-a", "127.0.0.1", "-n", "x"}, "--nsid"},
		{[]string{"get-log", "-a", "127.0.0.1", "-n", "x"}, "-i/--log-id"},
		{[]string{"read", "-a", "127.0.0.1", "-n", "x", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"connect", "-a", "127.0.0.1", "-n", "x", "-I", "zz"}, "not a UUID"},
		{[]string{"nosuch"}, "unknown command"},
		{[]string{"discover", "extra"}, "takes no arguments"},
	} {
		code, _, errs := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errs, tc.want)
		}
	}
}

func TestCLIUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	// An unreachable target is exit 3 for every command, as for conform.
	for _, args := range [][]string{{"discover"}, {"id-ctrl", "-n", "nqn.x"}, {"read", "-n", "nqn.x", "-c", "0", "-z", "512"}} {
		code, _, errs := runCLI(t, "", append(args, "-a", "127.0.0.1", "-s", port)...)
		if code != 3 || !strings.Contains(errs, "connection refused") || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want 3 and one line saying the connection was refused", args[0], code, errs)
		}
	}
}

// TestDemoCommand checks the flags; package demo runs the whole demo (a
// second conformance run in this process is not possible: Ginkgo runs
// once per process, and TestConformRun has).
func TestDemoCommand(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--iodepth", "-3"},
		{"demo", "--load-time", "2h"},
		{"demo", "--failover-scale", "-1"},
		{"demo", "--report-dir", "/proc/nope/run"},
		{"demo", "extra"},
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}

// TestNVMeCLIConnectFlags: nvme-cli's -d (disable SQ flow control) reaches
// the Connect of every I/O queue, and -D is accepted where scripts pass it.
func TestNVMeCLIConnectFlags(t *testing.T) {
	c := &cobra.Command{Use: "x"}
	f := &connFlags{defPort: "4420", ioQueues: true}
	addConnFlags(c, f)
	if err := c.Flags().Parse([]string{"-a", "127.0.0.1", "-n", "nqn.x", "-d", "-D"}); err != nil {
		t.Fatal(err)
	}
	if o := f.options(1); !o.DisableSQFlowControl {
		t.Error("-d did not ask for SQ flow control disabled")
	}
}
