package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nvmftest/nvmftest/internal/interrupt"
	"github.com/nvmftest/nvmftest/k8s"
	"github.com/nvmftest/nvmftest/loadgen"
	"github.com/nvmftest/nvmftest/reports"
)

// k8sBenchFlags are bench's flags for running the load as a Kubernetes
// Indexed Job, one shard per node.
type k8sBenchFlags struct {
	on              bool
	namespace       string
	nodes           int
	nodeSelector    string
	image           string
	pullPolicy      string
	hostNetwork     bool
	cpu, memory     string
	cpuLim, memLim  string
	antiAffinity    string
	startLead       time.Duration
	keep            bool
	dryRun          bool
	kubeconfig      string
	context         string
	scheduleTimeout time.Duration
	timeout         time.Duration
	serviceAccount  string
	sharedPVC       string
	sharedDir       string
	jobName         string
}

// k8sFlagNames are the flags that steer the Job, not the shards' bench.
var k8sFlagNames = map[string]bool{"kubernetes": true, "namespace": true, "nodes": true, "node-selector": true, "image": true,
	"image-pull-policy": true, "host-network": true, "cpu": true, "memory": true, "cpu-limit": true, "memory-limit": true,
	"anti-affinity": true, "start-lead": true, "keep": true, "dry-run": true, "kubeconfig": true, "context": true,
	"schedule-timeout": true, "k8s-timeout": true, "service-account": true, "shared-pvc": true, "shared-dir": true, "job-name": true}

func addK8sBenchFlags(c *cobra.Command, f *k8sBenchFlags) {
	fs := c.Flags()
	fs.BoolVar(&f.on, "kubernetes", false, "run the load from many nodes as a Kubernetes Indexed Job (one shard per node), merge the shards' results into --report-dir")
	fs.StringVar(&f.namespace, "namespace", "", "Kubernetes namespace (default: the kubeconfig context's)")
	fs.IntVar(&f.nodes, "nodes", 0, "shards (pods, each on its own node) for --kubernetes")
	fs.StringVar(&f.nodeSelector, "node-selector", "", "run the shards only on nodes with these labels: `k=v,k2=v2`")
	fs.StringVar(&f.image, "image", "", "container `IMAGE` holding nvmftest as its entrypoint (see the Dockerfile)")
	fs.StringVar(&f.pullPolicy, "image-pull-policy", "", "Always, IfNotPresent or Never (default: the cluster's)")
	fs.BoolVar(&f.hostNetwork, "host-network", false, "run the shards in their nodes' network namespace (no overlay between them and the target)")
	fs.StringVar(&f.cpu, "cpu", "1", "CPU each shard requests (2, 500m; empty for none)")
	fs.StringVar(&f.memory, "memory", "256Mi", "memory each shard requests (empty for none)")
	fs.StringVar(&f.cpuLim, "cpu-limit", "", "CPU limit of each shard (default none: a throttled load generator measures its throttle)")
	fs.StringVar(&f.memLim, "memory-limit", "", "memory limit of each shard")
	fs.StringVar(&f.antiAffinity, "anti-affinity", "required", "keep shards on different nodes: required, preferred or none")
	fs.DurationVar(&f.startLead, "start-lead", time.Minute, "time from creating the Job to the shards' common start (--start-at), for scheduling and image pulls")
	fs.BoolVar(&f.keep, "keep", false, "leave the Job, its pods and their logs on the cluster")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the manifest (YAML) of the Job, and of the ConfigMap of the job files, instead of running it")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig `FILE` (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context")
	fs.DurationVar(&f.scheduleTimeout, "schedule-timeout", 5*time.Minute, "fail when a shard has no node (or no pod, or no image) for this long")
	fs.DurationVar(&f.timeout, "k8s-timeout", 0, "fail when the shards are not done this long after the Job was made (default: start lead + the jobs' runtime + 10m when known)")
	fs.StringVar(&f.serviceAccount, "service-account", "", "service account of the shards' pods")
	fs.StringVar(&f.sharedPVC, "shared-pvc", "", "ReadWriteMany `CLAIM` mounted in every shard: each writes its report directory there")
	fs.StringVar(&f.sharedDir, "shared-dir", "", "where --shared-pvc's volume is mounted here: results are read from it instead of the pod logs")
	fs.StringVar(&f.jobName, "job-name", "", "name of the Job (default nvmftest-bench-<time>)")
}

