package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func runNull(t *testing.T, opts ...string) *Result {
	t.Helper()
	j := mustJob(t, "x", opts...)
	res, err := Run(context.Background(), []Target{nullTarget(t, j, 1<<16)}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestParseOutputFormat: fio's names and comma lists; anything else
// (fio takes no upper case either) is refused.
func TestParseOutputFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want OutputFormat
	}{
		{"normal", FormatNormal},
		{"json", FormatJSON},
		{"json+", FormatJSON | FormatJSONPlus},
		{"terse", FormatTerse},
		{"normal,json", FormatNormal | FormatJSON},
		{"json,normal,terse", FormatNormal | FormatJSON | FormatTerse},
	} {
		if got, err := ParseOutputFormat(tc.in); err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "JSON", "xml", "normal,", "json++"} {
		if _, err := ParseOutputFormat(bad); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v; want a one-line error", bad, err)
		}
	}
}

// TestWriteOutputOrder: every format asked for, in fio's order (terse,
// JSON, normal) whatever order they were given in.
func TestWriteOutputOrder(t *testing.T) {
	res := runNull(t, "rw", "randread", "size", "1m")
	f, _ := ParseOutputFormat("normal,json,terse")
	var b bytes.Buffer
	if err := WriteOutput(&b, res, f); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	terse, js, normal := strings.Index(out, "3;"), strings.Index(out, "{\n"), strings.Index(out, "x: (groupid=0")
	if terse != 0 || js <= terse || normal <= js {
		t.Fatalf("order terse %d json %d normal %d:\n%s", terse, js, normal, out)
	}
	end := strings.LastIndex(out[:normal], "}")
	var o FioOutput
	if err := json.Unmarshal([]byte(out[js:end+1]), &o); err != nil {
		t.Fatalf("the JSON part does not parse: %v", err)
	}
}

// TestTerseV3: one line per job with fio's terse v3 fields: 5 + 2 x 41 +
// 5 CPU + 7 depths + 10 + 12 latency buckets = 121, in the HOWTO's order.
func TestTerseV3(t *testing.T) {
	res := runNull(t, "rw", "randrw", "size", "1m", "bs", "4k")
	var b bytes.Buffer
	if err := WriteTerse(&b, res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines:\n%s", len(lines), b.String())
	}
	f := strings.Split(lines[0], ";")
	if len(f) != 121 {
		t.Fatalf("%d fields, want 121:\n%s", len(f), lines[0])
	}
	jr := res.Jobs[0]
	num := func(i int) int64 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			t.Fatalf("field %d %q: %v", i+1, f[i], err)
		}
		return n
	}
	// Fields by fio's 1-based numbering: 1 version, 3 name, 6 read KiB,
	// 8 read IOPS, 18 first read clat percentile, 47 write KiB, 88 usr.
	if f[0] != "3" || f[2] != "x" || num(5) != jr.Read.Bytes>>10 || num(46) != jr.Write.Bytes>>10 {
		t.Errorf("header or KiB fields: %v", f[:8])
	}
	if !strings.HasPrefix(f[17], "1.000000%=") || f[36] != "0%=0" || !strings.HasPrefix(f[58], "1.000000%=") {
		t.Errorf("percentile fields: %q %q %q", f[17], f[36], f[58])
	}
	if !strings.HasSuffix(f[87], "%") || !strings.HasSuffix(f[88], "%") || f[92] != "100.0%" {
		t.Errorf("cpu/iodepth fields: %v", f[87:99])
	}
	var sum float64
	for _, v := range f[99:] {
		x, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil {
			t.Fatalf("latency field %q: %v", v, err)
		}
		sum += x
	}
	if sum < 99.5 || sum > 100.5 {
		t.Errorf("latency distribution sums to %.2f%%: %v", sum, f[99:])
	}
}

// TestJSONPlusBins: json+ adds clat_ns "bins" (ns -> I/Os) that count
// every I/O; plain JSON has none.
func TestJSONPlusBins(t *testing.T) {
	res := runNull(t, "rw", "randread", "size", "1m")
	plus := FioJSONPlus(res).Jobs[0].Read.Clat
	var n int64
	for k, c := range plus.Bins {
		if _, err := strconv.ParseInt(k, 10, 64); err != nil || c <= 0 {
			t.Errorf("bin %q: %d", k, c)
		}
		n += c
	}
	if n != res.Jobs[0].Read.IOs || n == 0 {
		t.Errorf("bins hold %d I/Os, the job did %d", n, res.Jobs[0].Read.IOs)
	}
	if FioJSON(res).Jobs[0].Read.Clat.Bins != nil {
		t.Error("plain JSON has bins")
	}
}

// TestCPUFilled: usr_cpu, sys_cpu and ctx come from getrusage, in the
// JSON and in the normal output's cpu line.
func TestCPUFilled(t *testing.T) {
	res := runNull(t, "rw", "randread", "size", "8m", "iodepth", "4")
	c := res.Jobs[0].CPU
	if c.Wall <= 0 || c.User+c.Sys <= 0 || c.Ctx < 0 {
		t.Fatalf("cpu %+v", c)
	}
	fj := FioJSON(res).Jobs[0]
	if fj.UsrCPU+fj.SysCPU <= 0 || fj.IODepthSubmit["4"] != 100 || fj.LatencyDepth != 4 {
		t.Errorf("JSON usr %v sys %v submit %v depth %d", fj.UsrCPU, fj.SysCPU, fj.IODepthSubmit, fj.LatencyDepth)
	}
	var sum strings.Builder
	WriteSummary(&sum, res)
	// The null device completes each I/O inside Submit, so however deep
	// the job asks, one I/O is in flight at a time: iodepth_level is
	// measured, not the iodepth option echoed.
	if !strings.Contains(sum.String(), "  cpu          : usr=") || !strings.Contains(sum.String(), "  IO depths    : 1=100.0%, 2=0.0%, 4=0.0%") {
		t.Errorf("summary:\n%s", sum.String())
	}
}

// TestGlobalOptions: a job file's [global] options are fio's "global
// options"; without a [global] the key is left out, as fio does.
func TestGlobalOptions(t *testing.T) {
	jobs, err := ParseJobFile([]byte("[global]\nbs=8k\nsize=1m\n[a]\nrw=randread\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), []Target{nullTarget(t, jobs[0], 1<<16)}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := FioJSON(res).GlobalOptions
	if len(g) != 2 || g["bs"] != "8k" || g["size"] != "1m" {
		t.Errorf("global options %v", g)
	}
	var b bytes.Buffer
	if err := WriteFioJSON(&b, runNull(t, "size", "64k")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "global options") {
		t.Error("global options without a [global]")
	}
}
