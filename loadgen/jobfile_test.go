package loadgen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestJobFileInclude: "include FILE" reads FILE's options into the
// section it appears in, relative to the including file's directory,
// nested includes too, as fio does; a section inside an include is
// refused, with the included file's name and line.
func TestJobFileInclude(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"jobs/main.fio":        "[global]\ninclude common/glob.fio\n[a]\nrw=randread\ninclude test.fio\n[b]\n",
		"jobs/common/glob.fio": "; shared\niodepth=8\ninclude more.fio\n",
		"jobs/common/more.fio": "bs=8k\n",
		"jobs/test.fio":        "numjobs=2 ; inline comment\n",
		"jobs/bad.fio":         "[a]\ninclude badinc.fio\n",
		"jobs/badinc.fio":      "bs=4k\n[x]\n",
	})
	jobs, err := LoadJobFile(filepath.Join(dir, "jobs/main.fio"), nil, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("%d jobs", len(jobs))
	}
	a, b := jobs[0], jobs[1]
	if a.IODepth != 8 || a.BS[0].Size != 8192 || a.NumJobs != 2 || a.RWString() != "randread" {
		t.Errorf("a: iodepth %d bs %d numjobs %d rw %s", a.IODepth, a.BS[0].Size, a.NumJobs, a.RWString())
	}
	if b.IODepth != 8 || b.BS[0].Size != 8192 || b.NumJobs != 1 {
		t.Errorf("b: iodepth %d bs %d numjobs %d (the include in [a] must not reach b)", b.IODepth, b.BS[0].Size, b.NumJobs)
	}
	_, err = LoadJobFile(filepath.Join(dir, "jobs/bad.fio"), nil, ParseOptions{})
	var fe *JobFileError
	if !errors.As(err, &fe) || !strings.HasSuffix(fe.File, "badinc.fio") || fe.Line != 2 || !strings.Contains(err.Error(), "included file") {
		t.Errorf("section in an include: %v", err)
	}
	_, err = LoadJobFile(filepath.Join(dir, "jobs/nosuch.fio"), nil, ParseOptions{})
	if err == nil {
		t.Error("missing file accepted")
	}
	if _, err := ParseJobFileWith([]byte("[a]\ninclude nosuch.fio\n"), nil, ParseOptions{Name: filepath.Join(dir, "x.fio")}); err == nil ||
		!strings.Contains(err.Error(), "x.fio:2: [a] include:") {
		t.Errorf("missing include: %v", err)
	}
}

// TestJobFileEnv: ${VAR} is the environment variable, the empty string
// when unset (fio's rule), anywhere in a line.
func TestJobFileEnv(t *testing.T) {
	env := map[string]string{"RT": "3", "BS": "16k", "NAME": "x"}
	o := ParseOptions{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	jobs, err := ParseJobFileWith([]byte("[global]\nruntime=${RT}\n[job-${NAME}]\nbs=${BS}\ndescription=a${UNSET}b\n"), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	j := jobs[0]
	if j.Runtime != 3*time.Second || j.BS[0].Size != 16384 || j.Options["description"] != "ab" {
		t.Errorf("runtime %v bs %d description %q", j.Runtime, j.BS[0].Size, j.Options["description"])
	}
	// Section names are not expanded by fio ("on the right of the =").
	if j.Name != "job-${NAME}" {
		t.Errorf("name %q", j.Name)
	}
	// An unset variable is empty, and an empty runtime is an error naming
	// the line.
	if _, err := ParseJobFileWith([]byte("[a]\n\nruntime=${NOPE}\n"), nil, o); err == nil || !strings.Contains(err.Error(), "job file:3: [a] runtime:") {
		t.Errorf("unset variable: %v", err)
	}
}

// TestJobFileErrorsHaveLines: every problem names the file and line; an
// empty file says so; an unknown option is one line naming it.
func TestJobFileErrorsHaveLines(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"", "t.fio: no jobs defined: the file is empty or only comments"},
		{"; only a comment\n\n", "t.fio: no jobs defined: the file is empty or only comments"},
		{"[a]\nrw randread=true\n", "t.fio:2: [a] \"rw randread=true\": want option=value"},
		{"[a]\nbs=4k\n\nfoo=1\n", "t.fio:4: [a] foo=1: unknown or unsupported fio option \"foo\""},
		{"[a]\nfsync=1\n", "t.fio:2: [a] fsync=1: unknown or unsupported fio option \"fsync\""},
		{"[a\n", "t.fio:1: \"[a\": a section header is [name]"},
	} {
		_, err := ParseJobFileWith([]byte(c.file), nil, ParseOptions{Name: "t.fio"})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v\nwant %q", c.file, err, c.want)
		}
	}
	if _, err := ParseJobFileWith(nil, nil, ParseOptions{}); !errors.Is(err, ErrNoJobs) {
		t.Errorf("empty: %v is not ErrNoJobs", err)
	}
}

