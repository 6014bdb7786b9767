package bgp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/dubboreach/dubboreach/routes"
)

// ObjectName names the ConfigMap (data key status.json) and the Lease (the speaker's heartbeat)
// through which the speaker tells the webhook and the auditor what is published.
const (
	ObjectName = "dubboreach-bgp"
	StatusKey  = "status.json"
)

// Writer keeps the status objects current for one speaker.
type Writer struct {
	Client    kubernetes.Interface
	Namespace string
	Identity  string        // the speaker (pod name), the Lease's holder
	LeaseTime time.Duration // how long a heartbeat counts (default 10s)

	last []byte // the status.json last written, without its timestamp
}

// Write renews the Lease and, when the routes or sessions changed, the ConfigMap. The Lease
// carries liveness, so an unchanged status costs one small write per call.
func (w *Writer) Write(ctx context.Context, st *Status) error {
	if w.LeaseTime <= 0 {
		w.LeaseTime = 10 * time.Second
	}
	if err := w.renew(ctx); err != nil {
		return err
	}
	cmp := *st
	cmp.Updated = time.Time{}
	key, err := json.Marshal(&cmp)
	if err != nil {
		return err
	}
	if bytes.Equal(key, w.last) {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	cms := w.Client.CoreV1().ConfigMaps(w.Namespace)
	cm, err := cms.Get(ctx, ObjectName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ObjectName, Namespace: w.Namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "dubboreach", "app.kubernetes.io/component": "publish"}},
			Data: map[string]string{StatusKey: string(data)}}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		cm.Data = map[string]string{StatusKey: string(data)}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing ConfigMap %s/%s: %w (the identity needs get/create/update on configmaps in its namespace)", w.Namespace, ObjectName, err)
	}
	w.last = key
	return nil
}

func (w *Writer) renew(ctx context.Context) error {
	leases := w.Client.CoordinationV1().Leases(w.Namespace)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{HolderIdentity: ptr.To(w.Identity), LeaseDurationSeconds: ptr.To(int32(w.LeaseTime / time.Second)), RenewTime: &now}
	l, err := leases.Get(ctx, ObjectName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: ObjectName, Namespace: w.Namespace}, Spec: spec}, metav1.CreateOptions{})
	case err == nil:
		l.Spec = spec
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("renewing Lease %s/%s: %w (the identity needs get/create/update on leases in its namespace)", w.Namespace, ObjectName, err)
	}
	return nil
}

// Reader follows the status objects and keeps a routes.Store's publisher equal to the live
// status: a missing, unreadable or expired one (a dead speaker) publishes nothing, and says why
// in the route table's problems.
type Reader struct {
	Client    kubernetes.Interface
	Namespace string
	Store     *routes.Store
	// OnError is told about a status document that cannot be read (default: ignored; the table's
	// problems say it too).
	OnError func(error)

	mu      sync.Mutex
	view    view
	timer   *time.Timer
	applied routes.Publisher // what the store has: a heartbeat alone does not rebuild its table
	synced  atomic.Bool
}

// view is what the two objects say.
type view struct {
	namespace string
	status    *Status
	statusErr error // the ConfigMap exists but its status.json does not parse
	cmSeen    bool  // the ConfigMap exists
	expiry    time.Time
	holder    string
	leaseSeen bool
}

// publisher is the Publisher the objects amount to at now, and when that changes next (zero:
// only on an update).
func (v *view) publisher(now time.Time) (routes.Publisher, time.Time) {
	obj := v.namespace + "/" + ObjectName
	switch {
	case !v.cmSeen:
		return noStatus{fmt.Sprintf("publish: bgp, but the BGP speaker has written no status (ConfigMap %s is missing: is `dubboreach publish` running?): every pod route reads unpublished", obj)}, time.Time{}
	case v.statusErr != nil:
		return noStatus{fmt.Sprintf("publish: bgp, but the BGP speaker's status cannot be read (ConfigMap %s: %v): every pod route reads unpublished", obj, v.statusErr)}, time.Time{}
	case !v.leaseSeen:
		return noStatus{fmt.Sprintf("publish: bgp, but the BGP speaker has no heartbeat (Lease %s is missing): every pod route reads unpublished", obj)}, time.Time{}
	case !now.Before(v.expiry):
		return noStatus{fmt.Sprintf("publish: bgp, but the BGP speaker's heartbeat (Lease %s, holder %q) ran out at %s: every pod route reads unpublished", obj, v.holder, v.expiry.UTC().Format(time.RFC3339))}, time.Time{}
	}
	return v.status, v.expiry
}

