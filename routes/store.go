package routes

import (
	"sync"
	"sync/atomic"
)

// Store holds the live inventory and hands out the current Table. Nodes are keyed by UID, so a
// node deleted and re-registered under the same name (a new UID, often a new pod CIDR) replaces
// its predecessor instead of leaving a stale route behind.
//
// Updates are cheap: they mark the table dirty. The table is rebuilt on the next read, so an
// informer's initial sync of thousands of nodes costs one build, not thousands.
type Store struct {
	mu     sync.Mutex
	nodes  map[string]Node  // by UID
	blocks map[string]Block // by name
	fabric *Fabric
	pub    Publisher

	dirty   atomic.Bool
	table   atomic.Pointer[Table]
	changed chan struct{}
}

// NewStore returns an empty store for a fabric (nil: DefaultFabric).
func NewStore(fab *Fabric, pub Publisher) *Store {
	if fab == nil {
		fab = DefaultFabric()
	}
	s := &Store{nodes: map[string]Node{}, blocks: map[string]Block{}, fabric: fab, pub: pub, changed: make(chan struct{}, 1)}
	s.table.Store(Build(nil, fab, pub))
	return s
}

// Table returns the current table, rebuilding it first if the inventory changed.
func (s *Store) Table() *Table {
	if !s.dirty.Load() {
		return s.table.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty.Load() {
		s.table.Store(Build(s.inventoryLocked(), s.fabric, s.pub))
		s.dirty.Store(false)
	}
	return s.table.Load()
}

// Changed is signalled (coalesced) after every change; read Table() to see it.
func (s *Store) Changed() <-chan struct{} { return s.changed }

func (s *Store) touch() {
	s.dirty.Store(true)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// SetFabric replaces the fabric (a reloaded fabric file).
func (s *Store) SetFabric(f *Fabric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fabric = f
	s.touch()
}

// SetPublisher replaces the publisher (publish: bgp: the speaker's latest status, or one that
// publishes nothing once the speaker is gone): the table is rebuilt on the next read.
func (s *Store) SetPublisher(p Publisher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pub = p
	s.touch()
}

// UpsertNode adds or replaces a node. Any entry with the same name but another UID is a
// previous incarnation of the node and is dropped.
func (s *Store) UpsertNode(n Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, old := range s.nodes {
		if old.Name == n.Name && uid != n.UID {
			delete(s.nodes, uid)
		}
	}
	s.nodes[n.UID] = n
	s.touch()
}

// DeleteNode removes the node with that UID; a re-registered node with another UID stays.
func (s *Store) DeleteNode(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nodes[uid]; ok {
		delete(s.nodes, uid)
		s.touch()
	}
}

// UpsertBlock adds or replaces a Calico block by name.
func (s *Store) UpsertBlock(b Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks[b.Name] = b
	s.touch()
}

// DeleteBlock removes a Calico block by name.
func (s *Store) DeleteBlock(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blocks[name]; ok {
		delete(s.blocks, name)
		s.touch()
	}
}

// Replace loads a whole inventory (from a file) in one step.
func (s *Store) Replace(inv *Inventory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = make(map[string]Node, len(inv.Nodes))
	for _, n := range inv.Nodes {
		key := n.UID
		if key == "" {
			key = "name/" + n.Name // files written by hand may lack UIDs
		}
		s.nodes[key] = n
	}
	s.blocks = make(map[string]Block, len(inv.Blocks))
	for _, b := range inv.Blocks {
		s.blocks[b.Name] = b
	}
	s.touch()
}

func (s *Store) inventoryLocked() *Inventory {
	inv := &Inventory{Nodes: make([]Node, 0, len(s.nodes)), Blocks: make([]Block, 0, len(s.blocks))}
	for _, n := range s.nodes {
		inv.Nodes = append(inv.Nodes, n)
	}
	for _, b := range s.blocks {
		inv.Blocks = append(inv.Blocks, b)
	}
	inv.sort()
	return inv
}
