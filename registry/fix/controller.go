package fix

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
)

// Modes is the set of modes a controller runs; empty means none.
type Modes map[string]bool

// ModeNames are the modes in the order help texts and Modes.String list them.
var ModeNames = []string{ModeDisable, ModeUndoDisable, ModePrune, ModeEvict}

// NeedsScan says whether a mode acts on the scan's findings (all but undo-disable), and so
// needs a complete scan.
func (m Modes) NeedsScan() bool { return m[ModeDisable] || m[ModePrune] || m[ModeEvict] }

func (m Modes) String() string {
	var out []string
	for _, n := range ModeNames {
		if m[n] {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// ControllerOptions are the fix policy of one process.
type ControllerOptions struct {
	Modes  Modes
	DryRun bool
	// StaleAfter is how long a persistent entry must stay orphaned before prune deletes it;
	// 0 prunes what is orphaned now (a single scan, which cannot see how long).
	StaleAfter time.Duration
	// MaxChanges caps the changes of one cycle (Executor.MaxChanges).
	MaxChanges int
	// BackupDir receives prune backups.
	BackupDir string
	// Disable says where the disable rules live (roots include the chroot).
	Disable DisableOptions
	// RestoreCommand renders the command that restores a backup file.
	RestoreCommand func(file string) string
}

// Controller turns audit results into corrections: targets -> plan -> apply -> Events.
type Controller struct {
	opts    ControllerOptions
	zk      ZK
	evictor *Evictor
	stale   *Staleness
	exec    *Executor

	// Ready, if set, is asked before each cycle whether ZooKeeper can take writes.
	Ready func(context.Context) error
	// Leading says whether this replica may act (default: always).
	Leading func() bool
	// Metrics, Recorder (Events on the pods concerned) and OnResult (the dashboard's list of
	// corrections) are optional. OnResult sees the first sighting of each result, as the log.
	Metrics  *Metrics
	Recorder events.EventRecorder
	OnResult func(Result)
	Log      logr.Logger

	mu      sync.Mutex
	pods    map[string]*corev1.ObjectReference // provider ip:port -> its pod, for Events
	seen    map[string]bool                    // results logged last cycle: the rest is news
	next    map[string]bool
	lastErr string
}

// NewController makes the controller of one process. z is where the fixes write; ev may be
// nil unless evict is among the modes.
func NewController(o ControllerOptions, z ZK, ev *Evictor) *Controller {
	c := &Controller{opts: o, zk: z, evictor: ev, seen: map[string]bool{}, next: map[string]bool{}, Log: logr.Discard()}
	if o.StaleAfter > 0 {
		c.stale = NewStaleness(o.StaleAfter)
	}
	c.exec = &Executor{ZK: z, Evictor: ev, MaxChanges: o.MaxChanges, DryRun: o.DryRun, BackupDir: o.BackupDir,
		RestoreCommand: o.RestoreCommand, OnResult: c.observe}
	return c
}

// Targets turns the auditor's provider findings into the targets of each mode.
func Targets(r *registry.Result) (disable, prune, evict []Target) {
	for i := range r.Providers {
		f := &r.Providers[i]
		t := Target{Interface: f.Service, Version: f.Version, Group: f.Group, Application: f.Application,
			Protocol: f.Protocol, Znode: f.Path, Dynamic: !f.Persistent, Reason: string(f.Reason),
			// Stale: a pod-network address that no pod holds (a node address is never stale).
			Orphan: f.Stale && f.PodName == ""}
		if a, err := netip.ParseAddr(strings.Trim(f.Address, "[]")); err == nil && f.Port > 0 && f.Port <= 65535 {
			t.Address = netip.AddrPortFrom(a.Unmap(), uint16(f.Port))
		}
		if f.PodName != "" {
			t.Pod = &types.NamespacedName{Namespace: f.PodNamespace, Name: f.PodName}
			t.PodUID = f.PodUID
		}
		unreachable := f.Verdict == routes.Unreachable
		if f.Kind == registry.KindInterface {
			// Only unreachable providers: unknown verdicts are not known to be broken, and a
			// reachable one is never disabled, stale or not (issue 12, item 9). Plan takes the
			// disable targets from DisableInputFrom, which picks the same ones.
			if unreachable {
				disable = append(disable, t)
			}
			prune = append(prune, t)
		}
		if unreachable && t.Pod != nil {
			evict = append(evict, t)
		}
	}
	return disable, prune, evict
}

// Plan makes the plan of one cycle from a result. With an incomplete scan and a mode that
// needs one, it returns ErrIncompleteScan and plans nothing.
func (c *Controller) Plan(ctx context.Context, r *registry.Result, now time.Time) (Plan, error) {
	plan := Plan{Complete: true, Changes: []Change{}}
	m := c.opts.Modes
	if m.NeedsScan() && !r.Complete {
		return Plan{Changes: []Change{}}, ErrIncompleteScan
	}
	_, prn, ev := Targets(r)
	if m[ModeUndoDisable] {
		p, err := PlanUndoDisable(c.zk, c.opts.Disable)
		if err != nil {
			return Plan{}, fmt.Errorf("planning undo-disable: %w", err)
		}
		plan.Add(p)
	}
	if m[ModeDisable] {
		p, err := PlanDisableFor(c.zk, DisableInputFrom(r), c.opts.Disable)
		if err != nil {
			return Plan{}, fmt.Errorf("planning disable: %w", err)
		}
		plan.Add(p)
	}
	if m[ModePrune] {
		clock := c.stale
		if clock == nil { // StaleAfter 0: orphaned now is due now
			clock = NewStaleness(time.Minute)
			clock.After = 0
		}
		p, err := PlanPrune(c.zk, r.Complete, prn, clock, now)
		if err != nil {
			return Plan{}, fmt.Errorf("planning prune: %w", err)
		}
		plan.Add(p)
	}
	if m[ModeEvict] {
		p, err := c.evictor.Plan(ctx, r.Complete, ev, now)
		if err != nil {
			return Plan{}, fmt.Errorf("planning evict: %w", err)
		}
		plan.Add(p)
	}
	return plan, nil
}

// Apply applies a plan (DryRun: reports it) and returns what was done.
func (c *Controller) Apply(ctx context.Context, p Plan) (Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exec.Apply(ctx, p)
}

// RunOnce is one cycle of the long-running auditor, run after each published result (a
// registry.Auditor hook): on the leader, targets -> plan -> apply -> Events. Results are
// logged when first seen, counted, and recorded as Events on the pods concerned; an error is
// logged once until it changes, and the next result tries again.
func (c *Controller) RunOnce(ctx context.Context, r *registry.Result) {
	if c.Leading != nil && !c.Leading() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ready(ctx, r); err != nil {
		c.logErr("no fix this cycle", err)
		return
	}
	plan, err := c.Plan(ctx, r, time.Now()) // targets -> plan
	if err != nil {
		c.logErr("no fix this cycle", err)
		return
	}
	c.pods = podsByProvider(r)
	c.next = map[string]bool{}
	rep, err := c.exec.Apply(ctx, plan) // apply; each result -> log, metrics, Events (observe)
	c.seen = c.next
	if c.Metrics != nil {
		c.Metrics.Cycle(rep)
	}
	if err != nil {
		c.logErr("no fix this cycle", err)
		return
	}
	c.lastErr = ""
	if rep.Backup != "" {
		c.Log.Info("pruned entries backed up", "file", rep.Backup, "restore", rep.RestoreCommand)
	}
}

// ready says why no fix can be made from r: an incomplete scan (for the modes that act on
// findings) or a ZooKeeper that does not answer.
func (c *Controller) ready(ctx context.Context, r *registry.Result) error {
	if c.opts.Modes.NeedsScan() && !r.Complete {
		return ErrIncompleteScan
	}
	if c.Ready == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Ready(rctx); err != nil {
		return fmt.Errorf("ZooKeeper for the fixes: %w", err)
	}
	return nil
}

// podsByProvider maps each provider's ip:port to its pod, so that a change that names only
// the provider (a disable rule) still gets its Event on the pod.
func podsByProvider(r *registry.Result) map[string]*corev1.ObjectReference {
	pods := map[string]*corev1.ObjectReference{}
	for i := range r.Providers {
		f := &r.Providers[i]
		if f.PodName != "" && f.Port != 0 {
			pods[net.JoinHostPort(f.Address, strconv.Itoa(f.Port))] = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod",
				Namespace: f.PodNamespace, Name: f.PodName, UID: f.PodUID}
		}
	}
	return pods
}

func (c *Controller) logErr(msg string, err error) {
	if s := msg + err.Error(); s != c.lastErr {
		c.lastErr = s
		c.Log.Error(err, msg)
	}
}

// observe is the Executor's OnResult: metrics, the first sighting logged, Events for what was
// attempted. It runs under c.mu (inside Apply).
func (c *Controller) observe(res Result) {
	if c.Metrics != nil {
		c.Metrics.Observe(res)
	}
	ch := res.Change
	key := strings.Join([]string{res.Result, ch.Mode, ch.Op, ch.Path, ch.Provider, ch.Service, res.Error}, "\x00")
	c.next[key] = true
	if !c.seen[key] || res.Result == ResultApplied {
		kv := []any{"result", res.Result, "mode", ch.Mode, "op", ch.Op, "path", ch.Path, "subject", ch.Subject(), "reason", ch.Reason}
		if res.Error != "" {
			kv = append(kv, "error", res.Error)
		}
		c.Log.Info("fix", kv...)
		if c.OnResult != nil {
			c.OnResult(res)
		}
	}
	switch res.Result {
	case ResultApplied, ResultConflict, ResultRefused, ResultFailed:
	default:
		return // planned, skipped or deferred: logged and counted, no Event every cycle
	}
	if c.Recorder == nil {
		return
	}
	ref := c.pods[ch.Provider]
	if ch.Pod != nil {
		ref = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ch.Pod.Namespace, Name: ch.Pod.Name, UID: ch.PodUID}
	}
	if ref == nil {
		return // nothing in the cluster to attach it to (an orphaned entry): the log line stands
	}
	typ, reason := corev1.EventTypeNormal, "RegistrationFixed"
	if res.Result != ResultApplied {
		typ, reason = corev1.EventTypeWarning, "RegistrationFixFailed"
	}
	op := ch.Op
	if op == "" {
		op = "-"
	}
	note := fmt.Sprintf("%s %s %s (%s): %s %s", ch.Mode, op, ch.Subject(), res.Result, ch.Reason, res.Error)
	if ch.Path != "" {
		note += " [" + ch.Path + "]"
	}
	if len(note) > 1000 {
		note = note[:1000]
	}
	c.Recorder.Eventf(ref, nil, typ, reason, "Fix", "%s", note)
}
