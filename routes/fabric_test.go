package routes

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadFabricExample(t *testing.T) {
	f, err := LoadFabric("testdata/flannel-fabric.yaml")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.132.2.0/24")}, f.Reachable)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}, f.Unreachable)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}, f.ServiceCIDRs)
	assert.Equal(t, SourceAuto, f.Source)
	assert.Equal(t, NextHopInternalIP, f.NextHop)
	assert.Equal(t, PublishStatic, f.Publish)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.131.73.0/24")}, f.Installed)
}

func TestParseFabric(t *testing.T) {
	const head = "apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\n"
	tests := []struct {
		name    string
		doc     string
		want    func(t *testing.T, f *Fabric)
		wantErr []string // substrings of the error, all required
	}{
		{
			name: "defaults when podRoutes is absent",
			doc:  head + "spec: {}\n",
			want: func(t *testing.T, f *Fabric) {
				assert.Equal(t, DefaultFabric(), f)
			},
		},
		{
			name: "dual-stack service ranges and IPv6 networks",
			doc:  head + "spec:\n  reachable: ['2001:db8:50::/64']\n  serviceCIDR: '10.96.0.0/12, fd00:96::/112'\n  podRoutes: {publish: cni, nextHop: ExternalIP, source: calico}\n",
			want: func(t *testing.T, f *Fabric) {
				assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("2001:db8:50::/64")}, f.Reachable)
				assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:96::/112")}, f.ServiceCIDRs)
				assert.Equal(t, PublishCNI, f.Publish)
				assert.Equal(t, NextHopExternalIP, f.NextHop)
				assert.Equal(t, SourceCalico, f.Source)
			},
		},
		{
			name: "a bare address is a host route",
			doc:  head + "spec:\n  unreachable: [169.254.169.254]\n",
			want: func(t *testing.T, f *Fabric) {
				assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}, f.Unreachable)
			},
		},
		{name: "unknown field", doc: head + "spec:\n  reachble: [10.0.0.0/8]\n", wantErr: []string{"fabric.yaml", `unknown field "spec.reachble"`}},
		{name: "unknown nested field", doc: head + "spec:\n  podRoutes: {pubish: static}\n", wantErr: []string{"fabric.yaml", "pubish"}},
		{name: "wrong kind", doc: "apiVersion: dubboreach.io/v1alpha1\nkind: Fabrik\nspec: {}\n", wantErr: []string{"fabric.yaml: kind:", `"Fabrik"`, `use "Fabric"`}},
		{name: "wrong apiVersion", doc: "apiVersion: v1\nkind: Fabric\n", wantErr: []string{"apiVersion:", `"v1"`, "dubboreach.io/v1alpha1"}},
		{name: "missing apiVersion", doc: "kind: Fabric\n", wantErr: []string{"apiVersion:"}},
		{name: "bad CIDR", doc: head + "spec:\n  reachable: [10.132.2.0/24, 10.0.0.300/8]\n", wantErr: []string{"spec.reachable[1]", `"10.0.0.300/8" is not a CIDR`}},
		{name: "host bits set", doc: head + "spec:\n  unreachable: [172.17.0.1/16]\n", wantErr: []string{"spec.unreachable[0]", "host bits", "172.17.0.0/16"}},
		{name: "empty CIDR", doc: head + "spec:\n  reachable: ['']\n", wantErr: []string{"spec.reachable[0]"}},
		{name: "mapped IPv6", doc: head + "spec:\n  reachable: ['::ffff:10.0.0.0/104']\n", wantErr: []string{"spec.reachable[0]", "IPv4-mapped"}},
		{name: "bad service CIDR", doc: head + "spec:\n  serviceCIDR: 10.96.0.0/12,nonsense\n", wantErr: []string{"spec.serviceCIDR[1]", "nonsense"}},
		{name: "bad source", doc: head + "spec:\n  podRoutes: {source: weave}\n", wantErr: []string{"spec.podRoutes.source", `"weave"`, "auto, nodes, calico, flannel"}},
		{name: "bad nextHop", doc: head + "spec:\n  podRoutes: {nextHop: internalip}\n", wantErr: []string{"spec.podRoutes.nextHop", "InternalIP, ExternalIP, flannel-public-ip"}},
		{name: "bad publish", doc: head + "spec:\n  podRoutes: {publish: ospf}\n", wantErr: []string{"spec.podRoutes.publish", "static, bgp, cni, none"}},
		{name: "bad installed", doc: head + "spec:\n  podRoutes: {installed: [10.131.10.0/33]}\n", wantErr: []string{"spec.podRoutes.installed[0]"}},
		{name: "installed without static", doc: head + "spec:\n  podRoutes: {publish: cni, installed: [10.131.10.0/24]}\n", wantErr: []string{"spec.podRoutes.installed", "publish: static"}},
		{name: "wrong type", doc: head + "spec:\n  reachable: 10.0.0.0/8\n", wantErr: []string{"fabric.yaml", "reachable"}},
		{name: "not YAML", doc: "{{{", wantErr: []string{"fabric.yaml"}},
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
			tc.want(t, f)
		})
	}
}

func TestParseFabricTooLarge(t *testing.T) {
	_, err := ParseFabric("big.yaml", []byte(strings.Repeat("#", maxFabricBytes+1)))
	require.ErrorContains(t, err, "too large")
}

func TestLoadFabricMissingFile(t *testing.T) {
	_, err := LoadFabric("testdata/does-not-exist.yaml")
	require.ErrorContains(t, err, "does-not-exist.yaml")
}
