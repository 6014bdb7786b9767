package render

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes"
)

// -update rewrites testdata/peer/*; read the diff as a change to what routers are told.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/peer")

func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", "peer", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "no golden file: run go test ./routes/render -run RenderPeer -update")
	assert.Equal(t, string(want), got, "output differs from %s", file)
}

// bgpFabric is routes/testdata/bgp-fabric.yaml: three peers (eBGP with a password, eBGP
// multihop on port 1179 with its own hold time, iBGP), within IPv4 and IPv6, graceful restart.
func bgpFabric(t *testing.T) *routes.BGP {
	t.Helper()
	f, err := routes.LoadFabric("../testdata/bgp-fabric.yaml")
	require.NoError(t, err)
	require.NotNil(t, f.BGP)
	return f.BGP
}

func v4Only(b *routes.BGP) *routes.BGP {
	c := *b
	c.Within = []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16"), netip.MustParsePrefix("10.200.7.7/32")}
	c.GracefulRestart = 0
	return &c
}

func renderPeers(t *testing.T, f Format, ss []Session) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, RenderPeers(&b, f, ss))
	return b.String()
}

// TestPeerGolden pins every router dialect for every peer of the BGP fabric, and for an
// IPv4-only within with a host prefix and two speaker addresses (a failover pair).
func TestRenderPeerGolden(t *testing.T) {
	b := bgpFabric(t)
	all, err := PeerSessions(b, netip.Addr{}, nil)
	require.NoError(t, err)
	require.Len(t, all, 3)
	pair, err := PeerSessions(v4Only(b), netip.MustParseAddr("10.132.2.254"),
		[]netip.Addr{netip.MustParseAddr("10.132.2.11"), netip.MustParseAddr("10.132.2.12"), netip.MustParseAddr("fd00:132::11")})
	require.NoError(t, err)
	for f := range peerDialects {
		t.Run(string(f), func(t *testing.T) {
			goldenFile(t, string(f)+".txt", renderPeers(t, f, all))
			goldenFile(t, string(f)+"-v4-pair.txt", renderPeers(t, f, pair))
		})
	}
}

func TestRenderPeerSessions(t *testing.T) {
	b := bgpFabric(t)
	ss, err := PeerSessions(b, netip.MustParseAddr("10.132.3.254"), nil)
	require.NoError(t, err)
	require.Len(t, ss, 1)
	s := ss[0]
	assert.Equal(t, 1, s.Index)
	assert.Equal(t, []netip.Addr{b.RouterID}, s.Speakers, "without --speaker-address the router ID stands in")
	assert.Equal(t, 1179, s.Port)
	assert.Equal(t, 2, s.Multihop)
	assert.Equal(t, uint32(64513), s.RouterASN)
	assert.Equal(t, uint32(64512), s.SpeakerASN)
	assert.False(t, s.IBGP())
	assert.Equal(t, []string{"ipv4", "ipv6"}, s.Families())

	ss, err = PeerSessions(b, netip.MustParseAddr("10.132.2.253"), nil)
	require.NoError(t, err)
	assert.True(t, ss[0].IBGP())

	_, err = PeerSessions(b, netip.MustParseAddr("10.132.9.9"), nil)
	require.EqualError(t, err, "10.132.9.9 is not a router of spec.bgp.peers; the configured peers are 10.132.2.254, 10.132.3.254, 10.132.2.253")

	_, err = PeerSessions(nil, netip.Addr{}, nil)
	require.ErrorContains(t, err, "no spec.bgp")

	// Only IPv6 speaker addresses for IPv4 peers: the neighbor is unknown, and the error says how.
	_, err = PeerSessions(b, netip.Addr{}, []netip.Addr{netip.MustParseAddr("fd00:132::10")})
	require.ErrorContains(t, err, "spec.bgp.peers[0] (10.132.2.254) is an IPv4 peer: the router needs the speaker's IPv4 session address as its neighbor; pass it with --speaker-address")

	// An IPv6 peer has no default: the router ID is IPv4.
	v6 := *b
	v6.Peers = []routes.BGPPeer{{Address: netip.MustParseAddr("fd00:132::fe"), ASN: 64513, Port: 179}}
	_, err = PeerSessions(&v6, netip.Addr{}, nil)
	require.ErrorContains(t, err, "is an IPv6 peer")
	ss, err = PeerSessions(&v6, netip.Addr{}, []netip.Addr{netip.MustParseAddr("10.132.2.10"), netip.MustParseAddr("fd00:132::10")})
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("fd00:132::10")}, ss[0].Speakers, "only addresses of the peer's family")

	_, err = PeerSessions(b, netip.Addr{}, []netip.Addr{netip.MustParseAddr("fe80::1%eth0")})
	require.ErrorContains(t, err, "speaker address fe80::1%eth0")
}

