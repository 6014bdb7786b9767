package cli

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes/render"
)

const bgpFabric = "../../routes/testdata/bgp-fabric.yaml"

// TestRoutesBGPPeerGolden pins `routes --bgp-peer` for every format: the router dialects for all
// three peers of the BGP fabric, table/json/yaml as session facts, and linux/net-tools refused.
// Stdout, stderr and the exit status, as for the route dialects.
func TestRoutesBGPPeerGolden(t *testing.T) {
	formats := append([]string{"table", "json", "yaml"}, render.Names()...)
	for _, f := range formats {
		name := "routes-bgp-peer." + f + ".txt"
		t.Run(name, func(t *testing.T) {
			out, errOut, code := run(t, "routes", "--bgp-peer", "-o", f, "--fabric", bgpFabric)
			golden(t, name, fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, out, errOut))
		})
	}
	t.Run("one peer, two speaker addresses", func(t *testing.T) {
		out, errOut, code := run(t, "routes", "--bgp-peer=10.132.3.254", "-o", "bird", "--fabric", bgpFabric,
			"--speaker-address", "10.132.2.11,10.132.2.12")
		require.Equal(t, ExitOK, code, errOut)
		assert.Empty(t, errOut, "no routerID note when the speaker addresses are given")
		golden(t, "routes-bgp-peer-one.bird", out)
	})
}

func TestRoutesBGPPeerSelect(t *testing.T) {
	// --bgp-peer ADDRESS (a space) and --bgp-peer=ADDRESS pick the same router.
	spaced, errOut, code := run(t, "routes", "--bgp-peer", "10.132.2.253", "-o", "json", "--fabric", bgpFabric)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, errOut, "note: the neighbor is spec.bgp.routerID 10.132.2.10")
	joined, _, code := run(t, "routes", "--bgp-peer=10.132.2.253", "-o", "json", "--fabric", bgpFabric)
	require.Equal(t, ExitOK, code)
	assert.Equal(t, spaced, joined)
	var doc struct {
		Sessions []peerJSON `json:"sessions"`
	}
	require.NoError(t, json.Unmarshal([]byte(spaced), &doc))
	require.Len(t, doc.Sessions, 1)
	s := doc.Sessions[0]
	assert.Equal(t, peerJSON{Router: "10.132.2.253", RouterASN: 64512, Port: 179, Neighbors: []string{"10.132.2.10"}, SpeakerASN: 64512,
		Type: "ibgp", HoldTime: 30, GracefulRestart: 120, Families: []string{"ipv4", "ipv6"},
		Accept: []acceptJSON{{"10.131.0.0/16", 32}, {"fd00:131::/48", 128}}}, s)
}

func TestRoutesBGPPeerErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no fabric", []string{"--bgp-peer"}, "--bgp-peer needs --fabric"},
		{"not publish: bgp", []string{"--bgp-peer", "--fabric", flannelFabric},
			"has podRoutes.publish: static and no spec.bgp, so there is no BGP session to configure; set podRoutes.publish: bgp and a spec.bgp block"},
		{"unknown peer", []string{"--bgp-peer=10.132.9.9", "--fabric", bgpFabric},
			"--bgp-peer: 10.132.9.9 is not a router of spec.bgp.peers; the configured peers are 10.132.2.254, 10.132.3.254, 10.132.2.253"},
		{"not an address", []string{"--bgp-peer=gateway-1", "--fabric", bgpFabric}, `--bgp-peer "gateway-1" is not an address`},
		{"linux", []string{"--bgp-peer", "-o", "linux", "--fabric", bgpFabric}, "use -o frr or -o bird"},
		{"with --missing", []string{"--bgp-peer", "--missing", "--fabric", bgpFabric}, "--bgp-peer prints the BGP session, not routes"},
		{"with --remove", []string{"--bgp-peer", "--remove", "-o", "frr", "--fabric", bgpFabric}, "drop --missing, --stale and --remove"},
		{"speaker without peer", []string{"--speaker-address", "10.132.2.11", "--fabric", bgpFabric}, "use it with --bgp-peer"},
		{"bad speaker", []string{"--bgp-peer", "--speaker-address", "node-1", "--fabric", bgpFabric}, `--speaker-address "node-1" is not an IP address`},
		{"speaker of the wrong family", []string{"--bgp-peer", "--speaker-address", "fd00:132::10", "--fabric", bgpFabric},
			"is an IPv4 peer: the router needs the speaker's IPv4 session address as its neighbor; pass it with --speaker-address"},
		{"stray argument", []string{"--bgp-peer", "10.132.2.254", "extra", "--fabric", bgpFabric}, "routes takes no arguments"},
		{"stray argument without the flag", []string{"10.132.2.254", "--fabric", bgpFabric}, "routes takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"routes"}, tc.args...)...)
			assert.Equal(t, ExitUsage, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.Empty(t, out, "nothing on stdout for a refused command")
		})
	}
}
