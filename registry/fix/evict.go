package fix

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The label and annotation evict honours (DESIGN.md, "Labels and annotations").
const (
	LabelInject = "dubboreach.io/inject"
	// mirrorAnnotation marks static pods mirrored by the kubelet: evicting them does nothing.
	mirrorAnnotation = "kubernetes.io/config.mirror"
)

// EvictOptions bound what evict does.
type EvictOptions struct {
	// MaxPerMinute is --max-evictions-per-minute (default 5), over a sliding minute.
	MaxPerMinute int
	// MaxPerWorkload caps the evictions of pods of one controller (by owner UID) per cycle
	// (default 1), so that a workload is never emptied at once even without a PDB.
	MaxPerWorkload int
	// MinPodAge: younger pods are not evicted (default 5m); a pod re-created by an eviction
	// gets time to start and re-register before it is judged again, which keeps a pod whose
	// new address is still unreachable from being evicted in a tight loop.
	MinPodAge time.Duration
	// RetryAfter is how long a pod whose eviction a PodDisruptionBudget refused waits before it
	// is tried again (default 1m; the API server's Retry-After, when longer, wins).
	RetryAfter time.Duration
}

// Evictor plans and performs evictions, keeping the rate limit and refusal backoff in memory.
type Evictor struct {
	// Client reads pods and namespaces and creates evictions (policy/v1).
	Client client.Client
	Opts   EvictOptions

	mu      sync.Mutex
	recent  []time.Time
	retryAt map[types.UID]time.Time
}

// NewEvictor returns an Evictor with defaults filled in.
func NewEvictor(c client.Client, o EvictOptions) *Evictor {
	if o.MaxPerMinute <= 0 {
		o.MaxPerMinute = 5
	}
	if o.MaxPerWorkload <= 0 {
		o.MaxPerWorkload = 1
	}
	if o.MinPodAge == 0 {
		o.MinPodAge = 5 * time.Minute
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Minute
	}
	return &Evictor{Client: c, Opts: o, retryAt: map[types.UID]time.Time{}}
}

