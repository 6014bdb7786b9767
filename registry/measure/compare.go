package measure

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/routes"
)

// Contradiction is a provider address:port whose verdict a vantage's measurement disagrees
// with. The JSON tags are a contract (docs/probe.md).
type Contradiction struct {
	Vantage string        `json:"vantage"`
	Address string        `json:"address"`
	Port    int           `json:"port"`
	Verdict routes.Status `json:"verdict"`
	Reason  routes.Reason `json:"reason"`
	Node    string        `json:"node,omitempty"`
	// MissingRoute is the route the verdict says is missing (verdict unreachable by
	// unpublished-pod-route), which the measurement says works.
	MissingRoute *MissingRoute `json:"missingRoute,omitempty"`
	Result       probe.Result  `json:"result"`
	Detail       string        `json:"detail,omitempty"`
	MeasuredAt   time.Time     `json:"measuredAt"`
	ReceivedAt   time.Time     `json:"receivedAt"`
	// Services names a few services registered on the address (escaped); Registrations counts them.
	Services      []string `json:"services"`
	Registrations int      `json:"registrations"`
	// Hint says which fabric fact is probably wrong, for people.
	Hint string `json:"hint"`
}

// MissingRoute is a route as `check -o json` and `audit -o json` show it.
type MissingRoute struct {
	Prefix  string `json:"prefix"`
	NextHop string `json:"nextHop,omitempty"`
	Node    string `json:"node,omitempty"`
}

func missingRoute(r *routes.Route) *MissingRoute {
	if r == nil {
		return nil
	}
	m := &MissingRoute{Prefix: r.Prefix.String(), Node: r.Node}
	if r.NextHop.IsValid() {
		m.NextHop = r.NextHop.String()
	}
	return m
}

// Contradicts says whether measured result r disagrees with verdict v. Only routing is
// compared: a verdict says whether the network delivers a connection from outside, so
// "reachable" is contradicted by a connect that timed out or that the network called
// unreachable, and "unreachable" by any connection that was made (Result.Reached: answered,
// connected, even a wrong answer). A refused connect is no contradiction either way (a reset
// came back, so packets flow, yet nothing listens or a firewall rejects), nor is a local error,
// nor anything about the verdict unknown.
func Contradicts(v routes.Status, r probe.Result) bool {
	switch v {
	case routes.Reachable:
		return r == probe.Timeout || r == probe.Unreachable
	case routes.Unreachable:
		return r.Reached()
	}
	return false
}

// Compare finds the contradictions between the providers of res and the store's unexpired
// measurements, sorted by vantage, address and port. Each address:port is compared once per
// vantage (all registrations on it share the address's verdict).
func (s *Store) Compare(res *registry.Result) []Contradiction {
	out := []Contradiction{}
	if res == nil {
		return out
	}
	idx, _ := s.lookup()
	if len(idx) == 0 {
		return out
	}
	type seen struct {
		ap      netip.AddrPort
		vantage string
	}
	at := map[seen]int{}
	for i := range res.Providers {
		f := &res.Providers[i]
		a, err := netip.ParseAddr(strings.Trim(f.Address, "[]"))
		if err != nil || f.Port <= 0 || f.Port > 65535 {
			continue
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(f.Port))
		for _, e := range idx[ap] {
			k := seen{ap, e.Vantage}
			if j, ok := at[k]; ok {
				c := &out[j]
				c.Registrations++
				if len(c.Services) < probe.MaxServices && !slices.Contains(c.Services, f.Service) {
					c.Services = append(c.Services, f.Service)
				}
				continue
			}
			c := Check(f, e)
			if c == nil {
				continue
			}
			at[k] = len(out)
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Contradiction) int {
		if c := strings.Compare(a.Vantage, b.Vantage); c != 0 {
			return c
		}
		ap, _ := netip.ParseAddr(a.Address)
		bp, _ := netip.ParseAddr(b.Address)
		if c := ap.Compare(bp); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	return out
}

// hint names the fabric fact the verdict rests on, which the measurement says is wrong.
func hint(c *Contradiction) string {
	addr := netip.AddrPortFrom(netip.MustParseAddr(c.Address), uint16(c.Port)).String()
	node := ""
	if c.Node != "" {
		node = " of node " + c.Node
	}
	if c.Verdict == routes.Reachable {
		switch c.Reason {
		case routes.ReasonPublishedPodRoute:
			return fmt.Sprintf("the pod route%s is taken as published (listed in podRoutes.installed, announced, or announced by the CNI), "+
				"but %s was %s from %s: the gateway probably lacks the route, or a firewall drops on the way", node, addr, c.Result, c.Vantage)
		case routes.ReasonExternalNetwork:
			return fmt.Sprintf("%s lies in a network the fabric file lists as reachable, but was %s from %s: "+
				"the reachable range is wrong for this vantage, or a firewall drops on the way", addr, c.Result, c.Vantage)
		}
		return fmt.Sprintf("the verdict is reachable (%s), but %s was %s from %s", c.Reason, addr, c.Result, c.Vantage)
	}
	switch c.Reason {
	case routes.ReasonUnpublishedPodRoute:
		route := "its pod route" + node
		if c.MissingRoute != nil && c.MissingRoute.NextHop != "" {
			route = fmt.Sprintf("the route %s via %s", c.MissingRoute.Prefix, c.MissingRoute.NextHop)
		}
		return fmt.Sprintf("%s answered the connect from %s, so %s is in place: add it to podRoutes.installed in the fabric file "+
			"(or publish it), or this vantage is not outside the cluster network", addr, c.Vantage, route)
	case routes.ReasonServiceNetwork, routes.ReasonNeverReachable:
		return fmt.Sprintf("%s answered the connect from %s, though the fabric file says its network (%s) is never reachable "+
			"from outside: the unreachable or serviceCIDR list is wrong, or this vantage is inside the cluster network", addr, c.Vantage, c.Reason)
	}
	return fmt.Sprintf("the verdict is unreachable (%s), but %s answered the connect from %s: "+
		"this vantage may be inside the cluster network, or the fabric file is wrong", c.Reason, addr, c.Vantage)
}

// Counts are the contradictions per vantage (every vantage with live measurements present,
// at 0 when none), for metrics and summaries.
func (s *Store) Counts(res *registry.Result) map[string]int {
	out := map[string]int{}
	for _, v := range s.Vantages() {
		out[v.Name] = 0
	}
	for _, c := range s.Compare(res) {
		out[c.Vantage]++
	}
	return out
}
