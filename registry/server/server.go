// Package server runs the long-running auditor behind `dubboreach audit` (without --once), as
// webhook/server runs the webhook: the route store and pod index fed by cluster informers (or
// an inventory file), the ZooKeeper scanner and judge (registry.Auditor), leader-elected
// Events, the fix controller (registry/fix) after each result, and the dashboard, JSON API,
// /metrics, /healthz and /readyz on one listener.
//
// Other parts plug in through Options: Handlers (more HTTP endpoints on the listener), Hooks
// (run after each published result) and Collectors (more metrics on /metrics).
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/dashboard"
	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/routes/cluster"
	"github.com/dubboreach/dubboreach/routes/render"
)

// LeaderElectionID names the Lease the auditor's replicas compete for (Events and fixes are
// written by the leader only).
const LeaderElectionID = "dubboreach-audit"

// Options configure Run. Flags of `dubboreach audit` map one to one.
type Options struct {
	// RestConfig is the cluster to watch (nodes, Calico blocks, pods, namespaces). Nil with
	// Inventory set: judge against the file alone (no Events, no leader election).
	RestConfig *rest.Config
	// Inventory, when set, replaces the cluster informers as the source of nodes, blocks, pods
	// and namespaces.
	Inventory *routes.Inventory
	// Fabric is what the network outside the cluster reaches (default routes.DefaultFabric).
	Fabric *routes.Fabric

	// Scan is the ZooKeeper connection and the roots to scan (--zk, --zk-root, ...).
	Scan zk.Config
	// Listen serves the dashboard, /api/v1/, /metrics, /healthz and /readyz (--listen); empty:
	// no HTTP server.
	Listen string
	// RouteFormat is the router dialect of missing routes in explanations (--route-format).
	RouteFormat render.Format

	LeaderElect             bool   // --leader-elect (with a cluster)
	LeaderElectionNamespace string // --leader-election-namespace; empty: the pod's namespace
	// BGPStatusNamespace (--bgp-status-namespace) holds the status objects of `dubboreach
	// publish`: under podRoutes.publish: bgp they say which routes are announced. Required then
	// with a cluster.
	BGPStatusNamespace string

	// Fix is the correction policy (--fix and its flags); no modes: no corrections.
	Fix Fix

	Log logr.Logger

	// Handlers are served on Listen beside the auditor's own endpoints, keyed by
	// http.ServeMux pattern ("GET /api/v1/measurements"). They need Listen.
	Handlers map[string]http.Handler
	// Hooks run after each published result, after the fix controller, in the auditor's
	// goroutine: keep them short, or hand the result to a goroutine of your own.
	Hooks []func(context.Context, *registry.Result)
	// Collectors are registered beside the auditor's metrics and served on /metrics.
	Collectors []prometheus.Collector
	// Measurements, when set, are shown by the dashboard beside the verdicts (registry/measure.Store).
	Measurements dashboard.Measurements
}

// Fix is the correction policy of `audit --fix` (docs/fix.md); the fields are the flags.
type Fix struct {
	Modes        fix.Modes     // --fix
	DryRun       bool          // --dry-run
	StaleAfter   time.Duration // --stale-after; 0 prunes what is orphaned now (--once only)
	MaxEvictions int           // --max-evictions-per-minute
	MinPodAge    time.Duration // --min-pod-age
	MaxChanges   int           // --max-fix-changes
	BackupDir    string        // --fix-backup-dir
	Legacy       bool          // --legacy-override
	ConfigRoot   string        // --config-root; empty: <zk-root>/config/dubbo
	DisableScope string        // --disable-scope: fix.ScopeOutside (default) or fix.ScopeAll
}

// configRoot is --config-root, or where Dubbo keeps rules for the registry root: a registry
// group X puts the config center's namespace at X too (registryAsConfigCenter), and rules are
// read from its "dubbo" group (GovernanceRuleRepository.DEFAULT_GROUP): /X/config/dubbo.
func (f Fix) configRoot(scan zk.Config) string {
	if f.ConfigRoot != "" {
		return f.ConfigRoot
	}
	return path.Join(scan.ZKRoot, "config", "dubbo")
}

