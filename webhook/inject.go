package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dubboreach/dubboreach/routes"
)

// Labels, annotations and values: the contract in DESIGN.md.
const (
	LabelInject          = "dubboreach.io/inject"
	InjectEnabled        = "enabled"
	InjectDisabled       = "disabled"
	AnnotationAddress    = "dubboreach.io/address"
	AnnotationPort       = "dubboreach.io/port"
	AnnotationContainers = "dubboreach.io/containers"
	AnnotationInjected   = "dubboreach.io/injected"
	LabelPodRoute        = "dubboreach.io/pod-route"
	PodRoutePublished    = "published"
	PodRouteMissing      = "missing"

	EnvIP   = "DUBBO_IP_TO_REGISTRY"
	EnvPort = "DUBBO_PORT_TO_REGISTRY"

	// DefaultDubboPort is Dubbo's default protocol port, used when no port is named "dubbo".
	DefaultDubboPort = 20880
	// DubboPortName is the container port name that marks the Dubbo port.
	DubboPortName = "dubbo"
)

// Mode is the address a pod registers: its own IP or its node's.
type Mode string

// Modes. ModeNone is only used in metrics, for requests that injected nothing.
const (
	ModeAuto Mode = "auto"
	ModePod  Mode = "pod"
	ModeHost Mode = "host"
	ModeNone Mode = "none"
)

// Sources of the mode decision, written in the dubboreach.io/injected annotation.
const (
	SourcePodAnnotation       = "pod-annotation"
	SourceNamespaceAnnotation = "namespace-annotation"
	SourceRoutes              = "routes"
	SourceHostNetwork         = "hostNetwork"
)

// Downward API fields the injected variable reads.
const (
	fieldPodIP  = "status.podIP"
	fieldHostIP = "status.hostIP"
)

// ProtectedNamespaces are never injected, whatever their labels say: the control plane must
// keep working when the webhook does not.
var ProtectedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// RouteTable hands out the current route table; *routes.Store implements it.
type RouteTable interface {
	Table() *routes.Table
}

// Config tunes the injector.
type Config struct {
	// RequireRoutableNode makes auto mode choose pod addresses when only some nodes have their
	// pod routes published, and pin the pod to those nodes with a required node affinity.
	RequireRoutableNode bool
	// OwnNamespace is the webhook's own namespace, never injected (its pods must start even
	// when the webhook is down).
	OwnNamespace string
}

// Injector decides and builds the mutation for one pod. Safe for concurrent use.
type Injector struct {
	Config Config
	Routes RouteTable
}

// Outcome says what Mutate did.
type Outcome string

// Outcomes, used as the metrics' result label.
const (
	OutcomeInjected Outcome = "injected" // at least one container carries our variables
	OutcomeSkipped  Outcome = "skipped"  // nothing injected (not opted in, or every variable set by the pod)
	OutcomeError    Outcome = "error"    // denied or failed
)

// Result is the decision for one pod.
type Result struct {
	Outcome Outcome
	Mode    Mode // ModeNone when skipped before a decision
	// Reason explains a skip in words (for logs); the patch's dubboreach.io/injected
	// annotation explains an injection.
	Reason string
	// Patch is the JSON patch (RFC 6902) to apply; empty when nothing changes.
	Patch    []PatchOp
	Warnings []string
}

// Record is the JSON value of the dubboreach.io/injected annotation: what was injected, why,
// and what was left alone. Its fields are part of the annotation's contract (docs/webhook.md).
type Record struct {
	// Mode is pod or host: the address DUBBO_IP_TO_REGISTRY carries.
	Mode Mode `json:"mode"`
	// Field is the downward API field injected: status.podIP or status.hostIP.
	Field string `json:"field"`
	// Source is what decided the mode: pod-annotation, namespace-annotation, routes or hostNetwork.
	Source string `json:"source"`
	// Reason is the decision in words, e.g. the routes coverage.
	Reason string `json:"reason,omitempty"`
	// Port is the value of DUBBO_PORT_TO_REGISTRY (host mode with a hostPort).
	Port string `json:"port,omitempty"`
	// NodeAffinity is the node requirement added (auto mode with --require-routable-node).
	NodeAffinity string `json:"nodeAffinity,omitempty"`
	// Containers lists, per selected container, the variables injected and those kept.
	Containers []ContainerRecord `json:"containers"`
	// Warnings are the admission warnings, kept with the pod.
	Warnings []string `json:"warnings,omitempty"`
}

