package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

// oneLine checks a failed command's exit status and its one stderr line.
func oneLine(t *testing.T, args []string, code int, stderr string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nvmftest: ") {
		t.Errorf("%q: exit %d, stderr %q; want exit %d and one line", args, code, stderr, wantCode)
		return
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%q: stderr %q lacks %q", args, stderr, w)
		}
	}
}

// TestNVMeCLICommands: the nvme-cli commands nvmftest lacked (flush, dsm,
// write-zeroes, compare, set-feature, list-subsys, disconnect, version)
// against the reference target.
func TestNVMeCLICommands(t *testing.T) {
	h, p := startHostTestTarget(t)
	nqn := target.DefaultSubsystemNQN
	with := func(args ...string) []string {
		return append(args, "-t", "tcp", "-a", h, "-s", p, "-n", nqn)
	}
	data := bytes.Repeat([]byte("nvmftest"), 1024/8)
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		want    string // in stdout, or in stderr when code != 0
		wantErr string // in stderr when code == 0
	}{
		{"flush", with("flush", "--nsid", "1"), 0, "NVMe Flush: success", ""},
		{"flush all", with("flush", "--nsid", "0xffffffff"), 0, "NVMe Flush: success", ""},
		{"write", with("write", "-S", "100", "-c", "1", "-d", in), 0, "", "write: Success"},
		{"compare same", with("compare", "-S", "100", "-c", "1", "-d", in), 0, "", "compare: Success"},
		{"compare differs", with("compare", "-S", "101", "-c", "1", "-d", in), 1, "Compare Failure", ""},
		{"write-zeroes", with("write-zeroes", "-S", "100", "-c", "1"), 0, "NVME Write Zeroes Success", ""},
		{"compare after zeroes", with("compare", "-S", "100", "-c", "1", "-d", in), 1, "Compare Failure", ""},
		{"dsm", with("dsm", "--ad", "--slbs", "0,64", "-b", "8,8"), 0, "NVMe DSM: success", ""},
		{"dsm ranges differ", with("dsm", "--ad", "--slbs", "0,64", "-b", "8"), 2, "same number", ""},
		{"set-feature", with("set-feature", "-f", "0x0b", "-v", "0x800"), 0, "set-feature:0x0b (Async Event Configuration), value:0x00000800", ""},
		{"set-feature save", with("set-feature", "-f", "0x0b", "-v", "0x800", "--save"), 1, "Feature Identifier Not Saveable", ""},
		{"set-feature no value", with("set-feature", "-f", "0x0b"), 2, "-v/--value", ""},
		{"list-subsys", []string{"list-subsys", "-a", h, "-s", p}, 0, "nvme-subsys0 - NQN=" + nqn + "\n\\\n +- tcp traddr=" + h + ",trsvcid=" + p, ""},
		{"disconnect", []string{"disconnect", "-n", nqn}, 2, "nothing to disconnect", ""},
		{"version", []string{"version"}, 0, "nvmftest ", ""},
		{"--version", []string{"--version"}, 0, "nvmftest ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, "", tc.args...)
			if tc.code != 0 {
				oneLine(t, tc.args, code, errs, tc.code, tc.want)
				return
			}
			if code != 0 || !strings.Contains(out, tc.want) || !strings.Contains(errs, tc.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0, %q, %q", code, out, errs, tc.want, tc.wantErr)
			}
		})
	}
	// Write Zeroes wrote zeros.
	code, out, _ := runCLI(t, "", with("read", "-S", "100")...)
	if code != 0 || !strings.Contains(out, "0000: 00 00 00 00") {
		t.Errorf("read after write-zeroes: exit %d\n%s", code, out)
	}
}

// TestNeedONCS: an optional command the controller does not support is
// refused, naming the ONCS bit, before it is sent.
func TestNeedONCS(t *testing.T) {
	id := &nvme.IdentifyController{ONCS: nvme.ONCSCompare}
	if err := needONCS(id, nvme.ONCSCompare, "Compare"); err != nil {
		t.Errorf("Compare supported: %v", err)
	}
	err := needONCS(id, nvme.ONCSDSM, "Dataset Management")
	if err == nil || !strings.Contains(err.Error(), "does not support Dataset Management (Identify Controller ONCS bit 2 is clear)") {
		t.Errorf("DSM not supported: %v", err)
	}
	if err := needONCS(id, nvme.ONCSWriteZeroes, "Write Zeroes"); err == nil || !strings.Contains(err.Error(), "bit 3") {
		t.Errorf("Write Zeroes not supported: %v", err)
	}
}

