package webhook

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dubboreach/dubboreach/routes"
)

// fixedTable serves one route table.
type fixedTable struct{ t *routes.Table }

func (f fixedTable) Table() *routes.Table { return f.t }

// coverage builds a real route table with `total` nodes of which `published` have their pod
// route confirmed installed on the gateway (publish: static).
func coverage(published, total int) fixedTable {
	inv := &routes.Inventory{}
	fab := routes.DefaultFabric()
	for i := range total {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
		inv.Nodes = append(inv.Nodes, routes.Node{
			Name: "node-" + string(rune('a'+i)), UID: "uid-" + string(rune('a'+i)),
			PodCIDRs:    []netip.Prefix{p},
			InternalIPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 168, 0, byte(10 + i)})},
		})
		if i < published {
			fab.Installed = append(fab.Installed, p)
		}
	}
	return fixedTable{routes.Build(inv, fab, nil)}
}

func labelledNS(annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{LabelInject: InjectEnabled}, Annotations: annotations}}
}

func podIPVar() corev1.EnvVar {
	return corev1.EnvVar{Name: EnvIP, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}}
}

func hostIPVar() corev1.EnvVar {
	return corev1.EnvVar{Name: EnvIP, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.hostIP"}}}
}

func portVar(v string) corev1.EnvVar { return corev1.EnvVar{Name: EnvPort, Value: v} }

func basePod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "provider", Namespace: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "provider:1",
			Ports: []corev1.ContainerPort{{Name: "dubbo", ContainerPort: 20880}},
		}}},
	}
}

// applyPatch applies res's patch to pod as the API server would and returns the result.
func applyPatch(t *testing.T, pod *corev1.Pod, patch []PatchOp) *corev1.Pod {
	t.Helper()
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	if len(patch) == 0 {
		return pod.DeepCopy()
	}
	pj, err := json.Marshal(patch)
	require.NoError(t, err)
	p, err := jsonpatch.DecodePatch(pj)
	require.NoError(t, err)
	out, err := p.Apply(raw)
	require.NoError(t, err, "patch %s does not apply to %s", pj, raw)
	var got corev1.Pod
	require.NoError(t, json.Unmarshal(out, &got))
	return &got
}

func record(t *testing.T, pod *corev1.Pod) Record {
	t.Helper()
	v, ok := pod.Annotations[AnnotationInjected]
	require.True(t, ok, "no %s annotation", AnnotationInjected)
	var r Record
	require.NoError(t, json.Unmarshal([]byte(v), &r))
	return r
}

func always() *corev1.ContainerRestartPolicy {
	p := corev1.ContainerRestartPolicyAlways
	return &p
}