// ContainerRecord is one container's part of a Record.
type ContainerRecord struct {
	Name string `json:"name"`
	// Injected are the variables that carry our value (added now or by an earlier pass).
	Injected []string `json:"injected,omitempty"`
	// Kept are variables the pod sets itself (plain or protocol-prefixed): never overwritten.
	Kept []string `json:"kept,omitempty"`
}

// Denial is an admission refusal caused by the pod itself (a bad annotation value): the user
// must fix the pod, so it is returned as a denial and not subject to the failure policy.
type Denial struct{ Message string }

func (d *Denial) Error() string { return d.Message }

func deny(format string, args ...any) *Denial { return &Denial{Message: fmt.Sprintf(format, args...)} }

// target is a container to inject, with its JSON pointer.
type target struct {
	c    *corev1.Container
	path string // /spec/containers/0
}

// Mutate decides what to inject into pod, a pod being created in namespace ns (nil if the
// namespace is unknown). pod.Namespace must be set. It returns a *Denial for pods whose
// annotations or labels carry values it does not understand; it never modifies pod.
func (in *Injector) Mutate(pod *corev1.Pod, ns *corev1.Namespace) (Result, error) {
	skip := func(reason string) (Result, error) {
		return Result{Outcome: OutcomeSkipped, Mode: ModeNone, Reason: reason}, nil
	}
	if slices.Contains(ProtectedNamespaces, pod.Namespace) {
		return skip("namespace " + pod.Namespace + " is never injected")
	}
	if in.Config.OwnNamespace != "" && pod.Namespace == in.Config.OwnNamespace {
		return skip("namespace " + pod.Namespace + " is the webhook's own")
	}
	if ns == nil || ns.Labels[LabelInject] != InjectEnabled {
		return skip("namespace " + pod.Namespace + " is not labelled " + LabelInject + "=" + InjectEnabled)
	}
	// From here on the namespace asked for injection, so bad values are the user's to fix.
	switch v, ok := pod.Labels[LabelInject]; {
	case !ok || v == InjectEnabled:
	case v == InjectDisabled:
		return skip("pod opted out with " + LabelInject + "=" + InjectDisabled)
	default:
		return Result{Outcome: OutcomeError, Mode: ModeNone}, deny("pod label %s=%q is not understood: use %q to opt the pod out, or remove the label", LabelInject, v, InjectDisabled)
	}

	if err := checkShape(pod); err != nil {
		return Result{Outcome: OutcomeError, Mode: ModeNone}, err
	}
	mode, source, err := addressMode(pod, ns)
	if err != nil {
		return Result{Outcome: OutcomeError, Mode: ModeNone}, err
	}
	targets, err := selectContainers(pod)
	if err != nil {
		return Result{Outcome: OutcomeError, Mode: ModeNone}, err
	}
	portSpec, err := portAnnotation(pod)
	if err != nil {
		return Result{Outcome: OutcomeError, Mode: ModeNone}, err
	}

	rec := &Record{}
	requireAffinity := false
	var prev *Record // only a routes decision is remembered: parse the old record only then
	if mode == ModeAuto && !pod.Spec.HostNetwork {
		prev = previousRecord(pod)
	}
	switch {
	case pod.Spec.HostNetwork:
		// The pod IP of a hostNetwork pod is its node's IP, and the container port is the host's.
		rec.Mode, rec.Field, rec.Source = ModeHost, fieldPodIP, SourceHostNetwork
		rec.Reason = "hostNetwork pod: its pod IP is the node's IP"
	case prev != nil && prev.Source == SourceRoutes:
		// A reinvocation (or a second look at a pod we already mutated): keep the first routes
		// decision, so that a route change between the passes cannot flip the address. An
		// explicit annotation needs no memory: it decides the same way every time.
		*rec = Record{Mode: prev.Mode, Field: prev.Field, Source: prev.Source, Reason: prev.Reason, NodeAffinity: prev.NodeAffinity}
		requireAffinity = prev.NodeAffinity != ""
	case mode != ModeAuto:
		rec.Mode, rec.Source = mode, source
		rec.Reason = fmt.Sprintf("%s %s=%s", strings.ReplaceAll(source, "-", " "), AnnotationAddress, mode)
	default:
		rec.Source = SourceRoutes
		if node, ok := knownNode(pod); ok {
			// Pinned to one node already (spec.nodeName, or a DaemonSet pod): decide for that
			// node. A node requirement could only strand such a pod (Pending forever, or
			// rejected by its kubelet), never move it.
			rec.Mode, rec.Reason = in.decideNode(node)
		} else {
			rec.Mode, rec.Reason, requireAffinity = in.decide()
		}
		if requireAffinity {
			rec.NodeAffinity = LabelPodRoute + "=" + PodRoutePublished
		}
	}
	if rec.Field == "" {
		rec.Field = fieldPodIP
		if rec.Mode == ModeHost {
			rec.Field = fieldHostIP
		}
	}

	var warnings []string
	port := ""
	if rec.Mode == ModeHost && !pod.Spec.HostNetwork {
		port, warnings = hostPort(pod, targets, portSpec)
		rec.Port = port
	}

	var patch []PatchOp
	injected := false
	for _, t := range targets {
		cr := ContainerRecord{Name: t.c.Name}
		var add []corev1.EnvVar
		want := []corev1.EnvVar{{Name: EnvIP, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: rec.Field}}}}
		if port != "" {
			want = append(want, corev1.EnvVar{Name: EnvPort, Value: port})
		}
		for _, w := range want {
			switch userSet(t.c.Env, w) {
			case envAbsent:
				add = append(add, w)
				cr.Injected = append(cr.Injected, w.Name)
			case envOurs:
				cr.Injected = append(cr.Injected, w.Name)
			case envUsers:
				cr.Kept = append(cr.Kept, w.Name)
			}
		}
		if len(cr.Injected) > 0 {
			injected = true
		}
		if len(cr.Injected) > 0 && len(t.c.EnvFrom) > 0 {
			// Kubernetes lets env win over envFrom, so a value from a ConfigMap is overridden.
			warnings = append(warnings, fmt.Sprintf("container %s uses envFrom: a %s there is overridden by the injected one (set it in env to keep it)", t.c.Name, EnvIP))
		}
		patch = appendEnvPatch(patch, t, add)
		rec.Containers = append(rec.Containers, cr)
	}
	if requireAffinity {
		patch = appendAffinityPatch(patch, pod)
	}
	rec.Warnings = warnings
	value, err := json.Marshal(rec)
	if err != nil {
		return Result{Outcome: OutcomeError, Mode: ModeNone}, fmt.Errorf("encoding the %s annotation: %w", AnnotationInjected, err)
	}
	patch = appendAnnotationPatch(patch, pod, AnnotationInjected, string(value))

	out := Result{Outcome: OutcomeSkipped, Mode: rec.Mode, Patch: patch, Warnings: warnings}
	if injected {
		out.Outcome = OutcomeInjected
	} else {
		out.Reason = "every selected container sets the variables itself"
	}
	return out, nil
}

