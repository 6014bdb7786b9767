package bgp

import (
	"context"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes"
)

// TestRunFollowsStore: the speaker follows the routes core. A node joining is announced with its
// InternalIP as next hop, a node outside within is not, a node leaving is withdrawn, and the
// reported status, used as the core's Publisher, marks exactly the announced routes published.
func TestRunFollowsStore(t *testing.T) {
	b := startBird(t, birdConfig{addr: netip.MustParseAddr("127.0.0.6"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	cfg := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within, AnnouncedTo: routes.AnnouncedToAny,
		Peers: []routes.BGPPeer{{Address: b.addr, ASN: 64513, Port: b.port}}}
	fab := routes.DefaultFabric()
	fab.Publish, fab.BGP = routes.PublishBGP, cfg
	store := routes.NewStore(fab, nil)
	s := startSpeaker(t, cfg)

	var mu sync.Mutex
	var last *Status
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, store, RunOptions{StatusInterval: 100 * time.Millisecond, Report: func(st *Status) {
			mu.Lock()
			last = st
			mu.Unlock()
		}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	node := func(uid, name, cidr, ip string) routes.Node {
		return routes.Node{UID: uid, Name: name, PodCIDRs: []netip.Prefix{netip.MustParsePrefix(cidr)}, InternalIPs: []netip.Addr{netip.MustParseAddr(ip)}}
	}
	nodes := []routes.Node{
		node("u1", "node-a", "10.131.10.0/24", "10.132.2.11"),
		node("u2", "node-b", "10.131.73.0/24", "10.132.2.12"),
		node("u3", "node-x", "10.200.1.0/24", "10.132.2.13"), // outside within
	}
	for _, n := range nodes {
		store.UpsertNode(n)
	}
	want := map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("10.131.10.0/24"): netip.MustParseAddr("10.132.2.11"),
		netip.MustParsePrefix("10.131.73.0/24"): netip.MustParseAddr("10.132.2.12"),
	}
	eventually(t, 30*time.Second, "BIRD to learn both nodes inside within", func() bool { return maps.Equal(b.routes(), want) })
	eventually(t, 10*time.Second, "the status to publish both and not node-x", func() bool {
		return tablePublished(nodes, fab, &mu, &last) == "10.131.10.0/24,10.131.73.0/24"
	})

	store.DeleteNode("u1")
	nodes = nodes[1:]
	delete(want, netip.MustParsePrefix("10.131.10.0/24"))
	eventually(t, 15*time.Second, "node-a's route withdrawn at BIRD", func() bool { return maps.Equal(b.routes(), want) })
	eventually(t, 10*time.Second, "node-a's route gone from the published set", func() bool {
		return tablePublished(nodes, fab, &mu, &last) == "10.131.73.0/24"
	})
	require.True(t, b.established())
}

// tablePublished builds the core's table with the last reported status as its Publisher and
// lists the published prefixes.
func tablePublished(nodes []routes.Node, fab *routes.Fabric, mu *sync.Mutex, last **Status) string {
	mu.Lock()
	st := *last
	mu.Unlock()
	if st == nil {
		return ""
	}
	var out []string
	for _, r := range routes.Build(&routes.Inventory{Nodes: nodes}, fab, st).Routes {
		if r.Published {
			out = append(out, r.Prefix.String())
		}
	}
	return strings.Join(out, ",")
}
