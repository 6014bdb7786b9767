package fix

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Scopes of the disable rule (which consumers its entries address).
const (
	// ScopeOutside (the default) addresses the registered consumers outside every known
	// cluster: consumers inside reach pod IPs, and a rule for 0.0.0.0 would take working
	// providers away from them.
	ScopeOutside = "outside"
	// ScopeAll addresses every consumer (0.0.0.0), registered or not.
	ScopeAll = "all"
)

// Consumer is one interface-level consumer registration (<root>/<interface>/consumers/<URL>),
// as the disable plan needs it: which providers it sees, whether it obeys the rule, and the
// address a rule names it by.
type Consumer struct {
	// Interface, Version and Group are the reference's: group may be "*" or a comma list,
	// version "*" (Dubbo's UrlUtils.isMatch).
	Interface, Version, Group string
	Application               string
	// Address is the consumer's registered address; Dubbo compares a rule's addresses with
	// the consumer's own NetUtils.getLocalHost(), which is what a consumer outside a cluster
	// registers.
	Address netip.Addr
	// Release is the consumer URL's release parameter (its Dubbo version), empty when absent.
	Release string
	// Inside: the address belongs to a known cluster (a pod IP or a node): it reaches pod IPs.
	Inside bool
}

func (c Consumer) String() string {
	who := c.Address.String()
	if c.Application != "" {
		who = c.Application + "@" + who
	}
	if c.Release != "" {
		who += " (Dubbo " + c.Release + ")"
	}
	return who
}

// wildcard says the reference matches several services (group "*" or "a,b", version "*"):
// such a consumer subscribes to the rule node of its own key (interface:*:* ...), not to the
// node of the service it is given providers of.
func (c Consumer) wildcard() bool {
	return c.Group == "*" || strings.Contains(c.Group, ",") || c.Version == "*"
}

// sees says whether the consumer is given the providers of service s (UrlUtils.isMatch:
// interface equal, group "*", equal or listed, version "*" or equal).
func (c Consumer) sees(s Service) bool {
	if c.Interface != s.Interface && c.Interface != "*" {
		return false
	}
	group := c.Group == "*" || c.Group == s.Group
	if !group && strings.Contains(c.Group, ",") {
		for _, g := range strings.Split(c.Group, ",") {
			if g == s.Group {
				group = true
			}
		}
	}
	return group && (c.Version == "*" || c.Version == s.Version)
}

// ruleBehaviour is how a Dubbo release treats a consumer-side service rule.
type ruleBehaviour int

const (
	// releaseUnknown: no release parameter, or one dubboreach cannot read (2.6 and dubbo-go
	// among them).
	releaseUnknown ruleBehaviour = iota
	// releaseSubstring: 2.7.x, 3.0, 3.1 and 3.2.0 up to beta.5 match providerAddresses with
	// String.contains: the entry for 10.1.2.3:20880 also hits 10.1.2.3:2088 and 0.1.2.3:20880.
	releaseSubstring
	// releaseKeyBug: 3.2.0-beta.6 up to 3.3.0-beta.3 compare service keys against a provider
	// URL stripped of group and version (RegistryDirectory.overrideWithConfigurators), so a
	// service rule never matches a service that has either.
	releaseKeyBug
	// releaseExact: 3.3.0-beta.4 and later match addresses exactly and keep group and version.
	releaseExact
)

// release is a Dubbo version: major.minor.patch[.fix][-beta.N]; pre is N, or a large number
// for a final release (which sorts after its betas).
type release struct{ v [4]int }

const finalRelease = 1 << 30

func parseRelease(s string) (release, bool) {
	var r release
	base, beta, isBeta := strings.Cut(s, "-beta.")
	r.v[3] = finalRelease
	if isBeta {
		n, err := strconv.Atoi(beta)
		if err != nil || n < 0 {
			return release{}, false
		}
		r.v[3] = n
	}
	parts := strings.Split(base, ".")
	if len(parts) < 3 || len(parts) > 4 {
		return release{}, false
	}
	for i, p := range parts[:3] {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || len(p) > 6 {
			return release{}, false
		}
		r.v[i] = n
	}
	if len(parts) == 4 { // 2.7.4.1: a fix release, ordered after 2.7.4 and before 2.7.5
		if _, err := strconv.Atoi(parts[3]); err != nil {
			return release{}, false
		}
	}
	return r, true
}

func (r release) less(o release) bool {
	for i := range r.v {
		if r.v[i] != o.v[i] {
			return r.v[i] < o.v[i]
		}
	}
	return false
}

var (
	release320b6 = release{[4]int{3, 2, 0, 6}}
	release330b4 = release{[4]int{3, 3, 0, 4}}
	release270   = release{[4]int{2, 7, 0, 0}}
)

// behaviourOf says how release s treats a consumer-side service rule (apache/dubbo:
// AbstractConfigurator.isV27ConditionMatchOrUnset and RegistryDirectory.overrideWithConfigurators
// at each tag; /work/research/dubbo.md and docs/fix.md's version table).
func behaviourOf(s string) ruleBehaviour {
	r, ok := parseRelease(s)
	switch {
	case !ok || r.less(release270):
		return releaseUnknown
	case r.less(release320b6):
		return releaseSubstring
	case r.less(release330b4):
		return releaseKeyBug
	default:
		return releaseExact
	}
}

// entryPlan is what the disable plan decided for one target: the consumer addresses its entry
// names (nil: no entry), and the skipped reports about consumers left out or the whole target.
type entryPlan struct {
	consumers []string
	skipped   []Change
}

