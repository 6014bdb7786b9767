package dashboard

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
)

type server struct {
	*httptest.Server
	holder *registry.Holder
	world  *world
	dash   *Dashboard
}

func newServer(t *testing.T, bulk int) *server {
	t.Helper()
	w := newWorld(t)
	h := registry.NewHolder()
	h.Set(w.judge(snapshot(bulk)))
	mux := http.NewServeMux()
	d := Register(mux, Options{Holder: h, Store: w.store, Pods: w.pods, Context: t.Context(), EventInterval: 10 * time.Millisecond})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return &server{Server: s, holder: h, world: w, dash: d}
}

// get fetches path and decodes the JSON answer into v; it returns the status code.
func (s *server) get(t *testing.T, path string, v any) int {
	t.Helper()
	res, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q, want JSON", path, ct)
	}
	b, _ := io.ReadAll(res.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, b)
		}
	}
	return res.StatusCode
}

func TestListFilters(t *testing.T) {
	s := newServer(t, 200)
	for _, tc := range []struct {
		query string
		total int
		each  func(Row) bool
	}{
		{"", 210, nil}, // 8 + 200 interface-level, 2 instances
		{"verdict=unreachable", 106, func(r Row) bool { return r.Verdict == routes.Unreachable }},
		{"verdict=reachable", 103, func(r Row) bool { return r.Verdict == routes.Reachable }},
		{"verdict=unknown", 1, func(r Row) bool { return r.Verdict == routes.Unknown && r.Reason == registry.ReasonHostname }},
		{"reason=loopback", 1, func(r Row) bool { return r.Reason == routes.ReasonLoopback && r.HostPort == "127.0.0.1:20880" }},
		{"reason=unpublished-pod-route&node=node-b", 104, func(r Row) bool {
			return r.Node == "node-b" && r.MissingRoute != nil && r.MissingRoute.Prefix == "10.244.2.0/24"
		}},
		{"namespace=legacy", 1, func(r Row) bool { return r.Pod == "legacy/billing-1" }},
		{"namespace=shop&verdict=unreachable", 2, func(r Row) bool { return r.Namespace == "shop" && r.Pod == "shop/cart-1" }},
		{"service=com.shop.CartService", 1, func(r Row) bool { return r.Service == "com.shop.CartService" }},
		{"application=bulk3", 29, func(r Row) bool { return r.Application == "bulk3" }},
		{"service=no.such.Service", 0, nil},
		{"kind=application", 2, func(r Row) bool {
			return r.Kind == registry.KindApplication && strings.HasPrefix(r.Znode, "/services/")
		}},
		{"q=CARTSERVICE", 1, func(r Row) bool { return r.Service == "com.shop.CartService" }},
		{"q=shop/cart-1", 2, func(r Row) bool { return r.Pod == "shop/cart-1" }},
		{"q=10.244.2.5:20880", 2, func(r Row) bool { return r.HostPort == "10.244.2.5:20880" }},
		{"q=" + url.QueryEscape("never-reach"), 1, func(r Row) bool { return r.Reason == routes.ReasonNeverReachable }},
		{"q=nothing-matches-this", 0, nil},
		// Flagged: every unreachable or unknown entry, and the bulk entries on node-a's published
		// pod network, which no pod holds (stale).
		{"flagged=true", 207, func(r Row) bool { return r.Flagged }},
		{"flagged=true&verdict=reachable", 100, func(r Row) bool { return r.Verdict == routes.Reachable && r.Stale && r.Node == "node-a" }},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var p Page
			if code := s.get(t, "/api/v1/providers?limit=500&"+tc.query, &p); code != 200 {
				t.Fatalf("status %d", code)
			}
			if p.Total != tc.total || len(p.Items) != min(tc.total, 500) {
				t.Errorf("total %d (%d items), want %d", p.Total, len(p.Items), tc.total)
			}
			for _, r := range p.Items {
				if tc.each != nil && !tc.each(r) {
					t.Errorf("row does not match the filter: %+v", r)
				}
			}
		})
	}
	var c Page
	s.get(t, "/api/v1/consumers?verdict=unreachable", &c)
	if c.Total != 1 || c.Items[0].Side != "consumer" || c.Items[0].Pod != "shop/cart-1" {
		t.Errorf("consumers: %+v", c)
	}
}

