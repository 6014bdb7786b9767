package routes

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustInventory(t testing.TB, path string) *Inventory {
	t.Helper()
	inv, err := LoadInventory(path)
	require.NoError(t, err)
	return inv
}

func mustFabric(t testing.TB, path string) *Fabric {
	t.Helper()
	f, err := LoadFabric(path)
	require.NoError(t, err)
	return f
}

func routeStrings(rs []Route) []string {
	var out []string
	for _, r := range rs {
		s := r.Node + " " + r.String() + " " + string(r.Source)
		if r.Published {
			s += " published"
		}
		out = append(out, s)
	}
	return out
}

func problemStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func TestBuildFlannelCase(t *testing.T) {
	tab := Build(mustInventory(t, "testdata/flannel-inventory.yaml"), mustFabric(t, "testdata/flannel-fabric.yaml"), nil)
	assert.Equal(t, []string{
		"node1 10.131.10.0/24 via 10.132.2.22 node",
		"node2 10.131.73.0/24 via 10.132.2.23 node published",
	}, routeStrings(tab.Routes))
	assert.Empty(t, tab.Problems)
	assert.Empty(t, tab.Stale)
	assert.Equal(t, []string{"node1 10.131.10.0/24 via 10.132.2.22 node"}, routeStrings(tab.Missing()))
	pub, total := tab.Coverage()
	assert.Equal(t, 1, pub)
	assert.Equal(t, 2, total)
	n1, ok := tab.Node("node1")
	require.True(t, ok)
	assert.False(t, n1.AllPublished())
	n2, _ := tab.Node("node2")
	assert.True(t, n2.AllPublished())
}

func TestBuildCalicoDualStackWithBorrowedAddress(t *testing.T) {
	f := DefaultFabric()
	f.Installed = []netip.Prefix{netip.MustParsePrefix("10.233.64.0/26"), netip.MustParsePrefix("10.99.0.0/24")}
	tab := Build(mustInventory(t, "testdata/calico-inventory.yaml"), f, nil)
	// auto picks Calico blocks because the inventory has some; node-a's podCIDR is not used.
	assert.Equal(t, []string{
		"node-a 10.233.64.0/26 via 192.168.50.11 calico published",
		"node-b 10.233.64.3/32 via 192.168.50.12 calico-borrowed",
		"node-b 10.233.64.64/26 via 192.168.50.12 calico",
		"node-b fd00:233::/122 via fd00:50::12 calico",
	}, routeStrings(tab.Routes))
	assert.Empty(t, tab.Problems)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.99.0.0/24")}, tab.Stale)
}

func TestBuildSourcesAndNextHops(t *testing.T) {
	inv := mustInventory(t, "testdata/calico-inventory.yaml")
	f := DefaultFabric()
	f.Source = SourceNodes
	tab := Build(inv, f, nil)
	assert.Equal(t, []string{"node-a 10.244.0.0/24 via 192.168.50.11 node"}, routeStrings(tab.Routes))
	assert.Equal(t, []string{"node node-b: has no pod CIDR (spec.podCIDRs is empty): is the controller manager allocating node CIDRs?"}, problemStrings(tab.Problems))

	f.Source = SourceFlannel
	f.NextHop = NextHopFlannelPublicIP
	tab = Build(mustInventory(t, "testdata/flannel-inventory.yaml"), f, nil)
	assert.Equal(t, []string{
		"node1 10.131.10.0/24 via 10.132.2.22 flannel",
		"node2 10.131.73.0/24 via 10.132.2.23 flannel",
	}, routeStrings(tab.Routes))

	f.Source = SourceFlannel
	tab = Build(inv, f, nil)
	assert.Contains(t, problemStrings(tab.Problems), "node node-a: has no flannel annotations (flannel.alpha.coreos.com/*): is flannel running on it with the kube subnet manager?")
	assert.Contains(t, problemStrings(tab.Problems), "node node-a: has no IPv4 flannel-public-ip address for pod route 10.244.0.0/24: set podRoutes.nextHop to an address kind the node has")
}

