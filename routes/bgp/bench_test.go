package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/test/harness"
)

var birdCount = regexp.MustCompile(`(\d+) of \d+ routes`)

func (b *bird) count() int {
	out, err := b.birdc("show", "route", "count", "protocol", "speaker")
	if err != nil {
		return -1
	}
	m := birdCount.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// BenchmarkAnnounce20kBIRD: a full announcement of 20,000 /26 pod prefixes to a real BIRD, until
// BIRD holds all of them, then their withdrawal until it holds none. Reports both times and the
// speaker's heap with 20,000 routes in its RIB.
func BenchmarkAnnounce20kBIRD(b *testing.B) {
	const n = 20000
	br := startBird(b, birdConfig{addr: netip.MustParseAddr("127.0.0.9"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	cfg := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Peers: []routes.BGPPeer{{Address: br.addr, ASN: 64513, Port: br.port}}}
	s := startSpeaker(b, cfg)
	eventually(b, 30*time.Second, "the BIRD session", br.established)
	rs := make([]routes.Route, n)
	for i := range rs {
		// 10.64.0.0 + i*64: 20,000 distinct /26s, 200 nodes of 100 blocks each.
		v := uint32(10)<<24 | uint32(64)<<16 | uint32(i)<<6
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		rs[i] = routes.Route{Prefix: netip.PrefixFrom(a, 26), NextHop: netip.AddrFrom4([4]byte{10, 132, byte(i / 100 / 250), byte(1 + i/100%250)}), Node: fmt.Sprint("node-", i/100)}
	}
	var announce, withdraw time.Duration
	var heap uint64
	for b.Loop() {
		start := time.Now()
		if _, err := s.Sync(rs); err != nil {
			b.Fatal(err)
		}
		eventually(b, 5*time.Minute, "BIRD to hold 20,000 routes", func() bool { return br.count() == n })
		announce += time.Since(start)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapAlloc
		start = time.Now()
		if _, err := s.Sync(nil); err != nil {
			b.Fatal(err)
		}
		eventually(b, 5*time.Minute, "BIRD to hold no route", func() bool { return br.count() == 0 })
		withdraw += time.Since(start)
	}
	b.ReportMetric(announce.Seconds()/float64(b.N), "s/announce-20k")
	b.ReportMetric(withdraw.Seconds()/float64(b.N), "s/withdraw-20k")
	b.ReportMetric(float64(heap)/(1<<20), "MiB-heap-20k")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkNodeToBIRD: the whole path under publish: bgp, from a Node created on a real API
// server to its pod route held by a real BIRD (informer -> route store -> speaker -> BGP UPDATE),
// and from the Node's deletion to the route's withdrawal there. Publish runs as `dubboreach
// publish` does (no leader election: one replica).
func BenchmarkNodeToBIRD(b *testing.B) {
	env := harness.Envtest(b, harness.EnvOptions{})
	ctx := harness.Context(b)
	br := startBird(b, birdConfig{addr: netip.MustParseAddr("127.0.0.12"), asn: 64513, peer: speakerAddr, peerASN: 64512,
		nextHopNet: netip.MustParsePrefix("10.132.0.0/16")})
	fab := routes.DefaultFabric()
	fab.Source, fab.Publish = routes.SourceNodes, routes.PublishBGP
	fab.BGP = &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), Within: within, AnnouncedTo: routes.AnnouncedToAny,
		Peers: []routes.BGPPeer{{Address: br.addr, ASN: 64513, Port: br.port}}}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Publish(pctx, PublishOptions{RestConfig: env.Config, Fabric: fab, Namespace: "default", Identity: "publish-0",
			MetricsBindAddress: "0", HealthProbeBindAddress: "0", Speaker: Options{LocalAddress: speakerAddr, ConnectRetry: time.Second}, Log: logr.Discard()})
	}()
	b.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			b.Errorf("Publish: %v", err)
		}
	})
	eventually(b, 60*time.Second, "the BIRD session", br.established)
	var add, del time.Duration
	i := 0
	for b.Loop() {
		name, cidr := fmt.Sprintf("bench-%d", i), fmt.Sprintf("10.131.%d.0/24", 100+i%100)
		prefix := netip.MustParsePrefix(cidr)
		i++
		start := time.Now()
		n := harness.CreateNode(b, env.Client, name, cidr, "10.132.2.50")
		for _, ok := br.routes()[prefix]; !ok; _, ok = br.routes()[prefix] {
			time.Sleep(time.Millisecond)
		}
		add += time.Since(start)
		start = time.Now()
		if err := env.Client.Delete(ctx, n); err != nil {
			b.Fatal(err)
		}
		for _, ok := br.routes()[prefix]; ok; _, ok = br.routes()[prefix] {
			time.Sleep(time.Millisecond)
		}
		del += time.Since(start)
	}
	b.ReportMetric(float64(add.Milliseconds())/float64(b.N), "ms/node-to-route")
	b.ReportMetric(float64(del.Milliseconds())/float64(b.N), "ms/delete-to-withdraw")
	b.ReportMetric(0, "ns/op")
}
