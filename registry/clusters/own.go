package clusters

import (
	"net/netip"

	"github.com/dubboreach/dubboreach/routes"
)

// ReasonAmbiguousCluster is the reason of an address whose cluster cannot be told: it lies in
// the pod networks of several clusters (or in one's, while another's pod holds it), and not
// exactly one of them has a pod holding it now. Its verdict is unknown and it is never corrected.
const ReasonAmbiguousCluster routes.Reason = "ambiguous-cluster"

// Pods is what ownership needs to know about one cluster's pods.
type Pods interface {
	// Holds says whether a live pod of the cluster has addr as its pod IP now (hostNetwork pods
	// excluded), and whether addr is one of the cluster's node addresses.
	Holds(addr netip.Addr) (pod, node bool)
	// Complete says the cluster's pod list is known complete (caches synced, or an inventory).
	Complete() bool
}

// Member is one cluster as ownership sees it during one judging pass.
type Member struct {
	Name  string
	Table *routes.Table
	// Pods is nil when nothing is known about the cluster's pods.
	Pods Pods
}

// Ownership says which cluster an address belongs to, and which verdict follows.
type Ownership struct {
	// Owner is the index of the owning member, -1 for none: an address outside every pod
	// network (a VM, a node) that no single cluster claims, or an ambiguous one.
	Owner int
	// Source is the index of the member whose table gave Verdict (the owner when there is
	// one); -1 with no members or when the verdict is ambiguous-cluster.
	Source int
	// Candidates are the members (indexes, in member order) that could own the address: those
	// whose pod network covers it and those one of whose pods holds it.
	Candidates []int
	// Holders are the candidates one of whose live pods holds the address now.
	Holders []int
	// Verdict is Source's verdict, or unknown/ambiguous-cluster.
	Verdict routes.Verdict
	// Unheld: there are candidates, every one's pod list is complete, and no pod of any member
	// holds the address. Only then may it be called stale; an ambiguous one is still never
	// corrected.
	Unheld bool
}

// Ambiguous says the address's cluster cannot be told.
func (o Ownership) Ambiguous() bool { return o.Verdict.Reason == ReasonAmbiguousCluster }

// Decide finds the owner of addr among members:
//   - in exactly one cluster's pod network, and held by no other cluster's pod: that cluster;
//   - otherwise, among the clusters whose pod network covers it or whose pod holds it, the one
//     whose pod holds it now, if exactly one does;
//   - otherwise ambiguous: verdict unknown, reason ambiguous-cluster, no owner.
//
// An address outside every pod network belongs to the cluster that has it as a node address,
// if exactly one does (a host-mode registration), else to none (a VM); its verdict comes from
// the shared facts, or from the cluster whose service network holds it. Pure: the members'
// tables and pod lists are only read.
func Decide(addr netip.Addr, members []Member) Ownership {
	o := Ownership{Owner: -1, Source: -1}
	if len(members) == 0 {
		o.Verdict = routes.Verdict{Address: addr, Status: routes.Unknown, Reason: routes.ReasonNoMatchingNetwork}
		return o
	}
	verdicts := make([]routes.Verdict, len(members))
	var nodeOf []int
	allComplete, heldAnywhere := true, false
	for i, m := range members {
		verdicts[i] = m.Table.Check(addr)
		var pod, node bool
		if m.Pods != nil {
			pod, node = m.Pods.Holds(addr)
		}
		if node {
			nodeOf = append(nodeOf, i)
		}
		heldAnywhere = heldAnywhere || pod
		if verdicts[i].Route != nil || pod {
			o.Candidates = append(o.Candidates, i)
			if pod {
				o.Holders = append(o.Holders, i)
			}
			allComplete = allComplete && m.Pods != nil && m.Pods.Complete()
		}
	}
	o.Unheld = len(o.Candidates) > 0 && allComplete && !heldAnywhere
	switch {
	case len(o.Candidates) == 1:
		o.Owner = o.Candidates[0]
	case len(o.Candidates) > 1 && len(o.Holders) == 1:
		o.Owner = o.Holders[0]
	case len(o.Candidates) > 1:
		o.Verdict = routes.Verdict{Address: verdicts[0].Address, Status: routes.Unknown, Reason: ReasonAmbiguousCluster}
		return o
	case len(nodeOf) == 1:
		o.Owner = nodeOf[0]
	}
	o.Source = o.Owner
	if o.Source < 0 {
		// No cluster: the shared facts decide, the same in every table, except that a cluster's
		// service network says what a ClusterIP is.
		o.Source = 0
		for i, v := range verdicts {
			if v.Reason == routes.ReasonServiceNetwork {
				o.Source = i
				break
			}
		}
	}
	o.Verdict = verdicts[o.Source]
	return o
}
