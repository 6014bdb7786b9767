package routes

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// Benchmark size from the issue: 5,000 nodes with 20,000 Calico /26 blocks (four per node).
const (
	benchNodes  = 5000
	benchBlocks = 20000
)

func benchInventory() *Inventory {
	inv := &Inventory{}
	for i := 0; i < benchNodes; i++ {
		inv.Nodes = append(inv.Nodes, Node{
			UID:         fmt.Sprintf("uid-%05d", i),
			Name:        fmt.Sprintf("node-%05d", i),
			InternalIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)})},
		})
	}
	base := netip.MustParseAddr("100.64.0.0").As4()
	for j := 0; j < benchBlocks; j++ {
		off := uint32(j) << 6 // /26 blocks
		a := base
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + off
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 26)
		inv.Blocks = append(inv.Blocks, Block{Name: fmt.Sprintf("block-%05d", j), CIDR: p, Node: fmt.Sprintf("node-%05d", j%benchNodes)})
	}
	return inv
}

func benchFabric(inv *Inventory) *Fabric {
	f := DefaultFabric()
	f.Reachable = []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}
	f.Unreachable = []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}
	f.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}
	for i, b := range inv.Blocks {
		if i%2 == 0 {
			f.Installed = append(f.Installed, b.CIDR)
		}
	}
	return f
}

// BenchmarkCheck is the verdict lookup every admission and every scanned registration pays.
func BenchmarkCheck(b *testing.B) {
	inv := benchInventory()
	tab := Build(inv, benchFabric(inv), nil)
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = inv.Blocks[(i*7919)%len(inv.Blocks)].CIDR.Addr().Next()
	}
	addrs[0] = netip.MustParseAddr("10.20.1.1")   // external network
	addrs[1] = netip.MustParseAddr("172.17.0.2")  // never reachable
	addrs[2] = netip.MustParseAddr("203.0.113.9") // no match
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = tab.Check(addrs[i&1023])
	}
}

// BenchmarkBuild is a full table build, paid once per inventory change burst.
func BenchmarkBuild(b *testing.B) {
	inv := benchInventory()
	f := benchFabric(inv)
	b.ReportAllocs()
	for b.Loop() {
		_ = Build(inv, f, nil)
	}
}

// BenchmarkLoadInventory reads the same inventory as kubectl would print it, from a file:
// -o yaml and -o json.
func BenchmarkLoadInventory(b *testing.B) {
	doc := benchInventoryYAML(benchInventory())
	b.Run("yaml", func(b *testing.B) { benchLoad(b, "inventory.yaml", doc) })
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("json", func(b *testing.B) { benchLoad(b, "inventory.json", js) })
}

func benchLoad(b *testing.B, name string, doc []byte) {
	path := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		inv, err := LoadInventory(path)
		if err != nil {
			b.Fatal(err)
		}
		if len(inv.Nodes) != benchNodes || len(inv.Blocks) != benchBlocks {
			b.Fatalf("loaded %d nodes, %d blocks", len(inv.Nodes), len(inv.Blocks))
		}
	}
}

func benchInventoryYAML(inv *Inventory) []byte {
	var buf bytes.Buffer
	buf.WriteString("apiVersion: v1\nkind: List\nitems:\n")
	for _, n := range inv.Nodes {
		fmt.Fprintf(&buf, `- apiVersion: v1
  kind: Node
  metadata:
    name: %s
    uid: %s
    labels: {kubernetes.io/os: linux, kubernetes.io/hostname: %s}
  spec: {}
  status:
    addresses:
    - {type: InternalIP, address: %s}
    - {type: Hostname, address: %s}
`, n.Name, n.UID, n.Name, n.InternalIPs[0], n.Name)
	}
	for _, bl := range inv.Blocks {
		fmt.Fprintf(&buf, `- apiVersion: crd.projectcalico.org/v1
  kind: IPAMBlock
  metadata: {name: %s}
  spec:
    cidr: %s
    affinity: host:%s
    allocations: [0, null, 1]
    attributes:
    - {handle_id: ipip-tunnel-addr, secondary: {node: %s, type: ipipTunnelAddress}}
    - {handle_id: k8s-pod-network.x, secondary: {namespace: default, node: %s, pod: p}}
    unallocated: [1]
    sequenceNumber: 3
    strictAffinity: false
`, bl.Name, bl.CIDR, bl.Node, bl.Node, bl.Node)
	}
	return buf.Bytes()
}