// TestNoEffectOptionsWarn: options accepted without effect each give one
// warning naming the file, line and reason; none is silent.
func TestNoEffectOptionsWarn(t *testing.T) {
	var warns []string
	o := ParseOptions{Name: "t.fio", Warn: func(s string) { warns = append(warns, s) }}
	_, err := ParseJobFileWith([]byte("[global]\nioengine=libaio\ndirect=1\nthread\n[a]\ndo_verify=0\nverify_fatal=1\nexitall\nlat_percentiles=1\nclat_percentiles=1\n[b]\n"), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"t.fio:2: ioengine=libaio has no effect: nvmftest is its own engine",
		"t.fio:3: direct=1 has no effect: there is no page cache",
		"t.fio:4: thread has no effect:",
		"t.fio:6: do_verify=0 has no effect:",
		"t.fio:7: verify_fatal=1 has no effect:",
		"t.fio:8: exitall has no effect:",
		"t.fio:9: lat_percentiles=1 has no effect:",
		"t.fio:10: clat_percentiles=1 has no effect:",
	}
	if len(warns) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(warns, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(warns[i], want[i]) {
			t.Errorf("warning %q, want %q...", warns[i], want[i])
		}
	}
	for _, k := range NoEffectOptions() {
		if err := NewJob("x").Set(k, "1"); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

// TestJobOptionsFioSpellings: the fio options users rely on parse as fio
// reads them.
func TestJobOptionsFioSpellings(t *testing.T) {
	j := mustJob(t, "x", "bs", "4k,64k", "rate_iops", "500,100", "rate", ",1m", "size", "50%", "offset", "10%",
		"io_size", "1m", "number_ios", "10", "loops", "3", "thinktime", "250", "thinktime_blocks", "4", "startdelay", "2",
		"randrepeat", "0", "group_reporting", "", "filename", "traddr=10.0.0.5 trsvcid=4421 subnqn=nqn.x:y ns=2")
	if j.BS[0].Size != 4096 || len(j.BSWrite) != 1 || j.BSWrite[0].Size != 65536 || j.RateIOPS != 500 || j.RateIOPSW != 100 ||
		j.RateBW != [2]int64{0, 1 << 20} || j.SizePct != 50 || j.OffsetPct != 10 || j.IOSize != 1<<20 || j.NumberIOs != 10 ||
		j.Loops != 3 || j.ThinkTime != 250*time.Microsecond || j.ThinkBlocks != 4 || j.StartDelay != 2*time.Second ||
		j.RandRepeat || !j.GroupReporting || !j.Paced() {
		t.Errorf("%+v", j)
	}
	if k := mustJob(t, "y", "bs", "8k", "bs", ",16k"); k.BS[0].Size != 8192 || k.BSWrite[0].Size != 16384 {
		t.Errorf("bs=,16k after bs=8k: %+v %+v", k.BS, k.BSWrite)
	}
	if k := mustJob(t, "y", "bs", "8k,8k"); k.BSWrite != nil {
		t.Errorf("bs=8k,8k: %+v", k.BSWrite)
	}
	if k := mustJob(t, "y", "bsrange", "4k-16k"); len(k.BS) != 3 || k.BS[2].Size != 16384 || k.BS[0].Pct+k.BS[1].Pct+k.BS[2].Pct != 100 {
		t.Errorf("bsrange: %+v", k.BS)
	}
	f, err := ParseFilename("trtype=TCP adrfam=IPv4 traddr=10.0.0.5 trsvcid=4421 subnqn=nqn.x:y ns=2")
	if err != nil || f != (Filename{"10.0.0.5", "4421", "nqn.x:y", 2}) {
		t.Errorf("filename: %+v %v", f, err)
	}
	for _, bad := range []string{"/dev/nvme0n1", "ns=0", "trtype=rdma ns=1", "bogus=1"} {
		if _, err := ParseFilename(bad); err == nil {
			t.Errorf("filename=%s accepted", bad)
		}
	}
}

// TestRegionErrorsAreUsage: a job the device cannot take (bs 3k on a 4K
// namespace) is a *UsageError, found before any I/O; percentages are of
// the namespace.
func TestRegionErrorsAreUsage(t *testing.T) {
	info := DeviceInfo{Name: "ns1", BlockSize: 4096, Blocks: 1000}
	j := mustJob(t, "x", "bs", "3k")
	_, _, err := j.region(info)
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not a multiple") {
		t.Errorf("bs 3k: %v", err)
	}
	_, err = Run(t.Context(), []Target{{Job: j, Devices: []Device{&NullDevice{BlockSize: 4096, Blocks: 1000}}}}, RunOptions{})
	if !errors.As(err, &ue) {
		t.Errorf("Run bs 3k: %v is not a UsageError", err)
	}
	j = mustJob(t, "x", "size", "50%", "offset", "10%", "bs", "8k")
	start, blocks, err := j.region(info)
	if err != nil || start != 100 || blocks != 500 {
		t.Errorf("50%%/10%% of 1000 blocks: start %d blocks %d %v", start, blocks, err)
	}
	j = mustJob(t, "x", "size", "100%", "offset", "50%")
	if start, blocks, err = j.region(info); err != nil || start != 500 || blocks != 500 {
		t.Errorf("100%% from 50%%: start %d blocks %d %v (fio caps at the end)", start, blocks, err)
	}
	d := &NullDevice{BlockSize: 4096, Blocks: 1000}
	_, err = Run(t.Context(), []Target{{Job: mustJob(t, "x", "iodepth", "8"), Devices: []Device{depthDevice{d, 4}}}}, RunOptions{})
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "at most 4") {
		t.Errorf("iodepth beyond the queue: %v", err)
	}
}

type depthDevice struct {
	*NullDevice
	depth int
}

func (d depthDevice) Info() DeviceInfo {
	i := d.NullDevice.Info()
	i.MaxDepth = d.depth
	return i
}
