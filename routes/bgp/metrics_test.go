package bgp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/test/harness"
)

// TestPublishMetrics runs Publish against a real API server and a real BIRD 2 and scrapes its
// metrics endpoint: the speaker reports itself leader, the session Established, the routes the
// peer was sent, and none unannounced; with BIRD gone the session reads down and every eligible
// route unannounced (a route outside within is never counted); when Publish stops, its
// collector is unregistered.
func TestPublishMetrics(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	ctx := harness.Context(t)
	harness.CreateNode(t, env.Client, "node-a", "10.131.10.0/24", "10.132.2.11")
	harness.CreateNode(t, env.Client, "node-b", "10.131.73.0/24", "10.132.2.12")
	harness.CreateNode(t, env.Client, "node-x", "10.200.0.0/24", "10.132.2.13") // outside within

	b := startBird(t, birdConfig{addr: netip.MustParseAddr("127.0.0.11"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	fab := routes.DefaultFabric()
	fab.Source, fab.Publish = routes.SourceNodes, routes.PublishBGP
	fab.BGP = &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within, AnnouncedTo: routes.AnnouncedToAny,
		Peers: []routes.BGPPeer{{Address: b.addr, ASN: 64513, Port: b.port}}}
	port, err := harness.FreePort()
	require.NoError(t, err)
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Publish(pctx, PublishOptions{RestConfig: env.Config, Fabric: fab, Namespace: "default", Identity: "publish-0",
			StatusLease: 3 * time.Second, StatusInterval: time.Second,
			MetricsBindAddress: fmt.Sprintf("127.0.0.1:%d", port), HealthProbeBindAddress: "0",
			Speaker: Options{LocalAddress: speakerAddr, ConnectRetry: time.Second}, Log: testr.New(t)})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Publish: %v", err)
		}
	})

	peer := b.addr.String()
	value := func(body, series string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			return "absent"
		}
		return m[1]
	}
	scrape := func() string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)) //nolint:gosec // loopback
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	want := func(what string, series map[string]string) {
		t.Helper()
		var body string
		eventually(t, 60*time.Second, what, func() bool {
			body = scrape()
			for s, v := range series {
				if value(body, s) != v {
					return false
				}
			}
			return true
		})
		for s, v := range series {
			assert.Equal(t, v, value(body, s), s)
		}
	}
	want("the speaker's metrics with the session up", map[string]string{
		`dubboreach_bgp_speaker_leader`:                           "1",
		`dubboreach_bgp_session_established{peer="` + peer + `"}`: "1",
		`dubboreach_bgp_routes_announced{peer="` + peer + `"}`:    "2",
		`dubboreach_bgp_routes_unannounced`:                       "0",
		`dubboreach_bgp_session_flaps_total{peer="` + peer + `"}`: "0",
	})
	b.stop()
	want("the speaker's metrics with BIRD gone", map[string]string{
		`dubboreach_bgp_speaker_leader`:                           "1",
		`dubboreach_bgp_session_established{peer="` + peer + `"}`: "0",
		`dubboreach_bgp_routes_announced{peer="` + peer + `"}`:    "0",
		`dubboreach_bgp_routes_unannounced`:                       "2",
		`dubboreach_bgp_session_flaps_total{peer="` + peer + `"}`: "1",
	})
	stop()
	require.NoError(t, <-done)
	done <- nil // for the cleanup
	again := NewMetrics()
	require.NoError(t, ctrlmetrics.Registry.Register(again), "Publish left its collector registered")
	ctrlmetrics.Registry.Unregister(again)
}