// used is the number of evictions in the minute before now (callers hold mu).
func (ev *Evictor) used(now time.Time) int {
	keep := ev.recent[:0]
	for _, t := range ev.recent {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	ev.recent = keep
	return len(keep)
}

// Plan decides which target pods to evict now. A target qualifies when its pod exists, is owned
// by a controller (never a bare or mirror pod), is not terminating, has not opted out, lives in a
// namespace labelled dubboreach.io/inject=enabled (so the webhook will inject its replacement),
// and is at least MinPodAge old. Qualifying pods beyond the rate limit, the per-workload cap or
// still in their refusal backoff are reported as deferred. Whether a pod's address needs the
// eviction (admitted before injection, or with a mode that no longer fits) is the auditor's call.
func (ev *Evictor) Plan(ctx context.Context, complete bool, targets []Target, now time.Time) (Plan, error) {
	if !complete {
		return Plan{}, ErrIncompleteScan
	}
	plan := Plan{Complete: true, Changes: []Change{}}
	ev.mu.Lock()
	budget := ev.Opts.MaxPerMinute - ev.used(now)
	retry := map[types.UID]time.Time{}
	for k, v := range ev.retryAt {
		if now.Before(v) {
			retry[k] = v
		} else {
			delete(ev.retryAt, k)
		}
	}
	ev.mu.Unlock()

	seen := map[types.NamespacedName]bool{}
	perOwner := map[types.UID]int{}
	sorted := append([]Target(nil), targets...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Pod == nil || sorted[j].Pod == nil {
			return sorted[j].Pod == nil && sorted[i].Pod != nil
		}
		return sorted[i].Pod.String() < sorted[j].Pod.String()
	})
	for _, t := range sorted {
		if t.Pod == nil || seen[*t.Pod] {
			continue
		}
		seen[*t.Pod] = true
		name := *t.Pod
		c := Change{Mode: ModeEvict, Op: OpEvict, Pod: &name, Provider: t.Address.String(), Service: t.Interface}
		skip := func(outcome, why string) {
			c.Op, c.Outcome, c.Reason = "", outcome, why
			plan.Skipped = append(plan.Skipped, c)
		}
		var pod corev1.Pod
		if err := ev.Client.Get(ctx, name, &pod); apierrors.IsNotFound(err) {
			skip(ResultSkipped, "pod no longer exists")
			continue
		} else if err != nil {
			return Plan{}, fmt.Errorf("reading pod %s: %w", name, err)
		}
		c.PodUID = pod.UID
		var ns corev1.Namespace
		if err := ev.Client.Get(ctx, types.NamespacedName{Name: name.Namespace}, &ns); err != nil {
			return Plan{}, fmt.Errorf("reading namespace %s: %w", name.Namespace, err)
		}
		owner := metav1.GetControllerOf(&pod)
		switch {
		case t.PodUID != "" && t.PodUID != pod.UID:
			skip(ResultSkipped, "the registration's pod was already replaced")
			continue
		case ns.Labels[LabelInject] != "enabled":
			skip(ResultSkipped, "namespace is not labelled "+LabelInject+"=enabled: a new pod would not get a corrected address")
			continue
		case pod.Labels[LabelInject] == "disabled":
			skip(ResultSkipped, "pod opted out of injection ("+LabelInject+"=disabled)")
			continue
		case owner == nil:
			skip(ResultSkipped, "bare pod (no controller): nothing would re-create it")
			continue
		case pod.Annotations[mirrorAnnotation] != "":
			skip(ResultSkipped, "static (mirror) pod: the API cannot evict it")
			continue
		case pod.DeletionTimestamp != nil:
			skip(ResultSkipped, "pod is already terminating")
			continue
		}
		c.Owner = owner.UID
		c.Reason = fmt.Sprintf("unreachable registration %s from pod owned by %s %s: the replacement gets a reachable address from the webhook",
			t.Address, owner.Kind, owner.Name)
		switch {
		case now.Sub(pod.CreationTimestamp.Time) < ev.Opts.MinPodAge:
			skip(ResultDeferred, fmt.Sprintf("pod is younger than %s", ev.Opts.MinPodAge))
		case !retry[pod.UID].IsZero():
			skip(ResultDeferred, "a PodDisruptionBudget refused the last eviction; retry after "+retry[pod.UID].UTC().Format(time.RFC3339))
		case perOwner[owner.UID] >= ev.Opts.MaxPerWorkload:
			skip(ResultDeferred, fmt.Sprintf("per-workload cap: %d eviction(s) of %s %s this cycle", ev.Opts.MaxPerWorkload, owner.Kind, owner.Name))
		case budget <= 0:
			skip(ResultDeferred, fmt.Sprintf("rate limit: %d eviction(s) per minute", ev.Opts.MaxPerMinute))
		default:
			perOwner[owner.UID]++
			budget--
			plan.Changes = append(plan.Changes, c)
		}
	}
	return plan, nil
}

// evict performs one planned eviction.
func (ev *Evictor) evict(ctx context.Context, c Change, now time.Time) Result {
	res := Result{Change: c}
	ev.mu.Lock()
	if ev.used(now) >= ev.Opts.MaxPerMinute {
		ev.mu.Unlock()
		res.Result, res.Error = ResultDeferred, fmt.Sprintf("rate limit: %d eviction(s) per minute", ev.Opts.MaxPerMinute)
		return res
	}
	ev.mu.Unlock()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.Pod.Name, Namespace: c.Pod.Namespace}}
	eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: c.Pod.Name, Namespace: c.Pod.Namespace}}
	if c.PodUID != "" {
		// Evict the pod that was judged, not a namesake created since (StatefulSets reuse names).
		uid := c.PodUID
		eviction.DeleteOptions = &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
	}
	err := ev.Client.SubResource("eviction").Create(ctx, pod, eviction)
	switch {
	case err == nil:
		ev.mu.Lock()
		ev.recent = append(ev.recent, now)
		ev.mu.Unlock()
		res.Result = ResultApplied
	case apierrors.IsTooManyRequests(err):
		// 429: a PodDisruptionBudget does not allow the disruption now. Back off; the next
		// cycles report the pod as deferred until then.
		wait := ev.Opts.RetryAfter
		if s, ok := apierrors.SuggestsClientDelay(err); ok && time.Duration(s)*time.Second > wait {
			wait = time.Duration(s) * time.Second
		}
		ev.mu.Lock()
		ev.retryAt[c.PodUID] = now.Add(wait)
		ev.mu.Unlock()
		res.Result, res.Error = ResultRefused, err.Error()
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		res.Result, res.Error = ResultConflict, err.Error()
	default:
		res.Result, res.Error = ResultFailed, err.Error()
	}
	return res
}
