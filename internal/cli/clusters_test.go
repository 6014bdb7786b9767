package cli

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/registry/lock"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/test/harness"
)

// clustersKubeconfig writes an admin kubeconfig of env into dir and returns its path and context.
func clustersKubeconfig(t *testing.T, env *harness.Env, dir, name string) (string, string) {
	t.Helper()
	user, err := env.Environment.AddUser(envtest.User{Name: "audit-" + name, Groups: []string{"system:masters"}}, nil)
	require.NoError(t, err)
	kc, err := user.KubeConfig()
	require.NoError(t, err)
	cfg, err := clientcmd.Load(kc)
	require.NoError(t, err)
	p := filepath.Join(dir, name+".kubeconfig")
	require.NoError(t, os.WriteFile(p, kc, 0o600))
	return p, cfg.CurrentContext
}

// northInventory is a third cluster read from a file: node n-1's pod route is installed on the
// gateway, n-2's is not.
const northInventory = `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: n-1, uid: n-1}, spec: {podCIDRs: [10.50.1.0/24]}, status: {addresses: [{type: InternalIP, address: 10.132.3.11}]}}
- {apiVersion: v1, kind: Node, metadata: {name: n-2, uid: n-2}, spec: {podCIDRs: [10.50.2.0/24]}, status: {addresses: [{type: InternalIP, address: 10.132.3.12}]}}
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Pod, metadata: {name: cart-n, namespace: shop, uid: cart-n}, spec: {nodeName: n-1, containers: [{name: app, image: cart}]},
   status: {phase: Running, hostIP: 10.132.3.11, podIP: 10.50.1.5, podIPs: [{ip: 10.50.1.5}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: pay-n, namespace: shop, uid: pay-n}, spec: {nodeName: n-2, containers: [{name: app, image: pay}]},
   status: {phase: Running, hostIP: 10.132.3.12, podIP: 10.50.2.5, podIPs: [{ip: 10.50.2.5}]}}
`

// clustersFile is the clusters file of the fixture; west's correct is the parameter.
const clustersFile = `apiVersion: dubboreach.io/v1alpha1
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
      kubeconfig: west.kubeconfig
      serviceCIDR: 10.96.0.0/12
      podRoutes: {source: nodes, publish: none}
      correct: %v
    - name: north
      inventory: north.yaml
      podRoutes: {publish: static, installed: [10.50.1.0/24]}
`

// clustersFixture: east and west are real API servers that both give 10.244.1.0/24 to a node;
// north is an inventory. Returns the clusters file (west correct: false) and the same file
// with west correct: true.
func clustersFixture(t *testing.T) (file, westCorrects string) {
	t.Helper()
	ctx := harness.Context(t)
	dir := t.TempDir()
	east := harness.Envtest(t, harness.EnvOptions{})
	west := harness.Envtest(t, harness.EnvOptions{})
	for _, env := range []*harness.Env{east, west} {
		require.NoError(t, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}))
	}
	pod := func(env *harness.Env, name, node, hostIP, ip string) {
		harness.RunPod(t, env.Client, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: name}}}}, hostIP, ip)
	}
	harness.CreateNode(t, east.Client, "e-1", "10.244.1.0/24", "10.132.1.11")
	harness.CreateNode(t, east.Client, "e-2", "10.244.2.0/24", "10.132.1.12")
	pod(east, "cart-e", "e-1", "10.132.1.11", "10.244.1.5")
	pod(east, "dup-e", "e-1", "10.132.1.11", "10.244.1.9")
	harness.CreateNode(t, west.Client, "w-1", "10.244.1.0/24", "10.132.2.11")
	pod(west, "cart-w", "w-1", "10.132.2.11", "10.244.1.6")
	pod(west, "dup-w", "w-1", "10.132.2.11", "10.244.1.9")
	pod(west, "users-w", "w-1", "10.132.2.11", "10.244.1.20")

	_, eastCtx := clustersKubeconfig(t, east, dir, "east")
	clustersKubeconfig(t, west, dir, "west")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "north.yaml"), []byte(northInventory), 0o600))
	file, westCorrects = filepath.Join(dir, "clusters.yaml"), filepath.Join(dir, "clusters-west-corrects.yaml")
	require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf(clustersFile, eastCtx, false)), 0o600))
	require.NoError(t, os.WriteFile(westCorrects, []byte(fmt.Sprintf(clustersFile, eastCtx, true)), 0o600))
	return file, westCorrects
}

