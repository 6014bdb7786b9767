package render

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPeerParsesInBIRDAndFRR feeds the router side of every peer of the BGP fabric, and of the
// IPv4 failover pair, to BIRD's parser (bird -p) and FRR's (vtysh --dryrun), one router at a
// time as an operator would paste it. routes/bgp's TestBGPRouterSideBIRD and TestBGPRouterSideFRR run
// the same output on the real daemons with a real speaker session.
func TestRenderPeerParsesInBIRDAndFRR(t *testing.T) {
	bird := tool(t, "bird", "bird2")
	vtysh := tool(t, "vtysh", "frr")
	b := bgpFabric(t)
	all, err := PeerSessions(b, netip.Addr{}, nil)
	require.NoError(t, err)
	pair, err := PeerSessions(v4Only(b), netip.MustParseAddr("10.132.2.254"),
		[]netip.Addr{netip.MustParseAddr("10.132.2.11"), netip.MustParseAddr("10.132.2.12")})
	require.NoError(t, err)
	for _, s := range append(all, pair...) {
		t.Run(s.Router.String()+"/"+strings.Join(s.Families(), "+"), func(t *testing.T) {
			conf := writeTemp(t, "bird.conf", "router id 192.0.2.1;\n"+renderPeers(t, BIRD, []Session{s}))
			mustRun(t, bird, "-p", "-c", conf)
			text := renderPeers(t, FRR, []Session{s})
			conf = writeTemp(t, "frr.conf", text)
			if out, err := run(t, vtysh, "--dryrun", "-f", conf); err != nil || strings.Contains(out, "%") {
				t.Fatalf("vtysh --dryrun rejected the router side: %v\n%s\n--- config ---\n%s", err, out, text)
			}
		})
	}
	// The parsers do reject a broken block, so the checks have teeth.
	s := all[0]
	conf := writeTemp(t, "bird.conf", "router id 192.0.2.1;\n"+strings.Replace(renderPeers(t, BIRD, []Session{s}), "passive on;", "passive maybe;", 1))
	if out, err := run(t, bird, "-p", "-c", conf); err == nil {
		t.Fatalf("bird -p accepted `passive maybe`:\n%s", out)
	}
	conf = writeTemp(t, "frr.conf", strings.Replace(renderPeers(t, FRR, []Session{s}), "graceful-restart-helper", "graceful-restart-helpr", 1))
	if out, err := run(t, vtysh, "--dryrun", "-f", conf); err == nil {
		t.Fatalf("vtysh --dryrun accepted a misspelt neighbor command:\n%s", out)
	}
}
