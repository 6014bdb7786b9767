package clusters_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/clusters"
	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

// kubeconfig writes an admin kubeconfig for env and returns its path and current context.
func kubeconfig(t *testing.T, env *harness.Env, dir, name string) (string, string) {
	t.Helper()
	user, err := env.Environment.AddUser(envtest.User{Name: "audit-" + name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(p, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, cfg.CurrentContext
}

func runPod(t *testing.T, env *harness.Env, ns, name, node, hostIP, ip string) {
	t.Helper()
	harness.RunPod(t, env.Client, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: name}}}}, hostIP, ip)
}

func providerURL(hostPort, iface, extra string) string {
	u := "dubbo://" + hostPort + "/" + iface + "?application=" + strings.ToLower(iface[strings.LastIndex(iface, ".")+1:]) +
		"&dubbo=2.0.2&interface=" + iface + "&methods=get&side=provider"
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// TestOwnershipAcrossClusters: east and west (real API servers) both use 10.244.1.0/24 for a
// node; north (an inventory file) has a pod network of its own. One ZooKeeper holds
// registrations from all three and from VMs. Every verdict and cluster is as expected; an
// address whose cluster cannot be told is unknown/ambiguous-cluster and no correction plans
// anything for it, nor for west (correct: false) while its providers are alive.
func TestOwnershipAcrossClusters(t *testing.T) {
	ctx := harness.Context(t)
	dir := t.TempDir()
	east := harness.Envtest(t, harness.EnvOptions{})
	west := harness.Envtest(t, harness.EnvOptions{})

	for _, env := range []*harness.Env{east, west} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"dubboreach.io/inject": "enabled"}}}); err != nil {
			t.Fatal(err)
		}
	}
	harness.CreateNode(t, east.Client, "e-1", "10.244.1.0/24", "10.132.1.11")
	harness.CreateNode(t, east.Client, "e-2", "10.244.2.0/24", "10.132.1.12")
	runPod(t, east, "shop", "cart-e", "e-1", "10.132.1.11", "10.244.1.5")
	runPod(t, east, "shop", "dup-e", "e-1", "10.132.1.11", "10.244.1.9")
	harness.CreateNode(t, west.Client, "w-1", "10.244.1.0/24", "10.132.2.11")
	runPod(t, west, "shop", "cart-w", "w-1", "10.132.2.11", "10.244.1.6")
	runPod(t, west, "shop", "dup-w", "w-1", "10.132.2.11", "10.244.1.9")
	runPod(t, west, "shop", "users-w", "w-1", "10.132.2.11", "10.244.1.20")

	eastKC, eastCtx := kubeconfig(t, east, dir, "east")
	westKC, _ := kubeconfig(t, west, dir, "west")
	north := `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: n-1, uid: n-1}, spec: {podCIDRs: [10.50.1.0/24]}, status: {addresses: [{type: InternalIP, address: 10.132.3.11}]}}
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Pod, metadata: {name: cart-n, namespace: shop, uid: cart-n}, spec: {nodeName: n-1, containers: [{name: app, image: cart}]},
   status: {phase: Running, hostIP: 10.132.3.11, podIP: 10.50.1.5, podIPs: [{ip: 10.50.1.5}]}}
`
	if err := os.WriteFile(filepath.Join(dir, "north.yaml"), []byte(north), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "clusters.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`apiVersion: dubboreach.io/v1alpha1
kind: Clusters
spec:
  reachable: [10.132.0.0/16]
  unreachable: [172.17.0.0/16]
  clusters:
    - name: east
      kubeconfig: east.kubeconfig
      context: %s
      serviceCIDR: 10.96.0.0/12
      podRoutes: {source: nodes, publish: cni}
    - name: west
      kubeconfig: %s
      serviceCIDR: 10.96.0.0/12
      podRoutes: {source: nodes, publish: none}
      correct: false
    - name: north
      inventory: north.yaml
      podRoutes: {publish: static, installed: [10.50.1.0/24]}
`, eastCtx, westKC)), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = eastKC

	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	reg := func(persistent bool, addr, iface string) string {
		t.Helper()
		p, err := j.URL(persistent, "/dubbo", "providers", iface, providerURL(addr, iface, map[bool]string{true: "dynamic=false"}[persistent]))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	reg(false, "10.244.1.5:20880", "com.shop.Cart")       // east's cart-e
	reg(false, "10.244.1.6:20880", "com.shop.Cart")       // west's cart-w
	dup := reg(true, "10.244.1.9:20880", "com.shop.Dup")  // held by a pod of each: ambiguous
	gone := reg(true, "10.244.1.7:20880", "com.shop.Old") // held by none, in both pod networks
	staleEast := reg(true, "10.244.2.7:20880", "com.shop.Old")
	reg(false, "10.50.1.5:20880", "com.shop.Cart")                                             // north's cart-n
	reg(false, "10.132.9.9:20880", "com.shop.Cart")                                            // a VM
	reg(false, "172.17.0.2:20880", "com.shop.Cart")                                            // docker0 on some host
	reg(false, "10.96.0.10:20880", "com.shop.Cart")                                            // a ClusterIP
	wUsers := reg(true, "10.244.1.20:20880", "com.shop.Users")                                 // west's live pod, persistent
	if _, err := j.Instance("/services", "users", "10.244.1.20", 20880, "dubbo"); err != nil { // application level, west
		t.Fatal(err)
	}

	f, err := clusters.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	views, err := clusters.LoadViews(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := zk.Once(ctx, zk.Config{Options: zk.Options{Servers: z.Addr, SessionTimeout: 10 * time.Second, Log: logr.Discard()},
		ZKRoot: "/dubbo", ServicesRoot: "/services", ConnectTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := (&clusters.Judge{}).Judge(snap, views)
	if !r.Complete || !r.PodsKnown {
		t.Fatalf("complete %v, pods known %v", r.Complete, r.PodsKnown)
	}

	type want struct {
		cluster, candidates string
		verdict             routes.Status
		reason              routes.Reason
		node, pod           string
		stale               bool
	}
	wants := map[string]want{
		"interface 10.244.1.5":    {cluster: "east", verdict: routes.Reachable, reason: routes.ReasonPublishedPodRoute, node: "e-1", pod: "shop/cart-e"},
		"interface 10.244.1.6":    {cluster: "west", verdict: routes.Unreachable, reason: routes.ReasonUnpublishedPodRoute, node: "w-1", pod: "shop/cart-w"},
		"interface 10.244.1.9":    {candidates: "east,west", verdict: routes.Unknown, reason: clusters.ReasonAmbiguousCluster},
		"interface 10.244.1.7":    {candidates: "east,west", verdict: routes.Unknown, reason: clusters.ReasonAmbiguousCluster},
		"interface 10.244.2.7":    {cluster: "east", verdict: routes.Reachable, reason: routes.ReasonPublishedPodRoute, node: "e-2", stale: true},
		"interface 10.50.1.5":     {cluster: "north", verdict: routes.Reachable, reason: routes.ReasonPublishedPodRoute, node: "n-1", pod: "shop/cart-n"},
		"interface 10.132.9.9":    {verdict: routes.Reachable, reason: routes.ReasonExternalNetwork},
		"interface 172.17.0.2":    {verdict: routes.Unreachable, reason: routes.ReasonNeverReachable},
		"interface 10.96.0.10":    {verdict: routes.Unreachable, reason: routes.ReasonServiceNetwork},
		"interface 10.244.1.20":   {cluster: "west", verdict: routes.Unreachable, reason: routes.ReasonUnpublishedPodRoute, node: "w-1", pod: "shop/users-w"},
		"application 10.244.1.20": {cluster: "west", verdict: routes.Unreachable, reason: routes.ReasonUnpublishedPodRoute, node: "w-1", pod: "shop/users-w"},
	}
	if len(r.Providers) != len(wants) {
		t.Fatalf("%d providers, want %d: %+v", len(r.Providers), len(wants), r.Providers)
	}
	for _, p := range r.Providers {
		key := p.Kind + " " + p.Address
		w, ok := wants[key]
		if !ok {
			t.Errorf("unexpected provider %s", key)
			continue
		}
		got := want{cluster: p.Cluster, candidates: strings.Join(p.Candidates, ","), verdict: p.Verdict, reason: p.Reason, node: p.Node, pod: p.Pod, stale: p.Stale}
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v\n%s", key, got, w, p.Explanation)
		}
		if p.Reason == clusters.ReasonAmbiguousCluster && (!strings.Contains(p.Explanation, "never corrected") || p.PodName != "" || p.NoListener) {
			t.Errorf("%s: ambiguous finding maps to something or does not say it is never corrected: %+v", key, p)
		}
	}

	// Corrections, planned against the real ZooKeeper from what this auditor may correct. The
	// targets are made as the auditor's fixer makes them (internal/cli fixTargets).
	fc := clusters.ForCorrection(r, f.Corrects())
	var disable, prune []fix.Target
	for _, p := range fc.Providers {
		a := netip.MustParseAddr(p.Address)
		tg := fix.Target{Interface: p.Service, Version: p.Version, Group: p.Group, Application: p.Application, Protocol: p.Protocol,
			Znode: p.Path, Dynamic: !p.Persistent, Reason: string(p.Reason), Orphan: p.Stale && p.PodName == "", Address: netip.AddrPortFrom(a, uint16(p.Port))}
		if p.Kind == registry.KindInterface {
			if p.Verdict == routes.Unreachable || p.Stale {
				disable = append(disable, tg)
			}
			prune = append(prune, tg)
		}
	}
	c, err := zk.NewClient(zk.Options{Servers: z.Addr, SessionTimeout: 10 * time.Second, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	clock := fix.NewStaleness(time.Minute)
	clock.After = 0
	pp, err := fix.PlanPrune(c, true, prune, clock, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(pp.Changes) != 1 || pp.Changes[0].Path != staleEast {
		t.Errorf("prune plans %+v, want only east's orphan %s", pp.Changes, staleEast)
	}
	dp, err := fix.PlanDisable(c, true, disable, fix.DisableOptions{ConfigRoot: "/dubbo/config/dubbo", RegistryRoot: "/dubbo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range append(dp.Changes, pp.Changes...) {
		for _, never := range []string{"10.244.1.9", "10.244.1.7", "10.244.1.6", "10.244.1.20"} {
			if strings.Contains(ch.Provider, never+":") || strings.Contains(ch.AfterText, never+":") || strings.Contains(ch.Path, never) {
				t.Errorf("a correction touches %s (ambiguous, or west's live provider): %+v", never, ch)
			}
		}
	}
	// The control: judged against east alone (one cluster, as before), west's live persistent
	// provider is stale and prune would delete it. Ownership is what prevents that.
	alone := (&clusters.Judge{}).Judge(snap, views[:1])
	var wrong bool
	for _, p := range alone.Providers {
		wrong = wrong || p.Path == wUsers && p.Stale && p.PodName == "" && p.Persistent
	}
	if !wrong {
		t.Errorf("against east alone, west's live %s should look stale (the bug ownership prevents)", wUsers)
	}
	for _, p := range []string{dup, gone, wUsers} {
		if p == "" {
			t.Fatal("registrar returned no path")
		}
	}
	t.Logf("disable plans %d change(s), prune %d; ambiguous %s and %s, west's %s untouched", len(dp.Changes), len(pp.Changes), dup, gone, wUsers)
}
