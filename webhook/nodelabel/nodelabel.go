// Package nodelabel keeps the dubboreach.io/pod-route label on every Node in step with the
// routes core: "published" when the fabric carries all of the node's pod routes, else
// "missing". Pods that must register their pod IP (the webhook's --require-routable-node) are
// pinned to published nodes with a node affinity on this label.
package nodelabel

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/webhook"
)

// Routes is what the controller needs from the routes core; *routes.Store implements it.
type Routes interface {
	Table() *routes.Table
	// Changed is signalled after every change of the table (coalesced).
	Changed() <-chan struct{}
}

// Resync re-checks every node this often even without a signal, in case a change signal was
// consumed by another reader of the store.
const Resync = 2 * time.Minute

// Reconciler sets the label on one node.
type Reconciler struct {
	Client client.Client
	Routes Routes
}

// Desired is the label value for a node: published when every one of its pod routes is.
func Desired(t *routes.Table, node string) string {
	if st, ok := t.Node(node); ok && st.AllPublished() {
		return webhook.PodRoutePublished
	}
	return webhook.PodRouteMissing
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var node corev1.Node
	if err := r.Client.Get(ctx, req.NamespacedName, &node); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	want := Desired(r.Routes.Table(), node.Name)
	if node.Labels[webhook.LabelPodRoute] == want {
		return reconcile.Result{}, nil
	}
	// A merge patch of the one label: other labels (and concurrent writers of them) are untouched.
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, webhook.LabelPodRoute, want)
	if err := r.Client.Patch(ctx, &node, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("labelling node %s %s=%s: %w (the identity needs patch on nodes)", node.Name, webhook.LabelPodRoute, want, err)
	}
	ctrl.LoggerFrom(ctx).Info("labelled node", webhook.LabelPodRoute, want)
	return reconcile.Result{}, nil
}

// SetupWithManager runs the controller under leader election: on Node creation or label
// changes, and on every change of the route table (which is where a route becomes published).
func SetupWithManager(mgr ctrl.Manager, rt Routes) error {
	r := &Reconciler{Client: mgr.GetClient(), Routes: rt}
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodelabel").
		For(&corev1.Node{}, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			go followTable(ctx, rt, q)
			return nil
		})).
		Complete(r)
}

// followTable enqueues every node of the table when the table changes, and every Resync.
func followTable(ctx context.Context, rt Routes, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	tick := time.NewTicker(Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rt.Changed():
		case <-tick.C:
		}
		for _, n := range rt.Table().Nodes {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: n.Name}})
		}
	}
}
