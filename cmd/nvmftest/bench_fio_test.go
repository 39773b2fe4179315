package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// start4KTarget starts a target whose namespace 1 has 4096-byte blocks.
func start4KTarget(t *testing.T) []string {
	t.Helper()
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{{NSID: 1, Backend: target.BackendNull, Size: "64MiB", BlockSize: 4096}}
	tg := targettest.Start(t, cfg)
	h, p, _ := net.SplitHostPort(tg.Addrs()[0].String())
	return []string{"-a", h, "-s", p, "-n", target.DefaultSubsystemNQN}
}

// TestBenchBadBlockSizeIsUsage: --bs 3k on a 4K namespace is refused
// before any I/O with exit 2 (usage), as is an unknown namespace.
func TestBenchBadBlockSizeIsUsage(t *testing.T) {
	at := start4KTarget(t)
	code, _, errs := runCLI(t, "", append([]string{"bench", "--bs", "3k", "--size", "1m"}, at...)...)
	if code != 2 || !strings.Contains(errs, "not a multiple of") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("--bs 3k on 4K: exit %d, %q; want 2 and one line", code, errs)
	}
	code, _, errs = runCLI(t, "", append([]string{"bench", "--nsid", "7", "--size", "1m"}, at...)...)
	if code != 2 || !strings.Contains(errs, "no namespace 7") || !strings.Contains(errs, "active namespaces: [1]") {
		t.Errorf("--nsid 7: exit %d, %q", code, errs)
	}
	code, _, errs = runCLI(t, "", append([]string{"bench", "--filename", "ns=7", "--size", "1m"}, at...)...)
	if code != 2 || !strings.Contains(errs, "no namespace 7") {
		t.Errorf("--filename ns=7: exit %d, %q", code, errs)
	}
}

func benchJSON(t *testing.T, args ...string) (loadgen.FioOutput, string) {
	t.Helper()
	code, out, errs := runCLI(t, "", append([]string{"bench", "--embedded", "null:64MiB", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	var fio loadgen.FioOutput
	if err := json.Unmarshal([]byte(out), &fio); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return fio, errs
}

// TestBenchFioCommandLine: the command line reads as fio's: options
// before the first --name are global, each --name starts a job with the
// options after it; the job-file aliases work as flags; options without
// effect warn; a bool option's value goes after '='.
func TestBenchFioCommandLine(t *testing.T) {
	fio, _ := benchJSON(t, "--size", "64k", "--blocksize", "8k", "--name", "a", "--readwrite", "randread", "--name", "b", "--rw=write", "--bs", "16k")
	if len(fio.Jobs) != 2 {
		t.Fatalf("%d jobs, want a and b", len(fio.Jobs))
	}
	a, b := fio.Jobs[0], fio.Jobs[1]
	if a.JobName != "a" || a.Read.IOBytes != 64<<10 || a.Read.TotalIOs != 8 || a.Write.IOBytes != 0 {
		t.Errorf("a: %s read %d bytes in %d I/Os, write %d", a.JobName, a.Read.IOBytes, a.Read.TotalIOs, a.Write.IOBytes)
	}
	if b.JobName != "b" || b.Write.IOBytes != 64<<10 || b.Write.TotalIOs != 4 || b.Read.IOBytes != 0 {
		t.Errorf("b: %s write %d bytes in %d I/Os, read %d", b.JobName, b.Write.IOBytes, b.Write.TotalIOs, b.Read.IOBytes)
	}
	_, errs := benchJSON(t, "--size", "64k", "--ioengine", "libaio", "--direct=1", "--thread", "--group_reporting", "--time_based=0")
	for _, want := range []string{"--ioengine=libaio has no effect: nvmftest is its own engine", "--direct=1 has no effect", "--thread=1 has no effect"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "group_reporting") || strings.Contains(errs, "time_based") {
		t.Errorf("a supported option warned:\n%s", errs)
	}
	code, _, errs := runCLI(t, "", "bench", "--embedded", "null:64MiB", "--runtime", "1", "--time_based", "1")
	if code != 2 || !strings.Contains(errs, "job file 1: no such file") || !strings.Contains(errs, "--time_based=1") {
		t.Errorf("--time_based 1: exit %d, %q", code, errs)
	}
	code, _, errs = runCLI(t, "", "bench", "--embedded", "null:64MiB", "--fsync", "1")
	if code != 2 || !strings.Contains(errs, "unknown flag: --fsync") {
		t.Errorf("--fsync: exit %d, %q", code, errs)
	}
}

// TestBenchJobFileWarnsAndLines: a job file's options without effect
// warn with file:line, and an error names file:line, exit 2.
func TestBenchJobFileWarnsAndLines(t *testing.T) {
	dir := t.TempDir()
	jf := filepath.Join(dir, "j.fio")
	os.WriteFile(jf, []byte("[global]\nioengine=libaio\nsize=64k\ninclude inc.fio\n[a]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "inc.fio"), []byte("bs=8k\n"), 0o644)
	fio, errs := benchJSON(t, jf)
	if !strings.Contains(errs, jf+":2: ioengine=libaio has no effect") {
		t.Errorf("stderr: %q", errs)
	}
	if len(fio.Jobs) != 1 || fio.Jobs[0].Read.TotalIOs != 8 {
		t.Errorf("jobs %+v", fio.Jobs)
	}
	os.WriteFile(jf, []byte("[a]\nrw=read\nfoo=1\n"), 0o644)
	code, _, errs := runCLI(t, "", "bench", "--embedded", "null:64MiB", jf)
	if code != 2 || !strings.Contains(errs, jf+":3: [a] foo=1: unknown or unsupported fio option \"foo\"") {
		t.Errorf("unknown option: exit %d, %q", code, errs)
	}
	os.WriteFile(jf, nil, 0o644)
	code, _, errs = runCLI(t, "", "bench", "--embedded", "null:64MiB", jf)
	if code != 2 || !strings.Contains(errs, "no jobs defined: the file is empty") {
		t.Errorf("empty file: exit %d, %q", code, errs)
	}
}
