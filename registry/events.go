package registry

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	"github.com/dubboreach/dubboreach/routes"
)

// ReasonUnreachableRegistration is the reason of the Events written on pods.
const ReasonUnreachableRegistration = "UnreachableRegistration"

// Events writes a Warning Event on the pod behind each unreachable provider registration.
// Events are deduplicated (one per pod and znode per Repeat) and rate limited (a token bucket),
// so that a registry of thousands of broken entries cannot flood the API server; and written
// only while this replica leads (it is a leader-election Runnable).
type Events struct {
	Recorder events.EventRecorder
	// Repeat is how long an Event for the same pod and znode is not written again (default 1h).
	Repeat time.Duration
	// PerSecond and Burst shape the token bucket (defaults 1 and 20).
	PerSecond float64
	Burst     int

	leading atomic.Bool
	mu      sync.Mutex
	seen    map[string]time.Time
	tokens  float64
	last    time.Time
	// Dropped counts Events not written because of the rate limit.
	Dropped atomic.Int64
	now     func() time.Time
	once    sync.Once
	woken   chan struct{}
}

// Woken is signalled when this replica becomes the leader: findings judged before it must now
// get their Events, without waiting for the next change in the registry.
func (e *Events) Woken() <-chan struct{} {
	e.once.Do(func() { e.woken = make(chan struct{}, 1) })
	return e.woken
}

// Start marks this replica as the leader until ctx ends (manager.Runnable).
func (e *Events) Start(ctx context.Context) error {
	e.leading.Store(true)
	e.Woken()
	select {
	case e.woken <- struct{}{}:
	default:
	}
	<-ctx.Done()
	e.leading.Store(false)
	return nil
}

// NeedLeaderElection makes the manager start Events only on the leader.
func (e *Events) NeedLeaderElection() bool { return true }

// Leading says whether this replica leads (Events are written, corrections may act).
func (e *Events) Leading() bool { return e != nil && e.leading.Load() }

// SetLeading is for running without a manager (tests, single replica).
func (e *Events) SetLeading(b bool) { e.leading.Store(b) }

// Observe writes the Events a new result calls for.
func (e *Events) Observe(r *Result) int {
	if e == nil || e.Recorder == nil || !e.leading.Load() {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.now == nil {
		e.now = time.Now
	}
	if e.seen == nil {
		e.seen = map[string]time.Time{}
		e.tokens = float64(e.burst())
		e.last = e.now()
	}
	repeat := e.Repeat
	if repeat == 0 {
		repeat = time.Hour
	}
	now := e.now()
	rate := e.PerSecond
	if rate == 0 {
		rate = 1
	}
	e.tokens = min(float64(e.burst()), e.tokens+now.Sub(e.last).Seconds()*rate)
	e.last = now
	written := 0
	for i := range r.Providers {
		f := &r.Providers[i]
		if f.Verdict != routes.Unreachable {
			continue
		}
		pod := podRef(f)
		if pod == nil {
			continue
		}
		key := string(f.PodUID) + "\x00" + f.Znode
		if t, ok := e.seen[key]; ok && now.Sub(t) < repeat {
			continue
		}
		if e.tokens < 1 {
			e.Dropped.Add(1)
			continue
		}
		e.tokens--
		e.seen[key] = now
		note := fmt.Sprintf("%s registered %s:%d for %s (%s): %s. %s", f.Side, f.Address, f.Port, f.Service, f.Reason, f.Znode, f.Explanation)
		if len(note) > 1000 {
			note = note[:1000] // the API server rejects notes over 1 KiB
		}
		e.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, ReasonUnreachableRegistration, "Audit", "%s", note)
		written++
	}
	// Forget what was seen long ago, so that the map does not grow without bound.
	for k, t := range e.seen {
		if now.Sub(t) >= repeat {
			delete(e.seen, k)
		}
	}
	return written
}

func (e *Events) burst() int {
	if e.Burst <= 0 {
		return 20
	}
	return e.Burst
}
