package dashboard

import (
	"slices"
	"strings"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
)

// Change is one difference between two successive results, for the overview's "what changed
// recently".
type Change struct {
	At time.Time `json:"at"`
	// Change is added, removed or changed (verdict, reason, node or pod).
	Change  string        `json:"change"`
	Side    string        `json:"side"`
	Znode   string        `json:"znode"`
	Service string        `json:"service"`
	Address string        `json:"address"`
	Verdict routes.Status `json:"verdict"`
	Reason  routes.Reason `json:"reason"`
	// Was is the previous verdict and reason of a changed entry.
	WasVerdict routes.Status `json:"wasVerdict,omitempty"`
	WasReason  routes.Reason `json:"wasReason,omitempty"`
	Node       string        `json:"node,omitempty"`
	Pod        string        `json:"pod,omitempty"`
}

// ring keeps the last changes, newest last.
type ring struct {
	buf     []Change
	next    int
	full    bool
	dropped int // changes pushed out of the ring, over the process's life
}

func newRing(n int) *ring { return &ring{buf: make([]Change, n)} }

func (r *ring) push(c Change) {
	if len(r.buf) == 0 {
		r.dropped++
		return
	}
	if r.full {
		r.dropped++
	}
	r.buf[r.next] = c
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// newest returns up to n changes, newest first.
func (r *ring) newest(n int) []Change {
	size := r.next
	if r.full {
		size = len(r.buf)
	}
	n = min(n, size)
	out := make([]Change, 0, n)
	for k := range n {
		i := (r.next - 1 - k + len(r.buf)) % len(r.buf)
		out = append(out, r.buf[i])
	}
	return out
}

// diff records what changed from prev to cur, keyed by znode.
func diff(r *ring, prev, cur *index) {
	at := cur.res.JudgedAt
	if at.IsZero() {
		at = time.Now()
	}
	mk := func(kind string, f *registry.Finding) Change {
		return Change{At: at, Change: kind, Side: side(f), Znode: f.Znode, Service: f.Service, Address: hostPort(f.Address, f.Port),
			Verdict: f.Verdict, Reason: f.Reason, Node: f.Node, Pod: f.Pod}
	}
	var cs []Change
	for z, ref := range prev.byZnode {
		if _, ok := cur.byZnode[z]; !ok {
			cs = append(cs, mk("removed", prev.finding(ref)))
		}
	}
	for z, ref := range cur.byZnode {
		f := cur.finding(ref)
		pref, ok := prev.byZnode[z]
		if !ok {
			cs = append(cs, mk("added", f))
			continue
		}
		p := prev.finding(pref)
		if p.Verdict != f.Verdict || p.Reason != f.Reason || p.Node != f.Node || p.Pod != f.Pod {
			c := mk("changed", f)
			c.WasVerdict, c.WasReason = p.Verdict, p.Reason
			cs = append(cs, c)
		}
	}
	// Maps iterate in random order: push in a stable one (newest() shows the last first).
	slices.SortFunc(cs, func(a, b Change) int {
		if c := strings.Compare(b.Change, a.Change); c != 0 {
			return c
		}
		return strings.Compare(b.Znode, a.Znode)
	})
	for _, c := range cs {
		r.push(c)
	}
}

func side(f *registry.Finding) string {
	if f.Side == "" {
		return "provider"
	}
	return f.Side
}
