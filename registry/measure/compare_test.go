package measure

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/routes"
)

func TestContradicts(t *testing.T) {
	// Every verdict against every result: only routing facts contradict.
	want := map[routes.Status][]probe.Result{
		routes.Reachable:   {probe.Timeout, probe.Unreachable},
		routes.Unreachable: {probe.Answered, probe.Connected, probe.WrongAnswer},
		routes.Unknown:     nil,
	}
	for v, rs := range want {
		for _, r := range probe.Results {
			exp := false
			for _, x := range rs {
				exp = exp || x == r
			}
			assert.Equal(t, exp, Contradicts(v, r), "verdict %s, measured %s", v, r)
		}
	}
	assert.False(t, Contradicts(routes.Reachable, probe.Refused), "a reset came back: routing works")
	assert.False(t, Contradicts(routes.Unreachable, probe.Refused), "refused is not a routing contradiction")
}

func provider(svc, addr string, port int, v routes.Status, reason routes.Reason, node string) registry.Finding {
	return registry.Finding{Service: svc, Address: addr, Port: port, Verdict: v, Reason: reason, Node: node, Kind: registry.KindInterface}
}

// The field case: the fabric file lists node2's pod route as installed (the verdict says
// reachable) while the gateway lacks it (the probe times out); node1's route is not listed
// (verdict unreachable) but the network team did add it (the probe connects).
func TestCompareFindsBothKindsOfContradiction(t *testing.T) {
	c := newClock()
	s := NewStore(Options{Now: c.Now})
	res := &registry.Result{Providers: []registry.Finding{
		provider("com.a.Cart", "10.131.73.9", 20880, routes.Reachable, routes.ReasonPublishedPodRoute, "node2"),
		provider("com.a.Order", "10.131.73.9", 20880, routes.Reachable, routes.ReasonPublishedPodRoute, "node2"),
		provider("com.a.Pay", "10.131.10.5", 20880, routes.Unreachable, routes.ReasonUnpublishedPodRoute, "node1"),
		provider("com.a.Gone", "10.131.10.6", 20880, routes.Unreachable, routes.ReasonUnpublishedPodRoute, "node1"),
		provider("com.a.Vm", "10.132.2.30", 20880, routes.Reachable, routes.ReasonExternalNetwork, ""),
		provider("com.a.Odd", "203.0.113.9", 20880, routes.Unknown, routes.ReasonNoMatchingNetwork, ""),
		provider("com.a.Named", "pods.example.com", 20880, routes.Unknown, registry.ReasonHostname, ""),
	}}
	res.Providers[2].MissingRoute = &routes.Route{Prefix: netip.MustParsePrefix("10.131.10.0/24"), NextHop: netip.MustParseAddr("10.132.2.22"), Node: "node1"}
	require.NoError(t, s.Put("outside-dc1", c.Now().Add(-time.Second), []probe.Measurement{
		{Address: "10.131.73.9", Port: 20880, Result: probe.Timeout, Detail: "no answer to the TCP connect within the timeout"},
		{Address: "10.131.10.5", Port: 20880, Result: probe.Answered},
		{Address: "10.131.10.6", Port: 20880, Result: probe.Refused}, // routed, nothing listens: no contradiction
		{Address: "10.132.2.30", Port: 20880, Result: probe.Answered},
		{Address: "203.0.113.9", Port: 20880, Result: probe.Timeout}, // verdict unknown: nothing to contradict
		{Address: "10.9.9.9", Port: 1, Result: probe.Timeout},        // no registration any more
	}))
	require.NoError(t, s.Put("inside", c.Now(), []probe.Measurement{{Address: "10.131.73.9", Port: 20880, Result: probe.Answered}}))

	cs := s.Compare(res)
	require.Len(t, cs, 2, "%+v", cs)
	a, b := cs[0], cs[1]
	assert.Equal(t, "outside-dc1", a.Vantage)
	assert.Equal(t, "10.131.10.5", a.Address)
	assert.Equal(t, routes.Unreachable, a.Verdict)
	assert.Equal(t, probe.Answered, a.Result)
	assert.Equal(t, &MissingRoute{Prefix: "10.131.10.0/24", NextHop: "10.132.2.22", Node: "node1"}, a.MissingRoute)
	assert.Equal(t, "10.131.10.5:20880 answered the connect from outside-dc1, so the route 10.131.10.0/24 via 10.132.2.22 is in place: "+
		"add it to podRoutes.installed in the fabric file (or publish it), or this vantage is not outside the cluster network", a.Hint)

	assert.Equal(t, "10.131.73.9", b.Address)
	assert.Equal(t, routes.Reachable, b.Verdict)
	assert.Equal(t, routes.ReasonPublishedPodRoute, b.Reason)
	assert.Equal(t, probe.Timeout, b.Result)
	assert.Equal(t, "node2", b.Node)
	assert.Equal(t, []string{"com.a.Cart", "com.a.Order"}, b.Services)
	assert.Equal(t, 2, b.Registrations)
	assert.Equal(t, c.Now().Add(-time.Second), b.MeasuredAt)
	assert.Contains(t, b.Hint, "the pod route of node node2 is taken as published")
	assert.Contains(t, b.Hint, "10.131.73.9:20880 was timeout from outside-dc1: the gateway probably lacks the route")

	assert.Equal(t, map[string]int{"inside": 0, "outside-dc1": 2}, s.Counts(res))

	// The measurements expire, and the contradictions with them.
	c.Add(DefaultTTL)
	assert.Empty(t, s.Compare(res))
	assert.Empty(t, s.Counts(res))
	assert.Empty(t, s.Compare(nil))
}

func TestHints(t *testing.T) {
	for _, tc := range []struct {
		c    Contradiction
		want string
	}{
		{Contradiction{Vantage: "v", Address: "10.132.2.30", Port: 1, Verdict: routes.Reachable, Reason: routes.ReasonExternalNetwork, Result: probe.Unreachable},
			"10.132.2.30:1 lies in a network the fabric file lists as reachable, but was unreachable from v: the reachable range is wrong"},
		{Contradiction{Vantage: "v", Address: "10.96.0.10", Port: 1, Verdict: routes.Unreachable, Reason: routes.ReasonServiceNetwork, Result: probe.Connected},
			"the unreachable or serviceCIDR list is wrong, or this vantage is inside the cluster network"},
		{Contradiction{Vantage: "v", Address: "10.131.10.5", Port: 1, Verdict: routes.Unreachable, Reason: routes.ReasonUnpublishedPodRoute, Node: "n1", Result: probe.WrongAnswer},
			"so its pod route of node n1 is in place"},
		{Contradiction{Vantage: "v", Address: "::1", Port: 1, Verdict: routes.Unreachable, Reason: routes.ReasonLoopback, Result: probe.Answered},
			"the verdict is unreachable (loopback), but [::1]:1 answered the connect from v"},
	} {
		assert.Contains(t, hint(&tc.c), tc.want)
	}
}
