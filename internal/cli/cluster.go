package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/routes/cluster"
)

// clusterFlags are the inputs every command that needs cluster state takes (DESIGN.md):
// --inventory FILE instead of a cluster, or --kubeconfig / in-cluster config; and --fabric.
type clusterFlags struct {
	inventory  string
	kubeconfig string
	fabric     string
	// bgpNamespace is where `dubboreach publish` keeps its status objects: under publish: bgp
	// they say which routes are announced.
	bgpNamespace string
}

func (f *clusterFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.inventory, "inventory", "", "read Nodes and Calico IPAM blocks from this file (kubectl get nodes,ipamblocks.crd.projectcalico.org -o yaml) instead of a cluster")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to read (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&f.fabric, "fabric", "", "fabric file: what the network outside the cluster reaches (default: nothing known, no route published)")
}

// registerBGP adds --bgp-status-namespace, for the commands that judge routes from a cluster.
func (f *clusterFlags) registerBGP(fs *pflag.FlagSet) {
	fs.StringVar(&f.bgpNamespace, "bgp-status-namespace", os.Getenv("POD_NAMESPACE"),
		"under podRoutes.publish: bgp, the namespace where `dubboreach publish` keeps its status objects (ConfigMap and Lease dubboreach-bgp), which say which routes are announced (default $POD_NAMESPACE)")
}

// bgpStatusNamespace is --bgp-status-namespace, required when the routes come from a cluster
// under publish: bgp: without it every route would read unpublished for want of looking.
func (f *clusterFlags) bgpStatusNamespace() (string, error) {
	if f.bgpNamespace == "" {
		return "", usageError(errors.New("the fabric says podRoutes.publish: bgp, and --bgp-status-namespace is empty: name the namespace `dubboreach publish` runs in (its ConfigMap and Lease dubboreach-bgp say what is announced), or set POD_NAMESPACE"))
	}
	return f.bgpNamespace, nil
}

// loadFabric reads --fabric, or returns the default fabric. Errors are usage errors (exit 2).
func (f *clusterFlags) loadFabric() (*routes.Fabric, error) {
	if f.fabric == "" {
		return routes.DefaultFabric(), nil
	}
	fab, err := routes.LoadFabric(f.fabric)
	if err != nil {
		return nil, usageError(err)
	}
	return fab, nil
}

// restConfig resolves --kubeconfig, $KUBECONFIG, ~/.kube/config, then in-cluster config.
func (f *clusterFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.kubeconfig != "" {
		rules.ExplicitPath = f.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, usageError(fmt.Errorf("no cluster to read: %w (pass --inventory FILE to work from a file, or --kubeconfig)", err))
	}
	return cfg, nil
}

// scheme is the client scheme shared by the commands.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	return s
}

// loadInventory reads --inventory, or the cluster once.
func (f *clusterFlags) loadInventory(ctx context.Context) (*routes.Inventory, error) {
	if f.inventory != "" {
		inv, err := routes.LoadInventory(f.inventory)
		if err != nil {
			return nil, usageError(err)
		}
		return inv, nil
	}
	cfg, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, usageError(fmt.Errorf("connecting to the cluster: %w", err))
	}
	inv, err := cluster.Load(ctx, c)
	if err != nil {
		return nil, usageError(err)
	}
	return inv, nil
}

// table loads the fabric and inventory and builds the route table once.
func (f *clusterFlags) table(ctx context.Context) (*routes.Table, *routes.Inventory, error) {
	fab, err := f.loadFabric()
	if err != nil {
		return nil, nil, err
	}
	inv, err := f.loadInventory(ctx)
	if err != nil {
		return nil, nil, err
	}
	var pub routes.Publisher
	if fab.Publish == routes.PublishBGP && f.inventory == "" {
		if pub, err = f.readBGPStatus(ctx); err != nil {
			return nil, nil, err
		}
	}
	return routes.Build(inv, fab, pub), inv, nil
}

// readBGPStatus reads the speaker's status objects once (publish: bgp, routes from a cluster).
func (f *clusterFlags) readBGPStatus(ctx context.Context) (routes.Publisher, error) {
	ns, err := f.bgpStatusNamespace()
	if err != nil {
		return nil, err
	}
	cfg, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, usageError(fmt.Errorf("connecting to the cluster: %w", err))
	}
	pub, err := bgp.ReadOnce(ctx, cs, ns)
	if err != nil {
		return nil, usageError(err)
	}
	return pub, nil
}
