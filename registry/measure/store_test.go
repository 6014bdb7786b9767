package measure

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/routes"
)

// clock is a settable time for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func m(addr string, port int, r probe.Result) probe.Measurement {
	return probe.Measurement{Address: addr, Port: port, Protocol: "dubbo", Result: r, Millis: 1.5, Registrations: 1, Services: []string{"com.a.S"}}
}

func TestPutMergesAndReplacesPerAddress(t *testing.T) {
	c := newClock()
	s := NewStore(Options{Now: c.Now})
	require.NoError(t, s.Put("outside-dc1", c.Now(), []probe.Measurement{m("10.0.0.1", 20880, probe.Answered), m("10.0.0.2", 20880, probe.Timeout)}))
	c.Add(time.Minute)
	// A later report (a part, or --only another range) replaces 10.0.0.2 and adds 10.0.0.3.
	require.NoError(t, s.Put("outside-dc1", c.Now(), []probe.Measurement{m("10.0.0.2", 20880, probe.Answered), m("10.0.0.3", 20880, probe.Refused)}))
	require.NoError(t, s.Put("dc2", c.Now(), []probe.Measurement{m("10.0.0.1", 20880, probe.Timeout)}))

	assert.Equal(t, []Vantage{
		{Name: "dc2", LastReport: c.Now(), Measurements: 1, Results: map[probe.Result]int{probe.Timeout: 1}},
		{Name: "outside-dc1", LastReport: c.Now(), Measurements: 3, Results: map[probe.Result]int{probe.Answered: 2, probe.Refused: 1}},
	}, s.Vantages())
	es := s.Entries("outside-dc1")
	require.Len(t, es, 3)
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, []string{es[0].Address, es[1].Address, es[2].Address})
	assert.Equal(t, c.Now().Add(-time.Minute), es[0].ReceivedAt, "10.0.0.1 is from the first report")
	assert.Equal(t, probe.Answered, es[1].Result)
	assert.Len(t, s.Entries(""), 4)
	assert.Empty(t, s.Entries("nobody"))
}

func TestMeasurementsExpire(t *testing.T) {
	c := newClock()
	s := NewStore(Options{Now: c.Now, TTL: 10 * time.Minute, MaxVantages: 1})
	require.NoError(t, s.Put("a", c.Now(), []probe.Measurement{m("10.0.0.1", 1, probe.Answered)}))
	c.Add(6 * time.Minute)
	require.NoError(t, s.Put("a", c.Now(), []probe.Measurement{m("10.0.0.2", 1, probe.Answered)}))
	err := s.Put("b", c.Now(), []probe.Measurement{m("10.0.0.2", 1, probe.Answered)})
	require.ErrorIs(t, err, ErrTooManyVantages)
	assert.Contains(t, err.Error(), "vantage b is refused until one stops reporting for 10m0s")

	c.Add(5 * time.Minute) // 10.0.0.1 is 11 minutes old
	es := s.Entries("a")
	require.Len(t, es, 1)
	assert.Equal(t, "10.0.0.2", es[0].Address)

	c.Add(5 * time.Minute) // all of a has expired: its place is free
	assert.Empty(t, s.Vantages())
	require.NoError(t, s.Put("b", c.Now(), []probe.Measurement{m("10.0.0.2", 1, probe.Answered)}))
	assert.Equal(t, []string{"b"}, names(s.Vantages()))
}

func names(vs []Vantage) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestMaxEntriesRefusesTheWholeReport(t *testing.T) {
	s := NewStore(Options{MaxEntries: 3})
	require.NoError(t, s.Put("a", time.Time{}, []probe.Measurement{m("10.0.0.1", 1, probe.Answered), m("10.0.0.2", 1, probe.Answered)}))
	err := s.Put("b", time.Time{}, []probe.Measurement{m("10.0.0.1", 1, probe.Answered), m("10.0.0.2", 1, probe.Answered)})
	require.ErrorIs(t, err, ErrFull)
	assert.Equal(t, "the measurement store is full: 2 measurements kept, 2 new ones would pass the bound of 3", err.Error())
	assert.Equal(t, []string{"a"}, names(s.Vantages()), "nothing of b is kept")
	// Replacing what a vantage has is no growth.
	require.NoError(t, s.Put("a", time.Time{}, []probe.Measurement{m("10.0.0.1", 1, probe.Timeout), m("10.0.0.3", 1, probe.Answered)}))
	assert.Len(t, s.Entries(""), 3)
}

func TestPutValidates(t *testing.T) {
	s := NewStore(Options{})
	tests := []struct {
		vantage string
		m       probe.Measurement
		want    string
	}{
		{"a", m("pods.example.com", 1, probe.Answered), "measurements[0]: address pods.example.com port 1 is not an IP address and port 1..65535"},
		{"a", m("10.0.0.1", 0, probe.Answered), "measurements[0]: address 10.0.0.1 port 0 is not"},
		{"a", m("10.0.0.1", 70000, probe.Answered), "port 70000 is not"},
		{"a", m("10.0.0.1\x1b[31m", 1, probe.Answered), `address 10.0.0.1\x1b[31m port 1`},
		{"a", m("10.0.0.1", 1, "ok"), "measurements[0]: result ok is not one of answered, connected, wrong-answer, refused, timeout, unreachable, error"},
		{"Outside", m("10.0.0.1", 1, probe.Answered), "vantage Outside is not a valid name"},
		{"", m("10.0.0.1", 1, probe.Answered), "vantage  is not a valid name"},
		{"a/b", m("10.0.0.1", 1, probe.Answered), "vantage a/b is not a valid name"},
		{strings.Repeat("a", 64), m("10.0.0.1", 1, probe.Answered), "want 1 to 63 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			err := s.Put(tc.vantage, time.Time{}, []probe.Measurement{tc.m})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.False(t, errors.Is(err, ErrFull) || errors.Is(err, ErrTooManyVantages))
		})
	}
	assert.Empty(t, s.Vantages())
	for _, ok := range []string{"a", "outside-dc1", "dc1.rack_2", "0", strings.Repeat("a", 63)} {
		assert.NoError(t, ValidVantage(ok), ok)
	}
}

