package bgp

import (
	"context"
	"encoding/json"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes"
)

var (
	speakerAddr = netip.MustParseAddr("127.0.0.1")
	within      = []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16")}
)

func route(prefix, nextHop, node string) routes.Route {
	r := routes.Route{Prefix: netip.MustParsePrefix(prefix), Node: node}
	if nextHop != "" {
		r.NextHop = netip.MustParseAddr(nextHop)
	}
	return r
}

func startSpeaker(t testing.TB, cfg *routes.BGP) *Speaker {
	t.Helper()
	s, err := Start(context.Background(), cfg, Options{LocalAddress: speakerAddr, ConnectRetry: time.Second, Log: testr.NewWithInterface(t, testr.Options{})})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

// TestSpeakerBIRD: against a real BIRD, routes inside within appear with the node as next hop,
// nothing outside within is ever sent, a changed next hop replaces the old one, and a node's
// route is withdrawn when it goes.
func TestSpeakerBIRD(t *testing.T) {
	b := startBird(t, birdConfig{addr: netip.MustParseAddr("127.0.0.2"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	cfg := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within,
		Peers: []routes.BGPPeer{{Address: b.addr, ASN: 64513, Port: b.port, HoldTime: 9 * time.Second}}}
	s := startSpeaker(t, cfg)
	eventually(t, 30*time.Second, "the BIRD session to be Established", b.established)

	res, err := s.Sync([]routes.Route{
		route("10.131.10.0/24", "10.132.2.11", "node-a"),
		route("10.131.73.0/24", "10.132.2.12", "node-b"),
		route("10.131.9.7/32", "10.132.2.12", "node-b"), // a Calico borrowed address
		route("10.200.0.0/24", "10.132.2.13", "node-c"), // outside within
		route("10.131.99.0/24", "", "node-d"),           // no next hop
		route("fd00:131::/64", "10.132.2.11", "node-a"), // family mismatch
	})
	require.NoError(t, err)
	assert.Equal(t, SyncResult{Announced: 3, Skipped: 3}, res)
	want := map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("10.131.10.0/24"): netip.MustParseAddr("10.132.2.11"),
		netip.MustParsePrefix("10.131.73.0/24"): netip.MustParseAddr("10.132.2.12"),
		netip.MustParsePrefix("10.131.9.7/32"):  netip.MustParseAddr("10.132.2.12"),
	}
	eventually(t, 15*time.Second, "BIRD to hold exactly the three routes inside within", func() bool {
		return maps.Equal(b.routes(), want)
	})

	// node-b moves to another address and node-a leaves.
	res, err = s.Sync([]routes.Route{
		route("10.131.73.0/24", "10.132.2.22", "node-b"),
		route("10.131.9.7/32", "10.132.2.12", "node-b"),
	})
	require.NoError(t, err)
	assert.Equal(t, SyncResult{Announced: 1, Withdrawn: 1, Kept: 1}, res)
	want = map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("10.131.73.0/24"): netip.MustParseAddr("10.132.2.22"),
		netip.MustParsePrefix("10.131.9.7/32"):  netip.MustParseAddr("10.132.2.12"),
	}
	eventually(t, 15*time.Second, "BIRD to see node-a withdrawn and node-b's new next hop", func() bool {
		return maps.Equal(b.routes(), want)
	})

	res, err = s.Sync(nil)
	require.NoError(t, err)
	assert.Equal(t, SyncResult{Withdrawn: 2}, res)
	eventually(t, 15*time.Second, "BIRD to hold no route", func() bool { return len(b.routes()) == 0 })
}

// TestSpeakerBIRDPassword: a TCP-MD5 session (RFC 2385) with BIRD, the password read from the
// peer's passwordFile; with a wrong password the session never comes up.
func TestSpeakerBIRDPassword(t *testing.T) {
	b := startBird(t, birdConfig{addr: netip.MustParseAddr("127.0.0.3"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		password: "s3cret-md5", nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(good, []byte("s3cret-md5\n"), 0o600))
	require.NoError(t, os.WriteFile(bad, []byte("wrong\n"), 0o600))
	cfg := func(file string) *routes.BGP {
		return &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within,
			Peers: []routes.BGPPeer{{Address: b.addr, ASN: 64513, Port: b.port, PasswordFile: file}}}
	}
	s := startSpeaker(t, cfg(good))
	eventually(t, 30*time.Second, "the MD5 session to be Established", b.established)
	_, err := s.Sync([]routes.Route{route("10.131.10.0/24", "10.132.2.11", "node-a")})
	require.NoError(t, err)
	eventually(t, 15*time.Second, "the route over the MD5 session", func() bool {
		return b.routes()[netip.MustParsePrefix("10.131.10.0/24")] == netip.MustParseAddr("10.132.2.11")
	})
	s.Stop()
	eventually(t, 30*time.Second, "the session to drop after Stop", func() bool { return !b.established() })

	s2 := startSpeaker(t, cfg(bad))
	// Established is what we wait for elsewhere; here it must not happen within a few retries.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		require.False(t, b.established(), "a session with the wrong TCP-MD5 password came up")
		time.Sleep(200 * time.Millisecond)
	}
	_ = s2
}

func TestStartErrors(t *testing.T) {
	_, err := Start(context.Background(), nil, Options{})
	require.ErrorContains(t, err, "spec.bgp")
	cfg := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.0.0.1"), Within: within,
		Peers: []routes.BGPPeer{{Address: netip.MustParseAddr("127.0.0.9"), ASN: 64513, Port: 179, PasswordFile: filepath.Join(t.TempDir(), "missing")}}}
	_, err = Start(context.Background(), cfg, Options{})
	require.ErrorContains(t, err, "spec.bgp.peers[0] (127.0.0.9): passwordFile")
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	cfg.Peers[0].PasswordFile = empty
	_, err = Start(context.Background(), cfg, Options{})
	require.ErrorContains(t, err, "is empty")
}

