package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/dubboreach/dubboreach/registry/dubbo"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// ReasonHostname is the reason given to a registration whose host is a name, not an address:
// it is never resolved here, since this machine's resolver is not the fabric's.
const ReasonHostname routes.Reason = "hostname"

// Judge turns snapshots into Results. It caches, per znode, the parsed registration and its
// last finding: a watch event on a registry of 100,000 entries then costs the new entries'
// parses and verdicts, not 100,000 of them; a change of routes or pods costs verdicts and
// lookups, never parses. A Judge is used by one goroutine at a time.
type Judge struct {
	// Format renders missing routes in explanations (default linux: ip route replace ...).
	Format render.Format
	cache  map[string]*cached
	// routeMsgs holds the rendered explanation of each missing route of routeTable: thousands
	// of registrations behind one node share a handful of routes.
	routeMsgs  map[*routes.Route]string
	routeTable *routes.Table
}

// cached is what one znode parsed to (display-ready, without the URL's parameter map, to keep
// 100,000 of them small) and the finding last judged from it.
type cached struct {
	data []byte // instance data the parse was made from
	err  string // unparseable: why
	// isAddr says host is an IP address (addr); otherwise it is a name, never resolved.
	isAddr  bool
	addr    netip.Addr
	host    string
	release string
	// finding holds the parsed facts, and the judged ones for table and pods (judged true).
	finding Finding
	judged  bool
	table   *routes.Table
	pods    *PodView
}

func (j *Judge) parse(e zk.Entry, path string) *cached {
	if c, ok := j.cache[path]; ok && (e.Kind != zk.KindInstance || bytes.Equal(c.data, e.Data)) {
		return c
	}
	c := &cached{}
	if e.Kind == zk.KindInstance {
		c.data = e.Data
		in, err := dubbo.ParseInstance(e.Data)
		if err != nil {
			c.err = dubbo.Display(err.Error())
			return c
		}
		c.finding = Finding{Service: dubbo.Display(in.Name), Protocol: dubbo.Display(in.Protocol()), Address: dubbo.Display(in.Address),
			Port: in.Port, Application: dubbo.Display(in.Name), Kind: KindApplication, Znode: dubbo.Display(path), Path: path, Side: "provider"}
		a, err := netip.ParseAddr(strings.Trim(in.Address, "[]"))
		c.isAddr, c.addr, c.host = err == nil, a.Unmap(), in.Address
		return c
	}
	u, err := dubbo.ParseZnodeName(e.Name)
	if err != nil {
		c.err = dubbo.Display(err.Error())
		return c
	}
	// Clones: the parsed fields are substrings of the decoded URL, which they would keep alive.
	c.finding = Finding{Service: keep(u.Interface()), Protocol: keep(u.Protocol), Address: keep(u.Host),
		Port: int(u.Port), Application: keep(u.Application()), Kind: KindInterface, Znode: dubbo.Display(path), Path: path,
		Side: "provider", Persistent: !u.Dynamic(), DubboGo: u.DubboGo(), Version: keep(u.Version()), Group: keep(u.Group()),
		Disabled: u.Disabled(), Release: keep(u.Release())}
	c.finding.URLPath = c.finding.Service // the common case, without a second copy
	if u.Path != u.Interface() {
		c.finding.URLPath = keep(u.Path)
	}
	if e.Kind == zk.KindConsumer {
		c.finding.Side = "consumer"
	}
	c.addr, c.isAddr = u.Addr()
	c.host, c.release = c.finding.Address, strings.Clone(u.Release())
	if !c.isAddr {
		c.host = strings.Clone(u.Host)
	}
	return c
}

// keep returns s escaped for display, in memory of its own.
func keep(s string) string {
	d := dubbo.Display(s)
	if d == s {
		return strings.Clone(s)
	}
	return d
}

// Judge judges every entry of snap against the route table and the pods.
func (j *Judge) Judge(snap zk.Snapshot, t *routes.Table, pods *PodView) *Result {
	if j.Format == "" {
		j.Format = render.Linux
	}
	if j.routeTable != t {
		j.routeMsgs, j.routeTable = map[*routes.Route]string{}, t
	}
	next := make(map[string]*cached, len(snap.Entries))
	r := &Result{
		Complete: snap.Complete, Missing: []string{}, Providers: make([]Finding, 0, len(snap.Entries)), Consumers: []Finding{}, Unparseable: []Unparseable{},
		MissingDetail: snap.Missing, Connected: snap.Connected, Scanned: snap.Scanned, LastFullScan: snap.LastFullScan,
		LastCompleteScan: snap.LastCompleteScan, JudgedAt: time.Now(), PodsKnown: pods != nil && pods.Known,
	}
	for _, m := range snap.Missing {
		r.Missing = append(r.Missing, dubbo.Display(m.Path))
	}
	for _, e := range snap.Entries {
		path := e.Path()
		c := j.parse(e, path)
		next[path] = c
		if c.err != "" {
			r.Unparseable = append(r.Unparseable, Unparseable{Znode: dubbo.Display(path), Error: c.err})
			continue
		}
		if !c.judged || c.table != t || c.pods != pods {
			c.finding.unjudge()
			j.judge(&c.finding, c.addr, c.isAddr, c.host, t, pods, c.release)
			c.judged, c.table, c.pods = true, t, pods
		}
		if e.Kind == zk.KindConsumer {
			r.Consumers = append(r.Consumers, c.finding)
			count(&r.ConsumerSummary, c.finding.Verdict)
		} else {
			r.Providers = append(r.Providers, c.finding)
			count(&r.Summary, c.finding.Verdict)
		}
	}
	r.Summary.Unparseable = len(r.Unparseable)
	r.Summary.Total += r.Summary.Unparseable
	j.cache = next
	return r
}