func TestPutBoundsAndEscapesText(t *testing.T) {
	c := newClock()
	s := NewStore(Options{Now: c.Now})
	in := probe.Measurement{Address: "::ffff:10.0.0.1", Port: 1, Result: probe.Answered, Protocol: "dubbo\x1b[2J",
		Detail: strings.Repeat("é", 400), Millis: -3, Registrations: -1,
		Services: []string{"a\nb", `c\x41`, "d", "e"}}
	// A probe clock an hour ahead is not believed.
	require.NoError(t, s.Put("a", c.Now().Add(2*time.Hour), []probe.Measurement{in}))
	es := s.Entries("a")
	require.Len(t, es, 1)
	e := es[0]
	assert.Equal(t, "10.0.0.1", e.Address, "IPv4-mapped is unmapped")
	assert.Equal(t, `dubbo\x1b[2J`, e.Protocol)
	assert.LessOrEqual(t, len(e.Detail), maxDetail+3)
	assert.True(t, strings.HasSuffix(e.Detail, "é..."), e.Detail)
	assert.Equal(t, []string{`a\nb`, `c\x41`, "d"}, e.Services, "already escaped text is not escaped twice; at most 3")
	assert.Zero(t, e.Millis)
	assert.Zero(t, e.Registrations)
	assert.Equal(t, c.Now(), e.MeasuredAt)
}

func TestStoreConcurrentUse(t *testing.T) {
	s := NewStore(Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				_ = s.Put("v"+strconv.Itoa(i), time.Time{}, []probe.Measurement{m("10.0.0."+strconv.Itoa(j), 1, probe.Answered)})
				_ = s.Vantages()
				_ = s.Entries("")
			}
		})
	}
	wg.Wait()
	assert.Len(t, s.Entries(""), 400)
}

// A Snapshot is the same pointer until a report or an expiry changes the store; it indexes
// the live entries by address:port, sorted by vantage; Updated is closed by a report.
func TestSnapshot(t *testing.T) {
	c := newClock()
	s := NewStore(Options{Now: c.Now})
	empty := s.Snapshot()
	assert.Equal(t, 0, empty.Len())
	assert.Same(t, empty, s.Snapshot(), "nothing changed")
	upd := s.Updated()
	require.NoError(t, s.Put("outside-dc1", c.Now(), []probe.Measurement{m("10.0.0.1", 20880, probe.Timeout)}))
	select {
	case <-upd:
	default:
		t.Fatal("Updated not closed by a report")
	}
	c.Add(time.Minute)
	require.NoError(t, s.Put("dc2", c.Now(), []probe.Measurement{m("10.0.0.1", 20880, probe.Answered), m("10.0.0.2", 20880, probe.Refused)}))
	sn := s.Snapshot()
	assert.NotSame(t, empty, sn)
	assert.Same(t, sn, s.Snapshot())
	assert.Equal(t, 2, sn.Len())
	es := sn.For(netip.MustParseAddrPort("10.0.0.1:20880"))
	require.Len(t, es, 2)
	assert.Equal(t, "dc2", es[0].Vantage)
	assert.Equal(t, "outside-dc1", es[1].Vantage)
	assert.Len(t, sn.For(netip.MustParseAddrPort("[::ffff:10.0.0.1]:20880")), 2, "a v4-mapped address is the v4 one")
	assert.Empty(t, sn.For(netip.MustParseAddrPort("10.0.0.1:1")))
	assert.Equal(t, []string{"dc2", "outside-dc1"}, []string{sn.Vantages()[0].Name, sn.Vantages()[1].Name})
	// outside-dc1's entry expires first: a new snapshot without it, though no report came.
	c.Add(DefaultTTL - 30*time.Second)
	later := s.Snapshot()
	assert.NotSame(t, sn, later)
	assert.Greater(t, later.Version, sn.Version)
	assert.Len(t, later.For(netip.MustParseAddrPort("10.0.0.1:20880")), 1)
	assert.Len(t, later.Vantages(), 1)
	var nilSnap *Snapshot
	assert.Equal(t, 0, nilSnap.Len())
	assert.Nil(t, nilSnap.For(netip.MustParseAddrPort("10.0.0.1:20880")))
}

func TestSortWorstFirst(t *testing.T) {
	es := []Entry{{Vantage: "a", Measurement: probe.Measurement{Result: probe.Answered}}, {Vantage: "b", Measurement: probe.Measurement{Result: probe.Refused}},
		{Vantage: "c", Measurement: probe.Measurement{Result: probe.Timeout}}, {Vantage: "d", Measurement: probe.Measurement{Result: probe.Connected}}}
	SortWorstFirst(es, routes.Unreachable) // answered and connected contradict it
	got := []string{}
	for _, e := range es {
		got = append(got, e.Vantage)
	}
	assert.Equal(t, []string{"d", "a", "c", "b"}, got)
	SortWorstFirst(es, routes.Reachable)
	got = got[:0]
	for _, e := range es {
		got = append(got, e.Vantage)
	}
	assert.Equal(t, []string{"c", "b", "d", "a"}, got)
}
