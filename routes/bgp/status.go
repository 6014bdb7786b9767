package bgp

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/dubboreach/dubboreach/routes"
)

// Status is what the speaker tells the rest of dubboreach: its sessions and, per route, the
// Established peers it was sent to (read from each peer's Adj-RIB-Out, not from our intent).
// It is a routes.Publisher: under publish: bgp, a route is published when Status says so.
// Its JSON form is status.json in the dubboreach-bgp ConfigMap.
type Status struct {
	Updated     time.Time          `json:"updated"`
	AnnouncedTo routes.AnnouncedTo `json:"announcedTo"`
	Peers       []PeerStatus       `json:"peers"`
	Routes      []AnnouncedRoute   `json:"routes"`

	index map[netip.Prefix]*AnnouncedRoute
}

// PeerStatus is one session.
type PeerStatus struct {
	Address   netip.Addr `json:"address"`
	ASN       uint32     `json:"asn"`
	State     string     `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Since     time.Time  `json:"since"`
	Flaps     int        `json:"flaps"`     // times the session went down after being Established
	Announced int        `json:"announced"` // routes in its Adj-RIB-Out
}

// Established reports whether the session is up.
func (p PeerStatus) Established() bool { return p.State == "established" }

// AnnouncedRoute is one prefix as the Established peers were sent it.
type AnnouncedRoute struct {
	Prefix  netip.Prefix `json:"prefix"`
	NextHop netip.Addr   `json:"nextHop"`
	Peers   []netip.Addr `json:"peers"`
}

// Published implements routes.Publisher: r is published when it was sent, with r's next hop,
// to one Established peer (announcedTo: any) or to every configured peer (all).
func (st *Status) Published(r routes.Route) bool {
	if st == nil {
		return false
	}
	a := st.index[r.Prefix]
	if a == nil || a.NextHop != r.NextHop || len(a.Peers) == 0 {
		return false
	}
	if st.AnnouncedTo == routes.AnnouncedToAll {
		return len(a.Peers) == len(st.Peers)
	}
	return true
}

// Problem implements routes.PublisherProblem: a live speaker that publishes nothing because no
// session is Established (or, with announcedTo: all, not every one) says which peers are down.
func (st *Status) Problem() string {
	if st == nil {
		return ""
	}
	var down []string
	for _, p := range st.Peers {
		if !p.Established() {
			down = append(down, fmt.Sprintf("%s (AS %d) %s since %s", p.Address, p.ASN, p.State, p.Since.UTC().Format(time.RFC3339)))
		}
	}
	up := len(st.Peers) - len(down)
	switch {
	case len(down) == 0:
		return ""
	case up == 0:
		return fmt.Sprintf("publish: bgp, but no BGP session of the speaker is Established: %s: every pod route reads unpublished", strings.Join(down, ", "))
	case st.AnnouncedTo == routes.AnnouncedToAll:
		return fmt.Sprintf("publish: bgp with announcedTo: all, but %d of %d BGP sessions are down: %s: every pod route reads unpublished", len(down), len(st.Peers), strings.Join(down, ", "))
	}
	return ""
}

// PeersUp counts Established sessions.
func (st *Status) PeersUp() (n int) {
	for _, p := range st.Peers {
		if p.Established() {
			n++
		}
	}
	return n
}

func (st *Status) reindex() {
	st.index = make(map[netip.Prefix]*AnnouncedRoute, len(st.Routes))
	for i := range st.Routes {
		st.index[st.Routes[i].Prefix] = &st.Routes[i]
	}
}

// maxStatusBytes bounds a status document: 20,000 routes to a few peers is a few MB, and a
// ConfigMap holds at most 1 MiB anyway.
const maxStatusBytes = 8 << 20

// ParseStatus reads status.json as the speaker wrote it. The document comes from the cluster,
// so it is checked: every prefix canonical, every address valid.
func ParseStatus(data []byte) (*Status, error) {
	if len(data) > maxStatusBytes {
		return nil, fmt.Errorf("BGP status: %d bytes is more than %d", len(data), maxStatusBytes)
	}
	st := &Status{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("BGP status: %w", err)
	}
	switch st.AnnouncedTo {
	case routes.AnnouncedToAny, routes.AnnouncedToAll:
	default:
		return nil, fmt.Errorf("BGP status: announcedTo %q is neither any nor all", st.AnnouncedTo)
	}
	for i, r := range st.Routes {
		if !r.Prefix.IsValid() || r.Prefix.Masked() != r.Prefix || !r.NextHop.IsValid() {
			return nil, fmt.Errorf("BGP status: routes[%d]: %v via %v is not a route", i, r.Prefix, r.NextHop)
		}
	}
	st.reindex()
	return st, nil
}

// Status reads the sessions and every Established peer's Adj-RIB-Out.
func (s *Speaker) Status() (*Status, error) {
	st := &Status{Updated: time.Now().UTC().Truncate(time.Millisecond), AnnouncedTo: s.cfg.AnnouncedTo}
	s.mu.Lock()
	for _, p := range s.cfg.Peers {
		ps := s.peers[p.Address]
		st.Peers = append(st.Peers, PeerStatus{Address: p.Address, ASN: p.ASN, State: stateName(ps.state), Since: ps.since.UTC().Truncate(time.Millisecond), Flaps: ps.flaps})
	}
	s.mu.Unlock()
	byPrefix := map[netip.Prefix]*AnnouncedRoute{}
	var errs []error
	for i := range st.Peers {
		p := &st.Peers[i]
		if !p.Established() {
			continue
		}
		for _, f := range families(s.cfg) {
			fam := gobgp.NewFamily(uint16(f.Afi), uint8(f.Safi))
			err := s.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_OUT, Name: p.Address.String(), Family: fam},
				func(_ gobgp.NLRI, paths []*apiutil.Path) {
					for _, path := range paths {
						if path.Withdrawal || path.Filtered {
							continue
						}
						pfx, nh := prefixOf(path), nextHopOf(path)
						if !pfx.IsValid() || !nh.IsValid() {
							continue
						}
						a := byPrefix[pfx]
						if a == nil {
							a = &AnnouncedRoute{Prefix: pfx, NextHop: nh}
							byPrefix[pfx] = a
						}
						if a.NextHop == nh && !slices.Contains(a.Peers, p.Address) {
							a.Peers = append(a.Peers, p.Address)
							p.Announced++
						}
					}
				})
			if err != nil {
				errs = append(errs, fmt.Errorf("reading what peer %s was sent: %w", p.Address, err))
			}
		}
	}
	for _, a := range byPrefix {
		st.Routes = append(st.Routes, *a)
	}
	slices.SortFunc(st.Routes, func(x, y AnnouncedRoute) int {
		if c := x.Prefix.Addr().Compare(y.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(x.Prefix.Bits(), y.Prefix.Bits())
	})
	st.reindex()
	return st, errors.Join(errs...)
}

func nextHopOf(p *apiutil.Path) netip.Addr {
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *gobgp.PathAttributeNextHop:
			return a.Value
		case *gobgp.PathAttributeMpReachNLRI:
			return a.Nexthop
		}
	}
	return netip.Addr{}
}
