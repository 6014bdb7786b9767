package clusters

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes"
)

func TestLoadExample(t *testing.T) {
	f, err := Load("testdata/clusters.yaml")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.132.0.0/16")}, f.Reachable)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}, f.Unreachable)
	require.Len(t, f.Clusters, 3)
	assert.Equal(t, []string{"east", "west", "calico"}, f.Names())

	east := f.Clusters[0]
	assert.Equal(t, filepath.Join("testdata", "east.kubeconfig"), east.Kubeconfig, "relative to the clusters file")
	assert.Equal(t, "east-admin", east.Context)
	assert.True(t, east.Correct, "correct defaults to true")
	assert.Equal(t, routes.SourceFlannel, east.Fabric.Source)
	assert.Equal(t, routes.PublishStatic, east.Fabric.Publish)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24")}, east.Fabric.Installed)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}, east.Fabric.ServiceCIDRs)
	// Every cluster's fabric carries the shared data-center facts.
	for _, c := range f.Clusters {
		assert.Equal(t, f.Reachable, c.Fabric.Reachable, c.Name)
		assert.Equal(t, f.Unreachable, c.Fabric.Unreachable, c.Name)
	}

	west := f.Clusters[1]
	assert.Equal(t, filepath.Join("testdata", "west-inventory.yaml"), west.Inventory)
	assert.False(t, west.Correct)
	assert.Equal(t, routes.PublishNone, west.Fabric.Publish)

	cal := f.Clusters[2]
	assert.True(t, cal.InCluster)
	assert.Equal(t, routes.SourceCalico, cal.Fabric.Source)
	assert.Equal(t, routes.NextHopInternalIP, cal.Fabric.NextHop, "defaults as in a fabric file")
	assert.Empty(t, cal.Fabric.ServiceCIDRs)
}

