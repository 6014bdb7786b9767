package bgp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/routes/bgp/bgptest"
)

// bird is a real BIRD 2 (bgptest.Bird) under the names this package's tests use.
type bird struct {
	*bgptest.Bird
	addr netip.Addr
	port int
}

type birdConfig struct {
	addr       netip.Addr // BIRD's own address (127.0.0.x), where it listens
	asn        uint32
	peer       netip.Addr // the speaker's address
	peerASN    uint32
	password   string
	nextHopNet netip.Prefix // where announced next hops lie (resolved via lo)
}

func startBird(t testing.TB, c birdConfig) *bird {
	t.Helper()
	b := bgptest.StartBird(t, bgptest.BirdConfig{Addr: c.addr, ASN: c.asn, Peer: c.peer, PeerASN: c.peerASN, Password: c.password, NextHopNet: c.nextHopNet})
	return &bird{Bird: b, addr: b.Addr, port: b.Port}
}

func (b *bird) stop()                                { b.Stop() }
func (b *bird) birdc(args ...string) (string, error) { return b.Birdc(args...) }
func (b *bird) established() bool                    { return b.Established() }
func (b *bird) routes() map[netip.Prefix]netip.Addr  { return b.Routes() }
func freePort(t testing.TB, addr netip.Addr) int     { return bgptest.FreePort(t, addr) }
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	bgptest.Eventually(t, timeout, what, cond)
}
