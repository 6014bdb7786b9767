package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/cluster"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

// replica runs one auditor replica against the cluster, as `audit --listen` does.
func replica(t *testing.T, env *harness.Env, zkAddr string, holder *registry.Holder) {
	t.Helper()
	fab, err := routes.LoadFabric(testdata("fabric.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                        env.Scheme,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              "dubboreach-audit",
		LeaderElectionNamespace:       "default",
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	store := routes.NewStore(fab, nil)
	pods := registry.NewPodIndex()
	if err := cluster.SetupWithManager(mgr, store); err != nil {
		t.Fatal(err)
	}
	if err := registry.SetupWithManager(mgr, pods); err != nil {
		t.Fatal(err)
	}
	ev := &registry.Events{Recorder: mgr.GetEventRecorder("dubboreach-audit")}
	if err := mgr.Add(ev); err != nil {
		t.Fatal(err)
	}
	a := &registry.Auditor{Scan: zk.Config{Options: zk.Options{Servers: zkAddr}}, Routes: store, Pods: pods, Holder: holder, Events: ev, Log: logr.Discard()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = mgr.Start(ctx); done <- struct{}{} }()
	go func() { _ = a.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
}

func TestEventsOnUnreachablePods(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	ctx := harness.Context(t)
	c := env.Client
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{registry.LabelInject: "enabled"}}}))
	harness.CreateNode(t, c, "node-b", "10.244.2.0/24", "10.132.2.12")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart-1", Namespace: "shop"},
		Spec: corev1.PodSpec{NodeName: "node-b", Containers: []corev1.Container{{Name: "app", Image: "cart"}}}}
	harness.RunPod(t, c, pod, "10.132.2.12", "10.244.2.5")

	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.CartService", providerURL("dubbo", "10.244.2.5:20880", "com.shop.CartService", "")); err != nil {
		t.Fatal(err)
	}
	// Two replicas: only the leader writes Events.
	h1, h2 := registry.NewHolder(), registry.NewHolder()
	replica(t, env, z.Addr, h1)
	replica(t, env, z.Addr, h2)
	for _, h := range []*registry.Holder{h1, h2} {
		waitResult(t, h, "the pod's registration judged with its pod", 60*time.Second, func(r *registry.Result) bool {
			f := findProvider(r, "10.244.2.5")
			return f != nil && f.Pod == "shop/cart-1" && f.Verdict == routes.Unreachable && f.Node == "node-b"
		})
	}
	var events []eventsv1.Event
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list eventsv1.EventList
		must(c.List(ctx, &list, client.InNamespace("shop")))
		events = events[:0]
		for _, e := range list.Items {
			if e.Reason == registry.ReasonUnreachableRegistration {
				events = append(events, e)
			}
		}
		if len(events) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(events) == 0 {
		t.Fatal("no UnreachableRegistration Event on the pod")
	}
	// More judging passes (a new registration elsewhere) must not repeat the Event.
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.OtherService", providerURL("dubbo", "10.132.2.12:20880", "com.shop.OtherService", "")); err != nil {
		t.Fatal(err)
	}
	waitResult(t, h1, "the second registration", 30*time.Second, func(r *registry.Result) bool { return findProvider(r, "10.132.2.12") != nil })
	time.Sleep(2 * time.Second) // give a wrongly repeated Event time to show
	var list eventsv1.EventList
	must(c.List(ctx, &list, client.InNamespace("shop")))
	n := 0
	for _, e := range list.Items {
		if e.Reason != registry.ReasonUnreachableRegistration {
			continue
		}
		n++
		if e.Regarding.Kind != "Pod" || e.Regarding.Name != "cart-1" || e.Type != corev1.EventTypeWarning ||
			!strings.Contains(e.Note, "unpublished-pod-route") || !strings.Contains(e.Note, "10.244.2.5:20880") {
			t.Errorf("event %+v", e)
		}
		if e.Series != nil {
			t.Errorf("event repeated %d times: not deduplicated", e.Series.Count)
		}
	}
	if n != 1 {
		t.Errorf("%d UnreachableRegistration Events, want exactly 1 (leader only, deduplicated)", n)
	}
}
