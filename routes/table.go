package routes

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gaissmai/bart"
)

// RouteSource says what a route was derived from.
type RouteSource string

// Route sources.
const (
	FromNode           RouteSource = "node"            // Node spec.podCIDRs
	FromFlannel        RouteSource = "flannel"         // Node spec.podCIDRs, flannel-managed node
	FromCalico         RouteSource = "calico"          // Calico IPAM block affine to the node
	FromCalicoBorrowed RouteSource = "calico-borrowed" // one address borrowed from another node's block
)

// Route is one pod route the external fabric needs: Prefix via NextHop (the node's address).
type Route struct {
	Prefix netip.Prefix
	// NextHop is invalid when the node has no usable address of the prefix's family, or the
	// prefix belongs to no known node; such a route cannot be rendered and is a Problem.
	NextHop   netip.Addr
	Node      string
	NodeUID   string
	Source    RouteSource
	Published bool
}

// String renders the route as "prefix via next-hop" for messages.
func (r Route) String() string {
	if !r.NextHop.IsValid() {
		return r.Prefix.String() + " (no next hop)"
	}
	return r.Prefix.String() + " via " + r.NextHop.String()
}

// Problem is something wrong with the inventory or fabric that affects the routes. Problems
// are reported with the table, never dropped silently.
type Problem struct {
	Node    string `json:"node,omitempty"`
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	switch {
	case p.Node != "":
		return "node " + p.Node + ": " + p.Message
	case p.Object != "":
		return p.Object + ": " + p.Message
	}
	return p.Message
}

// NodeState sums up one node's pod routes: published when every one of them is.
type NodeState struct {
	Name      string
	Routes    int
	Published int
}

// AllPublished is true when the node has routes and all are published.
func (s NodeState) AllPublished() bool { return s.Routes > 0 && s.Published == s.Routes }

// Publisher confirms which routes the fabric carries, for publish modes whose state lives
// outside the fabric file (bgp: the BGP speaker knows what its peers accepted).
type Publisher interface {
	Published(r Route) bool
}

// PublisherProblem is implemented by a Publisher that can say why it publishes nothing (a BGP
// speaker whose status is missing or whose heartbeat ran out): the table reports it as a
// problem, so that "every pod route unpublished" comes with its cause.
type PublisherProblem interface {
	Problem() string
}

// Table is the immutable result of Build: the desired pod routes, which of them are published,
// and the lookup structures that answer verdicts. Safe for concurrent use.
type Table struct {
	Fabric *Fabric
	// Routes are the desired pod routes, sorted by family, address and prefix length.
	Routes []Route
	// Stale are routes installed on the gateway (publish: static) that no node needs any more.
	Stale    []netip.Prefix
	Problems []Problem
	// Nodes holds every node of the inventory with its route state, sorted by name.
	Nodes []NodeState

	lookup *bart.Table[*entry]
	nodes  map[string]int // name -> index in Nodes
	// coverage is Coverage's answer, counted once: the webhook asks on every admission.
	coveredNodes, routedNodes int
}

type entryKind uint8

const (
	kindPod entryKind = iota
	kindService
	kindReachable
	kindNever
)

type entry struct {
	prefix netip.Prefix
	kind   entryKind
	route  *Route
}

// Build derives the route table from an inventory and a fabric. pub may be nil unless the
// fabric publishes through bgp.
func Build(inv *Inventory, fab *Fabric, pub Publisher) *Table {
	if fab == nil {
		fab = DefaultFabric()
	}
	if inv == nil {
		inv = &Inventory{}
	}
	t := &Table{Fabric: fab, lookup: &bart.Table[*entry]{}}
	b := builder{t: t, byName: make(map[string]*Node, len(inv.Nodes))}
	for i := range inv.Nodes {
		n := &inv.Nodes[i]
		if prev, dup := b.byName[n.Name]; dup {
			t.problem(n.Name, "", fmt.Sprintf("appears twice in the inventory (UIDs %s and %s); using the first", prev.UID, n.UID))
			continue
		}
		b.byName[n.Name] = n
		for _, msg := range n.Problems {
			t.problem(n.Name, "", msg)
		}
	}

	source := fab.Source
	if source == SourceAuto {
		source = SourceNodes
		for _, blk := range inv.Blocks {
			if !blk.Deleted {
				source = SourceCalico
				break
			}
		}
	}
	switch source {
	case SourceCalico:
		b.fromBlocks(inv.Blocks)
	default:
		b.fromNodes(inv.Nodes, source == SourceFlannel)
	}
	b.finish(inv.Nodes, pub)
	return t
}

type builder struct {
	t      *Table
	byName map[string]*Node
}

func (t *Table) problem(node, object, msg string) {
	t.Problems = append(t.Problems, Problem{Node: node, Object: object, Message: msg})
}

