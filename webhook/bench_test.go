package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TypicalPod is a Dubbo provider as Deployments create it: an app container with a named
// Dubbo port, a log shipper and a native sidecar, labels, annotations, probes and resources.
func TypicalPod() *corev1.Pod {
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intOrString("dubbo")}}, PeriodSeconds: 10}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "order-provider-7c9d8f6b5-", Namespace: "shop",
			Labels:      map[string]string{"app": "order-provider", "pod-template-hash": "7c9d8f6b5", "version": "2.7.23"},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "order-provider-7c9d8f6b5",
				UID: "5b0c7d5e-1f7e-4c55-9b0f-6a8e2d9c1a11", Controller: ptr(true), BlockOwnerDeletion: ptr(true)}},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "mesh", Image: "registry.example.com/mesh:1.4", RestartPolicy: always(), Resources: res}},
			Containers: []corev1.Container{
				{
					Name: "app", Image: "registry.example.com/shop/order-provider:2.7.23",
					Ports: []corev1.ContainerPort{{Name: "dubbo", ContainerPort: 20880, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
					Env: []corev1.EnvVar{
						{Name: "JAVA_OPTS", Value: "-Xms768m -Xmx768m -XX:+UseG1GC"},
						{Name: "ZK_ADDRESS", Value: "zookeeper://10.132.2.10:2181?backup=10.132.2.11:2181,10.132.2.12:2181"},
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
					},
					Resources: res, ReadinessProbe: probe, LivenessProbe: probe,
					VolumeMounts: []corev1.VolumeMount{{Name: "logs", MountPath: "/app/logs"}},
				},
				{
					Name: "logs", Image: "registry.example.com/fluent-bit:3.0", Resources: res,
					VolumeMounts: []corev1.VolumeMount{{Name: "logs", MountPath: "/app/logs", ReadOnly: true}},
				},
			},
			Volumes:                       []corev1.Volume{{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			ServiceAccountName:            "order-provider",
			TerminationGracePeriodSeconds: ptr(int64(30)),
		},
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkMutate is the decision and patch for an already decoded pod.
func BenchmarkMutate(b *testing.B) {
	in := &Injector{Routes: coverage(3, 3)}
	pod, ns := TypicalPod(), labelledNS(nil)
	b.ReportAllocs()
	for b.Loop() {
		res, err := in.Mutate(pod, ns)
		if err != nil || res.Outcome != OutcomeInjected {
			b.Fatal(err, res.Outcome)
		}
	}
}

// BenchmarkServeHTTP is one whole admission in process: decode the AdmissionReview and the
// pod, decide, build and encode the patch and the answer (no TLS, no network).
func BenchmarkServeHTTP(b *testing.B) {
	for _, bc := range []struct {
		name  string
		table fixedTable
	}{{"pod-mode", coverage(3, 3)}, {"host-mode", coverage(0, 3)}} {
		b.Run(bc.name, func(b *testing.B) {
			h, _ := newTestHandler(b, bc.table)
			body := reviewBody(b, nil, TypicalPod())
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			r := httptest.NewRequest(http.MethodPost, Path, nil)
			r.Header.Set("Content-Type", "application/json")
			for b.Loop() {
				r.Body = readCloser{bytes.NewReader(body)}
				r.ContentLength = int64(len(body))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Body.String())
				}
			}
		})
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// TestTypicalPodIsInjected keeps the benchmarks honest: the typical pod is injected in all
// three containers and the answer carries the patch.
func TestTypicalPodIsInjected(t *testing.T) {
	h, _ := newTestHandler(t, coverage(3, 3))
	pod := TypicalPod()
	resp := answer(t, post(h, reviewBody(t, nil, pod), "application/json"))
	var ops []PatchOp
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	pod.Namespace = "shop"
	got := applyPatch(t, pod, ops)
	rec := record(t, got)
	if len(rec.Containers) != 3 {
		t.Fatalf("containers %+v, want mesh, app and logs", rec.Containers)
	}
	for _, c := range append(got.Spec.InitContainers, got.Spec.Containers...) {
		if last := c.Env[len(c.Env)-1]; last.Name != EnvIP || last.ValueFrom.FieldRef.FieldPath != "status.podIP" {
			t.Errorf("container %s: last variable %+v", c.Name, last)
		}
	}
}

func intOrString(name string) intstr.IntOrString { return intstr.FromString(name) }
