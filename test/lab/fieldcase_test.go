package lab_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
	"github.com/dubboreach/dubboreach/test/lab"
	"github.com/dubboreach/dubboreach/webhook"
)

// fixedTable hands the webhook one route table (the lab's, as built when the pod is admitted).
type fixedTable struct{ t *routes.Table }

func (f fixedTable) Table() *routes.Table { return f.t }

// placement is one provider of the field case: where it runs and how it is admitted.
type placement struct {
	name, ns, node, version string
	containerPort, hostPort int32
	annotations             map[string]string
	wantMode                webhook.Mode // ModeNone: the namespace is not injected
}

// fieldCase is the pods of the field case, on the lab as DefaultNodes builds it (the gateway
// lacks node-2's route): a legacy namespace without injection, and an injected one.
var fieldCase = []placement{
	// Not injected: Dubbo registers the address of its own NIC, the pod IP, on node-2.
	{name: "legacy33", ns: "legacy", node: "node-2", version: lab.Dubbo336, containerPort: 20880, wantMode: webhook.ModeNone},
	// Injected, auto: two of three nodes have their routes, so the webhook chooses the host IP
	// and the hostPort; hostPort differs from the container port as clusters usually have it.
	{name: "auto33", ns: "shop", node: "node-2", version: lab.Dubbo336, containerPort: 20880, hostPort: 30880, wantMode: webhook.ModeHost},
	// Injected, auto, Dubbo 2.7: hostPort equal to the container port (2.7.12..2.7.23 bind the
	// port they register, see TestDubbo27BindsRegisteredPort).
	{name: "auto27", ns: "shop", node: "node-2", version: lab.Dubbo2723, containerPort: 20881, hostPort: 20881, wantMode: webhook.ModeHost},
	// Injected, pod address asked for, on node-1 whose route the gateway has.
	{name: "pod27", ns: "shop", node: "node-1", version: lab.Dubbo2723, containerPort: 20880,
		annotations: map[string]string{webhook.AnnotationAddress: "pod"}, wantMode: webhook.ModePod},
}

type running struct {
	placement
	admitted *lab.Admitted
	provider *lab.Provider
}

// startFieldCase admits and starts the field case's providers, in parallel.
func startFieldCase(t *testing.T, l *lab.Lab) []*running {
	t.Helper()
	return startPlacements(t, l, fieldCase)
}

