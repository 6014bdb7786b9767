package fix

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"reflect"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"
)

// DisableOptions say where the rules live and whom they address.
type DisableOptions struct {
	// ConfigRoot is the config-center group node: /<namespace>/config/<group>, by default
	// /dubbo/config/dubbo (ZookeeperDynamicConfiguration: rootPath "/dubbo/config", group "dubbo").
	ConfigRoot string
	// RegistryRoot is the registry root for legacy overrides, by default /dubbo.
	RegistryRoot string
	// Scope says which consumers the entries address (PlanDisableFor): ScopeOutside (default)
	// or ScopeAll.
	Scope string
	// Consumers are the consumer addresses the entries name under ScopeAll (and in PlanDisable);
	// default ["0.0.0.0"] (all).
	Consumers []string
	// Legacy also writes the pre-2.7 override URL under <RegistryRoot>/<interface>/configurators.
	Legacy bool
	// MaxRuleNodes bounds the rule nodes read per cycle (default 20000).
	MaxRuleNodes int
}

func (o *DisableOptions) defaults() error {
	if o.ConfigRoot == "" {
		o.ConfigRoot = "/dubbo/config/dubbo"
	}
	if o.RegistryRoot == "" {
		o.RegistryRoot = "/dubbo"
	}
	if o.MaxRuleNodes == 0 {
		o.MaxRuleNodes = 20000
	}
	switch o.Scope {
	case "":
		o.Scope = ScopeOutside
	case ScopeOutside, ScopeAll:
	default:
		return fmt.Errorf("disable scope %q: want %s or %s", o.Scope, ScopeOutside, ScopeAll)
	}
	cs, err := consumerList(o.Consumers)
	if err != nil {
		return err
	}
	o.Consumers = cs
	return nil
}

// DisableInput is what a disable plan is made from: the targets and the registry around them.
type DisableInput struct {
	// Complete says whether the scan read every path; if not, nothing is planned.
	Complete bool
	// Targets are the interface-level providers to disable (judged unreachable).
	Targets []Target
	// Providers are every interface-level provider of the scan (targets may be among them):
	// who else a consumer can call decides whether an entry does anything.
	Providers []Target
	// Consumers are every interface-level consumer of the scan.
	Consumers []Consumer
}

// PlanDisableFor plans the writes after which ZooKeeper holds exactly one dubboreach entry for
// each target that some consumer will obey, and none for any other provider: entries for
// providers that became reachable or disappeared are removed. It recomputes everything from
// ZooKeeper (the marked entries are the memory), so a restart neither repeats nor duplicates a
// change.
//
// What real Dubbo does decides what is written (docs/fix.md, "Which consumers obey"):
//   - a provider whose URL already says disabled=true or enabled=false is not targeted;
//   - a provider registered under a path other than its interface is skipped (3.2+ match rules
//     against the path, earlier releases against the interface);
//   - under ScopeOutside an entry names the registered consumers outside the clusters, each by
//     address, and none inside (they reach pod IPs);
//   - a target whose service has no other callable provider is skipped: Dubbo keeps its last
//     invokers when a rule would leave a consumer none, so the rule would do nothing;
//   - consumers that would ignore the entry (3.2's service-key bug) or be hurt by it (substring
//     matching before 3.2.0-beta.6 hitting another provider) are left out and reported, as are
//     wildcard references, which listen on another rule node.
func PlanDisableFor(z ZK, in DisableInput, o DisableOptions) (Plan, error) {
	if !in.Complete {
		return Plan{}, ErrIncompleteScan
	}
	return planDisable(z, in.Targets, &in, o, false)
}

// PlanDisable plans one entry for every consumer (o.Consumers, default 0.0.0.0) per target,
// without looking at the registry around the targets. PlanDisableFor is the plan that real
// consumers obey; this one is kept for callers that know only the targets.
func PlanDisable(z ZK, complete bool, targets []Target, o DisableOptions) (Plan, error) {
	if !complete {
		return Plan{}, ErrIncompleteScan
	}
	o.Scope = ScopeAll
	return planDisable(z, targets, nil, o, false)
}

