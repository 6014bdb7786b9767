// Package dashboard serves the auditor's web dashboard and its read-only JSON API (/api/v1/)
// on the auditor's mux (registry.NewMux). Every asset is embedded; registry content is
// rendered as text by the page and never trusted.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

//go:embed assets
var assets embed.FS

// Options configure the dashboard. Holder is required; the rest is optional.
type Options struct {
	// Holder hands out the auditor's latest Result.
	Holder *registry.Holder
	// Store backs the routes view; without it /api/v1/routes answers 503.
	Store *routes.Store
	// Pods, when set, tells the detail view whether a pod's namespace is labelled for injection.
	Pods *registry.PodIndex
	// Format is the router dialect the detail view renders a missing route in by default
	// (default linux; ?format= picks another).
	Format render.Format
	// ReadZnode, when set, reads an application-level instance's data for the detail view
	// (the Result carries the parsed facts, not the raw JSON).
	ReadZnode func(ctx context.Context, path string) ([]byte, error)
	// Context ends the goroutine that follows the Holder to record changes (default: never).
	Context context.Context
	// Changes bounds the ring of recent changes (default 200).
	Changes int
	// Fixes, when set, is the log of corrections made by `audit --fix` (GET /api/v1/fixes and
	// the overview's Corrections section).
	Fixes *FixLog
	// EventInterval is the shortest time between two server-sent events to one client
	// (default 1s): a burst of rejudging passes becomes one refresh of the page.
	EventInterval time.Duration
	// MaxStreamsPerClient caps the event streams one client address holds open at once
	// (default 16; a page holds one); MaxStreams caps them all (default 512). Each stream is a
	// goroutine and a connection for as long as the client likes: past the cap, 429.
	MaxStreamsPerClient, MaxStreams int
	// Measurements, when set, are what `dubboreach probe` measured from other places: shown
	// beside each provider's verdict, contradictions marked (registry/measure.Store).
	Measurements Measurements
	// Now replaces time.Now for the ages of measurements (tests).
	Now func() time.Time
}

// Dashboard serves the page and the API.
type Dashboard struct {
	opts Options

	mu      sync.Mutex
	cur     *index
	gen     uint64
	changes *ring
	routes  *routesCache
	streams streamCount
	mk      *marks // the providers' measurement marks, for the latest index and snapshot
}

// Register adds the dashboard (/, its views and assets) and the API (/api/v1/) to mux.
func Register(mux *http.ServeMux, opts Options) *Dashboard {
	d := New(opts)
	d.Register(mux)
	return d
}

// New returns a dashboard and starts following the Holder (recording changes between results).
func New(opts Options) *Dashboard {
	if opts.Format == "" {
		opts.Format = render.Linux
	}
	if opts.Changes == 0 {
		opts.Changes = 200
	}
	if opts.EventInterval == 0 {
		opts.EventInterval = time.Second
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.MaxStreamsPerClient <= 0 {
		opts.MaxStreamsPerClient = 16
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 512
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Dashboard{opts: opts, changes: newRing(opts.Changes), streams: streamCount{per: map[string]int{}}}
	go d.follow(opts.Context)
	return d
}

// Register adds the handlers to mux.
func (d *Dashboard) Register(mux *http.ServeMux) {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	page := d.secure(http.HandlerFunc(d.page))
	for _, p := range []string{"/{$}", "/providers", "/consumers", "/registration", "/routes"} {
		mux.Handle("GET "+p, page)
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(static))
	mux.Handle("GET /assets/", d.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		files.ServeHTTP(w, r)
	})))
	api := map[string]http.HandlerFunc{
		"overview":     d.overview,
		"providers":    d.list(false),
		"consumers":    d.list(true),
		"facets":       d.facets,
		"registration": d.registration,
		"routes":       d.routesView,
		"events":       d.events,
		"fixes":        d.fixes,
	}
	for name, h := range api {
		mux.Handle("GET /api/v1/"+name, d.secure(h))
	}
	mux.Handle("/api/v1/", d.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := api[strings.TrimPrefix(r.URL.Path, "/api/v1/")]; ok {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, apiError{Error: "the API is read-only: use GET"})
			return
		}
		writeError(w, http.StatusNotFound, apiError{Error: "no such endpoint: " + r.URL.Path + "; see /api/v1/overview, providers, consumers, facets, registration, routes, events, fixes"})
	})))
}

// csp allows only the dashboard's own files: no inline script or style, no other origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (d *Dashboard) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func (d *Dashboard) page(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// follow indexes every new result as it comes, so that changes between successive results
// are all recorded even when nobody is looking.
//
// Indexing 100,000 registrations takes about 150 ms of CPU, so results that come faster than
// EventInterval are coalesced: the next index is built for the latest, and its changes are
// the net difference since the last one indexed.
func (d *Dashboard) follow(ctx context.Context) {
	for {
		ch := d.opts.Holder.Updated()
		d.current()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.opts.EventInterval):
		}
	}
}

// current returns the index of the latest result (nil before the first), building it once.
func (d *Dashboard) current() *index {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Read under d.mu: Latest only moves forward, so cur never goes back to an older result.
	r := d.opts.Holder.Latest()
	if r == nil {
		return nil
	}
	if d.cur != nil && d.cur.res == r {
		return d.cur
	}
	d.gen++
	x := buildIndex(r, d.gen)
	if d.cur != nil {
		diff(d.changes, d.cur, x)
	}
	d.cur = x
	return x
}

type apiError struct {
	Error     string   `json:"error"`
	Parameter string   `json:"parameter,omitempty"`
	Allowed   []string `json:"allowed,omitempty"`
}

func writeError(w http.ResponseWriter, code int, e apiError) {
	writeJSON(w, code, e)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// latest answers 503 before the first result.
func (d *Dashboard) latest(w http.ResponseWriter) *index {
	x := d.current()
	if x == nil {
		writeError(w, http.StatusServiceUnavailable, apiError{Error: "no scan of the registry has finished yet; retry in a few seconds"})
	}
	return x
}