// knownNode returns the node a pod is bound to before scheduling: spec.nodeName, or the single
// node the DaemonSet controller pins each of its pods to (one required term whose only
// selector is matchFields metadata.name In [one node]).
func knownNode(pod *corev1.Pod) (string, bool) {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName, true
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 0 || len(terms[0].MatchFields) != 1 {
		return "", false
	}
	f := terms[0].MatchFields[0]
	if f.Key != "metadata.name" || f.Operator != corev1.NodeSelectorOpIn || len(f.Values) != 1 || f.Values[0] == "" {
		return "", false
	}
	return f.Values[0], true
}

// decideNode is auto mode for a pod whose node is known: the pod IP when that node's pod routes
// are all published, else the host IP.
func (in *Injector) decideNode(node string) (Mode, string) {
	if in.Routes == nil {
		return ModeHost, "no route table: host address"
	}
	st, ok := in.Routes.Table().Node(node)
	switch {
	case !ok || st.Routes == 0:
		return ModeHost, fmt.Sprintf("routes: the pod is bound to node %s, which has no pod routes yet, so its pod addresses are not known to be reachable", node)
	case st.AllPublished():
		return ModePod, fmt.Sprintf("routes: the pod is bound to node %s, whose pod routes are published", node)
	default:
		return ModeHost, fmt.Sprintf("routes: the pod is bound to node %s, whose pod routes are not all published (%d/%d)", node, st.Published, st.Routes)
	}
}

