package clusters

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dubboreach/dubboreach/routes"
)

// podSet is one cluster's pods for the table tests: addresses held by live pods, node
// addresses, and whether the list is complete.
type podSet struct {
	pods, nodes []string
	complete    bool
}

func (p podSet) Holds(a netip.Addr) (pod, node bool) {
	for _, s := range p.pods {
		pod = pod || netip.MustParseAddr(s) == a
	}
	for _, s := range p.nodes {
		node = node || netip.MustParseAddr(s) == a
	}
	return pod, node
}

func (p podSet) Complete() bool { return p.complete }

// table builds a cluster's route table: nodes name=podCIDR@ip, the shared facts, the cluster's
// service range and publish mode.
func table(t *testing.T, service string, publish routes.Publish, nodes ...[3]string) *routes.Table {
	t.Helper()
	fab := routes.DefaultFabric()
	fab.Reachable = []netip.Prefix{netip.MustParsePrefix("10.132.0.0/16")}
	fab.Unreachable = []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}
	fab.Publish = publish
	if service != "" {
		fab.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix(service)}
	}
	inv := &routes.Inventory{}
	for _, n := range nodes {
		inv.Nodes = append(inv.Nodes, routes.Node{Name: n[0], UID: n[0], PodCIDRs: []netip.Prefix{netip.MustParsePrefix(n[1])},
			InternalIPs: []netip.Addr{netip.MustParseAddr(n[2])}})
	}
	return routes.Build(inv, fab, nil)
}