func newK8sCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "k8s",
		Short: "Run a load from many nodes as a Kubernetes Indexed Job",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown k8s command %q (use run; see '%s --help')", args[0], c.CommandPath())
			}
			return usagef("k8s needs a command: run (see '%s --help')", c.CommandPath())
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	run := newBenchCmd()
	run.Use = "run [JOBFILE...]"
	run.Short = "nvmftest bench --kubernetes: one shard per node, results merged"
	run.Long = `k8s run is 'nvmftest bench --kubernetes': it runs the load as an Indexed
Job (one pod per shard, pods on different nodes, all starting at one moment),
collects each shard's result from its pod log, merges them exactly (rates
summed per interval, percentiles from merged HdrHistograms) into --report-dir,
and deletes the Job unless --keep. --dry-run prints the manifest instead.

  nvmftest k8s run --image REG/nvmftest:TAG --nodes 8 -a 10.0.0.5 -n NQN jobs.fio --report-dir out
  nvmftest k8s run --image REG/nvmftest:TAG --nodes 8 -a 10.0.0.5 -n NQN --rw randread --iodepth 32 \
      --numjobs 8 --runtime 60 --time_based --dry-run > job.yaml`
	inner := run.RunE
	run.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cmd.Flags().Set("kubernetes", "true"); err != nil {
			return err
		}
		return inner(cmd, args)
	}
	run.Flags().Lookup("kubernetes").Hidden = true
	c.AddCommand(run)
	return c
}

// connectK8s finds the cluster; tests put a fake one in its place.
var connectK8s = k8s.Connect

// localOnly are bench flags that make no sense in a pod, with why.
var localOnly = map[string]string{
	"embedded":           "the shards load one shared target, not one in each pod",
	"shard":              "the Job gives each pod its shard",
	"print-shard-result": "the Job's pods print their results",
	"capture":            "the traces would stay in the pods",
	"dhchap-secret":      "a secret would be written in plain text into the Job's spec",
	"dhchap-ctrl-secret": "a secret would be written in plain text into the Job's spec",
	"write_hist_log":     "the merged report directory holds the interval logs",
	"write_series":       "the merged report directory holds the series",
}

// notPassed are bench flags that steer this command, not the shards.
var notPassed = map[string]bool{"report-dir": true, "output": true, "progress": true, "start-at": true, "shard-split": true,
	"output-format": true, "minimal": true, "status-interval": false}

