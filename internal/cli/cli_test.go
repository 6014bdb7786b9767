package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes/render"
)

const (
	flannelInventory = "../../routes/testdata/flannel-inventory.yaml"
	flannelFabric    = "../../routes/testdata/flannel-fabric.yaml"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// The migration case of issue 2, word for word.
func TestRoutesMissingCiscoIOS(t *testing.T) {
	out, errOut, code := run(t, "routes", "-o", "cisco-ios", "--missing", "--inventory", flannelInventory, "--fabric", flannelFabric)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "ip route 10.131.10.0 255.255.255.0 10.132.2.22\n", out)
	assert.Empty(t, errOut)
}

func TestRoutesAllRouterFormatsRender(t *testing.T) {
	for _, f := range render.Names() {
		t.Run(f, func(t *testing.T) {
			out, errOut, code := run(t, "routes", "-o", f, "--inventory", flannelInventory, "--fabric", flannelFabric)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, out, "10.131.10.0")
			assert.Contains(t, out, "10.131.73.0")
		})
	}
}

func TestRoutesTableAndJSON(t *testing.T) {
	out, _, code := run(t, "routes", "--inventory", flannelInventory, "--fabric", flannelFabric)
	require.Equal(t, 0, code)
	assert.Equal(t, `NODE   PREFIX          NEXT HOP     SOURCE  PUBLISHED
node1  10.131.10.0/24  10.132.2.22  node    no
node2  10.131.73.0/24  10.132.2.23  node    yes
`, out)

	out, _, code = run(t, "routes", "-o", "json", "--inventory", flannelInventory, "--fabric", flannelFabric)
	require.Equal(t, 0, code)
	var doc routesJSON
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, "static", doc.Publish)
	assert.Equal(t, []routeJSON{
		{Prefix: "10.131.10.0/24", NextHop: "10.132.2.22", Node: "node1", Source: "node", Published: false},
		{Prefix: "10.131.73.0/24", NextHop: "10.132.2.23", Node: "node2", Source: "node", Published: true},
	}, doc.Routes)
	assert.Empty(t, doc.Problems)

	out, _, code = run(t, "routes", "-o", "yaml", "--missing", "--inventory", flannelInventory, "--fabric", flannelFabric)
	require.Equal(t, 0, code)
	assert.Equal(t, "problems: []\npublish: static\nroutes:\n- nextHop: 10.132.2.22\n  node: node1\n  prefix: 10.131.10.0/24\n  published: false\n  source: node\n", out)
}

func TestRoutesStaleRemove(t *testing.T) {
	dir := t.TempDir()
	fab := filepath.Join(dir, "fabric.yaml")
	require.NoError(t, os.WriteFile(fab, []byte("apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec:\n  podRoutes:\n    installed: [10.131.73.0/24, 10.131.99.0/24]\n"), 0o644))
	out, errOut, code := run(t, "routes", "-o", "cisco-ios", "--stale", "--remove", "--inventory", flannelInventory, "--fabric", fab)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "no ip route 10.131.99.0 255.255.255.0\n", out)

	out, _, code = run(t, "routes", "-o", "linux", "--missing", "--remove", "--inventory", flannelInventory, "--fabric", fab)
	require.Equal(t, 0, code)
	assert.Equal(t, "ip route del 10.131.10.0/24 via 10.132.2.22\n", out)
}

func TestRoutesProblemsGoToStderrForRouterFormats(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inv.yaml")
	require.NoError(t, os.WriteFile(inv, []byte(`apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: a}, spec: {podCIDRs: [10.1.0.0/24]}, status: {addresses: [{type: InternalIP, address: 192.0.2.1}]}}
- {apiVersion: v1, kind: Node, metadata: {name: b}, spec: {podCIDRs: [10.1.1.0/24]}}
`), 0o644))
	out, errOut, code := run(t, "routes", "-o", "frr", "--inventory", inv)
	require.Equal(t, 0, code)
	assert.Equal(t, "ip route 10.1.0.0/24 192.0.2.1\n", out, "a route without next hop is not rendered")
	assert.Contains(t, errOut, "warning: node b: has no IPv4 InternalIP address for pod route 10.1.1.0/24")

	out, _, _ = run(t, "routes", "--inventory", inv)
	assert.Contains(t, out, "b     10.1.1.0/24  -          node    no")
	assert.Contains(t, out, "Problems (1):\n  - node b: has no IPv4 InternalIP address")
}

// The check case of issue 2, word for word.
func TestCheckMigrationCase(t *testing.T) {
	out, errOut, code := run(t, "check", "10.131.10.5", "10.131.73.9", "10.132.2.22", "172.17.0.2", "127.0.0.1",
		"--inventory", flannelInventory, "--fabric", flannelFabric)
	assert.Equal(t, 1, code, "any address not reachable: exit 1")
	assert.Empty(t, errOut)
	assert.Equal(t, `ADDRESS      VERDICT      REASON                 NODE   PREFIX          MISSING ROUTE
10.131.10.5  unreachable  unpublished-pod-route  node1  10.131.10.0/24  10.131.10.0/24 via 10.132.2.22
10.131.73.9  reachable    published-pod-route    node2  10.131.73.0/24  -
10.132.2.22  reachable    external-network       -      10.132.2.0/24   -
172.17.0.2   unreachable  never-reachable        -      172.17.0.0/16   -
127.0.0.1    unreachable  loopback               -      -               -
`, out)

	out, _, code = run(t, "check", "-o", "json", "10.131.10.5:20880", "[::1]:20880", "--inventory", flannelInventory, "--fabric", flannelFabric)
	assert.Equal(t, 1, code)
	assert.JSONEq(t, `[
	  {"address":"10.131.10.5:20880","verdict":"unreachable","reason":"unpublished-pod-route","node":"node1","prefix":"10.131.10.0/24",
	   "missingRoute":{"prefix":"10.131.10.0/24","nextHop":"10.132.2.22","node":"node1"}},
	  {"address":"[::1]:20880","verdict":"unreachable","reason":"loopback"}
	]`, out)
}

func TestCheckAllReachableExitsZero(t *testing.T) {
	out, _, code := run(t, "check", "10.131.73.9", "10.132.2.1", "--inventory", flannelInventory, "--fabric", flannelFabric)
	assert.Equal(t, 0, code, out)
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"check", "not-an-ip", "--inventory", flannelInventory}, `"not-an-ip" is not an IP address`},
		{[]string{"check"}, "requires at least 1 arg"},
		{[]string{"check", "10.0.0.1", "-o", "xml", "--inventory", flannelInventory}, `-o "xml" is not a format`},
		{[]string{"routes", "-o", "xml", "--inventory", flannelInventory}, `-o "xml" is not a format; use one of table, json, yaml, cisco-ios`},
		{[]string{"routes", "--missing", "--stale", "--inventory", flannelInventory}, "--missing and --stale"},
		{[]string{"routes", "--inventory", "does-not-exist.yaml"}, "does-not-exist.yaml"},
		{[]string{"routes", "--inventory", flannelInventory, "--fabric", flannelInventory}, "flannel-inventory.yaml: "},
		{[]string{"routes", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"nonsense"}, `unknown command "nonsense"`},
		{[]string{"routes", "-o", "bird", "--remove", "--inventory", flannelInventory}, "birdc configure"},
		{[]string{"routes", "--kubeconfig", "/nonexistent/kubeconfig"}, "no cluster to read"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, code := run(t, tc.args...)
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "dubboreach dev (commit unknown, go"), out)
}
