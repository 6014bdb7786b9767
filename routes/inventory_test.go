package routes

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadInventoryFlannelList(t *testing.T) {
	inv, err := LoadInventory("testdata/flannel-inventory.yaml")
	require.NoError(t, err)
	require.Len(t, inv.Nodes, 2)
	n := inv.Nodes[0]
	assert.Equal(t, "node1", n.Name)
	assert.Equal(t, "6f1c2d4e-0000-4000-8000-000000000001", n.UID)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.131.10.0/24")}, n.PodCIDRs)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.132.2.22")}, n.InternalIPs)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.132.2.22")}, n.FlannelPublicIPs)
	assert.True(t, n.Flannel)
	assert.Empty(t, n.Problems)
	assert.Empty(t, inv.Ignored)
}

func TestLoadInventoryCalicoBlocks(t *testing.T) {
	inv, err := LoadInventory("testdata/calico-inventory.yaml")
	require.NoError(t, err)
	require.Len(t, inv.Blocks, 3)
	b := inv.Blocks[0]
	assert.Equal(t, "10-233-64-0-26", b.Name)
	assert.Equal(t, netip.MustParsePrefix("10.233.64.0/26"), b.CIDR)
	assert.Equal(t, "node-a", b.Node)
	// allocations [0, null, 1, 2]: the fourth address (.3) holds attribute 2, a pod on node-b.
	assert.Equal(t, []Borrowed{{IP: netip.MustParseAddr("10.233.64.3"), Node: "node-b"}}, b.Borrowed)
	assert.Equal(t, netip.MustParsePrefix("fd00:233::/122"), inv.Blocks[2].CIDR)
}

func TestParseInventoryShapes(t *testing.T) {
	node := func(name, cidr, ip string) string {
		return "apiVersion: v1\nkind: Node\nmetadata: {name: " + name + ", uid: uid-" + name + "}\nspec: {podCIDRs: [" + cidr + "]}\nstatus: {addresses: [{type: InternalIP, address: " + ip + "}]}\n"
	}
	tests := []struct {
		name      string
		doc       string
		nodes     []string
		blocks    int
		pods      int
		ignored   []string
		wantErr   []string
		nodeProbs []string
	}{
		{name: "single object", doc: node("n1", "10.1.0.0/24", "10.0.0.1"), nodes: []string{"n1"}},
		{name: "multi-document stream", doc: node("n2", "10.1.1.0/24", "10.0.0.2") + "---\n" + node("n1", "10.1.0.0/24", "10.0.0.1") + "---\n", nodes: []string{"n1", "n2"}},
		{name: "JSON list", doc: `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"j1"},"spec":{"podCIDR":"10.2.0.0/24"}}]}`, nodes: []string{"j1"}},
		{name: "NodeList kind", doc: "apiVersion: v1\nkind: NodeList\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: x}\n", nodes: []string{"x"}},
		{name: "empty documents", doc: "---\n---\n", nodes: nil},
		{name: "pods and other kinds", doc: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: ns}, status: {podIP: 10.1.0.5}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm}}\n", pods: 1, ignored: []string{"ConfigMap cm"}},
		{name: "projectcalico.org/v3 block", doc: "apiVersion: projectcalico.org/v3\nkind: IPAMBlock\nmetadata: {name: b}\nspec: {cidr: 10.9.0.0/26, affinity: 'host:n1'}\n", blocks: 1},
		{name: "malformed pod CIDR is a node problem", doc: node("bad", "10.1.0.0/33", "10.0.0.1"), nodes: []string{"bad"}, nodeProbs: []string{`spec.podCIDRs: "10.1.0.0/33" is not a CIDR`}},
		{name: "not YAML", doc: "a: [", wantErr: []string{"inv.yaml: document 1"}},
		{name: "no kind", doc: "apiVersion: v1\nmetadata: {name: x}\n", wantErr: []string{"inv.yaml: document 1", "no kind"}},
		{name: "bad block CIDR", doc: "apiVersion: crd.projectcalico.org/v1\nkind: IPAMBlock\nmetadata: {name: b}\nspec: {cidr: nope}\n", wantErr: []string{"inv.yaml: document 1", `IPAMBlock "b"`, "spec.cidr"}},
		{name: "bad node field type", doc: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: x}, spec: {podCIDRs: 5}}\n", wantErr: []string{"items[0]", `Node "x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := ParseInventory("inv.yaml", strings.NewReader(tc.doc))
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			var names []string
			for _, n := range inv.Nodes {
				names = append(names, n.Name)
			}
			assert.Equal(t, tc.nodes, names)
			assert.Len(t, inv.Blocks, tc.blocks)
			assert.Len(t, inv.Pods, tc.pods)
			assert.Equal(t, tc.ignored, inv.Ignored)
			if tc.nodeProbs != nil {
				assert.Equal(t, tc.nodeProbs, inv.Nodes[0].Problems)
			}
		})
	}
}

func TestBlockFromJSONProblems(t *testing.T) {
	b, err := BlockFromJSON([]byte(`{"metadata":{"name":"b"},"spec":{"cidr":"10.0.0.0/30","affinity":"host:n1",
		"allocations":[0,7,null,null,0],"attributes":[{"secondary":{"node":"n1"}}]}}`))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"spec.allocations[1] = 7 names no attribute",
		"spec.allocations has 5 entries, more than the block's addresses",
	}, b.Problems)
}
