package k8s

import (
	"errors"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks objects the way a cluster would before it takes them,
// as far as libraries outside k8s.io/kubernetes allow: metadata passes
// apimachinery's object meta, label and annotation validation, and a Job
// the Indexed Job rules of the API server's batch validation that
// BuildJob relies on (restart policy, completions and parallelism, no
// selector, names of containers, volumes and environment variables, mounts
// of declared volumes, requests within limits). The kube-apiserver's own
// validation (k8s.io/kubernetes/pkg/apis/batch/validation) is not a
// library a module can import. The tests also convert the objects to
// typed values of the API's OpenAPI-derived schema (client-go's
// applyconfigurations.NewTypeConverter); the binary leaves that schema
// out (it is megabytes).
func Validate(objs ...runtime.Object) error {
	var errs []error
	for _, o := range objs {
		switch o := o.(type) {
		case *batchv1.Job:
			errs = append(errs, validateJob(o).ToAggregate())
		case *corev1.ConfigMap:
			el := apivalidation.ValidateObjectMeta(&o.ObjectMeta, o.Namespace != "", apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
			for k := range o.Data {
				for _, msg := range validation.IsConfigMapKey(k) {
					el = append(el, field.Invalid(field.NewPath("data").Key(k), k, msg))
				}
			}
			errs = append(errs, el.ToAggregate())
		}
	}
	return errors.Join(errs...)
}

func validateJob(j *batchv1.Job) field.ErrorList {
	// A Job's name becomes its pods' job-name label: at most 63
	// characters (the API server's rule for Jobs).
	// An empty namespace is kubectl's current one.
	el := apivalidation.ValidateObjectMeta(&j.ObjectMeta, j.Namespace != "", func(name string, prefix bool) []string {
		return validation.IsDNS1123Label(name)
	}, field.NewPath("metadata"))
	el = append(el, metav1validation.ValidateLabels(j.Labels, field.NewPath("metadata", "labels"))...)
	sp := field.NewPath("spec")
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		el = append(el, field.Required(sp.Child("completionMode"), "Indexed: each pod is one shard"))
	}
	if s.Completions == nil {
		el = append(el, field.Required(sp.Child("completions"), "an Indexed Job needs completions"))
	} else if *s.Completions < 1 || *s.Completions > 100000 {
		el = append(el, field.Invalid(sp.Child("completions"), *s.Completions, "1 to 100000 for an Indexed Job"))
	}
	if s.Parallelism != nil && s.Completions != nil && *s.Parallelism != *s.Completions {
		el = append(el, field.Invalid(sp.Child("parallelism"), *s.Parallelism, "all shards run at once: parallelism = completions"))
	}
	if s.Selector != nil {
		el = append(el, field.Forbidden(sp.Child("selector"), "the Job controller makes it (manualSelector is not used)"))
	}
	tp := sp.Child("template")
	el = append(el, metav1validation.ValidateLabels(s.Template.Labels, tp.Child("metadata", "labels"))...)
	ps := s.Template.Spec
	pp := tp.Child("spec")
	if ps.RestartPolicy != corev1.RestartPolicyNever && ps.RestartPolicy != corev1.RestartPolicyOnFailure {
		el = append(el, field.NotSupported(pp.Child("restartPolicy"), ps.RestartPolicy, []string{"Never", "OnFailure"}))
	}
	if len(ps.Containers) == 0 {
		el = append(el, field.Required(pp.Child("containers"), ""))
	}
	vols := map[string]bool{}
	for i, v := range ps.Volumes {
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			el = append(el, field.Invalid(pp.Child("volumes").Index(i).Child("name"), v.Name, msg))
		}
		vols[v.Name] = true
	}
	for k, v := range ps.NodeSelector {
		el = append(el, metav1validation.ValidateLabels(map[string]string{k: v}, pp.Child("nodeSelector"))...)
	}
	if ps.HostNetwork && ps.DNSPolicy != "" && ps.DNSPolicy != corev1.DNSClusterFirstWithHostNet && ps.DNSPolicy != corev1.DNSDefault {
		el = append(el, field.Invalid(pp.Child("dnsPolicy"), ps.DNSPolicy, "with hostNetwork use ClusterFirstWithHostNet"))
	}
	for i, c := range ps.Containers {
		cp := pp.Child("containers").Index(i)
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			el = append(el, field.Invalid(cp.Child("name"), c.Name, msg))
		}
		if strings.TrimSpace(c.Image) == "" {
			el = append(el, field.Required(cp.Child("image"), ""))
		}
		for ei, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				el = append(el, field.Invalid(cp.Child("env").Index(ei).Child("name"), e.Name, msg))
			}
		}
		for mi, m := range c.VolumeMounts {
			if !vols[m.Name] {
				el = append(el, field.NotFound(cp.Child("volumeMounts").Index(mi).Child("name"), m.Name))
			}
		}
		for name, q := range c.Resources.Requests {
			if l, ok := c.Resources.Limits[name]; ok && q.Cmp(l) > 0 {
				el = append(el, field.Invalid(cp.Child("resources", "requests").Key(string(name)), q.String(), "must be less than or equal to the limit "+l.String()))
			}
		}
	}
	return el
}