// startPlacements admits (with the lab's static route table) and starts providers, in parallel.
func startPlacements(t *testing.T, l *lab.Lab, placements []placement) []*running {
	t.Helper()
	table, err := l.Table()
	if err != nil {
		t.Fatal(err)
	}
	in := &webhook.Injector{Routes: fixedTable{table}}
	namespaces := map[string]*corev1.Namespace{"legacy": lab.Namespace("legacy", false), "shop": lab.Namespace("shop", true)}
	out := make([]*running, len(placements))
	var wg sync.WaitGroup
	errs := make([]error, len(placements))
	for i, pl := range placements {
		adm, err := l.Admit(in, namespaces[pl.ns], lab.DubboPod(pl.ns, pl.name, pl.containerPort, pl.hostPort, pl.annotations), l.Node(pl.node))
		if err != nil {
			t.Fatal(err)
		}
		if adm.Decision.Mode != pl.wantMode {
			t.Fatalf("webhook chose %q for %s; want %q (reason %q)", adm.Decision.Mode, pl.name, pl.wantMode, adm.Decision.Reason)
		}
		t.Cleanup(func() { l.RemovePod(adm.Pod) })
		out[i] = &running{placement: pl, admitted: adm}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].provider, errs[i] = l.StartProvider(&adm.Pod.Host, lab.ProviderSpec{Name: pl.name, Version: pl.version, Port: int(pl.containerPort), Env: adm.Env})
		}()
	}
	wg.Wait()
	for _, r := range out {
		if r.provider != nil {
			t.Cleanup(r.provider.Kill)
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range out {
		t.Logf("provider %s (Dubbo %s) on %s, env %v: registered %s in %s, peak RSS %d MiB",
			r.name, r.version, r.node, r.admitted.Env, r.provider.Identity, r.provider.Started.Round(time.Millisecond), r.provider.PeakRSS()/1024)
	}
	return out
}

// audit runs the real auditor once against the lab's ZooKeeper, connecting from the outside
// host, with the lab's route table and the admitted pods.
func audit(t *testing.T, l *lab.Lab, pods []*running) *registry.Result {
	t.Helper()
	table, err := l.Table()
	if err != nil {
		t.Fatal(err)
	}
	return auditWith(t, l, pods, table)
}

// auditWith is audit with a given route table (publish: bgp: built from the speaker's status).
func auditWith(t *testing.T, l *lab.Lab, pods []*running, table *routes.Table) *registry.Result {
	t.Helper()
	inv := &routes.Inventory{Nodes: l.RoutesNodes()}
	for _, r := range pods {
		inv.Pods = append(inv.Pods, *r.admitted.Object)
	}
	inv.Namespaces = []corev1.Namespace{*lab.Namespace("legacy", false), *lab.Namespace("shop", true)}
	idx := registry.NewPodIndex()
	idx.Replace(inv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := registry.Once(ctx, zk.Config{Options: zk.Options{Servers: lab.ZooKeeperAt, Dialer: l.Outside.DialTimeout}}, table, idx, render.Linux)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete {
		t.Fatalf("audit not complete: missing %v", res.Missing)
	}
	return res
}

// measure calls every provider from the outside host with a Dubbo 3.3 consumer (interface-level
// discovery) and returns which answered, each with the identity it answered with.
func measure(t *testing.T, l *lab.Lab, spec lab.ConsumerSpec, pods []*running) map[string]bool {
	t.Helper()
	var names []string
	for _, r := range pods {
		names = append(names, r.name)
	}
	c, err := l.Consume(l.Outside, spec, names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("consumer %s/%s on the outside host: %s, peak RSS %d MiB", spec.Version, spec.Discovery, c.Elapsed.Round(time.Millisecond), c.PeakRSS/1024)
	out := map[string]bool{}
	for _, r := range pods {
		call := c.Calls[r.name]
		if call.OK && call.Answer != r.provider.Identity {
			t.Fatalf("call to %s was answered by %q; want %q", r.name, call.Answer, r.provider.Identity)
		}
		out[r.name] = call.OK
		if call.OK {
			t.Logf("  %s: answered in %s", r.name, call.Latency)
		} else {
			t.Logf("  %s: failed after %s: %s", r.name, call.Latency, call.Error)
		}
	}
	return out
}

// agree checks that the auditor's verdict for each provider's registrations (interface- and,
// for Dubbo 3, application-level) is reachable exactly when the measurement says so.
func agree(t *testing.T, res *registry.Result, pods []*running, measured map[string]bool) {
	t.Helper()
	for _, r := range pods {
		kinds := map[string]registry.Finding{}
		for _, f := range res.Providers {
			if f.Service == lab.ServiceName(r.name) || f.Service == lab.AppName(r.name) {
				kinds[f.Kind] = f
			}
		}
		want := []string{registry.KindInterface}
		if strings.HasPrefix(r.version, "3.") {
			want = append(want, registry.KindApplication) // register-mode=all by default
		}
		for _, k := range want {
			f, ok := kinds[k]
			if !ok {
				t.Errorf("%s: no %s-level registration found by the auditor", r.name, k)
				continue
			}
			if got := f.Verdict == routes.Reachable; got != measured[r.name] {
				t.Errorf("%s (%s-level, %s:%d): auditor says %s (%s), outside consumer measured reachable=%v",
					r.name, k, f.Address, f.Port, f.Verdict, f.Reason, measured[r.name])
			}
		}
	}
}

// TestFieldCase is the product's promise, measured: a provider on the node whose pod route the
// gateway lacks registers its pod IP and cannot be called from outside; the auditor says so
// and names the route; the route rendered as `dubboreach routes --missing -o linux` applied on
// the gateway makes the call succeed. Injected providers (host mode with hostPort) are
// reachable from the start. Every verdict equals what the outside consumer measures.
func TestFieldCase(t *testing.T) {
	l := shared(t)
	pods := startFieldCase(t, l)

	res := audit(t, l, pods)
	measured := measure(t, l, lab.ConsumerSpec{Version: lab.Dubbo336, Discovery: lab.DiscoverInterface}, pods)
	want := map[string]bool{"legacy33": false, "auto33": true, "auto27": true, "pod27": true}
	for name, ok := range want {
		if measured[name] != ok {
			t.Errorf("outside call to %s: reachable=%v; the field case expects %v", name, measured[name], ok)
		}
	}
	agree(t, res, pods, measured)
	probeFromOutside(t, l, res, pods, measured)
	var legacy *registry.Finding
	for i, f := range res.Providers {
		if f.Service == lab.ServiceName("legacy33") {
			legacy = &res.Providers[i]
		}
	}
	if legacy == nil || legacy.MissingRoute == nil || legacy.MissingRoute.Prefix.String() != "10.131.73.0/24" || legacy.MissingRoute.NextHop.String() != "10.132.2.12" {
		t.Fatalf("legacy33's finding should name the missing route 10.131.73.0/24 via 10.132.2.12: %+v", legacy)
	}

	// Publish: `dubboreach routes --missing -o linux`, piped into a shell on the gateway.
	table, err := l.Table()
	if err != nil {
		t.Fatal(err)
	}
	var entries []render.Entry
	for _, r := range table.Missing() {
		entries = append(entries, render.Entry{Prefix: r.Prefix, NextHop: r.NextHop, Node: r.Node})
	}
	var script bytes.Buffer
	if err := render.Render(&script, render.Linux, entries, render.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("applying on the gateway:\n%s", script.String())
	// The other tests share the lab as DefaultNodes built it.
	t.Cleanup(func() { l.DeleteGatewayRoute(l.Node("node-2")) })
	if out, err := l.Gateway.Exec("sh", "-e", "-c", script.String()); err != nil {
		t.Fatalf("the rendered routes do not apply on the gateway: %v: %s", err, out)
	}

	res = audit(t, l, pods)
	if res.Summary.Unreachable != 0 {
		t.Errorf("after publishing, %d providers are still unreachable by verdict", res.Summary.Unreachable)
	}
	measured = measure(t, l, lab.ConsumerSpec{Version: lab.Dubbo336, Discovery: lab.DiscoverInterface}, pods)
	for _, r := range pods {
		if !measured[r.name] {
			t.Errorf("after publishing, the outside call to %s still fails", r.name)
		}
	}
	agree(t, res, pods, measured)
	probeFromOutside(t, l, res, pods, measured)
}