// TestClusters runs check and audit --once with --clusters against two real API servers whose
// pod networks overlap, an inventory cluster and a real ZooKeeper: every registration names
// its cluster, those whose cluster cannot be told are unknown/ambiguous-cluster with their
// candidates, exit statuses are the contract's, and --fix (planned and applied) never touches
// an ambiguous registration or a live provider of a cluster this auditor does not correct.
func TestClusters(t *testing.T) {
	file, westCorrects := clustersFixture(t)
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	provider := func(hostPort, iface, extra string) string {
		u := "dubbo://" + hostPort + "/" + iface + "?" + extra + "application=" + strings.ToLower(strings.TrimPrefix(iface, "com.shop.")) +
			"&dubbo=2.0.2&interface=" + iface + "&methods=get&side=provider"
		p := "/dubbo/" + iface + "/providers/" + url.QueryEscape(u)
		create(t, c, p, nil)
		return p
	}
	consumer := func(ip, iface string) {
		create(t, c, "/dubbo/"+iface+"/consumers/"+url.QueryEscape("consumer://"+ip+"/"+iface+
			"?application=web&category=consumers&interface="+iface+"&release=3.3.6&side=consumer"), nil)
	}
	provider("10.244.1.5:20880", "com.shop.Cart", "")                           // east's cart-e: reachable (cni)
	westCart := provider("10.244.1.6:20880", "com.shop.Cart", "")               // west's cart-w: unreachable (publish none)
	provider("10.50.1.5:20880", "com.shop.Cart", "")                            // north's cart-n: installed route
	provider("10.132.9.9:20880", "com.shop.Cart", "")                           // a VM
	dup := provider("10.244.1.9:20880", "com.shop.Dup", "dynamic=false&")       // a pod of each holds it: ambiguous
	gone := provider("10.244.1.7:20880", "com.shop.Old", "dynamic=false&")      // no pod of either: ambiguous, never stale
	staleEast := provider("10.244.2.7:20880", "com.shop.Old", "dynamic=false&") // east's alone, no pod: stale
	wUsers := provider("10.244.1.20:20880", "com.shop.Users", "dynamic=false&") // west's live pod, persistent
	provider("10.50.2.5:20880", "com.shop.Pay", "")                             // north's pay-n: n-2's route not installed
	provider("10.132.9.9:20881", "com.shop.Pay", "")                            // a VM: Pay's other peer
	provider("10.96.0.10:20880", "com.shop.Cart", "")                           // a ClusterIP
	for _, iface := range []string{"com.shop.Cart", "com.shop.Pay", "com.shop.Old", "com.shop.Dup", "com.shop.Users"} {
		consumer("10.132.9.50", iface) // outside every cluster
	}
	consumer("10.244.1.9", "com.shop.Users") // a consumer whose cluster cannot be told
	create(t, c, "/services/users/10.244.1.20:20880", []byte(`{"name":"users","id":"10.244.1.20:20880","address":"10.244.1.20","port":20880,`+
		`"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","metadata":{"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"}]"}},`+
		`"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC"}`))
	before := zkTree(t, c)

	t.Run("check", func(t *testing.T) {
		addrs := []string{"10.244.1.5:20880", "10.244.1.6", "10.244.1.9", "10.244.1.7", "10.244.2.7", "10.50.2.5",
			"10.132.9.9", "10.132.1.11", "172.17.0.2", "10.96.0.10"}
		for _, o := range []string{"json", "table"} {
			out, errOut, code := run(t, append([]string{"check", "-o", o, "--clusters", file}, addrs...)...)
			require.Equal(t, ExitFindings, code, errOut)
			assert.Empty(t, errOut)
			golden(t, "check-clusters."+o, out)
		}
		out, _, _ := run(t, append([]string{"check", "-o", "json", "--clusters", file}, addrs...)...)
		var got []checkJSON
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		byAddr := map[string]checkJSON{}
		for _, a := range got {
			byAddr[a.Address] = a
		}
		assert.Equal(t, "east", byAddr["10.244.1.5:20880"].Cluster)
		assert.Equal(t, "west", byAddr["10.244.1.6"].Cluster)
		assert.Equal(t, "unpublished-pod-route", string(byAddr["10.244.1.6"].Reason))
		assert.Equal(t, "w-1", byAddr["10.244.1.6"].Node)
		for _, a := range []string{"10.244.1.9", "10.244.1.7"} {
			assert.Equal(t, "unknown", string(byAddr[a].Verdict), a)
			assert.Equal(t, "ambiguous-cluster", string(byAddr[a].Reason), a)
			assert.Equal(t, []string{"east", "west"}, byAddr[a].Candidates, a)
			assert.Empty(t, byAddr[a].Cluster+byAddr[a].Node, a)
		}
		assert.Equal(t, "north", byAddr["10.50.2.5"].Cluster)
		assert.Empty(t, byAddr["10.132.9.9"].Cluster, "a VM belongs to no cluster")
		assert.Equal(t, "east", byAddr["10.132.1.11"].Cluster, "a node address belongs to its cluster")
		assert.Equal(t, "service-network", string(byAddr["10.96.0.10"].Reason))

		// Reachable everywhere: exit 0, still with clusters.
		out, errOut, code := run(t, "check", "--clusters", file, "10.244.1.5", "10.50.1.5", "10.132.9.9")
		assert.Equal(t, ExitOK, code, errOut)
		assert.Contains(t, out, "ADDRESS     VERDICT    REASON               CLUSTER  NODE")
		assert.Contains(t, out, "10.50.1.5   reachable  published-pod-route  north    n-1")
	})

	t.Run("audit", func(t *testing.T) {
		for _, o := range []string{"json", "table"} {
			out, errOut, code := run(t, "audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--clusters", file, "-o", o)
			require.Equal(t, ExitFindings, code, "west's and north's unreachable providers: exit 1\n"+errOut)
			assert.Empty(t, errOut)
			golden(t, "audit-clusters."+o, strings.ReplaceAll(out, z.Addr, "ZK"))
		}
		out, _, _ := run(t, "audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--clusters", file, "-o", "json")
		var doc struct {
			Complete  bool
			Providers []struct {
				Kind, Address, Cluster, Reason, Explanation, Node, Pod string
				Port                                                   int
				Candidates                                             []string
			}
			Consumers []struct {
				Address, Cluster, Reason string
				Candidates               []string
			}
		}
		require.NoError(t, json.Unmarshal([]byte(out), &doc))
		assert.True(t, doc.Complete)
		clusterOf := map[string]string{}
		for _, p := range doc.Providers {
			key := fmt.Sprintf("%s %s:%d", p.Kind, p.Address, p.Port)
			clusterOf[key] = p.Cluster + "|" + strings.Join(p.Candidates, ",")
			if p.Reason == "ambiguous-cluster" {
				assert.Contains(t, p.Explanation, "never corrected", key)
				assert.Empty(t, p.Node+p.Pod, key)
			}
		}
		assert.Equal(t, map[string]string{
			"interface 10.244.1.5:20880": "east|", "interface 10.244.1.6:20880": "west|", "interface 10.50.1.5:20880": "north|",
			"interface 10.132.9.9:20880": "|", "interface 10.244.1.9:20880": "|east,west", "interface 10.244.1.7:20880": "|east,west",
			"interface 10.244.2.7:20880": "east|", "interface 10.244.1.20:20880": "west|", "interface 10.50.2.5:20880": "north|",
			"interface 10.132.9.9:20881": "|", "interface 10.96.0.10:20880": "|", "application 10.244.1.20:20880": "west|",
		}, clusterOf)
		var ambiguousConsumer bool
		for _, cn := range doc.Consumers {
			ambiguousConsumer = ambiguousConsumer || cn.Address == "10.244.1.9" && cn.Reason == "ambiguous-cluster" && strings.Join(cn.Candidates, ",") == "east,west"
		}
		assert.True(t, ambiguousConsumer, "the consumer at 10.244.1.9 is ambiguous too: %+v", doc.Consumers)
	})

	t.Run("fix-dry-run", func(t *testing.T) {
		out, errOut, code := run(t, "audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--clusters", file,
			"--fix", "disable,prune", "--stale-after", "0", "--dry-run")
		require.Equal(t, ExitOK, code, errOut)
		assert.Contains(t, errOut, "audit: --clusters: corrections consider 12 of 18 registrations; left alone: 3 whose cluster cannot be told (ambiguous-cluster), 3 of cluster west (correct: false)")
		golden(t, "audit-clusters-fix-dry-run.json", sinceTime(out))
		var plan fix.Plan
		require.NoError(t, json.Unmarshal([]byte(out), &plan))
		var planned []string
		for _, ch := range plan.Changes {
			planned = append(planned, ch.Mode+" "+ch.Path)
			for _, never := range []string{"10.244.1.9", "10.244.1.7", "10.244.1.6", "10.244.1.20"} {
				assert.NotContains(t, ch.Provider+ch.AfterText+ch.Path, never, "a correction touches %s (ambiguous, or west's live provider): %+v", never, ch)
			}
		}
		// North's pay-n (n-2's route is not installed) and the ClusterIP among Cart's providers
		// are disabled; east's orphan is pruned. West's unreachable cart-w is not disabled.
		assert.Equal(t, []string{"disable /dubbo/config/dubbo/com.shop.Cart::.configurators", "disable /dubbo/config/dubbo/com.shop.Pay::.configurators",
			"prune " + staleEast}, planned)
		assert.Equal(t, "10.96.0.10:20880", plan.Changes[0].Provider)
		assert.Equal(t, before, zkTree(t, c), "--dry-run changed ZooKeeper")

		// The control: with west corrected by this auditor too, west's unreachable cart-w is
		// disabled; the ambiguous ones are still left alone, and west's live persistent
		// provider is still not pruned (its pod holds it).
		out, errOut, code = run(t, "audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--clusters", westCorrects,
			"--fix", "disable,prune", "--stale-after", "0", "--dry-run")
		require.Equal(t, ExitOK, code, errOut)
		require.NoError(t, json.Unmarshal([]byte(out), &plan))
		var providers string
		for _, ch := range plan.Changes {
			providers += ch.Mode + " " + ch.Provider + "\n"
			assert.NotContains(t, ch.Provider+ch.AfterText+ch.Path, "10.244.1.9", ch)
			assert.NotContains(t, ch.Provider+ch.AfterText+ch.Path, "10.244.1.7", ch)
			assert.NotEqual(t, wUsers, ch.Path)
		}
		assert.Contains(t, providers, "disable 10.96.0.10:20880,10.244.1.6:20880\n", "west corrected here: its unreachable provider is disabled (%s)", westCart)
	})

	t.Run("fix-prune-applied", func(t *testing.T) {
		dir := t.TempDir()
		out, errOut, code := run(t, "audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--clusters", file,
			"--fix", "prune", "--stale-after", "0", "--fix-backup-dir", dir, "-o", "json")
		require.Equal(t, ExitOK, code, errOut)
		var rep fix.Report
		require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
		require.Len(t, rep.Results, 1, out)
		assert.Equal(t, fix.ResultApplied, rep.Results[0].Result)
		assert.Equal(t, staleEast, rep.Results[0].Change.Path)
		want := map[string]string{}
		for k, v := range before {
			if k != staleEast {
				want[k] = v
			}
		}
		// The lock's path stays, empty, as Curator leaves it.
		want["/dubboreach"], want["/dubboreach/locks"], want["/dubboreach/locks/fix"] = "", "", ""
		after := zkTree(t, c)
		assert.Equal(t, want, after, "prune deleted exactly east's orphan")
		for _, p := range []string{dup, gone, wUsers} {
			assert.Contains(t, after, p, "an ambiguous registration or west's live provider was pruned")
		}
	})
}

