package lab_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/test/lab"
)

// probeFromOutside runs `dubboreach probe` (its package, in-process) on the outside host against
// the lab's registry and checks it against the outside consumer's calls: an address the consumer
// reached is one the probe reached, and real Dubbo answered its heartbeat there; an address the
// consumer could not call is one the probe could not connect to.
func probeFromOutside(t *testing.T, l *lab.Lab, res *registry.Result, pods []*running, measured map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := probe.Run(ctx, probe.RunOptions{
		Scan: zk.Config{Options: zk.Options{Servers: lab.ZooKeeperAt, Dialer: l.Outside.DialTimeout}},
		Probe: probe.Options{Timeout: 3 * time.Second, Dial: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return l.Outside.Dial(ctx, addr)
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete {
		t.Fatalf("probe did not read the whole registry: missing %v", rep.Missing)
	}
	for _, r := range pods {
		var f *registry.Finding
		for i := range res.Providers {
			if res.Providers[i].Service == lab.ServiceName(r.name) && res.Providers[i].Kind == registry.KindInterface {
				f = &res.Providers[i]
			}
		}
		if f == nil {
			t.Errorf("%s: no interface-level registration to probe", r.name)
			continue
		}
		var m *probe.Measurement
		for i := range rep.Measurements {
			if rep.Measurements[i].Address == f.Address && rep.Measurements[i].Port == f.Port {
				m = &rep.Measurements[i]
			}
		}
		if m == nil {
			t.Errorf("%s: the probe measured nothing for its registered %s:%d", r.name, f.Address, f.Port)
			continue
		}
		t.Logf("probe %s (Dubbo %s) %s:%d: %s in %.1f ms (%s)", r.name, r.version, m.Address, m.Port, m.Result, m.Millis, m.Detail)
		if m.Result.Reached() != measured[r.name] {
			t.Errorf("%s: probe says %s (reached=%v), the outside consumer measured reachable=%v", r.name, m.Result, m.Result.Reached(), measured[r.name])
		}
		if measured[r.name] && m.Result != probe.Answered {
			t.Errorf("%s: real Dubbo %s did not answer the probe's heartbeat: %s (%s)", r.name, r.version, m.Result, m.Detail)
		}
	}
}
