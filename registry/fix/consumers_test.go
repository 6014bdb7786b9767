package fix

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
)

func TestBehaviourOfRelease(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    ruleBehaviour
	}{
		{"", releaseUnknown},
		{"2.6.12", releaseUnknown}, // 2.6 reads only the legacy override
		{"dubbo-golang-3.1.0", releaseUnknown},
		{"3.3.0-SNAPSHOT", releaseUnknown},
		{"2.7.0", releaseSubstring},
		{"2.7.4.1", releaseSubstring},
		{"2.7.23", releaseSubstring},
		{"3.0.15", releaseSubstring},
		{"3.1.11", releaseSubstring},
		{"3.2.0-beta.5", releaseSubstring},
		{"3.2.0-beta.6", releaseKeyBug},
		{"3.2.0", releaseKeyBug},
		{"3.2.16", releaseKeyBug},
		{"3.2.19", releaseKeyBug},
		{"3.3.0-beta.3", releaseKeyBug},
		{"3.3.0-beta.4", releaseExact},
		{"3.3.0", releaseExact},
		{"3.3.6", releaseExact},
		{"4.0.0", releaseExact},
	} {
		if got := behaviourOf(tc.release); got != tc.want {
			t.Errorf("behaviourOf(%q) = %d, want %d", tc.release, got, tc.want)
		}
	}
}

func TestConsumerSees(t *testing.T) {
	s := Service{Interface: "com.foo.Bar", Version: "1.0", Group: "g1"}
	for _, tc := range []struct {
		c        Consumer
		sees, wc bool
	}{
		{Consumer{Interface: "com.foo.Bar", Version: "1.0", Group: "g1"}, true, false},
		{Consumer{Interface: "com.foo.Bar", Version: "1.0"}, false, false},
		{Consumer{Interface: "com.foo.Bar", Version: "2.0", Group: "g1"}, false, false},
		{Consumer{Interface: "com.foo.Bar", Version: "*", Group: "g1"}, true, true},
		{Consumer{Interface: "com.foo.Bar", Version: "1.0", Group: "*"}, true, true},
		{Consumer{Interface: "com.foo.Bar", Version: "1.0", Group: "g0,g1"}, true, true},
		{Consumer{Interface: "com.foo.Bar", Version: "1.0", Group: "g0,g2"}, false, true},
		{Consumer{Interface: "com.foo.Other", Version: "1.0", Group: "g1"}, false, false},
	} {
		if got := tc.c.sees(s); got != tc.sees {
			t.Errorf("%+v sees %s = %v, want %v", tc.c, s.Key(), got, tc.sees)
		}
		if got := tc.c.wildcard(); got != tc.wc {
			t.Errorf("%+v wildcard = %v, want %v", tc.c, got, tc.wc)
		}
	}
}

func addrs(ss ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		out = append(out, ap(s))
	}
	return out
}

func outsider(ip, release string) Consumer {
	return Consumer{Interface: "com.foo.Bar", Application: "shop", Address: netip.MustParseAddr(ip), Release: release}
}

