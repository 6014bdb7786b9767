package lab_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/test/lab"
)

// TestFixDisableObeyedByRealConsumers: the rule `audit --fix disable` writes (planned by
// fix.PlanDisableFor, scoped to the consumer outside, applied by the executor) is obeyed by real
// Dubbo 3.3.6 and 2.7.23 consumers on the outside host: with two providers of one service, every
// call goes to the one left. Both providers run on the host network of nodes whose pod routes
// the gateway has (Dubbo registers the cni0 address there), reachable from outside,
// so that what is measured is the rule and not the network: a consumer that ignored the rule
// would pick the disabled one about half the time (random load balancing), and three runs per
// version would all miss it with probability 1/8 each.
func TestFixDisableObeyedByRealConsumers(t *testing.T) {
	l := shared(t)
	const name = "fixed"
	var provs []*lab.Provider
	for _, n := range []*lab.Node{l.Nodes[0], l.Nodes[2]} {
		p, err := l.StartProvider(&n.Host, lab.ProviderSpec{Name: name, Version: lab.Dubbo336})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		provs = append(provs, p)
	}
	disabled, kept := provs[0], provs[1]
	at := func(p *lab.Provider) netip.AddrPort {
		for _, f := range strings.Fields(p.Identity) {
			if a, ok := strings.CutPrefix(f, name+"@"); ok {
				if ap, err := netip.ParseAddrPort(a); err == nil {
					return ap
				}
				if ad, err := netip.ParseAddr(a); err == nil {
					return netip.AddrPortFrom(ad, lab.DefaultDubboPort)
				}
			}
		}
		t.Fatalf("provider identity %q names no address", p.Identity)
		return netip.AddrPort{}
	}
	target := fix.Target{Interface: lab.ServiceName(name), Address: at(disabled)}
	other := fix.Target{Interface: lab.ServiceName(name), Address: at(kept)}
	t.Logf("providers: %s (to disable), %s (kept)", disabled.Identity, kept.Identity)

	conn, _, err := gozk.Connect([]string{lab.ZooKeeperAt}, 10*time.Second, gozk.WithDialer(l.Outside.DialTimeout), gozk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close) // registered first: it runs after the undo below
	deadline := time.Now().Add(30 * time.Second)
	for conn.State() != gozk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatal("no ZooKeeper session within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	in := fix.DisableInput{Complete: true, Targets: []fix.Target{target}, Providers: []fix.Target{target, other},
		Consumers: []fix.Consumer{{Interface: lab.ServiceName(name), Address: netip.MustParseAddr(lab.OutsideIP), Release: lab.Dubbo336}}}
	o := fix.DisableOptions{}
	plan, err := fix.PlanDisableFor(conn, in, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || fmt.Sprint(plan.Changes[0].Consumers) != "["+lab.OutsideIP+"]" {
		t.Fatalf("plan: %+v", plan)
	}
	rep, err := (&fix.Executor{ZK: conn}).Apply(context.Background(), plan)
	if err != nil || rep.Count(fix.ResultApplied) != 1 {
		t.Fatalf("apply: %v %+v", err, rep)
	}
	t.Logf("rule %s:\n%s", plan.Changes[0].Path, plan.Changes[0].AfterText)
	t.Cleanup(func() {
		undo, err := fix.PlanUndoDisable(conn, o)
		if err == nil {
			_, err = (&fix.Executor{ZK: conn}).Apply(context.Background(), undo)
		}
		if err != nil {
			t.Errorf("undo-disable: %v", err)
		}
	})

	for _, version := range []string{lab.Dubbo336, lab.Dubbo2723} {
		for run := 1; run <= 3; run++ {
			c, err := l.Consume(l.Outside, lab.ConsumerSpec{Version: version, Discovery: discovery(version)}, name)
			if err != nil {
				t.Fatalf("Dubbo %s consumer, run %d: %v", version, run, err)
			}
			call := c.Calls[name]
			t.Logf("Dubbo %s consumer, run %d: ok=%v answer %q error %q", version, run, call.OK, call.Answer, call.Error)
			if !call.OK || call.Answer != kept.Identity {
				t.Errorf("Dubbo %s consumer, run %d: answered by %q (%s), want only %q: the disable rule was not obeyed", version, run, call.Answer, call.Error, kept.Identity)
			}
		}
	}
}

// discovery forces interface-level discovery where the consumer has a choice (the rule is a
// service rule; the application-level directory is not measured here).
func discovery(version string) string {
	if version == lab.Dubbo2723 {
		return ""
	}
	return lab.DiscoverInterface
}
