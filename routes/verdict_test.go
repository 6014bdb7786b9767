package routes

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckEveryReason(t *testing.T) {
	f := mustFabric(t, "testdata/flannel-fabric.yaml")
	f.Reachable = append(f.Reachable, netip.MustParsePrefix("2001:db8:50::/48"), netip.MustParsePrefix("10.131.200.0/24"))
	inv := mustInventory(t, "testdata/flannel-inventory.yaml")
	// A node whose route cannot get a next hop (no IPv6 address for its IPv6 pod CIDR).
	inv.Nodes = append(inv.Nodes, Node{UID: "3", Name: "node3", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("fd00:131:3::/64")}, InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.24")}},
		// A pod CIDR the fabric also lists as reachable: the explicit statement wins.
		Node{UID: "4", Name: "node4", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.131.200.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.25")}},
		// A pod CIDR inside the docker bridge range: unreachable wins over everything.
		Node{UID: "5", Name: "node5", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("172.17.5.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.26")}})
	tab := Build(inv, f, nil)

	tests := []struct {
		addr    string
		status  Status
		reason  Reason
		node    string
		prefix  string
		missing string
	}{
		{"10.131.10.5", Unreachable, ReasonUnpublishedPodRoute, "node1", "10.131.10.0/24", "10.131.10.0/24 via 10.132.2.22"},
		{"10.131.73.9", Reachable, ReasonPublishedPodRoute, "node2", "10.131.73.0/24", ""},
		{"10.132.2.22", Reachable, ReasonExternalNetwork, "", "10.132.2.0/24", ""},
		{"2001:db8:50::7", Reachable, ReasonExternalNetwork, "", "2001:db8:50::/48", ""},
		{"10.131.200.7", Reachable, ReasonExternalNetwork, "", "10.131.200.0/24", ""},
		{"172.17.0.2", Unreachable, ReasonNeverReachable, "", "172.17.0.0/16", ""},
		{"172.17.5.9", Unreachable, ReasonNeverReachable, "", "172.17.0.0/16", ""},
		{"10.96.0.10", Unreachable, ReasonServiceNetwork, "", "10.96.0.0/12", ""},
		{"fd00:131:3::9", Unreachable, ReasonNoNextHop, "node3", "fd00:131:3::/64", "fd00:131:3::/64 (no next hop)"},
		{"127.0.0.1", Unreachable, ReasonLoopback, "", "", ""},
		{"::1", Unreachable, ReasonLoopback, "", "", ""},
		{"169.254.1.1", Unreachable, ReasonLinkLocal, "", "", ""},
		{"fe80::1", Unreachable, ReasonLinkLocal, "", "", ""},
		{"0.0.0.0", Unreachable, ReasonUnspecified, "", "", ""},
		{"::", Unreachable, ReasonUnspecified, "", "", ""},
		{"224.0.0.251", Unreachable, ReasonLinkLocal, "", "", ""},
		{"239.1.1.1", Unreachable, ReasonMulticast, "", "", ""},
		{"ff05::2", Unreachable, ReasonMulticast, "", "", ""},
		{"8.8.8.8", Unknown, ReasonNoMatchingNetwork, "", "", ""},
		{"::ffff:10.131.10.5", Unreachable, ReasonUnpublishedPodRoute, "node1", "10.131.10.0/24", "10.131.10.0/24 via 10.132.2.22"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			v := tab.Check(netip.MustParseAddr(tc.addr))
			assert.Equal(t, tc.status, v.Status)
			assert.Equal(t, tc.reason, v.Reason)
			assert.Equal(t, tc.node, v.Node())
			assert.Equal(t, tc.prefix, prefixOrEmpty(v.Prefix))
			if tc.missing == "" {
				assert.Nil(t, v.MissingRoute())
			} else {
				require.NotNil(t, v.MissingRoute())
				assert.Equal(t, tc.missing, v.MissingRoute().String())
			}
		})
	}
}

