package k8s_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/nvmftest/nvmftest/k8s"
)

// The Job of a load from 8 nodes, as --dry-run prints it.
func ExampleBuildJob() {
	spec := k8s.Spec{Name: "nvmftest-array", Namespace: "load", Image: "registry.example/nvmftest:v1", Shards: 8,
		StartAt:   time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC),
		BenchArgs: []string{"--traddr=10.0.0.5", "--nqn=nqn.2014-08.com.example:array", "--rw=randread", "--numjobs=8", "--runtime=60", "--time_based=1"}}
	job, err := k8s.BuildJob(spec)
	if err != nil {
		panic(err)
	}
	if err := k8s.Validate(job); err != nil {
		panic(err)
	}
	y, _ := k8s.ManifestYAML(job, nil)
	for _, l := range strings.Split(string(y), "\n") {
		if strings.Contains(l, "completion") || strings.Contains(l, "parallelism") || strings.Contains(l, "--shard=") {
			fmt.Println(strings.TrimSpace(l))
		}
	}
	// Output:
	// completionMode: Indexed
	// completions: 8
	// parallelism: 8
	// - --shard=$(JOB_COMPLETION_INDEX)/8
	// fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
}
