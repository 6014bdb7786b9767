package registry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

type running struct {
	store   *routes.Store
	pods    *registry.PodIndex
	holder  *registry.Holder
	metrics *registry.Metrics
	srv     *httptest.Server
}

func startAuditor(t *testing.T, servers string) *running {
	t.Helper()
	fab, err := routes.LoadFabric(testdata("fabric.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := routes.LoadInventory(testdata("inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	store := routes.NewStore(fab, nil)
	store.Replace(inv)
	pods := registry.NewPodIndex()
	pods.Replace(inv)
	r := &running{store: store, pods: pods, holder: registry.NewHolder(), metrics: registry.NewMetrics()}
	a := &registry.Auditor{
		Scan:   zk.Config{Options: zk.Options{Servers: servers, SessionTimeout: 20 * time.Second}, Resync: time.Hour},
		Routes: store, Pods: pods, Holder: r.holder, Metrics: r.metrics, Log: logr.Discard(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	r.srv = httptest.NewServer(registry.NewMux(r.holder, r.metrics))
	t.Cleanup(func() { r.srv.Close(); cancel(); <-done })
	return r
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitResult(t *testing.T, h *registry.Holder, what string, timeout time.Duration, cond func(*registry.Result) bool) *registry.Result {
	t.Helper()
	deadline := time.After(timeout)
	for {
		upd := h.Updated()
		if r := h.Latest(); r != nil && cond(r) {
			return r
		}
		select {
		case <-upd:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func findProvider(r *registry.Result, addr string) *registry.Finding {
	for i := range r.Providers {
		if r.Providers[i].Address == addr {
			return &r.Providers[i]
		}
	}
	return nil
}

func TestAuditorFollowsRegistryAndServesMetrics(t *testing.T) {
	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.OrderService", providerURL("dubbo", "10.244.1.7:20880", "com.shop.OrderService", "")); err != nil {
		t.Fatal(err)
	}
	a := startAuditor(t, z.Addr)
	waitResult(t, a.holder, "first complete scan", 30*time.Second, func(r *registry.Result) bool { return r.Complete && len(r.Providers) == 1 })
	if code, _ := a.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d after the first scan", code)
	}
	if code, _ := a.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}

	// A new unreachable registration appears as a finding through the watches.
	start := time.Now()
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.CartService", providerURL("dubbo", "10.244.2.5:20880", "com.shop.CartService", "")); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, a.holder, "the new registration", 10*time.Second, func(r *registry.Result) bool { return findProvider(r, "10.244.2.5") != nil })
	t.Logf("new registration judged %s after it was created", time.Since(start))
	if f := findProvider(r, "10.244.2.5"); f.Verdict != routes.Unreachable || f.Pod != "shop/cart-1" || !f.Flagged() {
		t.Errorf("new finding %+v", f)
	}
	_, body := a.get(t, "/metrics")
	for _, want := range []string{
		`dubboreach_registry_providers{reason="published-pod-route",verdict="reachable"} 1`,
		`dubboreach_registry_providers{reason="unpublished-pod-route",verdict="unreachable"} 1`,
		`dubboreach_registry_unparseable 0`,
		`dubboreach_registry_scan_complete 1`,
		`dubboreach_zookeeper_connected 1`,
		`dubboreach_registry_scan_duration_seconds_count`,
		`dubboreach_registry_scan_errors_total{kind="connection"} 0`,
		`dubboreach_registry_last_complete_scan_timestamp_seconds 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// ZooKeeper goes away: the result turns incomplete (never clean) and the metrics say so.
	j.Close()
	z.Stop()
	r = waitResult(t, a.holder, "incomplete result while ZooKeeper is down", 30*time.Second, func(r *registry.Result) bool { return !r.Complete })
	if r.Connected || len(r.Missing) == 0 {
		t.Errorf("while down: connected %v missing %v", r.Connected, r.Missing)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, body = a.get(t, "/metrics"); strings.Contains(body, "dubboreach_registry_scan_complete 0") && strings.Contains(body, "dubboreach_zookeeper_connected 0") {
			break
		}
	}
	if !strings.Contains(body, "dubboreach_registry_scan_complete 0") || !strings.Contains(body, "dubboreach_zookeeper_connected 0") {
		t.Errorf("metrics while down:\n%s\n(first 2 KiB: %.2048s)", grep(body, "dubboreach_"), body)
	}
	// Back: the auditor reconnects and rescans; the Java client's ephemeral entries went with it.
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	waitResult(t, a.holder, "complete again after restart", 90*time.Second, func(r *registry.Result) bool { return r.Complete && r.Connected })
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The verdicts follow the routes core and the pods, not only ZooKeeper.
func TestAuditorFollowsRoutesAndPods(t *testing.T) {
	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.CartService", providerURL("dubbo", "10.244.2.5:20880", "com.shop.CartService", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.NewService", providerURL("dubbo", "10.244.2.44:20880", "com.shop.NewService", "")); err != nil {
		t.Fatal(err)
	}
	a := startAuditor(t, z.Addr)
	r := waitResult(t, a.holder, "first scan", 30*time.Second, func(r *registry.Result) bool { return r.Complete && len(r.Providers) == 2 })
	if f := findProvider(r, "10.244.2.44"); !f.Stale || f.Pod != "" {
		t.Fatalf("address without a pod: %+v", f)
	}
	// The network team installs node-b's route: the same registrations turn reachable.
	fab, err := routes.LoadFabric(testdata("fabric.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fab.Installed = append(fab.Installed, netip.MustParsePrefix("10.244.2.0/24"))
	a.store.SetFabric(fab)
	waitResult(t, a.holder, "reachable after the route is installed", 10*time.Second, func(r *registry.Result) bool {
		f := findProvider(r, "10.244.2.5")
		return f != nil && f.Verdict == routes.Reachable && f.Reason == routes.ReasonPublishedPodRoute && f.MissingRoute == nil
	})
	// A pod appears with the address that had none: mapped, no longer stale.
	inv, err := routes.LoadInventory(testdata("inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := inv.Pods[0].DeepCopy()
	p.Name, p.UID, p.Status.PodIP = "new-1", "33333333-0000-0000-0000-000000000001", "10.244.2.44"
	p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.2.44"}}
	a.pods.UpsertPod(p)
	waitResult(t, a.holder, "the new pod mapped", 10*time.Second, func(r *registry.Result) bool {
		f := findProvider(r, "10.244.2.44")
		return f != nil && f.Pod == "shop/new-1" && !f.Stale
	})
}
