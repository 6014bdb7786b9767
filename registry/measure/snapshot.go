package measure

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/routes"
)

// Snapshot is an immutable view of a Store's live measurements, indexed by address:port, for
// readers that look up many addresses at once (the dashboard beside every verdict). A Store
// hands out the same Snapshot until a report changes it or its oldest entry expires, so a
// reader may cache what it derives from one (compare pointers).
type Snapshot struct {
	// Version grows with every change of the store; equal versions hold equal measurements.
	Version  uint64
	byAddr   map[netip.AddrPort][]Entry
	vantages []Vantage
	expires  time.Time
}

// For returns the live measurements of ap, one per vantage, sorted by vantage name. The slice
// is shared: do not modify it.
func (sn *Snapshot) For(ap netip.AddrPort) []Entry {
	if sn == nil {
		return nil
	}
	return sn.byAddr[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
}

// Vantages summarizes the vantages with live measurements, by name.
func (sn *Snapshot) Vantages() []Vantage {
	if sn == nil {
		return nil
	}
	return sn.vantages
}

// Len is the number of address:ports measured by at least one vantage.
func (sn *Snapshot) Len() int {
	if sn == nil {
		return 0
	}
	return len(sn.byAddr)
}

// Snapshot returns the live measurements as an immutable index (the same pointer while
// nothing changed).
func (s *Store) Snapshot() *Snapshot {
	now := s.o.Now()
	s.mu.RLock()
	sn := s.snap
	ok := sn != nil && sn.Version == s.version && now.Before(sn.expires)
	s.mu.RUnlock()
	if ok {
		return sn
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn := s.snap; sn != nil && sn.Version == s.version && now.Before(sn.expires) {
		return sn
	}
	s.expireLocked(now)
	sn = &Snapshot{Version: s.version, byAddr: make(map[netip.AddrPort][]Entry, s.total), vantages: []Vantage{},
		expires: now.Add(s.o.TTL)}
	names := make([]string, 0, len(s.vantages))
	for n := range s.vantages {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := s.vantages[n]
		sv := Vantage{Name: n, LastReport: v.last, Measurements: len(v.byAddr), Results: map[probe.Result]int{}}
		for ap, e := range v.byAddr {
			sn.byAddr[ap] = append(sn.byAddr[ap], *e) // names in order: each list is sorted by vantage
			sv.Results[e.Result]++
			if x := e.ReceivedAt.Add(s.o.TTL); x.Before(sn.expires) {
				sn.expires = x
			}
		}
		sn.vantages = append(sn.vantages, sv)
	}
	s.snap = sn
	return sn
}

// Updated returns a channel closed at the next accepted report (for server-sent events).
func (s *Store) Updated() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.updated
}

// Check compares one provider registration with one measurement of its address:port: the
// contradiction (with its hint) when the measurement disagrees with the verdict, else nil.
// Compare uses it for every provider; the dashboard for the rows it shows.
func Check(f *registry.Finding, e *Entry) *Contradiction {
	if !Contradicts(f.Verdict, e.Result) {
		return nil
	}
	c := &Contradiction{Vantage: e.Vantage, Address: e.Address, Port: e.Port, Verdict: f.Verdict, Reason: f.Reason,
		Node: f.Node, MissingRoute: missingRoute(f.MissingRoute), Result: e.Result, Detail: e.Detail, MeasuredAt: e.MeasuredAt,
		ReceivedAt: e.ReceivedAt, Services: []string{f.Service}, Registrations: 1}
	c.Hint = hint(c)
	return c
}

// Severity orders results worst first for people: what the network dropped or refused before
// what it delivered (timeout, unreachable, refused, error, wrong-answer, connected, answered).
func Severity(r probe.Result) int {
	switch r {
	case probe.Timeout:
		return 0
	case probe.Unreachable:
		return 1
	case probe.Refused:
		return 2
	case probe.Failed:
		return 3
	case probe.WrongAnswer:
		return 4
	case probe.Connected:
		return 5
	case probe.Answered:
		return 6
	}
	return 3
}

// SortWorstFirst orders measurements of one address for people: those that contradict the
// verdict v first, then by Severity, then by vantage.
func SortWorstFirst(es []Entry, v routes.Status) {
	slices.SortStableFunc(es, func(a, b Entry) int {
		ca, cb := Contradicts(v, a.Result), Contradicts(v, b.Result)
		if ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(Severity(a.Result), Severity(b.Result)); c != 0 {
			return c
		}
		return strings.Compare(a.Vantage, b.Vantage)
	})
}
