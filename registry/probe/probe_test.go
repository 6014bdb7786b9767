package probe_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/test/harness"
)

func byAddr(r *probe.Report) map[string]probe.Measurement {
	m := map[string]probe.Measurement{}
	for _, x := range r.Measurements {
		m[net.JoinHostPort(x.Address, itoa(x.Port))] = x
	}
	return m
}

func itoa(i int) string { return strconv.Itoa(i) }

func addr(host string, p int) string { return net.JoinHostPort(host, itoa(p)) }

// TestRunMeasuresEachRegisteredProvider reads real registrations from a real ZooKeeper and
// probes real servers on loopback: Go's HTTP/2 server for tri://, the Dubbo heartbeat fixture
// for dubbo://, a listener that says nothing, a closed port.
func TestRunMeasuresEachRegisteredProvider(t *testing.T) {
	z := harness.StartZooKeeper(t)
	w := newZKWriter(t, z.Addr)

	dub, dubAccepts := dubboFixture(t, "127.0.0.1")
	tri := h2cServer(t, "127.0.0.1")
	mute := listen(t, "127.0.0.1") // accepts (the kernel does) and never answers
	closing := listen(t, "127.0.0.1")
	serve(closing, func(net.Conn) {}) // accepts and closes: something that is not Dubbo
	refused := refusedPort(t, "127.0.0.1")

	w.provider("com.a.Greeter", dubboURL("dubbo", "127.0.0.1", port(dub), "com.a.Greeter"))
	w.provider("com.a.Billing", dubboURL("dubbo", "127.0.0.1", port(dub), "com.a.Billing")) // same address: one probe
	w.instance("demo", "127.0.0.1", port(dub), "dubbo")                                     // and the application-level entry
	w.provider("com.a.Tri", dubboURL("tri", "127.0.0.1", port(tri), "com.a.Tri"))
	w.provider("com.a.Mute", dubboURL("dubbo", "127.0.0.1", port(mute), "com.a.Mute"))
	w.provider("com.a.Closing", dubboURL("dubbo", "127.0.0.1", port(closing), "com.a.Closing"))
	w.provider("com.a.Gone", dubboURL("dubbo", "127.0.0.1", refused, "com.a.Gone"))
	w.provider("com.a.Rest", dubboURL("rest", "127.0.0.1", port(closing), "com.a.Rest")) // dubbo outranks rest on one port
	w.provider("com.a.Named", dubboURL("dubbo", "provider.example.com", 20880, "com.a.Named"))
	w.provider("com.a.Evil", "tri://127.0.0.1:"+itoa(port(tri))+"/com.a.Evil\x1b[31m?application=x")

	rep, err := probe.Run(ctx(t), probe.RunOptions{Scan: zk.Config{Options: zk.Options{Servers: z.Addr}},
		Probe: probe.Options{Timeout: 2 * time.Second, Concurrency: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete {
		t.Fatalf("report incomplete: missing %v", rep.Missing)
	}
	got := byAddr(rep)
	want := map[string]probe.Result{
		addr("127.0.0.1", port(dub)):     probe.Answered,
		addr("127.0.0.1", port(tri)):     probe.Answered,
		addr("127.0.0.1", port(mute)):    probe.WrongAnswer,
		addr("127.0.0.1", port(closing)): probe.WrongAnswer,
		addr("127.0.0.1", refused):       probe.Refused,
	}
	if len(got) != len(want) {
		t.Errorf("%d measurements, want %d (one per address:port): %+v", len(got), len(want), rep.Measurements)
	}
	for a, res := range want {
		if got[a].Result != res {
			t.Errorf("%s: result %s (%s), want %s", a, got[a].Result, got[a].Detail, res)
		}
	}
	d := got[addr("127.0.0.1", port(dub))]
	if d.Registrations != 3 || d.Protocol != "dubbo" || len(d.Services) != 3 {
		t.Errorf("dubbo address: %+v, want 3 registrations of protocol dubbo merged", d)
	}
	if n := dubAccepts.Load(); n != 1 {
		t.Errorf("the Dubbo provider was contacted %d times, want once for its three registrations", n)
	}
	if c := got[addr("127.0.0.1", port(closing))]; c.Protocol != "dubbo" {
		t.Errorf("a port registered as dubbo and rest is probed as %q, want dubbo", c.Protocol)
	}
	if m := got[addr("127.0.0.1", port(mute))]; !strings.Contains(m.Detail, "no answer within the timeout") {
		t.Errorf("mute listener detail %q, want it to say no answer came", m.Detail)
	}
	for _, s := range got[addr("127.0.0.1", port(tri))].Services {
		if strings.ContainsRune(s, 0x1b) {
			t.Errorf("service %q carries a raw escape from the registry", s)
		}
	}
	if rep.Summary.Hostnames != 1 {
		t.Errorf("hostnames %d, want 1 (never resolved)", rep.Summary.Hostnames)
	}
	if rep.OK() {
		t.Error("report OK with refused and wrong answers")
	}
}

// TestOnlyContactsNothingOutside registers providers on 127.0.0.1 and 127.0.0.2, listens on
// both, probes with --only 127.0.0.1/32 and checks that 127.0.0.2 saw no connection and that
// no dial was made outside the range.
func TestOnlyContactsNothingOutside(t *testing.T) {
	z := harness.StartZooKeeper(t)
	w := newZKWriter(t, z.Addr)
	in, _ := dubboFixture(t, "127.0.0.1")
	out, outAccepts := dubboFixture(t, "127.0.0.2")
	w.provider("com.a.In", dubboURL("dubbo", "127.0.0.1", port(in), "com.a.In"))
	w.provider("com.a.Out", dubboURL("dubbo", "127.0.0.2", port(out), "com.a.Out"))
	w.instance("outside", "127.0.0.2", port(out), "dubbo")

	only, err := probe.ParseOnly([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dialed []string
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, a)
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}
	rep, err := probe.Run(ctx(t), probe.RunOptions{Scan: zk.Config{Options: zk.Options{Servers: z.Addr}}, Only: only,
		Probe: probe.Options{Dial: dial}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Measurements) != 1 || rep.Measurements[0].Address != "127.0.0.1" || rep.Measurements[0].Result != probe.Answered {
		t.Fatalf("measurements %+v, want 127.0.0.1 answered only", rep.Measurements)
	}
	if rep.Summary.Excluded != 2 {
		t.Errorf("excluded %d, want 2 registrations outside --only", rep.Summary.Excluded)
	}
	if len(dialed) != 1 || dialed[0] != addr("127.0.0.1", port(in)) {
		t.Errorf("dialed %v, want only %s", dialed, addr("127.0.0.1", port(in)))
	}
	if n := outAccepts.Load(); n != 0 {
		t.Errorf("the provider outside --only accepted %d connection(s)", n)
	}
	if !rep.OK() {
		t.Errorf("report not OK: %+v", rep)
	}
}

// TestConnectFailuresAreClassified covers what loopback cannot show on demand (a connect that
// times out, an unreachable network) through the Dial hook, and what it can for real.
func TestConnectFailuresAreClassified(t *testing.T) {
	target := func(p int) []probe.Target {
		return []probe.Target{{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p)), Protocol: "dubbo"}}
	}
	blackhole := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done() // what a dropped SYN looks like to the dialer
		return nil, ctx.Err()
	}
	ms := probe.Probe(context.Background(), target(1), probe.Options{Timeout: 50 * time.Millisecond, Dial: blackhole})
	if ms[0].Result != probe.Timeout {
		t.Errorf("dropped connect: %+v, want timeout", ms[0])
	}
	ms = probe.Probe(context.Background(), target(refusedPort(t, "127.0.0.1")), probe.Options{})
	if ms[0].Result != probe.Refused {
		t.Errorf("closed port: %+v, want refused", ms[0])
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	ms = probe.Probe(cancelled, target(1), probe.Options{})
	if ms[0].Result != probe.Failed || !strings.Contains(ms[0].Detail, "not probed") {
		t.Errorf("cancelled run: %+v, want error not probed", ms[0])
	}
}

func TestTargetsBoundsAndDedup(t *testing.T) {
	var snap zk.Snapshot
	for i := range 10 {
		snap.Entries = append(snap.Entries, zk.Entry{Kind: zk.KindProvider, Dir: "/dubbo/s/providers",
			Name: strings.ReplaceAll(dubboURL("dubbo", "10.0.0."+itoa(i%5+1), 20880, "com.s"+itoa(i)), "/", "%2F")})
	}
	snap.Entries = append(snap.Entries, zk.Entry{Kind: zk.KindConsumer, Dir: "/dubbo/s/consumers", Name: "consumer%3A%2F%2F10.9.9.9%2Fcom.s"},
		zk.Entry{Kind: zk.KindProvider, Dir: "/dubbo/s/providers", Name: "%%%"})
	p := probe.Targets(snap, nil, 3)
	if len(p.Targets) != 3 || p.Truncated != 4 || p.Unparseable != 1 {
		t.Fatalf("targets %d truncated %d unparseable %d, want 3, 4 (registrations of 2 addresses beyond the bound), 1", len(p.Targets), p.Truncated, p.Unparseable)
	}
	for _, x := range p.Targets {
		if x.Registrations != 2 || len(x.Services) != 2 {
			t.Errorf("%s: %d registrations, services %v; want 2 and 2", x.Addr, x.Registrations, x.Services)
		}
	}
	if _, err := probe.ParseOnly([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), "--only") {
		t.Errorf("bad --only: %v", err)
	}
}
