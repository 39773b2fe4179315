// Package k8stest plays a Kubernetes cluster on client-go's fake
// clientset for tests of code that runs nvmftest's sharded Jobs: it acts
// as the Job controller (one pod per completion index) and the kubelets
// (phases, container exits, logs), as net/http/httptest plays a server.
package k8stest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nvmftest/nvmftest/reports"
)

// What a pod does, by the Script.
const (
	OK            = "ok"            // scheduled, running, succeeded; its log holds a shard result
	Fail          = "fail"          // scheduled, running, failed with exit 2
	Unschedulable = "unschedulable" // pending for ever, the scheduler's reason in its condition
	Run           = "run"           // running for ever
)

const indexAnnotation = "batch.kubernetes.io/job-completion-index"

// Cluster is a fake cluster: Clientset is what the code under test gets.
type Cluster struct {
	Clientset *fake.Clientset
	t         testing.TB
	script    func(i int) string
	mu        sync.Mutex
	logs      map[string]string
	order     []string
	logN      int
}

// New returns a cluster whose pods of index i do what script(i) says.
func New(t testing.TB, script func(i int) string) *Cluster {
	c := &Cluster{t: t, Clientset: fake.NewClientset(), script: script, logs: map[string]string{}}
	// The fake's GetLogs action carries no pod name: a Runner reads the
	// logs in index order, so the reactor answers in that order (a
	// TailLines read is a failed pod's, answered with its log).
	c.Clientset.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		opts, _ := a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		if opts != nil && opts.TailLines != nil {
			for i, name := range c.order {
				if c.script(i) == Fail {
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

// ShardLog is what shard i of n prints: a line of bench output and its
// framed result (100 reads of 10-20 µs in one second, a shard-specific
// spread).
func ShardLog(t testing.TB, i, n int) string {
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
		Jobs: []reports.ShardJob{{Name: "a", NumJobs: 1, Runtime: time.Second, Options: []string{"rw=randread"},
			Dirs: []reports.ShardDir{{Dir: "read", IOs: 100, Bytes: 409600, Clat: string(enc),
				Intervals: []reports.ShardInterval{{Start: start, End: start.Add(time.Second), IOs: 100, Bytes: 409600, Hist: string(enc)}}}}}}}
	var b bytes.Buffer
	b.WriteString("a: (groupid=0, jobs=1): err= 0: rw=randread, bs=4k, iodepth=1\n")
	if err := reports.PrintShard(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Run waits for the Job ns/name and plays its pods until each is in its
// final state or ctx ends. Start it in a goroutine before the code under
// test creates the Job.
func (c *Cluster) Run(ctx context.Context, ns, name string) {
	cs := c.Clientset
	var job *batchv1.Job
	for job == nil {
		if j, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
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
				Labels: job.Spec.Template.Labels, Annotations: map[string]string{indexAnnotation: fmt.Sprint(i)}},
			Spec:   *job.Spec.Template.Spec.DeepCopy(),
			Status: corev1.PodStatus{Phase: corev1.PodPending},
		}
		c.mu.Lock()
		c.order = append(c.order, p.Name)
		if c.script(i) == Fail {
			c.logs[p.Name] = "nvmftest: bench: connect 10.0.0.5:4420: connection refused\n"
		} else {
			c.logs[p.Name] = ShardLog(c.t, i, n)
		}
		c.mu.Unlock()
		created, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return
		}
		pods[i] = created
	}
	step := func(i int, f func(p *corev1.Pod)) {
		f(pods[i])
		if u, err := cs.CoreV1().Pods(ns).Update(ctx, pods[i], metav1.UpdateOptions{}); err == nil {
			pods[i] = u
		}
		time.Sleep(2 * time.Millisecond)
	}
	for i := range n {
		if c.script(i) == Unschedulable {
			step(i, func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
					Message: "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."}}
			})
			continue
		}
		step(i, func(p *corev1.Pod) { p.Spec.NodeName = fmt.Sprintf("node-%d", i) })
	}
	for i := range n {
		if c.script(i) != Unschedulable {
			step(i, func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning })
		}
	}
	for i := range n {
		switch c.script(i) {
		case OK:
			step(i, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })
		case Fail:
			step(i, func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "bench", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 2, Reason: "Error", Message: "nvmftest: bench: connect 10.0.0.5:4420: connection refused\n"}}}}
			})
		}
	}
}
