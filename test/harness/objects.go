package harness

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CreateNode creates a Node with a pod CIDR (none when empty) and writes its InternalIP through
// the status subresource, as a kubelet does. The status write retries on conflict: controllers
// under test (the node labeller) may update the node in between.
func CreateNode(t testing.TB, c client.Client, name, podCIDR, ip string) *corev1.Node {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	if err := c.Create(ctx, n); err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
			return err
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		return c.Status().Update(ctx, n)
	}); err != nil {
		t.Fatalf("writing the status of node %s: %v", name, err)
	}
	return n
}

// RunPod creates pod and writes the status a kubelet would once it runs: Running, Ready, with
// its host and pod IPs. No kubelet runs under envtest, so tests that map addresses to pods need it.
func RunPod(t testing.TB, c client.Client, pod *corev1.Pod, hostIP, podIP string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, pod); err != nil {
		t.Fatalf("creating pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: hostIP, PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatalf("writing the status of pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}