// TestScopeService: whom each entry names, and why the others are left out, as real Dubbo
// consumers would treat the entry (docs/fix.md, "Which consumers obey").
func TestScopeService(t *testing.T) {
	plain := Service{Interface: "com.foo.Bar"}
	versioned := Service{Interface: "com.foo.Bar", Version: "1.0"}
	target := []Target{{Interface: "com.foo.Bar", Address: ap("10.244.2.9:20880")}}
	inside := outsider("10.244.1.5", "3.3.6")
	inside.Inside = true
	for _, tc := range []struct {
		name      string
		s         Service
		others    []netip.AddrPort
		consumers []Consumer
		scope     string
		want      []string // the entry's consumers
		skipped   []string // substrings of the skipped reports, in order
	}{
		{name: "only provider: Dubbo keeps its last invokers", s: plain, others: nil,
			consumers: []Consumer{outsider("10.132.2.50", "3.3.6")}, scope: ScopeOutside,
			skipped: []string{"keeps its last invokers"}},
		{name: "only provider, scope all: still nothing", s: plain, scope: ScopeAll,
			skipped: []string{"keeps its last invokers"}},
		{name: "outside consumers named, inside ones not", s: plain, others: addrs("10.132.2.20:20880"),
			consumers: []Consumer{outsider("10.132.2.51", "3.3.6"), inside, outsider("10.132.2.50", "2.7.23"), outsider("10.132.2.50", "3.3.6")},
			scope:     ScopeOutside, want: []string{"10.132.2.50", "10.132.2.51"}},
		{name: "no outside consumer", s: plain, others: addrs("10.132.2.20:20880"), consumers: []Consumer{inside}, scope: ScopeOutside,
			skipped: []string{"no consumer outside the clusters"}},
		{name: "scope all names 0.0.0.0", s: plain, others: addrs("10.132.2.20:20880"), consumers: []Consumer{inside}, scope: ScopeAll,
			want: []string{"0.0.0.0"}},
		{name: "3.2 consumer of a versioned service ignores the rule", s: versioned, others: addrs("10.132.2.20:20880"),
			consumers: []Consumer{withVersion(outsider("10.132.2.50", "3.2.16"), "1.0"), withVersion(outsider("10.132.2.51", "3.3.6"), "1.0")},
			scope:     ScopeOutside, want: []string{"10.132.2.51"}, skipped: []string{"shop@10.132.2.50 (Dubbo 3.2.16) ignores service rules"}},
		{name: "3.2 consumer of a plain service obeys", s: plain, others: addrs("10.132.2.20:20880"),
			consumers: []Consumer{outsider("10.132.2.50", "3.2.16")}, scope: ScopeOutside, want: []string{"10.132.2.50"}},
		{name: "substring matcher would hit another provider", s: plain, others: addrs("0.244.2.9:20880", "10.132.2.20:20880"),
			consumers: []Consumer{outsider("10.132.2.50", "2.7.23"), outsider("10.132.2.51", "3.3.6")}, scope: ScopeOutside,
			want: []string{"10.132.2.51"}, skipped: []string{"would also disable 0.244.2.9:20880"}},
		{name: "substring matcher, scope all: reported, 0.0.0.0 stays", s: plain, others: addrs("10.244.2.9:2088"),
			consumers: []Consumer{outsider("10.132.2.50", "3.0.15")}, scope: ScopeAll,
			want: []string{"0.0.0.0"}, skipped: []string{"would also disable 10.244.2.9:2088"}},
		{name: "wildcard reference listens elsewhere", s: plain, others: addrs("10.132.2.20:20880"),
			consumers: []Consumer{withGroup(outsider("10.132.2.50", "3.3.6"), "*"), outsider("10.132.2.51", "3.3.6")}, scope: ScopeOutside,
			want: []string{"10.132.2.51"}, skipped: []string{"com.foo.Bar::*.configurators"}},
		{name: "IPv6 consumer cannot be named", s: plain, others: addrs("10.132.2.20:20880"),
			consumers: []Consumer{outsider("fd00::5", "3.3.6")}, scope: ScopeOutside, skipped: []string{"no IPv4 address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DisableOptions{Scope: tc.scope}
			if err := o.defaults(); err != nil {
				t.Fatal(err)
			}
			tg := target
			tg[0].Version = tc.s.Version
			got := scopeService(tc.s, tg, tc.others, tc.consumers, o)[tg[0].Address]
			if !reflect.DeepEqual(got.consumers, tc.want) {
				t.Errorf("entry names %q, want %q", got.consumers, tc.want)
			}
			if len(got.skipped) != len(tc.skipped) {
				t.Fatalf("skipped %d, want %d: %+v", len(got.skipped), len(tc.skipped), got.skipped)
			}
			for i, want := range tc.skipped {
				if c := got.skipped[i]; !strings.Contains(c.Reason, want) || c.Mode != ModeDisable || c.Provider != "10.244.2.9:20880" {
					t.Errorf("skipped[%d] = %+v, want a reason with %q", i, c, want)
				}
			}
		})
	}
}

func withVersion(c Consumer, v string) Consumer { c.Version = v; return c }
func withGroup(c Consumer, g string) Consumer   { c.Group = g; return c }

