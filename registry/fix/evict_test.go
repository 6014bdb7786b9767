package fix

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/test/harness"
)

// TestEvict runs against a real kube-apiserver (envtest). envtest runs no controllers: nothing
// re-creates evicted pods and the disruption controller does not compute PodDisruptionBudget
// status, so the test writes the PDB's status itself through the status subresource (what the
// disruption controller would write for one healthy pod that must stay); the Eviction API then
// enforces it exactly as in a cluster.
func TestEvict(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	ctx := harness.Context(t)
	c := env.Client

	mkns := func(name string, labels map[string]string) {
		t.Helper()
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
			t.Fatal(err)
		}
	}
	mkns("injected", map[string]string{LabelInject: "enabled"})
	mkns("plain", nil)

	mkrs := func(ns, name string) *appsv1.ReplicaSet {
		t.Helper()
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: appsv1.ReplicaSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
				},
			},
		}
		if err := c.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	mkpod := func(ns, name string, owner *appsv1.ReplicaSet, labels map[string]string) *corev1.Pod {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}
		if owner != nil {
			p.Labels = map[string]string{"app": owner.Name}
			for k, v := range labels {
				p.Labels[k] = v
			}
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner.Name,
				UID: owner.UID, Controller: ptr.To(true)}}
		}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	web := mkrs("injected", "web")
	guarded := mkrs("injected", "guarded")
	other := mkrs("injected", "other")
	plainRS := mkrs("plain", "web")

	webA := mkpod("injected", "web-a", web, nil)
	mkpod("injected", "web-b", web, nil)
	guardedA := mkpod("injected", "guarded-a", guarded, nil)
	// No kubelet either: the test reports guarded-a running and ready as the kubelet would. The
	// Eviction API ignores budgets for Pending pods, and lets unready ones go while the budget
	// is healthy, so only a ready pod shows the refusal.
	guardedA.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
	if err := c.Status().Update(ctx, guardedA); err != nil {
		t.Fatal(err)
	}
	mkpod("injected", "other-a", other, nil)
	mkpod("injected", "bare", nil, nil)
	mkpod("injected", "optout", web, map[string]string{LabelInject: "disabled"})
	mkpod("plain", "web-a", plainRS, nil)

	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded", Namespace: "injected"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}},
	}
	if err := c.Create(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 0,
		CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
	if err := c.Status().Update(ctx, pdb); err != nil {
		t.Fatal(err)
	}

	target := func(ns, name string, uid types.UID) Target {
		return Target{Interface: "com.foo.BarService", Address: netip.MustParseAddrPort("10.244.1.7:20880"),
			Pod: &types.NamespacedName{Namespace: ns, Name: name}, PodUID: uid}
	}
	targets := []Target{
		target("injected", "web-a", webA.UID),
		target("injected", "web-b", ""),
		target("injected", "guarded-a", ""),
		target("injected", "bare", ""),
		target("injected", "optout", ""),
		target("plain", "web-a", ""),
		target("injected", "missing", ""),
		target("injected", "web-a", webA.UID), // the same pod twice: once
		{Interface: "com.foo.BarService"},     // no pod
	}

	ev := NewEvictor(c, EvictOptions{MaxPerMinute: 2, MaxPerWorkload: 1, MinPodAge: 5 * time.Minute, RetryAfter: time.Minute})
	now := time.Now()

	// Young pods are deferred.
	plan, err := ev.Plan(ctx, true, targets, now)
	if err != nil || len(plan.Changes) != 0 {
		t.Fatalf("plan for young pods: %v %+v", err, plan.Changes)
	}
	if _, err := ev.Plan(ctx, false, targets, now); !errors.Is(err, ErrIncompleteScan) {
		t.Fatalf("incomplete scan: %v", err)
	}

	later := now.Add(10 * time.Minute)
	plan, err = ev.Plan(ctx, true, targets, later)
	if err != nil {
		t.Fatal(err)
	}
	outcome := map[string]string{}
	for _, ch := range plan.Changes {
		outcome[ch.Pod.String()] = "planned"
	}
	for _, s := range plan.Skipped {
		outcome[s.Pod.String()] = s.Outcome
	}
	want := map[string]string{
		"injected/guarded-a": "planned",
		"injected/web-a":     "planned",
		"injected/web-b":     ResultDeferred, // per-workload cap: web-a of the same ReplicaSet goes first
		"injected/bare":      ResultSkipped,  // no controller
		"injected/optout":    ResultSkipped,  // opted out of injection
		"plain/web-a":        ResultSkipped,  // namespace not labelled
		"injected/missing":   ResultSkipped,  // gone
	}
	for k, v := range want {
		if outcome[k] != v {
			t.Errorf("%s: %q, want %q (plan %+v)", k, outcome[k], v, plan)
		}
	}
	if len(outcome) != len(want) {
		t.Errorf("outcomes %v", outcome)
	}

	// Dry run: nothing evicted.
	rep, err := (&Executor{Evictor: ev, DryRun: true}).Apply(ctx, plan)
	if err != nil || rep.Count(ResultDryRun) != 2 {
		t.Fatalf("dry run: %v %v", err, results(rep))
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(webA), &corev1.Pod{}); err != nil {
		t.Fatalf("dry run evicted web-a: %v", err)
	}

	m := NewMetrics()
	ex := &Executor{Evictor: ev, OnResult: m.Observe, Now: func() time.Time { return later }}
	rep, err = ex.Apply(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		if r.Change.Op == OpEvict {
			got[r.Change.Pod.String()] = r.Result
		}
	}
	if got["injected/web-a"] != ResultApplied || got["injected/guarded-a"] != ResultRefused {
		t.Fatalf("evictions: %v", rep.Results)
	}
	if v := testutilCount(m, ModeEvict, ResultRefused); v != 1 {
		t.Fatalf("%s{mode=evict,result=refused} = %v", MetricFixes, v)
	}
	// web-a is gone (unscheduled pods are deleted at once); guarded-a is still there.
	if err := c.Get(ctx, client.ObjectKeyFromObject(webA), &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Fatalf("web-a after eviction: %v", err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "injected", Name: "guarded-a"}, &corev1.Pod{}); err != nil {
		t.Fatalf("guarded-a after a refused eviction: %v", err)
	}

	// The next cycle does not hammer the PDB: guarded-a is deferred until its backoff ends, and
	// the rate limit (2/min, one used) lets one more eviction through.
	plan, err = ev.Plan(ctx, true, targets[1:], later.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	outcome = map[string]string{}
	for _, ch := range plan.Changes {
		outcome[ch.Pod.String()] = "planned"
	}
	for _, s := range plan.Skipped {
		outcome[s.Pod.String()] = s.Outcome
	}
	if outcome["injected/guarded-a"] != ResultDeferred || outcome["injected/web-b"] != "planned" {
		t.Fatalf("second cycle: %v", outcome)
	}
	// Rate limit: with a second target ready in the same minute, only one goes.
	mkpod("injected", "other-b", other, nil)
	plan, err = ev.Plan(ctx, true, []Target{target("injected", "web-b", ""), target("injected", "other-a", "")}, later.Add(10*time.Second))
	if err != nil || len(plan.Changes) != 1 || plan.Skipped[0].Outcome != ResultDeferred {
		t.Fatalf("rate limit: %v %+v", err, plan)
	}
	// After the backoff, the refused pod is tried again (and refused again: it is reported,
	// not retried in a loop).
	plan, err = ev.Plan(ctx, true, []Target{target("injected", "guarded-a", "")}, later.Add(2*time.Minute))
	if err != nil || len(plan.Changes) != 1 {
		t.Fatalf("after the backoff: %v %+v", err, plan)
	}
	rep, _ = (&Executor{Evictor: ev, Now: func() time.Time { return later.Add(2 * time.Minute) }}).Apply(ctx, plan)
	if rep.Count(ResultRefused) != 1 {
		t.Fatalf("second attempt: %v", results(rep))
	}
	// A UID precondition keeps a namesake pod safe: evicting web-a's old UID after a new web-a
	// exists is a conflict.
	mkpod("injected", "web-a", web, nil)
	stale := Change{Mode: ModeEvict, Op: OpEvict, Pod: &types.NamespacedName{Namespace: "injected", Name: "web-a"}, PodUID: webA.UID}
	rep, _ = (&Executor{Evictor: NewEvictor(c, EvictOptions{}), Now: func() time.Time { return later.Add(5 * time.Minute) }}).Apply(ctx,
		Plan{Complete: true, Changes: []Change{stale}})
	if rep.Count(ResultConflict) != 1 {
		t.Fatalf("evicting a replaced pod by UID: %v", rep.Results)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "injected", Name: "web-a"}, &corev1.Pod{}); err != nil {
		t.Fatalf("the new web-a was evicted: %v", err)
	}
}

func testutilCount(m *Metrics, mode, result string) float64 {
	return testutil.ToFloat64(m.Fixes.WithLabelValues(mode, result))
}
