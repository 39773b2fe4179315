package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"

	"github.com/nvmftest/nvmftest/reports"
)

// Progress is where a run's shards are.
type Progress struct {
	Shards int
	// Pending counts shards without a pod or whose pod waits for a node;
	// Scheduled those on a node whose container has not started.
	Pending, Scheduled, Running, Done, Failed int
}

// String is "8 shards: 2 pending, 1 scheduled, 5 running, 0 done".
func (p Progress) String() string {
	s := fmt.Sprintf("%d shards: %d pending, %d scheduled, %d running, %d done", p.Shards, p.Pending, p.Scheduled, p.Running, p.Done)
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d failed", p.Failed)
	}
	return s
}

// Client is the part of a clientset a Runner uses: Jobs, ConfigMaps,
// pods and their logs. kubernetes.Interface (and its fake) is one; the
// binary itself builds just these two typed clients, not every API
// group's.
type Client interface {
	BatchV1() batchv1client.BatchV1Interface
	CoreV1() corev1client.CoreV1Interface
}

// Runner runs a sharded load's Job on a cluster.
type Runner struct {
	Client Client
	// ScheduleTimeout bounds how long a shard may be without a node (or
	// without a pod at all) before the run fails (default 5 minutes).
	ScheduleTimeout time.Duration
	// Timeout bounds the whole run, from creating the Job to the last
	// shard's end (0: none beyond the context's).
	Timeout time.Duration
	// Poll is how often the Job's state is checked besides the pod
	// watch's events (default 2 s).
	Poll time.Duration
	// OnProgress, if set, is called when the shards' progress changes.
	OnProgress func(Progress)
	// Keep leaves the Job (and its pods and logs) on the cluster.
	Keep bool
	// SharedDir, if set, is where the Spec's SharedPVC is mounted here:
	// shard results are read from SharedDir/<name>/shard-<I>/shard.json
	// instead of the pod logs.
	SharedDir string
}

// Outcome is what a finished run gathered.
type Outcome struct {
	Shards []*reports.ShardResult
	// Pods are the pods that ran the shards, by index.
	Pods []string
	// Nodes are the nodes they ran on, by index.
	Nodes []string
}

// ErrInterrupted wraps the error of a run its context ended.
var ErrInterrupted = errors.New("interrupted")

// Run creates the ConfigMap (if any) and the Job, waits for every shard's
// pod to succeed, collects the shards' results and, unless Keep, deletes
// what it created (background propagation: the pods go with the Job). A
// failed shard, one never scheduled, or the context's end fails the run,
// with the Job deleted too unless Keep.
func (r *Runner) Run(ctx context.Context, job *batchv1.Job, cm *corev1.ConfigMap) (out *Outcome, err error) {
	if r.ScheduleTimeout <= 0 {
		r.ScheduleTimeout = 5 * time.Minute
	}
	if r.Poll <= 0 {
		r.Poll = 2 * time.Second
	}
	ns := job.Namespace
	n := int(ptr.Deref(job.Spec.Completions, 1))
	if cm != nil {
		if _, err := r.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return nil, apiError("create ConfigMap "+cm.Name, err)
		}
	}
	created, err := r.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		if cm != nil {
			r.cleanupConfigMap(cm)
		}
		return nil, apiError("create Job "+job.Name, err)
	}
	defer func() {
		if r.Keep {
			return
		}
		if derr := r.cleanup(created, cm); derr != nil && err == nil {
			err = derr
		}
	}()
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, r.Timeout, fmt.Errorf("shards not done after --k8s-timeout %v", r.Timeout))
		defer cancel()
	}
	pods, err := r.wait(ctx, created, n)
	if err != nil {
		return nil, err
	}
	return r.collect(ctx, created, pods)
}

