package cluster_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/cluster"
	"github.com/dubboreach/dubboreach/test/harness"
)

var env *harness.Env

func TestMain(m *testing.M) {
	var err error
	env, err = harness.StartEnv(harness.EnvOptions{})
	if err != nil {
		panic(err) // a missing prerequisite fails loudly, it is never skipped
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func block(name, cidr, node string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"cidr": cidr, "affinity": "host:" + node,
			"allocations": []any{}, "attributes": []any{}, "unallocated": []any{},
			"sequenceNumber": int64(0), "strictAffinity": false,
		},
	}}
	u.SetGroupVersionKind(cluster.IPAMBlockGVK)
	u.SetName(name)
	return u
}

func routeSet(s *routes.Store) string {
	var out []string
	for _, r := range s.Table().Routes {
		out = append(out, r.Node+" "+r.String())
	}
	return strings.Join(out, "; ")
}

// The table follows the cluster: node add, pod CIDR assignment, node delete and re-registration
// under a new UID, and, with Calico, block creation, reassignment and deletion.
func TestStoreFollowsCluster(t *testing.T) {
	ctx := harness.Context(t)
	c := env.Client
	fab := routes.DefaultFabric()
	fab.Source = routes.SourceNodes
	fab.Installed = []netip.Prefix{netip.MustParsePrefix("10.131.73.0/24")}
	store := routes.NewStore(fab, nil)

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	require.NoError(t, err)
	require.NoError(t, cluster.SetupWithManager(mgr, store))
	go func() { _ = mgr.Start(ctx) }()
	require.True(t, mgr.GetCache().WaitForCacheSync(ctx))

	eventually := func(want string) {
		t.Helper()
		require.Eventually(t, func() bool { return routeSet(store) == want }, 20*time.Second, 20*time.Millisecond, "want %q, have %q", want, routeSet(store))
	}

	n1 := harness.CreateNode(t, c, "node1", "10.131.10.0/24", "10.132.2.22")
	eventually("node1 10.131.10.0/24 via 10.132.2.22")
	v := store.Table().Check(netip.MustParseAddr("10.131.10.5"))
	assert.Equal(t, routes.ReasonUnpublishedPodRoute, v.Reason)
	assert.Equal(t, "node1", v.Node())

	// A node joins without a pod CIDR; the controller manager assigns one later.
	n2 := harness.CreateNode(t, c, "node2", "", "10.132.2.23")
	eventually("node1 10.131.10.0/24 via 10.132.2.22")
	n2.Spec.PodCIDR, n2.Spec.PodCIDRs = "10.131.73.0/24", []string{"10.131.73.0/24"}
	require.NoError(t, c.Update(ctx, n2))
	eventually("node1 10.131.10.0/24 via 10.132.2.22; node2 10.131.73.0/24 via 10.132.2.23")
	assert.Equal(t, routes.ReasonPublishedPodRoute, store.Table().Check(netip.MustParseAddr("10.131.73.9")).Reason)

	// node1 is deleted and registers again (new UID) with a new pod CIDR: no stale route.
	require.NoError(t, c.Delete(ctx, n1))
	eventually("node2 10.131.73.0/24 via 10.132.2.23")
	n1b := harness.CreateNode(t, c, "node1", "10.131.11.0/24", "10.132.2.22")
	require.NotEqual(t, n1.UID, n1b.UID)
	eventually("node1 10.131.11.0/24 via 10.132.2.22; node2 10.131.73.0/24 via 10.132.2.23")
	assert.Equal(t, routes.Unknown, store.Table().Check(netip.MustParseAddr("10.131.10.5")).Status)

	// Metrics read the same table.
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(cluster.NewCollector(store)))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP dubboreach_pod_routes Desired pod routes by state: published (the fabric carries them) or missing.
# TYPE dubboreach_pod_routes gauge
dubboreach_pod_routes{state="missing"} 1
dubboreach_pod_routes{state="published"} 1
`), "dubboreach_pod_routes"))
	assert.Equal(t, 2, testutil.CollectAndCount(cluster.NewCollector(store), "dubboreach_pod_route_nodes"))

	// Calico: switching the source to the IPAM blocks; a block moves from node1 to node2.
	store.SetFabric(&routes.Fabric{Source: routes.SourceCalico, NextHop: routes.NextHopInternalIP, Publish: routes.PublishStatic})
	b := block("10-233-64-0-26", "10.233.64.0/26", "node1")
	require.NoError(t, c.Create(ctx, b))
	eventually("node1 10.233.64.0/26 via 10.132.2.22")
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(b), b))
	require.NoError(t, unstructured.SetNestedField(b.Object, "host:node2", "spec", "affinity"))
	require.NoError(t, c.Update(ctx, b))
	eventually("node2 10.233.64.0/26 via 10.132.2.23")
	require.NoError(t, c.Delete(ctx, b))
	eventually("")
}

// One-shot reading for the CLI, including IPAM blocks through the real CRD.
func TestLoad(t *testing.T) {
	ctx := harness.Context(t)
	c := env.Client
	harness.CreateNode(t, c, "load-a", "10.50.0.0/24", "192.0.2.10")
	b := block("10-60-0-0-26", "10.60.0.0/26", "load-a")
	require.NoError(t, c.Create(ctx, b))
	t.Cleanup(func() { _ = c.Delete(context.Background(), b) })

	inv, err := cluster.Load(ctx, c)
	require.NoError(t, err)
	var names []string
	for _, n := range inv.Nodes {
		names = append(names, n.Name)
	}
	assert.Contains(t, names, "load-a")
	var found bool
	for _, bl := range inv.Blocks {
		if bl.Name == "10-60-0-0-26" {
			found = true
			assert.Equal(t, "load-a", bl.Node)
			assert.Equal(t, netip.MustParsePrefix("10.60.0.0/26"), bl.CIDR)
		}
	}
	assert.True(t, found, "block read through the CRD")
}
