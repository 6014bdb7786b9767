package clusters

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// View is one cluster as it stands for one judging pass.
type View struct {
	Name  string
	Table *routes.Table
	// Pods is nil when nothing is known of the cluster's pods.
	Pods *registry.PodView
}

// podView adapts a registry.PodView to ownership's Pods.
type podView struct{ v *registry.PodView }

func (p podView) Holds(a netip.Addr) (pod, node bool) {
	m := p.v.Lookup(a, 0) // port 0: by pod IP only, never by hostPort
	return m.Pod != nil && m.Via == "pod-ip" && live(m.Pod), m.HostNode != ""
}

func (p podView) Complete() bool { return p.v != nil && p.v.Known }

func live(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// Members returns the ownership view of views.
func Members(views []View) []Member {
	out := make([]Member, len(views))
	for i, v := range views {
		out[i] = Member{Name: v.Name, Table: v.Table}
		if v.Pods != nil {
			out[i].Pods = podView{v.Pods}
		}
	}
	return out
}

// Judge judges one registry against several clusters: each registration is judged against
// the cluster that owns its address (Decide), and one whose cluster cannot be told gets
// unknown/ambiguous-cluster, no node, no pod, never stale. It keeps one registry.Judge per
// cluster (each with its parse and verdict caches); use it from one goroutine at a time.
type Judge struct {
	Format render.Format
	judges []*registry.Judge
}

// Judge judges snap against views (at least one; the same clusters, in the same order, on
// every call).
func (j *Judge) Judge(snap zk.Snapshot, views []View) *registry.Result {
	if len(views) == 0 {
		views = []View{{Table: routes.Build(nil, nil, nil)}}
	}
	for len(j.judges) < len(views) {
		j.judges = append(j.judges, &registry.Judge{Format: j.Format})
	}
	results := make([]*registry.Result, len(views))
	for i, v := range views {
		results[i] = j.judges[i].Judge(snap, v.Table, v.Pods)
	}
	members := Members(views)
	out := *results[0]
	out.Summary, out.ConsumerSummary = registry.Summary{}, registry.Summary{}
	out.Providers = make([]registry.Finding, len(results[0].Providers))
	out.Consumers = make([]registry.Finding, len(results[0].Consumers))
	for _, r := range results {
		out.PodsKnown = out.PodsKnown && r.PodsKnown
	}
	// Every pass judged the same snapshot in the same order: index k is one registration.
	for k := range out.Providers {
		out.Providers[k] = pick(results, members, views, k, func(r *registry.Result) []registry.Finding { return r.Providers })
		count(&out.Summary, out.Providers[k].Verdict)
	}
	for k := range out.Consumers {
		out.Consumers[k] = pick(results, members, views, k, func(r *registry.Result) []registry.Finding { return r.Consumers })
		count(&out.ConsumerSummary, out.Consumers[k].Verdict)
	}
	out.Summary.Unparseable = len(out.Unparseable)
	out.Summary.Total += out.Summary.Unparseable
	return &out
}

func pick(results []*registry.Result, members []Member, views []View, k int, list func(*registry.Result) []registry.Finding) registry.Finding {
	f := list(results[0])[k]
	addr, err := netip.ParseAddr(strings.Trim(f.Address, "[]"))
	if err != nil {
		return f // a host name: never resolved, no cluster
	}
	o := Decide(addr.Unmap(), members)
	if o.Ambiguous() {
		f.Verdict, f.Reason, f.Node, f.Pod = o.Verdict.Status, o.Verdict.Reason, "", ""
		f.MissingRoute, f.PodNamespace, f.PodName, f.PodUID = nil, "", "", ""
		f.Stale, f.NoListener = false, false
		f.Explanation = explainAmbiguous(addr.Unmap(), o, views)
		f.Candidates = names(o.Candidates, views)
		return f
	}
	if o.Source >= 0 {
		f = list(results[o.Source])[k]
	}
	if o.Owner >= 0 {
		f.Cluster = views[o.Owner].Name
		if f.Explanation != "" {
			// What to do happens in that cluster (kubectl, its pod routes): say which one.
			f.Explanation = "Cluster " + f.Cluster + ": " + f.Explanation
		}
	}
	return f
}

func names(idx []int, views []View) []string {
	out := make([]string, len(idx))
	for i, x := range idx {
		out[i] = views[x].Name
	}
	return out
}

// explainAmbiguous says why the cluster of addr cannot be told, and what to do.
func explainAmbiguous(addr netip.Addr, o Ownership, views []View) string {
	var where []string
	for _, i := range o.Candidates {
		s := "cluster " + views[i].Name
		if n := views[i].Table.Check(addr).Node(); n != "" {
			s += " (node " + n + ")"
		}
		where = append(where, s)
	}
	var why string
	switch {
	case len(o.Holders) > 1:
		why = fmt.Sprintf("a pod of each of %s holds it now", strings.Join(names(o.Holders, views), " and "))
	case o.Unheld:
		why = "no pod of any of them holds it now (it looks stale)"
	default:
		var partial []string
		for _, i := range o.Candidates {
			if !(podView{views[i].Pods}).Complete() {
				partial = append(partial, views[i].Name)
			}
		}
		why = "no pod of them is known to hold it (the pod list of " + strings.Join(partial, " and ") + " is not complete)"
	}
	return fmt.Sprintf("%s could belong to %s; %s: which cluster registered it cannot be told, so its verdict is unknown and it is never corrected (no disable, prune or evict). "+
		"Have the application register an address the fabric tells apart (DUBBO_IP_TO_REGISTRY), or give the clusters distinct pod networks.",
		addr, strings.Join(where, ", "), why)
}

func count(s *registry.Summary, v routes.Status) {
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

// ForCorrection returns the result the corrections (--fix) may act on: without registrations
// whose cluster cannot be told, and without those owned by a cluster this auditor does not
// correct (correct returns false for it). Registrations of no cluster (VMs) stay. r is not
// modified.
func ForCorrection(r *registry.Result, correct func(cluster string) bool) *registry.Result {
	out := *r
	keep := func(fs []registry.Finding) []registry.Finding {
		kept := make([]registry.Finding, 0, len(fs))
		for _, f := range fs {
			if f.Reason == ReasonAmbiguousCluster || len(f.Candidates) > 0 && f.Cluster == "" || f.Cluster != "" && !correct(f.Cluster) {
				continue
			}
			kept = append(kept, f)
		}
		return kept
	}
	out.Providers, out.Consumers = keep(r.Providers), keep(r.Consumers)
	return &out
}

// Corrects returns the function ForCorrection takes for a clusters file: true for the
// clusters marked correct (the default).
func (f *File) Corrects() func(string) bool {
	set := map[string]bool{}
	for _, c := range f.Clusters {
		set[c.Name] = c.Correct
	}
	return func(name string) bool { return set[name] }
}

// Check decides the owner of one address among views (`check --clusters`): the ownership, and
// for an address whose cluster cannot be told the explanation a finding would carry.
func Check(addr netip.Addr, views []View) (o Ownership, explanation string) {
	addr = addr.Unmap()
	o = Decide(addr, Members(views))
	if o.Ambiguous() {
		explanation = explainAmbiguous(addr, o, views)
	}
	return o, explanation
}

// Names returns the names of the members at idx (candidates, holders).
func Names(idx []int, views []View) []string { return names(idx, views) }
