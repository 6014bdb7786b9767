package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/routes/bgp/bgptest"
	"github.com/dubboreach/dubboreach/test/harness"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// replica is one `dubboreach publish` process, run in this process through Run.
type replica struct {
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
}

func startPublish(t *testing.T, args ...string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	go func() { r.done <- Run(ctx, append([]string{"publish"}, args...), &bytes.Buffer{}, r.stderr) }()
	t.Cleanup(func() {
		if code := r.stop(); code != 0 {
			t.Errorf("publish exited %d:\n%s", code, r.stderr)
		}
	})
	return r
}

// stop cancels the replica and returns its exit code (once; later calls return 0).
func (r *replica) stop() int {
	if r.cancel == nil {
		return 0
	}
	r.cancel()
	r.cancel = nil
	select {
	case code := <-r.done:
		return code
	case <-time.After(time.Minute):
		return -1
	}
}

// TestPublishEndToEnd runs `dubboreach publish` as shipped, two leader-elected replicas against a
// real kube-apiserver and a real BIRD 2: the leader announces every node's pod CIDR with the
// node's InternalIP as next hop and keeps the status objects; a node joining is announced and a
// node leaving withdrawn; the standby stays silent; when the leader shuts down, the standby takes
// over and BIRD gets the routes again; when the last replica goes, BIRD holds nothing and the
// status Lease is gone (nothing reads as published).
func TestPublishEndToEnd(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	user, err := env.Environment.AddUser(envtest.User{Name: "publish", Groups: []string{"system:masters"}}, nil)
	require.NoError(t, err)
	kc, err := user.KubeConfig()
	require.NoError(t, err)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, kc, 0o600))
	ctx := harness.Context(t)
	c := env.Client
	const ns = "default"

	b := bgptest.StartBird(t, bgptest.BirdConfig{Addr: netip.MustParseAddr("127.0.0.30"), ASN: 64513,
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

	harness.CreateNode(t, c, "node-a", "10.131.10.0/24", "10.132.2.11")
	harness.CreateNode(t, c, "node-c", "10.200.0.0/24", "10.132.2.13") // outside within: never announced
	args := func(identity string) []string {
		return []string{"--kubeconfig", kubeconfig, "--fabric", fabric, "--namespace", ns, "--identity", identity,
			"--leader-elect", "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms",
			"--status-lease", "3s", "--status-interval", "1s", "--connect-retry", "1s", "--local-address", "127.0.0.1",
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}
	}
	holder := func() string {
		var l coordinationv1.Lease
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: bgp.ObjectName}, &l); err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	published := func(prefix string) bool {
		var cm corev1.ConfigMap
		if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: bgp.ObjectName}, &cm) != nil {
			return false
		}
		st, err := bgp.ParseStatus([]byte(cm.Data[bgp.StatusKey]))
		return err == nil && len(st.Routes) == 1 && st.Routes[0].Prefix == netip.MustParsePrefix(prefix) && len(st.Routes[0].Peers) == 1
	}
	atBird := func(want map[string]string) func() bool {
		return func() bool {
			got := b.Routes()
			if len(got) != len(want) {
				return false
			}
			for p, nh := range want {
				if got[netip.MustParsePrefix(p)] != netip.MustParseAddr(nh) {
					return false
				}
			}
			return true
		}
	}

	first := startPublish(t, args("publish-0")...)
	bgptest.Eventually(t, 60*time.Second, "BIRD to learn node-a's pod CIDR via node-a", atBird(map[string]string{"10.131.10.0/24": "10.132.2.11"}))
	bgptest.Eventually(t, 15*time.Second, "the status objects to name publish-0 and node-a's route", func() bool {
		return holder() == "publish-0" && published("10.131.10.0/24")
	})

	// The standby never speaks while the leader does: the status Lease stays publish-0's.
	second := startPublish(t, args("publish-1")...)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		require.Equal(t, "publish-0", holder(), "the standby wrote the status Lease while the leader lives")
	}

	// A node joins, a node leaves.
	harness.CreateNode(t, c, "node-b", "10.131.73.0/24", "10.132.2.12")
	bgptest.Eventually(t, 15*time.Second, "node-b announced", atBird(map[string]string{"10.131.10.0/24": "10.132.2.11", "10.131.73.0/24": "10.132.2.12"}))
	require.NoError(t, c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}))
	bgptest.Eventually(t, 15*time.Second, "node-a withdrawn", atBird(map[string]string{"10.131.73.0/24": "10.132.2.12"}))
	bgptest.Eventually(t, 15*time.Second, "the status to hold node-b's route only", func() bool { return published("10.131.73.0/24") })

	// The leader shuts down: its sessions close, it releases the leader Lease, the standby speaks.
	require.Equal(t, 0, first.stop(), "publish-0's exit code; stderr:\n%s", first.stderr)
	bgptest.Eventually(t, 30*time.Second, "publish-1 to take over the status objects", func() bool {
		return holder() == "publish-1" && published("10.131.73.0/24")
	})
	bgptest.Eventually(t, 30*time.Second, "BIRD to hold node-b's route from publish-1", func() bool {
		return b.Established() && atBird(map[string]string{"10.131.73.0/24": "10.132.2.12"})()
	})

	// The last replica goes: nothing is announced and the status Lease is deleted on the way out.
	require.Equal(t, 0, second.stop(), "publish-1's exit code; stderr:\n%s", second.stderr)
	bgptest.Eventually(t, 30*time.Second, "BIRD to hold no route", atBird(map[string]string{}))
	var l coordinationv1.Lease
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: bgp.ObjectName}, &l)
	assert.True(t, apierrors.IsNotFound(err), "the status Lease outlived the last speaker: %v", err)
}

func TestPublishUsageErrors(t *testing.T) {
	dir := t.TempDir()
	static := filepath.Join(dir, "static.yaml")
	require.NoError(t, os.WriteFile(static, []byte("apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec:\n  podRoutes: {publish: static}\n"), 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"publish"}, "--fabric is required"},
		{[]string{"publish", "--fabric", static}, "publish needs publish: bgp"},
		{[]string{"publish", "--fabric", "../../routes/testdata/bgp-fabric.yaml", "--inventory", flannelInventory}, "publish follows a live cluster"},
		{[]string{"publish", "--fabric", "../../routes/testdata/bgp-fabric.yaml", "--namespace", "x", "--local-address", "nonsense"}, "--local-address \"nonsense\""},
		{[]string{"publish", "--fabric", "../../routes/testdata/bgp-fabric.yaml", "--namespace", "x", "--status-interval", "10s"}, "not shorter than --status-lease"},
		{[]string{"publish", "--fabric", "../../routes/testdata/bgp-fabric.yaml", "--namespace", ""}, "--namespace is empty"},
		{[]string{"publish", "--fabric", "../../routes/testdata/bgp-fabric.yaml", "--namespace", "x", "--kubeconfig", "/nonexistent/kubeconfig"}, "no cluster to read"},
	} {
		_, errOut, code := run(t, tc.args...)
		assert.Equal(t, ExitUsage, code, "%v: %s", tc.args, errOut)
		assert.Contains(t, errOut, tc.want, "%v", tc.args)
	}
}
