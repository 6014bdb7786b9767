package cli

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes/render"
	"github.com/dubboreach/dubboreach/test/harness"
)

// The golden files pin the CLI's output contracts (DESIGN.md) byte for byte, so that a
// refactor provably changes none of them. `go test ./internal/cli -run Golden -update` writes
// them again; review the diff as you would a contract change.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "no golden file: run go test ./internal/cli -run Golden -update")
	assert.Equal(t, string(want), got, "output differs from %s", file)
}

const (
	calicoInventory = "../../routes/testdata/calico-inventory.yaml"
	staleFabric     = "testdata/stale-fabric.yaml"
)

func TestGoldenRoutes(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"routes-flannel.json", []string{"-o", "json", "--inventory", flannelInventory, "--fabric", flannelFabric}},
		{"routes-flannel-missing.json", []string{"-o", "json", "--missing", "--inventory", flannelInventory, "--fabric", flannelFabric}},
		{"routes-flannel-remove.yaml", []string{"-o", "yaml", "--remove", "--inventory", flannelInventory, "--fabric", flannelFabric}},
		{"routes-flannel.table", []string{"--inventory", flannelInventory, "--fabric", flannelFabric}},
		{"routes-stale.json", []string{"-o", "json", "--stale", "--inventory", flannelInventory, "--fabric", staleFabric}},
		{"routes-stale-remove.table", []string{"--stale", "--remove", "--inventory", flannelInventory, "--fabric", staleFabric}},
		{"routes-calico.json", []string{"-o", "json", "--inventory", calicoInventory}},
		{"routes-registry.json", []string{"-o", "json", "--inventory", auditInventory, "--fabric", auditFabric}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"routes"}, tc.args...)...)
			require.Equal(t, ExitOK, code, errOut)
			golden(t, tc.name, out)
		})
	}
	// Router dialects: stdout, stderr (problems, refusals) and the exit status, since a dialect
	// that cannot remove a route without its next hop refuses rather than guessing.
	for _, f := range render.Names() {
		for name, args := range map[string][]string{
			"routes-calico." + f:       {"-o", f, "--inventory", calicoInventory},
			"routes-stale-remove." + f: {"-o", f, "--stale", "--remove", "--inventory", flannelInventory, "--fabric", staleFabric},
			"routes-remove." + f:       {"-o", f, "--remove", "--inventory", flannelInventory, "--fabric", flannelFabric},
		} {
			t.Run(name, func(t *testing.T) {
				out, errOut, code := run(t, append([]string{"routes"}, args...)...)
				golden(t, name+".txt", fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, out, errOut))
			})
		}
	}
}

func TestGoldenCheck(t *testing.T) {
	// One address per verdict reason the route core gives, with and without ports.
	addrs := []string{"10.244.2.5:20880", "10.244.1.7", "10.132.2.11:30880", "172.17.0.3", "10.96.0.10:80",
		"127.0.0.1", "169.254.1.1", "0.0.0.0", "224.0.0.1", "239.1.1.1", "192.168.50.1", "[fd00::5]:50051", "::1"}
	for _, o := range []string{"json", "table"} {
		t.Run(o, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"check", "-o", o, "--inventory", auditInventory, "--fabric", auditFabric}, addrs...)...)
			require.Equal(t, ExitFindings, code, errOut)
			golden(t, "check-registry."+o, out)
		})
	}
	out, errOut, code := run(t, "check", "-o", "json", "--inventory", calicoInventory, "10.233.64.2", "10.233.64.70", "fd00:50::11")
	require.Equal(t, ExitFindings, code, errOut)
	golden(t, "check-calico.json", out)
}

