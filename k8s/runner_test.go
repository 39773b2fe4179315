package k8s

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nvmftest/nvmftest/k8s/k8stest"
	"github.com/nvmftest/nvmftest/reports"
)

// testSpec is a small run: 3 shards, a job file, a start a minute away.
func testSpec() Spec {
	return Spec{Name: "nvmftest-t", Namespace: "load", Image: "reg.example/nvmftest:test", Shards: 3, Split: "numjobs",
		StartAt: time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC), BenchArgs: []string{"--traddr=10.0.0.5", "--nqn=nqn.x", JobFilesDir + "/00-a.fio"},
		JobFiles: map[string]string{"00-a.fio": "[a]\nrw=randread\nnumjobs=3\n"}, Requests: map[string]string{"cpu": "1", "memory": "256Mi"}}
}

// runFlow runs spec's Job on a cluster playing script and returns what
// the Runner returned, the progress it reported and the cluster.
func runFlow(t *testing.T, spec Spec, script func(int) string, setup func(*Runner)) (*Outcome, []Progress, *k8stest.Cluster, error) {
	t.Helper()
	job, err := BuildJob(spec)
	if err != nil {
		t.Fatal(err)
	}
	cm := BuildConfigMap(spec)
	c := k8stest.New(t, script)
	// Bounded: a hang becomes a failure, never a stuck test.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go c.Run(ctx, spec.Namespace, spec.Name)
	var mu sync.Mutex
	var seen []Progress
	r := &Runner{Client: c.Clientset, Poll: 20 * time.Millisecond, ScheduleTimeout: time.Minute,
		OnProgress: func(p Progress) { mu.Lock(); seen = append(seen, p); mu.Unlock() }}
	if setup != nil {
		setup(r)
	}
	out, err := r.Run(ctx, job, cm)
	if ctx.Err() != nil {
		t.Fatalf("the run did not end in 30 s (last progress %v): %v", seen, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return out, seen, c, err
}

// deleted reports whether the Job was deleted, and with which propagation.
func deleted(c *k8stest.Cluster, name string) (bool, metav1.DeletionPropagation) {
	for _, a := range c.Clientset.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "jobs" && d.GetName() == name {
			p := metav1.DeletionPropagation("")
			if o := d.GetDeleteOptions(); o.PropagationPolicy != nil {
				p = *o.PropagationPolicy
			}
			return true, p
		}
	}
	return false, ""
}

func TestRunWholeFlow(t *testing.T) {
	spec := testSpec()
	out, seen, c, err := runFlow(t, spec, func(int) string { return k8stest.OK }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Shards) != 3 {
		t.Fatalf("%d shard results, want 3", len(out.Shards))
	}
	for i, s := range out.Shards {
		if s.Shard != i || s.Host != fmt.Sprintf("node-%d", i) || out.Nodes[i] != fmt.Sprintf("node-%d", i) {
			t.Errorf("shard %d: got shard %d from %s on %s", i, s.Shard, s.Host, out.Nodes[i])
		}
	}
	m, err := reports.MergeShards(out.Shards)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Result.Jobs[0].Read.IOs; got != 300 {
		t.Errorf("merged %d I/Os, want 300", got)
	}
	// Progress went through every state to all done.
	var sched, running bool
	for _, p := range seen {
		sched = sched || p.Scheduled > 0
		running = running || p.Running > 0
	}
	if last := seen[len(seen)-1]; !sched || !running || last.Done != 3 {
		t.Errorf("progress %v: want scheduled, running and finally 3 done", seen)
	}
	if ok, prop := deleted(c, spec.Name); !ok || prop != metav1.DeletePropagationBackground {
		t.Errorf("Job deleted: %v with propagation %q; want Background (the pods go with it)", ok, prop)
	}
	if _, err := c.Clientset.CoreV1().ConfigMaps(spec.Namespace).Get(context.Background(), spec.ConfigMapName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the job files' ConfigMap is still there (%v)", err)
	}
}

func TestRunKeep(t *testing.T) {
	spec := testSpec()
	_, _, c, err := runFlow(t, spec, func(int) string { return k8stest.OK }, func(r *Runner) { r.Keep = true })
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := deleted(c, spec.Name); ok {
		t.Error("--keep: the Job was deleted")
	}
}

func TestRunPodFails(t *testing.T) {
	spec := testSpec()
	_, _, c, err := runFlow(t, spec, func(i int) string {
		if i == 1 {
			return k8stest.Fail
		}
		return k8stest.Run
	}, nil)
	if err == nil {
		t.Fatal("a failed shard passed")
	}
	for _, want := range []string{"shard 1/3", "node-1", "exited 2", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	if ok, _ := deleted(c, spec.Name); !ok {
		t.Error("the Job of a failed run was left behind")
	}
}

func TestRunNeverScheduled(t *testing.T) {
	spec := testSpec()
	_, _, c, err := runFlow(t, spec, func(i int) string {
		if i == 2 {
			return k8stest.Unschedulable
		}
		return k8stest.Run
	}, func(r *Runner) { r.ScheduleTimeout = 300 * time.Millisecond })
	if err == nil {
		t.Fatal("a shard that never got a node passed")
	}
	for _, want := range []string{"shard 2/3", "not scheduled after 300ms", "anti-affinity", "--nodes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if ok, _ := deleted(c, spec.Name); !ok {
		t.Error("the Job of a failed run was left behind")
	}
}

func TestRunInterrupted(t *testing.T) {
	spec := testSpec()
	job, _ := BuildJob(spec)
	c := k8stest.New(t, func(int) string { return k8stest.Run })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, spec.Namespace, spec.Name)
	r := &Runner{Client: c.Clientset, Poll: 20 * time.Millisecond, OnProgress: func(p Progress) {
		if p.Running == 3 {
			cancel() // Ctrl-C while the shards run
		}
	}}
	done := make(chan error, 1)
	go func() { _, err := r.Run(ctx, job, nil); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("got %v, want ErrInterrupted", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of the interrupt")
	}
	if ok, _ := deleted(c, spec.Name); !ok {
		t.Error("an interrupted run left its Job behind")
	}
}

func TestRunCreateRefused(t *testing.T) {
	c := k8stest.New(t, func(int) string { return k8stest.OK })
	c.Clientset.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(batchv1.Resource("jobs"), "nvmftest-t", errors.New("user cannot create jobs"))
	})
	job, _ := BuildJob(testSpec())
	_, err := (&Runner{Client: c.Clientset}).Run(context.Background(), job, BuildConfigMap(testSpec()))
	if err == nil || !strings.Contains(err.Error(), "create/get/list/watch/delete") {
		t.Fatalf("got %v, want a forbidden error naming the permissions", err)
	}
	// The ConfigMap made before the Job is not left behind.
	if _, gerr := c.Clientset.CoreV1().ConfigMaps("load").Get(context.Background(), "nvmftest-t-jobs", metav1.GetOptions{}); !apierrors.IsNotFound(gerr) {
		t.Errorf("ConfigMap left behind: %v", gerr)
	}
}

func TestRunTimeout(t *testing.T) {
	spec := testSpec()
	_, _, c, err := runFlow(t, spec, func(int) string { return k8stest.Run }, func(r *Runner) { r.Timeout = 300 * time.Millisecond })
	if err == nil || !strings.Contains(err.Error(), "not done after --k8s-timeout 300ms") || !strings.Contains(err.Error(), "3 shards:") {
		t.Fatalf("got %v, want the timeout with the shards' progress", err)
	}
	if ok, _ := deleted(c, spec.Name); !ok {
		t.Error("the Job of a timed-out run was left behind")
	}
}
