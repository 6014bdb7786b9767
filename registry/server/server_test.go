package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/server"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/routes/render"
	"github.com/dubboreach/dubboreach/test/harness"
)

func options(t *testing.T, zkAddr string) server.Options {
	t.Helper()
	inv, err := routes.LoadInventory("../testdata/inventory.yaml")
	require.NoError(t, err)
	fab, err := routes.LoadFabric("../testdata/fabric.yaml")
	require.NoError(t, err)
	return server.Options{Inventory: inv, Fabric: fab, RouteFormat: render.Linux,
		Scan: zk.Config{Options: zk.Options{Servers: zkAddr, SessionTimeout: 10 * time.Second}, ZKRoot: "/dubbo",
			ServicesRoot: "/services", Concurrency: 4, Resync: time.Hour}}
}

// Handlers, Hooks and Collectors are how other parts (probe measurements, BGP status, more
// clusters) join the auditor: a handler is served on the listener, a hook sees each
// published result, a collector is on /metrics beside the auditor's own metrics.
func TestRunExtensionPoints(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c, _, err := gozk.Connect([]string{z.Addr}, 10*time.Second, gozk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return c.State() == gozk.StateHasSession }, 30*time.Second, 20*time.Millisecond, "no ZooKeeper session")
	u := "dubbo://10.244.2.5:20880/com.shop.CartService?application=cart&interface=com.shop.CartService&side=provider"
	for _, p := range []string{"/dubbo", "/dubbo/com.shop.CartService", "/dubbo/com.shop.CartService/providers",
		"/dubbo/com.shop.CartService/providers/" + url.QueryEscape(u)} {
		_, err := c.Create(p, nil, 0, gozk.WorldACL(gozk.PermAll))
		require.NoError(t, err, p)
	}
	port, err := harness.FreePort()
	require.NoError(t, err)

	o := options(t, z.Addr)
	o.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	o.Handlers = map[string]http.Handler{"GET /api/v1/extra": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "extra\n")
	})}
	var (
		mu   sync.Mutex
		seen []string
	)
	o.Hooks = []func(context.Context, *registry.Result){func(_ context.Context, r *registry.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range r.Providers {
			seen = append(seen, f.Address+" "+string(f.Verdict))
		}
	}}
	extra := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dubboreach_test_extension", Help: "A collector plugged in by a test."})
	extra.Set(7)
	o.Collectors = []prometheus.Collector{extra}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, o) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}()

	get := func(p string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, p))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get("/readyz"); return code == http.StatusOK }, 60*time.Second, 50*time.Millisecond)
	code, body := get("/api/v1/extra")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "extra\n", body)
	_, body = get("/metrics")
	assert.Contains(t, body, "dubboreach_test_extension 7")
	assert.Contains(t, body, "dubboreach_registry_providers{")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0
	}, 30*time.Second, 50*time.Millisecond)
	mu.Lock()
	assert.Equal(t, "10.244.2.5 unreachable", seen[len(seen)-1])
	mu.Unlock()
}

// Configuration the server cannot run with comes back as a *ConfigError, which the command
// turns into its usage exit status.
func TestRunConfigErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()

	o := options(t, "127.0.0.1:1")
	noSource := o
	noSource.Inventory = nil
	handlersOnly := o
	handlersOnly.Handlers = map[string]http.Handler{"GET /x": http.NotFoundHandler()}
	busy := o
	busy.Listen = taken.Addr().String()
	badCollector := o
	dup := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dubboreach_registry_unparseable", Help: "taken"})
	badCollector.Collectors = []prometheus.Collector{dup}

	for name, tc := range map[string]struct {
		o    server.Options
		want string
	}{
		"no cluster and no inventory": {noSource, "no cluster configuration and no inventory"},
		"handlers without listen":     {handlersOnly, "need a listen address"},
		"listen address taken":        {busy, "--listen " + taken.Addr().String()},
		"collector clashes":           {badCollector, "registering a collector"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := server.Run(ctx, tc.o)
			var ce *server.ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.True(t, strings.Contains(err.Error(), tc.want), "%q does not contain %q", err, tc.want)
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"zk-0:2181,zk-1:2181/chroot": "zk-0:2181,zk-1:2181/chroot",
		"":                           "''",
		"a b":                        "'a b'",
		"it's":                       `'it'\''s'`,
		"$(rm -rf /)":                "'$(rm -rf /)'",
	} {
		assert.Equal(t, want, server.ShellQuote(in), in)
	}
}