func (b *builder) fromNodes(nodes []Node, flannel bool) {
	src := FromNode
	if flannel {
		src = FromFlannel
	}
	for i := range nodes {
		n := &nodes[i]
		if b.byName[n.Name] != n {
			continue // duplicate, reported
		}
		if flannel && !n.Flannel {
			b.t.problem(n.Name, "", "has no flannel annotations (flannel.alpha.coreos.com/*): is flannel running on it with the kube subnet manager?")
		}
		if len(n.PodCIDRs) == 0 {
			b.t.problem(n.Name, "", "has no pod CIDR (spec.podCIDRs is empty): is the controller manager allocating node CIDRs?")
		}
		for _, p := range n.PodCIDRs {
			b.add(Route{Prefix: p, Node: n.Name, NodeUID: n.UID, Source: src})
		}
	}
}

func (b *builder) fromBlocks(blocks []Block) {
	for _, blk := range blocks {
		if blk.Deleted {
			continue
		}
		obj := "IPAMBlock " + blk.Name
		for _, msg := range blk.Problems {
			b.t.problem("", obj, msg)
		}
		r := Route{Prefix: blk.CIDR, Node: blk.Node, Source: FromCalico}
		switch {
		case blk.Node == "" && blk.Affinity == "":
			b.t.problem("", obj, fmt.Sprintf("block %s has no affinity: its pods' addresses cannot be routed to a node", blk.CIDR))
		case blk.Node == "":
			b.t.problem("", obj, fmt.Sprintf("block %s has affinity %q, not host:<node>: it cannot be routed to a node", blk.CIDR, blk.Affinity))
		case b.byName[blk.Node] == nil:
			b.t.problem("", obj, fmt.Sprintf("block %s is affine to node %q, which is not in the inventory", blk.CIDR, blk.Node))
		default:
			r.NodeUID = b.byName[blk.Node].UID
		}
		b.add(r)
		for _, bw := range blk.Borrowed {
			br := Route{Prefix: netip.PrefixFrom(bw.IP, bw.IP.BitLen()), Node: bw.Node, Source: FromCalicoBorrowed}
			if n := b.byName[bw.Node]; n != nil {
				br.NodeUID = n.UID
			} else {
				b.t.problem("", obj, fmt.Sprintf("address %s is used on node %q, which is not in the inventory", bw.IP, bw.Node))
			}
			b.add(br)
		}
	}
}

func (b *builder) add(r Route) {
	if n := b.byName[r.Node]; n != nil {
		r.NextHop = nextHop(n, r.Prefix.Addr().Is4(), b.t.Fabric.NextHop)
		if !r.NextHop.IsValid() {
			fam := "IPv4"
			if !r.Prefix.Addr().Is4() {
				fam = "IPv6"
			}
			b.t.problem(r.Node, "", fmt.Sprintf("has no %s %s address for pod route %s: set podRoutes.nextHop to an address kind the node has", fam, b.t.Fabric.NextHop, r.Prefix))
		}
	}
	b.t.Routes = append(b.t.Routes, r)
}

func nextHop(n *Node, v4 bool, kind NextHop) netip.Addr {
	var list []netip.Addr
	switch kind {
	case NextHopExternalIP:
		list = n.ExternalIPs
	case NextHopFlannelPublicIP:
		list = n.FlannelPublicIPs
	default:
		list = n.InternalIPs
	}
	for _, a := range list {
		if a.Is4() == v4 {
			return a
		}
	}
	return netip.Addr{}
}

// comparePrefix orders IPv4 before IPv6, then by address, then shorter prefixes first.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