func prefixOrEmpty(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		addr    string
		port    uint16
		wantErr string
	}{
		{in: "10.131.10.5", addr: "10.131.10.5"},
		{in: "10.131.10.5:20880", addr: "10.131.10.5", port: 20880},
		{in: "2001:db8::5", addr: "2001:db8::5"},
		{in: "[2001:db8::5]", addr: "2001:db8::5"},
		{in: "[2001:db8::5]:20880", addr: "2001:db8::5", port: 20880},
		{in: "fe80::1%eth0", addr: "fe80::1"},
		{in: "::ffff:10.0.0.1", addr: "10.0.0.1"},
		{in: "", wantErr: "empty address"},
		{in: "provider.example.com", wantErr: "not an IP address (hostnames are not resolved)"},
		{in: "provider.example.com:20880", wantErr: "not an IP address"},
		{in: "10.0.0.1:0", wantErr: `port "0"`},
		{in: "10.0.0.1:65536", wantErr: `port "65536"`},
		{in: "10.0.0.1:http", wantErr: `port "http"`},
		{in: "[2001:db8::5", wantErr: "missing ]"},
		{in: "[2001:db8::5]x", wantErr: "unexpected"},
		{in: "[10.0.0.1:80", wantErr: "missing ]"},
		{in: "[nonsense]:80", wantErr: "not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			a, p, err := ParseAddress(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.addr, a.String())
			assert.Equal(t, tc.port, p)
		})
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	tab := Build(mustInventory(t, "testdata/flannel-inventory.yaml"), mustFabric(t, "testdata/flannel-fabric.yaml"), nil)
	addr := netip.MustParseAddr("10.131.10.5")
	allocs := testing.AllocsPerRun(100, func() { _ = tab.Check(addr) })
	assert.Zero(t, allocs)
}

func TestStoreReplacesReRegisteredNode(t *testing.T) {
	s := NewStore(DefaultFabric(), nil)
	old := Node{UID: "old", Name: "n1", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.1.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	s.UpsertNode(old)
	require.Len(t, s.Table().Routes, 1)

	// The node is deleted and registers again with a new UID and a new CIDR; the new object
	// arrives before the delete of the old one (informers may deliver it so after a relist).
	s.UpsertNode(Node{UID: "new", Name: "n1", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.9.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
	assert.Equal(t, []string{"n1 10.1.9.0/24 via 192.0.2.1 node"}, routeStrings(s.Table().Routes))
	s.DeleteNode("old") // the late delete of the old incarnation must not remove the new one
	assert.Equal(t, []string{"n1 10.1.9.0/24 via 192.0.2.1 node"}, routeStrings(s.Table().Routes))
	assert.Equal(t, Unknown, s.Table().Check(netip.MustParseAddr("10.1.1.5")).Status, "no stale route for the old CIDR")
	s.DeleteNode("new")
	assert.Empty(t, s.Table().Routes)

	s.UpsertBlock(Block{Name: "b", CIDR: netip.MustParsePrefix("10.2.0.0/26"), Node: "n1"})
	assert.Len(t, s.Table().Routes, 1)
	s.DeleteBlock("b")
	assert.Empty(t, s.Table().Routes)
}

func TestStoreSignalsChanges(t *testing.T) {
	s := NewStore(nil, nil)
	select {
	case <-s.Changed():
		t.Fatal("a new store has no change to signal")
	default:
	}
	s.UpsertNode(Node{UID: "1", Name: "a"})
	s.UpsertNode(Node{UID: "2", Name: "b"})
	<-s.Changed() // coalesced: one signal for both
	select {
	case <-s.Changed():
		t.Fatal("two updates before a read should coalesce into one signal")
	default:
	}
	s.SetFabric(&Fabric{Source: SourceNodes, NextHop: NextHopInternalIP, Publish: PublishCNI})
	<-s.Changed()
	assert.Equal(t, PublishCNI, s.Table().Fabric.Publish)
}

// Readers ask for verdicts while writers change the inventory: run with -race.
func TestStoreConcurrentReadersAndWriters(t *testing.T) {
	s := NewStore(DefaultFabric(), nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := netip.MustParseAddr("10.1.0.5")
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := s.Table().Check(addr)
				if v.Status == Reachable {
					t.Error("nothing is published; no verdict may say reachable")
					return
				}
			}
		}()
	}
	for i := 0; i < 500; i++ {
		s.UpsertNode(Node{UID: "u", Name: "n", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
		s.DeleteNode("u")
	}
	close(stop)
	wg.Wait()
}
