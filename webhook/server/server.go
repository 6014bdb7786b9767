// Package server runs the webhook process behind `dubboreach webhook`: the admission handler
// on controller-runtime's TLS webhook server, the route store fed by cluster informers, the
// leader-elected node-label controller, metrics and health probes.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/routes/cluster"
	"github.com/dubboreach/dubboreach/webhook"
	"github.com/dubboreach/dubboreach/webhook/nodelabel"
)

// LeaderElectionID names the Lease the node-label controllers compete for.
const LeaderElectionID = "dubboreach-webhook.dubboreach.io"

// Options configure Run. Flags of `dubboreach webhook` map one to one.
type Options struct {
	// RestConfig is the cluster to watch. Nil with Inventory set: serve from the file alone
	// (no node labels, no leader election), for demos and tests.
	RestConfig *rest.Config
	// Inventory, when set, replaces the cluster informers as the source of nodes, blocks and
	// namespaces.
	Inventory *routes.Inventory
	Fabric    *routes.Fabric

	Host    string // webhook server listen host; empty: all interfaces
	Port    int    // webhook server port (9443)
	CertDir string // tls.crt and tls.key; reloaded when they change
	// EnableHTTP2 keeps HTTP/2 on; off by default since the HTTP/2 Rapid Reset and stream
	// cancellation attacks (CVE-2023-44487, CVE-2023-39325).
	EnableHTTP2 bool

	MetricsBindAddress     string // "0" disables
	HealthProbeBindAddress string // "0" disables

	LeaderElect bool
	// Namespace is the webhook's own namespace: never injected, and where the leader Lease lives.
	Namespace           string
	RequireRoutableNode bool
	// BGPStatusNamespace holds the status objects of `dubboreach publish` (ConfigMap and Lease
	// dubboreach-bgp): under podRoutes.publish: bgp they are what "published" means, for the
	// injection decisions and the node labels alike. Empty: Namespace.
	BGPStatusNamespace string

	// MaxInFlight caps admission requests answered at once (429 above it); 0 means
	// webhook.DefaultMaxInFlight.
	MaxInFlight int
	// RequestTimeout bounds reading and answering one request; 0 means
	// webhook.DefaultRequestTimeout.
	RequestTimeout time.Duration
	// ShutdownDelay is how long the process keeps answering admissions after it is told to
	// stop, with readiness already failing, so that endpoints drop it before it closes its
	// port: without it every rollout or drain is a window where the API server calls a
	// webhook that is gone and applies the failure policy. The pod's
	// terminationGracePeriodSeconds must exceed it plus the graceful shutdown (20 s).
	ShutdownDelay time.Duration

	Log logr.Logger
	// Registry receives the metrics; nil: controller-runtime's global registry, which the
	// metrics endpoint serves.
	Registry prometheus.Registerer

	// extraHandlers are served on the webhook server beside the admission handler (the load
	// test's no-op baseline).
	extraHandlers map[string]http.Handler
	// restartable allows a second Run in the same process (tests): controller names are
	// otherwise unique per process.
	restartable bool
}

func (o *Options) tlsOpts() []func(*tls.Config) {
	if o.EnableHTTP2 {
		return nil
	}
	return []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
}

func (o *Options) registry() prometheus.Registerer {
	if o.Registry != nil {
		return o.Registry
	}
	return ctrlmetrics.Registry
}

// Run serves until ctx is cancelled, then drains: readiness fails at once, admissions are
// still answered for ShutdownDelay, then the servers shut down gracefully.
func Run(ctx context.Context, o Options) error {
	if o.Inventory == nil && o.RestConfig == nil {
		return errors.New("webhook server: no cluster configuration and no inventory")
	}
	if o.ShutdownDelay < 0 {
		return fmt.Errorf("webhook server: shutdown delay %s is negative", o.ShutdownDelay)
	}
	d := &drain{}
	inner, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go d.run(ctx, inner, cancel, o.ShutdownDelay, o.Log)
	if o.Inventory != nil {
		return runStatic(inner, o, d)
	}
	return runCluster(inner, o, d)
}

// drain holds the process between "told to stop" and "stopping": readiness fails, so the
// Service's endpoints drop the pod, while admissions are still answered.
type drain struct{ started atomic.Bool }

func (d *drain) run(outer, inner context.Context, stop func(), delay time.Duration, log logr.Logger) {
	select {
	case <-outer.Done():
	case <-inner.Done():
		return
	}
	d.started.Store(true)
	log.Info("shutting down: readiness fails, admissions are answered until the delay ends", "shutdownDelay", delay.String())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-inner.Done():
	}
	stop()
}

// check is the readiness check "drain".
func (d *drain) check(*http.Request) error {
	if d.started.Load() {
		return errors.New("shutting down")
	}
	return nil
}

func (o *Options) handler(store *routes.Store, m *webhook.Metrics, ns webhook.NamespaceGetter, ready func() error) *webhook.Handler {
	return &webhook.Handler{Injector: o.injector(store), Namespaces: ns, Metrics: m, Log: o.Log.WithName("webhook"), Ready: ready, Timeout: o.RequestTimeout}
}

func newStore(o *Options) *routes.Store {
	store := routes.NewStore(o.Fabric, nil)
	if o.Inventory != nil {
		store.Replace(o.Inventory)
	}
	return store
}

