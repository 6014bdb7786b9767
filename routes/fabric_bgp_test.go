package routes

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadFabricBGP(t *testing.T) {
	f, err := LoadFabric("testdata/bgp-fabric.yaml")
	require.NoError(t, err)
	assert.Equal(t, PublishBGP, f.Publish)
	require.NotNil(t, f.BGP)
	assert.Equal(t, &BGP{
		ASN:             64512,
		RouterID:        netip.MustParseAddr("10.132.2.10"),
		Within:          []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16"), netip.MustParsePrefix("fd00:131::/48")},
		AnnouncedTo:     AnnouncedToAny,
		Communities:     []uint32{64512<<16 | 131},
		GracefulRestart: 120 * time.Second,
		Peers: []BGPPeer{
			{Address: netip.MustParseAddr("10.132.2.254"), ASN: 64513, Port: 179, PasswordFile: "/etc/dubboreach/bgp/password", HoldTime: 30 * time.Second},
			{Address: netip.MustParseAddr("10.132.3.254"), ASN: 64513, Port: 1179, Multihop: 2, HoldTime: 9 * time.Second},
			{Address: netip.MustParseAddr("10.132.2.253"), ASN: 64512, Port: 179, HoldTime: 30 * time.Second},
		},
	}, f.BGP)
}

func TestParseFabricBGP(t *testing.T) {
	const head = "apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec:\n  podRoutes: {publish: bgp}\n  bgp:\n"
	const ok = "    asn: 64512\n    routerID: 10.0.0.1\n    within: [10.131.0.0/16]\n"
	const peer = "    peers: [{address: 10.0.0.254, asn: 64513}]\n"
	tests := []struct {
		name    string
		doc     string
		want    func(t *testing.T, b *BGP)
		wantErr []string
	}{
		{name: "minimal", doc: head + ok + peer, want: func(t *testing.T, b *BGP) {
			assert.Equal(t, 0, b.ListenPort)
			assert.Equal(t, AnnouncedToAny, b.AnnouncedTo)
			assert.Equal(t, 179, b.Peers[0].Port)
			assert.Zero(t, b.Peers[0].HoldTime)
		}},
		{name: "listen, all, IPv6 peer", doc: head + ok + "    listenPort: 1790\n    announcedTo: all\n    peers: [{address: '2001:db8::1', asn: 4200000001}]\n", want: func(t *testing.T, b *BGP) {
			assert.Equal(t, 1790, b.ListenPort)
			assert.Equal(t, AnnouncedToAll, b.AnnouncedTo)
			assert.Equal(t, netip.MustParseAddr("2001:db8::1"), b.Peers[0].Address)
			assert.Equal(t, uint32(4200000001), b.Peers[0].ASN)
		}},
		{name: "bgp without publish bgp", doc: "apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec:\n  bgp:\n" + ok + peer, wantErr: []string{"fabric.yaml: spec.bgp:", "publish: bgp", `"static"`}},
		{name: "publish bgp without bgp", doc: "apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec:\n  podRoutes: {publish: bgp}\n", wantErr: []string{"spec.bgp:", "required", "within"}},
		{name: "unknown field", doc: head + ok + peer + "    asm: 1\n", wantErr: []string{`unknown field "spec.bgp.asm"`}},
		{name: "unknown peer field", doc: head + ok + "    peers: [{address: 10.0.0.254, asn: 64513, pasword: x}]\n", wantErr: []string{"spec.bgp.peers[0].pasword"}},
		{name: "no asn", doc: head + "    routerID: 10.0.0.1\n    within: [10.131.0.0/16]\n" + peer, wantErr: []string{"spec.bgp.asn", "required"}},
		{name: "AS_TRANS", doc: head + "    asn: 23456\n    routerID: 10.0.0.1\n    within: [10.131.0.0/16]\n" + peer, wantErr: []string{"spec.bgp.asn", "AS_TRANS"}},
		{name: "asn too large", doc: head + "    asn: 4294967296\n    routerID: 10.0.0.1\n    within: [10.131.0.0/16]\n" + peer, wantErr: []string{"fabric.yaml", "asn"}},
		{name: "negative asn", doc: head + "    asn: -1\n    routerID: 10.0.0.1\n    within: [10.131.0.0/16]\n" + peer, wantErr: []string{"fabric.yaml", "asn"}},
		{name: "no router ID", doc: head + "    asn: 64512\n    within: [10.131.0.0/16]\n" + peer, wantErr: []string{"spec.bgp.routerID", "required"}},
		{name: "IPv6 router ID", doc: head + "    asn: 64512\n    routerID: '2001:db8::1'\n    within: [10.131.0.0/16]\n" + peer, wantErr: []string{"spec.bgp.routerID", "IPv4"}},
		{name: "zero router ID", doc: head + "    asn: 64512\n    routerID: 0.0.0.0\n    within: [10.131.0.0/16]\n" + peer, wantErr: []string{"spec.bgp.routerID", "0.0.0.0"}},
		{name: "no within", doc: head + "    asn: 64512\n    routerID: 10.0.0.1\n" + peer, wantErr: []string{"spec.bgp.within", "required", "nothing outside"}},
		{name: "empty within", doc: head + "    asn: 64512\n    routerID: 10.0.0.1\n    within: []\n" + peer, wantErr: []string{"spec.bgp.within", "required"}},
		{name: "within everything", doc: head + "    asn: 64512\n    routerID: 10.0.0.1\n    within: [0.0.0.0/0]\n" + peer, wantErr: []string{"spec.bgp.within[0]", "anything"}},
		{name: "bad within", doc: head + "    asn: 64512\n    routerID: 10.0.0.1\n    within: [10.131.0.1/16]\n" + peer, wantErr: []string{"spec.bgp.within[0]", "host bits", "10.131.0.0/16"}},
		{name: "bad listen port", doc: head + ok + peer + "    listenPort: 70000\n", wantErr: []string{"spec.bgp.listenPort", "70000"}},
		{name: "bad announcedTo", doc: head + ok + peer + "    announcedTo: most\n", wantErr: []string{"spec.bgp.announcedTo", `"most"`, "any", "all"}},
		{name: "bad community", doc: head + ok + peer + "    communities: ['65536:1']\n", wantErr: []string{"spec.bgp.communities[0]", "ASN:value"}},
		{name: "bad hold time", doc: head + ok + peer + "    holdTime: 2\n", wantErr: []string{"spec.bgp.holdTime", "3-65535"}},
		{name: "bad graceful restart", doc: head + ok + peer + "    gracefulRestart: 5000\n", wantErr: []string{"spec.bgp.gracefulRestart", "4095"}},
		{name: "no peers", doc: head + ok, wantErr: []string{"spec.bgp.peers", "required"}},
		{name: "bad peer address", doc: head + ok + "    peers: [{address: router1, asn: 64513}]\n", wantErr: []string{"spec.bgp.peers[0].address", `"router1"`}},
		{name: "duplicate peer", doc: head + ok + "    peers: [{address: 10.0.0.254, asn: 64513}, {address: 10.0.0.254, asn: 64514}]\n", wantErr: []string{"spec.bgp.peers[1].address", "peers[0]"}},
		{name: "peer without asn", doc: head + ok + "    peers: [{address: 10.0.0.254}]\n", wantErr: []string{"spec.bgp.peers[0].asn", "required"}},
		{name: "bad peer port", doc: head + ok + "    peers: [{address: 10.0.0.254, asn: 64513, port: 0}]\n", wantErr: []string{"spec.bgp.peers[0].port"}},
		{name: "bad multihop", doc: head + ok + "    peers: [{address: 10.0.0.254, asn: 64513, multihop: 300}]\n", wantErr: []string{"spec.bgp.peers[0].multihop", "1-255"}},
		{name: "multihop on iBGP", doc: head + ok + "    peers: [{address: 10.0.0.254, asn: 64512, multihop: 2}]\n", wantErr: []string{"spec.bgp.peers[0].multihop", "iBGP"}},
		{name: "bad peer hold time", doc: head + ok + "    peers: [{address: 10.0.0.254, asn: 64513, holdTime: 1}]\n", wantErr: []string{"spec.bgp.peers[0].holdTime"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFabric("fabric.yaml", []byte(tc.doc))
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				assert.Nil(t, f)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, f.BGP)
			tc.want(t, f.BGP)
		})
	}
}

