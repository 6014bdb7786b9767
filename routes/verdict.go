package routes

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Status is the answer to "can the network outside the cluster reach this address?".
type Status string

// Statuses.
const (
	Reachable   Status = "reachable"
	Unreachable Status = "unreachable"
	Unknown     Status = "unknown"
)

// Reason says why an address got its status. The set is part of the JSON contract.
type Reason string

// Reasons.
const (
	ReasonExternalNetwork     Reason = "external-network"      // in spec.reachable
	ReasonPublishedPodRoute   Reason = "published-pod-route"   // in a node's pod prefix whose route is published
	ReasonUnpublishedPodRoute Reason = "unpublished-pod-route" // in a node's pod prefix whose route is missing
	ReasonNoNextHop           Reason = "pod-route-without-next-hop"
	ReasonServiceNetwork      Reason = "service-network" // a ClusterIP: virtual, only inside the cluster
	ReasonNeverReachable      Reason = "never-reachable" // in spec.unreachable
	ReasonLoopback            Reason = "loopback"
	ReasonLinkLocal           Reason = "link-local"
	ReasonUnspecified         Reason = "unspecified"
	ReasonMulticast           Reason = "multicast"
	ReasonNoMatchingNetwork   Reason = "no-matching-network"
)

// Verdict is the core's answer for one address.
type Verdict struct {
	Address netip.Addr
	Status  Status
	Reason  Reason
	// Prefix is the network that decided the verdict (pod prefix, reachable or unreachable
	// network, service range); invalid for special addresses and no-matching-network.
	Prefix netip.Prefix
	// Route is the pod route covering the address, published or not; nil otherwise.
	// It points into the Table and must not be modified.
	Route *Route
}

// Node is the node whose pod prefix holds the address, if any.
func (v Verdict) Node() string {
	if v.Route == nil {
		return ""
	}
	return v.Route.Node
}

// MissingRoute is the route the fabric lacks for this address, or nil.
func (v Verdict) MissingRoute() *Route {
	if v.Route == nil || v.Route.Published {
		return nil
	}
	return v.Route
}

// Check returns the verdict for one address. It does not allocate and is safe for concurrent use.
func (t *Table) Check(addr netip.Addr) Verdict {
	addr = addr.Unmap().WithZone("")
	v := Verdict{Address: addr, Status: Unreachable}
	switch {
	case !addr.IsValid() || addr.IsUnspecified():
		v.Reason = ReasonUnspecified
		return v
	case addr.IsLoopback():
		v.Reason = ReasonLoopback
		return v
	case addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast():
		v.Reason = ReasonLinkLocal
		return v
	case addr.IsMulticast():
		v.Reason = ReasonMulticast
		return v
	}
	e, ok := t.lookup.Lookup(addr)
	if !ok {
		v.Status, v.Reason = Unknown, ReasonNoMatchingNetwork
		return v
	}
	v.Prefix = e.prefix
	switch e.kind {
	case kindReachable:
		v.Status, v.Reason = Reachable, ReasonExternalNetwork
	case kindService:
		v.Reason = ReasonServiceNetwork
	case kindNever:
		v.Reason = ReasonNeverReachable
	case kindPod:
		v.Route = e.route
		switch {
		case e.route.Published:
			v.Status, v.Reason = Reachable, ReasonPublishedPodRoute
		case !e.route.NextHop.IsValid():
			v.Reason = ReasonNoNextHop
		default:
			v.Reason = ReasonUnpublishedPodRoute
		}
	}
	return v
}

// ParseAddress reads an address as users and registries write it: 10.0.0.1, 10.0.0.1:20880,
// 2001:db8::1, [2001:db8::1], [2001:db8::1]:20880, fe80::1%eth0. Hostnames are refused, since
// resolving them here would answer for this machine's resolver, not for the fabric's.
func ParseAddress(s string) (addr netip.Addr, port uint16, err error) {
	in := s
	if s == "" {
		return netip.Addr{}, 0, fmt.Errorf("empty address: want an IP address, optionally with :port")
	}
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, 0, fmt.Errorf("%q: missing ] after bracketed IPv6 address", in)
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return netip.Addr{}, 0, fmt.Errorf("%q: unexpected %q after ]: want [IPv6]:port", in, rest)
			}
			if port, err = parsePort(rest[1:]); err != nil {
				return netip.Addr{}, 0, fmt.Errorf("%q: %w", in, err)
			}
		}
	} else if strings.Count(s, ":") == 1 {
		i := strings.IndexByte(s, ':')
		host = s[:i]
		if port, err = parsePort(s[i+1:]); err != nil {
			return netip.Addr{}, 0, fmt.Errorf("%q: %w", in, err)
		}
	}
	addr, perr := netip.ParseAddr(host)
	if perr != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q is not an IP address (hostnames are not resolved): want e.g. 10.131.10.5 or [2001:db8::5]:20880", in)
	}
	return addr.Unmap().WithZone(""), port, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}
