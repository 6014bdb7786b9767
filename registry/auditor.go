package registry

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// Auditor runs the pipeline continuously: scanner watches -> judge -> holder, metrics, Events.
type Auditor struct {
	Scan   zk.Config
	Routes *routes.Store
	Pods   *PodIndex
	Holder *Holder
	// Metrics and Events are optional.
	Metrics *Metrics
	Events  *Events
	Format  render.Format
	// Debounce coalesces bursts of watch events into one judging pass (default 20ms): a
	// deployment rolling 50 pods costs a few passes, not 100, and a single change is still
	// reported well under a second after ZooKeeper announced it.
	Debounce time.Duration
	Log      logr.Logger
	// Hooks run after each published result, in the auditor's goroutine (the corrections of
	// --fix plug in here; a hook that must act on the leader only checks Events.Leading).
	Hooks []func(context.Context, *Result)
	last  state
}

// Run scans, follows watches and rejudges until ctx ends.
func (a *Auditor) Run(ctx context.Context) error {
	cfg := a.Scan
	cfg.Watch = true
	if a.Metrics != nil {
		cfg.Observer = a.Metrics
	}
	cfg.Log = a.Log
	s, err := zk.NewScanner(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { <-done }()

	debounce := a.Debounce
	if debounce == 0 {
		debounce = 20 * time.Millisecond
	}
	j := &Judge{Format: a.Format}
	var podsChanged, leading <-chan struct{}
	if a.Pods != nil {
		podsChanged = a.Pods.Changed()
	}
	if a.Events != nil {
		leading = a.Events.Woken()
	}
	// Rejudge now and then even without changes: Events whose repeat period ended are written
	// again, and the result's age stays visible.
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.Changed():
		case <-a.Routes.Changed():
		case <-podsChanged:
		case <-leading:
		case <-tick.C:
		}
		// Let a burst settle, then judge what is there.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(debounce):
		}
		r := a.publish(j, s.Snapshot())
		for _, h := range a.Hooks {
			h(ctx, r)
		}
	}
}

func (a *Auditor) publish(j *Judge, snap zk.Snapshot) *Result {
	var pv *PodView
	if a.Pods != nil {
		pv = a.Pods.View()
	}
	r := j.Judge(snap, a.Routes.Table(), pv)
	// Metrics first: whoever sees the new result in the holder finds the metrics agreeing.
	if a.Metrics != nil {
		a.Metrics.Observe(r)
	}
	if a.Holder != nil {
		a.Holder.Set(r)
	}
	if n := a.Events.Observe(r); n > 0 {
		a.Log.V(1).Info("wrote events", "count", n)
	}
	// One line when the picture changes, not one per watch event.
	if s := (state{r.Summary, r.Complete, r.Connected}); s != a.last {
		a.last = s
		a.Log.Info("registry audited", "complete", r.Complete, "connected", r.Connected, "providers", r.Summary.Total-r.Summary.Unparseable,
			"unreachable", r.Summary.Unreachable, "unknown", r.Summary.Unknown, "unparseable", r.Summary.Unparseable, "missing", len(r.Missing))
	}
	return r
}

type state struct {
	summary             Summary
	complete, connected bool
}

// Once scans the registry once (no watches) and judges it.
func Once(ctx context.Context, cfg zk.Config, t *routes.Table, pods *PodIndex, format render.Format) (*Result, error) {
	snap, err := zk.Once(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var pv *PodView
	if pods != nil {
		pv = pods.View()
	}
	j := &Judge{Format: format}
	return j.Judge(snap, t, pv), nil
}