// unjudge clears what judging fills in, keeping what the registration says.
func (f *Finding) unjudge() {
	f.Verdict, f.Reason, f.Node, f.Pod, f.Explanation = "", "", "", "", ""
	f.MissingRoute, f.PodNamespace, f.PodName, f.PodUID = nil, "", "", ""
	f.Stale, f.NoListener = false, false
}

func count(s *Summary, v routes.Status) {
	s.Total++
	switch v {
	case routes.Reachable:
		s.Reachable++
	case routes.Unreachable:
		s.Unreachable++
	default:
		s.Unknown++
	}
}

// judge fills verdict, mapping and explanation. u is nil for application-level instances.
func (j *Judge) judge(f *Finding, addr netip.Addr, isAddr bool, host string, t *routes.Table, pods *PodView, release string) {
	var why []string
	if !isAddr {
		f.Verdict, f.Reason = routes.Unknown, ReasonHostname
		why = append(why, fmt.Sprintf("Registered by hostname %q; dubboreach does not resolve names (this machine's resolver is not the fabric's): check that it resolves to an address the network outside the cluster reaches.", dubbo.Display(host)))
		f.Explanation = strings.Join(why, " ")
		return
	}
	v := t.Check(addr)
	f.Verdict, f.Reason, f.Node = v.Status, v.Reason, v.Node()
	f.MissingRoute = v.MissingRoute()
	shown := dubbo.Display(addr.String())

	switch v.Reason {
	case routes.ReasonUnpublishedPodRoute:
		why = append(why, j.missingRoute(v.Route))
	case routes.ReasonNoNextHop:
		why = append(why, fmt.Sprintf("Node %s has no address to route its pod prefix %s through (see `dubboreach routes`).", v.Node(), v.Prefix))
	case routes.ReasonServiceNetwork:
		why = append(why, fmt.Sprintf("%s is a ClusterIP (service network %s): virtual, reachable only inside the cluster; the application registered the wrong address.", shown, v.Prefix))
	case routes.ReasonNeverReachable:
		why = append(why, fmt.Sprintf("%s is in %s, a network the fabric never reaches (such as a docker bridge): the application registered the address of the wrong interface.", shown, v.Prefix))
	case routes.ReasonLoopback, routes.ReasonLinkLocal, routes.ReasonUnspecified, routes.ReasonMulticast:
		why = append(why, fmt.Sprintf("%s is a %s address: the application registered the wrong interface; have DUBBO_IP_TO_REGISTRY set (label its namespace %s=enabled).", shown, v.Reason, LabelInject))
	case routes.ReasonNoMatchingNetwork:
		why = append(why, fmt.Sprintf("No network of the fabric file covers %s: add it to spec.reachable or spec.unreachable.", shown))
	}

	m := pods.Lookup(addr, uint16(f.Port))
	if m.Pod != nil {
		f.PodNamespace, f.PodName, f.PodUID = m.Pod.Namespace, m.Pod.Name, m.Pod.UID
		f.Pod = m.Pod.Namespace + "/" + m.Pod.Name
		if f.Node == "" {
			f.Node = m.Pod.Spec.NodeName
		}
	}
	switch {
	case !pods.known():
	case m.Pod == nil && m.HostNode != "" && f.Port != 0:
		f.NoListener = true
		if f.Node == "" {
			f.Node = m.HostNode
		}
		why = append(why, fmt.Sprintf("%s is node %s's address, but no pod there publishes hostPort %d: nothing answers at this address.", shown, m.HostNode, f.Port))
	case m.Pod == nil && v.Route != nil:
		f.Stale = true
		if f.Persistent {
			why = append(why, fmt.Sprintf("No pod has IP %s: this persistent entry (dynamic=false) outlived its provider; it is stale, delete the znode.", shown))
		} else {
			why = append(why, fmt.Sprintf("No pod has IP %s now: the registration is stale (its provider's session has not expired yet).", shown))
		}
	case m.Pod != nil && v.Status != routes.Reachable && m.Via == "pod-ip":
		why = append(why, explainPod(f, m, release)...)
	}
	f.Explanation = strings.Join(why, " ")
}

func (p *PodView) known() bool { return p != nil && p.Known }