func TestDecide(t *testing.T) {
	// east and west share flannel's default pod network and the default service range; north
	// has a pod network of its own and no service range.
	east := table(t, "10.96.0.0/12", routes.PublishCNI, [3]string{"e-1", "10.244.1.0/24", "10.132.1.11"}, [3]string{"e-2", "10.244.2.0/24", "10.132.1.12"})
	west := table(t, "10.96.0.0/12", routes.PublishNone, [3]string{"w-1", "10.244.1.0/24", "10.132.2.11"})
	north := table(t, "", routes.PublishNone, [3]string{"n-1", "10.50.1.0/24", "10.132.3.11"})
	type pods = podSet
	members := func(e, w, n Pods) []Member {
		return []Member{{Name: "east", Table: east, Pods: e}, {Name: "west", Table: west, Pods: w}, {Name: "north", Table: north, Pods: n}}
	}
	none := pods{complete: true}
	tests := []struct {
		name       string
		addr       string
		members    []Member
		owner      int
		source     int
		status     routes.Status
		reason     routes.Reason
		node       string
		candidates []int
		holders    []int
		unheld     bool
	}{
		{name: "one pod network, held", addr: "10.50.1.7", members: members(none, none, pods{pods: []string{"10.50.1.7"}, complete: true}),
			owner: 2, source: 2, reason: routes.ReasonUnpublishedPodRoute, node: "n-1", candidates: []int{2}, holders: []int{2}},
		{name: "one pod network, held by none: stale", addr: "10.50.1.7", members: members(none, none, none),
			owner: 2, source: 2, reason: routes.ReasonUnpublishedPodRoute, node: "n-1", candidates: []int{2}, unheld: true},
		{name: "one pod network, its pod list incomplete: not stale", addr: "10.50.1.7", members: members(none, none, pods{}),
			owner: 2, source: 2, reason: routes.ReasonUnpublishedPodRoute, node: "n-1", candidates: []int{2}},
		{name: "one pod network, no pod source: not stale", addr: "10.50.1.7", members: members(none, none, nil),
			owner: 2, source: 2, reason: routes.ReasonUnpublishedPodRoute, node: "n-1", candidates: []int{2}},
		{name: "shared pod network, east's pod holds it", addr: "10.244.1.5", members: members(pods{pods: []string{"10.244.1.5"}, complete: true}, none, none),
			owner: 0, source: 0, status: routes.Reachable, reason: routes.ReasonPublishedPodRoute, node: "e-1", candidates: []int{0, 1}, holders: []int{0}},
		{name: "shared pod network, west's pod holds it", addr: "10.244.1.5", members: members(none, pods{pods: []string{"10.244.1.5"}, complete: true}, none),
			owner: 1, source: 1, reason: routes.ReasonUnpublishedPodRoute, node: "w-1", candidates: []int{0, 1}, holders: []int{1}},
		{name: "shared pod network, held in both: ambiguous", addr: "10.244.1.5",
			members: members(pods{pods: []string{"10.244.1.5"}, complete: true}, pods{pods: []string{"10.244.1.5"}, complete: true}, none),
			owner:   -1, source: -1, status: routes.Unknown, reason: ReasonAmbiguousCluster, candidates: []int{0, 1}, holders: []int{0, 1}},
		{name: "shared pod network, held by none: ambiguous, unheld", addr: "10.244.1.5", members: members(none, none, none),
			owner: -1, source: -1, status: routes.Unknown, reason: ReasonAmbiguousCluster, candidates: []int{0, 1}, unheld: true},
		{name: "shared pod network, held by none, west's list incomplete: ambiguous, not unheld", addr: "10.244.1.5", members: members(none, pods{}, none),
			owner: -1, source: -1, status: routes.Unknown, reason: ReasonAmbiguousCluster, candidates: []int{0, 1}},
		{name: "only east has the prefix (e-2)", addr: "10.244.2.9", members: members(none, none, none),
			owner: 0, source: 0, status: routes.Reachable, reason: routes.ReasonPublishedPodRoute, node: "e-2", candidates: []int{0}, unheld: true},
		// north's pod holds an address of east's pod network: north owns it (its pod holds it now),
		// and north's table, which has no route for it, says so.
		{name: "east's prefix, but only north's pod holds it: north", addr: "10.244.2.9", members: members(none, none, pods{pods: []string{"10.244.2.9"}, complete: true}),
			owner: 2, source: 2, status: routes.Unknown, reason: routes.ReasonNoMatchingNetwork, candidates: []int{0, 2}, holders: []int{2}},
		{name: "east's prefix, east's and north's pods hold it: ambiguous", addr: "10.244.2.9",
			members: members(pods{pods: []string{"10.244.2.9"}, complete: true}, none, pods{pods: []string{"10.244.2.9"}, complete: true}),
			owner:   -1, source: -1, status: routes.Unknown, reason: ReasonAmbiguousCluster, candidates: []int{0, 2}, holders: []int{0, 2}},
		{name: "a VM in the data center", addr: "10.132.9.9", members: members(none, none, none),
			owner: -1, source: 0, status: routes.Reachable, reason: routes.ReasonExternalNetwork},
		{name: "west's node address (host mode)", addr: "10.132.2.11", members: members(none, pods{nodes: []string{"10.132.2.11"}, complete: true}, none),
			owner: 1, source: 1, status: routes.Reachable, reason: routes.ReasonExternalNetwork},
		{name: "a node address two clusters claim: no owner, still the shared verdict", addr: "10.132.2.11",
			members: members(pods{nodes: []string{"10.132.2.11"}}, pods{nodes: []string{"10.132.2.11"}}, none),
			owner:   -1, source: 0, status: routes.Reachable, reason: routes.ReasonExternalNetwork},
		{name: "docker0 on any host", addr: "172.17.0.2", members: members(none, none, none),
			owner: -1, source: 0, status: routes.Unreachable, reason: routes.ReasonNeverReachable},
		{name: "a ClusterIP: the service range decides, whichever cluster lists it", addr: "10.96.0.10", members: []Member{{Name: "north", Table: north}, {Name: "east", Table: east}},
			owner: -1, source: 1, status: routes.Unreachable, reason: routes.ReasonServiceNetwork},
		{name: "loopback", addr: "127.0.0.1", members: members(none, none, none), owner: -1, source: 0, status: routes.Unreachable, reason: routes.ReasonLoopback},
		{name: "no members", addr: "10.244.1.5", owner: -1, source: -1, status: routes.Unknown, reason: routes.ReasonNoMatchingNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status == "" {
				tt.status = routes.Unreachable
			}
			o := Decide(netip.MustParseAddr(tt.addr), tt.members)
			assert.Equal(t, tt.owner, o.Owner, "owner")
			assert.Equal(t, tt.source, o.Source, "source")
			assert.Equal(t, tt.status, o.Verdict.Status, "status")
			assert.Equal(t, tt.reason, o.Verdict.Reason, "reason")
			assert.Equal(t, tt.node, o.Verdict.Node(), "node")
			assert.Equal(t, tt.candidates, o.Candidates, "candidates")
			assert.Equal(t, tt.holders, o.Holders, "holders")
			assert.Equal(t, tt.unheld, o.Unheld, "unheld")
			assert.Equal(t, tt.reason == ReasonAmbiguousCluster, o.Ambiguous())
			if o.Ambiguous() {
				assert.Nil(t, o.Verdict.Route, "an ambiguous verdict names no route")
			}
		})
	}
}