// TestGoldenAudit seeds ZooKeeper with one registration per kind of finding (every reason,
// pods found and not, a stale persistent entry, consumers, application-level instances and
// garbage) and pins `audit --once` in both formats and the disable plan of --fix --dry-run.
func TestGoldenAudit(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	provider := func(proto, hostPort, iface, extra string) {
		u := proto + "://" + hostPort + "/" + iface + "?" + extra + "application=app&dubbo=2.0.2&interface=" + iface + "&methods=get,put&side=provider"
		create(t, c, "/dubbo/"+iface+"/providers/"+url.QueryEscape(u), nil)
	}
	provider("dubbo", "10.244.2.5:20880", "com.shop.CartService", "anyhost=true&")
	provider("dubbo", "10.244.2.6:20880", "com.shop.BillingService", "")
	provider("dubbo", "10.244.2.8:20000", "com.shop.PayService", "release=dubbo-golang-3.1.0&")
	provider("dubbo", "10.244.2.9:20880", "com.shop.StockService", "")
	provider("dubbo", "10.244.2.10:20880", "com.shop.PinnedService", "")
	provider("dubbo", "10.244.2.11:20880", "com.shop.DeafService", "")
	provider("dubbo", "10.132.2.11:30880", "com.shop.EdgeService", "")
	provider("dubbo", "10.132.2.12:31999", "com.shop.GhostService", "")
	provider("dubbo", "10.244.2.77:20880", "com.shop.OldService", "dynamic=false&")
	provider("dubbo", "172.17.0.3:20880", "com.shop.DockerService", "")
	provider("dubbo", "10.96.0.10:20880", "com.shop.ClusterIPService", "")
	provider("dubbo", "127.0.0.1:20880", "com.shop.LocalService", "")
	provider("dubbo", "192.168.50.1:20880", "com.shop.OfficeService", "group=a b&version=1.*&")
	provider("rest", "orders.example.svc:8080", "orders", "")
	provider("tri", "[fd00::5]:50051", "com.shop.GreeterService", "")
	provider("dubbo", "10.244.1.7:20880", "com.shop.OrderService", "")
	create(t, c, "/dubbo/com.shop.OrderService/consumers/"+url.QueryEscape(
		"consumer://10.244.2.5/com.shop.OrderService?application=cart&category=consumers&interface=com.shop.OrderService&side=consumer"), nil)
	instance := func(app, ip, port, proto string) {
		data := `{"name":"` + app + `","id":"` + ip + `:` + port + `","address":"` + ip + `","port":` + port +
			`,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","metadata":{"dubbo.endpoints":"[{\"port\":` + port +
			`,\"protocol\":\"` + proto + `\"}]"}},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC"}`
		create(t, c, "/services/"+app+"/"+ip+":"+port, []byte(data))
	}
	instance("orders", "10.244.1.7", "20880", "dubbo")
	instance("cart", "10.244.2.5", "20880", "tri")
	create(t, c, "/dubbo/com.bad.Svc/providers/dubbo%3A%2F%2F%ZZ", nil)
	create(t, c, "/services/bad/x", []byte("\x1b[31m{boom"))
	_, err := c.Create("/dubbo/com.shop.OrderService/routers", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	for _, o := range []string{"json", "table"} {
		t.Run(o, func(t *testing.T) {
			out, errOut, code := audit(t, z, "-o", o)
			require.Equal(t, ExitFindings, code, errOut)
			// The table's first line names the server, whose port is the test's.
			golden(t, "audit."+o, strings.ReplaceAll(out, z.Addr, "ZK"))
		})
	}
	t.Run("cisco-ios", func(t *testing.T) {
		out, errOut, code := audit(t, z, "-o", "json", "--route-format", "cisco-ios")
		require.Equal(t, ExitFindings, code, errOut)
		golden(t, "audit-cisco-ios.json", out)
	})
	t.Run("fix-dry-run", func(t *testing.T) {
		out, errOut, code := audit(t, z, "-o", "json", "--fix", "disable,prune", "--stale-after", "0", "--dry-run")
		require.Equal(t, ExitOK, code, errOut)
		// The prune reason says since when the entry is orphaned: now.
		golden(t, "audit-fix-dry-run.json", regexp.MustCompile(`since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(out, "since TIME"))
	})
}
