package dashboard

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
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
	// Measured is the version of the probes' measurements (absent without any): a page
	// re-fetches when it changes, as when Generation does.
	Measured uint64 `json:"measured,omitempty"`
}

// streamCount counts open event streams, per client address and in all.
type streamCount struct {
	mu    sync.Mutex
	per   map[string]int
	total int
}

func (c *streamCount) acquire(client string, perClient, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= max || c.per[client] >= perClient {
		return false
	}
	c.per[client]++
	c.total++
	return true
}

func (c *streamCount) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.per[client]--; c.per[client] <= 0 {
		delete(c.per, client)
	}
}

// clientAddr is the client's IP address without its port: one browser opens each stream from
// a new port.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
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
	client := clientAddr(r)
	if !d.streams.acquire(client, d.opts.MaxStreamsPerClient, d.opts.MaxStreams) {
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, apiError{Error: fmt.Sprintf(
			"too many event streams open (at most %d per client, %d in all): close other dashboard tabs or clients", d.opts.MaxStreamsPerClient, d.opts.MaxStreams)})
		return
	}
	defer d.streams.release(client)
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
	var sent, sentM uint64
	var mch <-chan struct{} // nil without measurements: never ready
	for {
		ch := d.opts.Holder.Updated()
		if d.opts.Measurements != nil {
			mch = d.opts.Measurements.Updated()
		}
		var mv uint64
		if sn := d.snapshot(); sn != nil {
			mv = sn.Version
		}
		if x := d.current(); x != nil && (x.gen != sent || mv != sentM) {
			sent, sentM = x.gen, mv
			b, _ := json.Marshal(Update{Generation: x.gen, JudgedAt: x.res.JudgedAt, Complete: x.res.Complete, Connected: x.res.Connected, Summary: x.res.Summary, Measured: mv})
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
		case <-mch:
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