// TestIdentifyHumanAndBinary: -H decodes the bit fields, -b and -o binary
// write the structure as received, and an inactive namespace says so.
func TestIdentifyHumanAndBinary(t *testing.T) {
	h, p := startHostTestTarget(t)
	with := func(args ...string) []string {
		return append(args, "-t", "tcp", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN)
	}
	code, out, errs := runCLI(t, "", with("id-ctrl", "-H")...)
	for _, w := range []string{"oncs      : 0x", "  [0:0] : 0x1\tCompare Supported", "  [3:3] : 0x1\tWrite Zeroes Supported", "  [1:1] : 0x1\tMulti Controller"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("id-ctrl -H: exit %d %q, output lacks %q:\n%s", code, errs, w, out)
		}
	}
	code, out, errs = runCLI(t, "", with("id-ns", "--nsid", "1", "--human-readable")...)
	if code != 0 || !strings.Contains(out, "nsfeat  : 0x") || !strings.Contains(out, "Thin Provisioning") || !strings.Contains(out, "(in use)") {
		t.Errorf("id-ns -H: exit %d %q:\n%s", code, errs, out)
	}
	for _, args := range [][]string{with("id-ctrl", "-b"), with("id-ctrl", "-o", "binary"), with("id-ns", "--nsid", "1", "--raw-binary")} {
		code, out, errs = runCLI(t, "", args...)
		if code != 0 || len(out) != nvme.IdentifyDataSize {
			t.Errorf("%q: exit %d %q, %d bytes; want the %d bytes", args, code, errs, len(out), nvme.IdentifyDataSize)
		}
	}
	var id nvme.IdentifyController
	if err := id.Decode([]byte(out[:0] + mustRun(t, with("id-ctrl", "-b")...))); err != nil || id.SUBNQN != target.DefaultSubsystemNQN {
		t.Errorf("id-ctrl -b does not decode to the controller: %v %q", err, id.SUBNQN)
	}
	args := with("id-ns", "--nsid", "5")
	code, out, errs = runCLI(t, "", args...)
	oneLine(t, args, code, errs, 1, "namespace 5 is not active", "list-ns")
	if out != "" {
		t.Errorf("id-ns of an inactive namespace printed %q", out)
	}
	args = with("id-ctrl", "-H", "-o", "json")
	code, _, errs = runCLI(t, "", args...)
	oneLine(t, args, code, errs, 2, "-H/--human-readable")
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, "", args...)
	if code != 0 {
		t.Fatalf("%q: exit %d %q", args, code, errs)
	}
	return out
}

