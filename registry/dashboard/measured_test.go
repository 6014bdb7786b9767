package dashboard

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type measuredServer struct {
	*server
	store *measure.Store
	clock *testClock
}

// newMeasuredServer is newServer with a measure.Store behind the dashboard, on one clock.
func newMeasuredServer(t *testing.T, bulk int) *measuredServer {
	t.Helper()
	w := newWorld(t)
	h := registry.NewHolder()
	h.Set(w.judge(snapshot(bulk)))
	c := &testClock{t: time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)}
	st := measure.NewStore(measure.Options{Now: c.Now})
	mux := http.NewServeMux()
	d := Register(mux, Options{Holder: h, Store: w.store, Pods: w.pods, Context: t.Context(), EventInterval: 10 * time.Millisecond,
		Measurements: st, Now: c.Now})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return &measuredServer{server: &server{Server: s, holder: h, world: w, dash: d}, store: st, clock: c}
}

func pm(addr string, port int, r probe.Result, detail string) probe.Measurement {
	return probe.Measurement{Address: addr, Port: port, Protocol: "dubbo", Result: r, Detail: detail, Millis: 2.5, Registrations: 1}
}

func rowOf(t *testing.T, p Page, service string) Row {
	t.Helper()
	for _, r := range p.Items {
		if r.Service == service {
			return r
		}
	}
	t.Fatalf("no row of %s in %d rows", service, len(p.Items))
	return Row{}
}