func TestListSortAndPaging(t *testing.T) {
	s := newServer(t, 200)
	var all Page
	s.get(t, "/api/v1/providers?limit=500&sort=address", &all)
	if all.Total != 210 || all.Sort != "address" || all.Dir != "asc" {
		t.Fatalf("page: total %d sort %s dir %s", all.Total, all.Sort, all.Dir)
	}
	// Addresses in address order (127.0.0.1 < 172.17... < 10.x is false: compare as IPs), hostnames last.
	if all.Items[0].Address != "10.132.2.11" || all.Items[len(all.Items)-1].Address != "orders.example.svc" {
		t.Errorf("address order: first %s, last %s", all.Items[0].Address, all.Items[len(all.Items)-1].Address)
	}
	var desc Page
	s.get(t, "/api/v1/providers?limit=500&sort=address&dir=desc", &desc)
	if desc.Items[0].Address != "orders.example.svc" || desc.Items[len(desc.Items)-1].Address != "10.132.2.11" {
		t.Errorf("address desc: first %s, last %s", desc.Items[0].Address, desc.Items[len(desc.Items)-1].Address)
	}
	// Default order: unreachable first.
	var def Page
	s.get(t, "/api/v1/providers", &def)
	if def.Sort != "verdict" || def.Items[0].Verdict != routes.Unreachable || def.Limit != DefaultLimit || len(def.Items) != DefaultLimit || def.Pages != 5 {
		t.Errorf("default page: sort %s first %s limit %d items %d pages %d", def.Sort, def.Items[0].Verdict, def.Limit, len(def.Items), def.Pages)
	}
	var svc Page
	s.get(t, "/api/v1/providers?limit=500&sort=service&dir=desc", &svc)
	if !slices.IsSortedFunc(svc.Items, func(a, b Row) int { return strings.Compare(b.Service, a.Service) }) {
		t.Error("sort=service&dir=desc is not sorted by service, descending")
	}
	// Pages tile the result: no row twice, none missing.
	seen := map[string]bool{}
	for page := 1; page <= 5; page++ {
		var p Page
		s.get(t, "/api/v1/providers?sort=service&limit=47&page="+itoa(page), &p)
		if p.Pages != 5 || p.Page != page {
			t.Fatalf("page %d: pages %d page %d", page, p.Pages, p.Page)
		}
		for _, r := range p.Items {
			if seen[r.Znode] {
				t.Errorf("row %s on two pages", r.Znode)
			}
			seen[r.Znode] = true
		}
	}
	if len(seen) != 210 {
		t.Errorf("pages held %d rows, want 210", len(seen))
	}
	// Past the end: an empty page, not an error.
	var past Page
	if code := s.get(t, "/api/v1/providers?page=99", &past); code != 200 || len(past.Items) != 0 || past.Total != 210 {
		t.Errorf("page past the end: %d, %d items, total %d", code, len(past.Items), past.Total)
	}
	var max Page
	if code := s.get(t, "/api/v1/providers?limit=500", &max); code != 200 || len(max.Items) != 210 {
		t.Errorf("limit=500: %d, %d items", code, len(max.Items))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

type zkMissing = zk.Missing

func TestBadParameters(t *testing.T) {
	s := newServer(t, 0)
	for _, tc := range []struct {
		path, param, allowed string
	}{
		{"/api/v1/providers?verdict=broken", "verdict", "unreachable"},
		{"/api/v1/providers?reason=bad-luck", "reason", "unpublished-pod-route"},
		{"/api/v1/providers?sort=color", "sort", "address"},
		{"/api/v1/providers?dir=up", "dir", "desc"},
		{"/api/v1/providers?limit=501", "limit", "1..500"},
		{"/api/v1/providers?limit=0", "limit", "1..500"},
		{"/api/v1/providers?limit=ten", "limit", "1..500"},
		{"/api/v1/providers?page=0", "page", "1..1048576"},
		{"/api/v1/providers?page=-3", "page", ""},
		{"/api/v1/providers?flagged=yes", "flagged", "true"},
		{"/api/v1/providers?kind=rpc", "kind", "application"},
		{"/api/v1/providers?colour=red", "colour", "verdict"},
		{"/api/v1/consumers?verdict=reachable&verdict=unknown", "verdict", ""},
		{"/api/v1/providers?q=" + strings.Repeat("x", 300), "q", ""},
		{"/api/v1/registration", "znode", ""},
		{"/api/v1/registration?znode=/x&format=cisco", "format", "junos"},
		{"/api/v1/facets?side=both", "side", "consumers"},
		{"/api/v1/overview?changes=100000", "changes", ""},
		{"/api/v1/routes?format=linux", "format", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var e apiError
			if code := s.get(t, tc.path, &e); code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", code)
			}
			if e.Parameter != tc.param || !strings.Contains(e.Error, tc.param) {
				t.Errorf("error %+v does not name parameter %q", e, tc.param)
			}
			if tc.allowed != "" && !slices.Contains(e.Allowed, tc.allowed) {
				t.Errorf("allowed values %v lack %q", e.Allowed, tc.allowed)
			}
		})
	}
}