// sinceTime hides the moment in a prune reason ("orphaned since 2026-...Z").
func sinceTime(s string) string {
	return regexp.MustCompile(`since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(s, "since TIME")
}

// TestClustersUsageErrors: --clusters replaces the single-cluster flags; what it does not do
// yet is refused, by name; a bad clusters file names the file and the field.
func TestClustersUsageErrors(t *testing.T) {
	dir := t.TempDir()
	inv, err := filepath.Abs(auditInventory)
	require.NoError(t, err)
	file := filepath.Join(dir, "clusters.yaml")
	require.NoError(t, os.WriteFile(file, []byte("apiVersion: dubboreach.io/v1alpha1\nkind: Clusters\nspec:\n  clusters:\n"+
		"    - {name: a, inventory: "+inv+"}\n    - {name: b, kubeconfig: /nonexistent/kubeconfig}\n"), 0o600))
	fabricAsClusters := filepath.Join(dir, "fabric.yaml")
	require.NoError(t, os.WriteFile(fabricAsClusters, []byte("apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec: {}\n"), 0o600))
	typo := filepath.Join(dir, "typo.yaml")
	require.NoError(t, os.WriteFile(typo, []byte("apiVersion: dubboreach.io/v1alpha1\nkind: Clusters\nspec:\n  clusters:\n"+
		"    - {name: a, inventory: x.yaml, podRoutes: {source: calicoo}}\n"), 0o600))
	auditBase := []string{"audit", "--zk", "127.0.0.1:1", "--once"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"check", "10.0.0.1", "--clusters", file, "--kubeconfig", "k"}, "--clusters and --kubeconfig cannot be combined"},
		{[]string{"check", "10.0.0.1", "--clusters", file, "--inventory", auditInventory}, "--clusters and --inventory cannot be combined"},
		{[]string{"check", "10.0.0.1", "--clusters", file, "--fabric", auditFabric}, "--clusters and --fabric cannot be combined"},
		{append(auditBase, "--clusters", file, "--kubeconfig", "k"), "--clusters and --kubeconfig cannot be combined"},
		{append(auditBase, "--clusters", file, "--inventory", auditInventory), "--clusters and --inventory cannot be combined"},
		{append(auditBase, "--clusters", file, "--fabric", auditFabric), "--clusters and --fabric cannot be combined"},
		{[]string{"audit", "--zk", "127.0.0.1:1", "--clusters", file}, "--clusters " + file + " needs --once for now"},
		{append(auditBase, "--clusters", file, "--fix", "evict"), "--fix evict with --clusters is not supported yet"},
		{[]string{"check", "10.0.0.1", "--clusters", fabricAsClusters}, `kind: "Fabric" is not a clusters file; use "Clusters" (a Fabric file describes one cluster: pass it with --fabric`},
		{[]string{"check", "10.0.0.1", "--clusters", typo}, "spec.clusters[0].podRoutes.source"},
		{[]string{"check", "10.0.0.1", "--clusters", filepath.Join(dir, "absent.yaml")}, "absent.yaml"},
		{[]string{"check", "10.0.0.1", "--clusters", file}, "cluster b: kubeconfig /nonexistent/kubeconfig"},
		{append(auditBase, "--clusters", file), "cluster b: kubeconfig /nonexistent/kubeconfig"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
			assert.Equal(t, ExitUsage, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.Empty(t, out)
		})
	}
}

// TestClustersFixLock: with --clusters, `audit --once --fix` (not --dry-run) scans, plans and
// applies under the ZooKeeper lock --fix-lock, on the real ZooKeeper: while another contender
// (the Curator recipe of registry/lock) holds it the audit waits, gives up after
// --fix-lock-wait with nothing changed, and once the lock is released takes it, corrects and
// releases it. --dry-run changes nothing and takes no lock.
func TestClustersFixLock(t *testing.T) {
	dir := t.TempDir()
	inv, err := filepath.Abs(auditInventory)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(`apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: b-1}, spec: {podCIDRs: [10.60.1.0/24]}, status: {addresses: [{type: InternalIP, address: 10.132.2.50}]}}
`), 0o600))
	file := filepath.Join(dir, "clusters.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: dubboreach.io/v1alpha1
kind: Clusters
spec:
  reachable: [10.132.2.0/24]
  unreachable: [172.17.0.0/16]
  clusters:
    - name: a
      inventory: `+inv+`
      serviceCIDR: 10.96.0.0/12
      podRoutes: {source: nodes, publish: static, installed: [10.244.1.0/24]}
    - name: b
      inventory: b.yaml
      podRoutes: {source: nodes, publish: none}
`), 0o600))
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	stale := seed(t, c)
	const lockPath = "/dubboreach/locks/fix"
	holder, err := lock.New(c, lockPath, nil)
	require.NoError(t, err)
	_, err = holder.Lock(harness.Context(t))
	require.NoError(t, err)
	before := zkTree(t, c)
	backups := t.TempDir()
	prune := func(extra ...string) []string {
		return append([]string{"audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--clusters", file,
			"--fix", "prune", "--stale-after", "0", "--fix-backup-dir", backups}, extra...)
	}

	// Held by another: gives up, nothing changed, its own contender node withdrawn.
	out, errOut, code := run(t, prune("--fix-lock-wait", "1s")...)
	assert.Equal(t, ExitFindings, code, errOut)
	assert.Contains(t, errOut, "another auditor has held the fix lock "+lockPath+" for more than --fix-lock-wait 1s; nothing was changed")
	assert.Empty(t, out)
	assert.Equal(t, before, zkTree(t, c), "an audit that did not get the lock changed ZooKeeper")

	// --dry-run takes no lock: the plan is made while the lock is held elsewhere.
	out, errOut, code = run(t, prune("--dry-run")...)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, `"path": "`+stale+`"`)
	assert.NotContains(t, errOut, "fix lock")

	// Released while the audit waits: it takes the lock, prunes, releases.
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		o, e, code := run(t, prune("--fix-lock-wait", "2m", "-o", "json")...)
		done <- result{o, e, code}
	}()
	require.Eventually(t, func() bool {
		kids, _, err := c.Children(lockPath)
		return err == nil && len(kids) == 2
	}, 60*time.Second, 20*time.Millisecond, "the audit never queued for the lock")
	kids, _, err := c.Children(lockPath)
	require.NoError(t, err)
	for _, k := range kids {
		assert.Regexp(t, `^_c_[0-9a-f-]{36}-lock-\d{10}$`, k, "a Curator-protected lock node")
	}
	_, _, err = c.Get(stale)
	require.NoError(t, err, "pruned while another held the lock")
	require.NoError(t, holder.Unlock())
	var res result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the audit did not finish after the lock was released")
	}
	require.Equal(t, ExitOK, res.code, res.errOut)
	assert.Contains(t, res.errOut, "audit: holding the fix lock "+lockPath)
	var rep fix.Report
	require.NoError(t, json.Unmarshal([]byte(res.out), &rep), res.out)
	require.Len(t, rep.Results, 1, res.out)
	assert.Equal(t, fix.ResultApplied, rep.Results[0].Result)
	assert.Equal(t, stale, rep.Results[0].Change.Path)
	exists, _, err := c.Exists(stale)
	require.NoError(t, err)
	assert.False(t, exists)
	kids, _, err = c.Children(lockPath)
	require.NoError(t, err)
	assert.Empty(t, kids, "the audit left its lock node behind")

	for _, tc := range []struct{ args []string }{
		{[]string{"--fix-lock", "locks/fix"}},
		{[]string{"--fix-lock", "/"}},
		{[]string{"--fix-lock-wait", "0s"}},
	} {
		_, errOut, code := run(t, prune(tc.args...)...)
		assert.Equal(t, ExitUsage, code, errOut)
		assert.Contains(t, errOut, tc.args[0], tc.args)
	}
}