// Measurements beside verdicts: the orders provider's published route timed out from
// outside-dc1 (a contradiction) and answered from dc2; cart's unpublished route answered from
// outside-dc1 (a contradiction); the old provider refused (measured, no contradiction).
func TestMeasurementsBesideVerdicts(t *testing.T) {
	s := newMeasuredServer(t, 0)
	require := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	require(s.store.Put("outside-dc1", s.clock.Now(), []probe.Measurement{
		pm("10.244.1.7", 20880, probe.Timeout, "no answer to the connect within 3s"),
		pm("10.244.2.5", 20880, probe.Answered, "Dubbo heartbeat answered"),
		pm("10.244.2.77", 20880, probe.Refused, "connection refused"),
	}))
	require(s.store.Put("dc2", s.clock.Now(), []probe.Measurement{pm("10.244.1.7", 20880, probe.Answered, "")}))
	s.clock.Add(42 * time.Second)

	var all Page
	s.get(t, "/api/v1/providers?limit=500", &all)
	orders := rowOf(t, all, "com.shop.OrderService")
	if !orders.Contradicted || len(orders.Measured) != 2 || orders.MeasuredMore != 0 {
		t.Fatalf("orders row: %+v", orders)
	}
	m0, m1 := orders.Measured[0], orders.Measured[1]
	if m0.Vantage != "outside-dc1" || m0.Result != probe.Timeout || !m0.Contradicts || m0.AgeSeconds != 42 || m0.Millis != 2.5 ||
		m0.Detail != "no answer to the connect within 3s" || m0.Protocol != "dubbo" {
		t.Errorf("orders' first measurement (the contradicting one first): %+v", m0)
	}
	wantHint := "the pod route of node node-a is taken as published (listed in podRoutes.installed, announced, or announced by the CNI), " +
		"but 10.244.1.7:20880 was timeout from outside-dc1: the gateway probably lacks the route, or a firewall drops on the way"
	if m0.Hint != wantHint {
		t.Errorf("hint %q\nwant %q", m0.Hint, wantHint)
	}
	if m1.Vantage != "dc2" || m1.Result != probe.Answered || m1.Contradicts || m1.Hint != "" {
		t.Errorf("orders' second measurement: %+v", m1)
	}
	cart := rowOf(t, all, "com.shop.CartService")
	if !cart.Contradicted || len(cart.Measured) != 1 || !strings.Contains(cart.Measured[0].Hint, "so the route 10.244.2.0/24 via 10.132.2.12 is in place: add it to podRoutes.installed") {
		t.Errorf("cart row: %+v", cart)
	}
	old := rowOf(t, all, "com.shop.OldService")
	if old.Contradicted || len(old.Measured) != 1 || old.Measured[0].Result != probe.Refused || old.Measured[0].Contradicts {
		t.Errorf("old row (refused is no contradiction): %+v", old)
	}
	if r := rowOf(t, all, "com.shop.EdgeService"); r.Measured != nil || r.Contradicted {
		t.Errorf("an unmeasured row: %+v", r)
	}

	// The filter: the interface-level and application-level entries on both addresses.
	var ct Page
	s.get(t, "/api/v1/providers?contradicted=true&limit=500", &ct)
	got := []string{}
	for _, r := range ct.Items {
		got = append(got, r.Kind+" "+r.HostPort)
		if !r.Contradicted {
			t.Errorf("row in contradicted=true is not: %+v", r)
		}
	}
	if ct.Total != 4 || len(ct.Items) != 4 {
		t.Errorf("contradicted=true: total %d, rows %v", ct.Total, got)
	}
	var combined Page
	s.get(t, "/api/v1/providers?contradicted=true&verdict=reachable&kind=interface", &combined)
	if combined.Total != 1 || combined.Items[0].Service != "com.shop.OrderService" {
		t.Errorf("contradicted with other filters: %+v", combined)
	}
	var cons Page
	s.get(t, "/api/v1/consumers?contradicted=true", &cons)
	if cons.Total != 0 {
		t.Errorf("consumers are not probed, none is contradicted: %+v", cons)
	}
	var bad apiError
	if code := s.get(t, "/api/v1/providers?contradicted=yes", &bad); code != 400 || bad.Parameter != "contradicted" {
		t.Errorf("contradicted=yes: %d %+v", code, bad)
	}

	// The detail carries every measurement, worst first.
	var dt Detail
	s.get(t, "/api/v1/registration?znode="+urlQuery(orders.Znode), &dt)
	if !dt.Contradicted || len(dt.Measured) != 2 || dt.Measured[0].Hint != wantHint {
		t.Errorf("detail: %+v", dt.Row)
	}

	// Overview and facets count them.
	var o Overview
	s.get(t, "/api/v1/overview", &o)
	if o.Measurements == nil || o.Measurements.Contradicted != 4 || o.Measurements.Measured != 5 || len(o.Measurements.Vantages) != 2 ||
		o.Measurements.Vantages[1].Name != "outside-dc1" || o.Measurements.Vantages[1].Measurements != 3 {
		t.Errorf("overview measurements: %+v", o.Measurements)
	}
	var fc Facets
	s.get(t, "/api/v1/facets", &fc)
	if fc.Contradicted == nil || *fc.Contradicted != 4 {
		t.Errorf("facets contradicted: %v", fc.Contradicted)
	}
	var fcc map[string]any
	s.get(t, "/api/v1/facets?side=consumers", &fcc)
	if _, ok := fcc["contradicted"]; ok {
		t.Errorf("consumer facets count contradictions: %v", fcc)
	}

	// A later report replaces outside-dc1's measurement: orders answered now.
	require(s.store.Put("outside-dc1", s.clock.Now(), []probe.Measurement{pm("10.244.1.7", 20880, probe.Answered, "")}))
	var ct2 Page
	s.get(t, "/api/v1/providers?contradicted=true&limit=500", &ct2)
	if ct2.Total != 2 {
		t.Errorf("after orders answered, %d contradicted, want cart's 2", ct2.Total)
	}

	// Measurements expire: the rows, overview and facets lose them.
	s.clock.Add(measure.DefaultTTL)
	var after Page // a fresh value: decoding into a used one keeps fields the JSON omits
	s.get(t, "/api/v1/providers?limit=500", &after)
	for _, r := range after.Items {
		if r.Measured != nil || r.Contradicted {
			t.Errorf("expired measurement still shown: %+v", r)
		}
	}
	var raw map[string]any
	s.get(t, "/api/v1/overview", &raw)
	if _, ok := raw["measurements"]; ok {
		t.Errorf("overview with only expired measurements: %v", raw["measurements"])
	}
}