// TestErrorsSayWhatToDo: the most common mistakes get one line saying
// what is wrong and what to do.
func TestErrorsSayWhatToDo(t *testing.T) {
	h, p := startHostTestTarget(t)
	httpHost, httpPort, _ := net.SplitHostPort(testnet.Serve(t, func(nc net.Conn) {
		_, _ = nc.Read(make([]byte, 512))
		_, _ = io.WriteString(nc, "HTTP/1.0 400 Bad Request\r\n\r\n")
	}))
	silentHost, silentPort, _ := net.SplitHostPort(testnet.Serve(t, func(nc net.Conn) {
		_, _ = io.Copy(io.Discard, nc)
	}))
	for _, tc := range []struct {
		args []string
		code int
		want []string
		not  string
	}{
		{[]string{"connect", "-a", h, "-s", p, "-n", "nqn.2014-08.io.nvmftest:wrong"}, 1,
			[]string{"no such subsystem NQN on this port (the Connect was refused: Invalid Parameters at SUBNQN); `nvmftest discover -a " + h + " -s " + p + "` lists the subsystems"}, "Read Only"},
		{[]string{"bench", "-a", h, "-s", p, "-n", "nqn.2014-08.io.nvmftest:wrong", "--rw", "read", "--size", "4k"}, 1,
			[]string{"failed to connect to nqn.2014-08.io.nvmftest:wrong at " + h + ":" + p + ": no such subsystem NQN on this port", "lists the subsystems"}, "Read Only"},
		{[]string{"discover", "-a", httpHost, "-s", httpPort}, 3, []string{"is not speaking NVMe/TCP (first bytes: 'HTTP/1.0 ...')"}, ""},
		{[]string{"id-ctrl", "-a", httpHost, "-s", httpPort, "-n", "nqn.x"}, 3, []string{"is not speaking NVMe/TCP"}, ""},
		{[]string{"discover", "-a", silentHost, "-s", silentPort, "--timeout", "300ms"}, 3, []string{"no ICResp from " + silentHost + ":" + silentPort + " within 300ms: is " + silentPort + " an NVMe/TCP port?"}, ""},
		{[]string{"discover", "-a", "127.0.0.1:8009"}, 2, []string{"give the address with -a 127.0.0.1 and the port with -s 8009"}, ""},
		{[]string{"connect", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "-q", "not an nqn"}, 2, []string{"invalid -q/--hostnqn", "nqn.yyyy-mm.reverse-domain", "223 bytes"}, ""},
		{[]string{"connect", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "-q", "nqn.2014-08.org.nvmexpress:uuid:zz"}, 2, []string{"not a UUID"}, ""},
		{[]string{"connect", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "-q", "nqn.2014-08.com.example:" + strings.Repeat("x", 200)}, 2, []string{"too long"}, ""},
		{[]string{"write", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN}, 2, []string{"no data in stdin"}, ""},
		{[]string{"get-log", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "-i", "2", "-l", "2097152"}, 1, []string{"reads past the end of the page, 512 bytes"}, ""},
		{[]string{"conform", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "--control", "/nonexistent/ctl"}, 2, []string{"invalid --control", "/nonexistent/ctl"}, ""},
		{[]string{"failover", "--scenario", "path-down", "--control", "/nonexistent/ctl"}, 2, []string{"invalid --control"}, ""},
		{[]string{"connect", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "-f", "nosuch0"}, 1, []string{"bind to interface nosuch0"}, ""},
	} {
		code, out, errs := runCLI(t, "", tc.args...)
		oneLine(t, tc.args, code, errs, tc.code, tc.want...)
		if tc.not != "" && strings.Contains(errs, tc.not) {
			t.Errorf("%q: stderr %q says %q", tc.args, errs, tc.not)
		}
		if out != "" {
			t.Errorf("%q: stdout %q", tc.args, out)
		}
	}
	// A valid host NQN, a local address and interface to connect from.
	code, out, errs := runCLI(t, "", "connect", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN,
		"-q", "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555", "-w", "127.0.0.2", "-T", "16", "-S", "", "-l", "600", "-c", "10", "-k", "7")
	if code != 0 || !strings.Contains(out, "kato:     7s") {
		t.Errorf("connect with -q -w -T -l -c -k: exit %d %q\n%s", code, errs, out)
	}
	// SO_BINDTODEVICE needs CAP_NET_RAW before Linux 5.7.
	code, _, errs = runCLI(t, "", "connect", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "-f", "lo")
	if code != 0 && !strings.Contains(errs, "operation not permitted") {
		t.Errorf("connect -f lo: exit %d %q", code, errs)
	}
	// Short data is padded, and says so.
	code, _, errs = runCLI(t, "abc", "write", "-a", h, "-s", p, "-n", target.DefaultSubsystemNQN, "-S", "5")
	if code != 0 || !strings.Contains(errs, "3 bytes of data padded with zeros to") {
		t.Errorf("short write: exit %d %q", code, errs)
	}
}