func runCluster(ctx context.Context, o Options, d *drain) error {
	log := o.Log
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	whServer := ctrlwebhook.NewServer(ctrlwebhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir, TLSOpts: o.tlsOpts()})
	shutdown := 20 * time.Second
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		WebhookServer:           whServer,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: o.Namespace,
		// Release the Lease on the way out, so the next replica labels nodes at once.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &shutdown,
		Controller:                    config.Controller{SkipNameValidation: &o.restartable},
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	store := newStore(&o)
	if err := cluster.SetupWithManager(mgr, store); err != nil {
		return fmt.Errorf("watching nodes and Calico blocks: %w", err)
	}
	bgpSynced, err := o.followBGP(mgr, store)
	if err != nil {
		return err
	}
	m, unregister, err := o.metrics(store)
	if err != nil {
		return err
	}
	defer unregister()

	// Until the informers have synced, the table lacks nodes and auto mode would wrongly pick
	// host addresses: hold admissions (HTTP 503, failure policy) and readiness until then.
	var synced atomic.Bool
	ready := func() error {
		if !synced.Load() {
			return errors.New("the route table has not seen every node yet (informers syncing)")
		}
		if !bgpSynced() {
			return errors.New("the BGP speaker's status objects are not read yet (publish: bgp)")
		}
		return nil
	}
	if err := mgr.Add(&syncWaiter{mgr: mgr, done: &synced}); err != nil {
		return err
	}
	if err := webhook.SetupWithManager(mgr, o.handler(store, m, nil, ready), o.MaxInFlight); err != nil {
		return err
	}
	for path, h := range o.extraHandlers {
		whServer.Register(path, h)
	}
	if err := nodelabel.SetupWithManager(mgr, store); err != nil {
		return fmt.Errorf("node-label controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", whServer.StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("routes", func(*http.Request) error { return ready() }); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("drain", d.check); err != nil {
		return err
	}
	log.Info("starting webhook", "port", o.Port, "certDir", o.CertDir, "requireRoutableNode", o.RequireRoutableNode,
		"leaderElect", o.LeaderElect, "namespace", o.Namespace)
	return mgr.Start(ctx)
}

// followBGP, under publish: bgp, makes the speaker's status objects the store's publisher, on
// every replica; the returned func reports whether they have been read once.
func (o *Options) followBGP(mgr ctrl.Manager, store *routes.Store) (func() bool, error) {
	if o.Fabric == nil || o.Fabric.Publish != routes.PublishBGP {
		return func() bool { return true }, nil
	}
	ns := o.BGPStatusNamespace
	if ns == "" {
		ns = o.Namespace
	}
	if ns == "" {
		return nil, errors.New("webhook server: publish: bgp needs the namespace of the BGP speaker's status objects (BGPStatusNamespace or Namespace)")
	}
	cs, err := kubernetes.NewForConfig(o.RestConfig)
	if err != nil {
		return nil, err
	}
	log := o.Log.WithName("bgp-status")
	r := &bgp.Reader{Client: cs, Namespace: ns, Store: store, OnError: func(err error) {
		log.Error(err, "the BGP speaker's status is unreadable: every pod route reads unpublished")
	}}
	if err := mgr.Add(r); err != nil {
		return nil, err
	}
	return r.Synced, nil
}

// injector decides for pods from store, as the options say.
func (o *Options) injector(store *routes.Store) *webhook.Injector {
	return &webhook.Injector{Config: webhook.Config{RequireRoutableNode: o.RequireRoutableNode, OwnNamespace: o.Namespace}, Routes: store}
}

// metrics registers the route gauges of store and the webhook's own metrics. The gauges read
// this Run's store and leave with it: unregister when Run ends (tests run Run more than once).
func (o *Options) metrics(store *routes.Store) (*webhook.Metrics, func(), error) {
	collector := cluster.NewCollector(store)
	if err := o.registry().Register(collector); err != nil {
		return nil, nil, fmt.Errorf("registering route metrics: %w", err)
	}
	unregister := func() { o.registry().Unregister(collector) }
	m, err := webhook.NewMetrics(o.registry())
	if err != nil {
		unregister()
		return nil, nil, err
	}
	return m, unregister, nil
}

// syncWaiter marks the route table ready once the manager's informers have synced. It runs on
// every replica, leader or not: every replica answers admissions.
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

// runStatic serves admissions from an inventory file: no cluster, so no node labels and no
// leader election; namespaces come from the file.
func runStatic(ctx context.Context, o Options, d *drain) error {
	log := o.Log
	store := newStore(&o)
	m, unregister, err := o.metrics(store)
	if err != nil {
		return err
	}
	defer unregister()
	whServer := ctrlwebhook.NewServer(ctrlwebhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir, TLSOpts: o.tlsOpts()})
	h := o.handler(store, m, webhook.NewStaticNamespaces(o.Inventory.Namespaces), nil)
	whServer.Register(webhook.Path, webhook.LimitInFlight(h, o.MaxInFlight, m))
	for path, h := range o.extraHandlers {
		whServer.Register(path, h)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return whServer.Start(logr.NewContext(ctx, log)) })
	if o.MetricsBindAddress != "" && o.MetricsBindAddress != "0" {
		ms, err := metricsserver.NewServer(metricsserver.Options{BindAddress: o.MetricsBindAddress}, nil, nil)
		if err != nil {
			return fmt.Errorf("metrics server: %w", err)
		}
		g.Go(func() error { return ms.Start(ctx) })
	}
	if o.HealthProbeBindAddress != "" && o.HealthProbeBindAddress != "0" {
		mux := http.NewServeMux()
		mux.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
		mux.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: map[string]healthz.Checker{"webhook": whServer.StartedChecker(), "drain": d.check}}))
		hs := &http.Server{Addr: o.HealthProbeBindAddress, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("health probes on %s: %w", o.HealthProbeBindAddress, err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Shutdown(sctx)
		})
	}
	log.Info("starting webhook from an inventory file (no cluster: node labels are not kept)", "port", o.Port, "certDir", o.CertDir,
		"nodes", len(o.Inventory.Nodes), "namespaces", len(o.Inventory.Namespaces))
	return g.Wait()
}