// A row carries the 3 worst measurements and counts the rest; the detail has all.
func TestMeasuredRowBound(t *testing.T) {
	s := newMeasuredServer(t, 0)
	for i, r := range []probe.Result{probe.Answered, probe.Connected, probe.Refused, probe.Timeout, probe.Answered} {
		if err := s.store.Put(fmt.Sprintf("v%d", i), s.clock.Now(), []probe.Measurement{pm("10.244.1.7", 20880, r, "")}); err != nil {
			t.Fatal(err)
		}
	}
	var p Page
	s.get(t, "/api/v1/providers?q=orderservice", &p)
	r := rowOf(t, p, "com.shop.OrderService")
	got := []string{}
	for _, m := range r.Measured {
		got = append(got, m.Vantage+"="+string(m.Result))
	}
	if strings.Join(got, " ") != "v3=timeout v2=refused v1=connected" || r.MeasuredMore != 2 {
		t.Errorf("row measurements %v (+%d), want the worst three first and 2 more", got, r.MeasuredMore)
	}
	var dt Detail
	s.get(t, "/api/v1/registration?znode="+urlQuery(r.Znode), &dt)
	if len(dt.Measured) != 5 || dt.MeasuredMore != 0 {
		t.Errorf("detail: %d measurements (+%d)", len(dt.Measured), dt.MeasuredMore)
	}
}

// Without measurements (no store, or a store with none live) every answer is byte-identical
// to the dashboard's before measurements existed: the fields are omitted.
func TestNoMeasurementsSameJSON(t *testing.T) {
	w := newWorld(t)
	h := registry.NewHolder()
	h.Set(w.judge(snapshot(20)))
	c := &testClock{t: time.Now()}
	serve := func(o Options) string {
		o.Holder, o.Store, o.Pods, o.Context = h, w.store, w.pods, t.Context()
		mux := http.NewServeMux()
		Register(mux, o)
		s := httptest.NewServer(mux)
		t.Cleanup(s.Close)
		return s.URL
	}
	plain := serve(Options{})
	empty := serve(Options{Measurements: measure.NewStore(measure.Options{Now: c.Now}), Now: c.Now})
	st := measure.NewStore(measure.Options{Now: c.Now})
	if err := st.Put("gone", c.Now(), []probe.Measurement{pm("10.244.1.7", 20880, probe.Timeout, "")}); err != nil {
		t.Fatal(err)
	}
	c.Add(measure.DefaultTTL + time.Second)
	expired := serve(Options{Measurements: st, Now: c.Now})
	body := func(base, path string) string {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	z := findingByPrefix(h.Latest(), "/dubbo/com.shop.OrderService/").Znode
	for _, p := range []string{"/api/v1/providers?limit=500", "/api/v1/consumers", "/api/v1/facets", "/api/v1/registration?znode=" + urlQuery(z)} {
		want := body(plain, p)
		for name, base := range map[string]string{"empty store": empty, "expired store": expired} {
			if got := body(base, p); got != want {
				t.Errorf("%s, %s: the answer differs from a dashboard without measurements", name, p)
			}
		}
		if strings.Contains(want, `"measured`) || strings.Contains(want, `"contradicted`) {
			t.Errorf("%s without measurements names them: %s", p, want[:min(len(want), 300)])
		}
	}
	// The overview: only the ages differ between servers, so compare its keys.
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal([]byte(body(plain, "/api/v1/overview")), &a)
	_ = json.Unmarshal([]byte(body(empty, "/api/v1/overview")), &b)
	if _, ok := b["measurements"]; ok || len(a) != len(b) {
		t.Errorf("overview keys differ: %d and %d", len(a), len(b))
	}
}

// A report makes the event stream send an update (its measured version), so open pages
// re-fetch without waiting for the next scan.
func TestEventsOnReport(t *testing.T) {
	s := newMeasuredServer(t, 0)
	res, err := http.Get(s.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	next := func() Update {
		t.Helper()
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
				var u Update
				if err := json.Unmarshal([]byte(v), &u); err != nil {
					t.Fatal(err)
				}
				return u
			}
		}
	}
	if u := next(); u.Generation != 1 || u.Measured != 0 {
		t.Errorf("first event: %+v", u)
	}
	if err := s.store.Put("outside-dc1", s.clock.Now(), []probe.Measurement{pm("10.244.1.7", 20880, probe.Timeout, "")}); err != nil {
		t.Fatal(err)
	}
	if u := next(); u.Generation != 1 || u.Measured == 0 {
		t.Errorf("event after a report: %+v", u)
	}
}