func TestDetail(t *testing.T) {
	s := newServer(t, 0)
	r := s.holder.Latest()
	cart := findingByPrefix(r, "/dubbo/com.shop.CartService/")
	billing := findingByPrefix(r, "/dubbo/com.shop.BillingService/")
	old := findingByPrefix(r, "/dubbo/com.shop.OldService/")
	orders := findingByPrefix(r, "/services/orders/")
	q := func(z string, extra string) string { return "/api/v1/registration?znode=" + url.QueryEscape(z) + extra }

	var d Detail
	if code := s.get(t, q(cart.Znode, ""), &d); code != 200 {
		t.Fatalf("status %d", code)
	}
	if d.Dir != "/dubbo/com.shop.CartService/providers" || d.URL == nil || d.URL.Host != "10.244.2.5" || d.URL.Port != 20880 || d.URL.Protocol != "dubbo" ||
		!strings.HasPrefix(d.URL.Decoded, "dubbo://10.244.2.5:20880/com.shop.CartService?") {
		t.Errorf("parsed URL: dir %q url %+v", d.Dir, d.URL)
	}
	if !slices.Contains(d.URL.Params, Param{"anyhost", "true"}) || !slices.Contains(d.URL.Params, Param{"application", "cart"}) {
		t.Errorf("params: %v", d.URL.Params)
	}
	if d.Verdict != routes.Unreachable || d.Reason != routes.ReasonUnpublishedPodRoute || d.Pod != "shop/cart-1" || d.Node != "node-b" ||
		!strings.Contains(d.Explanation, "created before injection was enabled") {
		t.Errorf("finding: %+v", d.Row)
	}
	if d.Fix.Route == nil || d.Fix.Route.Format != "linux" || d.Fix.Route.Config != "ip route replace 10.244.2.0/24 via 10.132.2.12\n" ||
		len(d.Fix.Route.Formats) != 9 || d.Fix.Route.All != "dubboreach routes --missing -o linux" {
		t.Errorf("route fix: %+v", d.Fix.Route)
	}
	if d.Fix.NamespaceLabel == nil || d.Fix.NamespaceLabel.Command != "kubectl label namespace shop dubboreach.io/inject=enabled" ||
		d.Fix.NamespaceLabel.Done == nil || !*d.Fix.NamespaceLabel.Done {
		t.Errorf("label fix (shop is labelled): %+v", d.Fix.NamespaceLabel)
	}
	if d.Fix.Restart == nil || d.Fix.Restart.Command != "kubectl -n shop delete pod cart-1" {
		t.Errorf("restart fix: %+v", d.Fix.Restart)
	}
	// The router the user picks.
	s.get(t, q(cart.Znode, "&format=junos"), &d)
	if d.Fix.Route.Format != "junos" || !strings.Contains(d.Fix.Route.Config, "set routing-options static route 10.244.2.0/24 next-hop 10.132.2.12") {
		t.Errorf("junos: %+v", d.Fix.Route)
	}
	s.get(t, q(cart.Znode, "&format=cisco-ios"), &d)
	if !strings.Contains(d.Fix.Route.Config, "ip route 10.244.2.0 255.255.255.0 10.132.2.12") {
		t.Errorf("cisco-ios: %+v", d.Fix.Route)
	}

	var b Detail
	s.get(t, q(billing.Znode, ""), &b)
	if b.Fix.NamespaceLabel == nil || b.Fix.NamespaceLabel.Command != "kubectl label namespace legacy dubboreach.io/inject=enabled" ||
		b.Fix.NamespaceLabel.Done == nil || *b.Fix.NamespaceLabel.Done {
		t.Errorf("label fix (legacy is not labelled): %+v", b.Fix.NamespaceLabel)
	}
	var o Detail
	s.get(t, q(old.Znode, ""), &o)
	if !o.Stale || !o.Persistent || o.Fix.DeleteZnode == nil || !strings.Contains(o.Fix.DeleteZnode.Command, "delete '/dubbo/com.shop.OldService/providers/") || o.Fix.Restart != nil {
		t.Errorf("stale persistent entry: %+v", o)
	}
	var in Detail
	s.get(t, q(orders.Znode, ""), &in)
	if in.Instance == nil || in.Instance.Address != "10.244.1.7" || in.Instance.Port != 20880 || in.URL != nil ||
		in.Verdict != routes.Reachable || in.Fix.Route != nil || in.Fix.Restart != nil {
		t.Errorf("instance: %+v", in)
	}
	var e apiError
	if code := s.get(t, q("/dubbo/no/providers/such", ""), &e); code != http.StatusNotFound || e.Parameter != "znode" {
		t.Errorf("unknown znode: %d %+v", code, e)
	}
}

