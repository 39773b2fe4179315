package k8s

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/job.golden.yaml")

// schemaCheck converts o to a typed value of the API's schema (the
// OpenAPI-derived one client-go carries for server-side apply): unknown
// fields and wrong types fail, as a cluster's field validation would.
func schemaCheck(o runtime.Object) error {
	_, err := applyconfigurations.NewTypeConverter(scheme.Scheme).ObjectToTyped(o)
	return err
}

func TestManifestGolden(t *testing.T) {
	spec := testSpec()
	spec.HostNetwork = true
	spec.NodeSelector = map[string]string{"nvmftest.io/load": "yes"}
	spec.SharedPVC = "bench-results"
	spec.Limits = map[string]string{"memory": "1Gi"}
	job, err := BuildJob(spec)
	if err != nil {
		t.Fatal(err)
	}
	y, err := ManifestYAML(job, BuildConfigMap(spec))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "job.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, y, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(y) != string(want) {
		t.Errorf("manifest differs from %s (go test ./k8s -run Golden -update after checking the change):\n%s", golden, y)
	}
}

// TestManifestRoundTrip: the YAML --dry-run prints decodes strictly into
// the k8s.io/api types as the same objects, which pass the API schema and
// Validate; the Job is the Indexed Job the issue asks for.
func TestManifestRoundTrip(t *testing.T) {
	for _, mod := range []func(*Spec){
		func(*Spec) {},
		func(s *Spec) { s.HostNetwork, s.AntiAffinity, s.JobFiles = true, AntiAffinityPreferred, nil },
		func(s *Spec) { s.SharedPVC, s.ActiveDeadline, s.AntiAffinity = "results", 90e9, AntiAffinityNone },
	} {
		spec := testSpec()
		mod(&spec)
		job, err := BuildJob(spec)
		if err != nil {
			t.Fatal(err)
		}
		cm := BuildConfigMap(spec)
		y, err := ManifestYAML(job, cm)
		if err != nil {
			t.Fatal(err)
		}
		docs := strings.Split(string(y), "---\n")
		var gotJob batchv1.Job
		if err := yaml.UnmarshalStrict([]byte(docs[len(docs)-1]), &gotJob); err != nil {
			t.Fatalf("the Job's YAML does not decode strictly: %v", err)
		}
		if !reflect.DeepEqual(&gotJob, job) {
			t.Errorf("the Job changed in the round trip:\n%s", docs[len(docs)-1])
		}
		objs := []runtime.Object{&gotJob}
		if cm != nil {
			var gotCM corev1.ConfigMap
			if err := yaml.UnmarshalStrict([]byte(docs[0]), &gotCM); err != nil || !reflect.DeepEqual(&gotCM, cm) {
				t.Errorf("the ConfigMap changed in the round trip (%v):\n%s", err, docs[0])
			}
			objs = append(objs, &gotCM)
		}
		for _, o := range objs {
			if err := schemaCheck(o); err != nil {
				t.Errorf("%T does not match the API schema: %v", o, err)
			}
		}
		if err := Validate(objs...); err != nil {
			t.Errorf("Validate: %v", err)
		}
		s := gotJob.Spec
		if *s.CompletionMode != batchv1.IndexedCompletion || *s.Completions != 3 || *s.Parallelism != 3 || *s.BackoffLimit != 0 {
			t.Errorf("not an Indexed Job of 3 at once without retries: %+v", s)
		}
		c := s.Template.Spec.Containers[0]
		if !slicesContain(c.Args, "--shard=$(JOB_COMPLETION_INDEX)/3") || c.Env[0].Name != "JOB_COMPLETION_INDEX" {
			t.Errorf("the pods do not take their shard from the completion index: %v %v", c.Args, c.Env)
		}
		if s.Template.Spec.HostNetwork != spec.HostNetwork {
			t.Errorf("hostNetwork %v, want %v", s.Template.Spec.HostNetwork, spec.HostNetwork)
		}
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestValidateRefuses: the checks catch what a cluster would refuse.
func TestValidateRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		mod  func(*batchv1.Job)
		want string
	}{
		"restart Always":    {func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }, "restartPolicy"},
		"not indexed":       {func(j *batchv1.Job) { j.Spec.CompletionMode = ptr.To(batchv1.NonIndexedCompletion) }, "completionMode"},
		"parallelism":       {func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To(int32(1)) }, "parallelism"},
		"name too long":     {func(j *batchv1.Job) { j.Name = strings.Repeat("a", 64) }, "metadata.name"},
		"bad label":         {func(j *batchv1.Job) { j.Spec.Template.Labels["bad key!"] = "x" }, "labels"},
		"bad node selector": {func(j *batchv1.Job) { j.Spec.Template.Spec.NodeSelector = map[string]string{"a": "b c"} }, "nodeSelector"},
		"mount without vol": {func(j *batchv1.Job) { j.Spec.Template.Spec.Volumes = j.Spec.Template.Spec.Volumes[:1] }, "volumeMounts"},
		"request over limit": {func(j *batchv1.Job) {
			j.Spec.Template.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"cpu": resource.MustParse("500m")}
		}, "requests"},
	} {
		t.Run(name, func(t *testing.T) {
			job, err := BuildJob(testSpec())
			if err != nil {
				t.Fatal(err)
			}
			c.mod(job)
			err = Validate(job)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error about %s", err, c.want)
			}
		})
	}
	// The schema check refuses a field the API does not have.
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"name": "x"}, "spec": map[string]any{"completionsMode": "Indexed"}}}
	if err := schemaCheck(u); err == nil || !strings.Contains(err.Error(), "completionsMode") {
		t.Errorf("a misspelt field passed the schema check: %v", err)
	}
}

func TestBuildJobRefuses(t *testing.T) {
	for name, mod := range map[string]func(*Spec){
		"no image":     func(s *Spec) { s.Image = "" },
		"no shards":    func(s *Spec) { s.Shards = 0 },
		"bad quantity": func(s *Spec) { s.Requests = map[string]string{"cpu": "two"} },
		"affinity":     func(s *Spec) { s.AntiAffinity = "sometimes" },
	} {
		spec := testSpec()
		mod(&spec)
		if _, err := BuildJob(spec); err == nil {
			t.Errorf("%s: BuildJob took it", name)
		}
	}
}
