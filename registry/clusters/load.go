package clusters

import (
	"context"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/routes/cluster"
)

// RestConfig returns the API server configuration of a cluster read from a kubeconfig or
// in-cluster; an inventory cluster has none.
func (c *Cluster) RestConfig() (*rest.Config, error) {
	switch {
	case c.InCluster:
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("cluster %s: inCluster: %w (is the auditor running in a pod? give this cluster a kubeconfig otherwise)", c.Name, err)
		}
		return cfg, nil
	case c.Kubeconfig != "":
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.Kubeconfig}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("cluster %s: kubeconfig %s (context %q): %w", c.Name, c.Kubeconfig, c.Context, err)
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("cluster %s is read from the inventory file %s, not an API server", c.Name, c.Inventory)
}

// LoadInventory reads the cluster's state once: Nodes, Calico IPAM blocks, Pods and Namespaces,
// from its inventory file or its API server.
func (c *Cluster) LoadInventory(ctx context.Context) (*routes.Inventory, error) {
	if c.Inventory != "" {
		inv, err := routes.LoadInventory(c.Inventory)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		return inv, nil
	}
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: connecting to %s: %w", c.Name, cfg.Host, err)
	}
	inv, err := cluster.Load(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("cluster %s (%s): %w", c.Name, cfg.Host, err)
	}
	pods, err := registry.LoadPods(ctx, cfg, s)
	if err != nil {
		return nil, fmt.Errorf("cluster %s (%s): %w", c.Name, cfg.Host, err)
	}
	inv.Pods, inv.Namespaces = pods.Pods, pods.Namespaces
	return inv, nil
}

// LoadViews reads every cluster of f once and returns its views for Judge (audit --once).
func LoadViews(ctx context.Context, f *File) ([]View, error) {
	views := make([]View, 0, len(f.Clusters))
	for i := range f.Clusters {
		v, _, err := f.Clusters[i].LoadView(ctx)
		if err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	return views, nil
}

// LoadView reads the cluster once: its inventory and, under podRoutes.publish: bgp from an API
// server, what its BGP speaker announces now. The inventory is returned for its notes
// (objects of other kinds it ignored).
func (c *Cluster) LoadView(ctx context.Context) (View, *routes.Inventory, error) {
	inv, err := c.LoadInventory(ctx)
	if err != nil {
		return View{}, nil, err
	}
	pub, err := c.Publisher(ctx)
	if err != nil {
		return View{}, nil, err
	}
	return ViewWith(c, inv, pub), inv, nil
}

// Publisher reads, once, what the cluster's BGP speaker announces (podRoutes.publish: bgp, a
// cluster read from an API server): its status objects in BGPStatusNamespace. Nil otherwise:
// the table then follows podRoutes (an inventory's routes under bgp read unpublished).
func (c *Cluster) Publisher(ctx context.Context) (routes.Publisher, error) {
	if c.Fabric == nil || c.Fabric.Publish != routes.PublishBGP || c.Inventory != "" {
		return nil, nil
	}
	ns := c.BGPStatusNamespace
	if ns == "" && c.InCluster {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		return nil, fmt.Errorf("cluster %s: podRoutes.publish: bgp, and neither bgpStatusNamespace nor $POD_NAMESPACE names where `dubboreach publish` keeps its status: set bgpStatusNamespace", c.Name)
	}
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: connecting to %s: %w", c.Name, cfg.Host, err)
	}
	pub, err := bgp.ReadOnce(ctx, cs, ns)
	if err != nil {
		return nil, fmt.Errorf("cluster %s (%s): %w", c.Name, cfg.Host, err)
	}
	return pub, nil
}

// ViewOf builds a cluster's view from its inventory, with no BGP status.
func ViewOf(c *Cluster, inv *routes.Inventory) View { return ViewWith(c, inv, nil) }

// ViewWith builds a cluster's view from its inventory and what its BGP speaker announces
// (nil: podRoutes alone decide).
func ViewWith(c *Cluster, inv *routes.Inventory, pub routes.Publisher) View {
	pods := registry.NewPodIndex()
	pods.Replace(inv)
	return View{Name: c.Name, Table: routes.Build(inv, c.Fabric, pub), Pods: pods.View()}
}