// TestStatusBIRD: the status says a route is published only while it sits in an Established
// peer's Adj-RIB-Out with the route's own next hop; a peer that goes away unpublishes it.
func TestStatusBIRD(t *testing.T) {
	b := startBird(t, birdConfig{addr: netip.MustParseAddr("127.0.0.4"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	down := netip.MustParseAddr("127.0.0.5") // a configured peer nothing listens on
	cfg := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within, AnnouncedTo: routes.AnnouncedToAny,
		Peers: []routes.BGPPeer{{Address: b.addr, ASN: 64513, Port: b.port}, {Address: down, ASN: 64513, Port: freePort(t, down)}}}
	s := startSpeaker(t, cfg)
	eventually(t, 30*time.Second, "the BIRD session to be Established", b.established)
	a := route("10.131.10.0/24", "10.132.2.11", "node-a")
	_, err := s.Sync([]routes.Route{a})
	require.NoError(t, err)

	var st *Status
	eventually(t, 15*time.Second, "the route in BIRD's Adj-RIB-Out", func() bool {
		st, err = s.Status()
		require.NoError(t, err)
		return st.Published(a)
	})
	assert.Equal(t, 1, st.PeersUp())
	assert.Equal(t, []AnnouncedRoute{{Prefix: a.Prefix, NextHop: a.NextHop, Peers: []netip.Addr{b.addr}}}, st.Routes)
	assert.Equal(t, "established", st.Peers[0].State)
	assert.Equal(t, 1, st.Peers[0].Announced)
	assert.NotEqual(t, "established", st.Peers[1].State)
	moved := a
	moved.NextHop = netip.MustParseAddr("10.132.2.99")
	assert.False(t, st.Published(moved), "published with another next hop than the one announced")
	assert.False(t, st.Published(route("10.131.73.0/24", "10.132.2.12", "node-b")), "never announced")

	// announcedTo: all needs the second peer too.
	all := *st
	all.AnnouncedTo = routes.AnnouncedToAll
	js, err := json.Marshal(&all)
	require.NoError(t, err)
	parsed, err := ParseStatus(js)
	require.NoError(t, err)
	assert.False(t, parsed.Published(a), "announcedTo: all with one of two peers down")
	parsed.AnnouncedTo = routes.AnnouncedToAny
	assert.True(t, parsed.Published(a), "the JSON round trip keeps the route")

	b.stop()
	eventually(t, 30*time.Second, "the route to read unpublished once BIRD is gone", func() bool {
		st, err = s.Status()
		require.NoError(t, err)
		return !st.Published(a) && st.PeersUp() == 0
	})
}

func TestParseStatusRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":        "{",
		"bad announcedTo": `{"announcedTo":"most"}`,
		"host bits":       `{"announcedTo":"any","routes":[{"prefix":"10.131.10.1/24","nextHop":"10.0.0.1"}]}`,
		"no next hop":     `{"announcedTo":"any","routes":[{"prefix":"10.131.10.0/24"}]}`,
		"bad prefix":      `{"announcedTo":"any","routes":[{"prefix":"nonsense","nextHop":"10.0.0.1"}]}`,
	} {
		_, err := ParseStatus([]byte(doc))
		assert.Error(t, err, name)
	}
	var nilStatus *Status
	assert.False(t, nilStatus.Published(route("10.131.10.0/24", "10.132.2.11", "a")))
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(`{"announcedTo":"any","peers":[{"address":"10.0.0.1","state":"established"}],"routes":[{"prefix":"10.131.10.0/24","nextHop":"10.0.0.1","peers":["10.0.0.1"]}]}`))
	f.Add([]byte(`{"announcedTo":"all","routes":[{"prefix":"::/0","nextHop":"::1"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatus(data)
		if err != nil {
			return
		}
		for _, r := range st.Routes {
			_ = st.Published(routes.Route{Prefix: r.Prefix, NextHop: r.NextHop})
		}
		_ = st.PeersUp()
	})
}

// TestSpeakerTwoPeers: BIRD and gobgpd at once, one eBGP, one iBGP: both get the same routes
// with the node's next hop, both lose a withdrawn one; announcedTo: all is satisfied only while
// both have them.
func TestSpeakerTwoPeers(t *testing.T) {
	b := startBird(t, birdConfig{addr: netip.MustParseAddr("127.0.0.7"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	g := startGobgpd(t, netip.MustParseAddr("127.0.0.8"), 64512, speakerAddr, 64512)
	cfg := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within, AnnouncedTo: routes.AnnouncedToAll,
		Peers: []routes.BGPPeer{{Address: b.addr, ASN: 64513, Port: b.port}, {Address: g.addr, ASN: 64512, Port: g.port}}}
	s := startSpeaker(t, cfg)
	eventually(t, 30*time.Second, "both sessions Established", func() bool { return b.established() && g.established() })
	a, bb := route("10.131.10.0/24", "10.132.2.11", "node-a"), route("10.131.73.0/24", "10.132.2.12", "node-b")
	_, err := s.Sync([]routes.Route{a, bb})
	require.NoError(t, err)
	want := map[netip.Prefix]netip.Addr{a.Prefix: a.NextHop, bb.Prefix: bb.NextHop}
	eventually(t, 15*time.Second, "both routers to hold both routes via their nodes", func() bool {
		return maps.Equal(b.routes(), want) && maps.Equal(g.routes(), want)
	})
	eventually(t, 10*time.Second, "announcedTo: all to publish both", func() bool {
		st, err := s.Status()
		return err == nil && st.Published(a) && st.Published(bb)
	})
	_, err = s.Sync([]routes.Route{bb})
	require.NoError(t, err)
	delete(want, a.Prefix)
	eventually(t, 15*time.Second, "node-a withdrawn at both routers", func() bool {
		return maps.Equal(b.routes(), want) && maps.Equal(g.routes(), want)
	})
}
