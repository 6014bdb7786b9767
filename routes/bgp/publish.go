package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/cluster"
)

// LeaderElectionID names the Lease the `dubboreach publish` replicas compete for. It is not
// the status Lease (ObjectName): that one says a speaker is alive, this one who may speak.
const LeaderElectionID = "dubboreach-publish.dubboreach.io"

// PublishOptions configure Publish. Flags of `dubboreach publish` map one to one.
type PublishOptions struct {
	RestConfig *rest.Config
	Fabric     *routes.Fabric // with publish: bgp and spec.bgp
	// Namespace is the process's own: the leader Lease and the status objects live there.
	Namespace string
	// Identity names this replica in the status Lease (the pod name).
	Identity string

	// LeaderElect makes one replica of several speak; without it, run exactly one.
	LeaderElect bool
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election (controller-runtime's
	// defaults, 15s/10s/2s, when zero): a crashed leader is replaced within LeaseDuration; one
	// that shuts down releases the Lease and is replaced within RetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// StatusLease is how long one heartbeat of the status Lease counts (Writer.LeaseTime,
	// default 10s): the bound on how long a dead speaker's routes still read as published.
	StatusLease time.Duration
	// StatusInterval is how often the sessions are read and the status written (default 2s).
	StatusInterval time.Duration

	MetricsBindAddress     string // "0" disables
	HealthProbeBindAddress string // "0" disables

	Speaker Options // LocalAddress, ConnectRetry; Log is set from Log
	Log     logr.Logger
	// Registry receives the dubboreach_bgp_* metrics when metrics are served (nil:
	// controller-runtime's registry, which MetricsBindAddress serves). They are unregistered
	// when Publish returns.
	Registry prometheus.Registerer
}

func (o *PublishOptions) validate() error {
	switch {
	case o.RestConfig == nil:
		return errors.New("publish: no cluster configuration: it watches Nodes to know what to announce")
	case o.Fabric == nil || o.Fabric.BGP == nil || o.Fabric.Publish != routes.PublishBGP:
		return errors.New("publish: the fabric file needs podRoutes.publish: bgp and a spec.bgp block (docs/bgp.md)")
	case o.Namespace == "":
		return errors.New("publish: no namespace for the status objects and the leader Lease: pass --namespace or set POD_NAMESPACE")
	case o.Identity == "":
		return errors.New("publish: no identity for the status Lease: pass --identity or set POD_NAME")
	}
	return nil
}

// Publish runs the process behind `dubboreach publish` until ctx ends: Nodes and Calico blocks
// watched into a routes.Store; on the elected replica only, the speaker announcing the store's
// routes and a Writer keeping the status objects current; metrics and health probes on every
// replica.
func Publish(ctx context.Context, o PublishOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	shutdown := 10 * time.Second
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  o.Log,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: o.Namespace,
		// Release the Lease on the way out, so the standby speaks within RetryPeriod.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 durationOrNil(o.LeaseDuration),
		RenewDeadline:                 durationOrNil(o.RenewDeadline),
		RetryPeriod:                   durationOrNil(o.RetryPeriod),
		GracefulShutdownTimeout:       &shutdown,
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	store := routes.NewStore(o.Fabric, nil)
	if err := cluster.SetupWithManager(mgr, store); err != nil {
		return fmt.Errorf("watching nodes and Calico blocks: %w", err)
	}
	cs, err := kubernetes.NewForConfig(o.RestConfig)
	if err != nil {
		return err
	}
	metrics := NewMetrics()
	if o.MetricsBindAddress != "0" {
		reg := o.Registry
		if reg == nil {
			reg = ctrlmetrics.Registry
		}
		if err := reg.Register(metrics); err != nil {
			return fmt.Errorf("registering the BGP metrics: %w", err)
		}
		defer reg.Unregister(metrics)
	}
	var synced atomic.Bool
	sp := &speakerRunnable{o: &o, mgr: mgr, store: store, writer: &Writer{Client: cs, Namespace: o.Namespace, Identity: o.Identity, LeaseTime: o.StatusLease},
		synced: &synced, metrics: metrics}
	if err := mgr.Add(sp); err != nil {
		return err
	}
	if err := mgr.Add(&syncWaiter{mgr: mgr, done: &synced}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the store has seen every node; standbys are ready too (they take over).
	if err := mgr.AddReadyzCheck("routes", func(*http.Request) error {
		if !synced.Load() {
			return errors.New("the route table has not seen every node yet (informers syncing)")
		}
		return nil
	}); err != nil {
		return err
	}
	o.Log.Info("starting publish", "asn", o.Fabric.BGP.ASN, "routerID", o.Fabric.BGP.RouterID, "peers", len(o.Fabric.BGP.Peers),
		"within", o.Fabric.BGP.Within, "leaderElect", o.LeaderElect, "namespace", o.Namespace, "identity", o.Identity)
	return mgr.Start(ctx)
}

func durationOrNil(d time.Duration) *time.Duration {
	if d <= 0 {
		return nil
	}
	return &d
}

// speakerRunnable is the elected replica's work: the BGP speaker and the status Writer.
type speakerRunnable struct {
	o       *PublishOptions
	mgr     ctrl.Manager
	store   *routes.Store
	writer  *Writer
	synced  *atomic.Bool
	metrics *Metrics
}

func (s *speakerRunnable) NeedLeaderElection() bool { return true }

func (s *speakerRunnable) Start(ctx context.Context) error {
	log := s.o.Log.WithName("speaker")
	// Announce the whole table at once, not the first nodes the informer happens to deliver.
	if !s.mgr.GetCache().WaitForCacheSync(ctx) {
		return nil
	}
	opt := s.o.Speaker
	opt.Log = log
	sp, err := Start(ctx, s.o.Fabric.BGP, opt)
	if err != nil {
		return err
	}
	log.Info("speaking: this replica announces the pod routes", "identity", s.o.Identity)
	s.metrics.setLeader(true)
	defer func() {
		sp.Stop()
		s.metrics.setLeader(false)
		s.retire(log)
	}()
	sp.Run(ctx, s.store, RunOptions{StatusInterval: s.o.StatusInterval, Report: func(st *Status) {
		s.metrics.observe(st, s.store.Table().Routes, sp.Eligible)
		if err := s.writer.Write(ctx, st); err != nil && ctx.Err() == nil {
			log.Error(err, "writing the BGP status objects")
		}
	}})
	return nil
}

// retire deletes the status Lease if this replica still holds it: the sessions are closed, so
// nothing is published, and readers should know now rather than when the heartbeat runs out.
// A successor that already renewed it holds it; then the Lease is left alone.
func (s *speakerRunnable) retire(log logr.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leases := s.writer.Client.CoordinationV1().Leases(s.o.Namespace)
	l, err := leases.Get(ctx, ObjectName, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			log.Error(err, "reading the status Lease on the way out; readers see the routes unpublished when it runs out")
		}
		return
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != s.o.Identity {
		return
	}
	err = leases.Delete(ctx, ObjectName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.Error(err, "deleting the status Lease on the way out; readers see the routes unpublished when it runs out")
	}
}

// syncWaiter marks the store ready once the manager's informers have synced, on every replica.
type syncWaiter struct {
	mgr  ctrl.Manager
	done *atomic.Bool
}

func (s *syncWaiter) Start(ctx context.Context) error {
	if s.mgr.GetCache().WaitForCacheSync(ctx) {
		s.done.Store(true)
	}
	return nil
}

func (s *syncWaiter) NeedLeaderElection() bool { return false }