func TestBuildProblems(t *testing.T) {
	nodes := []Node{
		{UID: "1", Name: "a", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		{UID: "2", Name: "b", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
		{UID: "3", Name: "c", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("fd00:1::/64")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.3")}},
		{UID: "4", Name: "a", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.7.0.0/24")}},
	}
	tab := Build(&Inventory{Nodes: nodes}, DefaultFabric(), nil)
	assert.ElementsMatch(t, []string{
		"node a: appears twice in the inventory (UIDs 1 and 4); using the first",
		"node c: has no IPv6 InternalIP address for pod route fd00:1::/64: set podRoutes.nextHop to an address kind the node has",
		"node c: pod prefix 10.1.2.0/24 is also assigned to node b; routing it to b only",
		"node b: pod prefix 10.1.2.0/24 overlaps 10.1.0.0/16 of node a",
	}, problemStrings(tab.Problems))
	assert.Equal(t, []string{
		"a 10.1.0.0/16 via 192.0.2.1 node",
		"b 10.1.2.0/24 via 192.0.2.2 node",
		"c fd00:1::/64 (no next hop) node",
	}, routeStrings(tab.Routes))

	blocks := []Block{
		{Name: "orphan", CIDR: netip.MustParsePrefix("10.9.0.0/26")},
		{Name: "virtual", CIDR: netip.MustParsePrefix("10.9.0.64/26"), Affinity: "virtual:x"},
		{Name: "ghost", CIDR: netip.MustParsePrefix("10.9.0.128/26"), Node: "gone", Affinity: "host:gone",
			Borrowed: []Borrowed{{IP: netip.MustParseAddr("10.9.0.130"), Node: "gone-too"}}},
		{Name: "deleted", CIDR: netip.MustParsePrefix("10.9.0.192/26"), Node: "a", Deleted: true},
	}
	tab = Build(&Inventory{Nodes: nodes[:1], Blocks: blocks}, DefaultFabric(), nil)
	assert.Equal(t, []string{
		"IPAMBlock orphan: block 10.9.0.0/26 has no affinity: its pods' addresses cannot be routed to a node",
		`IPAMBlock virtual: block 10.9.0.64/26 has affinity "virtual:x", not host:<node>: it cannot be routed to a node`,
		`IPAMBlock ghost: block 10.9.0.128/26 is affine to node "gone", which is not in the inventory`,
		`IPAMBlock ghost: address 10.9.0.130 is used on node "gone-too", which is not in the inventory`,
	}, problemStrings(tab.Problems))
	assert.Len(t, tab.Routes, 4, "unroutable blocks stay in the table so that verdicts can explain them")
}

type publishSet map[netip.Prefix]bool

func (p publishSet) Published(r Route) bool { return p[r.Prefix] }

func TestBuildPublishModes(t *testing.T) {
	inv := mustInventory(t, "testdata/flannel-inventory.yaml")
	count := func(tab *Table) (n int) {
		for _, r := range tab.Routes {
			if r.Published {
				n++
			}
		}
		return n
	}
	f := DefaultFabric()
	f.Publish = PublishCNI
	assert.Equal(t, 2, count(Build(inv, f, nil)))
	f.Publish = PublishNone
	assert.Equal(t, 0, count(Build(inv, f, nil)))

	f.Publish = PublishBGP
	f.BGP = &BGP{Within: []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16")}}
	tab := Build(inv, f, nil)
	assert.Equal(t, 0, count(tab))
	assert.Equal(t, []string{"publish: bgp, but no BGP publisher runs in this process: every pod route is reported unpublished"}, problemStrings(tab.Problems))
	tab = Build(inv, f, publishSet{netip.MustParsePrefix("10.131.10.0/24"): true})
	assert.Equal(t, 1, count(tab))
	assert.Empty(t, tab.Problems)
}

func TestBuildNilInputs(t *testing.T) {
	tab := Build(nil, nil, nil)
	assert.Empty(t, tab.Routes)
	assert.Equal(t, Unknown, tab.Check(netip.MustParseAddr("10.0.0.1")).Status)
}