// Evictor returns the pod evictor of the policy, writing through c.
func (f Fix) Evictor(c client.Client) *fix.Evictor {
	return fix.NewEvictor(c, fix.EvictOptions{MaxPerMinute: f.MaxEvictions, MinPodAge: f.MinPodAge})
}

// Controller returns the fix controller of the policy: it writes to ZooKeeper through c (the
// roots of scan, under c's chroot) and evicts through ev (nil unless evict is a mode).
func (f Fix) Controller(scan zk.Config, c *zk.Client, ev *fix.Evictor) *fix.Controller {
	return fix.NewController(fix.ControllerOptions{
		Modes: f.Modes, DryRun: f.DryRun, StaleAfter: f.StaleAfter, MaxChanges: f.MaxChanges, BackupDir: f.BackupDir,
		Disable: fix.DisableOptions{
			ConfigRoot:   path.Clean(c.Chroot + f.configRoot(scan)),
			Scope:        f.DisableScope,
			RegistryRoot: path.Clean(c.Chroot + scan.ZKRoot),
			Legacy:       f.Legacy,
		},
		RestoreCommand: func(file string) string {
			return "dubboreach audit restore --zk " + ShellQuote(scan.Servers) + " --backup " + ShellQuote(file)
		},
	}, c, ev)
}

// followBGP makes the speaker's status objects the store's publisher (publish: bgp).
func followBGP(mgr ctrl.Manager, store *routes.Store, o Options) (func() bool, error) {
	if o.BGPStatusNamespace == "" {
		return nil, errors.New("audit server: the fabric says podRoutes.publish: bgp, and no namespace is given for the BGP speaker's status objects (--bgp-status-namespace)")
	}
	cs, err := kubernetes.NewForConfig(o.RestConfig)
	if err != nil {
		return nil, err
	}
	log := o.Log.WithName("bgp-status")
	r := &bgp.Reader{Client: cs, Namespace: o.BGPStatusNamespace, Store: store, OnError: func(err error) {
		log.Error(err, "the BGP speaker's status is unreadable: every pod route reads unpublished")
	}}
	if err := mgr.Add(r); err != nil {
		return nil, err
	}
	return r.Synced, nil
}

// ConfigError is an error in the configuration Run was given (a listen address taken, a
// cluster that cannot be set up): the command maps it to its usage exit status.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configError(err error) error { return &ConfigError{Err: err} }