// TestHelpAndVersion: help bugs of the first-hour review.
func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "nosuch"}, `no help topic "nosuch"`},
		{[]string{"nosuch"}, "see 'nvmftest --help' for the commands"},
		{[]string{"conect"}, "did you mean connect?"},
		{[]string{"failover"}, "missing scenario: give it with --scenario NAME"},
		{[]string{"demo", "--load-time", "0s"}, "--load-time"},
		{[]string{"demo", "--failover-scale", "0"}, "--failover-scale"},
		{[]string{"demo", "--iodepth", "0"}, "--iodepth"},
	} {
		code, _, errs := runCLI(t, "", tc.args...)
		oneLine(t, tc.args, code, errs, 2, tc.want)
	}
	args := []string{"failover", "--scenario", "nosuch", "-k", "5", "-l", "60", "-c", "1", "-I", "11111111-2222-3333-4444-555555555555"}
	code, out, errs := runCLI(t, "", args...)
	oneLine(t, args, code, errs, 2, `unknown --scenario "nosuch"`)
	if out != "" {
		t.Errorf("failover --scenario nosuch printed %q", out)
	}
	args = []string{"failover", "--scenario", "path-down", "-I", "zz"}
	code, _, errs = runCLI(t, "", args...)
	oneLine(t, args, code, errs, 2, "-I/--hostid")

	code, out, _ = runCLI(t, "", "help", "connect")
	if code != 0 || !strings.Contains(out, "--dhchap-secret") {
		t.Errorf("help connect: exit %d\n%s", code, out)
	}
	for _, cmd := range []string{"discover", "connect", "id-ctrl", "id-ns", "get-log", "read", "write", "failover", "demo", "flush", "dsm", "set-feature"} {
		code, out, _ := runCLI(t, "", cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d", cmd, code)
		}
		for _, bad := range []string{"(default -1)", "(default [])", "(default -1ns)", "--raw ", "discovery) (default"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s --help says %q:\n%s", cmd, bad, out)
			}
		}
	}
	_, out, _ = runCLI(t, "", "--help")
	_, cmds, _ := strings.Cut(out, "Available Commands:")
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	for _, l := range strings.Split(cmds, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1][0] >= 'a' && f[1][0] <= 'z' {
			t.Errorf("short description not capitalized: %q", l)
		}
	}
	_, out, _ = runCLI(t, "", "demo", "--help")
	if !strings.Contains(out, "about 30 seconds") {
		t.Errorf("demo --help does not say what README says (about 30 seconds)")
	}
	_, out, _ = runCLI(t, "", "connect", "--help")
	for _, w := range []string{"-S, --dhchap-secret", "-C, --dhchap-ctrl-secret", "-w, --host-traddr", "-f, --host-iface", "-T, --tos", "-l, --ctrl-loss-tmo", "-c, --reconnect-delay", "-s, --trsvcid PORT"} {
		if !strings.Contains(out, w) {
			t.Errorf("connect --help lacks %q", w)
		}
	}
	_, out, _ = runCLI(t, "", "read", "--help")
	for _, w := range []string{"-S, --start-block", "      --dhchap-secret", "-c, --block-count", "      --reconnect-delay", "-w, --host-traddr"} {
		if !strings.Contains(out, w) {
			t.Errorf("read --help lacks %q", w)
		}
	}
}

// TestSecondsFlag: failover's timers take nvme-cli's integer seconds and
// Go durations alike.
func TestSecondsFlag(t *testing.T) {
	var d time.Duration
	v := &secondsValue{&d, "off"}
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "500ms": 500 * time.Millisecond, "2m": 2 * time.Minute, "0": 0, "off": -1, "-1": -time.Second} {
		if err := v.Set(in); err != nil || d != want {
			t.Errorf("%q: %v, %v; want %v", in, d, err, want)
		}
	}
	if err := v.Set("5x"); err == nil {
		t.Error("5x accepted")
	}
	if err := (&secondsValue{&d, ""}).Set("-1"); err == nil {
		t.Error("-1 accepted where negative means nothing")
	}
}

// TestUsageExitStatus: a usage error is exit status 2 on every command,
// with one line.
func TestUsageExitStatus(t *testing.T) {
	for _, args := range [][]string{
		{"discover", "-s", "x", "-a", "127.0.0.1"},
		{"connect", "-a", "127.0.0.1"},
		{"id-ctrl", "-a", "127.0.0.1"},
		{"id-ns", "-a", "127.0.0.1", "-n", "nqn.x"},
		{"list-ns", "-a", "127.0.0.1"},
		{"get-log", "-a", "127.0.0.1", "-n", "nqn.x"},
		{"get-feature", "-a", "127.0.0.1", "-n", "nqn.x"},
		{"set-feature", "-a", "127.0.0.1", "-n", "nqn.x"},
		{"read", "-a", "127.0.0.1", "-n", "nqn.x", "--nsid", "0"},
		{"write", "-a", "127.0.0.1", "-n", "nqn.x", "-d", "/nonexistent/in"},
		{"compare", "-a", "127.0.0.1"},
		{"write-zeroes", "-a", "127.0.0.1", "-n", "nqn.x", "--nsid", "0"},
		{"flush", "-a", "127.0.0.1", "-n", "nqn.x", "-t", "rdma"},
		{"dsm", "-a", "127.0.0.1", "-n", "nqn.x"},
		{"list-subsys"},
		{"disconnect"},
		{"version", "extra"},
		{"bench", "--bogus"},
		{"conform", "-a", "127.0.0.1"},
		{"failover", "-o", "xml", "--scenario", "path-down"},
		{"demo", "--iodepth", "-1"},
		{"target", "--bogus"},
		{"report"},
		{"help", "nosuch"},
		{"nosuch"},
	} {
		code, _, errs := runCLI(t, "", args...)
		if code != 2 || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", args, code, errs)
		}
	}
}
