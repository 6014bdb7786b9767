package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/test/harness"
)

// TestAuditFixEvict runs `audit --once --fix evict` against a real kube-apiserver and a real
// ZooKeeper. Two pods on node-b (whose pod route 10.244.2.0/24 the fabric file does not list as
// installed) registered their pod IPs: cart-1, owned by a ReplicaSet, and billing-1, a bare pod.
// Both live in a namespace labelled for injection.
//
// The evictor waits until a pod is MinPodAge (5m) old and the CLI has no flag for it; the API
// server sets creationTimestamp itself, so a pod made by the test is always younger. The owned
// pod is therefore deferred, never evicted, here: the test checks the plan and that neither
// --dry-run nor the applied run evicts anything, and that the bare pod is never a candidate.
func TestAuditFixEvict(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	user, err := env.Environment.AddUser(envtest.User{Name: "audit", Groups: []string{"system:masters"}}, nil)
	require.NoError(t, err)
	kc, err := user.KubeConfig()
	require.NoError(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, kc, 0o600))
	ctx := harness.Context(t)
	c := env.Client

	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop",
		Labels: map[string]string{fix.LabelInject: "enabled"}}}))
	harness.CreateNode(t, c, "node-b", "10.244.2.0/24", "10.132.2.12")

	labels := map[string]string{"app": "cart"}
	one, yes := int32(1), true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9f", Namespace: "shop"},
		Spec: appsv1.ReplicaSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "cart"}}}}}}
	require.NoError(t, c.Create(ctx, rs))

	running := func(pod *corev1.Pod, ip string) { t.Helper(); harness.RunPod(t, c, pod, "10.132.2.12", ip) }
	owned := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9f-x2k4p", Namespace: "shop", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
			Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: corev1.PodSpec{NodeName: "node-b", Containers: []corev1.Container{{Name: "app", Image: "cart"}}}}
	running(owned, "10.244.2.5")
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "billing-1", Namespace: "shop"},
		Spec: corev1.PodSpec{NodeName: "node-b", Containers: []corev1.Container{{Name: "app", Image: "billing"}}}}
	running(bare, "10.244.2.6")

	z := harness.StartZooKeeper(t)
	zc := connect(t, z.Addr)
	create(t, zc, providerZnode("com.shop.CartService", "10.244.2.5:20880", ""), nil)
	create(t, zc, providerZnode("com.shop.BillingService", "10.244.2.6:20880", ""), nil)
	zkBefore := zkTree(t, zc)

	ownedName := types.NamespacedName{Namespace: "shop", Name: owned.Name}
	bareName := types.NamespacedName{Namespace: "shop", Name: bare.Name}
	// untouched asserts both pods are still there, the same objects, not terminating.
	untouched := func(msg string) {
		t.Helper()
		for _, p := range []*corev1.Pod{owned, bare} {
			var got corev1.Pod
			require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, &got), msg)
			assert.Equal(t, p.UID, got.UID, "%s: pod %s was replaced", msg, p.Name)
			assert.Nil(t, got.DeletionTimestamp, "%s: pod %s is terminating", msg, p.Name)
		}
		assert.Equal(t, zkBefore, zkTree(t, zc), "%s: evict changed ZooKeeper", msg)
	}
	byPod := func(cs []fix.Change) map[types.NamespacedName]fix.Change {
		out := map[types.NamespacedName]fix.Change{}
		for _, ch := range cs {
			require.NotNil(t, ch.Pod, "%+v", ch)
			out[*ch.Pod] = ch
		}
		return out
	}
	args := []string{"audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--kubeconfig", kubeconfig,
		"--fabric", auditFabric, "--fix", "evict", "-o", "json"}

	// --dry-run: the plan names the owned pod (deferred: younger than MinPodAge) and skips the
	// bare pod because nothing would re-create it. Nothing is evicted.
	out, errOut, code := run(t, append(args, "--dry-run")...)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, errOut, "providers 2 (reachable 0, unreachable 2, unknown 0)")
	assert.Contains(t, errOut, "dry run: 0 change(s) planned, 2 skipped")
	var plan fix.Plan
	require.NoError(t, json.Unmarshal([]byte(out), &plan), out)
	assert.True(t, plan.Complete)
	assert.Empty(t, plan.Changes, "a pod younger than MinPodAge is never evicted: %s", out)
	skipped := byPod(plan.Skipped)
	require.Len(t, skipped, 2, out)
	oc := skipped[ownedName]
	assert.Equal(t, fix.ModeEvict, oc.Mode)
	assert.Equal(t, fix.ResultDeferred, oc.Outcome)
	assert.Equal(t, owned.UID, oc.PodUID)
	assert.Equal(t, rs.UID, oc.Owner, "the owned pod is judged as a controller's pod")
	assert.Equal(t, "10.244.2.5:20880", oc.Provider)
	assert.Equal(t, "com.shop.CartService", oc.Service)
	assert.Contains(t, oc.Reason, "pod is younger than 5m0s")
	bc := skipped[bareName]
	assert.Equal(t, fix.ResultSkipped, bc.Outcome)
	assert.Empty(t, bc.Owner)
	assert.Equal(t, "10.244.2.6:20880", bc.Provider)
	assert.Contains(t, bc.Reason, "bare pod (no controller)")
	untouched("--dry-run")

	// Applied: the report says the same, and still nothing is evicted; the bare pod never is.
	out, errOut, code = run(t, args...)
	require.Equal(t, ExitOK, code, errOut)
	var rep fix.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Len(t, rep.Results, 2, out)
	assert.Zero(t, rep.Count(fix.ResultApplied), out)
	assert.Equal(t, 1, rep.Count(fix.ResultDeferred), out)
	assert.Equal(t, 1, rep.Count(fix.ResultSkipped), out)
	for _, res := range rep.Results {
		require.NotNil(t, res.Change.Pod, "%+v", res)
		switch *res.Change.Pod {
		case ownedName:
			assert.Equal(t, fix.ResultDeferred, res.Result)
		case bareName:
			assert.Equal(t, fix.ResultSkipped, res.Result)
		default:
			t.Errorf("unexpected result %+v", res)
		}
	}
	untouched("applied")

	// With a minimum age the pod has: the owned pod is evicted through the Eviction API (envtest
	// has no PodDisruptionBudget for it, so the API server deletes it); the bare pod never is.
	out, errOut, code = run(t, append(args, "--min-pod-age", "1ms")...)
	require.Equal(t, ExitOK, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, 1, rep.Count(fix.ResultApplied), out)
	for _, res := range rep.Results {
		if res.Result == fix.ResultApplied {
			require.NotNil(t, res.Change.Pod)
			assert.Equal(t, ownedName, *res.Change.Pod)
		}
	}
	var got corev1.Pod
	err = c.Get(ctx, ownedName, &got)
	assert.True(t, apierrors.IsNotFound(err) || (err == nil && got.DeletionTimestamp != nil),
		"the owned pod is evicted: err %v, deletionTimestamp %v", err, got.DeletionTimestamp)
	require.NoError(t, c.Get(ctx, bareName, &got))
	assert.Equal(t, bare.UID, got.UID)
	assert.Nil(t, got.DeletionTimestamp, "a bare pod is never evicted")
	assert.Equal(t, zkBefore, zkTree(t, zc), "evict does not touch ZooKeeper")

	// A non-positive age would evict re-created pods in a loop: refused.
	_, errOut, code = run(t, append(args, "--min-pod-age", "0s")...)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, "--min-pod-age")
}
