package bgp

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/test/harness"
)

// TestStatusObjects, end to end on a real API server and a real BIRD: the speaker announces,
// writes dubboreach-bgp (ConfigMap status.json + Lease), and another process's store, fed by a
// Reader, reads the announced route as published; a node's withdrawal unpublishes it; a speaker
// that stops renewing its Lease (dead) unpublishes everything when the Lease runs out.
func TestStatusObjects(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	ctx := harness.Context(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	const ns = "default"

	b := startBird(t, birdConfig{addr: netip.MustParseAddr("127.0.0.10"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	cfg := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within, AnnouncedTo: routes.AnnouncedToAny,
		Peers: []routes.BGPPeer{{Address: b.addr, ASN: 64513, Port: b.port}}}
	fab := routes.DefaultFabric()
	fab.Publish, fab.BGP = routes.PublishBGP, cfg
	nodes := []routes.Node{
		{UID: "u1", Name: "node-a", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.131.10.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.11")}},
		{UID: "u2", Name: "node-b", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.131.73.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.12")}},
	}

	// The speaker's process.
	speakerStore := routes.NewStore(fab, nil)
	for _, n := range nodes {
		speakerStore.UpsertNode(n)
	}
	s := startSpeaker(t, cfg)
	w := &Writer{Client: cs, Namespace: ns, Identity: "publish-0", LeaseTime: 3 * time.Second}
	sctx, stopSpeaker := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(sctx, speakerStore, RunOptions{StatusInterval: 200 * time.Millisecond, Report: func(st *Status) {
			if err := w.Write(sctx, st); err != nil && sctx.Err() == nil {
				t.Errorf("writing status: %v", err)
			}
		}})
	}()
	t.Cleanup(func() { stopSpeaker(); <-done })

	// Another process (webhook, auditor): same fabric and nodes, the publisher from the objects.
	store := routes.NewStore(fab, nil)
	for _, n := range nodes {
		store.UpsertNode(n)
	}
	errs := make(chan error, 10)
	r := &Reader{Client: cs, Namespace: ns, Store: store, OnError: func(err error) { errs <- err }}
	go func() { _ = r.Start(ctx) }()
	verdict := func(addr string) routes.Reason {
		return store.Table().Check(netip.MustParseAddr(addr)).Reason
	}
	eventually(t, 30*time.Second, "both routes published through the objects", func() bool {
		return verdict("10.131.10.5") == routes.ReasonPublishedPodRoute && verdict("10.131.73.5") == routes.ReasonPublishedPodRoute
	})
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, ObjectName, metav1.GetOptions{})
	require.NoError(t, err)
	st, err := ParseStatus([]byte(cm.Data[StatusKey]))
	require.NoError(t, err)
	require.Len(t, st.Routes, 2)

	// node-a leaves: withdrawn at BIRD, unpublished for the reader; node-b stays published.
	speakerStore.DeleteNode("u1")
	eventually(t, 30*time.Second, "node-a unpublished, node-b still published", func() bool {
		_, atBird := b.routes()[netip.MustParsePrefix("10.131.10.0/24")]
		return !atBird && verdict("10.131.10.5") == routes.ReasonUnpublishedPodRoute && verdict("10.131.73.5") == routes.ReasonPublishedPodRoute
	})

	// The speaker dies without a word (no status, no Lease renewal; its last ConfigMap stays):
	// once the Lease runs out, nothing is published.
	stopSpeaker()
	<-done
	eventually(t, 15*time.Second, "node-b unpublished after the speaker's Lease ran out", func() bool {
		return verdict("10.131.73.5") == routes.ReasonUnpublishedPodRoute
	})
	require.Empty(t, errs, "the reader found an unreadable status")
}

// TestReaderExplains: on a real API server, a reader (and ReadOnce, for one-shot commands) says
// why nothing is published: no status yet, no Established session, an unreadable document, a
// heartbeat that ran out; and publishes exactly what a live status says.
func TestReaderExplains(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	ctx := harness.Context(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	const ns = "default"
	fab := routes.DefaultFabric()
	fab.Publish = routes.PublishBGP
	fab.BGP = &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within, AnnouncedTo: routes.AnnouncedToAny,
		Peers: []routes.BGPPeer{{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513}}}
	store := routes.NewStore(fab, nil)
	store.UpsertNode(routes.Node{UID: "u1", Name: "node-a", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.131.10.0/24")},
		InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.11")}})
	r := &Reader{Client: cs, Namespace: ns, Store: store}
	go func() { _ = r.Start(ctx) }()

	problems := func(p routes.Publisher) string {
		var tab *routes.Table
		if p == nil {
			tab = store.Table()
		} else {
			inv := &routes.Inventory{Nodes: []routes.Node{{UID: "u1", Name: "node-a", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.131.10.0/24")},
				InternalIPs: []netip.Addr{netip.MustParseAddr("10.132.2.11")}}}}
			tab = routes.Build(inv, fab, p)
		}
		var msgs []string
		for _, pr := range tab.Problems {
			msgs = append(msgs, pr.Message)
		}
		return strings.Join(msgs, "\n")
	}
	published := func(p routes.Publisher) bool {
		if p == nil {
			return store.Table().Check(netip.MustParseAddr("10.131.10.5")).Reason == routes.ReasonPublishedPodRoute
		}
		return p.Published(routes.Route{Prefix: netip.MustParsePrefix("10.131.10.0/24"), NextHop: netip.MustParseAddr("10.132.2.11")})
	}
	readOnce := func() routes.Publisher {
		p, err := ReadOnce(ctx, cs, ns)
		require.NoError(t, err)
		return p
	}

	eventually(t, 30*time.Second, "the reader synced", r.Synced)
	assert.Contains(t, problems(nil), "has written no status (ConfigMap default/dubboreach-bgp is missing")
	assert.Contains(t, problems(readOnce()), "has written no status")
	assert.False(t, published(nil))

	since := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	w := &Writer{Client: cs, Namespace: ns, Identity: "publish-0", LeaseTime: 3 * time.Second}
	down := &Status{AnnouncedTo: routes.AnnouncedToAny, Peers: []PeerStatus{{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513, State: "active", Since: since}}}
	require.NoError(t, w.Write(ctx, down))
	eventually(t, 10*time.Second, "no Established session explained", func() bool {
		return strings.Contains(problems(nil), "no BGP session of the speaker is Established: 10.132.2.254 (AS 64513) active since 2026-12-06T01:00:00Z")
	})

	up := &Status{AnnouncedTo: routes.AnnouncedToAny,
		Peers:  []PeerStatus{{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513, State: "established", Since: since, Announced: 1}},
		Routes: []AnnouncedRoute{{Prefix: netip.MustParsePrefix("10.131.10.0/24"), NextHop: netip.MustParseAddr("10.132.2.11"), Peers: []netip.Addr{netip.MustParseAddr("10.132.2.254")}}}}
	require.NoError(t, w.Write(ctx, up))
	eventually(t, 10*time.Second, "published through the objects", func() bool { return published(nil) && problems(nil) == "" })
	assert.True(t, published(readOnce()), "ReadOnce reads the live status")
	assert.Empty(t, problems(readOnce()))

	// No renewal: the heartbeat runs out, for the watching reader (by its timer, no event) and
	// for a one-shot read alike.
	eventually(t, 15*time.Second, "the heartbeat ran out", func() bool {
		return !published(nil) && strings.Contains(problems(nil), `heartbeat (Lease default/dubboreach-bgp, holder "publish-0") ran out at`)
	})
	assert.False(t, published(readOnce()))
	assert.Contains(t, problems(readOnce()), "ran out at")

	// A document that does not parse: unpublished, and the table says why.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, ObjectName, metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data[StatusKey] = `{"announcedTo":"some"}`
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, w.renew(ctx))
	eventually(t, 10*time.Second, "an unreadable status explained", func() bool {
		return strings.Contains(problems(nil), `status cannot be read (ConfigMap default/dubboreach-bgp: BGP status: announcedTo "some" is neither any nor all)`)
	})
}
