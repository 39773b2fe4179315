package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// fioBinary finds fio for the comparisons with real fio: a skip with the
// reason without it, a failure under NVMFTEST_REQUIRE_TOOLS=1 (CI).
func fioBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("fio")
	if err != nil {
		if os.Getenv("NVMFTEST_REQUIRE_TOOLS") == "1" {
			t.Fatalf("fio is not installed and NVMFTEST_REQUIRE_TOOLS=1 (apt-get install fio)")
		}
		t.Skip("fio is not installed: our outputs are not compared with fio's (apt-get install fio; NVMFTEST_REQUIRE_TOOLS=1 makes this a failure)")
	}
	return p
}

// runFioNull runs fio on its null engine: a randrw job, so both directions
// have I/Os and percentiles.
func runFioNull(t *testing.T, fio, format string) []byte {
	t.Helper()
	out, err := exec.Command(fio, "--name=x", "--ioengine=null", "--rw=randrw", "--size=16m", "--output-format="+format).Output()
	if err != nil {
		t.Fatalf("fio --output-format=%s: %v", format, err)
	}
	return out
}

// ourJSONExtras are keys fio 3.33 has not: job_start is fio 3.35's,
// disk_util fio writes when it drives local disks, nvmftest_* are ours.
func ourExtra(key string) bool {
	return key == "job_start" || key == "disk_util" || strings.HasPrefix(key, "nvmftest_")
}

// keyPaths lists every object key path of a JSON document (arrays by
// their first element; the values of maps keyed by data, such as
// percentiles and bins, are not descended into).
func keyPaths(v any, prefix string, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if ourExtra(k) {
				continue
			}
			p := prefix + "." + k
			into[p] = true
			switch k {
			case "percentile", "bins", "job options", "global options":
				continue
			}
			keyPaths(e, p, into)
		}
	case []any:
		if len(x) > 0 {
			keyPaths(x[0], prefix+"[]", into)
		}
	}
}

func jsonKeys(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v\n%.300s", err, b)
	}
	m := map[string]bool{}
	keyPaths(v, "", m)
	return m
}

func diffKeys(a, b map[string]bool) (onlyA []string) {
	for k := range a {
		if !b[k] {
			onlyA = append(onlyA, k)
		}
	}
	sort.Strings(onlyA)
	return
}

// TestFioCompatStructure: our json, json+ and terse outputs have the
// structure real fio's have (the same keys at every level; the same
// number of terse fields, each of the same kind), values aside.
func TestFioCompatStructure(t *testing.T) {
	fio := fioBinary(t)
	j := mustJob(t, "x", "rw", "randrw", "size", "1m")
	res, err := Run(context.Background(), []Target{nullTarget(t, j, 1<<16)}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"json", "json+"} {
		var ours bytes.Buffer
		f, _ := ParseOutputFormat(format)
		if err := WriteOutput(&ours, res, f); err != nil {
			t.Fatal(err)
		}
		theirs, mine := jsonKeys(t, runFioNull(t, fio, format)), jsonKeys(t, ours.Bytes())
		if missing := diffKeys(theirs, mine); len(missing) > 0 {
			t.Errorf("%s: fio has keys we lack: %v", format, missing)
		}
		if extra := diffKeys(mine, theirs); len(extra) > 0 {
			t.Errorf("%s: we have keys fio has not: %v", format, extra)
		}
	}

	var ours bytes.Buffer
	if err := WriteTerse(&ours, res); err != nil {
		t.Fatal(err)
	}
	theirs := strings.Split(strings.TrimSpace(string(runFioNull(t, fio, "terse"))), ";")
	mine := strings.Split(strings.TrimSpace(ours.String()), ";")
	if len(mine) != len(theirs) {
		t.Fatalf("terse: %d fields, fio writes %d", len(mine), len(theirs))
	}
	kind := func(s string) string {
		for _, k := range []struct{ name, re string }{
			{"int", `^-?\d+$`}, {"float", `^-?\d+\.\d+$`}, {"percent", `^\d+\.\d+%$`}, {"pct=int", `^\d+(\.\d+)?%=\d+$`},
		} {
			if regexp.MustCompile(k.re).MatchString(s) {
				return k.name
			}
		}
		return "text"
	}
	for i := range mine {
		// Field 2 is the version string, 3 the job name: text in both.
		if km, kt := kind(mine[i]), kind(theirs[i]); km != kt {
			t.Errorf("terse field %d: ours %q (%s), fio's %q (%s)", i+1, mine[i], km, theirs[i], kt)
		}
	}
}
