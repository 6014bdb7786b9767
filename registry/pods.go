package registry

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/routes"
)

// Labels and annotations of the DESIGN.md contract that the explanations read.
const (
	LabelInject        = "dubboreach.io/inject"
	AnnotationInjected = "dubboreach.io/injected"
)

// PodIndex maps registered addresses back to pods: by pod IP, and by host IP + hostPort. It is
// fed by an inventory file (Replace) or by informers (SetupWithManager); safe for concurrent use.
type PodIndex struct {
	mu         sync.Mutex
	pods       map[types.UID]*corev1.Pod
	namespaces map[string]*corev1.Namespace
	nodeIPs    map[netip.Addr]string // from the inventory's nodes
	known      bool
	view       *PodView
	changed    chan struct{}
}

// NewPodIndex returns an empty index that knows nothing (no pod source yet).
func NewPodIndex() *PodIndex {
	return &PodIndex{pods: map[types.UID]*corev1.Pod{}, namespaces: map[string]*corev1.Namespace{},
		nodeIPs: map[netip.Addr]string{}, changed: make(chan struct{}, 1)}
}

// Changed is signalled (coalesced) after every change.
func (x *PodIndex) Changed() <-chan struct{} { return x.changed }

func (x *PodIndex) touchLocked() {
	x.view = nil
	select {
	case x.changed <- struct{}{}:
	default:
	}
}

// Replace loads pods, namespaces and node addresses from an inventory.
func (x *PodIndex) Replace(inv *routes.Inventory) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pods = make(map[types.UID]*corev1.Pod, len(inv.Pods))
	for i := range inv.Pods {
		p := &inv.Pods[i]
		uid := p.UID
		if uid == "" {
			uid = types.UID("name/" + p.Namespace + "/" + p.Name) // hand-written files lack UIDs
		}
		x.pods[uid] = p
	}
	x.namespaces = make(map[string]*corev1.Namespace, len(inv.Namespaces))
	for i := range inv.Namespaces {
		x.namespaces[inv.Namespaces[i].Name] = &inv.Namespaces[i]
	}
	x.nodeIPs = map[netip.Addr]string{}
	for _, n := range inv.Nodes {
		for _, a := range append(append([]netip.Addr{}, n.InternalIPs...), n.ExternalIPs...) {
			x.nodeIPs[a] = n.Name
		}
	}
	x.known = true
	x.touchLocked()
}

// UpsertPod adds or replaces a pod.
func (x *PodIndex) UpsertPod(p *corev1.Pod) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pods[p.UID] = p
	x.touchLocked()
}

// DeletePod removes a pod.
func (x *PodIndex) DeletePod(uid types.UID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.pods, uid)
	x.touchLocked()
}

// UpsertNamespace adds or replaces a namespace.
func (x *PodIndex) UpsertNamespace(ns *corev1.Namespace) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.namespaces[ns.Name] = ns
	x.touchLocked()
}

// DeleteNamespace removes a namespace.
func (x *PodIndex) DeleteNamespace(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.namespaces, name)
	x.touchLocked()
}

// SetKnown says pod information is available (informers synced).
func (x *PodIndex) SetKnown() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.known = true
	x.touchLocked()
}

type hostPort struct {
	ip   netip.Addr
	port uint16
}

// PodView is an immutable index built from the PodIndex, for one judging pass.
type PodView struct {
	// Known is false when no pod source is configured or synced: then no mapping is attempted
	// and explanations say so instead of calling registrations stale.
	Known      bool
	byIP       map[netip.Addr][]*corev1.Pod
	byHostPort map[hostPort]*corev1.Pod
	nodeIPs    map[netip.Addr]string
	namespaces map[string]*corev1.Namespace
}

// View returns the current immutable view (cached until the next change).
func (x *PodIndex) View() *PodView {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.view != nil {
		return x.view
	}
	v := &PodView{Known: x.known, byIP: map[netip.Addr][]*corev1.Pod{}, byHostPort: map[hostPort]*corev1.Pod{},
		nodeIPs: map[netip.Addr]string{}, namespaces: x.namespaces}
	for a, n := range x.nodeIPs {
		v.nodeIPs[a] = n
	}
	for _, p := range x.pods {
		host, hostErr := netip.ParseAddr(p.Status.HostIP)
		if hostErr == nil && p.Spec.NodeName != "" {
			v.nodeIPs[host.Unmap()] = p.Spec.NodeName
		}
		if !p.Spec.HostNetwork {
			for _, ip := range podIPs(p) {
				v.byIP[ip] = append(v.byIP[ip], p)
			}
		}
		if hostErr != nil || !live(p) {
			continue
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				hp := cp.HostPort
				if p.Spec.HostNetwork && hp == 0 {
					hp = cp.ContainerPort
				}
				if hp > 0 && hp < 65536 {
					v.byHostPort[hostPort{host.Unmap(), uint16(hp)}] = p
				}
			}
		}
	}
	// Several pods may have held an IP (a finished pod and its successor): a live one first,
	// then the newest.
	for _, list := range v.byIP {
		sort.SliceStable(list, func(i, j int) bool {
			if live(list[i]) != live(list[j]) {
				return live(list[i])
			}
			return list[j].CreationTimestamp.Before(&list[i].CreationTimestamp)
		})
	}
	x.view = v
	return v
}