func TestMutate(t *testing.T) {
	type tc struct {
		name    string
		pod     func(p *corev1.Pod)
		ns      *corev1.Namespace
		table   fixedTable
		require bool
		// want edits the input pod into the expected output, apart from the annotation.
		want        func(p *corev1.Pod)
		outcome     Outcome
		mode        Mode
		record      *Record // expected annotation; nil: the pod is left unchanged
		warnings    []string
		denyContain string
	}
	tests := []tc{
		{
			name: "pod mode, all routes published, no env", table: coverage(2, 2),
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()} },
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, Reason: "routes: 2/2 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "auto, no route published: host with hostPort", table: coverage(0, 2),
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports[0].HostPort = 20880
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "JAVA_OPTS", Value: "-Xmx1g"}}
			},
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, hostIPVar(), portVar("20880"))
			},
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Reason: "routes: 0/2 nodes have their pod routes published", Port: "20880",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "auto, no nodes at all: host", table: coverage(0, 0),
			pod:     func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 20880 },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("20880")} },
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Reason: "routes: no node has pod routes, so pod addresses are not known to be reachable", Port: "20880",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "host mode without hostPort: IP only, warning", table: coverage(2, 2),
			pod:     func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationAddress: "host"} },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar()} },
			outcome: OutcomeInjected, mode: ModeHost,
			warnings: []string{"host mode: container app port 20880 has no hostPort, so DUBBO_PORT_TO_REGISTRY is not set and the registered host address will not answer: add a hostPort, or use dubboreach.io/address=pod"},
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourcePodAnnotation, Reason: "pod annotation dubboreach.io/address=host",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "host mode, hostPort differs: port var and warning", table: coverage(2, 2),
			ns: labelledNS(map[string]string{AnnotationAddress: "host"}),
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports[0].HostPort = 30880
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("30880")} },
			outcome: OutcomeInjected, mode: ModeHost,
			warnings: []string{"host mode: hostPort 30880 differs from containerPort 20880; Dubbo 2.7.12 to 2.7.23 also bind to DUBBO_PORT_TO_REGISTRY and would listen on 30880: make them equal or use another Dubbo version"},
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceNamespaceAnnotation, Reason: "namespace annotation dubboreach.io/address=host", Port: "30880",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "pod annotation wins over namespace annotation", table: coverage(0, 2),
			ns:      labelledNS(map[string]string{AnnotationAddress: "host"}),
			pod:     func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationAddress: "pod"} },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()} },
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourcePodAnnotation, Reason: "pod annotation dubboreach.io/address=pod",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "port annotation by number, second container's port", table: coverage(0, 1),
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationPort: "20881"}
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "tri", Image: "tri:1",
					Ports: []corev1.ContainerPort{{ContainerPort: 20881, HostPort: 20881}}})
			},
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("20881")}
				p.Spec.Containers[1].Env = []corev1.EnvVar{hostIPVar(), portVar("20881")}
			},
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Reason: "routes: 0/1 nodes have their pod routes published", Port: "20881",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}, {Name: "tri", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "port annotation by name", table: coverage(0, 1),
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationPort: "rpc"}
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "rpc", ContainerPort: 12345, HostPort: 12345}}
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("12345")} },
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Reason: "routes: 0/1 nodes have their pod routes published", Port: "12345",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "default port 20880 unnamed", table: coverage(0, 1),
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 20880, HostPort: 20880}}
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("20880")} },
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Reason: "routes: 0/1 nodes have their pod routes published", Port: "20880",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "no Dubbo port declared", table: coverage(0, 1),
			pod:     func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar()} },
			outcome: OutcomeInjected, mode: ModeHost,
			warnings: []string{`host mode: no container declares port "dubbo" or 20880, so DUBBO_PORT_TO_REGISTRY is not set and the registered host address will not answer: declare the port with a hostPort, or use dubboreach.io/address=pod`},
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Reason: "routes: 0/1 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "variable set by value is kept", table: coverage(1, 1),
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{"team": "shop"}
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvIP, Value: "10.1.2.3"}}
			},
			want:    func(*corev1.Pod) {},
			outcome: OutcomeSkipped, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, Reason: "routes: 1/1 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "app", Kept: []string{EnvIP}}}},
		},
		{
			name: "variable set by valueFrom is kept", table: coverage(1, 1),
			pod:     func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar()} },
			want:    func(*corev1.Pod) {},
			outcome: OutcomeSkipped, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, Reason: "routes: 1/1 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "app", Kept: []string{EnvIP}}}},
		},
		{
			name: "protocol-prefixed variable is kept", table: coverage(1, 1),
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DUBBO_DUBBO_IP_TO_REGISTRY", Value: "10.1.2.3"}}
			},
			want:    func(*corev1.Pod) {},
			outcome: OutcomeSkipped, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, Reason: "routes: 1/1 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "app", Kept: []string{EnvIP}}}},
		},
		{
			name: "port variable set by user is kept, IP injected", table: coverage(0, 1),
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports[0].HostPort = 20880
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TRI_DUBBO_PORT_TO_REGISTRY", Value: "50051"}}
			},
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, hostIPVar())
			},
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Reason: "routes: 0/1 nodes have their pod routes published", Port: "20880",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}, Kept: []string{EnvPort}}}},
		},
		{
			name: "several containers, native sidecar in, plain init and ephemeral out", table: coverage(3, 3),
			pod: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "agent", Image: "agent:1", Env: []corev1.EnvVar{}})
				p.Spec.InitContainers = []corev1.Container{
					{Name: "migrate", Image: "migrate:1"},
					{Name: "mesh", Image: "mesh:1", RestartPolicy: always(), Env: []corev1.EnvVar{{Name: "A", Value: "b"}}},
				}
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
			},
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()}
				p.Spec.Containers[1].Env = []corev1.EnvVar{podIPVar()}
				p.Spec.InitContainers[1].Env = append(p.Spec.InitContainers[1].Env, podIPVar())
			},
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, Reason: "routes: 3/3 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "mesh", Injected: []string{EnvIP}}, {Name: "app", Injected: []string{EnvIP}}, {Name: "agent", Injected: []string{EnvIP}}}},
		},
		{
			name: "containers annotation selects one", table: coverage(1, 1),
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationContainers: " agent ,"}
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "agent", Image: "agent:1"})
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[1].Env = []corev1.EnvVar{podIPVar()} },
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, Reason: "routes: 1/1 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "agent", Injected: []string{EnvIP}}}},
		},
		{
			name: "hostNetwork: pod IP, no port var", table: coverage(0, 1),
			pod:     func(p *corev1.Pod) { p.Spec.HostNetwork = true },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()} },
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.podIP", Source: SourceHostNetwork, Reason: "hostNetwork pod: its pod IP is the node's IP",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "envFrom warning", table: coverage(1, 1),
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()} },
			outcome: OutcomeInjected, mode: ModePod,
			warnings: []string{"container app uses envFrom: a DUBBO_IP_TO_REGISTRY there is overridden by the injected one (set it in env to keep it)"},
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, Reason: "routes: 1/1 nodes have their pod routes published",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "partial coverage without --require-routable-node: host", table: coverage(1, 2),
			pod:     func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 20880 },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("20880")} },
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Port: "20880",
				Reason:     "routes: only 1/2 nodes have their pod routes published (--require-routable-node would pin pods to them)",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "partial coverage with --require-routable-node: pod + affinity on a pod without affinity", table: coverage(1, 2), require: true,
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()}
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{routableRequirement}}}}}}
			},
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, NodeAffinity: "dubboreach.io/pod-route=published",
				Reason:     "routes: 1/2 nodes have their pod routes published; pod pinned to them (--require-routable-node)",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "affinity merged into every existing term, preferred kept", table: coverage(1, 2), require: true,
			pod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{
					PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 10, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname"}}}},
					NodeAffinity: &corev1.NodeAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
							{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}},
							{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-b"}}}},
							{MatchExpressions: []corev1.NodeSelectorRequirement{routableRequirement}},
						}},
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "ssd", Operator: corev1.NodeSelectorOpExists}}}}},
					}}
			},
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()}
				terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
				terms[0].MatchExpressions = append(terms[0].MatchExpressions, routableRequirement)
				terms[1].MatchExpressions = []corev1.NodeSelectorRequirement{routableRequirement}
			},
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, NodeAffinity: "dubboreach.io/pod-route=published",
				Reason:     "routes: 1/2 nodes have their pod routes published; pod pinned to them (--require-routable-node)",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "affinity without nodeAffinity", table: coverage(1, 2), require: true,
			pod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{}}
			},
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()}
				p.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{routableRequirement}}}}}
			},
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, NodeAffinity: "dubboreach.io/pod-route=published",
				Reason:     "routes: 1/2 nodes have their pod routes published; pod pinned to them (--require-routable-node)",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "full coverage with --require-routable-node: pod + affinity (new nodes have no published routes yet)", table: coverage(2, 2), require: true,
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()}
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{routableRequirement}}}}}}
			},
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, NodeAffinity: "dubboreach.io/pod-route=published",
				Reason:     "routes: 2/2 nodes have their pod routes published; pod pinned to such nodes (--require-routable-node), so a new node without published routes is never chosen",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "spec.nodeName on a published node: pod, no requirement", table: coverage(1, 2), require: true,
			pod:     func(p *corev1.Pod) { p.Spec.NodeName = "node-a" },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()} },
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes,
				Reason:     "routes: the pod is bound to node node-a, whose pod routes are published",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "spec.nodeName on a node without published routes: host, never stranded", table: coverage(1, 2), require: true,
			pod: func(p *corev1.Pod) {
				p.Spec.NodeName = "node-b"
				p.Spec.Containers[0].Ports[0].HostPort = 20880
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("20880")} },
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Port: "20880",
				Reason:     "routes: the pod is bound to node node-b, whose pod routes are not all published (0/1)",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "DaemonSet pod (matchFields metadata.name) on an unpublished node: host, affinity untouched", table: coverage(1, 2), require: true,
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports[0].HostPort = 20880
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-b"}}}}}}}}
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar(), portVar("20880")} },
			outcome: OutcomeInjected, mode: ModeHost,
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes, Port: "20880",
				Reason:     "routes: the pod is bound to node node-b, whose pod routes are not all published (0/1)",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP, EnvPort}}}},
		},
		{
			name: "DaemonSet pod on a published node: pod, no requirement", table: coverage(1, 2), require: true,
			pod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-a"}}}}}}}}
			},
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()} },
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes,
				Reason:     "routes: the pod is bound to node node-a, whose pod routes are published",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "spec.nodeName on a node the table does not know: host", table: coverage(2, 2),
			pod:     func(p *corev1.Pod) { p.Spec.NodeName = "node-new" },
			want:    func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{hostIPVar()} },
			outcome: OutcomeInjected, mode: ModeHost,
			warnings: []string{"host mode: container app port 20880 has no hostPort, so DUBBO_PORT_TO_REGISTRY is not set and the registered host address will not answer: add a hostPort, or use dubboreach.io/address=pod"},
			record: &Record{Mode: ModeHost, Field: "status.hostIP", Source: SourceRoutes,
				Reason:     "routes: the pod is bound to node node-new, which has no pod routes yet, so its pod addresses are not known to be reachable",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		{
			name: "an empty node selector term stays empty (it matches no node)", table: coverage(1, 2), require: true,
			pod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{}, {MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}}}}}
			},
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{podIPVar()}
				terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
				terms[1].MatchExpressions = append(terms[1].MatchExpressions, routableRequirement)
			},
			outcome: OutcomeInjected, mode: ModePod,
			record: &Record{Mode: ModePod, Field: "status.podIP", Source: SourceRoutes, NodeAffinity: "dubboreach.io/pod-route=published",
				Reason:     "routes: 1/2 nodes have their pod routes published; pod pinned to them (--require-routable-node)",
				Containers: []ContainerRecord{{Name: "app", Injected: []string{EnvIP}}}},
		},
		// Left alone.
		{name: "unlabelled namespace", table: coverage(1, 1), ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, outcome: OutcomeSkipped, mode: ModeNone},
		{name: "namespace label disabled", table: coverage(1, 1), ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{LabelInject: "disabled"}}}, outcome: OutcomeSkipped, mode: ModeNone},
		{name: "unknown namespace", table: coverage(1, 1), ns: nil, outcome: OutcomeSkipped, mode: ModeNone},
		{
			name: "pod opted out", table: coverage(1, 1), outcome: OutcomeSkipped, mode: ModeNone,
			pod: func(p *corev1.Pod) { p.Labels = map[string]string{LabelInject: InjectDisabled} },
		},
		{
			name: "kube-system even when labelled", table: coverage(1, 1), outcome: OutcomeSkipped, mode: ModeNone,
			pod: func(p *corev1.Pod) { p.Namespace = "kube-system" },
			ns:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", Labels: map[string]string{LabelInject: InjectEnabled}}},
		},
		{
			name: "own namespace even when labelled", table: coverage(1, 1), outcome: OutcomeSkipped, mode: ModeNone,
			pod: func(p *corev1.Pod) { p.Namespace = "dubboreach-system" },
			ns:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dubboreach-system", Labels: map[string]string{LabelInject: InjectEnabled}}},
		},
		// Refused.
		{
			name: "unknown pod address annotation", table: coverage(1, 1), outcome: OutcomeError,
			pod:         func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationAddress: "node"} },
			denyContain: `pod annotation dubboreach.io/address="node" is not understood: use one of auto, pod, host`,
		},
		{
			name: "unknown namespace address annotation", table: coverage(1, 1), outcome: OutcomeError,
			ns:          labelledNS(map[string]string{AnnotationAddress: "Pod"}),
			denyContain: `namespace shop annotation dubboreach.io/address="Pod" is not understood: use one of auto, pod, host`,
		},
		{
			name: "unknown inject label on pod", table: coverage(1, 1), outcome: OutcomeError,
			pod:         func(p *corev1.Pod) { p.Labels = map[string]string{LabelInject: "false"} },
			denyContain: `pod label dubboreach.io/inject="false" is not understood: use "disabled"`,
		},
		{
			name: "port annotation out of range", table: coverage(1, 1), outcome: OutcomeError,
			pod:         func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationPort: "70000"} },
			denyContain: `pod annotation dubboreach.io/port="70000" is not a port`,
		},
		{
			name: "port annotation bad name", table: coverage(1, 1), outcome: OutcomeError,
			pod:         func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationPort: "dubbo port"} },
			denyContain: `pod annotation dubboreach.io/port="dubbo port" is not a port`,
		},
		{
			name: "containers annotation names a plain init container", table: coverage(1, 1), outcome: OutcomeError,
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{AnnotationContainers: "migrate"}
				p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "m"}}
			},
			denyContain: `pod annotation dubboreach.io/containers="migrate" names container "migrate", which is not an app container or native sidecar of this pod (have: app)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := basePod()
			if tt.pod != nil {
				tt.pod(pod)
			}
			ns := tt.ns
			if ns == nil && tt.name != "unknown namespace" {
				ns = labelledNS(nil)
			}
			in := &Injector{Config: Config{RequireRoutableNode: tt.require, OwnNamespace: "dubboreach-system"}, Routes: tt.table}
			orig := pod.DeepCopy()
			res, err := in.Mutate(pod, ns)
			assert.Equal(t, orig, pod, "Mutate must not modify its input")
			assert.Equal(t, tt.outcome, res.Outcome)
			if tt.denyContain != "" {
				var d *Denial
				require.ErrorAs(t, err, &d)
				assert.Contains(t, d.Message, tt.denyContain)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.mode, res.Mode)
			if tt.record == nil {
				assert.Empty(t, res.Patch, "a pod that is left alone gets no patch")
				return
			}
			got := applyPatch(t, pod, res.Patch)
			rec := record(t, got)
			want := *tt.record
			want.Warnings = tt.warnings
			assert.Equal(t, want, rec)
			assert.Equal(t, tt.warnings, res.Warnings)

			exp := orig.DeepCopy()
			tt.want(exp)
			if exp.Annotations == nil {
				exp.Annotations = map[string]string{}
			}
			exp.Annotations[AnnotationInjected] = got.Annotations[AnnotationInjected]
			assert.Equal(t, exp, got)

			// A second pass (reinvocation) over the result changes nothing.
			again, err := in.Mutate(got, ns)
			require.NoError(t, err)
			assert.Empty(t, again.Patch, "second pass must produce an empty patch")
			assert.Equal(t, res.Outcome, again.Outcome)
			assert.Equal(t, res.Mode, again.Mode)
		})
	}
}

// TestMutateReinvocationKeepsDecision: a route change between two passes must not flip the
// address of a pod that was already injected, nor add a second variable.
func TestMutateReinvocationKeepsDecision(t *testing.T) {
	pod := basePod()
	ns := labelledNS(nil)
	first := &Injector{Routes: coverage(2, 2)}
	res, err := first.Mutate(pod, ns)
	require.NoError(t, err)
	got := applyPatch(t, pod, res.Patch)

	// Another webhook adds a container, then routes go missing before we are called again.
	got.Spec.Containers = append(got.Spec.Containers, corev1.Container{Name: "late", Image: "late:1"})
	second := &Injector{Routes: coverage(0, 2)}
	res2, err := second.Mutate(got, ns)
	require.NoError(t, err)
	final := applyPatch(t, got, res2.Patch)
	assert.Equal(t, []corev1.EnvVar{podIPVar()}, final.Spec.Containers[0].Env)
	assert.Equal(t, []corev1.EnvVar{podIPVar()}, final.Spec.Containers[1].Env, "the added container gets the first pass's address")
	rec := record(t, final)
	assert.Equal(t, ModePod, rec.Mode)
	assert.Len(t, rec.Containers, 2)
}

// TestMutateAnnotationBeatsCopiedRecord: a pod copied from an injected one, then annotated
// for host mode, follows its annotation, not the copied record.
func TestMutateAnnotationBeatsCopiedRecord(t *testing.T) {
	pod := basePod()
	res, err := (&Injector{Routes: coverage(1, 1)}).Mutate(pod, labelledNS(nil))
	require.NoError(t, err)
	copied := applyPatch(t, pod, res.Patch)
	copied.Spec.Containers[0].Env = nil
	copied.Annotations[AnnotationAddress] = "host"
	res, err = (&Injector{Routes: coverage(1, 1)}).Mutate(copied, labelledNS(nil))
	require.NoError(t, err)
	got := applyPatch(t, copied, res.Patch)
	assert.Equal(t, ModeHost, record(t, got).Mode)
	assert.Equal(t, []corev1.EnvVar{hostIPVar()}, got.Spec.Containers[0].Env)
}

// TestMutateCopiedBogusRecord: an unreadable dubboreach.io/injected annotation (copied, or
// edited by hand) is replaced, not trusted.
func TestMutateCopiedBogusRecord(t *testing.T) {
	pod := basePod()
	pod.Annotations = map[string]string{AnnotationInjected: "{not json"}
	res, err := (&Injector{Routes: coverage(1, 1)}).Mutate(pod, labelledNS(nil))
	require.NoError(t, err)
	got := applyPatch(t, pod, res.Patch)
	assert.Equal(t, ModePod, record(t, got).Mode)
	assert.Equal(t, []corev1.EnvVar{podIPVar()}, got.Spec.Containers[0].Env)
}

func TestPointerEscape(t *testing.T) {
	assert.Equal(t, "dubboreach.io~1injected", pointerEscape("dubboreach.io/injected"))
	assert.Equal(t, "a~0b~1c", pointerEscape("a~b/c"))
	assert.Equal(t, "plain", pointerEscape("plain"))
}

func TestWarningsFitAdmissionLimit(t *testing.T) {
	// The API server may truncate warnings over 256 characters.
	pod := basePod()
	pod.Annotations = map[string]string{AnnotationAddress: "host", AnnotationPort: strings.Repeat("a", 15)}
	res, err := (&Injector{}).Mutate(pod, labelledNS(nil))
	require.NoError(t, err)
	require.NotEmpty(t, res.Warnings)
	for _, w := range res.Warnings {
		assert.LessOrEqual(t, len("dubboreach: "+w), 256, w)
	}
}
