// Package cluster feeds the routes core from a live cluster: a one-shot read for the CLI, and
// informers that keep a routes.Store current for the long-running webhook and auditor.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/routes"
)

// IPAMBlockGVK is Calico's IPAM block kind.
var IPAMBlockGVK = schema.GroupVersionKind{Group: routes.CalicoGroup, Version: routes.CalicoVersion, Kind: routes.IPAMBlockKind}

// Load reads Nodes and, where the CRD exists, Calico IPAM blocks once.
func Load(ctx context.Context, c client.Reader) (*routes.Inventory, error) {
	inv := &routes.Inventory{}
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("listing nodes: %w (the identity needs get/list/watch on nodes)", err)
	}
	for i := range nodes.Items {
		inv.Nodes = append(inv.Nodes, routes.NodeFromObject(&nodes.Items[i]))
	}
	blocks := &unstructured.UnstructuredList{}
	blocks.SetGroupVersionKind(IPAMBlockGVK.GroupVersion().WithKind(IPAMBlockGVK.Kind + "List"))
	err := c.List(ctx, blocks)
	switch {
	case meta.IsNoMatchError(err):
		// Not a Calico cluster.
	case err != nil:
		return nil, fmt.Errorf("listing Calico ipamblocks: %w", err)
	default:
		for i := range blocks.Items {
			b, err := blockFrom(&blocks.Items[i])
			if err != nil {
				return nil, err
			}
			inv.Blocks = append(inv.Blocks, b)
		}
	}
	return inv, nil
}

func blockFrom(u *unstructured.Unstructured) (routes.Block, error) {
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return routes.Block{}, err
	}
	b, err := routes.BlockFromJSON(raw)
	if err != nil {
		return routes.Block{}, fmt.Errorf("IPAMBlock %s: %w", u.GetName(), err)
	}
	return b, nil
}

// SetupWithManager keeps store current from the manager's cache: Nodes always, Calico IPAM
// blocks when the cluster serves that CRD. Events are applied straight to the store (keyed by
// node UID); the store rebuilds its table lazily, so a burst of events costs one build.
func SetupWithManager(mgr ctrl.Manager, store *routes.Store) error {
	ctx := context.Background()
	log := mgr.GetLogger().WithName("routes")
	inf, err := mgr.GetCache().GetInformer(ctx, &corev1.Node{})
	if err != nil {
		return fmt.Errorf("node informer: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { upsertNode(store, obj) },
		UpdateFunc: func(_, obj any) { upsertNode(store, obj) },
		DeleteFunc: func(obj any) {
			if n := asNode(obj); n != nil {
				store.DeleteNode(string(n.UID))
			}
		},
	}); err != nil {
		return err
	}

	if _, err := mgr.GetRESTMapper().RESTMapping(IPAMBlockGVK.GroupKind(), IPAMBlockGVK.Version); err != nil {
		if meta.IsNoMatchError(err) {
			log.Info("Calico IPAMBlock CRD not served; reading pod CIDRs from Nodes only")
			return nil
		}
		return fmt.Errorf("looking up Calico IPAMBlock: %w", err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(IPAMBlockGVK)
	binf, err := mgr.GetCache().GetInformer(ctx, u)
	if err != nil {
		return fmt.Errorf("ipamblock informer: %w", err)
	}
	upsertBlock := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		b, err := blockFrom(u)
		if err != nil {
			log.Error(err, "ignoring unreadable IPAM block")
			return
		}
		store.UpsertBlock(b)
	}
	_, err = binf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    upsertBlock,
		UpdateFunc: func(_, obj any) { upsertBlock(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				store.DeleteBlock(u.GetName())
			}
		},
	})
	return err
}

func upsertNode(store *routes.Store, obj any) {
	if n := asNode(obj); n != nil {
		store.UpsertNode(routes.NodeFromObject(n))
	}
}

func asNode(obj any) *corev1.Node {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, _ := obj.(*corev1.Node)
	return n
}
