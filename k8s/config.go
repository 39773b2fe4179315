package k8s

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Connect finds the cluster the usual way (kubectl's): --kubeconfig if
// given, else $KUBECONFIG, else ~/.kube/config, else the in-cluster
// service account; context picks a kubeconfig context. It returns the
// client, the namespace of the context (the default when it names none)
// and where it connects, and asks the API server its version (bounded by
// probe) so an unreachable cluster is one clear error before anything is
// created.
func Connect(ctx context.Context, kubeconfig, context_ string, probe time.Duration) (Client, string, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context_})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) || errors.Is(err, rest.ErrNotInCluster) {
			return nil, "", "", fmt.Errorf("no Kubernetes cluster configured: set KUBECONFIG or --kubeconfig, create ~/.kube/config, or run inside a cluster")
		}
		return nil, "", "", fmt.Errorf("kubeconfig: %v", oneLine(err.Error()))
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	cfg.Timeout = 0
	cs := &clients{}
	if cs.batch, err = batchv1client.NewForConfig(cfg); err == nil {
		cs.core, err = corev1client.NewForConfig(cfg)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("kubernetes client for %s: %v", cfg.Host, err)
	}
	pctx, cancel := context.WithTimeout(ctx, probe)
	defer cancel()
	if _, err := cs.core.RESTClient().Get().AbsPath("/version").Do(pctx).Raw(); err != nil {
		if ctx.Err() != nil {
			return nil, "", "", fmt.Errorf("%w while reaching the Kubernetes API server at %s", ErrInterrupted, cfg.Host)
		}
		return nil, "", "", fmt.Errorf("no Kubernetes API server answered at %s: %v (check KUBECONFIG, --context and 'kubectl cluster-info')", cfg.Host, oneLine(err.Error()))
	}
	return cs, ns, cfg.Host, nil
}

// clients are the two typed clients a Runner needs.
type clients struct {
	batch *batchv1client.BatchV1Client
	core  *corev1client.CoreV1Client
}

func (c *clients) BatchV1() batchv1client.BatchV1Interface { return c.batch }
func (c *clients) CoreV1() corev1client.CoreV1Interface    { return c.core }