// decide is auto mode: the pod IP when the fabric reaches every node's pods, else the host IP
// (or, with RequireRoutableNode and some nodes published, the pod IP on those nodes only).
// With RequireRoutableNode a pod IP always comes with the node requirement, also at full
// coverage: coverage counts only nodes that have pod routes, and a new or autoscaled node
// gets its routes (Calico: its first block) only with its first pods, unpublished.
func (in *Injector) decide() (Mode, string, bool) {
	if in.Routes == nil {
		return ModeHost, "no route table: host address", false
	}
	published, total := in.Routes.Table().Coverage()
	switch {
	case total == 0:
		return ModeHost, "routes: no node has pod routes, so pod addresses are not known to be reachable", false
	case published == total && in.Config.RequireRoutableNode:
		return ModePod, fmt.Sprintf("routes: %d/%d nodes have their pod routes published; pod pinned to such nodes (--require-routable-node), so a new node without published routes is never chosen", published, total), true
	case published == total:
		return ModePod, fmt.Sprintf("routes: %d/%d nodes have their pod routes published", published, total), false
	case published == 0:
		return ModeHost, fmt.Sprintf("routes: 0/%d nodes have their pod routes published", total), false
	case in.Config.RequireRoutableNode:
		return ModePod, fmt.Sprintf("routes: %d/%d nodes have their pod routes published; pod pinned to them (--require-routable-node)", published, total), true
	default:
		return ModeHost, fmt.Sprintf("routes: only %d/%d nodes have their pod routes published (--require-routable-node would pin pods to them)", published, total), false
	}
}

// checkShape refuses pods the API server would refuse anyway, and whose patch could not apply:
// no metadata.name nor generateName (so no metadata object), no containers, unnamed containers.
func checkShape(pod *corev1.Pod) error {
	if pod.Name == "" && pod.GenerateName == "" {
		return deny("pod has neither metadata.name nor metadata.generateName")
	}
	if len(pod.Spec.Containers) == 0 {
		return deny("pod has no spec.containers")
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "" {
			return deny("pod spec.containers[%d] has no name", i)
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == "" {
			return deny("pod spec.initContainers[%d] has no name", i)
		}
	}
	return nil
}

var modeValues = []string{string(ModeAuto), string(ModePod), string(ModeHost)}

func addressMode(pod *corev1.Pod, ns *corev1.Namespace) (Mode, string, error) {
	if v, ok := pod.Annotations[AnnotationAddress]; ok {
		m, err := parseMode(v)
		if err != nil {
			return "", "", deny("pod annotation %s=%q is not understood: use one of %s", AnnotationAddress, v, strings.Join(modeValues, ", "))
		}
		return m, SourcePodAnnotation, nil
	}
	if v, ok := ns.Annotations[AnnotationAddress]; ok {
		m, err := parseMode(v)
		if err != nil {
			return "", "", deny("namespace %s annotation %s=%q is not understood: use one of %s", ns.Name, AnnotationAddress, v, strings.Join(modeValues, ", "))
		}
		return m, SourceNamespaceAnnotation, nil
	}
	return ModeAuto, SourceRoutes, nil
}

func parseMode(v string) (Mode, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return ModeAuto, nil
	}
	if slices.Contains(modeValues, v) {
		return Mode(v), nil
	}
	return "", fmt.Errorf("unknown")
}