// Under publish: bgp the long-running auditor judges pod addresses by the BGP speaker's status
// objects on a real API server: reachable while the status says the route was sent to an
// Established peer, unreachable once its heartbeat runs out.
func TestRunFollowsBGPStatus(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c, _, err := gozk.Connect([]string{z.Addr}, 10*time.Second, gozk.WithLogInfo(false))
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return c.State() == gozk.StateHasSession }, 30*time.Second, 20*time.Millisecond, "no ZooKeeper session")
	u := "dubbo://10.244.2.5:20880/com.shop.CartService?application=cart&interface=com.shop.CartService&side=provider"
	for _, p := range []string{"/dubbo", "/dubbo/com.shop.CartService", "/dubbo/com.shop.CartService/providers",
		"/dubbo/com.shop.CartService/providers/" + url.QueryEscape(u)} {
		_, err := c.Create(p, nil, 0, gozk.WorldACL(gozk.PermAll))
		require.NoError(t, err, p)
	}
	env := harness.Envtest(t, harness.EnvOptions{})
	ctx := harness.Context(t)
	harness.CreateNode(t, env.Client, "node-a", "10.244.2.0/24", "10.132.2.11")
	cs, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)

	o := options(t, z.Addr)
	o.Inventory, o.RestConfig = nil, env.Config
	fab := routes.DefaultFabric()
	fab.Reachable = []netip.Prefix{netip.MustParsePrefix("10.132.2.0/24")}
	fab.Source, fab.Publish = routes.SourceNodes, routes.PublishBGP
	fab.BGP = &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), AnnouncedTo: routes.AnnouncedToAny,
		Within: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, Peers: []routes.BGPPeer{{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513}}}
	o.Fabric = fab

	t.Run("no status namespace is a configuration error", func(t *testing.T) {
		err := server.Run(ctx, o)
		var ce *server.ConfigError
		require.True(t, errors.As(err, &ce), "%v", err)
		assert.Contains(t, err.Error(), "--bgp-status-namespace")
	})

	o.BGPStatusNamespace = "default"
	var (
		mu   sync.Mutex
		last string
	)
	o.Hooks = []func(context.Context, *registry.Result){func(_ context.Context, r *registry.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range r.Providers {
			last = string(f.Verdict) + " " + string(f.Reason)
		}
	}}
	verdict := func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.Run(runCtx, o) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}()
	require.Eventually(t, func() bool { return verdict() == "unreachable unpublished-pod-route" }, 60*time.Second, 50*time.Millisecond,
		"no speaker status: unpublished; got %q", verdict())

	w := &bgp.Writer{Client: cs, Namespace: "default", Identity: "publish-0", LeaseTime: 3 * time.Second}
	require.NoError(t, w.Write(ctx, &bgp.Status{AnnouncedTo: routes.AnnouncedToAny,
		Peers: []bgp.PeerStatus{{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513, State: "established", Announced: 1}},
		Routes: []bgp.AnnouncedRoute{{Prefix: netip.MustParsePrefix("10.244.2.0/24"), NextHop: netip.MustParseAddr("10.132.2.11"),
			Peers: []netip.Addr{netip.MustParseAddr("10.132.2.254")}}}}))
	require.Eventually(t, func() bool { return verdict() == "reachable published-pod-route" }, 30*time.Second, 50*time.Millisecond,
		"announced: published; got %q", verdict())
	// No renewal: the heartbeat runs out and the route is unpublished again.
	require.Eventually(t, func() bool { return verdict() == "unreachable unpublished-pod-route" }, 30*time.Second, 50*time.Millisecond,
		"heartbeat ran out: unpublished; got %q", verdict())
}