func (b *builder) finish(nodes []Node, pub Publisher) {
	t := b.t
	slices.SortStableFunc(t.Routes, func(x, y Route) int {
		if c := comparePrefix(x.Prefix, y.Prefix); c != 0 {
			return c
		}
		return strings.Compare(x.Node, y.Node)
	})
	// The same prefix on two nodes cannot be routed: keep the first, report the conflict.
	kept := t.Routes[:0]
	for _, r := range t.Routes {
		if n := len(kept); n > 0 && kept[n-1].Prefix == r.Prefix {
			if first := kept[n-1]; first.Node != r.Node {
				t.problem(r.Node, "", fmt.Sprintf("pod prefix %s is also assigned to node %s; routing it to %s only", r.Prefix, first.Node, first.Node))
			}
			continue
		}
		kept = append(kept, r)
	}
	t.Routes = kept

	installed := make(map[netip.Prefix]bool, len(t.Fabric.Installed))
	for _, p := range t.Fabric.Installed {
		installed[p] = true
	}
	if t.Fabric.Publish == PublishBGP && pub == nil {
		t.problem("", "", "publish: bgp, but no BGP publisher runs in this process: every pod route is reported unpublished")
	}
	if pp, ok := pub.(PublisherProblem); ok && t.Fabric.Publish == PublishBGP {
		if msg := pp.Problem(); msg != "" {
			t.problem("", "", msg)
		}
	}
	desired := make(map[netip.Prefix]bool, len(t.Routes))
	for i := range t.Routes {
		r := &t.Routes[i]
		desired[r.Prefix] = true
		switch t.Fabric.Publish {
		case PublishStatic:
			r.Published = installed[r.Prefix]
		case PublishCNI:
			r.Published = true
		case PublishBGP:
			r.Published = pub != nil && t.withinBGP(r) && pub.Published(*r)
		}
	}
	for _, p := range t.Fabric.Installed {
		if !desired[p] {
			t.Stale = append(t.Stale, p)
		}
	}
	slices.SortFunc(t.Stale, comparePrefix)
	t.Stale = slices.Compact(t.Stale)

	// One longest-prefix table answers every verdict. Routes go in sorted order, so a covering
	// prefix is always in the table before the prefixes it covers: one LPM query per route finds
	// overlaps between nodes (two nodes claiming the same pods: LPM still answers, but someone
	// must look). A borrowed address inside its block is expected, not an overlap.
	entries := make([]entry, 0, len(t.Routes)+len(t.Fabric.ServiceCIDRs)+len(t.Fabric.Reachable)+len(t.Fabric.Unreachable))
	for i := range t.Routes {
		r := &t.Routes[i]
		if r.Source != FromCalicoBorrowed {
			if sp, other, ok := t.lookup.LookupPrefixLPM(r.Prefix); ok && other.route.Node != r.Node && other.route.Source != FromCalicoBorrowed {
				t.problem(r.Node, "", fmt.Sprintf("pod prefix %s overlaps %s of node %s", r.Prefix, sp, other.route.Node))
			}
		}
		entries = append(entries, entry{prefix: r.Prefix, kind: kindPod, route: r})
		t.lookup.Insert(r.Prefix, &entries[len(entries)-1])
	}
	// Service and reachable networks next: an explicit fabric statement about the very same
	// prefix wins over a derived pod route.
	for _, p := range t.Fabric.ServiceCIDRs {
		entries = append(entries, entry{prefix: p, kind: kindService})
		t.lookup.Insert(p, &entries[len(entries)-1])
	}
	for _, p := range t.Fabric.Reachable {
		entries = append(entries, entry{prefix: p, kind: kindReachable})
		t.lookup.Insert(p, &entries[len(entries)-1])
	}
	// Unreachable networks win over everything, however specific the other match: they replace
	// every entry they cover, so that a single lookup answers.
	for _, p := range t.Fabric.Unreachable {
		entries = append(entries, entry{prefix: p, kind: kindNever})
		never := &entries[len(entries)-1]
		var covered []netip.Prefix
		for sub := range t.lookup.Subnets(p) {
			covered = append(covered, sub)
		}
		for _, sub := range covered {
			t.lookup.Insert(sub, never)
		}
		t.lookup.Insert(p, never)
	}

	t.nodes = make(map[string]int, len(nodes))
	for _, n := range nodes {
		if _, dup := t.nodes[n.Name]; dup {
			continue
		}
		t.nodes[n.Name] = len(t.Nodes)
		t.Nodes = append(t.Nodes, NodeState{Name: n.Name})
	}
	for _, r := range t.Routes {
		if i, ok := t.nodes[r.Node]; ok {
			t.Nodes[i].Routes++
			if r.Published {
				t.Nodes[i].Published++
			}
		}
	}
	slices.SortFunc(t.Nodes, func(x, y NodeState) int { return strings.Compare(x.Name, y.Name) })
	for i, n := range t.Nodes {
		t.nodes[n.Name] = i
		if n.Routes > 0 {
			t.routedNodes++
			if n.AllPublished() {
				t.coveredNodes++
			}
		}
	}
}

// Node returns the route state of a node by name.
func (t *Table) Node(name string) (NodeState, bool) {
	i, ok := t.nodes[name]
	if !ok {
		return NodeState{}, false
	}
	return t.Nodes[i], true
}

// Missing returns the desired routes that are not published, including routes without a next
// hop (which cannot be rendered; callers that render skip them and report the problem).
func (t *Table) Missing() []Route {
	var out []Route
	for _, r := range t.Routes {
		if !r.Published {
			out = append(out, r)
		}
	}
	return out
}

// Coverage counts nodes whose pod routes are all published, and nodes with routes at all.
// The webhook's auto mode chooses pod or host addresses from it.
func (t *Table) Coverage() (published, total int) { return t.coveredNodes, t.routedNodes }
