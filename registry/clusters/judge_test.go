package clusters

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
)

func pod(ns, name, node, hostIP, ip string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name)},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, HostIP: hostIP, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

func node(name, cidr, ip string) routes.Node {
	return routes.Node{Name: name, UID: name, PodCIDRs: []netip.Prefix{netip.MustParsePrefix(cidr)}, InternalIPs: []netip.Addr{netip.MustParseAddr(ip)}}
}

func provider(addr string, persistent bool) zk.Entry {
	u := "dubbo://" + addr + "/com.shop.Cart?application=cart&interface=com.shop.Cart&side=provider"
	if persistent {
		u += "&dynamic=false"
	}
	return zk.Entry{Kind: zk.KindProvider, Dir: "/dubbo/com.shop.Cart/providers", Name: url.QueryEscape(u)}
}

// twoClusters: east publishes its pod routes (cni), west publishes none; both use 10.244.1.0/24
// for their first node.
func twoClusters(t *testing.T, eastPods, westPods []corev1.Pod) []View {
	t.Helper()
	f, err := Parse("c.yaml", []byte(`apiVersion: dubboreach.io/v1alpha1
kind: Clusters
spec:
  reachable: [10.132.0.0/16]
  unreachable: [172.17.0.0/16]
  clusters:
    - {name: east, inventory: e.yaml, podRoutes: {publish: cni}}
    - {name: west, inventory: w.yaml, podRoutes: {publish: none}, correct: false}
`))
	require.NoError(t, err)
	east := &routes.Inventory{Nodes: []routes.Node{node("e-1", "10.244.1.0/24", "10.132.1.11"), node("e-2", "10.244.2.0/24", "10.132.1.12")}, Pods: eastPods}
	west := &routes.Inventory{Nodes: []routes.Node{node("w-1", "10.244.1.0/24", "10.132.2.11")}, Pods: westPods}
	return []View{ViewOf(&f.Clusters[0], east), ViewOf(&f.Clusters[1], west)}
}

func TestJudge(t *testing.T) {
	views := twoClusters(t,
		[]corev1.Pod{pod("shop", "cart-e", "e-1", "10.132.1.11", "10.244.1.5"), pod("shop", "both-e", "e-1", "10.132.1.11", "10.244.1.9")},
		[]corev1.Pod{pod("shop", "cart-w", "w-1", "10.132.2.11", "10.244.1.6"), pod("shop", "both-w", "w-1", "10.132.2.11", "10.244.1.9")})
	snap := zk.Snapshot{Complete: true, Connected: true, Scanned: true, Entries: []zk.Entry{
		provider("10.244.1.5:20880", false), // east's pod
		provider("10.244.1.6:20880", false), // west's pod
		provider("10.244.1.9:20880", false), // a pod of each holds it
		provider("10.244.1.7:20880", true),  // no pod holds it: stale, but whose?
		provider("10.244.2.7:20880", true),  // east's e-2 only: stale in east
		provider("10.132.9.9:20880", false), // a VM
		provider("172.17.0.2:20880", false), // docker0
	}}
	j := &Judge{}
	r := j.Judge(snap, views)
	require.Len(t, r.Providers, 7)
	type want struct {
		cluster    string
		candidates []string
		status     routes.Status
		reason     routes.Reason
		node, pod  string
		stale      bool
		explain    string
	}
	wants := []want{
		{cluster: "east", status: routes.Reachable, reason: routes.ReasonPublishedPodRoute, node: "e-1", pod: "shop/cart-e"},
		{cluster: "west", status: routes.Unreachable, reason: routes.ReasonUnpublishedPodRoute, node: "w-1", pod: "shop/cart-w"},
		{candidates: []string{"east", "west"}, status: routes.Unknown, reason: ReasonAmbiguousCluster,
			explain: "10.244.1.9 could belong to cluster east (node e-1), cluster west (node w-1); a pod of each of east and west holds it now"},
		{candidates: []string{"east", "west"}, status: routes.Unknown, reason: ReasonAmbiguousCluster, explain: "no pod of any of them holds it now (it looks stale)"},
		{cluster: "east", status: routes.Reachable, reason: routes.ReasonPublishedPodRoute, node: "e-2", stale: true, explain: "Cluster east: No pod has IP 10.244.2.7"},
		{status: routes.Reachable, reason: routes.ReasonExternalNetwork},
		{status: routes.Unreachable, reason: routes.ReasonNeverReachable},
	}
	for i, w := range wants {
		f := r.Providers[i]
		assert.Equal(t, w.cluster, f.Cluster, "%d %s cluster", i, f.Address)
		assert.Equal(t, w.candidates, f.Candidates, "%d %s candidates", i, f.Address)
		assert.Equal(t, w.status, f.Verdict, "%d %s", i, f.Address)
		assert.Equal(t, w.reason, f.Reason, "%d %s", i, f.Address)
		assert.Equal(t, w.node, f.Node, "%d %s", i, f.Address)
		assert.Equal(t, w.pod, f.Pod, "%d %s", i, f.Address)
		assert.Equal(t, w.stale, f.Stale, "%d %s", i, f.Address)
		assert.Contains(t, f.Explanation, w.explain, "%d %s", i, f.Address)
		if f.Reason == ReasonAmbiguousCluster {
			assert.Nil(t, f.MissingRoute)
			assert.Empty(t, f.PodUID)
			assert.False(t, f.NoListener)
			assert.Contains(t, f.Explanation, "never corrected")
		}
	}
	assert.Equal(t, registry.Summary{Total: 7, Reachable: 3, Unreachable: 2, Unknown: 2}, r.Summary)
	assert.True(t, r.Complete)
	assert.True(t, r.PodsKnown)

	// Judging again (caches warm) gives the same.
	again := j.Judge(snap, views)
	assert.Equal(t, r.Providers, again.Providers)

	// Corrections: never the ambiguous ones, never west's (correct: false); east's and the VMs' stay.
	f, err := Parse("c.yaml", []byte("apiVersion: dubboreach.io/v1alpha1\nkind: Clusters\nspec:\n  clusters:\n    - {name: east, inventory: e}\n    - {name: west, inventory: w, correct: false}\n"))
	require.NoError(t, err)
	fc := ForCorrection(r, f.Corrects())
	var kept []string
	for _, p := range fc.Providers {
		kept = append(kept, p.Address)
	}
	assert.Equal(t, []string{"10.244.1.5", "10.244.2.7", "10.132.9.9", "172.17.0.2"}, kept)
	assert.Len(t, r.Providers, 7, "ForCorrection does not modify its input")
}

func TestJudgeIncompletePods(t *testing.T) {
	views := twoClusters(t, nil, nil)
	views[1].Pods = nil // west's pods unknown
	snap := zk.Snapshot{Complete: true, Entries: []zk.Entry{provider("10.244.1.7:20880", true)}}
	r := (&Judge{}).Judge(snap, views)
	f := r.Providers[0]
	assert.Equal(t, ReasonAmbiguousCluster, f.Reason)
	assert.False(t, f.Stale)
	assert.Contains(t, f.Explanation, "the pod list of west is not complete")
	assert.False(t, r.PodsKnown)
}