func (r *Runner) wait(ctx context.Context, job *batchv1.Job, n int) (map[int]*corev1.Pod, error) {
	ns := job.Namespace
	sel := metav1.ListOptions{LabelSelector: RunLabel + "=" + job.Name}
	start := time.Now()
	pods := map[int]*corev1.Pod{}
	unsched := map[int]time.Time{}
	var last Progress
	// ended is the error of a run whose context ended: an API call cut
	// short by it is not the cluster's failure.
	ended := func() error {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			return fmt.Errorf("%v (%s)", cause, last)
		}
		return fmt.Errorf("%w while waiting for the shards (%s)", ErrInterrupted, last)
	}
	// A watch delivers changes as they come; the poll catches what a
	// dropped watch missed and drives the timeouts.
	var events <-chan watch.Event
	w, werr := r.Client.CoreV1().Pods(ns).Watch(ctx, sel)
	if werr == nil {
		defer w.Stop()
		events = w.ResultChan()
	}
	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	refresh := func() error {
		list, err := r.Client.CoreV1().Pods(ns).List(ctx, sel)
		if err != nil {
			if ctx.Err() != nil {
				return ended()
			}
			return apiError("list pods", err)
		}
		for i := range list.Items {
			note(pods, &list.Items[i])
		}
		return nil
	}
	if err := refresh(); err != nil {
		return nil, err
	}
	for {
		p := Progress{Shards: n}
		now := time.Now()
		for i := range n {
			pod := pods[i]
			switch {
			case pod == nil:
				p.Pending++
				if now.Sub(start) > r.ScheduleTimeout {
					return nil, fmt.Errorf("shard %d/%d: the Job made no pod for it in %v (kubectl -n %s describe job %s)", i, n, r.ScheduleTimeout, ns, job.Name)
				}
			case pod.Status.Phase == corev1.PodSucceeded:
				p.Done++
				delete(unsched, i)
			case pod.Status.Phase == corev1.PodFailed:
				p.Failed++
			case pod.Spec.NodeName == "":
				p.Pending++
				if _, ok := unsched[i]; !ok {
					unsched[i] = now
				}
				if now.Sub(unsched[i]) > r.ScheduleTimeout {
					return nil, fmt.Errorf("shard %d/%d (pod %s) not scheduled after %v: %s", i, n, pod.Name, r.ScheduleTimeout, unschedulable(pod))
				}
			case pod.Status.Phase == corev1.PodRunning:
				p.Running++
			default:
				p.Scheduled++
				// On a node but its container cannot start: a wrong image
				// or a missing ConfigMap never ends by itself.
				if why := stuck(pod); why != "" {
					if _, ok := unsched[i]; !ok {
						unsched[i] = now
					}
					if now.Sub(unsched[i]) > r.ScheduleTimeout {
						return nil, fmt.Errorf("shard %d/%d (pod %s on node %s) did not start in %v: %s", i, n, pod.Name, pod.Spec.NodeName, r.ScheduleTimeout, why)
					}
				} else {
					delete(unsched, i)
				}
			}
		}
		if p != last {
			last = p
			if r.OnProgress != nil {
				r.OnProgress(p)
			}
		}
		if p.Failed > 0 {
			for i := range n {
				if pod := pods[i]; pod != nil && pod.Status.Phase == corev1.PodFailed {
					return nil, fmt.Errorf("shard %d/%d (pod %s on node %s) failed: %s", i, n, pod.Name, pod.Spec.NodeName, r.failure(ctx, pod))
				}
			}
		}
		if p.Done == n {
			return pods, nil
		}
		select {
		case <-ctx.Done():
			return nil, ended()
		case ev, ok := <-events:
			if !ok {
				events = nil // the poll carries on alone
				continue
			}
			if pod, isPod := ev.Object.(*corev1.Pod); isPod && ev.Type != watch.Deleted {
				note(pods, pod)
			}
		case <-tick.C:
			if err := refresh(); err != nil {
				return nil, err
			}
			j, err := r.Client.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ended()
				}
				if apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("the Job %s was deleted while its shards ran", job.Name)
				}
				return nil, apiError("get Job", err)
			}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					return nil, fmt.Errorf("the Job %s failed: %s: %s (%s)", job.Name, c.Reason, c.Message, last)
				}
			}
		}
	}
}

// note keeps pod as its index's pod, unless a newer one is there.
func note(pods map[int]*corev1.Pod, pod *corev1.Pod) {
	i, err := strconv.Atoi(pod.Annotations[indexAnnotation])
	if err != nil {
		if i, err = strconv.Atoi(pod.Labels[indexAnnotation]); err != nil {
			return
		}
	}
	if old := pods[i]; old != nil && old.Name != pod.Name && old.CreationTimestamp.After(pod.CreationTimestamp.Time) {
		return
	}
	pods[i] = pod.DeepCopy()
}

