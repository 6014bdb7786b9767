package dashboard

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
)

// index is built once per Result (the Holder hands out immutable results): interned facet
// values, one lower-cased search buffer, and sort orders computed on first use. Filtering a
// page then walks small integers, never strings.
type index struct {
	res *registry.Result
	gen uint64
	// sides: providers, consumers.
	providers, consumers *sideIndex
	byZnode              map[string]ref
}

type ref struct {
	consumer bool
	i        int32
}

func (x *index) finding(r ref) *registry.Finding {
	if r.consumer {
		return &x.res.Consumers[r.i]
	}
	return &x.res.Providers[r.i]
}

func (x *index) side(consumers bool) *sideIndex {
	if consumers {
		return x.consumers
	}
	return x.providers
}

// Facet fields, interned per side.
const (
	fService = iota
	fApplication
	fReason
	fNamespace
	fNode
	fProtocol
	fKind
	nFacets
)

var facetNames = [nFacets]string{"service", "application", "reason", "namespace", "node", "protocol", "kind"}

type dict struct {
	values []string
	ids    map[string]int32
	counts []int
	// rank is each value's position in sorted order (computed with the first sort on it).
	rank []int32
}

func (d *dict) id(s string) int32 {
	if id, ok := d.ids[s]; ok {
		d.counts[id]++
		return id
	}
	id := int32(len(d.values))
	d.ids[s] = id
	d.values = append(d.values, s)
	d.counts = append(d.counts, 1)
	return id
}

func (d *dict) ranks() []int32 {
	if d.rank == nil {
		order := make([]int32, len(d.values))
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(a, b int32) int { return strings.Compare(d.values[a], d.values[b]) })
		d.rank = make([]int32, len(d.values))
		for r, id := range order {
			d.rank[id] = int32(r)
		}
	}
	return d.rank
}

type row struct {
	facet    [nFacets]int32
	verdict  uint8 // severity rank: 0 unreachable, 1 unknown, 2 reachable
	flagged  bool
	hayStart int32
}

func verdictRank(s routes.Status) uint8 {
	switch s {
	case routes.Unreachable:
		return 0
	case routes.Reachable:
		return 2
	}
	return 1
}

type sideIndex struct {
	findings []registry.Finding
	rows     []row
	dicts    [nFacets]*dict
	// hay holds every row's searchable text, lower-cased, rows separated by '\n'.
	hay      []byte
	byV      [3]int
	flagged  int
	stale    int
	noListen int

	mu     sync.Mutex
	orders map[string][]int32

	summaryOnce sync.Once
	sum         SideSummary
}

func newSideIndex(fs []registry.Finding) *sideIndex {
	s := &sideIndex{findings: fs, rows: make([]row, len(fs)), orders: map[string][]int32{}}
	for i := range s.dicts {
		s.dicts[i] = &dict{ids: map[string]int32{}}
	}
	var hay bytes.Buffer
	hay.Grow(len(fs) * 96)
	for i := range fs {
		f := &fs[i]
		r := &s.rows[i]
		r.facet[fService] = s.dicts[fService].id(f.Service)
		r.facet[fApplication] = s.dicts[fApplication].id(f.Application)
		r.facet[fReason] = s.dicts[fReason].id(string(f.Reason))
		r.facet[fNamespace] = s.dicts[fNamespace].id(f.PodNamespace)
		r.facet[fNode] = s.dicts[fNode].id(f.Node)
		r.facet[fProtocol] = s.dicts[fProtocol].id(f.Protocol)
		r.facet[fKind] = s.dicts[fKind].id(f.Kind)
		r.verdict = verdictRank(f.Verdict)
		r.flagged = f.Flagged()
		s.byV[r.verdict]++
		if r.flagged {
			s.flagged++
		}
		if f.Stale {
			s.stale++
		}
		if f.NoListener {
			s.noListen++
		}
		r.hayStart = int32(hay.Len())
		for _, part := range [...]string{f.Service, f.Application, hostPort(f.Address, f.Port), f.Protocol, f.Pod, f.Node, string(f.Reason), string(f.Verdict), f.Kind} {
			writeLower(&hay, part)
			hay.WriteByte('\t')
		}
		hay.WriteByte('\n')
	}
	s.hay = hay.Bytes()
	return s
}

// writeLower appends s lower-cased (ASCII fast path); tabs and newlines become spaces so that
// they cannot join fields or rows.
func writeLower(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			b.WriteString(strings.Map(func(r rune) rune {
				if r == '\t' || r == '\n' {
					return ' '
				}
				return r
			}, strings.ToLower(s[i:])))
			return
		}
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '\t' || c == '\n':
			c = ' '
		}
		b.WriteByte(c)
	}
}

func hostPort(addr string, port int) string {
	if port == 0 {
		return addr
	}
	if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "[") {
		addr = "[" + addr + "]"
	}
	return addr + ":" + strconv.Itoa(port)
}

// search marks the rows whose text contains q (lower-cased, not empty).
func (s *sideIndex) search(q string) []bool {
	hit := make([]bool, len(s.rows))
	needle := []byte(strings.ToLower(q))
	pos, i := 0, 0
	for pos < len(s.hay) {
		k := bytes.Index(s.hay[pos:], needle)
		if k < 0 {
			break
		}
		at := pos + k
		// Rows are in buffer order: move the cursor to the row holding the match.
		for i+1 < len(s.rows) && int(s.rows[i+1].hayStart) <= at {
			i++
		}
		hit[i] = true
		if i+1 == len(s.rows) {
			break
		}
		pos = int(s.rows[i+1].hayStart)
	}
	return hit
}

