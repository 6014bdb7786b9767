package probe

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/dubboreach/dubboreach/registry/dubbo"
	"github.com/dubboreach/dubboreach/registry/zk"
)

// Target is one address:port to probe, with what the registry says is served there.
type Target struct {
	Addr netip.AddrPort
	// Protocol is the registered protocol (dubbo, tri, ...), escaped; the handshake follows it.
	Protocol string
	// Registrations counts the provider registrations naming Addr; Services holds up to
	// MaxServices of their services (escaped), for people.
	Registrations int
	Services      []string
}

// MaxServices bounds the services kept per target.
const MaxServices = 3

// DefaultMaxTargets bounds the addresses probed in one run; the rest are counted in
// Plan.Truncated (and make the run incomplete).
const DefaultMaxTargets = 20000

// Plan is what a snapshot of the registry gives to probe.
type Plan struct {
	// Targets are the distinct provider address:ports, sorted by address and port.
	Targets []Target
	// Counts of provider registrations not probed, by why.
	Hostnames   int // the host is a name: never resolved (this machine's resolver is not the consumers')
	NoPort      int // no port registered
	Unparseable int // the registration could not be parsed
	Excluded    int // the address is outside the --only ranges
	// Truncated counts the registrations of addresses beyond the MaxTargets bound.
	Truncated int
}

// protoRank orders the protocols registered on one address:port: the handshake of the first
// is used (Dubbo 3.3's port unification serves dubbo and tri on one port).
func protoRank(p string) int {
	switch p {
	case "dubbo":
		return 0
	case "tri":
		return 1
	case "grpc":
		return 2
	}
	return 3
}

// Targets reads the provider registrations of snap (interface-level providers and
// application-level instances; consumers are not probed), keeps the IP addresses within only
// (all when only is empty) and merges the registrations of one address:port into one target.
// maxTargets <= 0 means DefaultMaxTargets.
func Targets(snap zk.Snapshot, only []netip.Prefix, maxTargets int) Plan {
	if maxTargets <= 0 {
		maxTargets = DefaultMaxTargets
	}
	var p Plan
	byAddr := map[netip.AddrPort]*Target{}
	add := func(host string, port int, protocol, service string) {
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		switch {
		case err != nil || a.Zone() != "":
			p.Hostnames++
			return
		case port <= 0 || port > 65535:
			p.NoPort++
			return
		}
		a = a.Unmap()
		if !within(a, only) {
			p.Excluded++
			return
		}
		ap := netip.AddrPortFrom(a, uint16(port))
		t := byAddr[ap]
		if t == nil {
			if len(byAddr) >= maxTargets {
				p.Truncated++
				return
			}
			t = &Target{Addr: ap, Protocol: dubbo.Display(protocol)}
			byAddr[ap] = t
		}
		t.Registrations++
		if protoRank(protocol) < protoRank(t.Protocol) {
			t.Protocol = protocol // ranked protocols are plain words
		}
		if s := dubbo.Display(service); len(t.Services) < MaxServices && !slices.Contains(t.Services, s) {
			t.Services = append(t.Services, s)
		}
	}
	for _, e := range snap.Entries {
		switch e.Kind {
		case zk.KindProvider:
			u, err := dubbo.ParseZnodeName(e.Name)
			if err != nil {
				p.Unparseable++
				continue
			}
			add(u.Host, int(u.Port), u.Protocol, u.Interface())
		case zk.KindInstance:
			in, err := dubbo.ParseInstance(e.Data)
			if err != nil {
				p.Unparseable++
				continue
			}
			add(in.Address, in.Port, in.Protocol(), in.Name)
		}
	}
	p.Targets = make([]Target, 0, len(byAddr))
	for _, t := range byAddr {
		p.Targets = append(p.Targets, *t)
	}
	slices.SortFunc(p.Targets, func(a, b Target) int { return a.Addr.Compare(b.Addr) })
	return p
}

func within(a netip.Addr, only []netip.Prefix) bool {
	if len(only) == 0 {
		return true
	}
	for _, p := range only {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseOnly parses a list of CIDRs (or single addresses) for --only.
func ParseOnly(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, &onlyError{s}
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

type onlyError struct{ s string }

func (e *onlyError) Error() string {
	return "--only " + dubbo.Display(e.s) + " is not a CIDR or an IP address: want e.g. 10.131.0.0/16"
}
