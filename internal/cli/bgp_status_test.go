package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/routes/bgp/bgptest"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/webhook"
)

// TestPublishedMeansAnnounced runs the shipped commands against a real kube-apiserver (which
// calls the webhook over TLS) and a real BIRD 2, under podRoutes.publish: bgp: a route is
// published exactly while `dubboreach publish` announces it to an Established peer, and the
// webhook (injection and node labels), `check` and `routes` all follow the speaker's status
// objects: nothing published before the speaker runs, published once BIRD holds the routes,
// unpublished when the BGP session drops (and the table says which peer is down), unpublished
// when the last speaker leaves.
func TestPublishedMeansAnnounced(t *testing.T) {
	root, err := harness.RepoRoot()
	require.NoError(t, err)
	wio := &envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}, LocalServingHost: "127.0.0.1"}
	env := harness.Envtest(t, harness.EnvOptions{Webhooks: wio})
	wio = &env.Environment.WebhookInstallOptions
	user, err := env.Environment.AddUser(envtest.User{Name: "dubboreach", Groups: []string{"system:masters"}}, nil)
	require.NoError(t, err)
	kc, err := user.KubeConfig()
	require.NoError(t, err)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, kc, 0o600))
	ctx := harness.Context(t)
	c := env.Client
	const statusNS = "default"
	for _, ns := range []string{"shop", "dubboreach-system"} {
		require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{webhook.LabelInject: webhook.InjectEnabled}}}))
	}
	harness.CreateNode(t, c, "node-a", "10.131.10.0/24", "10.132.2.11")
	harness.CreateNode(t, c, "node-b", "10.131.73.0/24", "10.132.2.12")

	b := bgptest.StartBird(t, bgptest.BirdConfig{Addr: netip.MustParseAddr("127.0.0.31"), ASN: 64513,
		Peer: netip.MustParseAddr("127.0.0.1"), PeerASN: 64512, NextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	fabric := filepath.Join(dir, "fabric.yaml")
	require.NoError(t, os.WriteFile(fabric, []byte(fmt.Sprintf(`apiVersion: dubboreach.io/v1alpha1
kind: Fabric
spec:
  reachable: [10.132.2.0/24]
  podRoutes: {source: nodes, nextHop: InternalIP, publish: bgp}
  bgp:
    asn: 64512
    routerID: 10.132.2.10
    within: [10.131.0.0/16]
    peers:
      - {address: %s, asn: 64513, port: %d}
`, b.Addr, b.Port)), 0o600))
	cluster := []string{"--kubeconfig", kubeconfig, "--fabric", fabric, "--bgp-status-namespace", statusNS}

	// check: the verdict for a pod address on node-a, and the exit code.
	check := func() (reason string, code int) {
		out, errOut, code := run(t, append([]string{"check", "10.131.10.5", "-o", "json"}, cluster...)...)
		var got []checkJSON
		require.NoError(t, json.Unmarshal([]byte(out), &got), "check output %q, stderr %q", out, errOut)
		require.Len(t, got, 1)
		return string(got[0].Reason), code
	}
	// problems: what `routes -o json` says is wrong with the table.
	problems := func() string {
		out, errOut, code := run(t, append([]string{"routes", "-o", "json"}, cluster...)...)
		require.Equal(t, ExitOK, code, errOut)
		var doc routesJSON
		require.NoError(t, json.Unmarshal([]byte(out), &doc))
		var msgs []string
		for _, p := range doc.Problems {
			msgs = append(msgs, p.Message)
		}
		return strings.Join(msgs, "\n")
	}
	mode := func() webhook.Mode {
		m, err := dryRunMode(ctx, c)
		if err != nil {
			t.Logf("dry-run pod: %v", err)
		}
		return m
	}

	// No speaker yet: nothing is published, and the table says why.
	reason, code := check()
	assert.Equal(t, "unpublished-pod-route", reason)
	assert.Equal(t, ExitFindings, code)
	assert.Contains(t, problems(), "has written no status (ConfigMap default/dubboreach-bgp is missing")

	probePort, err := harness.FreePort()
	require.NoError(t, err)
	wh := startCommand(t, "webhook", append([]string{"--cert-dir", wio.LocalServingCertDir, "--host", wio.LocalServingHost,
		"--port", fmt.Sprint(wio.LocalServingPort), "--namespace", "dubboreach-system", "--leader-elect",
		"--metrics-bind-address", "0", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probePort)}, cluster...)...)
	bgptest.Eventually(t, 60*time.Second, "the webhook ready", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)) //nolint:gosec // loopback
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	waitNodeLabel(t, c, "node-a", webhook.PodRouteMissing)
	waitNodeLabel(t, c, "node-b", webhook.PodRouteMissing)
	assert.Equal(t, webhook.ModeHost, mode(), "auto mode with no route announced")

	// The speaker announces both routes to BIRD: published everywhere.
	pub := startPublish(t, "--kubeconfig", kubeconfig, "--fabric", fabric, "--namespace", statusNS, "--identity", "publish-0",
		"--status-lease", "3s", "--status-interval", "1s", "--connect-retry", "1s", "--local-address", "127.0.0.1",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	bgptest.Eventually(t, 60*time.Second, "BIRD to hold both pod routes", func() bool { return len(b.Routes()) == 2 })
	waitNodeLabel(t, c, "node-a", webhook.PodRoutePublished)
	waitNodeLabel(t, c, "node-b", webhook.PodRoutePublished)
	bgptest.Eventually(t, 30*time.Second, "auto mode picks the pod IP", func() bool { return mode() == webhook.ModePod })
	reason, code = check()
	assert.Equal(t, "published-pod-route", reason)
	assert.Equal(t, ExitOK, code)
	assert.Empty(t, problems())

	// BIRD goes away: the session drops, the speaker's status says so, nothing is published.
	b.Stop()
	waitNodeLabel(t, c, "node-a", webhook.PodRouteMissing)
	bgptest.Eventually(t, 30*time.Second, "auto mode back to the host IP", func() bool { return mode() == webhook.ModeHost })
	reason, code = check()
	assert.Equal(t, "unpublished-pod-route", reason)
	assert.Equal(t, ExitFindings, code)
	assert.Contains(t, problems(), "no BGP session of the speaker is Established: 127.0.0.31 (AS 64513)")

	// The last speaker leaves (its status Lease goes with it): still unpublished, and why.
	require.Equal(t, 0, pub.stop(), "publish exit code; stderr:\n%s", pub.stderr)
	bgptest.Eventually(t, 30*time.Second, "the table to say the heartbeat is gone", func() bool {
		return strings.Contains(problems(), "has no heartbeat (Lease default/dubboreach-bgp is missing)")
	})
	require.Equal(t, 0, wh.stop(), "webhook exit code; stderr:\n%s", wh.stderr)
}

