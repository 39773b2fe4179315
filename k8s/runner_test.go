package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nvmftest/nvmftest/reports"
)

// testSpec is a small run: 3 shards, a job file, a start a minute away.
func testSpec() Spec {
	return Spec{Name: "nvmftest-t", Namespace: "load", Image: "reg.example/nvmftest:test", Shards: 3, Split: "numjobs",
		StartAt: time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC), BenchArgs: []string{"--traddr=10.0.0.5", "--nqn=nqn.x", JobFilesDir + "/00-a.fio"},
		JobFiles: map[string]string{"00-a.fio": "[a]\nrw=randread\nnumjobs=3\n"}, Requests: map[string]string{"cpu": "1", "memory": "256Mi"}}
}

// shardLog is what shard i of n prints: some bench output and its framed
// result, as a pod's log holds it.
func shardLog(t *testing.T, i, n int) string {
	t.Helper()
	h := hdrhistogram.New(1, int64(10*time.Minute), 3)
	for v := range 100 {
		_ = h.RecordValue(int64(10000 + 100*v + i))
	}
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	s := &reports.ShardResult{Format: reports.ShardFormat, Shard: i, Shards: n, Split: "numjobs", Host: fmt.Sprintf("node-%d", i),
		StartAt: start, Started: start.Add(time.Millisecond), Late: time.Millisecond, Elapsed: time.Second, Interval: time.Second,
		Jobs: []reports.ShardJob{{Name: "a", NumJobs: 1, Runtime: time.Second, Dirs: []reports.ShardDir{{Dir: "read", IOs: 100, Bytes: 409600, Clat: string(enc),
			Intervals: []reports.ShardInterval{{Start: start, End: start.Add(time.Second), IOs: 100, Bytes: 409600, Hist: string(enc)}}}}}}}
	var b bytes.Buffer
	b.WriteString("a: (groupid=0, jobs=1): err= 0: rw=randread, bs=4k, iodepth=1\n")
	if err := reports.PrintShard(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// cluster plays the Job controller and the kubelets on a fake clientset:
// once the Job exists it makes one pod per index and moves each through
// the phases its script gives.
type cluster struct {
	t  *testing.T
	cs *fake.Clientset
	// script says what becomes of the pod of index i: "ok" (scheduled,
	// running, succeeded), "fail" (scheduled, running, failed with exit
	// 2), "unschedulable" (pending for ever), "run" (running for ever).
	script func(i int) string
	mu     sync.Mutex
	logs   map[string]string // by pod name
	order  []string          // pods by index, for the log reactor
	logN   int
}

func newCluster(t *testing.T, script func(int) string) *cluster {
	c := &cluster{t: t, cs: fake.NewClientset(), script: script, logs: map[string]string{}}
	// The fake's GetLogs action carries no pod name: the Runner reads the
	// logs in index order, so the reactor answers in that order (a
	// TailLines read is a failed pod's, answered with its log too).
	c.cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		opts, _ := a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		if opts != nil && opts.TailLines != nil {
			for i, name := range c.order {
				if c.script(i) == "fail" {
					return true, &runtime.Unknown{Raw: []byte(c.logs[name])}, nil
				}
			}
		}
		if c.logN >= len(c.order) {
			return true, nil, fmt.Errorf("no more logs")
		}
		name := c.order[c.logN]
		c.logN++
		return true, &runtime.Unknown{Raw: []byte(c.logs[name])}, nil
	})
	return c
}

