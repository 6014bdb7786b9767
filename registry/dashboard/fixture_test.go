package dashboard

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
)

// world is the registry's test cluster (registry/testdata): node-a's pod route is published,
// node-b's is not; pods in namespaces shop (labelled) and legacy (not).
type world struct {
	store *routes.Store
	pods  *registry.PodIndex
	inv   *routes.Inventory
	fab   *routes.Fabric
}

func newWorld(t testing.TB) *world {
	t.Helper()
	inv, err := routes.LoadInventory(filepath.Join("..", "testdata", "inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fab, err := routes.LoadFabric(filepath.Join("..", "testdata", "fabric.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{store: routes.NewStore(fab, nil), pods: registry.NewPodIndex(), inv: inv, fab: fab}
	w.store.Replace(inv)
	w.pods.Replace(inv)
	return w
}

// providerURL is a provider URL as Dubbo's toFullString writes it.
func providerURL(proto, hostPort, iface, app, extra string) string {
	params := "application=" + url.QueryEscape(app) + "&dubbo=2.0.2&interface=" + iface + "&methods=get,put&side=provider"
	if extra != "" {
		params = extra + "&" + params
	}
	return proto + "://" + hostPort + "/" + iface + "?" + params
}

func providerEntry(iface, u string) zk.Entry {
	return zk.Entry{Kind: zk.KindProvider, Dir: "/dubbo/" + iface + "/providers", Name: url.QueryEscape(u)}
}

func instanceData(app, addr string, port int, proto string) []byte {
	return fmt.Appendf(nil, `{"name":%q,"id":"%s:%d","address":%q,"port":%d,"sslPort":null,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":null,"name":%q,"metadata":{"dubbo.endpoints":"[{\"port\":%d,\"protocol\":\"%s\"}]"}},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC"}`,
		app, addr, port, addr, port, app, port, proto)
}

// snapshot holds the scenario's registrations plus bulk providers (com.bulk.Service<i>, half
// on node-a's published pod network, half on node-b's unpublished one).
func snapshot(bulk int) zk.Snapshot {
	es := []zk.Entry{
		providerEntry("com.shop.CartService", providerURL("dubbo", "10.244.2.5:20880", "com.shop.CartService", "cart", "anyhost=true")),
		providerEntry("com.shop.BillingService", providerURL("dubbo", "10.244.2.6:20880", "com.shop.BillingService", "billing", "")),
		providerEntry("com.shop.OrderService", providerURL("dubbo", "10.244.1.7:20880", "com.shop.OrderService", "orders", "")),
		providerEntry("com.shop.DockerService", providerURL("dubbo", "172.17.0.3:20880", "com.shop.DockerService", "docker", "")),
		providerEntry("com.shop.LocalService", providerURL("dubbo", "127.0.0.1:20880", "com.shop.LocalService", "local", "")),
		providerEntry("com.shop.EdgeService", providerURL("dubbo", "10.132.2.11:30880", "com.shop.EdgeService", "edge", "")),
		providerEntry("orders", providerURL("rest", "orders.example.svc:8080", "orders", "orders", "")),
		providerEntry("com.shop.OldService", providerURL("dubbo", "10.244.2.77:20880", "com.shop.OldService", "old", "dynamic=false")),
		{Kind: zk.KindConsumer, Dir: "/dubbo/com.shop.OrderService/consumers", Name: url.QueryEscape("consumer://10.244.2.5/com.shop.OrderService?application=cart&category=consumers&interface=com.shop.OrderService&side=consumer")},
		{Kind: zk.KindInstance, Dir: "/services/orders", Name: "10.244.1.7:20880", Data: instanceData("orders", "10.244.1.7", 20880, "dubbo")},
		{Kind: zk.KindInstance, Dir: "/services/cart", Name: "10.244.2.5:20880", Data: instanceData("cart", "10.244.2.5", 20880, "tri")},
		{Kind: zk.KindProvider, Dir: "/dubbo/com.bad.Svc/providers", Name: "dubbo%3A%2F%2F%ZZ"},
	}
	for i := range bulk {
		node := 1 + i%2
		iface := fmt.Sprintf("com.bulk.Service%d", i/10)
		es = append(es, providerEntry(iface, providerURL("dubbo", fmt.Sprintf("10.244.%d.%d:%d", node, 100+i%100, 20000+i%40000), iface, fmt.Sprintf("bulk%d", i%7), "")))
	}
	now := time.Now()
	return zk.Snapshot{Entries: es, Connected: true, Scanned: true, Complete: true, LastFullScan: now, LastCompleteScan: now}
}

// judge runs the real auditor's Judge.
func (w *world) judge(snap zk.Snapshot) *registry.Result {
	j := &registry.Judge{}
	return j.Judge(snap, w.store.Table(), w.pods.View())
}

func findingByPrefix(r *registry.Result, znodePrefix string) *registry.Finding {
	for i := range r.Providers {
		if strings.HasPrefix(r.Providers[i].Znode, znodePrefix) {
			return &r.Providers[i]
		}
	}
	return nil
}