// selectContainers returns the containers to inject: those named by dubboreach.io/containers,
// else every app container and native sidecar (init container with restartPolicy Always).
// Plain init containers run before the app and ephemeral containers are debug tools: neither
// registers in ZooKeeper, so neither is touched.
func selectContainers(pod *corev1.Pod) ([]target, error) {
	var all []target
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			all = append(all, target{c: c, path: "/spec/initContainers/" + strconv.Itoa(i)})
		}
	}
	for i := range pod.Spec.Containers {
		all = append(all, target{c: &pod.Spec.Containers[i], path: "/spec/containers/" + strconv.Itoa(i)})
	}
	v, ok := pod.Annotations[AnnotationContainers]
	if !ok || strings.TrimSpace(v) == "" {
		return all, nil
	}
	var out []target
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(all, func(t target) bool { return t.c.Name == name })
		if i < 0 {
			names := make([]string, len(all))
			for j, t := range all {
				names[j] = t.c.Name
			}
			return nil, deny("pod annotation %s=%q names container %q, which is not an app container or native sidecar of this pod (have: %s)", AnnotationContainers, v, name, strings.Join(names, ", "))
		}
		if !slices.ContainsFunc(out, func(t target) bool { return t.c.Name == name }) {
			out = append(out, all[i])
		}
	}
	// Keep pod order, not annotation order, so that patches and records are stable.
	slices.SortStableFunc(out, func(a, b target) int {
		return slices.IndexFunc(all, func(t target) bool { return t.c == a.c }) - slices.IndexFunc(all, func(t target) bool { return t.c == b.c })
	})
	return out, nil
}

// portSpec is the parsed dubboreach.io/port annotation: a number or a port name.
type portSpec struct {
	number int32
	name   string
	set    bool
}

func portAnnotation(pod *corev1.Pod) (portSpec, error) {
	v, ok := pod.Annotations[AnnotationPort]
	if !ok {
		return portSpec{}, nil
	}
	s := strings.TrimSpace(v)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 65535 {
			return portSpec{}, deny("pod annotation %s=%q is not a port: use a number from 1 to 65535 or a container port name", AnnotationPort, v)
		}
		return portSpec{number: int32(n), set: true}, nil
	}
	if errs := validation.IsValidPortName(s); len(errs) > 0 {
		return portSpec{}, deny("pod annotation %s=%q is not a port: use a number from 1 to 65535 or a container port name (%s)", AnnotationPort, v, strings.Join(errs, "; "))
	}
	return portSpec{name: s, set: true}, nil
}