// run waits for the Job and plays its pods; it returns when all pods are
// in their final state or ctx ends.
func (c *cluster) run(ctx context.Context, ns, name string) {
	var job *batchv1.Job
	for job == nil {
		j, err := c.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			job = j
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	n := int(*job.Spec.Completions)
	pods := make([]*corev1.Pod, n)
	for i := range n {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d-x%d", name, i, i), Namespace: ns,
				Labels:      job.Spec.Template.Labels,
				Annotations: map[string]string{indexAnnotation: fmt.Sprint(i)}},
			Spec:   *job.Spec.Template.Spec.DeepCopy(),
			Status: corev1.PodStatus{Phase: corev1.PodPending},
		}
		c.mu.Lock()
		c.order = append(c.order, p.Name)
		switch c.script(i) {
		case "fail":
			c.logs[p.Name] = "nvmftest: bench: connect 10.0.0.5:4420: connection refused\n"
		default:
			c.logs[p.Name] = shardLog(c.t, i, n)
		}
		c.mu.Unlock()
		created, err := c.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return
		}
		pods[i] = created
	}
	step := func(i int, f func(p *corev1.Pod)) {
		f(pods[i])
		if u, err := c.cs.CoreV1().Pods(ns).Update(ctx, pods[i], metav1.UpdateOptions{}); err == nil {
			pods[i] = u
		}
		time.Sleep(2 * time.Millisecond)
	}
	for i := range n {
		switch c.script(i) {
		case "unschedulable":
			step(i, func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
					Message: "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."}}
			})
		default:
			step(i, func(p *corev1.Pod) { p.Spec.NodeName = fmt.Sprintf("node-%d", i) })
		}
	}
	for i := range n {
		if s := c.script(i); s != "unschedulable" {
			step(i, func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning })
		}
	}
	for i := range n {
		switch c.script(i) {
		case "ok":
			step(i, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })
		case "fail":
			step(i, func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 2, Reason: "Error", Message: "nvmftest: bench: connect 10.0.0.5:4420: connection refused\n"}}}}
			})
		}
	}
}

// runFlow runs spec's Job on a cluster playing script and returns what
// the Runner returned, the progress it reported and the cluster.
func runFlow(t *testing.T, spec Spec, script func(int) string, setup func(*Runner)) (*Outcome, []Progress, *cluster, error) {
	t.Helper()
	job, err := BuildJob(spec)
	if err != nil {
		t.Fatal(err)
	}
	cm := BuildConfigMap(spec)
	c := newCluster(t, script)
	// Bounded: a hang becomes a failure, never a stuck test.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go c.run(ctx, spec.Namespace, spec.Name)
	var mu sync.Mutex
	var seen []Progress
	r := &Runner{Client: c.cs, Poll: 20 * time.Millisecond, ScheduleTimeout: time.Minute,
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
func deleted(c *cluster, name string) (bool, metav1.DeletionPropagation) {
	for _, a := range c.cs.Actions() {
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
	out, seen, c, err := runFlow(t, spec, func(int) string { return "ok" }, nil)
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
	if _, err := c.cs.CoreV1().ConfigMaps(spec.Namespace).Get(context.Background(), spec.ConfigMapName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the job files' ConfigMap is still there (%v)", err)
	}
}

func TestRunKeep(t *testing.T) {
	spec := testSpec()
	_, _, c, err := runFlow(t, spec, func(int) string { return "ok" }, func(r *Runner) { r.Keep = true })
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
			return "fail"
		}
		return "run"
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
			return "unschedulable"
		}
		return "run"
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
	c := newCluster(t, func(int) string { return "run" })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.run(ctx, spec.Namespace, spec.Name)
	r := &Runner{Client: c.cs, Poll: 20 * time.Millisecond, OnProgress: func(p Progress) {
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
	c := newCluster(t, func(int) string { return "ok" })
	c.cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(batchv1.Resource("jobs"), "nvmftest-t", errors.New("user cannot create jobs"))
	})
	job, _ := BuildJob(testSpec())
	_, err := (&Runner{Client: c.cs}).Run(context.Background(), job, BuildConfigMap(testSpec()))
	if err == nil || !strings.Contains(err.Error(), "create/get/list/watch/delete") {
		t.Fatalf("got %v, want a forbidden error naming the permissions", err)
	}
	// The ConfigMap made before the Job is not left behind.
	if _, gerr := c.cs.CoreV1().ConfigMaps("load").Get(context.Background(), "nvmftest-t-jobs", metav1.GetOptions{}); !apierrors.IsNotFound(gerr) {
		t.Errorf("ConfigMap left behind: %v", gerr)
	}
}

func TestRunTimeout(t *testing.T) {
	spec := testSpec()
	_, _, c, err := runFlow(t, spec, func(int) string { return "run" }, func(r *Runner) { r.Timeout = 300 * time.Millisecond })
	if err == nil || !strings.Contains(err.Error(), "not done after --k8s-timeout 300ms") || !strings.Contains(err.Error(), "3 shards:") {
		t.Fatalf("got %v, want the timeout with the shards' progress", err)
	}
	if ok, _ := deleted(c, spec.Name); !ok {
		t.Error("the Job of a timed-out run was left behind")
	}
}
