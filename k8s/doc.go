// Package k8s runs a sharded nvmftest load on Kubernetes: one Indexed Job
// whose pods (one per shard, on different nodes) each run
// `nvmftest bench --shard $(JOB_COMPLETION_INDEX)/N` against the target,
// all starting at one wall-clock moment. The Runner creates the Job,
// follows its pods (pending, scheduled, running, done), collects every
// shard's result from its pod log (or from a shared volume) and deletes
// the Job; reports.MergeShards combines the results.
//
// Everything goes through client-go and the typed objects of k8s.io/api;
// BuildJob's Job is what --dry-run prints as YAML, and Validate checks it
// against the API's own schema (the one client-go's apply configurations
// carry) and the Job rules a cluster enforces.
package k8s