func runBenchK8s(cmd *cobra.Command, f *benchFlags, files []string, jobs []*loadgen.Job, nsids []uint32) error {
	ctx := cmd.Context()
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	k := &f.k8s
	for name, why := range localOnly {
		if cmd.Flags().Changed(name) {
			return usagef("--%s cannot go with --kubernetes: %s", name, why)
		}
	}
	if k.nodes < 1 {
		return usagef("--kubernetes needs --nodes N: the number of shards, one pod each on its own node")
	}
	if k.image == "" {
		return usagef("--kubernetes needs --image IMAGE: a container image with nvmftest as its entrypoint (build it with the Dockerfile in the source tree)")
	}
	split, err := loadgen.ParseShardSplit(f.shard.split)
	if err != nil {
		return usagef("--shard-split %q: %v", f.shard.split, err)
	}
	// The split is checked here, once, rather than failing in every pod.
	if _, err := loadgen.ShardJobs(jobs, loadgen.Shard{Index: 0, Count: k.nodes}, split, nsids); err != nil {
		return usagef("--nodes %d: %v", k.nodes, err)
	}
	if f.conn.traddr == "" {
		for _, j := range jobs {
			if j.Options["traddr"] == "" {
				return usagef("missing target address: give it with -a/--traddr ADDRESS (or traddr= in the job file); the shards connect to it from their nodes")
			}
		}
	}
	if k.sharedDir != "" && k.sharedPVC == "" {
		return usagef("--shared-dir needs --shared-pvc CLAIM: the volume the shards write to")
	}
	sel, err := k8s.ParseSelector(k.nodeSelector)
	if err != nil {
		return usagef("--node-selector: %v", err)
	}
	now := time.Now()
	startAt := now.Add(k.startLead).Truncate(time.Second)
	if f.shard.startAt != "" {
		if startAt, err = parseStartAt(f.shard.startAt); err != nil {
			return usagef("--start-at %q: %v", f.shard.startAt, err)
		}
	}
	name := k.jobName
	if name == "" {
		name = "nvmftest-bench-" + strconv.FormatInt(now.Unix(), 36)
	}
	spec := k8s.Spec{Name: name, Namespace: k.namespace, Image: k.image, PullPolicy: corev1.PullPolicy(k.pullPolicy),
		Shards: k.nodes, Split: string(split), StartAt: startAt, NodeSelector: sel, AntiAffinity: k8s.AntiAffinity(k.antiAffinity),
		HostNetwork: k.hostNetwork, ServiceAccount: k.serviceAccount, SharedPVC: k.sharedPVC,
		Requests: quantities("cpu", k.cpu, "memory", k.memory), Limits: quantities("cpu", k.cpuLim, "memory", k.memLim)}
	if spec.BenchArgs, spec.JobFiles, err = passThrough(cmd, f, files); err != nil {
		return err
	}
	timeout := k.timeout
	if timeout == 0 {
		if planned, ok := plannedRuntime(jobs); ok {
			timeout = k.startLead + planned + 10*time.Minute
		}
	}
	spec.ActiveDeadline = timeout
	var client k8s.Client
	if !k.dryRun {
		cs, ns, host, cerr := connectK8s(ctx, k.kubeconfig, k.context, 15*time.Second)
		if cerr != nil {
			if sig := interrupt.Signal(ctx); sig != nil {
				return signalError{"k8s: interrupted before the Job was made", sig}
			}
			return fmt.Errorf("--kubernetes: %v", cerr)
		}
		if spec.Namespace == "" {
			spec.Namespace = ns
		}
		fmt.Fprintf(errw, "nvmftest: Kubernetes API server %s, namespace %s\n", host, spec.Namespace)
		client = cs
	}
	job, err := k8s.BuildJob(spec)
	if err != nil {
		return usagef("--kubernetes: %v", err)
	}
	cm := k8s.BuildConfigMap(spec)
	objs := []runtime.Object{job}
	if cm != nil {
		objs = append(objs, cm)
	}
	if err := k8s.Validate(objs...); err != nil {
		return usagef("--kubernetes: the Job would be refused: %v", flatten(err.Error()))
	}
	if k.dryRun {
		y, err := k8s.ManifestYAML(job, cm)
		if err != nil {
			return err
		}
		_, err = out.Write(y)
		return err
	}
	return runK8sJob(ctx, cmd, f, client, job, cm, timeout)
}

func flatten(s string) string { return strings.Join(strings.Fields(s), " ") }