// TestPlanDisableForOnZooKeeper: the plan against a real ZooKeeper: the entry of a provider
// that lost its last callable peer is removed again, already-disabled and custom-path
// providers are not targeted, the change says whom it addresses.
func TestPlanDisableForOnZooKeeper(t *testing.T) {
	c := conn(t)
	root := "/scoped"
	o := DisableOptions{ConfigRoot: root + "/dubbo/config/dubbo", RegistryRoot: root + "/dubbo"}
	bar := Service{Interface: "com.foo.Bar"}
	unreachable := Target{Interface: bar.Interface, Address: ap("10.244.2.9:20880")}
	healthy := Target{Interface: bar.Interface, Address: ap("10.132.2.20:20880")}
	disabled := Target{Interface: bar.Interface, Address: ap("10.244.2.10:20880"), Disabled: true}
	custom := Target{Interface: "com.foo.Baz", Path: "baz", Address: ap("10.244.2.11:20880")}
	in := DisableInput{Complete: true, Targets: []Target{unreachable, disabled, custom},
		Providers: []Target{unreachable, healthy, disabled, custom},
		Consumers: []Consumer{outsider("10.132.2.50", "3.3.6"), {Interface: bar.Interface, Address: netip.MustParseAddr("10.244.1.5"), Inside: true}}}
	plan, err := PlanDisableFor(c, in, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || len(plan.Skipped) != 2 {
		t.Fatalf("plan: %+v", plan)
	}
	ch := plan.Changes[0]
	if ch.Op != OpCreate || ch.Provider != "10.244.2.9:20880" || !reflect.DeepEqual(ch.Consumers, []string{"10.132.2.50"}) ||
		!strings.Contains(ch.AfterText, `addresses: ["10.132.2.50"], providerAddresses: ["10.244.2.9:20880"]`) {
		t.Fatalf("change: %+v", ch)
	}
	if !strings.Contains(plan.Skipped[0].Reason, "already disabled") || plan.Skipped[0].Provider != "10.244.2.10:20880" ||
		!strings.Contains(plan.Skipped[1].Reason, `path "baz"`) {
		t.Fatalf("skipped: %+v", plan.Skipped)
	}
	if _, err := (&Executor{ZK: c}).Apply(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	again, err := PlanDisableFor(c, in, o)
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("second plan: %v %+v", err, again.Changes)
	}

	// The healthy provider goes: Dubbo would keep its last invokers, so the entry goes too
	// (it would do nothing), and the target is reported skipped with the real fix.
	in.Providers = []Target{unreachable}
	plan, err = PlanDisableFor(c, in, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || plan.Changes[0].Op != OpDelete || plan.Changes[0].Mode != ModeUndoDisable {
		t.Fatalf("plan after the healthy provider left: %+v", plan.Changes)
	}
	if len(plan.Skipped) != 3 || !strings.Contains(plan.Skipped[2].Reason, "keeps its last invokers") || !strings.Contains(plan.Skipped[2].Reason, "routes --missing") {
		t.Fatalf("skipped: %+v", plan.Skipped)
	}

	// The consumer moves: the entry follows it.
	if _, err := (&Executor{ZK: c}).Apply(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	in.Providers = []Target{unreachable, healthy}
	in.Consumers[0].Address = netip.MustParseAddr("10.132.2.60")
	plan, err = PlanDisableFor(c, in, o)
	if err != nil || len(plan.Changes) != 1 || !reflect.DeepEqual(plan.Changes[0].Consumers, []string{"10.132.2.60"}) {
		t.Fatalf("plan after the consumer moved: %v %+v", err, plan.Changes)
	}
	if _, err := PlanDisableFor(c, DisableInput{Targets: in.Targets}, o); !errors.Is(err, ErrIncompleteScan) {
		t.Fatalf("incomplete scan: %v", err)
	}
	if _, err := PlanDisableFor(c, in, DisableOptions{Scope: "inside"}); err == nil || !strings.Contains(err.Error(), `"inside"`) {
		t.Fatalf("bad scope: %v", err)
	}
}

// TestDisableInputFrom: only unreachable interface-level providers are targets; consumers
// inside a cluster are told apart by their verdict reason, pod or node.
func TestDisableInputFrom(t *testing.T) {
	r := &registry.Result{Complete: true,
		Providers: []registry.Finding{
			{Service: "com.foo.Bar", Address: "10.244.2.9", Port: 20880, Kind: registry.KindInterface, Verdict: routes.Unreachable, Reason: routes.ReasonUnpublishedPodRoute, URLPath: "com.foo.Bar"},
			// Reachable yet stale: never a target (issue 12, item 9).
			{Service: "com.foo.Bar", Address: "10.244.1.7", Port: 20880, Kind: registry.KindInterface, Verdict: routes.Reachable, Stale: true, URLPath: "com.foo.Bar"},
			{Service: "com.foo.Bar", Address: "10.244.2.10", Port: 20880, Kind: registry.KindInterface, Verdict: routes.Unreachable, Disabled: true, URLPath: "bar"},
			{Service: "shop", Address: "10.244.2.11", Port: 20880, Kind: registry.KindApplication, Verdict: routes.Unreachable},
		},
		Consumers: []registry.Finding{
			{Service: "com.foo.Bar", Version: "1.0", Group: "g", Address: "10.132.2.50", Kind: registry.KindInterface, Release: "3.3.6", Application: "web", Reason: routes.ReasonExternalNetwork},
			{Service: "com.foo.Bar", Address: "10.244.1.5", Kind: registry.KindInterface, Reason: routes.ReasonPublishedPodRoute},
			{Service: "com.foo.Bar", Address: "10.132.2.11", Kind: registry.KindInterface, Reason: routes.ReasonExternalNetwork, Node: "node-1"},
			{Service: "com.foo.Bar", Address: "consumer.example", Kind: registry.KindInterface},
		}}
	in := DisableInputFrom(r)
	if !in.Complete || len(in.Providers) != 3 || len(in.Targets) != 2 || len(in.Consumers) != 3 {
		t.Fatalf("input: %+v", in)
	}
	if in.Targets[0].Address != ap("10.244.2.9:20880") || in.Targets[0].Path != "" || !in.Targets[1].Disabled || in.Targets[1].Path != "bar" {
		t.Fatalf("targets: %+v", in.Targets)
	}
	want := Consumer{Interface: "com.foo.Bar", Version: "1.0", Group: "g", Application: "web", Address: netip.MustParseAddr("10.132.2.50"), Release: "3.3.6"}
	if in.Consumers[0] != want || !in.Consumers[1].Inside || !in.Consumers[2].Inside {
		t.Fatalf("consumers: %+v", in.Consumers)
	}
}
