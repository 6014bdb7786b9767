package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/dubboreach/dubboreach/registry"
)

// Update is the data of an "update" server-sent event: a new result is there.
type Update struct {
	Generation uint64           `json:"generation"`
	JudgedAt   time.Time        `json:"judgedAt"`
	Complete   bool             `json:"complete"`
	Connected  bool             `json:"connected"`
	Summary    registry.Summary `json:"summary"`
}

// heartbeat keeps proxies from closing an idle event stream.
const heartbeat = 25 * time.Second

// events streams an "update" event now and after every new result, at most one per
// EventInterval (a burst of results is one event, for the latest).
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	if _, e := params(r); e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, apiError{Error: "the server cannot stream responses"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 3000\n\n")
	fl.Flush()

	ctx := r.Context()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var sent uint64
	for {
		ch := d.opts.Holder.Updated()
		if x := d.current(); x != nil && x.gen != sent {
			sent = x.gen
			b, _ := json.Marshal(Update{Generation: x.gen, JudgedAt: x.res.JudgedAt, Complete: x.res.Complete, Connected: x.res.Connected, Summary: x.res.Summary})
			if _, err := fmt.Fprintf(w, "event: update\nid: %d\ndata: %s\n\n", x.gen, b); err != nil {
				return
			}
			fl.Flush()
			// Coalesce: whatever comes during the interval is sent once, after it.
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.opts.EventInterval):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