// runK8sJob runs the Job, merges the shards' results and writes the
// report directory (each shard's shard.json kept under shards/).
func runK8sJob(ctx context.Context, cmd *cobra.Command, f *benchFlags, client k8s.Client, job *batchv1.Job, cm *corev1.ConfigMap, timeout time.Duration) error {
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	k := &f.k8s
	dir := f.report
	if dir == "" {
		dir = job.Name
	}
	run, err := openRun(dir)
	if err != nil {
		return err
	}
	live := f.progress == "always" || f.progress == "auto" && isTerminal(errw)
	r := &k8s.Runner{Client: client, ScheduleTimeout: k.scheduleTimeout, Timeout: timeout, Keep: k.keep, SharedDir: k.sharedDir,
		OnProgress: func(p k8s.Progress) {
			if live {
				fmt.Fprintf(errw, "\r\033[K%s", p)
			} else {
				fmt.Fprintf(errw, "nvmftest: %s\n", p)
			}
		}}
	startAt := ""
	for _, a := range job.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--start-at="); ok {
			startAt = v
		}
	}
	fmt.Fprintf(errw, "nvmftest: Job %s/%s: %d shards start at %s\n", job.Namespace, job.Name, *job.Spec.Completions, startAt)
	oc, err := r.Run(ctx, job, cm)
	if live {
		fmt.Fprint(errw, "\r\033[K")
	}
	fate := "deleted"
	if k.keep {
		fate = "kept (--keep)"
	}
	if err != nil {
		if sig := interrupt.Signal(ctx); sig != nil {
			return signalError{fmt.Sprintf("k8s run interrupted (signal: %v): Job %s %s; no results", sig, job.Name, fate), sig}
		}
		return fmt.Errorf("k8s: %v; Job %s %s", err, job.Name, fate)
	}
	m, err := reports.MergeShards(oc.Shards)
	if err != nil {
		return fmt.Errorf("merge: %v", err)
	}
	if err := saveShards(dir, oc.Shards); err != nil {
		return err
	}
	for _, w := range m.Warnings {
		fmt.Fprintf(errw, "nvmftest: merge: warning: %s\n", w)
	}
	run.AddMerged(m)
	if err := loadgen.WriteOutput(out, m.Result, f.format); err != nil {
		return err
	}
	fmt.Fprintf(errw, "nvmftest: %d shards on nodes %s merged; Job %s %s\n", len(oc.Shards), strings.Join(oc.Nodes, ", "), job.Name, fate)
	return saveRun(errw, dir, run)
}

// saveShards keeps each shard's result as shards/shard-I.json, so the
// run can be merged again (nvmftest report merge DIR/shards/*).
func saveShards(dir string, shards []*reports.ShardResult) error {
	sd := filepath.Join(dir, "shards")
	for _, s := range shards {
		d := filepath.Join(sd, fmt.Sprintf("shard-%d", s.Shard))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("--report-dir: %v", err)
		}
		if err := s.WriteFile(d); err != nil {
			return fmt.Errorf("--report-dir: %v", err)
		}
	}
	return nil
}

// quantities is the resource map of the non-empty values.
func quantities(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

// plannedRuntime is what the jobs take when every one has a runtime.
func plannedRuntime(jobs []*loadgen.Job) (time.Duration, bool) {
	var planned, phase time.Duration
	for i, j := range jobs {
		if j.Runtime <= 0 {
			return 0, false
		}
		if i > 0 && j.Stonewall {
			planned += phase
			phase = 0
		}
		phase = max(phase, j.StartDelay+j.RampTime+j.Runtime)
	}
	return planned + phase, true
}

// passThrough is the bench command line each shard gets: every flag given
// here but those steering the Job or this host's output, the fio options
// in their order, and the job files as ConfigMap keys mounted in the pod.
func passThrough(cmd *cobra.Command, f *benchFlags, files []string) ([]string, map[string]string, error) {
	fio := map[string]bool{}
	for _, a := range f.fio {
		fio[a.name] = true
	}
	var args []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if k8sFlagNames[fl.Name] || notPassed[fl.Name] || fio[fl.Name] {
			return
		}
		if _, ok := fl.Value.(*fioFlag); ok {
			return
		}
		args = append(args, "--"+fl.Name+"="+fl.Value.String())
	})
	for _, a := range f.fio {
		args = append(args, "--"+a.name+"="+a.val)
	}
	var jobFiles map[string]string
	for i, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, usagef("job file %s: %v", file, err)
		}
		if jobFiles == nil {
			jobFiles = map[string]string{}
		}
		// Keys keep the order and survive two files of one name.
		key := fmt.Sprintf("%02d-%s", i, sanitizeKey(filepath.Base(file)))
		jobFiles[key] = string(b)
		args = append(args, k8s.JobFilesDir+"/"+key)
	}
	return args, jobFiles, nil
}

func sanitizeKey(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