// explainPod says why a pod registered an address the fabric cannot reach.
func explainPod(f *Finding, m Match, release string) []string {
	pod, ns := m.Pod, m.Pod.Namespace
	who := "Pod " + ns + "/" + pod.Name
	if f.DubboGo {
		return []string{fmt.Sprintf("Registered by dubbo-go (release=%s), which ignores DUBBO_IP_TO_REGISTRY for interface-level entries: this entry stays on the pod IP even when injected; publish the pod route of node %s, or register the application at application level.", dubbo.Display(release), pod.Spec.NodeName)}
	}
	if m.Namespace != nil && m.Namespace.Labels[LabelInject] != "enabled" {
		return []string{fmt.Sprintf("Namespace %s is not labelled %s=enabled, so the pod registered its pod IP: `kubectl label namespace %s %s=enabled`, then restart the pod.", ns, LabelInject, ns, LabelInject)}
	}
	if pod.Labels[LabelInject] == "disabled" {
		return []string{fmt.Sprintf("%s opts out of injection (label %s=disabled), so it registered its pod IP.", who, LabelInject)}
	}
	if inj, ok := pod.Annotations[AnnotationInjected]; ok {
		return []string{explainInjected(who, pod.Spec.NodeName, inj)}
	}
	if m.Namespace == nil {
		return []string{fmt.Sprintf("%s has no %s annotation and its namespace is unknown: label the namespace %s=enabled and restart the pod.", who, AnnotationInjected, LabelInject)}
	}
	return []string{fmt.Sprintf("%s was created before injection was enabled (no %s annotation): restart it (`kubectl -n %s delete pod %s`, or roll out its owner).", who, AnnotationInjected, ns, pod.Name)}
}

// missingRoute explains an unpublished pod route and renders it for the network team.
func (j *Judge) missingRoute(r *routes.Route) string {
	if msg, ok := j.routeMsgs[r]; ok {
		return msg
	}
	msg := j.renderMissingRoute(r)
	if j.routeMsgs != nil {
		j.routeMsgs[r] = msg
	}
	return msg
}

func (j *Judge) renderMissingRoute(r *routes.Route) string {
	msg := fmt.Sprintf("The pod route of node %s, %s, is not published on the fabric", r.Node, r.String())
	var b strings.Builder
	if r.NextHop.IsValid() && render.Render(&b, j.Format, []render.Entry{{Prefix: r.Prefix, NextHop: r.NextHop, Node: r.Node}}, render.Options{}) == nil {
		msg += fmt.Sprintf("; for the network team (%s): %s", j.Format, strings.TrimSpace(b.String()))
	}
	return msg + fmt.Sprintf(" (all missing routes: `dubboreach routes --missing -o %s`).", j.Format)
}

// podRef returns the pod object to attach Events to; nil if unknown.
func podRef(f *Finding) *corev1.Pod {
	if f.PodUID == "" || f.PodName == "" {
		return nil
	}
	p := &corev1.Pod{}
	p.Namespace, p.Name, p.UID = f.PodNamespace, f.PodName, f.PodUID
	return p
}

// injectedRecord is the part of the webhook's dubboreach.io/injected annotation (JSON, see
// docs/webhook.md) that explains a pod-IP registration.
type injectedRecord struct {
	Mode       string `json:"mode"`
	Field      string `json:"field"`
	Source     string `json:"source"`
	Reason     string `json:"reason"`
	Containers []struct {
		Name string   `json:"name"`
		Kept []string `json:"kept"`
	} `json:"containers"`
}

// explainInjected says why an injected pod still registered its pod IP.
func explainInjected(who, node, annotation string) string {
	var rec injectedRecord
	if len(annotation) > 64<<10 || json.Unmarshal([]byte(annotation), &rec) != nil {
		return fmt.Sprintf("%s was injected (%s: %s) yet registered its pod IP: check that the application reads DUBBO_IP_TO_REGISTRY.", who, AnnotationInjected, dubbo.Display(annotation))
	}
	for _, c := range rec.Containers {
		for _, k := range c.Kept {
			if strings.HasSuffix(k, "DUBBO_IP_TO_REGISTRY") {
				return fmt.Sprintf("%s sets %s itself in container %s, and the webhook never overwrites it: remove it from the pod template or set it to the host IP.", who, dubbo.Display(k), dubbo.Display(c.Name))
			}
		}
	}
	why := ""
	if rec.Source != "" {
		why = " (decided by " + dubbo.Display(rec.Source)
		if rec.Reason != "" {
			why += ": " + dubbo.Display(rec.Reason)
		}
		why += ")"
	}
	if rec.Mode == "pod" {
		return fmt.Sprintf("%s was injected in pod mode%s, so it registers its pod IP, which the fabric does not reach now: publish node %s's pod route, or restart the pod so that the webhook decides again.", who, why, node)
	}
	return fmt.Sprintf("%s was injected in %s mode (%s)%s yet registered its pod IP: the application does not read DUBBO_IP_TO_REGISTRY (check its Dubbo version and configuration).", who, dubbo.Display(rec.Mode), dubbo.Display(rec.Field), why)
}
