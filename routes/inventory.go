package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Flannel writes these annotations on every Node it manages (kube subnet manager mode).
const (
	FlannelAnnotationPrefix = "flannel.alpha.coreos.com/"
	FlannelPublicIP         = FlannelAnnotationPrefix + "public-ip"
	FlannelPublicIPv6       = FlannelAnnotationPrefix + "public-ip-v6"
)

// Calico's IPAMBlock resource, as kubectl and the API server serve it.
const (
	CalicoGroup       = "crd.projectcalico.org"
	CalicoVersion     = "v1"
	IPAMBlockKind     = "IPAMBlock"
	IPAMBlockResource = "ipamblocks"
)

// Node is what the route table needs to know about one Kubernetes Node.
type Node struct {
	UID         string
	Name        string
	PodCIDRs    []netip.Prefix
	InternalIPs []netip.Addr
	ExternalIPs []netip.Addr
	// FlannelPublicIPs holds flannel's public-ip and public-ip-v6 annotations.
	FlannelPublicIPs []netip.Addr
	// Flannel is true when flannel has annotated the node.
	Flannel bool
	// Problems found while reading the object (a malformed pod CIDR, ...).
	Problems []string
}

// Block is a Calico IPAM block: a pod prefix allocated to (affine to) one node.
type Block struct {
	Name string
	CIDR netip.Prefix
	// Node is the host named by the block's affinity ("host:<node>"); empty if none.
	Node string
	// Affinity is the raw affinity, kept to explain a block that names no host.
	Affinity string
	// Borrowed are IPs of this block used by pods on another node: each needs its own
	// host route to that node, since the block's route points at the block's owner.
	Borrowed []Borrowed
	// Deleted blocks are on their way out (Calico marks them before removal) and route nothing.
	Deleted  bool
	Problems []string
}

// Borrowed is one pod IP from a block that belongs to a pod on another node.
type Borrowed struct {
	IP   netip.Addr
	Node string
}

// Inventory is the cluster state the core works from. Pods and Namespaces are carried for the
// webhook and the auditor (which map addresses back to pods); the route table ignores them.
type Inventory struct {
	Nodes      []Node
	Blocks     []Block
	Pods       []corev1.Pod
	Namespaces []corev1.Namespace
	// Ignored lists objects of kinds the inventory does not use, so that nothing is dropped silently.
	Ignored []string
}

// maxInventoryBytes bounds an inventory file; 5,000 nodes and 20,000 blocks take about 40 MB of YAML.
const maxInventoryBytes = 1 << 30

// LoadInventory reads an inventory file: the output of
// `kubectl get nodes,ipamblocks.crd.projectcalico.org -o yaml` (a v1 List), a multi-document
// YAML stream, a single object, or the JSON equivalents.
func LoadInventory(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory file: %w", err)
	}
	defer f.Close()
	return ParseInventory(path, io.LimitReader(f, maxInventoryBytes))
}

// typeMeta is enough of an object to route it to the right decoder.
type typeMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// ParseInventory decodes an inventory stream. name is used in errors.
func ParseInventory(name string, r io.Reader) (*Inventory, error) {
	inv := &Inventory{}
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 64<<10)
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: document %d: %w (want Kubernetes objects as YAML or JSON, e.g. from kubectl get nodes -o yaml)", name, doc, err)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue // empty YAML document (a trailing ---)
		}
		if err := inv.add(raw, fmt.Sprintf("%s: document %d", name, doc)); err != nil {
			return nil, err
		}
	}
	inv.sort()
	return inv, nil
}

func (inv *Inventory) add(raw json.RawMessage, where string) error {
	var tm typeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return fmt.Errorf("%s: %w (want a Kubernetes object with apiVersion and kind)", where, err)
	}
	if tm.Kind == "" {
		return fmt.Errorf("%s: object has no kind (want a Kubernetes object such as a v1 List or Node)", where)
	}
	if strings.HasSuffix(tm.Kind, "List") {
		for i, item := range tm.Items {
			if err := inv.add(item, fmt.Sprintf("%s: items[%d]", where, i)); err != nil {
				return err
			}
		}
		return nil
	}
	group := tm.APIVersion
	if i := strings.Index(group, "/"); i >= 0 {
		group = group[:i]
	} else {
		group = ""
	}
	switch {
	case group == "" && tm.Kind == "Node":
		var n corev1.Node
		if err := json.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("%s: Node %q: %w", where, tm.Metadata.Name, err)
		}
		inv.Nodes = append(inv.Nodes, NodeFromObject(&n))
	case group == "" && tm.Kind == "Pod":
		var p corev1.Pod
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("%s: Pod %q: %w", where, tm.Metadata.Name, err)
		}
		inv.Pods = append(inv.Pods, p)
	case group == "" && tm.Kind == "Namespace":
		var ns corev1.Namespace
		if err := json.Unmarshal(raw, &ns); err != nil {
			return fmt.Errorf("%s: Namespace %q: %w", where, tm.Metadata.Name, err)
		}
		inv.Namespaces = append(inv.Namespaces, ns)
	case (group == CalicoGroup || group == "projectcalico.org") && tm.Kind == IPAMBlockKind:
		b, err := BlockFromJSON(raw)
		if err != nil {
			return fmt.Errorf("%s: IPAMBlock %q: %w", where, tm.Metadata.Name, err)
		}
		inv.Blocks = append(inv.Blocks, b)
	default:
		inv.Ignored = append(inv.Ignored, fmt.Sprintf("%s %s", tm.Kind, tm.Metadata.Name))
	}
	return nil
}

