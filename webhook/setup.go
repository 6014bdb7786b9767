package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
)

// SetupWithManager registers the admission handler on the manager's webhook server at Path.
// Namespaces are read from the manager's cache unless ns is given; the namespace informer is
// started here, so that the first admission does not wait for a full namespace list.
// ready, if not nil, gates admissions (see Handler.Ready).
func SetupWithManager(mgr ctrl.Manager, in *Injector, ns NamespaceGetter, m *Metrics, ready func() error) error {
	if ns == nil {
		if _, err := mgr.GetCache().GetInformer(context.Background(), &corev1.Namespace{}); err != nil {
			return fmt.Errorf("namespace informer: %w (the identity needs get/list/watch on namespaces)", err)
		}
		ns = ReaderNamespaces{Reader: mgr.GetCache()}
	}
	mgr.GetWebhookServer().Register(Path, &Handler{Injector: in, Namespaces: ns, Metrics: m, Log: mgr.GetLogger().WithName("webhook"), Ready: ready})
	return nil
}
