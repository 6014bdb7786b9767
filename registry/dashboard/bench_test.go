package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dubboreach/dubboreach/registry"
)

const benchSize = 100_000

var (
	benchOnce   sync.Once
	benchResult *registry.Result
	benchWorld  *world
)

// benchRegistry judges 100,000 interface-level providers (half on node-a's published pod
// network, half on node-b's unpublished one) with the real Judge, once per process.
func benchRegistry(b *testing.B) (*registry.Result, *world) {
	benchOnce.Do(func() {
		benchWorld = newWorld(b)
		benchResult = benchWorld.judge(snapshot(benchSize))
	})
	return benchResult, benchWorld
}

func benchMux(b *testing.B) (*http.ServeMux, *registry.Holder) {
	r, w := benchRegistry(b)
	h := registry.NewHolder()
	h.Set(r)
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	Register(mux, Options{Holder: h, Store: w.store, Pods: w.pods, Context: ctx})
	return mux, h
}

func serve(b *testing.B, mux http.Handler, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkPage is the server time of one filtered, sorted page of 50 over 100,000
// registrations (the index of the result already built, as after the first request).
func BenchmarkPage(b *testing.B) {
	mux, _ := benchMux(b)
	for _, bc := range []struct{ name, query string }{
		{"default", ""},
		{"verdict", "verdict=unreachable&page=100"},
		{"filters", "verdict=unreachable&reason=unpublished-pod-route&node=node-b&application=bulk3&sort=address&dir=desc&page=2"},
		{"search", "q=service4711"},
		{"search-wide", "q=bulk&sort=service&page=500"},
		{"limit500", "limit=500&sort=application&page=7"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path := "/api/v1/providers?" + bc.query
			rec := serve(b, mux, path) // warm: sort order of the field
			var p Page
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || len(p.Items) == 0 {
				b.Fatalf("%s: %v, %d items", path, err, len(p.Items))
			}
			b.ReportAllocs()
			for b.Loop() {
				serve(b, mux, path)
			}
		})
	}
}

// BenchmarkFirstPage is the first request after a new result: the index is built, the sort
// order computed, then the page served.
func BenchmarkFirstPage(b *testing.B) {
	r, _ := benchRegistry(b)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/providers?verdict=unreachable&sort=service", nil)
	qr, e := parseQuery(req, false)
	if e != nil {
		b.Fatal(e.Error)
	}
	b.ReportAllocs()
	for b.Loop() {
		x := buildIndex(r, 1)
		if err := json.NewEncoder(io.Discard).Encode(x.page(qr)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOverview serves the overview of 100,000 registrations.
func BenchmarkOverview(b *testing.B) {
	mux, _ := benchMux(b)
	serve(b, mux, "/api/v1/overview")
	b.ReportAllocs()
	for b.Loop() {
		serve(b, mux, "/api/v1/overview")
	}
}

// BenchmarkFirstPaint loads the providers view of 100,000 registrations in Chromium and
// reports the first contentful paint and the moment the rows are on screen (the
// dubboreach:rows performance mark), from navigation start.
func BenchmarkFirstPaint(b *testing.B) {
	mux, _ := benchMux(b)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, stop := startChromium(b)
	defer stop()
	var fcp, rows float64
	n := 0
	for b.Loop() {
		n++
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := chromedp.Do(rctx, chromedp.Navigate(srv.URL+"/providers?verdict=unreachable"),
			chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := chromedp.Poll[bool](`performance.getEntriesByName("dubboreach:rows").length > 0`, chromedp.WithPollingInterval(5*time.Millisecond))(ctx, t)
				return err
			}))
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		m, err := chromedp.Run(rctx, chromedp.Evaluate[[]float64](`[(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: 0}).startTime, performance.getEntriesByName("dubboreach:rows")[0].startTime]`))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		fcp += m[0]
		rows += m[1]
	}
	b.ReportMetric(fcp/float64(n), "fcp-ms")
	b.ReportMetric(rows/float64(n), "rows-ms")
}