// TestClustersBGPStatus: a cluster under podRoutes.publish: bgp, read through its kubeconfig,
// is judged by what its speaker's status objects (ConfigMap and Lease dubboreach-bgp in its
// bgpStatusNamespace, on its own real API server) say is announced, as `check --kubeconfig`
// is: published while the status lists the route, unpublished once the status is gone. The
// status is written with bgp.Writer, as `dubboreach publish` writes it (the speaker itself is
// tested against BIRD in routes/bgp and internal/cli's TestPublishedMeansAnnounced).
func TestClustersBGPStatus(t *testing.T) {
	ctx := harness.Context(t)
	dir := t.TempDir()
	east := harness.Envtest(t, harness.EnvOptions{})
	const statusNS = "dubboreach-system"
	require.NoError(t, east.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: statusNS}}))
	harness.CreateNode(t, east.Client, "e-1", "10.244.1.0/24", "10.132.1.11")
	harness.CreateNode(t, east.Client, "e-2", "10.244.2.0/24", "10.132.1.12")
	clustersKubeconfig(t, east, dir, "east")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "north.yaml"), []byte(northInventory), 0o600))
	file := filepath.Join(dir, "clusters.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: dubboreach.io/v1alpha1
kind: Clusters
spec:
  reachable: [10.132.0.0/16]
  clusters:
    - name: east
      kubeconfig: east.kubeconfig
      bgpStatusNamespace: `+statusNS+`
      podRoutes: {source: nodes, publish: bgp}
      bgp: {asn: 64512, routerID: 10.132.1.10, within: [10.244.0.0/16], peers: [{address: 10.132.0.254, asn: 64513}]}
    - name: north
      inventory: north.yaml
      podRoutes: {publish: static, installed: [10.50.1.0/24]}
`), 0o600))
	cs, err := kubernetes.NewForConfig(east.Config)
	require.NoError(t, err)
	peer := netip.MustParseAddr("10.132.0.254")
	w := &bgp.Writer{Client: cs, Namespace: statusNS, Identity: "publish-0", LeaseTime: 10 * time.Minute}
	require.NoError(t, w.Write(ctx, &bgp.Status{Updated: time.Now(), AnnouncedTo: routes.AnnouncedToAny,
		Peers:  []bgp.PeerStatus{{Address: peer, ASN: 64513, State: "established", Since: time.Now(), Announced: 1}},
		Routes: []bgp.AnnouncedRoute{{Prefix: netip.MustParsePrefix("10.244.1.0/24"), NextHop: netip.MustParseAddr("10.132.1.11"), Peers: []netip.Addr{peer}}}}))

	check := func() ([]checkJSON, int) {
		out, errOut, code := run(t, "check", "-o", "json", "--clusters", file, "10.244.1.5", "10.244.2.5", "10.50.1.5")
		var got []checkJSON
		require.NoError(t, json.Unmarshal([]byte(out), &got), "stdout %q, stderr %q", out, errOut)
		require.Len(t, got, 3)
		return got, code
	}
	got, code := check()
	assert.Equal(t, ExitFindings, code, "e-2's route is not announced")
	assert.Equal(t, "east", got[0].Cluster)
	assert.Equal(t, routes.ReasonPublishedPodRoute, got[0].Reason, "announced to an Established peer")
	assert.Equal(t, routes.ReasonUnpublishedPodRoute, got[1].Reason, "not in the speaker's status")
	assert.Equal(t, "north", got[2].Cluster)
	assert.Equal(t, routes.ReasonPublishedPodRoute, got[2].Reason)

	// The speaker's status goes: nothing of east's is published any more.
	require.NoError(t, cs.CoreV1().ConfigMaps(statusNS).Delete(ctx, bgp.ObjectName, metav1.DeleteOptions{}))
	got, code = check()
	assert.Equal(t, ExitFindings, code)
	assert.Equal(t, routes.ReasonUnpublishedPodRoute, got[0].Reason, "no status: unpublished")
	assert.Equal(t, routes.ReasonPublishedPodRoute, got[2].Reason, "north does not depend on east's speaker")
}