// TestBGPStatusNamespaceRequired: under publish: bgp with routes from a cluster, a command that
// does not know where the speaker's status lives says so (exit 2) instead of calling every route
// unpublished.
func TestBGPStatusNamespaceRequired(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	env := harness.Envtest(t, harness.EnvOptions{})
	user, err := env.Environment.AddUser(envtest.User{Name: "dubboreach", Groups: []string{"system:masters"}}, nil)
	require.NoError(t, err)
	kc, err := user.KubeConfig()
	require.NoError(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, kc, 0o600))
	for _, args := range [][]string{
		{"check", "10.131.10.5"},
		{"routes"},
		{"audit", "--once", "--zk", "127.0.0.1:1"},
	} {
		_, errOut, code := run(t, append(args, "--kubeconfig", kubeconfig, "--fabric", "../../routes/testdata/bgp-fabric.yaml")...)
		assert.Equal(t, ExitUsage, code, "%v: %s", args, errOut)
		assert.Contains(t, errOut, "--bgp-status-namespace is empty", "%v", args)
	}
}

// startCommand runs a long-running command in this process until the test ends.
func startCommand(t *testing.T, name string, args ...string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	go func() { r.done <- Run(ctx, append([]string{name}, args...), &syncBuffer{}, r.stderr) }()
	t.Cleanup(func() {
		if code := r.stop(); code != 0 {
			t.Errorf("%s exited %d:\n%s", name, code, r.stderr)
		}
	})
	return r
}

// dryRunMode creates a pod in namespace shop in dry run and returns the mode it was given.
func dryRunMode(ctx context.Context, c client.Client) (webhook.Mode, error) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "provider:1",
			Ports: []corev1.ContainerPort{{Name: "dubbo", ContainerPort: 20880, HostPort: 20880}}}}}}
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		return "", err
	}
	var r webhook.Record
	if err := json.Unmarshal([]byte(pod.Annotations[webhook.AnnotationInjected]), &r); err != nil {
		return "", fmt.Errorf("annotation %q: %w", pod.Annotations[webhook.AnnotationInjected], err)
	}
	return r.Mode, nil
}

func waitNodeLabel(t *testing.T, c client.Client, node, want string) {
	t.Helper()
	bgptest.Eventually(t, 60*time.Second, "node "+node+" labelled "+want, func() bool {
		var n corev1.Node
		return c.Get(context.Background(), client.ObjectKey{Name: node}, &n) == nil && n.Labels[webhook.LabelPodRoute] == want
	})
}
