package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/nvmftest/nvmftest/k8s"
	"github.com/nvmftest/nvmftest/k8s/k8stest"
	"github.com/nvmftest/nvmftest/reports"
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

// fakeCluster puts a k8stest cluster where bench --kubernetes connects,
// playing the pods of the Job name in namespace "load".
func fakeCluster(t *testing.T, name string, script func(int) string) *k8stest.Cluster {
	t.Helper()
	c := k8stest.New(t, script)
	old := connectK8s
	connectK8s = func(context.Context, string, string, time.Duration) (k8s.Client, string, string, error) {
		return c.Clientset, "load", "https://fake.example:6443", nil
	}
	t.Cleanup(func() { connectK8s = old })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go c.Run(ctx, "load", name)
	return c
}

func jobDeleted(c *k8stest.Cluster, name string) bool {
	for _, a := range c.Clientset.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "jobs" && d.GetName() == name {
			return true
		}
	}
	return false
}

// TestK8sRunWholeFlow: k8s run on a fake cluster makes the Job, follows
// its pods, reads their logs, merges and writes the report directory,
// and deletes the Job.
func TestK8sRunWholeFlow(t *testing.T) {
	c := fakeCluster(t, "nvmftest-cli", func(int) string { return k8stest.OK })
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs := runCLI(t, "", "k8s", "run", "--nodes", "3", "--numjobs", "3", "--image", "reg.example/nvmftest:1", "-a", "10.0.0.5",
		"-n", "nqn.x", "--job-name", "nvmftest-cli", "--report-dir", dir, "--progress", "never", "--start-lead", "1s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"namespace load", "3 shards: 0 pending, 0 scheduled, 0 running, 3 done", "nodes node-0, node-1, node-2 merged; Job nvmftest-cli deleted"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if !strings.Contains(out, "read: IOPS=300") {
		t.Errorf("stdout is not the merged load (300 IOPS):\n%s", out)
	}
	run, err := reports.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Bench) != 1 || run.Bench[0].IOs != 300 || len(run.Shards) != 3 {
		t.Errorf("report: %+v", run)
	}
	if _, err := reports.ReadShard(filepath.Join(dir, "shards", "shard-2")); err != nil {
		t.Error(err)
	}
	if !jobDeleted(c, "nvmftest-cli") {
		t.Error("the Job was not deleted")
	}
}

func TestK8sRunShardFails(t *testing.T) {
	c := fakeCluster(t, "nvmftest-fail", func(i int) string {
		if i == 1 {
			return k8stest.Fail
		}
		return k8stest.Run
	})
	code, _, errs := runCLI(t, "", "k8s", "run", "--nodes", "3", "--numjobs", "3", "--image", "i", "-a", "10.0.0.5", "-n", "nqn.x",
		"--job-name", "nvmftest-fail", "--report-dir", filepath.Join(t.TempDir(), "out"), "--progress", "never")
	last := errs[strings.LastIndex(strings.TrimSuffix(errs, "\n"), "\n")+1:]
	if code != 1 || !strings.Contains(last, "shard 1/3") || !strings.Contains(last, "connection refused") || !strings.Contains(last, "Job nvmftest-fail deleted") {
		t.Errorf("exit %d, last line %q; want exit 1 naming the shard, its error and the cleanup", code, last)
	}
	if !jobDeleted(c, "nvmftest-fail") {
		t.Error("the Job was not deleted")
	}
}