// PlanUndoDisable plans the removal of every entry dubboreach wrote (--fix=undo-disable), in
// both formats. It does not depend on a scan, so it is always complete.
func PlanUndoDisable(z ZK, o DisableOptions) (Plan, error) {
	o.Legacy = false
	return planDisable(z, nil, nil, o, true)
}

type ruleNode struct {
	data []byte
	stat *zk.Stat
}

// planDisable plans the rule writes for targets. in is nil for PlanDisable (every entry names
// o.Consumers) and for undo (no targets).
func planDisable(z ZK, targets []Target, in *DisableInput, o DisableOptions, undoLegacy bool) (Plan, error) {
	if err := o.defaults(); err != nil {
		return Plan{}, err
	}
	plan := Plan{Complete: true, Changes: []Change{}}
	// want holds, per service and target, the consumer addresses its entry names.
	want := map[Service]map[netip.AddrPort][]string{}
	valid := map[Service][]Target{}
	for _, t := range targets {
		s := Service{Interface: t.Interface, Version: t.Version, Group: t.Group}
		skip := func(why string) {
			plan.Skipped = append(plan.Skipped, Change{Mode: ModeDisable, Provider: t.Address.String(), Service: s.Key(), Reason: why})
		}
		if err := s.Validate(); err != nil {
			skip("cannot name the service in a rule: " + err.Error())
			continue
		}
		if !t.Address.IsValid() || !t.Address.Addr().Is4() || t.Address.Port() == 0 {
			skip("disable supports IPv4 provider addresses with a port only")
			continue
		}
		if t.Disabled {
			skip("already disabled: the provider's own URL says disabled=true or enabled=false, so no consumer calls it; nothing to add")
			continue
		}
		if t.Path != "" && t.Path != t.Interface {
			skip(fmt.Sprintf("exported under the path %q, not its interface: Dubbo 3.2 and later match rules against the path, earlier releases against the interface, "+
				"so no one rule reaches every consumer; publish the missing pod route, or evict the pod so that the webhook injects a reachable address", t.Path))
			continue
		}
		if want[s] == nil {
			want[s] = map[netip.AddrPort][]string{}
		}
		if _, dup := want[s][t.Address]; !dup {
			want[s][t.Address] = o.Consumers
			valid[s] = append(valid[s], t)
		}
	}
	if in != nil {
		scopeTargets(&plan, want, valid, in, o)
	}

	// Read every rule node: entries of ours may sit in any of them.
	nodes := map[Service]ruleNode{}
	names, _, err := z.Children(o.ConfigRoot)
	switch {
	case errors.Is(err, zk.ErrNoNode):
	case err != nil:
		return Plan{}, fmt.Errorf("listing config rules under %s: %w", o.ConfigRoot, err)
	}
	if len(names) > o.MaxRuleNodes {
		return Plan{}, fmt.Errorf("%s holds %d nodes, more than the %d dubboreach reads per cycle", o.ConfigRoot, len(names), o.MaxRuleNodes)
	}
	for _, name := range names {
		s, ok := ParseRuleName(name)
		if !ok {
			continue
		}
		data, st, err := z.Get(o.ConfigRoot + "/" + name)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return Plan{}, fmt.Errorf("reading config rule %s/%s: %w", o.ConfigRoot, name, err)
		}
		// Other rules are not parsed unless they concern a target or hold our marker.
		if want[s] == nil && !bytes.Contains(data, []byte(MarkerKey+": "+MarkerValue)) {
			continue
		}
		nodes[s] = ruleNode{data, st}
	}

	services := map[Service]bool{}
	for s := range want {
		services[s] = true
	}
	for s := range nodes {
		services[s] = true
	}
	for _, s := range sortedServices(services) {
		if err := planRule(&plan, z, s, want[s], nodes, o); err != nil {
			return Plan{}, err
		}
	}

	if o.Legacy || undoLegacy {
		if err := planLegacy(&plan, z, want, o); err != nil {
			return Plan{}, err
		}
	}
	return plan, nil
}

func sortedServices(m map[Service]bool) []Service {
	out := make([]Service, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RuleName() < out[j].RuleName() })
	return out
}

