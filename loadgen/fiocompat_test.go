package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fioDevBytes is the size of the file fio runs the comparison job files
// on, and of nvmftest's device for them: percent sizes resolve alike.
const fioDevBytes = 1 << 20

// fioEnv is the environment both fio and our parser see.
var fioEnv = map[string]string{"FIO_TEST_SIZE": "48k", "FIO_TEST_BS": "8k"}

type fioSummary struct {
	Name  string
	Group int
	Read  int64
	Write int64
	Trim  int64
}

func (s fioSummary) String() string {
	return fmt.Sprintf("%s g%d read %d write %d trim %d", s.Name, s.Group, s.Read, s.Write, s.Trim)
}

// TestFioParsesTheSameJobs runs fio itself on every job file under
// testdata/fio (fio's psync engine on a 1 MiB temporary file, so percent
// sizes resolve) and compares its jobs, in order, with their reporting
// groups and bytes read and written, with what nvmftest's parser and
// engine make of the same file on a 1 MiB device. Skipped without fio,
// unless NVMFTEST_REQUIRE_TOOLS=1.
func TestFioParsesTheSameJobs(t *testing.T) {
	fio := fioBinary(t)
	files, err := filepath.Glob("testdata/fio/*.fio")
	if err != nil || len(files) == 0 {
		t.Fatalf("no job files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want := runFio(t, fio, file)
			got := runOurs(t, file)
			if strings.Join(summaries(got), "\n") != strings.Join(summaries(want), "\n") {
				t.Errorf("fio:\n  %s\nnvmftest:\n  %s", strings.Join(summaries(want), "\n  "), strings.Join(summaries(got), "\n  "))
			}
		})
	}
}

func summaries(s []fioSummary) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].String()
	}
	return out
}

func runFio(t *testing.T, fio, file string) []fioSummary {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "ns.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, fioDevBytes); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	// Run from elsewhere, so relative includes must resolve against the
	// job file's directory.
	args := []string{"--output-format=json", "--ioengine=psync", "--filename=" + img, abs}
	if data, _ := os.ReadFile(file); strings.HasPrefix(string(data), "; fio: ioengine=null") {
		// Trims: fio's psync cannot trim a regular file; fio's null
		// engine takes them (such files give sizes, not percentages).
		args = []string{"--output-format=json", "--ioengine=null", abs}
	}
	cmd := exec.Command(fio, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range fioEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fio %s: %v\n%s", file, err, out)
	}
	// fio prints notes before the JSON on stdout in some versions.
	if i := strings.IndexByte(string(out), '{'); i > 0 {
		out = out[i:]
	}
	var res struct {
		Jobs []struct {
			Name  string `json:"jobname"`
			Group int    `json:"groupid"`
			Error int    `json:"error"`
			Read  struct {
				Bytes int64 `json:"io_bytes"`
			} `json:"read"`
			Write struct {
				Bytes int64 `json:"io_bytes"`
			} `json:"write"`
			Trim struct {
				Bytes int64 `json:"io_bytes"`
			} `json:"trim"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("fio %s JSON: %v\n%s", file, err, out)
	}
	var s []fioSummary
	for _, j := range res.Jobs {
		if j.Error != 0 {
			t.Fatalf("fio %s: job %s error %d", file, j.Name, j.Error)
		}
		s = append(s, fioSummary{j.Name, j.Group, j.Read.Bytes, j.Write.Bytes, j.Trim.Bytes})
	}
	return s
}

// runOurs parses file and runs it on 1 MiB null devices; each clone
// (numjobs) is one entry, as fio reports them without group_reporting.
func runOurs(t *testing.T, file string) []fioSummary {
	t.Helper()
	var warned []string
	jobs, err := LoadJobFile(file, nil, ParseOptions{
		LookupEnv: func(k string) (string, bool) { v, ok := fioEnv[k]; return v, ok },
		Warn:      func(s string) { warned = append(warned, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for _, j := range jobs {
		devs := make([]Device, j.NumJobs)
		for i := range devs {
			devs[i] = &NullDevice{BlockSize: 512, Blocks: fioDevBytes / 512}
		}
		targets = append(targets, Target{Job: j, Devices: devs})
	}
	res, err := Run(t.Context(), targets, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s []fioSummary
	for _, jr := range res.Jobs {
		n := int64(jr.Job.NumJobs)
		for range n {
			s = append(s, fioSummary{jr.Job.Name, jr.Group, jr.Read.Bytes / n, jr.Write.Bytes / n, jr.Trim.Bytes / n})
		}
	}
	return s
}