// Run audits until ctx is cancelled. An error in Options comes back as a *ConfigError.
func Run(ctx context.Context, o Options) error {
	if o.Inventory == nil && o.RestConfig == nil {
		return configError(errors.New("audit server: no cluster configuration and no inventory"))
	}
	if len(o.Handlers) > 0 && o.Listen == "" {
		return configError(errors.New("audit server: extra handlers need a listen address"))
	}
	fab := o.Fabric
	if fab == nil {
		fab = routes.DefaultFabric()
	}
	store := routes.NewStore(fab, nil)
	pods := registry.NewPodIndex()
	metrics := registry.NewMetrics()
	holder := registry.NewHolder()
	aud := &registry.Auditor{Scan: o.Scan, Routes: store, Pods: pods, Holder: holder, Metrics: metrics,
		Format: o.RouteFormat, Log: o.Log}
	fixMetrics := fix.NewMetrics()
	metrics.Registry.MustRegister(fixMetrics.Collectors()...)
	for _, c := range o.Collectors {
		if err := metrics.Registry.Register(c); err != nil {
			return configError(fmt.Errorf("audit server: registering a collector: %w", err))
		}
	}
	modes := o.Fix.Modes
	// One plain connection for single reads and writes: the fixes and the dashboard's detail
	// view. A plain auditor needs neither, and keeps no second session open.
	var zc *zk.Client
	if len(modes) > 0 || o.Listen != "" {
		var err error
		if zc, err = zk.NewClient(zk.Options{Servers: o.Scan.Servers, Auth: o.Scan.Auth, SessionTimeout: o.Scan.SessionTimeout, Log: logr.Discard()}); err != nil {
			return configError(err)
		}
		defer zc.Close()
	}
	// Without a cluster the single process is the leader.
	leading := func() bool { return true }
	var (
		recorder events.EventRecorder
		evictor  *fix.Evictor
	)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	synced := func() bool { return true }
	if o.Inventory != nil {
		store.Replace(o.Inventory)
		pods.Replace(o.Inventory)
	} else {
		scheme := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(scheme); err != nil {
			return err
		}
		mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
			Scheme:                  scheme,
			Metrics:                 metricsserver.Options{BindAddress: "0"}, // served on Listen with ours
			HealthProbeBindAddress:  "0",
			LeaderElection:          o.LeaderElect,
			LeaderElectionID:        LeaderElectionID,
			LeaderElectionNamespace: o.LeaderElectionNamespace,
		})
		if err != nil {
			return configError(fmt.Errorf("setting up the cluster client: %w", err))
		}
		if err := cluster.SetupWithManager(mgr, store); err != nil {
			return configError(err)
		}
		bgpSynced := func() bool { return true }
		if fab.Publish == routes.PublishBGP {
			if bgpSynced, err = followBGP(mgr, store, o); err != nil {
				return configError(err)
			}
		}
		if err := registry.SetupWithManager(mgr, pods); err != nil {
			return configError(err)
		}
		aud.Events = &registry.Events{Recorder: mgr.GetEventRecorder("dubboreach-audit")}
		if err := mgr.Add(aud.Events); err != nil {
			return err
		}
		leading, recorder = aud.Events.Leading, aud.Events.Recorder
		if modes[fix.ModeEvict] {
			evictor = o.Fix.Evictor(mgr.GetClient())
		}
		go func() { errc <- mgr.Start(ctx) }()
		// Judge nothing against an empty route table or pod index: wait for the caches.
		synced = func() bool {
			if !mgr.GetCache().WaitForCacheSync(ctx) {
				return false
			}
			// Under publish: bgp, judge nothing before the speaker's status has been read:
			// every route would read unpublished for want of news.
			for !bgpSynced() {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(50 * time.Millisecond):
				}
			}
			return true
		}
	}
	var fixLog *dashboard.FixLog
	if len(modes) > 0 {
		fixLog = dashboard.NewFixLog(200)
		fc := o.Fix.Controller(o.Scan, zc, evictor)
		fc.Ready, fc.Leading, fc.Recorder, fc.Metrics, fc.Log = zc.Ready, leading, recorder, fixMetrics, o.Log.WithName("fix")
		fc.OnResult = func(res fix.Result) { // the dashboard's Corrections: the same first sightings as the log
			ch := res.Change
			fixLog.Add(dashboard.FixEntry{At: time.Now(), Mode: ch.Mode, Op: ch.Op, Result: res.Result, Subject: ch.Subject(),
				Service: ch.Service, Provider: ch.Provider, Path: ch.Path, Reason: ch.Reason, Error: res.Error})
		}
		aud.Hooks = append(aud.Hooks, fc.RunOnce)
	}
	aud.Hooks = append(aud.Hooks, o.Hooks...)
	if o.Listen != "" {
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return configError(fmt.Errorf("--listen %s: %w", o.Listen, err))
		}
		mux := registry.NewMux(holder, metrics)
		dashboard.Register(mux, dashboard.Options{Holder: holder, Store: store, Pods: pods,
			Format: o.RouteFormat, Context: ctx, ReadZnode: zc.Read, Fixes: fixLog, Measurements: o.Measurements})
		for pattern, h := range o.Handlers {
			mux.Handle(pattern, h)
		}
		// No WriteTimeout: it would cut the dashboard's event stream; srv.Close ends streams.
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		go func() { <-ctx.Done(); _ = srv.Close() }()
		o.Log.Info("serving the dashboard on http://"+ln.Addr().String()+"/, the API on /api/v1/, /metrics, /healthz and /readyz", "address", ln.Addr().String())
	}
	go func() {
		if !synced() {
			errc <- nil // the context ended first
			return
		}
		errc <- aud.Run(ctx)
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if err == nil || errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// ShellQuote quotes s for a POSIX shell unless it is made of characters that need none, so
// that the commands dubboreach prints can be pasted as they are.
func ShellQuote(s string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/.,:_-=@+", r)
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