func sortedAddrs[V any](m map[netip.AddrPort]V) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

// scopeTargets narrows want to the consumers that obey each entry (scopeService), drops the
// targets no consumer would obey, and reports both as skipped.
func scopeTargets(plan *Plan, want map[Service]map[netip.AddrPort][]string, valid map[Service][]Target, in *DisableInput, o DisableOptions) {
	for _, s := range sortedServices(boolKeys(want)) {
		isTarget := want[s]
		var others []netip.AddrPort
		seen := map[netip.AddrPort]bool{}
		for _, p := range in.Providers {
			if (Service{p.Interface, p.Version, p.Group}) != s || p.Disabled || !p.Address.IsValid() {
				continue
			}
			if _, t := isTarget[p.Address]; !t && !seen[p.Address] {
				seen[p.Address] = true
				others = append(others, p.Address)
			}
		}
		sort.Slice(others, func(i, j int) bool { return others[i].Compare(others[j]) < 0 })
		decided := scopeService(s, valid[s], others, in.Consumers, o)
		for _, t := range valid[s] {
			e := decided[t.Address]
			plan.Skipped = append(plan.Skipped, e.skipped...)
			if len(e.consumers) == 0 {
				delete(want[s], t.Address)
				continue
			}
			want[s][t.Address] = e.consumers
		}
		if len(want[s]) == 0 {
			delete(want, s)
		}
	}
}

