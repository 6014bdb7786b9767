package probe_test

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/registry/probe"
)

// BenchmarkProbe10k probes 10,000 providers, 256 in flight, each a Dubbo heartbeat
// answered by a fixture listener on a loopback address (40 addresses 127.0.1.1-40, 250
// listeners each; nothing but loopback is contacted). One op is the whole run of 10,000; the
// allocations counted include the fixture servers' side of each connection (same process).
//
//	go test -run XXX -bench BenchmarkProbe10k -benchtime=3x ./registry/probe
func BenchmarkProbe10k(b *testing.B) {
	const n, inFlight, hosts = 10_000, 256, 40
	targets := make([]probe.Target, 0, n)
	for i := range n {
		host := fmt.Sprintf("127.0.1.%d", 1+i%hosts)
		ln, _ := dubboFixture(b, host)
		ap := netip.AddrPortFrom(netip.MustParseAddr(host), uint16(port(ln)))
		if !ap.Addr().IsLoopback() {
			b.Fatalf("%s is not loopback", ap)
		}
		targets = append(targets, probe.Target{Addr: ap, Protocol: "dubbo", Registrations: 1, Services: []string{"com.bench.Service"}})
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		ms := probe.Probe(ctx, targets, probe.Options{Concurrency: inFlight, Timeout: 10 * time.Second})
		el := time.Since(start)
		for i := range ms {
			if ms[i].Result != probe.Answered {
				b.Fatalf("%s:%d: %s (%s)", ms[i].Address, ms[i].Port, ms[i].Result, ms[i].Detail)
			}
		}
		b.ReportMetric(float64(n)/el.Seconds(), "providers/s")
	}
	b.StopTimer()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxRSS-MiB") // Linux: KiB; the process with its 10,000 listeners
}