func TestRoutesView(t *testing.T) {
	s := newServer(t, 0)
	var v RoutesView
	if code := s.get(t, "/api/v1/routes", &v); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(v.Nodes) != 2 || v.Nodes[0].Name != "node-a" || v.Nodes[0].Missing != 0 || v.Nodes[0].Published != 1 ||
		v.Nodes[1].Name != "node-b" || v.Nodes[1].Missing != 1 || v.Nodes[1].Routes[0].Prefix != "10.244.2.0/24" || v.Nodes[1].Routes[0].NextHop != "10.132.2.12" {
		t.Errorf("nodes: %+v", v.Nodes)
	}
	if len(v.Formats) != 9 {
		t.Errorf("formats %v", v.Formats)
	}
	for _, f := range v.Formats {
		if !strings.Contains(v.Missing[f], "10.244.2.") || strings.Contains(v.Missing[f], "10.244.1.") {
			t.Errorf("%s: missing routes config %q", f, v.Missing[f])
		}
		if !strings.Contains(v.All[f], "10.244.1.") || !strings.Contains(v.All[f], "10.244.2.") {
			t.Errorf("%s: all routes config %q", f, v.All[f])
		}
	}
	if v.Missing["linux"] != "ip route replace 10.244.2.0/24 via 10.132.2.12\n" {
		t.Errorf("linux: %q", v.Missing["linux"])
	}
}

func TestOverviewAndChanges(t *testing.T) {
	s := newServer(t, 0)
	var o Overview
	if code := s.get(t, "/api/v1/overview", &o); code != 200 {
		t.Fatalf("status %d", code)
	}
	if !o.Complete || !o.Connected || o.LastCompleteScan == nil || o.Providers.Total != 10 || o.Providers.ByVerdict["unreachable"] != 6 ||
		o.UnparseableTotal != 1 || len(o.Changes) != 0 || o.Routes == nil || o.Routes.Missing != 1 || o.Summary.Unparseable != 1 {
		t.Errorf("overview: %+v", o)
	}
	var loop bool
	for _, rc := range o.Providers.ByReason {
		if rc.Reason == routes.ReasonLoopback && rc.Count == 1 && rc.Verdict == routes.Unreachable {
			loop = true
		}
	}
	if !loop || o.Providers.ByReason[0].Verdict != routes.Unreachable {
		t.Errorf("byReason: %+v", o.Providers.ByReason)
	}

	// Next scan: cart's provider gone, a new one, and node-b's route published (verdicts change).
	snap := snapshot(0)
	snap.Entries = snap.Entries[1:]
	snap.Entries = append(snap.Entries, providerEntry("com.shop.NewService", providerURL("dubbo", "10.244.2.40:20880", "com.shop.NewService", "new", "")))
	snap.Complete, snap.Missing = false, []zkMissing{{Path: "/dubbo/com.locked.Svc", Kind: "permission", Reason: "no read permission"}}
	fab := *s.world.fab
	fab.Installed = append(fab.Installed, mustPrefix("10.244.2.0/24"))
	s.world.store.SetFabric(&fab)
	s.holder.Set(s.world.judge(snap))
	s.get(t, "/api/v1/overview", &o)
	if o.Complete || len(o.Missing) != 1 || o.Missing[0].Path != "/dubbo/com.locked.Svc" || o.Missing[0].Kind != "permission" {
		t.Errorf("freshness: complete %v missing %+v", o.Complete, o.Missing)
	}
	kinds := map[string]int{}
	for _, c := range o.Changes {
		kinds[c.Change]++
		switch {
		case c.Change == "removed" && !strings.HasPrefix(c.Znode, "/dubbo/com.shop.CartService/"),
			c.Change == "added" && c.Service != "com.shop.NewService",
			c.Change == "changed" && (c.WasVerdict != routes.Unreachable || c.Verdict != routes.Reachable || c.Reason != routes.ReasonPublishedPodRoute):
			t.Errorf("change %+v", c)
		}
	}
	// billing, old, the consumer and the cart instance move to reachable.
	if kinds["removed"] != 1 || kinds["added"] != 1 || kinds["changed"] != 4 {
		t.Errorf("changes: %v\n%+v", kinds, o.Changes)
	}
	s.get(t, "/api/v1/overview?changes=2", &o)
	if len(o.Changes) != 2 {
		t.Errorf("changes=2 gave %d", len(o.Changes))
	}
}

