package main

import (
	"encoding/json"
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
