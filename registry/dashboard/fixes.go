package dashboard

import (
	"net/http"
	"sync"
	"time"
)

// FixEntry is one correction made, refused or planned by `audit --fix`, as the dashboard shows
// it. Every field that comes from the registry is rendered as text by the page.
type FixEntry struct {
	At       time.Time `json:"at"`
	Mode     string    `json:"mode"`
	Op       string    `json:"op,omitempty"`
	Result   string    `json:"result"`
	Subject  string    `json:"subject,omitempty"`
	Service  string    `json:"service,omitempty"`
	Provider string    `json:"provider,omitempty"`
	Path     string    `json:"path,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// FixLog keeps the latest corrections for the dashboard, bounded; safe for concurrent use.
// The auditor's --fix hook adds to it, the dashboard reads it.
type FixLog struct {
	mu      sync.Mutex
	max     int
	entries []FixEntry // oldest first
}

// NewFixLog returns a log that keeps the last max entries (default 200).
func NewFixLog(max int) *FixLog {
	if max <= 0 {
		max = 200
	}
	return &FixLog{max: max}
}

// Add records one correction; text fields are truncated so a hostile registry cannot grow it.
func (l *FixLog) Add(e FixEntry) {
	for _, s := range []*string{&e.Subject, &e.Service, &e.Provider, &e.Path, &e.Reason, &e.Error} {
		if len(*s) > 1024 {
			*s = (*s)[:1024] + "…"
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	if len(l.entries) > l.max {
		l.entries = append(l.entries[:0], l.entries[len(l.entries)-l.max:]...)
	}
}

// List returns up to n entries, newest first.
func (l *FixLog) List(n int) []FixEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]FixEntry, 0, min(n, len(l.entries)))
	for i := len(l.entries) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, l.entries[i])
	}
	return out
}

// fixesPage is the answer of GET /api/v1/fixes.
type fixesPage struct {
	// Enabled is false when the auditor runs without --fix: there is nothing to show.
	Enabled bool       `json:"enabled"`
	Fixes   []FixEntry `json:"fixes"`
}

// fixes serves the latest corrections, newest first: ?limit= (1..MaxLimit, default 50).
func (d *Dashboard) fixes(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for name := range v {
		if name != "limit" {
			writeError(w, http.StatusBadRequest, apiError{Error: "unknown parameter " + name, Parameter: name, Allowed: []string{"limit"}})
			return
		}
	}
	limit, e := intParam(v, "limit", 50, 1, MaxLimit)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	p := fixesPage{Enabled: d.opts.Fixes != nil, Fixes: []FixEntry{}}
	if d.opts.Fixes != nil {
		p.Fixes = d.opts.Fixes.List(limit)
	}
	writeJSON(w, http.StatusOK, p)
}
