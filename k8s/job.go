package k8s

import (
	"fmt"
	"maps"
	"path"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Labels every object of a run carries: RunLabel names the run (the Job's
// name), so the pods of one run find each other for anti-affinity and the
// Runner lists them.
const (
	RunLabel       = "nvmftest.io/run"
	ComponentLabel = "app.kubernetes.io/component"
	NameLabel      = "app.kubernetes.io/name"
	// ContainerName is the bench container's name in every pod.
	ContainerName = "bench"
	// ResultsDir is where a shared volume is mounted in the pods.
	ResultsDir = "/results"
	// indexEnv is the Job controller's completion index, which the pods'
	// --shard takes through Kubernetes' $(VAR) expansion of args.
	indexEnv = "JOB_COMPLETION_INDEX"
	// indexAnnotation holds the index on each pod of an Indexed Job.
	indexAnnotation = "batch.kubernetes.io/job-completion-index"
)

// AntiAffinity says how strictly shards are kept on different nodes.
type AntiAffinity string

const (
	// AntiAffinityRequired never puts two shards on one node: with fewer
	// schedulable nodes than shards, the rest stay pending (and the Runner
	// says so after its schedule timeout).
	AntiAffinityRequired AntiAffinity = "required"
	// AntiAffinityPreferred spreads shards over nodes where it can.
	AntiAffinityPreferred AntiAffinity = "preferred"
	// AntiAffinityNone leaves placement to the scheduler.
	AntiAffinityNone AntiAffinity = "none"
)

// Spec is a sharded load to run as an Indexed Job.
type Spec struct {
	// Name is the Job's name (a DNS label of at most 63 characters less
	// the pods' suffixes: keep it under 50).
	Name      string
	Namespace string
	// Image holds the nvmftest binary as its entrypoint (see Dockerfile).
	Image      string
	PullPolicy corev1.PullPolicy
	// Shards is N: pods, completions and parallelism.
	Shards int
	// Split is bench's --shard-split (numjobs, region, nsid).
	Split string
	// StartAt is when every shard starts its I/O (bench --start-at).
	StartAt time.Time
	// BenchArgs are the bench options every shard gets (target, fio
	// options, job file paths under JobFilesDir), after "bench".
	BenchArgs []string
	// JobFiles are fio job files by name, mounted from a ConfigMap at
	// JobFilesDir; BenchArgs name them there.
	JobFiles map[string]string
	// NodeSelector restricts the pods to matching nodes.
	NodeSelector map[string]string
	AntiAffinity AntiAffinity
	// HostNetwork runs the pods in their node's network namespace: the
	// target sees the nodes' addresses and no overlay sits in the path.
	HostNetwork bool
	// Requests and Limits are resource quantities by name (cpu, memory).
	Requests, Limits map[string]string
	// ServiceAccount runs the pods (default: the namespace's default).
	ServiceAccount string
	// SharedPVC, if set, is a ReadWriteMany claim mounted at ResultsDir:
	// each shard writes its report directory to
	// ResultsDir/<Name>/shard-<I>, beside its pod log.
	SharedPVC string
	// ActiveDeadline bounds the Job's run time on the cluster side.
	ActiveDeadline time.Duration
}

// JobFilesDir is where the job files' ConfigMap is mounted.
const JobFilesDir = "/etc/nvmftest/jobs"

func (s *Spec) labels() map[string]string {
	return map[string]string{NameLabel: "nvmftest", ComponentLabel: "bench", RunLabel: s.Name}
}

// ShardDir is the report directory of shard i inside the pod (on the
// shared volume when there is one).
func (s *Spec) ShardDir(i string) string {
	if s.SharedPVC != "" {
		return path.Join(ResultsDir, s.Name, "shard-"+i)
	}
	return "/tmp/nvmftest/shard-" + i
}

// ConfigMapName is the name of the job files' ConfigMap.
func (s *Spec) ConfigMapName() string { return s.Name + "-jobs" }

// BuildConfigMap returns the ConfigMap of the job files, nil without any.
func BuildConfigMap(s Spec) *corev1.ConfigMap {
	if len(s.JobFiles) == 0 {
		return nil
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: s.ConfigMapName(), Namespace: s.Namespace, Labels: s.labels()},
		Data:       maps.Clone(s.JobFiles),
	}
}

// BuildJob returns the Indexed Job of s. It refuses a Spec no cluster
// would run (see Validate for the rest).
func BuildJob(s Spec) (*batchv1.Job, error) {
	if s.Shards < 1 {
		return nil, fmt.Errorf("shards: %d, give at least 1", s.Shards)
	}
	if s.Image == "" {
		return nil, fmt.Errorf("no image: give the image that holds nvmftest")
	}
	if s.StartAt.IsZero() {
		return nil, fmt.Errorf("no start time: shards need one to line up")
	}
	n := strconv.Itoa(s.Shards)
	idx := "$(" + indexEnv + ")"
	args := []string{"bench",
		"--shard=" + idx + "/" + n,
		"--start-at=" + s.StartAt.UTC().Format(time.RFC3339Nano),
		"--report-dir=" + s.ShardDir(idx),
		"--print-shard-result",
		"--progress=never",
	}
	if s.Split != "" {
		args = append(args, "--shard-split="+s.Split)
	}
	args = append(args, s.BenchArgs...)
	res := corev1.ResourceRequirements{}
	for name, m := range map[string]map[string]string{"request": s.Requests, "limit": s.Limits} {
		if len(m) == 0 {
			continue
		}
		rl := corev1.ResourceList{}
		for k, v := range m {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return nil, fmt.Errorf("%s %s=%s: %v (as 2, 500m, 1Gi)", name, k, v, err)
			}
			rl[corev1.ResourceName(k)] = q
		}
		if name == "request" {
			res.Requests = rl
		} else {
			res.Limits = rl
		}
	}
	labels := s.labels()
	c := corev1.Container{
		Name:            ContainerName,
		Image:           s.Image,
		ImagePullPolicy: s.PullPolicy,
		Args:            args,
		Env: []corev1.EnvVar{
			// The Job controller sets it too; declared here so $(...) in
			// the args expands on every cluster version.
			{Name: indexEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
				FieldPath: "metadata.annotations['" + indexAnnotation + "']"}}},
			{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		},
		Resources: res,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp"}},
		// The shard result is in the log; the termination message says
		// why a shard failed (nvmftest's last error line).
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	pod := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		HostNetwork:        s.HostNetwork,
		NodeSelector:       maps.Clone(s.NodeSelector),
		ServiceAccountName: s.ServiceAccount,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(int64(65532)),
			RunAsGroup:     ptr.To(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{c},
		Volumes:    []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		// The shards are short-lived load: no reason to wait 30 s on a
		// Ctrl-C's cleanup.
		TerminationGracePeriodSeconds: ptr.To(int64(5)),
	}
	if s.HostNetwork {
		pod.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	if len(s.JobFiles) > 0 {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "jobs", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: s.ConfigMapName()}}}})
		pod.Containers[0].VolumeMounts = append(pod.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "jobs", MountPath: JobFilesDir, ReadOnly: true})
	}
	if s.SharedPVC != "" {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "results", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: s.SharedPVC}}})
		pod.Containers[0].VolumeMounts = append(pod.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "results", MountPath: ResultsDir})
	}
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{RunLabel: s.Name}},
		TopologyKey:   corev1.LabelHostname,
	}
	switch s.AntiAffinity {
	case AntiAffinityRequired, "":
		pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term}}}
	case AntiAffinityPreferred:
		pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: term}}}}
	case AntiAffinityNone:
	default:
		return nil, fmt.Errorf("anti-affinity %q: use required, preferred or none", s.AntiAffinity)
	}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			CompletionMode: ptr.To(batchv1.IndexedCompletion),
			Completions:    ptr.To(int32(s.Shards)),
			Parallelism:    ptr.To(int32(s.Shards)),
			// A shard run again starts late and counts its load twice:
			// a failed shard fails the run instead.
			BackoffLimit: ptr.To(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec:       pod,
			},
		},
	}
	if s.ActiveDeadline > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr.To(int64((s.ActiveDeadline + time.Second - 1) / time.Second))
	}
	return job, nil
}

// ManifestYAML is the objects as one YAML stream (the ConfigMap first,
// when there is one), for kubectl apply -f.
func ManifestYAML(job *batchv1.Job, cm *corev1.ConfigMap) ([]byte, error) {
	var docs []string
	for _, o := range []any{cm, job} {
		if o == (*corev1.ConfigMap)(nil) {
			continue
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		docs = append(docs, string(b))
	}
	return []byte(strings.Join(docs, "---\n")), nil
}

// ParseSelector parses a node selector "k=v,k2=v2".
func ParseSelector(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: give label=value pairs, comma separated (disktype=nvme,zone=a)", kv)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return m, nil
}