func live(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func podIPs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	for _, s := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(s.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// Match is what stands behind a registered address.
type Match struct {
	Pod       *corev1.Pod
	Namespace *corev1.Namespace // nil when not known
	// Via is how the pod was found: "pod-ip" or "host-port".
	Via string
	// HostNode names the node when the address is a node's address (host mode).
	HostNode string
}

// Lookup finds the pod behind addr:port (port 0: none).
func (v *PodView) Lookup(addr netip.Addr, port uint16) Match {
	var m Match
	if v == nil || !v.Known || !addr.IsValid() {
		return m
	}
	addr = addr.Unmap()
	if list := v.byIP[addr]; len(list) > 0 {
		m.Pod, m.Via = list[0], "pod-ip"
	} else if p := v.byHostPort[hostPort{addr, port}]; p != nil && port != 0 {
		m.Pod, m.Via = p, "host-port"
	}
	m.HostNode = v.nodeIPs[addr]
	if m.Pod != nil {
		m.Namespace = v.namespaces[m.Pod.Namespace]
	}
	return m
}

// SetupWithManager feeds the index from Pod and Namespace informers of the manager's cache.
func SetupWithManager(mgr ctrl.Manager, x *PodIndex) error {
	ctx := context.Background()
	podInf, err := mgr.GetCache().GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("pod informer: %w (the identity needs get/list/watch on pods)", err)
	}
	if _, err := podInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { upsertPod(x, o) },
		UpdateFunc: func(old, o any) {
			if op, ok := old.(*corev1.Pod); ok {
				if p, ok := o.(*corev1.Pod); ok && !podChanged(op, p) {
					return
				}
			}
			upsertPod(x, o)
		},
		DeleteFunc: func(o any) {
			if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				x.DeletePod(p.UID)
			}
		},
	}); err != nil {
		return err
	}
	nsInf, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{})
	if err != nil {
		return fmt.Errorf("namespace informer: %w (the identity needs get/list/watch on namespaces)", err)
	}
	if _, err := nsInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { upsertNS(x, o) },
		UpdateFunc: func(_, o any) { upsertNS(x, o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if ns, ok := o.(*corev1.Namespace); ok {
				x.DeleteNamespace(ns.Name)
			}
		},
	}); err != nil {
		return err
	}
	// Pod information counts as known once both caches have synced.
	return mgr.Add(runnableFunc(func(ctx context.Context) error {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			x.SetKnown()
		}
		<-ctx.Done()
		return nil
	}))
}

// podChanged says whether an update can matter to the index. Most pod updates are the kubelet's
// status reports (conditions, container states) and resyncs; each one would otherwise rebuild
// the pod view and rejudge every registration. Everything but those fields is compared.
func podChanged(old, p *corev1.Pod) bool {
	strip := func(p *corev1.Pod) corev1.Pod {
		c := *p
		c.ResourceVersion, c.ManagedFields = "", nil
		c.Status.Conditions, c.Status.ContainerStatuses = nil, nil
		c.Status.InitContainerStatuses, c.Status.EphemeralContainerStatuses = nil, nil
		return c
	}
	a, b := strip(old), strip(p)
	return !equality.Semantic.DeepEqual(&a, &b)
}

func upsertPod(x *PodIndex, o any) {
	if p, ok := o.(*corev1.Pod); ok {
		x.UpsertPod(p)
	}
}

func upsertNS(x *PodIndex, o any) {
	if ns, ok := o.(*corev1.Namespace); ok {
		x.UpsertNamespace(ns)
	}
}

// runnableFunc is a manager Runnable that runs on every replica (no leader election needed).
type runnableFunc func(context.Context) error

func (f runnableFunc) Start(ctx context.Context) error { return f(ctx) }
func (f runnableFunc) NeedLeaderElection() bool        { return false }

// LoadPods lists pods and namespaces once (for `audit --once` against a cluster) into an
// inventory's Pods and Namespaces.
func LoadPods(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*routes.Inventory, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods); err != nil {
		return nil, fmt.Errorf("listing pods: %w (the identity needs list on pods)", err)
	}
	var nss corev1.NamespaceList
	if err := c.List(ctx, &nss); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w (the identity needs list on namespaces)", err)
	}
	return &routes.Inventory{Pods: pods.Items, Namespaces: nss.Items}, nil
}