// Sort fields of the providers and consumers tables.
var sortFields = []string{"verdict", "service", "application", "protocol", "address", "reason", "namespace", "pod", "node", "kind", "znode"}

// order returns the rows sorted by field ascending (ties in the default order: verdict
// severity, service, address), computed once per Result.
func (s *sideIndex) order(field string) []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[field]; ok {
		return o
	}
	o := make([]int32, len(s.rows))
	for i := range o {
		o[i] = int32(i)
	}
	var addrs []netip.Addr
	addrKey := func() {
		if addrs == nil {
			addrs = make([]netip.Addr, len(s.findings))
			for i := range s.findings {
				a, err := netip.ParseAddr(strings.Trim(s.findings[i].Address, "[]"))
				if err == nil {
					addrs[i] = a
				}
			}
		}
	}
	byFacet := func(f int) func(a, b int32) int {
		rank := s.dicts[f].ranks()
		return func(a, b int32) int { return cmp.Compare(rank[s.rows[a].facet[f]], rank[s.rows[b].facet[f]]) }
	}
	byAddress := func(a, b int32) int {
		addrKey()
		x, y := addrs[a], addrs[b]
		if c := cmp.Compare(boolInt(!x.IsValid()), boolInt(!y.IsValid())); c != 0 {
			return c // addresses before hostnames
		}
		if c := x.Compare(y); c != 0 {
			return c
		}
		if !x.IsValid() {
			if c := strings.Compare(s.findings[a].Address, s.findings[b].Address); c != 0 {
				return c
			}
		}
		return cmp.Compare(s.findings[a].Port, s.findings[b].Port)
	}
	byVerdict := func(a, b int32) int { return cmp.Compare(s.rows[a].verdict, s.rows[b].verdict) }
	byService := byFacet(fService)
	var primary func(a, b int32) int
	switch field {
	case "verdict":
		primary = byVerdict
	case "service":
		primary = byService
	case "application":
		primary = byFacet(fApplication)
	case "protocol":
		primary = byFacet(fProtocol)
	case "address":
		primary = byAddress
	case "reason":
		primary = byFacet(fReason)
	case "namespace":
		primary = byFacet(fNamespace)
	case "pod":
		primary = func(a, b int32) int { return strings.Compare(s.findings[a].Pod, s.findings[b].Pod) }
	case "node":
		primary = byFacet(fNode)
	case "kind":
		primary = byFacet(fKind)
	case "znode":
		primary = func(a, b int32) int { return strings.Compare(s.findings[a].Znode, s.findings[b].Znode) }
	}
	slices.SortStableFunc(o, func(a, b int32) int {
		if c := primary(a, b); c != 0 {
			return c
		}
		if c := byVerdict(a, b); c != 0 {
			return c
		}
		if c := byService(a, b); c != 0 {
			return c
		}
		return byAddress(a, b)
	})
	s.orders[field] = o
	return o
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// query is a validated filter of one side.
type query struct {
	consumers bool
	verdict   int // -1: any
	facet     [nFacets]string
	has       [nFacets]bool
	q         string
	flagged   bool
	// contradicted keeps only providers whose marks say so (marks nil: none).
	contradicted bool
	marks        []uint8
	sort         string
	desc         bool
	page         int
	limit        int
}

// run filters, sorts and pages. total counts every match.
func (s *sideIndex) run(qr *query) (page []int32, total int) {
	var want [nFacets]int32
	for f := range nFacets {
		if !qr.has[f] {
			continue
		}
		id, ok := s.dicts[f].ids[qr.facet[f]]
		if !ok {
			return nil, 0
		}
		want[f] = id
	}
	var hit []bool
	if qr.q != "" {
		hit = s.search(qr.q)
	}
	o := s.order(qr.sort)
	skip := (qr.page - 1) * qr.limit
	page = make([]int32, 0, qr.limit)
	n := len(o)
	for k := range n {
		i := o[k]
		if qr.desc {
			i = o[n-1-k]
		}
		r := &s.rows[i]
		if qr.verdict >= 0 && int(r.verdict) != qr.verdict {
			continue
		}
		if qr.flagged && !r.flagged {
			continue
		}
		if qr.contradicted && (qr.marks == nil || qr.marks[i] != markContradicted) {
			continue
		}
		if hit != nil && !hit[i] {
			continue
		}
		ok := true
		for f := range nFacets {
			if qr.has[f] && r.facet[f] != want[f] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if total >= skip && len(page) < qr.limit {
			page = append(page, i)
		}
		total++
	}
	return page, total
}

func buildIndex(r *registry.Result, gen uint64) *index {
	x := &index{res: r, gen: gen, providers: newSideIndex(r.Providers), consumers: newSideIndex(r.Consumers),
		byZnode: make(map[string]ref, len(r.Providers)+len(r.Consumers))}
	for i := range r.Providers {
		x.byZnode[r.Providers[i].Znode] = ref{i: int32(i)}
	}
	for i := range r.Consumers {
		x.byZnode[r.Consumers[i].Znode] = ref{consumer: true, i: int32(i)}
	}
	return x
}