func (inv *Inventory) sort() {
	sort.SliceStable(inv.Nodes, func(i, j int) bool { return inv.Nodes[i].Name < inv.Nodes[j].Name })
	sort.SliceStable(inv.Blocks, func(i, j int) bool { return inv.Blocks[i].Name < inv.Blocks[j].Name })
}

// NodeFromObject extracts the routing facts of a Node. It never fails: what cannot be read is
// recorded in Problems and reported with the route table.
func NodeFromObject(n *corev1.Node) Node {
	out := Node{UID: string(n.UID), Name: n.Name}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("spec.podCIDRs: %q is not a CIDR", c))
			continue
		}
		out.PodCIDRs = append(out.PodCIDRs, p.Masked())
	}
	for _, a := range n.Status.Addresses {
		var list *[]netip.Addr
		switch a.Type {
		case corev1.NodeInternalIP:
			list = &out.InternalIPs
		case corev1.NodeExternalIP:
			list = &out.ExternalIPs
		default:
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("status.addresses: %s %q is not an IP address", a.Type, a.Address))
			continue
		}
		*list = append(*list, ip.Unmap())
	}
	for k, v := range n.Annotations {
		if !strings.HasPrefix(k, FlannelAnnotationPrefix) {
			continue
		}
		out.Flannel = true
		if k != FlannelPublicIP && k != FlannelPublicIPv6 {
			continue
		}
		ip, err := netip.ParseAddr(v)
		if err != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("annotation %s: %q is not an IP address", k, v))
			continue
		}
		out.FlannelPublicIPs = append(out.FlannelPublicIPs, ip.Unmap())
	}
	// Map iteration order is random; keep v4 before v6 for stable output.
	sort.Slice(out.FlannelPublicIPs, func(i, j int) bool { return out.FlannelPublicIPs[i].Less(out.FlannelPublicIPs[j]) })
	return out
}

// ipamBlock is the part of Calico's IPAMBlock we read (projectcalico/api, libcalico-go model).
type ipamBlock struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		CIDR        string  `json:"cidr"`
		Affinity    *string `json:"affinity"`
		Allocations []*int  `json:"allocations"`
		Attributes  []struct {
			HandleID  *string           `json:"handle_id"`
			Secondary map[string]string `json:"secondary"`
		} `json:"attributes"`
		Deleted bool `json:"deleted"`
	} `json:"spec"`
}

// BlockFromJSON reads a Calico IPAMBlock object (JSON). A block whose CIDR cannot be read is
// an error; everything else questionable is recorded in Problems.
func BlockFromJSON(raw []byte) (Block, error) {
	var ib ipamBlock
	if err := json.Unmarshal(raw, &ib); err != nil {
		return Block{}, err
	}
	b := Block{Name: ib.Metadata.Name}
	p, err := netip.ParsePrefix(ib.Spec.CIDR)
	if err != nil {
		return Block{}, fmt.Errorf("spec.cidr: %q is not a CIDR", ib.Spec.CIDR)
	}
	b.CIDR = p.Masked()
	b.Deleted = ib.Spec.Deleted
	if ib.Spec.Affinity != nil {
		b.Affinity = *ib.Spec.Affinity
		if host, ok := strings.CutPrefix(b.Affinity, "host:"); ok {
			b.Node = host
		}
	}
	// allocations[i] is the index into attributes for the i-th address of the block, or null.
	// Calico records the node of the pod that holds an address in attributes[].secondary.node;
	// when that node is not the block's owner, the address was borrowed.
	addr := b.CIDR.Addr()
	for i, a := range ib.Spec.Allocations {
		if i > 0 {
			addr = addr.Next()
		}
		if !addr.IsValid() || !b.CIDR.Contains(addr) {
			b.Problems = append(b.Problems, fmt.Sprintf("spec.allocations has %d entries, more than the block's addresses", len(ib.Spec.Allocations)))
			break
		}
		if a == nil {
			continue
		}
		if *a < 0 || *a >= len(ib.Spec.Attributes) {
			b.Problems = append(b.Problems, fmt.Sprintf("spec.allocations[%d] = %d names no attribute", i, *a))
			continue
		}
		node := ib.Spec.Attributes[*a].Secondary["node"]
		if node != "" && node != b.Node {
			b.Borrowed = append(b.Borrowed, Borrowed{IP: addr, Node: node})
		}
	}
	return b, nil
}
