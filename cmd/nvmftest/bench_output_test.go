package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchOutputFormats: -o takes fio's formats and comma lists,
// --minimal is terse, and anything else is one line and exit 2.
func TestBenchOutputFormats(t *testing.T) {
	base := []string{"bench", "--embedded", "null:16MiB", "--rw", "randread", "--size", "256k"}
	code, out, errs := runCLI(t, "", append(base, "-o", "json+")...)
	if code != 0 {
		t.Fatalf("json+: exit %d: %s", code, errs)
	}
	var fio struct {
		Jobs []struct {
			Read struct {
				Clat struct {
					Bins map[string]int64 `json:"bins"`
				} `json:"clat_ns"`
			} `json:"read"`
			UsrCPU float64 `json:"usr_cpu"`
			SysCPU float64 `json:"sys_cpu"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &fio); err != nil || len(fio.Jobs) != 1 || len(fio.Jobs[0].Read.Clat.Bins) == 0 {
		t.Errorf("json+: %v\n%.600s", err, out)
	} else if fio.Jobs[0].UsrCPU+fio.Jobs[0].SysCPU <= 0 {
		t.Errorf("json+: usr_cpu %v sys_cpu %v", fio.Jobs[0].UsrCPU, fio.Jobs[0].SysCPU)
	}
	for _, form := range [][]string{{"-o", "terse"}, {"--output-format=terse"}, {"--minimal"}} {
		code, out, errs = runCLI(t, "", append(base, form...)...)
		if code != 0 || !strings.HasPrefix(out, "3;") || strings.Count(out, "\n") != 1 || len(strings.Split(strings.TrimSpace(out), ";")) != 121 {
			t.Errorf("%v: exit %d %s\n%s", form, code, errs, out)
		}
	}
	code, out, errs = runCLI(t, "", append(base, "--output-format", "normal,json")...)
	if code != 0 || !strings.HasPrefix(out, "{") || !strings.Contains(out, "}\n\nbench: (groupid=0") || !strings.Contains(out, "Run status group 0") {
		t.Errorf("normal,json: exit %d %s\n%s", code, errs, out)
	}
	for _, bad := range []string{"xml", "JSON", "normal,"} {
		code, _, errs = runCLI(t, "", append(base, "-o", bad)...)
		if code != 2 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "output format") {
			t.Errorf("-o %s: exit %d, %q; want 2 and one line", bad, code, errs)
		}
	}
}

// TestBenchIOLogs: --write_lat_log and friends (and their job file
// forms) write fio's files; one that cannot be made is exit 2 before any
// I/O.
func TestBenchIOLogs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r")
	code, _, errs := runCLI(t, "", "bench", "--embedded", "null:16MiB", "--rw", "randread", "--size", "64k",
		"--write_lat_log", p, "--write_bw_log", p, "--write_iops_log", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, kind := range []string{"lat", "clat", "slat", "bw", "iops"} {
		b, err := os.ReadFile(p + "_" + kind + ".1.log")
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(string(b), "\n"); kind != "slat" && lines != 16 {
			t.Errorf("%s: %d lines, want 16 (one per I/O):\n%s", kind, lines, b)
		}
	}
	jf := filepath.Join(dir, "j.fio")
	os.WriteFile(jf, []byte("[global]\nsize=64k\nlog_avg_msec=1000\n[seq]\nwrite_iops_log\n"), 0o644)
	cmd := []string{"bench", "--embedded", "null:16MiB", jf}
	t.Chdir(dir) // the job file names its log without a directory
	code, _, errs = runCLI(t, "", cmd...)
	if b, err := os.ReadFile(filepath.Join(dir, "seq_iops.1.log")); code != 0 || err != nil || strings.Count(string(b), "\n") != 1 {
		t.Errorf("job file write_iops_log: exit %d %s; %v %q", code, errs, err, b)
	}
	code, out, errs := runCLI(t, "", "bench", "--embedded", "null:16MiB", "--size", "64k", "--write_bw_log", filepath.Join(dir, "no", "x"))
	if code != 2 || !strings.Contains(errs, "--write_bw_log") || strings.Contains(out, "IOPS=") {
		t.Errorf("unwritable log: exit %d %q\n%s", code, errs, out)
	}
}
