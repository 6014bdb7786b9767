package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodChangedIgnoresOnlyKubeletStatusReports(t *testing.T) {
	base := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-1", Namespace: "shop", ResourceVersion: "1"},
		Spec:       corev1.PodSpec{NodeName: "node-b"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.132.2.12", PodIP: "10.244.2.5"},
	}
	tests := []struct {
		name   string
		change func(p *corev1.Pod)
		want   bool
	}{
		{"resync", func(p *corev1.Pod) {}, false},
		{"status report", func(p *corev1.Pod) {
			p.ResourceVersion = "2"
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true}}
		}, false},
		{"pod IP", func(p *corev1.Pod) { p.Status.PodIP = "10.244.2.9" }, true},
		{"phase", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, true},
		{"label", func(p *corev1.Pod) { p.Labels = map[string]string{LabelInject: "disabled"} }, true},
		{"annotation", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationInjected: "{}"} }, true},
		{"deletion", func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base.DeepCopy()
			tc.change(p)
			if got := podChanged(base, p); got != tc.want {
				t.Errorf("podChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
