package deploy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
)

// TestPublishRBAC installs the chart's RBAC (publish.enabled) and the speaker's create policy in
// a real kube-apiserver and runs the real code as each ServiceAccount, by impersonation:
//   - `dubboreach publish` (bgp.Publish) as dubboreach-publish: the informers sync, it is elected,
//     writes the status ConfigMap and Lease, records its LeaderElection Event, deletes the status
//     Lease on the way out; a second run takes over the existing objects (get and update);
//   - bgp.Reader as dubboreach-webhook and as dubboreach-audit follows what a Writer running as
//     dubboreach-publish writes: a route is published, then withdrawn;
//   - everything else those identities try on the way is refused.
func TestPublishRBAC(t *testing.T) {
	env := apiServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := env.Client
	adminCS, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var installed []client.Object
	t.Cleanup(func() {
		for _, o := range installed {
			if err := admin.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s %s: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	})
	create := func(o client.Object) {
		t.Helper()
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %s %s: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
		installed = append(installed, o)
	}
	for _, u := range render(t, publishValues) {
		switch u.GetKind() {
		case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			create(u.DeepCopy())
		case "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			if u.GetLabels()["app.kubernetes.io/component"] == "publish" {
				create(u.DeepCopy())
			}
		}
	}
	// Something for the ones that must not be touched, and a node with a pod route.
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dubboreach-fabric", Namespace: releaseNamespace}, Data: map[string]string{"fabric.yaml": "x"}})
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bgp-passwords", Namespace: releaseNamespace}, StringData: map[string]string{"tor-a": "s3cret"}})
	create(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "dubboreach-webhook.dubboreach.io", Namespace: releaseNamespace}})
	create(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rbac-node"}, Spec: corev1.NodeSpec{PodCIDR: "10.131.5.0/24", PodCIDRs: []string{"10.131.5.0/24"}}})

	as := func(sa string) *rest.Config {
		cfg := rest.CopyConfig(env.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + releaseNamespace + ":" + sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"}}
		return cfg
	}
	clientset := func(sa string) kubernetes.Interface {
		cs, err := kubernetes.NewForConfig(as(sa))
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}

	// A peer nobody answers on: the sessions stay down, which is enough to write the status.
	fab, err := routes.ParseFabric("fabric.yaml", []byte(fmt.Sprintf(`apiVersion: dubboreach.io/v1alpha1
kind: Fabric
spec:
  reachable: [10.132.2.0/24]
  podRoutes: {source: nodes, nextHop: InternalIP, publish: bgp}
  bgp:
    asn: 64512
    routerID: 10.132.2.10
    within: [10.131.0.0/16]
    peers: [{address: 127.0.0.1, asn: 64513, port: %d}]
`, freePort(t))))
	if err != nil {
		t.Fatal(err)
	}

	// The API server compiles a new policy and enforces it a little later.
	waitFor(t, 90*time.Second, nil, "the create policy enforced", func() bool {
		_, err := clientset("dubboreach-publish").CoreV1().ConfigMaps(releaseNamespace).Create(ctx,
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "may create only the ConfigMap dubboreach-bgp")
	})

	t.Run("publish runs as its ServiceAccount", func(t *testing.T) {
		run := func(identity string) (stop func(), errs *errorLog, health string) {
			errs = &errorLog{}
			health = fmt.Sprintf("127.0.0.1:%d", freePort(t))
			pctx, pcancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- bgp.Publish(pctx, bgp.PublishOptions{
					RestConfig: as("dubboreach-publish"), Fabric: fab, Namespace: releaseNamespace, Identity: identity,
					LeaderElect: true, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
					StatusLease: 10 * time.Second, StatusInterval: 300 * time.Millisecond,
					MetricsBindAddress: "0", HealthProbeBindAddress: health,
					Speaker: bgp.Options{ConnectRetry: time.Hour}, Log: errs.logger(),
				})
			}()
			return func() {
				pcancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("publish %s: %v", identity, err)
					}
				case <-time.After(30 * time.Second):
					t.Errorf("publish %s did not stop within 30s", identity)
				}
			}, errs, health
		}
		statusLease := func() *coordinationv1.Lease {
			l, err := adminCS.CoordinationV1().Leases(releaseNamespace).Get(ctx, bgp.ObjectName, metav1.GetOptions{})
			if err != nil {
				return nil
			}
			return l
		}
		holds := func(identity string) func() bool {
			return func() bool {
				l := statusLease()
				return l != nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == identity
			}
		}

		stop, errs, health := run("dubboreach-publish-0")
		waitFor(t, 90*time.Second, errs, "publish-0 ready (its Node and IPAM block informers synced)", func() bool { return get(health+"/readyz") == http.StatusOK })
		waitFor(t, 60*time.Second, errs, "publish-0 holds the status Lease", holds("dubboreach-publish-0"))
		var cm *corev1.ConfigMap
		waitFor(t, 30*time.Second, errs, "publish-0 writes the status ConfigMap", func() bool {
			cm, err = adminCS.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, bgp.ObjectName, metav1.GetOptions{})
			return err == nil
		})
		st, err := bgp.ParseStatus([]byte(cm.Data[bgp.StatusKey]))
		if err != nil || len(st.Peers) != 1 || st.Peers[0].Address != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("status ConfigMap %q: %v", cm.Data[bgp.StatusKey], err)
		}
		renewed := statusLease().Spec.RenewTime.Time
		waitFor(t, 30*time.Second, errs, "publish-0 renews the status Lease", func() bool {
			l := statusLease()
			return l != nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(renewed)
		})
		waitFor(t, 30*time.Second, errs, "the LeaderElection Event of publish-0", func() bool {
			evs, err := adminCS.CoreV1().Events(releaseNamespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false
			}
			for _, e := range evs.Items {
				if e.Reason == "LeaderElection" && e.InvolvedObject.Kind == "Lease" && e.InvolvedObject.Name == bgp.LeaderElectionID {
					return true
				}
			}
			return false
		})
		stop()
		if statusLease() != nil {
			t.Errorf("the status Lease outlived its speaker's shutdown (errors: %v)", errs.all())
		}

		// The next leader finds the leader Lease and the status ConfigMap in place.
		stop, errs, _ = run("dubboreach-publish-1")
		defer stop()
		waitFor(t, 60*time.Second, errs, "publish-1 takes over the status Lease", holds("dubboreach-publish-1"))
		waitFor(t, 30*time.Second, errs, "publish-1 rewrites the status ConfigMap", func() bool {
			got, err := adminCS.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, bgp.ObjectName, metav1.GetOptions{})
			return err == nil && got.ResourceVersion != cm.ResourceVersion
		})
		if e := errs.all(); len(e) > 0 {
			t.Errorf("publish logged errors: %v", e)
		}
	})

	t.Run("webhook and audit read what publish writes", func(t *testing.T) {
		node := routes.Node{UID: "rbac-node", Name: "rbac-node", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.131.5.0/24")},
			InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.15")}}
		w := &bgp.Writer{Client: clientset("dubboreach-publish"), Namespace: releaseNamespace, Identity: "dubboreach-publish-2", LeaseTime: time.Minute}
		announced := &bgp.Status{AnnouncedTo: routes.AnnouncedToAny,
			Peers:  []bgp.PeerStatus{{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513, State: "established", Announced: 1}},
			Routes: []bgp.AnnouncedRoute{{Prefix: node.PodCIDRs[0], NextHop: node.InternalIPs[0], Peers: []netip.Addr{netip.MustParseAddr("10.132.2.254")}}}}
		if err := w.Write(ctx, announced); err != nil {
			t.Fatalf("the Writer as dubboreach-publish: %v", err)
		}
		var stores []*routes.Store
		for _, sa := range []string{"dubboreach-webhook", "dubboreach-audit"} {
			store := routes.NewStore(fab, nil)
			store.UpsertNode(node)
			stores = append(stores, store)
			rctx, rcancel := context.WithCancel(ctx)
			r := &bgp.Reader{Client: clientset(sa), Namespace: releaseNamespace, Store: store,
				OnError: func(err error) { t.Errorf("%s: %v", sa, err) }}
			done := make(chan struct{})
			go func() { defer close(done); _ = r.Start(rctx) }()
			t.Cleanup(func() { rcancel(); <-done })
		}
		verdicts := func(want routes.Reason) func() bool {
			return func() bool {
				for _, s := range stores {
					if s.Table().Check(netip.MustParseAddr("10.131.5.9")).Reason != want {
						return false
					}
				}
				return true
			}
		}
		waitFor(t, 60*time.Second, nil, "the webhook and the auditor read 10.131.5.0/24 as published", verdicts(routes.ReasonPublishedPodRoute))
		// A change reaches them through their watches.
		withdrawn := *announced
		withdrawn.Routes = nil
		withdrawn.Peers = []bgp.PeerStatus{{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513, State: "active"}}
		if err := w.Write(ctx, &withdrawn); err != nil {
			t.Fatalf("the Writer as dubboreach-publish: %v", err)
		}
		waitFor(t, 60*time.Second, nil, "the webhook and the auditor read 10.131.5.0/24 as unpublished", verdicts(routes.ReasonUnpublishedPodRoute))
	})

	t.Run("nothing else", func(t *testing.T) {
		named := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", bgp.ObjectName).String()}
		type try struct {
			what string
			do   func(cs kubernetes.Interface) error
			ok   bool
		}
		readerTries := []try{
			{"get the status ConfigMap", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, bgp.ObjectName, metav1.GetOptions{})
				return err
			}, true},
			{"list the status ConfigMap by name", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().ConfigMaps(releaseNamespace).List(ctx, named)
				return err
			}, true},
			{"watch the status Lease by name", func(cs kubernetes.Interface) error {
				w, err := cs.CoordinationV1().Leases(releaseNamespace).Watch(ctx, named)
				if err == nil {
					w.Stop()
				}
				return err
			}, true},
			{"list every ConfigMap", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().ConfigMaps(releaseNamespace).List(ctx, metav1.ListOptions{})
				return err
			}, false},
			{"get the fabric ConfigMap", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, "dubboreach-fabric", metav1.GetOptions{})
				return err
			}, false},
			{"update the status ConfigMap", func(cs kubernetes.Interface) error {
				return updateConfigMap(ctx, adminCS, cs, bgp.ObjectName)
			}, false},
			{"delete the status Lease", func(cs kubernetes.Interface) error {
				return cs.CoordinationV1().Leases(releaseNamespace).Delete(ctx, bgp.ObjectName, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
			}, false},
			{"read the password Secret", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().Secrets(releaseNamespace).Get(ctx, "bgp-passwords", metav1.GetOptions{})
				return err
			}, false},
		}
		publishTries := []try{
			{"update the fabric ConfigMap", func(cs kubernetes.Interface) error {
				return updateConfigMap(ctx, adminCS, cs, "dubboreach-fabric")
			}, false},
			{"get the fabric ConfigMap", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, "dubboreach-fabric", metav1.GetOptions{})
				return err
			}, false},
			{"list ConfigMaps", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().ConfigMaps(releaseNamespace).List(ctx, metav1.ListOptions{})
				return err
			}, false},
			{"delete the status ConfigMap", func(cs kubernetes.Interface) error {
				return cs.CoreV1().ConfigMaps(releaseNamespace).Delete(ctx, bgp.ObjectName, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
			}, false},
			{"update the webhook's leader Lease", func(cs kubernetes.Interface) error {
				l, err := adminCS.CoordinationV1().Leases(releaseNamespace).Get(ctx, "dubboreach-webhook.dubboreach.io", metav1.GetOptions{})
				if err != nil {
					return err
				}
				_, err = cs.CoordinationV1().Leases(releaseNamespace).Update(ctx, l, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
				return err
			}, false},
			{"read the password Secret through the API", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().Secrets(releaseNamespace).Get(ctx, "bgp-passwords", metav1.GetOptions{})
				return err
			}, false},
			{"get a node by name", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().Nodes().Get(ctx, "rbac-node", metav1.GetOptions{})
				return err
			}, false},
			{"patch a node", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().Nodes().Patch(ctx, "rbac-node", types.MergePatchType, []byte(`{"metadata":{"labels":{"evil":"yes"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
				return err
			}, false},
			{"list pods", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
				return err
			}, false},
			// RBAC cannot narrow create by name; the create policy does.
			{"create a ConfigMap of another name", func(cs kubernetes.Interface) error {
				_, err := cs.CoreV1().ConfigMaps(releaseNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				return err
			}, false},
			{"create the auditor's leader Lease", func(cs kubernetes.Interface) error {
				_, err := cs.CoordinationV1().Leases(releaseNamespace).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "dubboreach-audit"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				return err
			}, false},
		}
		for _, c := range []struct {
			sa    string
			tries []try
		}{{"dubboreach-webhook", readerTries}, {"dubboreach-audit", readerTries}, {"dubboreach-publish", publishTries}} {
			cs := clientset(c.sa)
			for _, tr := range c.tries {
				err := tr.do(cs)
				switch {
				case tr.ok && err != nil:
					t.Errorf("%s may %s, but: %v", c.sa, tr.what, err)
				case !tr.ok && err == nil:
					t.Errorf("%s could %s", c.sa, tr.what)
				case !tr.ok && !apierrors.IsForbidden(err):
					t.Errorf("%s: %s failed, but not as forbidden: %v", c.sa, tr.what, err)
				}
			}
		}
	})
}

// updateConfigMap reads a ConfigMap as the administrator and writes it back (dry run) as cs.
func updateConfigMap(ctx context.Context, admin, cs kubernetes.Interface, name string) error {
	cm, err := admin.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("admin get: %w", err)
	}
	cm.Data = map[string]string{"evil": "yes"}
	_, err = cs.CoreV1().ConfigMaps(releaseNamespace).Update(ctx, cm, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// errorLog collects the errors a process logs, for the test's failure messages.
type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		if strings.Contains(args, `"error"`) || strings.Contains(args, "forbidden") {
			l.mu.Lock()
			l.errs = append(l.errs, prefix+" "+args)
			l.mu.Unlock()
		}
	}, funcr.Options{})
}

func (l *errorLog) all() []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

func waitFor(t *testing.T, timeout time.Duration, errs *errorLog, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (errors logged: %v)", what, timeout, errs.all())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(hostPort string) int {
	resp, err := http.Get("http://" + hostPort)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