// scopeService decides, for the targets of one service, whom each entry addresses. others
// are the service's providers that stay callable (not targets, not disabled by their URL);
// consumers are every interface-level consumer of the scan.
//
// Dubbo keeps its last invokers when the configurators would leave a consumer none
// (RegistryDirectory.refreshInvoker logs "... disabled ..." and returns: 2.7.23, 3.2, 3.3,
// and the application-level directory): an entry is only worth writing for a consumer that
// keeps at least one provider.
func scopeService(s Service, targets []Target, others []netip.AddrPort, consumers []Consumer, o DisableOptions) map[netip.AddrPort]*entryPlan {
	out := make(map[netip.AddrPort]*entryPlan, len(targets))
	for _, t := range targets {
		out[t.Address] = &entryPlan{}
	}
	skip := func(t netip.AddrPort, cs []string, why string) {
		out[t].skipped = append(out[t].skipped, Change{Mode: ModeDisable, Provider: t.String(), Service: s.Key(), Consumers: cs, Reason: why})
	}
	fix := "the fix that works for every consumer: publish the missing pod route (`dubboreach routes --missing`), or evict the pod (--fix evict) so that the webhook injects a reachable address"
	if len(others) == 0 {
		all := fmt.Sprintf("all %d callable providers of %s are", len(targets), s.Key())
		if len(targets) == 1 {
			all = fmt.Sprintf("the only callable provider of %s is", s.Key())
		}
		for _, t := range targets {
			skip(t.Address, nil, fmt.Sprintf("%s unreachable: Dubbo keeps its last invokers when a rule would leave a consumer none "+
				"(RegistryDirectory.refreshInvoker), so a disable rule would change nothing; %s", all, fix))
		}
		return out
	}

	// hits: the callable providers that a substring-matching consumer's entry for t would also
	// disable (Dubbo before 3.2.0-beta.6: providerAddresses.contains(url.getAddress())).
	hits := func(t netip.AddrPort) []string {
		var h []string
		for _, p := range others {
			if strings.Contains(t.String(), p.String()) {
				h = append(h, p.String())
			}
		}
		return h
	}

	var mine []Consumer // consumers that subscribe to this service's rule node
	for _, c := range consumers {
		if !c.sees(s) {
			continue
		}
		if c.wildcard() {
			for _, t := range targets {
				skip(t.Address, []string{c.Address.String()}, fmt.Sprintf("consumer %s references group %q version %q: it listens on the rule node of its own reference (%s), "+
					"not on %s, so this entry does not reach it; %s", c, c.Group, c.Version, (Service{c.Interface, c.Version, c.Group}).RuleName(), s.RuleName(), fix))
			}
			continue
		}
		mine = append(mine, c)
	}

	if o.Scope == ScopeAll {
		// 0.0.0.0 reaches every consumer; say which registered ones will not obey.
		for _, t := range targets {
			out[t.Address].consumers = o.Consumers
			for _, c := range mine {
				if why := ignores(c, s, t.Address, hits(t.Address)); why != "" {
					skip(t.Address, []string{c.Address.String()}, why)
				}
			}
		}
		return out
	}

	addrs := map[netip.AddrPort]map[string]bool{}
	outside := 0
	for _, c := range mine {
		if c.Inside {
			continue // it reaches pod IPs: taking the provider away would only hurt it
		}
		outside++
		if !c.Address.Is4() {
			for _, t := range targets {
				skip(t.Address, []string{c.Address.String()}, fmt.Sprintf("consumer %s has no IPv4 address, and a rule names consumers by IPv4 address; %s", c, fix))
			}
			continue
		}
		for _, t := range targets {
			if why := ignores(c, s, t.Address, hits(t.Address)); why != "" {
				skip(t.Address, []string{c.Address.String()}, why)
				continue
			}
			if addrs[t.Address] == nil {
				addrs[t.Address] = map[string]bool{}
			}
			addrs[t.Address][c.Address.String()] = true
		}
	}
	for _, t := range targets {
		e := out[t.Address]
		for a := range addrs[t.Address] {
			e.consumers = append(e.consumers, a)
		}
		sort.Slice(e.consumers, func(i, j int) bool {
			return netip.MustParseAddr(e.consumers[i]).Less(netip.MustParseAddr(e.consumers[j]))
		})
		if len(e.consumers) == 0 && outside == 0 {
			skip(t.Address, nil, fmt.Sprintf("no consumer outside the clusters is registered for %s (consumers inside reach pod IPs, and a rule for all would take a working provider from them): "+
				"nothing to disable; --disable-scope all addresses every consumer", s.Key()))
		}
	}
	return out
}

// ignores says why consumer c would not obey an entry that disables t for it, or "".
func ignores(c Consumer, s Service, t netip.AddrPort, hits []string) string {
	switch behaviourOf(c.Release) {
	case releaseKeyBug:
		if s.Group != "" || s.Version != "" {
			return fmt.Sprintf("consumer %s ignores service rules for a service with a group or a version (Dubbo 3.2 compares the rule's service key with a provider URL stripped of both; fixed in 3.3.0): "+
				"an application-scope rule (%s.configurators, services [\"*\"]) would reach it, which dubboreach does not write; left out", c, c.Application)
		}
	case releaseSubstring:
		if len(hits) > 0 {
			return fmt.Sprintf("consumer %s matches providerAddresses by substring (Dubbo before 3.2.0-beta.6): an entry for %s would also disable %s, which it can call; left out",
				c, t, strings.Join(hits, ", "))
		}
	}
	return ""
}
