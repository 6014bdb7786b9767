package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/webhook"
)

// RoutesNodes describes the lab's nodes as the route table reads Kubernetes Nodes: name, pod
// CIDR and InternalIP.
func (l *Lab) RoutesNodes() []routes.Node {
	out := make([]routes.Node, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		ip, _ := netip.AddrFromSlice(n.IP.To4())
		out = append(out, routes.Node{UID: "uid-" + n.Name, Name: n.Name, PodCIDRs: []netip.Prefix{n.PodCIDR}, InternalIPs: []netip.Addr{ip}})
	}
	return out
}

// Fabric is the fabric file's content for the lab as its gateway is now: the data-center
// network is reachable, and the pod routes installed are exactly those in the gateway's
// routing table (read from it, not remembered).
func (l *Lab) Fabric() (*routes.Fabric, error) {
	out, err := l.GatewayRoutes()
	if err != nil {
		return nil, err
	}
	cluster := netip.MustParsePrefix(ClusterNet)
	f := routes.DefaultFabric()
	f.Reachable = []netip.Prefix{netip.MustParsePrefix(DCNet)}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if p, err := netip.ParsePrefix(fields[0]); err == nil && cluster.Overlaps(p) {
			f.Installed = append(f.Installed, p)
		}
	}
	return f, nil
}

// Table builds the route table dubboreach would build for the lab now.
func (l *Lab) Table() (*routes.Table, error) {
	f, err := l.Fabric()
	if err != nil {
		return nil, err
	}
	return routes.Build(&routes.Inventory{Nodes: l.RoutesNodes()}, f, nil), nil
}

// Namespace is a Kubernetes namespace; inject labels it dubboreach.io/inject=enabled.
func Namespace(name string, inject bool) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-ns-" + name)}}
	if inject {
		ns.Labels = map[string]string{webhook.LabelInject: webhook.InjectEnabled}
	}
	return ns
}

// DubboPod is a pod with one container "app" whose port "dubbo" is containerPort, published
// on the node as hostPort when hostPort is not 0. Annotations are the pod's own.
func DubboPod(ns, name string, containerPort, hostPort int32, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Image: "dubbo-provider",
			Ports: []corev1.ContainerPort{{Name: "dubbo", ContainerPort: containerPort, HostPort: hostPort, Protocol: corev1.ProtocolTCP}},
		}}},
	}
}

// Admitted is a pod after admission and scheduling on a lab node: the object the API server
// holds (patched by the webhook, status filled as kubelet would), and its lab namespace.
type Admitted struct {
	Object *corev1.Pod
	Pod    *Pod
	// Decision is the webhook's result (Outcome skipped when the namespace is not labelled).
	Decision webhook.Result
	// Env is the app container's environment as the process sees it.
	Env map[string]string
}

// Admit runs the real webhook injector on pod (in namespace ns), applies its patch, creates
// the lab pod on node n with the pod's name, fills the status (pod IP, host IP, Running) and
// installs the hostPort DNAT rules of its container ports: what the API server, the scheduler,
// kubelet and the CNI would do.
func (l *Lab) Admit(in *webhook.Injector, ns *corev1.Namespace, pod *corev1.Pod, n *Node) (*Admitted, error) {
	res, err := in.Mutate(pod, ns)
	if err != nil {
		return nil, fmt.Errorf("lab: webhook refused pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	obj := pod.DeepCopy()
	if len(res.Patch) > 0 {
		raw, err := json.Marshal(pod)
		if err != nil {
			return nil, err
		}
		ops, err := json.Marshal(res.Patch)
		if err != nil {
			return nil, err
		}
		p, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			return nil, fmt.Errorf("lab: the webhook's patch for %s: %w", pod.Name, err)
		}
		patched, err := p.Apply(raw)
		if err != nil {
			return nil, fmt.Errorf("lab: applying the webhook's patch for %s: %w", pod.Name, err)
		}
		obj = &corev1.Pod{}
		if err := json.Unmarshal(patched, obj); err != nil {
			return nil, err
		}
	}
	lp, err := l.AddPod(n, pod.Name)
	if err != nil {
		return nil, err
	}
	obj.Spec.NodeName = n.Name
	obj.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: lp.IP.String(), HostIP: n.IP.String(),
		PodIPs: []corev1.PodIP{{IP: lp.IP.String()}}, HostIPs: []corev1.HostIP{{IP: n.IP.String()}}}
	for _, c := range obj.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				if err := lp.HostPort(int(port.HostPort), int(port.ContainerPort)); err != nil {
					return nil, err
				}
			}
		}
	}
	env, err := ResolveEnv(obj.Spec.Containers[0].Env, lp)
	if err != nil {
		return nil, err
	}
	return &Admitted{Object: obj, Pod: lp, Decision: res, Env: env}, nil
}
