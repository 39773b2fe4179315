package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/nvmftest/nvmftest/k8s"
)

// TestK8sDryRun: --dry-run prints a ConfigMap of the job files and an
// Indexed Job whose pods run the same bench, sharded; the YAML decodes
// strictly into the API types and passes Validate.
func TestK8sDryRun(t *testing.T) {
	jobFile := filepath.Join(t.TempDir(), "array.fio")
	if err := os.WriteFile(jobFile, []byte("[global]\nrw=randread\nbs=4k\n[a]\nnumjobs=8\niodepth=32\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"bench", "--kubernetes"}, {"k8s", "run"}} {
		args := append(cmd, "--nodes", "4", "--image", "reg.example/nvmftest:1", "-a", "10.0.0.5", "-n", "nqn.2014-08.com.example:a",
			"--runtime", "30", "--time_based", "--host-network", "--node-selector", "nvmftest.io/load=yes", "--namespace", "load",
			"--job-name", "nvmftest-x", "--report-dir", "out", jobFile, "--dry-run")
		code, out, errs := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", cmd, code, errs)
		}
		docs := strings.Split(out, "---\n")
		if len(docs) != 2 {
			t.Fatalf("%v: %d YAML documents, want the ConfigMap and the Job:\n%s", cmd, len(docs), out)
		}
		var cm corev1.ConfigMap
		var job batchv1.Job
		if err := yaml.UnmarshalStrict([]byte(docs[0]), &cm); err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict([]byte(docs[1]), &job); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Validate(&job, &cm); err != nil {
			t.Errorf("%v: %v", cmd, err)
		}
		if cm.Data["00-array.fio"] == "" {
			t.Errorf("%v: the job file is not in the ConfigMap: %v", cmd, cm.Data)
		}
		c := job.Spec.Template.Spec.Containers[0]
		for _, want := range []string{"bench", "--shard=$(JOB_COMPLETION_INDEX)/4", "--print-shard-result", "--traddr=10.0.0.5",
			"--nqn=nqn.2014-08.com.example:a", "--runtime=30", "--time_based=1", k8s.JobFilesDir + "/00-array.fio"} {
			if !slices.Contains(c.Args, want) {
				t.Errorf("%v: pod args %q lack %q", cmd, c.Args, want)
			}
		}
		for _, a := range c.Args {
			for _, local := range []string{"--report-dir=out", "--dry-run", "--nodes", "--image", "--kubernetes", "--node-selector", "--host-network"} {
				if strings.HasPrefix(a, local) {
					t.Errorf("%v: %s passed to the pods", cmd, a)
				}
			}
		}
		if !job.Spec.Template.Spec.HostNetwork || job.Spec.Template.Spec.NodeSelector["nvmftest.io/load"] != "yes" || job.Namespace != "load" {
			t.Errorf("%v: host network, node selector or namespace lost: %+v", cmd, job.Spec.Template.Spec)
		}
	}
}

func TestK8sRefused(t *testing.T) {
	base := []string{"bench", "--kubernetes", "-a", "10.0.0.5", "-n", "nqn.x", "--dry-run"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--image", "i"}, "needs --nodes N"},
		{[]string{"--nodes", "2"}, "needs --image IMAGE"},
		{[]string{"--nodes", "2", "--image", "i"}, "numjobs=1 cannot be split over 2 shards"},
		{[]string{"--nodes", "2", "--image", "i", "--numjobs", "2", "--embedded", "null:1GiB"}, "--embedded cannot go with --kubernetes"},
		{[]string{"--nodes", "2", "--image", "i", "--numjobs", "2", "--dhchap-secret", "DHHC-1:00:x:"}, "plain text"},
		{[]string{"--nodes", "2", "--image", "i", "--numjobs", "2", "--node-selector", "zone"}, "label=value"},
		{[]string{"--nodes", "2", "--image", "i", "--numjobs", "2", "--cpu", "lots"}, "cpu=lots"},
		{[]string{"--nodes", "2", "--image", "i", "--numjobs", "2", "--job-name", "Bad_Name"}, "metadata.name"},
	} {
		code, _, errs := runCLI(t, "", append(base, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line saying %q", tc.args, code, errs, tc.want)
		}
	}
}

// TestK8sNoCluster: without a cluster the run stops at once with one
// line saying so, before anything is created.
func TestK8sNoCluster(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	args := []string{"bench", "--kubernetes", "--nodes", "2", "--numjobs", "2", "--image", "i", "-a", "10.0.0.5", "-n", "nqn.x", "--report-dir", filepath.Join(dir, "out")}

	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing"))
	code, _, errs := runCLI(t, "", args...)
	if code != 1 || !strings.Contains(errs, "no Kubernetes cluster configured") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Errorf("no kubeconfig: exit %d, %q", code, errs)
	}

	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: load}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	code, _, errs = runCLI(t, "", args...)
	if code != 1 || !strings.Contains(errs, "no Kubernetes API server answered at https://127.0.0.1:1") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Errorf("unreachable API server: exit %d, %q", code, errs)
	}
}
