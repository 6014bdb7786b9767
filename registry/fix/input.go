package fix

import (
	"net/netip"
	"strings"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
)

// DisableInputFrom gathers what PlanDisableFor needs from an audit: the interface-level
// providers judged unreachable (never one judged reachable or unknown, whatever else is said
// about it), every interface-level provider, and every interface-level consumer.
func DisableInputFrom(r *registry.Result) DisableInput {
	in := DisableInput{Complete: r.Complete}
	for i := range r.Providers {
		f := &r.Providers[i]
		if f.Kind != registry.KindInterface {
			continue
		}
		t := Target{Interface: f.Service, Version: f.Version, Group: f.Group, Application: f.Application,
			Protocol: f.Protocol, Znode: f.Path, Dynamic: !f.Persistent, Reason: string(f.Reason), Disabled: f.Disabled}
		if f.URLPath != f.Service {
			t.Path = f.URLPath
		}
		t.Address = addrPort(f.Address, f.Port)
		in.Providers = append(in.Providers, t)
		if f.Verdict == routes.Unreachable {
			in.Targets = append(in.Targets, t)
		}
	}
	for i := range r.Consumers {
		f := &r.Consumers[i]
		if f.Kind != registry.KindInterface {
			continue
		}
		a, err := netip.ParseAddr(strings.Trim(f.Address, "[]"))
		if err != nil {
			continue // a host name: no rule can name it
		}
		in.Consumers = append(in.Consumers, Consumer{Interface: f.Service, Version: f.Version, Group: f.Group,
			Application: f.Application, Address: a.Unmap(), Release: f.Release, Inside: inside(f)})
	}
	return in
}

// inside says the consumer's address belongs to a known cluster: a pod (mapped, or in a pod
// prefix) or a node. Such consumers reach pod IPs themselves.
func inside(f *registry.Finding) bool {
	switch f.Reason {
	case routes.ReasonPublishedPodRoute, routes.ReasonUnpublishedPodRoute, routes.ReasonNoNextHop:
		return true
	}
	return f.PodName != "" || f.Node != ""
}

func addrPort(host string, port int) netip.AddrPort {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil || port <= 0 || port > 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}