// Start watches the two objects (by name, in one namespace: the process caches nothing else)
// until ctx ends. It implements controller-runtime's manager.Runnable.
func (r *Reader) Start(ctx context.Context) error {
	r.mu.Lock()
	r.view.namespace = r.Namespace
	r.set(noStatus{fmt.Sprintf("publish: bgp: the BGP speaker's status (ConfigMap and Lease %s/%s) is not read yet: every pod route reads unpublished", r.Namespace, ObjectName)})
	r.mu.Unlock()
	f := informers.NewSharedInformerFactoryWithOptions(r.Client, 0, informers.WithNamespace(r.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ObjectName).String()
		}))
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(obj, false) },
		UpdateFunc: func(_, obj any) { r.observe(obj, false) },
		DeleteFunc: func(obj any) { r.observe(obj, true) },
	}
	cms, err := f.Core().V1().ConfigMaps().Informer().AddEventHandler(handler)
	if err != nil {
		return err
	}
	leases, err := f.Coordination().V1().Leases().Informer().AddEventHandler(handler)
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	if toolscache.WaitForCacheSync(ctx.Done(), cms.HasSynced, leases.HasSynced) {
		r.mu.Lock()
		r.applyLocked() // no object at all: say so instead of "not read yet"
		r.mu.Unlock()
		r.synced.Store(true)
	}
	<-ctx.Done()
	f.Shutdown()
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	return nil
}

// Synced reports whether both objects have been listed once: before that every route reads
// unpublished for want of news, not because the speaker says so. Readiness waits for it.
func (r *Reader) Synced() bool { return r.synced.Load() }

// NeedLeaderElection is false: every replica of the webhook and the auditor reads the status,
// not only the leader.
func (r *Reader) NeedLeaderElection() bool { return false }

func (r *Reader) observe(obj any, deleted bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		r.view.cmSeen, r.view.status, r.view.statusErr = !deleted, nil, nil
		if !deleted {
			st, err := ParseStatus([]byte(o.Data[StatusKey]))
			if err != nil && r.OnError != nil {
				r.OnError(fmt.Errorf("ConfigMap %s/%s: %w", o.Namespace, o.Name, err))
			}
			r.view.status, r.view.statusErr = st, err
		}
	case *coordinationv1.Lease:
		r.view.leaseSeen, r.view.expiry, r.view.holder = !deleted, time.Time{}, ""
		if !deleted {
			r.view.expiry, r.view.holder = leaseExpiry(o)
		}
	default:
		return
	}
	r.applyLocked()
}

func leaseExpiry(l *coordinationv1.Lease) (time.Time, string) {
	var expiry time.Time
	if l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil {
		expiry = l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	}
	return expiry, ptr.Deref(l.Spec.HolderIdentity, "")
}

// applyLocked hands the store the status while the lease is fresh, and arms a timer for the
// moment it expires: a speaker that stops renewing is unpublished without any event.
func (r *Reader) applyLocked() {
	if r.timer != nil {
		r.timer.Stop()
	}
	p, until := r.view.publisher(time.Now())
	r.set(p)
	if !until.IsZero() {
		r.timer = time.AfterFunc(time.Until(until), func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.applyLocked()
		})
	}
}

func (r *Reader) set(p routes.Publisher) {
	if r.applied != p {
		r.applied = p
		r.Store.SetPublisher(p)
	}
}

// ReadOnce reads the status objects once, for one-shot commands (`check`, `audit --once`): the
// Publisher they amount to now. An API error (not a missing object) is returned as an error.
func ReadOnce(ctx context.Context, c kubernetes.Interface, namespace string) (routes.Publisher, error) {
	v := view{namespace: namespace}
	cm, err := c.CoreV1().ConfigMaps(namespace).Get(ctx, ObjectName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reading the BGP speaker's status, ConfigMap %s/%s: %w (the identity needs get on it)", namespace, ObjectName, err)
	default:
		v.cmSeen = true
		v.status, v.statusErr = ParseStatus([]byte(cm.Data[StatusKey]))
	}
	l, err := c.CoordinationV1().Leases(namespace).Get(ctx, ObjectName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reading the BGP speaker's heartbeat, Lease %s/%s: %w (the identity needs get on it)", namespace, ObjectName, err)
	default:
		v.leaseSeen = true
		v.expiry, v.holder = leaseExpiry(l)
	}
	p, _ := v.publisher(time.Now())
	return p, nil
}

// noStatus publishes nothing: no speaker, a dead one, or one whose status is unreadable. Its
// Problem says which.
type noStatus struct{ why string }

func (noStatus) Published(routes.Route) bool { return false }
func (n noStatus) Problem() string           { return n.why }
