package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry/dubbo"
	"github.com/dubboreach/dubboreach/routes"
)

func TestPickListen(t *testing.T) {
	// A free address is kept.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	free := ln.Addr().String()
	require.NoError(t, ln.Close())
	got, busy, err := pickListen(free)
	require.NoError(t, err)
	assert.False(t, busy)
	assert.Equal(t, free, got)

	// A busy one falls back to a free port on the same host.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got, busy, err = pickListen(ln.Addr().String())
	require.NoError(t, err)
	assert.True(t, busy)
	host, port, err := net.SplitHostPort(got)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.NotEqual(t, ln.Addr().(*net.TCPAddr).Port, port)
	l2, err := net.Listen("tcp", got)
	require.NoError(t, err, "the fallback address is free")
	require.NoError(t, l2.Close())

	// Port 0 is resolved to the port that was free.
	got, busy, err = pickListen("127.0.0.1:0")
	require.NoError(t, err)
	assert.False(t, busy)
	assert.NotEqual(t, "127.0.0.1:0", got)
	assert.Regexp(t, `^127\.0\.0\.1:[1-9]\d*$`, got)

	_, _, err = pickListen("8080")
	assert.ErrorContains(t, err, "want HOST:PORT")
}

func TestURLHost(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080",
		":8080":          "127.0.0.1:8080",
		"0.0.0.0:9":      "127.0.0.1:9",
		"[::]:9":         "127.0.0.1:9",
		"[::1]:9":        "[::1]:9",
	} {
		assert.Equal(t, want, urlHost(in), in)
	}
}

func TestMetricSum(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# HELP dubboreach_registry_providers Provider registrations.
# TYPE dubboreach_registry_providers gauge
dubboreach_registry_providers{reason="external-network",verdict="reachable"} 2
dubboreach_registry_providers{reason="never-reachable",verdict="unreachable"} 1
dubboreach_registry_providers_other 7
dubboreach_registry_consumers{reason="external-network",verdict="reachable"} 5
`)
	}))
	defer srv.Close()
	n, err := metricSum(srv.URL, "dubboreach_registry_providers")
	require.NoError(t, err)
	assert.Equal(t, 3.0, n)
}

// TestScenario checks the demo's data against the parsers the auditor uses, so that a typo shows
// here rather than as an unparseable entry in the demo.
func TestScenario(t *testing.T) {
	fab, err := routes.ParseFabric("fabric.yaml", []byte(fabricYAML()))
	require.NoError(t, err)
	assert.Len(t, fab.Installed, 2, "node-3's route is missing")
	assert.Equal(t, 8, countProviders())

	u, err := dubbo.ParseURL(providerURL(ifacePayment, "payment-service", "10.244.2.99", dubboPort, true, 1))
	require.NoError(t, err)
	assert.False(t, u.Dynamic(), "dynamic=false")
	assert.Equal(t, "dubbo", u.Protocol)
	assert.Equal(t, "10.244.2.99", u.Host)
	assert.Equal(t, uint16(dubboPort), u.Port)
	assert.Equal(t, ifacePayment, u.Params["interface"])
	u, err = dubbo.ParseURL(consumerURL(ifacePayment, "report", "10.244.3.23", 1))
	require.NoError(t, err)
	assert.Equal(t, "consumer", u.Protocol)
	assert.Equal(t, "10.244.3.23", u.Host)
	assert.Equal(t, "consumers", u.Params["category"])

	seen := map[string]bool{}
	for _, a := range apps {
		assert.False(t, seen[a.PodIP], "pod IP %s used twice", a.PodIP)
		seen[a.PodIP] = true
		n := nodeByName(a.Node)
		_, cidr, err := net.ParseCIDR(n.PodCIDR)
		require.NoError(t, err)
		assert.True(t, cidr.Contains(net.ParseIP(a.PodIP)), "%s's pod IP %s is in %s's pod CIDR %s", a.Name, a.PodIP, n.Name, n.PodCIDR)
	}
}
