package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/nvmftest/nvmftest/reports"
	"github.com/nvmftest/nvmftest/target"
)

// TestGitHubWorkflow runs the nvmftest commands of the documented CI
// recipe (.github/workflows/nvmftest.yml) as the workflow would, against
// the reference target, so that a renamed flag or a changed exit status
// breaks this test rather than users' pipelines.
func TestGitHubWorkflow(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", ".github", "workflows", "nvmftest.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Env   map[string]string `yaml:"env"`
			Steps []struct {
				Name string `yaml:"name"`
				If   string `yaml:"if"`
				Run  string `yaml:"run"`
				Uses string `yaml:"uses"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatalf("workflow YAML: %v", err)
	}
	job, ok := wf.Jobs["nvme-tcp"]
	if !ok {
		t.Fatalf("no job nvme-tcp in %v", wf.Jobs)
	}
	h, p := startHostTestTarget(t)
	report := filepath.Join(t.TempDir(), "nvmftest-report")
	// The workflow's own values, with the runner's target replaced by ours.
	env := map[string]string{"TRADDR": h, "TRSVCID": p, "SUBNQN": target.DefaultSubsystemNQN, "WRITABLE_NSID": "1", "RUNTIME": "1", "REPORT": report}
	for k := range job.Env {
		if _, ok := env[k]; !ok {
			t.Errorf("the workflow sets %s, which this test does not know", k)
		}
	}
	ran := 0
	for _, st := range job.Steps {
		line := strings.TrimSpace(st.Run)
		if !strings.HasPrefix(line, "bin/nvmftest ") || strings.Contains(line, "\n") {
			continue // set-up (build, the reference target): done here by the test
		}
		line = strings.ReplaceAll(line, ".github/nvmftest-baseline/run.json", filepath.Join(report, "run.json")) // a run compared with itself
		args := shellFields(t, line, env)[1:]
		code, out, stderr := runChild(t, args...)
		if code != 0 {
			t.Fatalf("step %q: %q exit %d\nstderr: %s\n%s", st.Name, args, code, stderr, out)
		}
		ran++
	}
	if ran < 3 {
		t.Fatalf("ran %d nvmftest steps; the workflow should have conformance, benchmark and compare", ran)
	}
	run, err := reports.Load(report)
	if err != nil {
		t.Fatal(err)
	}
	if run.Conformance == nil || run.Conformance.Failed != 0 || len(run.Bench) == 0 {
		t.Errorf("the run directory lacks conformance or bench results: %+v", run)
	}
	for _, f := range []string{"summary.md", "report.html", "conformance/junit.xml", "bench/fio.json"} {
		if _, err := os.Stat(filepath.Join(report, f)); err != nil {
			t.Errorf("the workflow uploads %s: %v", f, err)
		}
	}
}

// shellFields splits a command line as the shell would for the simple
// forms the workflow uses: words, "double-quoted" words and $VAR.
func shellFields(t *testing.T, line string, env map[string]string) []string {
	t.Helper()
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			v, ok := env[k]
			if !ok {
				t.Fatalf("the workflow uses $%s, which it does not set", k)
			}
			return v
		})
	}
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				out = append(out, expand(cur.String()))
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", line)
	}
	if inWord {
		out = append(out, expand(cur.String()))
	}
	return out
}
