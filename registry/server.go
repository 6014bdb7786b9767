package registry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewMux serves the auditor's endpoints: /metrics, /healthz (the process is alive) and /readyz
// (a first full scan has finished). The dashboard registers /api/v1/ and / on the same mux.
func NewMux(h *Holder, m *Metrics) *http.ServeMux {
	mux := http.NewServeMux()
	// ContinueOnError: a collector that fails once (the process collector reading /proc under
	// load) must not blank the page, which alerts would read as the auditor being gone.
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := h.Latest()
		if r == nil || !r.Scanned {
			http.Error(w, "no full scan of the registry has finished yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
