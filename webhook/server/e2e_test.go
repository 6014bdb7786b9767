package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/webhook"
)

const ownNamespace = "dubboreach-system"

// TestEndToEnd runs the webhook process (Run, as `dubboreach webhook` does) against a real
// kube-apiserver that calls it over TLS through the MutatingWebhookConfiguration shipped in
// config/webhook.
func TestEndToEnd(t *testing.T) {
	root, err := harness.RepoRoot()
	require.NoError(t, err)
	wio := &envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}, LocalServingHost: "127.0.0.1"}
	env := harness.Envtest(t, harness.EnvOptions{Webhooks: wio})
	ctx := harness.Context(t)
	c := env.Client
	wio = &env.Environment.WebhookInstallOptions

	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{webhook.LabelInject: webhook.InjectEnabled}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		{ObjectMeta: metav1.ObjectMeta{Name: ownNamespace, Labels: map[string]string{webhook.LabelInject: webhook.InjectEnabled}}},
	} {
		require.NoError(t, c.Create(ctx, ns))
	}
	// kube-system labelled for injection all the same: the selector and the code guard keep it out.
	var kubeSystem corev1.Namespace
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "kube-system"}, &kubeSystem))
	kubeSystem.Labels[webhook.LabelInject] = webhook.InjectEnabled
	require.NoError(t, c.Update(ctx, &kubeSystem))

	harness.CreateNode(t, c, "node-a", "10.244.0.0/24", "192.168.0.10")
	harness.CreateNode(t, c, "node-b", "10.244.1.0/24", "192.168.0.11")

	fab := routes.DefaultFabric()
	fab.Installed = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/24"), netip.MustParsePrefix("10.244.1.0/24")}
	metricsPort, err := harness.FreePort()
	require.NoError(t, err)
	probePort, err := harness.FreePort()
	require.NoError(t, err)
	opts := Options{
		RestConfig: env.Config, Fabric: fab,
		Host: wio.LocalServingHost, Port: wio.LocalServingPort, CertDir: wio.LocalServingCertDir,
		MetricsBindAddress:     fmt.Sprintf("127.0.0.1:%d", metricsPort),
		HealthProbeBindAddress: fmt.Sprintf("127.0.0.1:%d", probePort),
		LeaderElect:            true, Namespace: ownNamespace,
		Log:         testr.NewWithOptions(t, testr.Options{Verbosity: 0}),
		restartable: true,
	}
	stop := startRun(t, ctx, opts)
	eventually(t, "readyz answers 200", func() error { return getOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)) })
	require.NoError(t, getOK(fmt.Sprintf("http://127.0.0.1:%d/healthz", probePort)))

	t.Run("node labels follow the routes", func(t *testing.T) {
		waitLabel(t, c, "node-a", webhook.PodRoutePublished)
		waitLabel(t, c, "node-b", webhook.PodRoutePublished)
	})

	t.Run("pod in a labelled namespace gets the pod IP", func(t *testing.T) {
		pod := newPod("shop", "provider")
		require.NoError(t, c.Create(ctx, pod))
		var stored corev1.Pod
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(pod), &stored))
		assert.Equal(t, []corev1.EnvVar{fieldVar("status.podIP")}, stored.Spec.Containers[0].Env)
		rec := recordOf(t, &stored)
		assert.Equal(t, webhook.ModePod, rec.Mode)
		assert.Equal(t, webhook.SourceRoutes, rec.Source)
		assert.Equal(t, "routes: 2/2 nodes have their pod routes published", rec.Reason)
	})

	t.Run("left alone", func(t *testing.T) {
		optedOut := newPod("shop", "opted-out")
		optedOut.Labels = map[string]string{webhook.LabelInject: webhook.InjectDisabled}
		for _, pod := range []*corev1.Pod{newPod("plain", "provider"), optedOut, newPod("kube-system", "provider"), newPod(ownNamespace, "provider")} {
			require.NoError(t, c.Create(ctx, pod))
			var stored corev1.Pod
			require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(pod), &stored))
			assert.Empty(t, stored.Spec.Containers[0].Env, "%s/%s", pod.Namespace, pod.Name)
			assert.NotContains(t, stored.Annotations, webhook.AnnotationInjected, "%s/%s", pod.Namespace, pod.Name)
		}
	})

	t.Run("server-side dry run is mutated and nothing is stored", func(t *testing.T) {
		pod := newPod("shop", "dry")
		require.NoError(t, c.Create(ctx, pod, client.DryRunAll))
		assert.Equal(t, []corev1.EnvVar{fieldVar("status.podIP")}, pod.Spec.Containers[0].Env)
		err := c.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})
		assert.True(t, apierrors.IsNotFound(err), "dry-run pod must not be stored: %v", err)
	})

	t.Run("unknown annotation value is refused with the allowed values", func(t *testing.T) {
		pod := newPod("shop", "typo")
		pod.Annotations = map[string]string{webhook.AnnotationAddress: "node"}
		err := c.Create(ctx, pod)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `pod annotation dubboreach.io/address="node" is not understood: use one of auto, pod, host`)
	})

	t.Run("auto mode follows nodes' routes", func(t *testing.T) {
		// A node joins whose pod route nobody installed on the gateway.
		harness.CreateNode(t, c, "node-c", "10.244.2.0/24", "192.168.0.12")
		waitLabel(t, c, "node-c", webhook.PodRouteMissing)
		eventually(t, "auto mode picks the host IP", func() error { return dryRunMode(ctx, c, webhook.ModeHost) })
		pod := newPod("shop", "host-mode")
		pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "dubbo", ContainerPort: 20880, HostPort: 20880}}
		require.NoError(t, c.Create(ctx, pod))
		var stored corev1.Pod
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(pod), &stored))
		assert.Equal(t, []corev1.EnvVar{fieldVar("status.hostIP"), {Name: webhook.EnvPort, Value: "20880"}}, stored.Spec.Containers[0].Env)
		assert.Equal(t, "routes: only 2/3 nodes have their pod routes published (--require-routable-node would pin pods to them)", recordOf(t, &stored).Reason)

		// The node leaves again: every node's route is published, pods get their own IP.
		require.NoError(t, c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-c"}}))
		eventually(t, "auto mode picks the pod IP again", func() error { return dryRunMode(ctx, c, webhook.ModePod) })
	})

	t.Run("a node's label is restored when removed", func(t *testing.T) {
		var n corev1.Node
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "node-a"}, &n))
		delete(n.Labels, webhook.LabelPodRoute)
		n.Labels["team"] = "network"
		require.NoError(t, c.Update(ctx, &n))
		waitLabel(t, c, "node-a", webhook.PodRoutePublished)
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "node-a"}, &n))
		assert.Equal(t, "network", n.Labels["team"], "other labels are kept")
	})

	t.Run("metrics", func(t *testing.T) {
		body, err := get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		require.NoError(t, err)
		// Each series must be there with a value of at least 1 (the exact counts depend on
		// how many dry-run probes the waits above needed).
		for _, series := range []string{
			`dubboreach_webhook_injections_total{mode="pod",result="injected"}`,
			`dubboreach_webhook_injections_total{mode="host",result="injected"}`,
			`dubboreach_webhook_injections_total{mode="none",result="error"}`,
			`dubboreach_webhook_admission_duration_seconds_count`,
			`controller_runtime_webhook_requests_total{code="200",webhook="/mutate-v1-pod"}`,
			`dubboreach_pod_route_nodes{state="published"}`,
		} {
			m := regexp.MustCompile(regexp.QuoteMeta(series) + ` ([0-9.e+]+)\n`).FindStringSubmatch(body)
			if assert.NotNil(t, m, "metrics lack %s", series) {
				v, err := strconv.ParseFloat(m[1], 64)
				require.NoError(t, err)
				assert.GreaterOrEqual(t, v, 1.0, series)
			}
		}
	})

	// The same cluster, the webhook restarted with --require-routable-node, a node without a
	// published route: pods keep their pod IP and are pinned to published nodes; the API
	// server accepts the merged affinity.
	t.Run("require routable node", func(t *testing.T) {
		stop()
		o := opts
		o.RequireRoutableNode = true
		o.MetricsBindAddress, o.HealthProbeBindAddress = "0", fmt.Sprintf("127.0.0.1:%d", probePort)
		startRun(t, ctx, o)
		eventually(t, "restarted webhook ready", func() error { return getOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)) })
		harness.CreateNode(t, c, "node-d", "10.244.3.0/24", "192.168.0.13")
		waitLabel(t, c, "node-d", webhook.PodRouteMissing)
		eventually(t, "auto mode pins pods", func() error { return dryRunMode(ctx, c, webhook.ModePod) })

		pod := newPod("shop", "pinned")
		zone := corev1.NodeSelectorRequirement{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{zone}}}},
		}}
		require.NoError(t, c.Create(ctx, pod))
		var stored corev1.Pod
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(pod), &stored))
		assert.Equal(t, []corev1.EnvVar{fieldVar("status.podIP")}, stored.Spec.Containers[0].Env)
		routable := corev1.NodeSelectorRequirement{Key: webhook.LabelPodRoute, Operator: corev1.NodeSelectorOpIn, Values: []string{webhook.PodRoutePublished}}
		assert.Equal(t, []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{zone, routable}}},
			stored.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms)
		assert.Equal(t, "dubboreach.io/pod-route=published", recordOf(t, &stored).NodeAffinity)
	})
}