// planRule plans the one write (if any) to service s's rule node.
func planRule(plan *Plan, z ZK, s Service, want map[netip.AddrPort][]string, nodes map[Service]ruleNode, o DisableOptions) error {
	p := o.ConfigRoot + "/" + s.RuleName()
	entryFor := func(a netip.AddrPort) Entry { return Entry{Provider: a, Consumers: want[a]} }
	consumersOf := func(es []Entry) []string {
		var out []string
		seen := map[string]bool{}
		for _, e := range es {
			for _, c := range e.Consumers {
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	providers := func(es []Entry) string {
		var ss []string
		for _, e := range es {
			ss = append(ss, e.Provider.String())
		}
		return strings.Join(ss, ",")
	}
	n, exists := nodes[s]
	if !exists {
		if len(want) == 0 {
			return nil
		}
		var add []Entry
		for _, a := range sortedAddrs(want) {
			add = append(add, entryFor(a))
		}
		parents, err := missingParents(z, o.ConfigRoot)
		if err != nil {
			return err
		}
		c := Change{Mode: ModeDisable, Op: OpCreate, Path: p, Version: -1, Parents: parents,
			After: RenderRule(s, add), Provider: providers(add), Service: s.Key(), Consumers: consumersOf(add),
			Reason: "unreachable provider: consumer-side rule tells consumers not to call it"}
		c.fillText()
		plan.Changes = append(plan.Changes, c)
		return nil
	}
	r, err := ParseRule(s, n.data)
	if err != nil {
		if len(want) > 0 {
			var add []Entry
			for _, a := range sortedAddrs(want) {
				add = append(add, entryFor(a))
			}
			plan.Skipped = append(plan.Skipped, Change{Mode: ModeDisable, Path: p, Provider: providers(add), Service: s.Key(),
				Outcome: ResultConflict,
				Reason:  fmt.Sprintf("existing rule not edited: %v; to disable by hand add under configs: %s", err, renderEntry(add[0]))})
		}
		return nil
	}
	var add []Entry
	for _, a := range sortedAddrs(want) {
		if !r.Has(entryFor(a)) {
			add = append(add, entryFor(a))
		}
	}
	var remove []int
	var removed []Entry
	for i, oe := range r.Ours {
		if oe.Modified {
			plan.Skipped = append(plan.Skipped, Change{Mode: ModeDisable, Path: p, Provider: oe.Provider.String(), Service: s.Key(),
				Outcome: ResultConflict,
				Reason:  "an entry marked dubboreach=managed was edited by someone; dubboreach leaves it alone"})
			continue
		}
		if w, ok := want[oe.Provider]; !ok || !reflect.DeepEqual(oe.Consumers, w) {
			remove = append(remove, i)
			removed = append(removed, oe.Entry)
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	out, del, err := r.Edit(s, add, remove)
	mode, reason := ModeDisable, "unreachable provider: entry added to the existing rule, foreign entries kept"
	if len(add) == 0 {
		mode, reason = ModeUndoDisable, "provider reachable again or gone: dubboreach's entry removed"
	}
	subject := providers(append(append([]Entry{}, add...), removed...))
	if err != nil {
		plan.Skipped = append(plan.Skipped, Change{Mode: mode, Path: p, Provider: subject, Service: s.Key(), Outcome: ResultConflict, Reason: "existing rule not edited: " + err.Error()})
		return nil
	}
	c := Change{Mode: mode, Op: OpSet, Path: p, Version: n.stat.Version, Before: n.data, After: out,
		Provider: subject, Service: s.Key(), Consumers: consumersOf(add), Reason: reason}
	if del {
		c.Op, c.After, c.Reason = OpDelete, nil, "provider reachable again or gone: dubboreach's rule node removed"
	}
	c.fillText()
	plan.Changes = append(plan.Changes, c)
	return nil
}

// missingParents lists dir and its ancestors that do not exist yet, shallowest first.
func missingParents(z ZK, dir string) ([]string, error) {
	var out []string
	for _, p := range parentsOf(dir) {
		ok, _, err := z.Exists(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if !ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// parentsOf lists the ancestors of p (and p), shallowest first; the executor creates the
// missing ones.
func parentsOf(p string) []string {
	var out []string
	for p != "/" && p != "." && p != "" {
		out = append([]string{p}, out...)
		p = path.Dir(p)
	}
	return out
}

// planLegacy plans legacy override nodes: create the missing ones for want (when o.Legacy) and
// delete every one of ours that is not wanted.
func planLegacy(plan *Plan, z ZK, want map[Service]map[netip.AddrPort][]string, o DisableOptions) error {
	root := strings.TrimSuffix(o.RegistryRoot, "/")
	ifaces, _, err := z.Children(o.RegistryRoot)
	if errors.Is(err, zk.ErrNoNode) {
		ifaces = nil
	} else if err != nil {
		return fmt.Errorf("listing %s: %w", o.RegistryRoot, err)
	}
	sort.Strings(ifaces)
	have := map[string]bool{}
	for _, iface := range ifaces {
		dir := root + "/" + iface + "/configurators"
		names, _, err := z.Children(dir)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", dir, err)
		}
		sort.Strings(names)
		for _, name := range names {
			s, p, ok := ParseLegacyName(name)
			if !ok || JavaURLEncode(s.Interface) != iface {
				continue
			}
			full := dir + "/" + name
			have[full] = true
			if _, ok := want[s][p]; o.Legacy && ok {
				continue
			}
			ok, st, err := z.Exists(full)
			if err != nil {
				return fmt.Errorf("reading %s: %w", full, err)
			}
			if !ok {
				continue
			}
			plan.Changes = append(plan.Changes, Change{Mode: ModeUndoDisable, Op: OpDelete, Path: full, Version: st.Version,
				Before: []byte{}, Provider: p.String(), Service: s.Key(),
				Reason: "provider reachable again or gone: dubboreach's legacy override removed"})
		}
	}
	if !o.Legacy {
		return nil
	}
	for _, s := range sortedServices(boolKeys(want)) {
		for _, p := range sortedAddrs(want[s]) {
			full := LegacyPath(o.RegistryRoot, s, p)
			if have[full] {
				continue
			}
			parents, err := missingParents(z, path.Dir(full))
			if err != nil {
				return err
			}
			plan.Changes = append(plan.Changes, Change{Mode: ModeDisable, Op: OpCreate, Path: full, Version: -1,
				Parents: parents, After: []byte{}, Provider: p.String(), Service: s.Key(),
				Reason: "unreachable provider: legacy override URL for pre-2.7 consumers"})
		}
	}
	return nil
}

func boolKeys[V any](m map[Service]V) map[Service]bool {
	out := make(map[Service]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
