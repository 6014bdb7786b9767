package routes

import (
	"bytes"
	"net/netip"
	"os"
	"testing"
)

func FuzzParseFabric(f *testing.F) {
	for _, p := range []string{"testdata/flannel-fabric.yaml", "testdata/bgp-fabric.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec: {reachable: ['::/0'], serviceCIDR: ',,', podRoutes: {installed: [1.2.3.4]}}"))
	f.Add([]byte("apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec:\n  spec: 1\n  spec: 2\n"))
	f.Add([]byte("apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec: {podRoutes: {publish: bgp}, bgp: {asn: 1, routerID: 1.1.1.1, within: ['::/1'], peers: [{address: '::ffff:1.2.3.4', asn: 2, port: 65535, multihop: 255}], communities: ['0:0'], holdTime: 0}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fab, err := ParseFabric("fuzz.yaml", data)
		if err != nil {
			if fab != nil {
				t.Fatal("an error must not come with a fabric")
			}
			return
		}
		// Whatever parses must be usable: every prefix canonical, the table buildable.
		for _, list := range [][]netip.Prefix{fab.Reachable, fab.Unreachable, fab.ServiceCIDRs, fab.Installed} {
			for _, p := range list {
				if !p.IsValid() || p.Masked() != p {
					t.Fatalf("non-canonical prefix %v accepted", p)
				}
			}
		}
		if (fab.BGP != nil) != (fab.Publish == PublishBGP) {
			t.Fatalf("spec.bgp %v with publish %q", fab.BGP, fab.Publish)
		}
		if fab.BGP != nil {
			if len(fab.BGP.Within) == 0 || len(fab.BGP.Peers) == 0 || fab.BGP.ASN == 0 || !fab.BGP.RouterID.Is4() {
				t.Fatalf("incomplete spec.bgp accepted: %+v", fab.BGP)
			}
			for _, p := range fab.BGP.Within {
				if !p.IsValid() || p.Masked() != p || p.Bits() == 0 {
					t.Fatalf("within %v accepted", p)
				}
			}
		}
		_ = Build(nil, fab, nil)
	})
}

func FuzzParseInventory(f *testing.F) {
	for _, p := range []string{"testdata/flannel-inventory.yaml", "testdata/calico-inventory.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"kind":"List","items":[{"kind":"List","items":[]}]}`))
	f.Add([]byte("apiVersion: crd.projectcalico.org/v1\nkind: IPAMBlock\nmetadata: {name: b}\nspec: {cidr: 10.0.0.0/31, allocations: [0, 0, 0], attributes: [{secondary: {node: x}}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseInventory("fuzz.yaml", bytes.NewReader(data))
		if err != nil {
			return
		}
		tab := Build(inv, DefaultFabric(), nil)
		for _, r := range tab.Routes {
			_ = tab.Check(r.Prefix.Addr())
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"10.131.10.5", "10.131.10.5:20880", "[2001:db8::5]:20880", "2001:db8::5", "fe80::1%eth0", "[::1", "a:b", "[1.2.3.4]:5"} {
		f.Add(s)
	}
	tab := Build(mustInventory(f, "testdata/flannel-inventory.yaml"), mustFabric(f, "testdata/flannel-fabric.yaml"), nil)
	f.Fuzz(func(t *testing.T, s string) {
		a, _, err := ParseAddress(s)
		if err != nil {
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseAddress(%q) = %v: want a valid, zone-less, unmapped address", s, a)
		}
		v := tab.Check(a)
		if v.Status != Reachable && v.Status != Unreachable && v.Status != Unknown {
			t.Fatalf("status %q", v.Status)
		}
	})
}