func TestBGPAllows(t *testing.T) {
	b := &BGP{Within: []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16"), netip.MustParsePrefix("fd00:131::/48")}}
	for p, want := range map[string]bool{
		"10.131.10.0/24":        true,
		"10.131.0.0/16":         true,
		"10.131.10.5/32":        true,
		"10.0.0.0/8":            false, // covers within, is not inside it
		"10.132.0.0/24":         false,
		"fd00:131:0:1::/64":     true,
		"fd00:132::/64":         false,
		"::ffff:10.131.0.0/120": false, // another family, however it is spelled
	} {
		assert.Equal(t, want, b.Allows(netip.MustParsePrefix(p)), p)
	}
	assert.False(t, (*BGP)(nil).Allows(netip.MustParsePrefix("10.131.10.0/24")), "no spec.bgp allows nothing")
}

// TestBuildBGPWithin: a route outside spec.bgp.within is never published, whatever the
// publisher says, and the table says why.
func TestBuildBGPWithin(t *testing.T) {
	inv := mustInventory(t, "testdata/flannel-inventory.yaml")
	f := DefaultFabric()
	f.Publish = PublishBGP
	f.BGP = &BGP{Within: []netip.Prefix{netip.MustParsePrefix("10.131.10.0/24")}}
	all := publishAll{}
	tab := Build(inv, f, all)
	var published []string
	for _, r := range tab.Routes {
		if r.Published {
			published = append(published, r.Prefix.String())
		}
	}
	assert.Equal(t, []string{"10.131.10.0/24"}, published)
	require.Len(t, tab.Problems, 1)
	assert.Contains(t, tab.Problems[0].String(), "outside spec.bgp.within")
}

type publishAll struct{}

func (publishAll) Published(Route) bool { return true }
