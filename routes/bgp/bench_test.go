package bgp

import (
	"fmt"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/routes"
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
