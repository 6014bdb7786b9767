package bgp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
// status: a missing, unreadable or expired one (a dead speaker) publishes nothing.
type Reader struct {
	Client    kubernetes.Interface
	Namespace string
	Store     *routes.Store
	// OnError is told about a status document that cannot be read (default: ignored; the
	// routes read unpublished, which the table's problems do not explain, so log it).
	OnError func(error)

	mu      sync.Mutex
	status  *Status
	expiry  time.Time
	timer   *time.Timer
	applied routes.Publisher // what the store has: a heartbeat alone does not rebuild its table
}

// Start watches the two objects (by name, in one namespace: the process caches nothing else)
// until ctx ends. It implements controller-runtime's manager.Runnable.
func (r *Reader) Start(ctx context.Context) error {
	r.mu.Lock()
	r.set(noStatus{})
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
	if _, err := f.Core().V1().ConfigMaps().Informer().AddEventHandler(handler); err != nil {
		return err
	}
	if _, err := f.Coordination().V1().Leases().Informer().AddEventHandler(handler); err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	return nil
}

func (r *Reader) observe(obj any, deleted bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		r.status = nil
		if !deleted {
			st, err := ParseStatus([]byte(o.Data[StatusKey]))
			if err != nil && r.OnError != nil {
				r.OnError(fmt.Errorf("ConfigMap %s/%s: %w", o.Namespace, o.Name, err))
			}
			r.status = st
		}
	case *coordinationv1.Lease:
		r.expiry = time.Time{}
		if !deleted && o.Spec.RenewTime != nil && o.Spec.LeaseDurationSeconds != nil {
			r.expiry = o.Spec.RenewTime.Add(time.Duration(*o.Spec.LeaseDurationSeconds) * time.Second)
		}
	default:
		return
	}
	r.applyLocked()
}

// applyLocked hands the store the status while the lease is fresh, and arms a timer for the
// moment it expires: a speaker that stops renewing is unpublished without any event.
func (r *Reader) applyLocked() {
	if r.timer != nil {
		r.timer.Stop()
	}
	left := time.Until(r.expiry)
	if r.status == nil || left <= 0 {
		r.set(noStatus{})
		return
	}
	r.set(r.status)
	r.timer = time.AfterFunc(left, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.applyLocked()
	})
}

func (r *Reader) set(p routes.Publisher) {
	if r.applied != p {
		r.applied = p
		r.Store.SetPublisher(p)
	}
}

// noStatus publishes nothing: no speaker, or a dead one.
type noStatus struct{}

func (noStatus) Published(routes.Route) bool { return false }
