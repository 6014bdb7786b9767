package nodelabel

import (
	"net/netip"
	"testing"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/webhook"
)

func TestDesired(t *testing.T) {
	p := netip.MustParsePrefix
	inv := &routes.Inventory{Nodes: []routes.Node{
		{Name: "all", UID: "1", PodCIDRs: []netip.Prefix{p("10.244.0.0/24"), p("fd00:0:0:1::/64")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.168.0.1"), netip.MustParseAddr("fd00::1")}},
		{Name: "half", UID: "2", PodCIDRs: []netip.Prefix{p("10.244.1.0/24"), p("fd00:0:0:2::/64")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("fd00::2")}},
		{Name: "none", UID: "3", PodCIDRs: []netip.Prefix{p("10.244.2.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("192.168.0.3")}},
		{Name: "no-cidr", UID: "4", InternalIPs: []netip.Addr{netip.MustParseAddr("192.168.0.4")}},
	}}
	fab := routes.DefaultFabric()
	fab.Installed = []netip.Prefix{p("10.244.0.0/24"), p("fd00:0:0:1::/64"), p("10.244.1.0/24")}
	table := routes.Build(inv, fab, nil)
	for _, tt := range []struct{ node, want string }{
		{"all", webhook.PodRoutePublished},
		{"half", webhook.PodRouteMissing}, // one of its two routes is missing
		{"none", webhook.PodRouteMissing},
		{"no-cidr", webhook.PodRouteMissing}, // nothing to publish is not "published"
		{"unknown", webhook.PodRouteMissing}, // not seen by the store yet
	} {
		if got := Desired(table, tt.node); got != tt.want {
			t.Errorf("Desired(%s) = %s, want %s", tt.node, got, tt.want)
		}
	}
}