func TestRenderPeersRejects(t *testing.T) {
	ss, err := PeerSessions(bgpFabric(t), netip.MustParseAddr("10.132.2.254"), nil)
	require.NoError(t, err)
	for _, f := range []Format{Linux, NetTools} {
		var b bytes.Buffer
		err := RenderPeers(&b, f, ss)
		require.ErrorContains(t, err, "use -o frr or -o bird")
		assert.Empty(t, b.String())
	}
	var b bytes.Buffer
	require.ErrorContains(t, RenderPeers(&b, "vyos", ss), `unknown format "vyos"`)
	bad := ss[0]
	bad.Within = []netip.Prefix{netip.MustParsePrefix("10.131.0.1/16")}
	require.ErrorContains(t, RenderPeers(&b, FRR, []Session{bad}), "10.131.0.1/16 is not a canonical network prefix")
	bad = ss[0]
	bad.Within = nil
	require.ErrorContains(t, RenderPeers(&b, BIRD, []Session{bad}), "import filter would accept nothing")
	assert.Empty(t, b.String(), "nothing is written when a session is refused")
}

// TestPeerNeverPrintsSecrets: the password file's content is never read, let alone printed;
// every dialect names the file and writes the placeholder where the password goes.
func TestRenderPeerNeverPrintsSecrets(t *testing.T) {
	b := bgpFabric(t)
	pw := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret-md5\n"), 0o600))
	b.Peers[0].PasswordFile = pw
	ss, err := PeerSessions(b, b.Peers[0].Address, nil)
	require.NoError(t, err)
	for f := range peerDialects {
		out := renderPeers(t, f, ss)
		assert.NotContains(t, out, "s3cret", f)
		assert.Contains(t, out, PasswordPlaceholder, f)
		assert.Contains(t, out, pw, f)
	}
	ss, err = PeerSessions(b, b.Peers[2].Address, nil)
	require.NoError(t, err)
	for f := range peerDialects {
		assert.NotContains(t, renderPeers(t, f, ss), PasswordPlaceholder, "%s: a peer without passwordFile gets no password line", f)
	}
}

// TestPeerFilterBounds: each within prefix is accepted up to the longest prefix of its family,
// a host prefix exactly, in every dialect's own words.
func TestRenderPeerFilterBounds(t *testing.T) {
	ss, err := PeerSessions(v4Only(bgpFabric(t)), netip.MustParseAddr("10.132.2.254"), nil)
	require.NoError(t, err)
	want := map[Format][]string{
		CiscoIOS:  {"ip prefix-list DUBBOREACH-IN seq 10 permit 10.131.0.0/16 le 32\n", "ip prefix-list DUBBOREACH-IN seq 20 permit 10.200.7.7/32\n"},
		CiscoNXOS: {"ip prefix-list DUBBOREACH-IN seq 10 permit 10.131.0.0/16 le 32\n", "ip prefix-list DUBBOREACH-IN seq 20 permit 10.200.7.7/32\n"},
		FRR:       {"ip prefix-list DUBBOREACH-IN seq 10 permit 10.131.0.0/16 le 32\n", "ip prefix-list DUBBOREACH-IN seq 20 permit 10.200.7.7/32\n"},
		Junos:     {"route-filter 10.131.0.0/16 orlonger\n", "route-filter 10.200.7.7/32 orlonger\n", "term reject then reject\n"},
		Huawei:    {"ip ip-prefix DUBBOREACH-IN index 10 permit 10.131.0.0 16 less-equal 32\n", "ip ip-prefix DUBBOREACH-IN index 20 permit 10.200.7.7 32\n"},
		H3C:       {"ip prefix-list DUBBOREACH-IN index 10 permit 10.131.0.0 16 less-equal 32\n", "ip prefix-list DUBBOREACH-IN index 20 permit 10.200.7.7 32\n"},
		BIRD:      {"if net ~ [ 10.131.0.0/16{16,32}, 10.200.7.7/32 ] then accept;\n\treject;\n"},
	}
	for f, lines := range want {
		out := renderPeers(t, f, ss)
		for _, l := range lines {
			assert.Contains(t, out, l, f)
		}
		assert.False(t, strings.Contains(out, "ipv6") || strings.Contains(out, "inet6"), "%s: no IPv6 family without IPv6 in within:\n%s", f, out)
	}
}
