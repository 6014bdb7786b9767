package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
)

// SetupWithManager registers h on the manager's webhook server at Path, behind
// LimitInFlight(maxInFlight). When h.Namespaces is nil, namespaces are read from the
// manager's cache and re-read from the API server when the cache disagrees with the API
// server's selector (RereadNamespaces); the namespace informer is started here, so that the
// first admission does not wait for a full namespace list. h.Log defaults to the manager's.
func SetupWithManager(mgr ctrl.Manager, h *Handler, maxInFlight int) error {
	if h.Namespaces == nil {
		if _, err := mgr.GetCache().GetInformer(context.Background(), &corev1.Namespace{}); err != nil {
			return fmt.Errorf("namespace informer: %w (the identity needs get/list/watch on namespaces)", err)
		}
		h.Namespaces = RereadNamespaces{
			Cache:     ReaderNamespaces{Reader: mgr.GetCache()},
			API:       ReaderNamespaces{Reader: mgr.GetAPIReader()},
			Disagreed: h.Metrics.NamespaceDisagreed,
		}
	}
	if h.Log.GetSink() == nil {
		h.Log = mgr.GetLogger().WithName("webhook")
	}
	mgr.GetWebhookServer().Register(Path, LimitInFlight(h, maxInFlight, h.Metrics))
	return nil
}