// hostPort finds the Dubbo port among the selected containers (then the others) and returns
// its hostPort as the DUBBO_PORT_TO_REGISTRY value, with warnings when the registered host
// address would not answer or Dubbo would bind the wrong port.
func hostPort(pod *corev1.Pod, targets []target, spec portSpec) (string, []string) {
	match := func(p corev1.ContainerPort) bool {
		switch {
		case spec.set && spec.name != "":
			return p.Name == spec.name
		case spec.set:
			return p.ContainerPort == spec.number
		}
		return p.Name == DubboPortName
	}
	find := func(match func(corev1.ContainerPort) bool) (*corev1.ContainerPort, string) {
		for _, t := range targets {
			for i := range t.c.Ports {
				if match(t.c.Ports[i]) {
					return &t.c.Ports[i], t.c.Name
				}
			}
		}
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			for j := range c.Ports {
				if match(c.Ports[j]) {
					return &c.Ports[j], c.Name
				}
			}
		}
		return nil, ""
	}
	p, cname := find(match)
	desc := ""
	switch {
	case spec.set && spec.name != "":
		desc = fmt.Sprintf("port %q (%s)", spec.name, AnnotationPort)
	case spec.set:
		desc = fmt.Sprintf("port %d (%s)", spec.number, AnnotationPort)
	default:
		desc = fmt.Sprintf("port %q", DubboPortName)
		if p == nil {
			p, cname = find(func(cp corev1.ContainerPort) bool { return cp.ContainerPort == DefaultDubboPort })
			desc = fmt.Sprintf("port %q or %d", DubboPortName, DefaultDubboPort)
		}
	}
	if p == nil {
		return "", []string{fmt.Sprintf("host mode: no container declares %s, so %s is not set and the registered host address will not answer: declare the port with a hostPort, or use %s=pod", desc, EnvPort, AnnotationAddress)}
	}
	if p.HostPort == 0 {
		return "", []string{fmt.Sprintf("host mode: container %s port %d has no hostPort, so %s is not set and the registered host address will not answer: add a hostPort, or use %s=pod", cname, p.ContainerPort, EnvPort, AnnotationAddress)}
	}
	var w []string
	if p.HostPort != p.ContainerPort {
		w = append(w, fmt.Sprintf("host mode: hostPort %d differs from containerPort %d; Dubbo 2.7.12 to 2.7.23 also bind to %s and would listen on %d: make them equal or use another Dubbo version", p.HostPort, p.ContainerPort, EnvPort, p.HostPort))
	}
	return strconv.Itoa(int(p.HostPort)), w
}

type envState int

const (
	envAbsent envState = iota
	envOurs            // set, by us or identically by the user
	envUsers           // set by the pod to something else, or in protocol-prefixed form
)

// userSet says whether the container already sets want's variable. Dubbo reads
// <PROTOCOL>_<NAME> before <NAME> (DUBBO_DUBBO_IP_TO_REGISTRY), so a prefixed form counts as
// set by the user too.
func userSet(env []corev1.EnvVar, want corev1.EnvVar) envState {
	state := envAbsent
	suffix := "_" + want.Name
	for i := range env {
		e := &env[i]
		switch {
		case e.Name == want.Name:
			if sameEnv(e, &want) {
				if state == envAbsent {
					state = envOurs
				}
			} else {
				return envUsers
			}
		case strings.HasSuffix(e.Name, suffix) && len(e.Name) > len(suffix):
			return envUsers
		}
	}
	return state
}

func sameEnv(a, b *corev1.EnvVar) bool {
	if a.Value != b.Value || (a.ValueFrom == nil) != (b.ValueFrom == nil) {
		return false
	}
	if a.ValueFrom == nil {
		return true
	}
	fa, fb := a.ValueFrom.FieldRef, b.ValueFrom.FieldRef
	if fa == nil || fb == nil || a.ValueFrom.ConfigMapKeyRef != nil || a.ValueFrom.SecretKeyRef != nil || a.ValueFrom.ResourceFieldRef != nil {
		return false
	}
	return fa.FieldPath == fb.FieldPath && (fa.APIVersion == "" || fa.APIVersion == fb.APIVersion)
}

// previousRecord returns our own record from an earlier pass, if the pod carries a valid one.
func previousRecord(pod *corev1.Pod) *Record {
	v, ok := pod.Annotations[AnnotationInjected]
	if !ok {
		return nil
	}
	var r Record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil
	}
	if (r.Mode != ModePod && r.Mode != ModeHost) || (r.Field != fieldPodIP && r.Field != fieldHostIP) || r.Source == SourceHostNetwork {
		return nil
	}
	return &r
}
