package webhook

import (
	jsoniter "github.com/json-iterator/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The handler decodes only the parts of a pod that injection reads. Decoding a whole
// corev1.Pod (resource quantities, probes, volumes, ...) costs several times more than
// everything else the webhook does, and the admission is on the path of every pod creation.
// The patch is built from these parts alone, as RFC 6902 operations on the original JSON,
// so fields that are not decoded are never rewritten.

// fastJSON decodes requests: json-iterator in its encoding/json-compatible configuration (the
// one Kubernetes' own serializers used for years) decodes a review about twice as fast.
var fastJSON = jsoniter.ConfigCompatibleWithStandardLibrary

type leanPod struct {
	Metadata leanMeta `json:"metadata"`
	Spec     leanSpec `json:"spec"`
}

type leanMeta struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Namespace    string            `json:"namespace"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
}

type leanSpec struct {
	HostNetwork    bool             `json:"hostNetwork"`
	Affinity       *corev1.Affinity `json:"affinity"`
	Containers     []leanContainer  `json:"containers"`
	InitContainers []leanContainer  `json:"initContainers"`
}

type leanContainer struct {
	Name          string                         `json:"name"`
	Env           []corev1.EnvVar                `json:"env"`
	EnvFrom       []struct{}                     `json:"envFrom"` // only their number matters
	Ports         []corev1.ContainerPort         `json:"ports"`
	RestartPolicy *corev1.ContainerRestartPolicy `json:"restartPolicy"`
}

// decodePod reads the parts of a Pod that injection needs from its JSON.
func decodePod(raw []byte) (*corev1.Pod, error) {
	var lp leanPod
	if err := fastJSON.Unmarshal(raw, &lp); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: lp.Metadata.Name, GenerateName: lp.Metadata.GenerateName, Namespace: lp.Metadata.Namespace,
			Labels: lp.Metadata.Labels, Annotations: lp.Metadata.Annotations,
		},
		Spec: corev1.PodSpec{
			HostNetwork:    lp.Spec.HostNetwork,
			Affinity:       lp.Spec.Affinity,
			Containers:     containers(lp.Spec.Containers),
			InitContainers: containers(lp.Spec.InitContainers),
		},
	}
	return pod, nil
}

func containers(in []leanContainer) []corev1.Container {
	if in == nil {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i, c := range in {
		out[i] = corev1.Container{Name: c.Name, Env: c.Env, Ports: c.Ports, RestartPolicy: c.RestartPolicy}
		if len(c.EnvFrom) > 0 {
			out[i].EnvFrom = make([]corev1.EnvFromSource, len(c.EnvFrom))
		}
	}
	return out
}