// stuck is why a scheduled pod's container waits in a state that does not
// resolve by itself ("" if none).
func stuck(pod *corev1.Pod) string {
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
				return fmt.Sprintf("%s: %s (check --image and that the nodes can pull it)", w.Reason, w.Message)
			}
		}
	}
	return ""
}

// unschedulable is the scheduler's reason a pod has no node.
func unschedulable(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			return c.Message + " (one shard per node: check --nodes against the schedulable nodes, --node-selector and the resource requests)"
		}
	}
	return "no reason given by the scheduler (one shard per node: check --nodes against the schedulable nodes, --node-selector and the resource requests)"
}

// failure says why a pod failed: its container's exit and the last lines
// of its log.
func (r *Runner) failure(ctx context.Context, pod *corev1.Pod) string {
	var why []string
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			s := fmt.Sprintf("container %s exited %d", cs.Name, t.ExitCode)
			if t.Reason != "" {
				s += " (" + t.Reason + ")"
			}
			if m := strings.TrimSpace(t.Message); m != "" {
				s += ": " + lastLine(m)
			}
			why = append(why, s)
		}
	}
	if len(why) == 0 {
		if pod.Status.Reason != "" || pod.Status.Message != "" {
			why = append(why, strings.TrimSpace(pod.Status.Reason+" "+pod.Status.Message))
		}
		if b, err := r.logs(ctx, pod, ptr.To(int64(5))); err == nil && len(bytes.TrimSpace(b)) > 0 {
			why = append(why, "log: "+lastLine(string(b)))
		}
	}
	if len(why) == 0 {
		return "no reason recorded (kubectl -n " + pod.Namespace + " describe pod " + pod.Name + ")"
	}
	return strings.Join(why, "; ")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func (r *Runner) logs(ctx context.Context, pod *corev1.Pod, tail *int64) ([]byte, error) {
	rc, err := r.Client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: ContainerName, TailLines: tail}).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 256<<20))
}

func (r *Runner) collect(ctx context.Context, job *batchv1.Job, pods map[int]*corev1.Pod) (*Outcome, error) {
	n := len(pods)
	out := &Outcome{Pods: make([]string, n), Nodes: make([]string, n)}
	for i := range n {
		pod := pods[i]
		out.Pods[i], out.Nodes[i] = pod.Name, pod.Spec.NodeName
		var s *reports.ShardResult
		var err error
		if r.SharedDir != "" {
			s, err = reports.ReadShard(filepath.Join(r.SharedDir, job.Name, "shard-"+strconv.Itoa(i)))
		} else {
			var b []byte
			if b, err = r.logs(ctx, pod, nil); err == nil {
				s, err = reports.ParseShardLog(bytes.NewReader(b))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("shard %d/%d (pod %s): %v", i, n, pod.Name, err)
		}
		if s.Shard != i || s.Shards != n {
			return nil, fmt.Errorf("shard %d/%d (pod %s) reported itself as shard %d/%d", i, n, pod.Name, s.Shard, s.Shards)
		}
		out.Shards = append(out.Shards, s)
	}
	return out, nil
}

// cleanup deletes the Job (its pods with it) and the ConfigMap, with a
// context of its own: the run's may be what ended.
func (r *Runner) cleanup(job *batchv1.Job, cm *corev1.ConfigMap) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil && !apierrors.IsNotFound(err) {
		err = fmt.Errorf("delete Job %s: %v (kubectl -n %s delete job %s)", job.Name, err, job.Namespace, job.Name)
	} else {
		err = nil
	}
	if cm != nil {
		r.cleanupConfigMap(cm)
	}
	return err
}

func (r *Runner) cleanupConfigMap(cm *corev1.ConfigMap) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = r.Client.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{})
}

// apiError puts an API call's error on one line, saying plainly when no
// cluster answered.
func apiError(what string, err error) error {
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &ue), errors.As(err, &ne), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s: no Kubernetes API server answered: %v (check KUBECONFIG, --context and 'kubectl cluster-info')", what, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %v (the account needs create/get/list/watch/delete on jobs, pods, pods/log and configmaps in the namespace)", what, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: %v (does the namespace exist?)", what, err)
	}
	return fmt.Errorf("%s: %v", what, oneLine(err.Error()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
