package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dubboreach/dubboreach/internal/cli"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

type finding struct {
	Service      string `json:"service"`
	Protocol     string `json:"protocol"`
	Address      string `json:"address"`
	Port         int    `json:"port"`
	Application  string `json:"application"`
	Kind         string `json:"kind"`
	Znode        string `json:"znode"`
	Verdict      string `json:"verdict"`
	Reason       string `json:"reason"`
	Node         string `json:"node"`
	Pod          string `json:"pod"`
	MissingRoute *struct {
		Prefix  string `json:"prefix"`
		NextHop string `json:"nextHop"`
		Node    string `json:"node"`
	} `json:"missingRoute"`
	Explanation string `json:"explanation"`
}

type auditDoc struct {
	Complete bool     `json:"complete"`
	Missing  []string `json:"missing"`
	Summary  struct {
		Total, Reachable, Unreachable, Unknown, Unparseable int
	} `json:"summary"`
	Providers   []finding `json:"providers"`
	Consumers   []finding `json:"consumers"`
	Unparseable []struct {
		Znode string `json:"znode"`
		Error string `json:"error"`
	} `json:"unparseable"`
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cli.Run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func testdata(name string) string { return filepath.Join("testdata", name) }

// provider URL as Dubbo's toFullString writes it (parameters sorted).
func providerURL(proto, hostPort, iface, extra string) string {
	params := "application=" + strings.ToLower(strings.TrimSuffix(iface[strings.LastIndex(iface, ".")+1:], "Service")) +
		"&dubbo=2.0.2&interface=" + iface + "&methods=get,put&side=provider"
	if extra != "" {
		params = extra + "&" + params
	}
	return proto + "://" + hostPort + "/" + iface + "?" + params
}

type want struct {
	verdict, reason, node, pod string
	missingRoute               string // prefix
	explain                    []string
	noExplain                  bool
}

func TestAuditOnceJSON(t *testing.T) {
	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	reg := func(persistent bool, category, iface, url string) {
		t.Helper()
		if _, err := j.URL(persistent, "/dubbo", category, iface, url); err != nil {
			t.Fatal(err)
		}
	}
	providers := map[string]want{ // by address:port
		"10.244.2.5:20880": {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "shop/cart-1", missingRoute: "10.244.2.0/24",
			explain: []string{"ip route replace 10.244.2.0/24 via 10.132.2.12", "created before injection was enabled", "kubectl -n shop delete pod cart-1"}},
		"10.244.2.6:20880": {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "legacy/billing-1", missingRoute: "10.244.2.0/24",
			explain: []string{"Namespace legacy is not labelled dubboreach.io/inject=enabled", "kubectl label namespace legacy dubboreach.io/inject=enabled"}},
		"10.244.2.8:20000": {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "shop/gopay-1", missingRoute: "10.244.2.0/24",
			explain: []string{"dubbo-go (release=dubbo-golang-3.1.0)", "ignores DUBBO_IP_TO_REGISTRY for interface-level entries"}},
		"10.244.2.9:20880": {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "shop/stock-1", missingRoute: "10.244.2.0/24",
			explain: []string{"was injected in pod mode (decided by routes: all 2 nodes had published pod routes)", "restart the pod so that the webhook decides again"}},
		"10.244.2.10:20880": {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "shop/pinned-1", missingRoute: "10.244.2.0/24",
			explain: []string{"sets DUBBO_IP_TO_REGISTRY itself in container app", "never overwrites it"}},
		"10.244.2.11:20880": {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "shop/deaf-1", missingRoute: "10.244.2.0/24",
			explain: []string{"was injected in host mode (status.hostIP) (decided by namespace-annotation) yet registered its pod IP", "does not read DUBBO_IP_TO_REGISTRY"}},
		"10.132.2.11:30880": {verdict: "reachable", reason: "external-network", node: "node-a", pod: "shop/edge-1", noExplain: true},
		"10.132.2.12:31999": {verdict: "reachable", reason: "external-network", node: "node-b",
			explain: []string{"node node-b's address, but no pod there publishes hostPort 31999: nothing answers"}},
		"10.244.2.77:20880": {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", missingRoute: "10.244.2.0/24",
			explain: []string{"persistent entry (dynamic=false) outlived its provider", "delete the znode"}},
		"172.17.0.3:20880":        {verdict: "unreachable", reason: "never-reachable", explain: []string{"172.17.0.0/16, a network the fabric never reaches"}},
		"10.96.0.10:20880":        {verdict: "unreachable", reason: "service-network", explain: []string{"is a ClusterIP"}},
		"127.0.0.1:20880":         {verdict: "unreachable", reason: "loopback", explain: []string{"is a loopback address"}},
		"192.168.50.1:20880":      {verdict: "unknown", reason: "no-matching-network", explain: []string{"spec.reachable or spec.unreachable"}},
		"orders.example.svc:8080": {verdict: "unknown", reason: "hostname", explain: []string{"does not resolve names"}},
		"fd00::5:50051":           {verdict: "unknown", reason: "no-matching-network"},
		"10.244.1.7:20880":        {verdict: "reachable", reason: "published-pod-route", node: "node-a", pod: "shop/orders-1", noExplain: true},
	}
	reg(false, "providers", "com.shop.CartService", providerURL("dubbo", "10.244.2.5:20880", "com.shop.CartService", "anyhost=true"))
	reg(false, "providers", "com.shop.BillingService", providerURL("dubbo", "10.244.2.6:20880", "com.shop.BillingService", ""))
	reg(false, "providers", "com.shop.PayService", providerURL("dubbo", "10.244.2.8:20000", "com.shop.PayService", "release=dubbo-golang-3.1.0"))
	reg(false, "providers", "com.shop.StockService", providerURL("dubbo", "10.244.2.9:20880", "com.shop.StockService", ""))
	reg(false, "providers", "com.shop.PinnedService", providerURL("dubbo", "10.244.2.10:20880", "com.shop.PinnedService", ""))
	reg(false, "providers", "com.shop.DeafService", providerURL("dubbo", "10.244.2.11:20880", "com.shop.DeafService", ""))
	reg(false, "providers", "com.shop.EdgeService", providerURL("dubbo", "10.132.2.11:30880", "com.shop.EdgeService", ""))
	reg(false, "providers", "com.shop.GhostService", providerURL("dubbo", "10.132.2.12:31999", "com.shop.GhostService", ""))
	reg(true, "providers", "com.shop.OldService", providerURL("dubbo", "10.244.2.77:20880", "com.shop.OldService", "dynamic=false"))
	reg(false, "providers", "com.shop.DockerService", providerURL("dubbo", "172.17.0.3:20880", "com.shop.DockerService", ""))
	reg(false, "providers", "com.shop.ClusterIPService", providerURL("dubbo", "10.96.0.10:20880", "com.shop.ClusterIPService", ""))
	reg(false, "providers", "com.shop.LocalService", providerURL("dubbo", "127.0.0.1:20880", "com.shop.LocalService", ""))
	reg(false, "providers", "com.shop.OfficeService", providerURL("dubbo", "192.168.50.1:20880", "com.shop.OfficeService", "group=a b&version=1.*"))
	reg(false, "providers", "orders", providerURL("rest", "orders.example.svc:8080", "orders", ""))
	reg(false, "providers", "com.shop.GreeterService", providerURL("tri", "[fd00::5]:50051", "com.shop.GreeterService", ""))
	reg(false, "providers", "com.shop.OrderService", providerURL("dubbo", "10.244.1.7:20880", "com.shop.OrderService", ""))
	reg(false, "consumers", "com.shop.OrderService", "consumer://10.244.2.5/com.shop.OrderService?application=cart&category=consumers&interface=com.shop.OrderService&side=consumer")
	if _, err := j.Instance("/services", "orders", "10.244.1.7", 20880, "dubbo"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Instance("/services", "cart", "10.244.2.5", 20880, "tri"); err != nil {
		t.Fatal(err)
	}
	// Garbage that anyone with write access could leave: a name that is no URL, data that is no JSON.
	c, _, err := zk.Connect([]string{z.Addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []string{"/dubbo/com.bad.Svc", "/dubbo/com.bad.Svc/providers", "/dubbo/com.bad.Svc/providers/dubbo%3A%2F%2F%ZZ", "/services/bad"} {
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(p, err)
		}
	}
	if _, err := c.Create("/services/bad/x", []byte("\x1b[31m{boom"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := runCLI(t, "audit", "--once", "--zk-connect-timeout", "60s", "-o", "json", "--zk", z.Addr, "--inventory", testdata("inventory.yaml"), "--fabric", testdata("fabric.yaml"))
	if code != 1 {
		t.Fatalf("exit %d, want 1 (unreachable providers); stderr: %s", code, stderr)
	}
	var doc auditDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	// The document has exactly the contract's top-level keys.
	var top map[string]json.RawMessage
	_ = json.Unmarshal([]byte(out), &top)
	for _, k := range []string{"complete", "missing", "summary", "providers", "consumers", "unparseable"} {
		if _, ok := top[k]; !ok {
			t.Errorf("key %q missing from the document", k)
		}
	}
	if len(top) != 6 {
		t.Errorf("document has %d keys, want the 6 of DESIGN.md", len(top))
	}
	if !doc.Complete || len(doc.Missing) != 0 {
		t.Errorf("complete=%v missing=%v", doc.Complete, doc.Missing)
	}
	s := doc.Summary
	if s.Total != 20 || s.Reachable != 4 || s.Unreachable != 11 || s.Unknown != 3 || s.Unparseable != 2 {
		t.Errorf("summary = %+v, want total 20 (18 providers + 2 unparseable), reachable 4, unreachable 11, unknown 3", s)
	}
	seen := map[string]bool{}
	for _, f := range doc.Providers {
		if f.Kind == "application" {
			continue
		}
		key := hostPort(f.Address, f.Port)
		w, ok := providers[key]
		if !ok {
			t.Errorf("unexpected provider %s: %+v", key, f)
			continue
		}
		seen[key] = true
		checkFinding(t, key, f, w)
		if f.Kind != "interface" || !strings.HasPrefix(f.Znode, "/dubbo/") || !strings.Contains(f.Znode, "/providers/") {
			t.Errorf("%s: kind %q znode %q", key, f.Kind, f.Znode)
		}
	}
	for k := range providers {
		if !seen[k] {
			t.Errorf("provider %s not reported", k)
		}
	}
	// Application level: one entry per instance, service = application name, protocol from dubbo.endpoints.
	apps := 0
	for _, f := range doc.Providers {
		if f.Kind != "application" {
			continue
		}
		apps++
		switch f.Service {
		case "orders":
			checkFinding(t, "instance orders", f, want{verdict: "reachable", reason: "published-pod-route", node: "node-a", pod: "shop/orders-1", noExplain: true})
			if f.Protocol != "dubbo" || f.Znode != "/services/orders/10.244.1.7:20880" || f.Application != "orders" {
				t.Errorf("instance orders: %+v", f)
			}
		case "cart":
			checkFinding(t, "instance cart", f, want{verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "shop/cart-1", missingRoute: "10.244.2.0/24",
				explain: []string{"created before injection was enabled"}})
			if f.Protocol != "tri" {
				t.Errorf("instance cart protocol %q, want tri", f.Protocol)
			}
		default:
			t.Errorf("unexpected instance %+v", f)
		}
	}
	if apps != 2 {
		t.Errorf("%d application-level entries, want 2", apps)
	}
	if len(doc.Consumers) != 1 || doc.Consumers[0].Address != "10.244.2.5" || doc.Consumers[0].Port != 0 || doc.Consumers[0].Pod != "shop/cart-1" || doc.Consumers[0].Verdict != "unreachable" {
		t.Errorf("consumers = %+v", doc.Consumers)
	}
	if len(doc.Unparseable) != 2 {
		t.Fatalf("unparseable = %+v", doc.Unparseable)
	}
	for _, u := range doc.Unparseable {
		if strings.ContainsRune(u.Error, '\x1b') || strings.ContainsRune(u.Znode, '\x1b') {
			t.Errorf("unparseable entry not escaped: %+v", u)
		}
	}
	if doc.Unparseable[0].Znode != "/dubbo/com.bad.Svc/providers/dubbo%3A%2F%2F%ZZ" || doc.Unparseable[1].Znode != "/services/bad/x" || !strings.Contains(doc.Unparseable[1].Error, `\x1b`) {
		t.Errorf("unparseable = %+v", doc.Unparseable)
	}
	// Absent facts are omitted, never invented.
	if strings.Contains(out, `"pod": ""`) || strings.Contains(out, `"node": ""`) || strings.Contains(out, `"port": 0`) {
		t.Error("empty facts printed instead of omitted")
	}

	// The table says the same, with the explanations.
	code, out, _ = runCLI(t, "audit", "--once", "--zk-connect-timeout", "60s", "--zk", z.Addr, "--inventory", testdata("inventory.yaml"), "--fabric", testdata("fabric.yaml"))
	t.Logf("audit --once (table):\n%s", out)
	if code != 1 || !strings.Contains(out, ": complete") || !strings.Contains(out, "shop/cart-1") || !strings.Contains(out, "What to do") || !strings.Contains(out, "Unparseable (2)") {
		t.Errorf("table (exit %d):\n%s", code, out)
	}
	// The route dialect of the explanations is a parameter.
	_, out, _ = runCLI(t, "audit", "--once", "--zk-connect-timeout", "60s", "-o", "json", "--route-format", "cisco-ios", "--zk", z.Addr, "--inventory", testdata("inventory.yaml"), "--fabric", testdata("fabric.yaml"))
	if !strings.Contains(out, "ip route 10.244.2.0 255.255.255.0 10.132.2.12") {
		t.Errorf("--route-format cisco-ios: no IOS route in\n%s", out)
	}
}

func hostPort(a string, p int) string {
	if p == 0 {
		return a
	}
	return a + ":" + itoa(p)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func checkFinding(t *testing.T, key string, f finding, w want) {
	t.Helper()
	if f.Verdict != w.verdict || f.Reason != w.reason || f.Node != w.node || f.Pod != w.pod {
		t.Errorf("%s: verdict %s reason %s node %q pod %q; want %s %s %q %q", key, f.Verdict, f.Reason, f.Node, f.Pod, w.verdict, w.reason, w.node, w.pod)
	}
	switch {
	case w.missingRoute == "" && f.MissingRoute != nil:
		t.Errorf("%s: missingRoute %+v, want none", key, f.MissingRoute)
	case w.missingRoute != "" && (f.MissingRoute == nil || f.MissingRoute.Prefix != w.missingRoute || f.MissingRoute.NextHop == "" || f.MissingRoute.Node != w.node):
		t.Errorf("%s: missingRoute %+v, want %s via the node", key, f.MissingRoute, w.missingRoute)
	}
	if w.noExplain && f.Explanation != "" {
		t.Errorf("%s: explanation %q, want none", key, f.Explanation)
	}
	for _, e := range w.explain {
		if !strings.Contains(f.Explanation, e) {
			t.Errorf("%s: explanation %q lacks %q", key, f.Explanation, e)
		}
	}
}

func TestAuditOnceExitCodes(t *testing.T) {
	z := harness.StartZooKeeper(t)
	// An empty registry, completely read: exit 0.
	code, out, stderr := runCLI(t, "audit", "--once", "--zk-connect-timeout", "60s", "-o", "json", "--zk", z.Addr, "--inventory", testdata("inventory.yaml"), "--fabric", testdata("fabric.yaml"))
	if code != 0 || !strings.Contains(out, `"complete": true`) {
		t.Errorf("empty registry: exit %d, %s %s", code, out, stderr)
	}
	// No server: incomplete, never reported clean.
	z.Stop()
	code, out, _ = runCLI(t, "audit", "--once", "--zk-connect-timeout", "60s", "-o", "json", "--zk-connect-timeout", "1s", "--zk", z.Addr, "--inventory", testdata("inventory.yaml"), "--fabric", testdata("fabric.yaml"))
	var doc auditDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err, out)
	}
	if code != 1 || doc.Complete || len(doc.Missing) != 2 {
		t.Errorf("server down: exit %d complete %v missing %v", code, doc.Complete, doc.Missing)
	}
	// Usage errors: exit 2.
	for _, args := range [][]string{
		{"audit", "--once"},
		{"audit", "--once", "--zk", z.Addr, "-o", "yaml"},
		{"audit", "--once", "--zk", z.Addr, "--fix", "host"},
		{"audit", "--once", "--zk", z.Addr, "--route-format", "nope"},
		{"audit", "--once", "--zk", z.Addr, "--zk-root", "dubbo"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