// startRun runs Run until the returned stop is called (or the test ends), and checks that it
// shuts down cleanly.
func startRun(t *testing.T, ctx context.Context, o Options) (stop func()) {
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, o) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err, "Run must shut down cleanly")
			case <-time.After(time.Minute):
				t.Error("Run did not return within a minute of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "provider:1"}}},
	}
}

func fieldVar(path string) corev1.EnvVar {
	return corev1.EnvVar{Name: webhook.EnvIP, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
}

func recordOf(t *testing.T, pod *corev1.Pod) webhook.Record {
	t.Helper()
	var r webhook.Record
	require.NoError(t, json.Unmarshal([]byte(pod.Annotations[webhook.AnnotationInjected]), &r), "annotation %q", pod.Annotations[webhook.AnnotationInjected])
	return r
}

// dryRunMode creates a pod in dry-run and reports whether it got the wanted mode.
func dryRunMode(ctx context.Context, c client.Client, want webhook.Mode) error {
	pod := newPod("shop", "probe")
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		return err
	}
	var r webhook.Record
	if err := json.Unmarshal([]byte(pod.Annotations[webhook.AnnotationInjected]), &r); err != nil {
		return err
	}
	if r.Mode != want {
		return fmt.Errorf("mode %s (%s), want %s", r.Mode, r.Reason, want)
	}
	return nil
}

func waitLabel(t *testing.T, c client.Client, node, want string) {
	t.Helper()
	eventually(t, "node "+node+" labelled "+want, func() error {
		var n corev1.Node
		if err := c.Get(context.Background(), client.ObjectKey{Name: node}, &n); err != nil {
			return err
		}
		if got := n.Labels[webhook.LabelPodRoute]; got != want {
			return fmt.Errorf("label %q", got)
		}
		return nil
	})
}

// eventually retries f until it succeeds; the bound is generous because the machine is
// shared, and it is a bound on waiting, not an assertion on speed.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after 90s: %v", what, err)
}

func get(url string) (string, error) {
	resp, err := http.Get(url) //nolint:gosec // loopback URL built by the test
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), err
}

func getOK(url string) error {
	_, err := get(url)
	return err
}