func TestParse(t *testing.T) {
	const head = "apiVersion: dubboreach.io/v1alpha1\nkind: Clusters\n"
	one := "  clusters:\n    - {name: a, inventory: a.yaml}\n"
	tests := []struct {
		name    string
		doc     string
		want    func(t *testing.T, f *File)
		wantErr []string // substrings of the error, all required
	}{
		{name: "minimal", doc: head + "spec:\n" + one, want: func(t *testing.T, f *File) {
			require.Len(t, f.Clusters, 1)
			assert.Equal(t, routes.DefaultFabric(), f.Clusters[0].Fabric)
			assert.Equal(t, "/etc/dr/a.yaml", f.Clusters[0].Inventory)
		}},
		{name: "absolute paths are kept", doc: head + "spec:\n  clusters:\n    - {name: a, kubeconfig: /k/a}\n", want: func(t *testing.T, f *File) {
			assert.Equal(t, "/k/a", f.Clusters[0].Kubeconfig)
		}},
		{name: "bgp per cluster", doc: head + "spec:\n  clusters:\n    - name: a\n      inCluster: true\n      podRoutes: {publish: bgp}\n      bgp: {asn: 64512, routerID: 10.0.0.1, within: [10.244.0.0/16], peers: [{address: 10.0.0.254, asn: 64513}]}\n",
			want: func(t *testing.T, f *File) {
				require.NotNil(t, f.Clusters[0].Fabric.BGP)
				assert.Equal(t, uint32(64512), f.Clusters[0].Fabric.BGP.ASN)
			}},
		{name: "wrong kind", doc: "apiVersion: dubboreach.io/v1alpha1\nkind: Fabric\nspec: {}\n",
			wantErr: []string{"/etc/dr/clusters.yaml: kind:", `"Fabric"`, `use "Clusters"`, "--fabric"}},
		{name: "wrong apiVersion", doc: "apiVersion: v1\nkind: Clusters\n", wantErr: []string{"apiVersion:", `"v1"`, "dubboreach.io/v1alpha1"}},
		{name: "not YAML", doc: "{", wantErr: []string{"/etc/dr/clusters.yaml", "docs/clusters.md"}},
		{name: "duplicate key", doc: head + "spec:\n" + one + one, wantErr: []string{"clusters.yaml", "clusters", "docs/clusters.md"}},
		{name: "unknown top field", doc: head + "spec:\n  reachble: [10.0.0.0/8]\n" + one, wantErr: []string{`unknown field "spec.reachble"`}},
		{name: "unknown cluster field", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml, kubecontext: x}\n", wantErr: []string{`unknown field "spec.clusters[0].kubecontext"`}},
		{name: "unknown podRoutes field", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml, podRoutes: {sorce: nodes}}\n",
			wantErr: []string{`unknown field "spec.clusters[0].podRoutes.sorce"`}},
		{name: "no clusters", doc: head + "spec:\n  reachable: [10.0.0.0/8]\n", wantErr: []string{"spec.clusters: is empty"}},
		{name: "bad shared network", doc: head + "spec:\n  reachable: [10.0.0.1/8]\n" + one, wantErr: []string{"spec.reachable[0]", "host bits", "10.0.0.0/8"}},
		{name: "name missing", doc: head + "spec:\n  clusters:\n    - {inventory: a.yaml}\n", wantErr: []string{"spec.clusters[0].name: is required"}},
		{name: "name not a label", doc: head + "spec:\n  clusters:\n    - {name: East_1, inventory: a.yaml}\n", wantErr: []string{"spec.clusters[0].name", `"East_1"`, "DNS label"}},
		{name: "name duplicate", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml}\n    - {name: a, inventory: b.yaml}\n",
			wantErr: []string{"spec.clusters[1].name", "spec.clusters[0]", "unique"}},
		{name: "no source", doc: head + "spec:\n  clusters:\n    - {name: a}\n", wantErr: []string{"spec.clusters[0] (a)", "exactly one of kubeconfig", "has 0"}},
		{name: "two sources", doc: head + "spec:\n  clusters:\n    - {name: a, kubeconfig: k, inventory: i}\n", wantErr: []string{"spec.clusters[0] (a)", "has 2"}},
		{name: "context without kubeconfig", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: i, context: c}\n", wantErr: []string{"spec.clusters[0] (a).context", "kubeconfig"}},
		{name: "two in-cluster", doc: head + "spec:\n  clusters:\n    - {name: a, inCluster: true}\n    - {name: b, inCluster: true}\n",
			wantErr: []string{"spec.clusters[1] (b).inCluster", "spec.clusters[0]"}},
		{name: "bad source", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml}\n    - {name: b, inventory: b.yaml, podRoutes: {source: weave}}\n",
			wantErr: []string{"/etc/dr/clusters.yaml: spec.clusters[1].podRoutes.source", `"weave"`, "auto, nodes, calico, flannel"}},
		{name: "bad installed", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml, podRoutes: {installed: [10.244.1.1/24]}}\n",
			wantErr: []string{"spec.clusters[0].podRoutes.installed[0]", "host bits"}},
		{name: "installed without static", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml, podRoutes: {publish: cni, installed: [10.244.1.0/24]}}\n",
			wantErr: []string{"spec.clusters[0].podRoutes.installed", "publish: static"}},
		{name: "bad service CIDR", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml, serviceCIDR: 10.96.0.0/33}\n",
			wantErr: []string{"spec.clusters[0].serviceCIDR[0]", "not a CIDR"}},
		{name: "bgp without publish bgp", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml, bgp: {asn: 1}}\n",
			wantErr: []string{"spec.clusters[0].bgp", "publish: bgp"}},
		{name: "publish bgp without bgp", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: a.yaml, podRoutes: {publish: bgp}}\n",
			wantErr: []string{"spec.clusters[0].bgp", "is required"}},
		{name: "bgp status namespace", doc: head + "spec:\n  clusters:\n    - {name: a, kubeconfig: k, bgpStatusNamespace: dubboreach-system, podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.0.0.1, within: [10.244.0.0/16], peers: [{address: 10.0.0.254, asn: 64513}]}}\n",
			want: func(t *testing.T, f *File) { assert.Equal(t, "dubboreach-system", f.Clusters[0].BGPStatusNamespace) }},
		{name: "bgp from a kubeconfig without status namespace", doc: head + "spec:\n  clusters:\n    - {name: a, kubeconfig: k, podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.0.0.1, within: [10.244.0.0/16], peers: [{address: 10.0.0.254, asn: 64513}]}}\n",
			wantErr: []string{"spec.clusters[0] (a).bgpStatusNamespace: is required under podRoutes.publish: bgp", "dubboreach-bgp"}},
		{name: "status namespace without bgp", doc: head + "spec:\n  clusters:\n    - {name: a, kubeconfig: k, bgpStatusNamespace: x}\n",
			wantErr: []string{"spec.clusters[0] (a).bgpStatusNamespace", "only read under podRoutes.publish: bgp"}},
		{name: "status namespace of an inventory", doc: head + "spec:\n  clusters:\n    - {name: a, inventory: i, bgpStatusNamespace: x, podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.0.0.1, within: [10.244.0.0/16], peers: [{address: 10.0.0.254, asn: 64513}]}}\n",
			wantErr: []string{"spec.clusters[0] (a).bgpStatusNamespace", "inventory file"}},
		{name: "status namespace not a name", doc: head + "spec:\n  clusters:\n    - {name: a, kubeconfig: k, bgpStatusNamespace: Bad_NS, podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.0.0.1, within: [10.244.0.0/16], peers: [{address: 10.0.0.254, asn: 64513}]}}\n",
			wantErr: []string{"spec.clusters[0] (a).bgpStatusNamespace", `"Bad_NS"`, "namespace name"}},
		{name: "too many clusters", doc: head + "spec:\n  clusters:\n" + strings.Repeat("    - {name: a, inventory: a.yaml}\n", MaxClusters+1),
			wantErr: []string{"spec.clusters", "more than the 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("/etc/dr/clusters.yaml", []byte(tt.doc))
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.Nil(t, f)
				for _, s := range tt.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				assert.NotContains(t, err.Error(), "\x00")
				t.Log(err)
				return
			}
			require.NoError(t, err)
			tt.want(t, f)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("big.yaml", make([]byte, maxFileBytes+1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "big.yaml")
	assert.Contains(t, err.Error(), "too large")
}

func FuzzParse(f *testing.F) {
	data, err := os.ReadFile("testdata/clusters.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("apiVersion: dubboreach.io/v1alpha1\nkind: Clusters\nspec: {clusters: [{name: a, inCluster: true, podRoutes: {publish: bgp}, bgp: {asn: 1, routerID: 1.1.1.1, within: ['::/1'], peers: [{address: '::1', asn: 2}]}}]}"))
	f.Add([]byte("apiVersion: dubboreach.io/v1alpha1\nkind: Clusters\nspec: {clusters: [{name: a, inventory: x, podRoutes: null, bgp: null, correct: false}]}"))
	f.Add([]byte("apiVersion: dubboreach.io/v1alpha1\nkind: Clusters\nspec: {reachable: ['spec.x'], clusters: [{name: '', kubeconfig: '\x00'}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			if file != nil {
				t.Fatal("an error must not come with a file")
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		if len(file.Clusters) == 0 || len(file.Clusters) > MaxClusters {
			t.Fatalf("%d clusters accepted", len(file.Clusters))
		}
		names := map[string]bool{}
		for _, c := range file.Clusters {
			if names[c.Name] || !nameRE.MatchString(c.Name) {
				t.Fatalf("name %q accepted twice or malformed", c.Name)
			}
			names[c.Name] = true
			n := 0
			for _, b := range []bool{c.Kubeconfig != "", c.Inventory != "", c.InCluster} {
				if b {
					n++
				}
			}
			if n != 1 || c.Fabric == nil {
				t.Fatalf("cluster %q: %d sources, fabric %v", c.Name, n, c.Fabric)
			}
			_ = routes.Build(nil, c.Fabric, nil)
		}
	})
}

// The example of docs/clusters.md is a valid clusters file.
func TestDocsExampleParses(t *testing.T) {
	data, err := os.ReadFile("../../docs/clusters.md")
	require.NoError(t, err)
	doc := string(data)
	start := strings.Index(doc, "```yaml\n")
	require.GreaterOrEqual(t, start, 0, "no yaml block in docs/clusters.md")
	doc = doc[start+len("```yaml\n"):]
	doc = doc[:strings.Index(doc, "```")]
	f, err := Parse("/etc/dr/clusters.yaml", []byte(doc))
	require.NoError(t, err)
	assert.Equal(t, []string{"east", "west", "local"}, f.Names())
	assert.Equal(t, "dubboreach-system", f.Clusters[2].BGPStatusNamespace)
	assert.False(t, f.Clusters[1].Correct)
}