func TestEvents(t *testing.T) {
	s := newServer(t, 0)
	res, err := http.Get(s.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	rd := bufio.NewReader(res.Body)
	next := func() Update {
		t.Helper()
		var ev string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			line = strings.TrimRight(line, "\n")
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && ev == "update" {
				var u Update
				if err := json.Unmarshal([]byte(v), &u); err != nil {
					t.Fatal(err)
				}
				return u
			}
		}
	}
	first := next()
	if first.Generation != 1 || !first.Complete || first.Summary.Total != 11 {
		t.Errorf("first event: %+v", first)
	}
	snap := snapshot(3)
	s.holder.Set(s.world.judge(snap))
	second := next()
	if second.Generation != 2 || second.Summary.Total != 14 {
		t.Errorf("second event: %+v", second)
	}
}

func TestPageAndHeaders(t *testing.T) {
	s := newServer(t, 0)
	for _, p := range []string{"/", "/providers?verdict=unreachable", "/consumers", "/registration?znode=x", "/routes", "/assets/app.js", "/assets/app.css", "/api/v1/overview"} {
		res, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", p, res.StatusCode)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
		ct := res.Header.Get("Content-Type")
		switch {
		case strings.HasSuffix(p, ".js") && !strings.HasPrefix(ct, "text/javascript"),
			strings.HasSuffix(p, ".css") && !strings.HasPrefix(ct, "text/css"),
			!strings.Contains(p, ".") && !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(ct, "text/html"):
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		if strings.HasPrefix(ct, "text/html") && (strings.Contains(string(body), "<script>") || strings.Contains(string(body), "http://") || strings.Contains(string(body), "https://")) {
			t.Errorf("%s: inline script or another origin in the page", p)
		}
	}
	// Read-only.
	res, err := http.Post(s.URL+"/api/v1/providers", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", res.StatusCode)
	}
	if res, err := http.Get(s.URL + "/assets/"); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("/assets/ lists files: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
	var e apiError
	if code := s.get(t, "/api/v1/nothing", &e); code != 404 || !strings.Contains(e.Error, "/api/v1/nothing") {
		t.Errorf("unknown endpoint: %d %+v", code, e)
	}
}

func TestBeforeFirstResult(t *testing.T) {
	h := registry.NewHolder()
	mux := http.NewServeMux()
	Register(mux, Options{Holder: h, Context: t.Context()})
	s := httptest.NewServer(mux)
	defer s.Close()
	for _, p := range []string{"/api/v1/overview", "/api/v1/providers", "/api/v1/routes"} {
		res, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		_ = json.NewDecoder(res.Body).Decode(&e)
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable || e.Error == "" {
			t.Errorf("%s: %d %+v, want 503 with a message", p, res.StatusCode, e)
		}
	}
}
