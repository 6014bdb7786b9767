package registry

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dubboreach/dubboreach/routes"
)

// recorder keeps the Events it is given (the API server side is tested with envtest).
type recorder struct{ notes []string }

func (r *recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.notes = append(r.notes, reason+": "+fmt.Sprintf(note, args...))
}

func unreachable(n int) *Result {
	r := &Result{}
	for i := 0; i < n; i++ {
		r.Providers = append(r.Providers, Finding{Verdict: routes.Unreachable, Reason: routes.ReasonUnpublishedPodRoute, Side: "provider",
			Znode: fmt.Sprintf("/dubbo/s/providers/%d", i), PodUID: types.UID(fmt.Sprint("uid-", i)), PodName: fmt.Sprint("p", i), PodNamespace: "ns"})
	}
	// Reachable ones and unreachable ones without a pod get no Event.
	r.Providers = append(r.Providers, Finding{Verdict: routes.Reachable, PodUID: "x", PodName: "x", PodNamespace: "ns"},
		Finding{Verdict: routes.Unreachable})
	return r
}

func TestEventsDeduplicatedAndRateLimited(t *testing.T) {
	rec := &recorder{}
	now := time.Unix(1700000000, 0)
	e := &Events{Recorder: rec, Burst: 5, PerSecond: 1, Repeat: time.Hour, now: func() time.Time { return now }}
	if n := e.Observe(unreachable(3)); n != 0 {
		t.Fatalf("a follower wrote %d Events", n)
	}
	e.SetLeading(true)
	if n := e.Observe(unreachable(3)); n != 3 {
		t.Fatalf("leader wrote %d Events, want 3", n)
	}
	if n := e.Observe(unreachable(3)); n != 0 {
		t.Fatalf("the same findings again wrote %d Events, want 0 (deduplicated)", n)
	}
	// 20 new findings: the bucket holds 2 more tokens, the rest are dropped.
	if n := e.Observe(unreachable(23)); n != 2 || e.Dropped.Load() != 18 {
		t.Fatalf("burst: wrote %d, dropped %d; want 2 and 18", n, e.Dropped.Load())
	}
	now = now.Add(10 * time.Second) // 10 tokens, capped at the burst of 5
	if n := e.Observe(unreachable(23)); n != 5 {
		t.Fatalf("after 10s wrote %d, want 5", n)
	}
	now = now.Add(2 * time.Hour) // the repeat period is over: Events again
	if n := e.Observe(unreachable(1)); n != 1 {
		t.Fatalf("after the repeat period wrote %d, want 1", n)
	}
	if len(rec.notes) != 11 || rec.notes[0][:len(ReasonUnreachableRegistration)] != ReasonUnreachableRegistration {
		t.Fatalf("notes %q", rec.notes)
	}
}
