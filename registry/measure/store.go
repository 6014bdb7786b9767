// Package measure is the auditor's side of `dubboreach probe`: it keeps the measurements that
// probes at other places (vantages) report, bounded and expiring, and compares them with the
// auditor's verdicts. A verdict is a prediction from declared fabric facts; a measurement from
// where consumers run is the fact. Where they disagree, a fabric fact is probably wrong.
//
// The Store holds the latest measurement per vantage and provider address:port, the Handler
// takes reports over HTTP (POST /api/v1/measurements/{vantage}, bearer token) and serves them
// (GET), and the Collector exports dubboreach_probe_* metrics.
package measure

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dubboreach/dubboreach/registry/dubbo"
	"github.com/dubboreach/dubboreach/registry/probe"
)

// Defaults of Options.
const (
	DefaultTTL         = 15 * time.Minute
	DefaultMaxVantages = 32
	DefaultMaxEntries  = 100_000
	// maxDetail bounds the text kept from a reported detail; maxField a protocol or service.
	maxDetail = 240
	maxField  = 200
)

// Options bound a Store.
type Options struct {
	// TTL is how long a measurement counts after it was received (default 15m): a probe that
	// stops reporting stops being believed.
	TTL time.Duration
	// MaxVantages bounds the vantages kept at once (default 32); MaxEntries the measurements
	// kept over all vantages (default 100000). A report beyond either is refused whole.
	MaxVantages int
	MaxEntries  int
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Entry is one stored measurement: what the vantage measured and when the auditor got it.
type Entry struct {
	probe.Measurement
	Vantage string `json:"vantage"`
	// MeasuredAt is the probe's own clock (shown); ReceivedAt the auditor's (expiry, ages).
	MeasuredAt time.Time `json:"measuredAt"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Vantage summarizes what one vantage reported.
type Vantage struct {
	Name         string               `json:"name"`
	LastReport   time.Time            `json:"lastReport"`
	Measurements int                  `json:"measurements"`
	Results      map[probe.Result]int `json:"results"`
}

type vantage struct {
	last   time.Time
	byAddr map[netip.AddrPort]*Entry
}

// Store keeps the latest measurement per vantage and address:port. It is safe for concurrent use.
type Store struct {
	o        Options
	mu       sync.RWMutex
	vantages map[string]*vantage
	total    int
	// version counts changes (reports, expiries); snap is the Snapshot of the latest version;
	// updated is closed at the next accepted report.
	version uint64
	snap    *Snapshot
	updated chan struct{}
}

// NewStore returns an empty store; zero Options fields take their defaults.
func NewStore(o Options) *Store {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxVantages <= 0 {
		o.MaxVantages = DefaultMaxVantages
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{o: o, vantages: map[string]*vantage{}, updated: make(chan struct{})}
}

// TTL is how long a measurement counts.
func (s *Store) TTL() time.Duration { return s.o.TTL }

// vantageName is what a vantage may be called: a DNS label (with dots and underscores
// allowed inside), so it is safe in a URL path, a metric label and a page.
var vantageName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// ValidVantage checks a vantage name, saying what is allowed.
func ValidVantage(name string) error {
	if !vantageName.MatchString(name) {
		return fmt.Errorf("vantage %s is not a valid name: want 1 to 63 characters of lower-case letters, digits, '.', '_' and '-', "+
			"starting and ending with a letter or digit (e.g. outside-dc1)", dubbo.Display(bound(name, 80)))
	}
	return nil
}

// Errors of Put that are the store's bounds, not the report's fault.
var (
	ErrTooManyVantages = errors.New("too many vantages report to this auditor")
	ErrFull            = errors.New("the measurement store is full")
)

// Put stores a report's measurements for vantage, replacing that vantage's earlier ones for
// the same address:port. The measurements are validated first (the report is untrusted); an
// invalid one refuses the whole report, naming it. Free text is escaped and bounded.
func (s *Store) Put(vantageName string, measuredAt time.Time, ms []probe.Measurement) error {
	if err := ValidVantage(vantageName); err != nil {
		return err
	}
	clean := make(map[netip.AddrPort]probe.Measurement, len(ms))
	for i := range ms {
		m, ap, err := sanitize(ms[i])
		if err != nil {
			return fmt.Errorf("measurements[%d]: %w", i, err)
		}
		clean[ap] = m
	}
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	v := s.vantages[vantageName]
	if v == nil {
		if len(s.vantages) >= s.o.MaxVantages {
			return fmt.Errorf("%w: %d already (the bound); vantage %s is refused until one stops reporting for %s",
				ErrTooManyVantages, len(s.vantages), vantageName, s.o.TTL)
		}
		v = &vantage{byAddr: map[netip.AddrPort]*Entry{}}
	}
	added := 0
	for ap := range clean {
		if v.byAddr[ap] == nil {
			added++
		}
	}
	if s.total+added > s.o.MaxEntries {
		return fmt.Errorf("%w: %d measurements kept, %d new ones would pass the bound of %d", ErrFull, s.total, added, s.o.MaxEntries)
	}
	if measuredAt.IsZero() || measuredAt.After(now.Add(time.Hour)) {
		measuredAt = now // a probe without a clock, or with one far ahead, is shown as received
	}
	for ap, m := range clean {
		v.byAddr[ap] = &Entry{Measurement: m, Vantage: vantageName, MeasuredAt: measuredAt.UTC(), ReceivedAt: now.UTC()}
	}
	v.last = now.UTC()
	s.vantages[vantageName] = v
	s.total += added
	s.version++
	close(s.updated)
	s.updated = make(chan struct{})
	return nil
}

// sanitize checks one reported measurement and bounds its text.
func sanitize(m probe.Measurement) (probe.Measurement, netip.AddrPort, error) {
	ap, ok := m.Addr()
	if !ok {
		return m, ap, fmt.Errorf("address %s port %d is not an IP address and port 1..65535", dubbo.Display(bound(m.Address, 80)), m.Port)
	}
	if !m.Result.Valid() {
		return m, ap, fmt.Errorf("result %s is not one of %s", dubbo.Display(bound(string(m.Result), 40)), resultList())
	}
	if m.Millis < 0 || m.Millis > 3_600_000 || m.Millis != m.Millis {
		m.Millis = 0
	}
	if m.Registrations < 0 {
		m.Registrations = 0
	}
	out := probe.Measurement{Address: ap.Addr().String(), Port: int(ap.Port()), Result: m.Result, Millis: m.Millis,
		Registrations: m.Registrations, Protocol: text(m.Protocol, maxField),
		Detail: text(m.Detail, maxDetail)}
	for i, sv := range m.Services {
		if i == probe.MaxServices {
			break
		}
		out.Services = append(out.Services, text(sv, maxField))
	}
	return out, ap, nil
}

func resultList() string {
	s := make([]string, len(probe.Results))
	for i, r := range probe.Results {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// bound cuts s to at most n bytes on a rune boundary.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// text makes reported free text safe to keep and show: bounded, and escaped unless it is
// already printable (the probe escapes registry content itself; escaping twice would double
// every backslash).
func text(s string, n int) string {
	s = bound(s, n)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) && r != ' ' }) {
		return dubbo.Display(s)
	}
	return s
}

// expireLocked drops measurements older than the TTL, and vantages left with none.
func (s *Store) expireLocked(now time.Time) {
	cut := now.Add(-s.o.TTL)
	for name, v := range s.vantages {
		for ap, e := range v.byAddr {
			if !e.ReceivedAt.After(cut) {
				delete(v.byAddr, ap)
				s.total--
				s.version++
			}
		}
		if len(v.byAddr) == 0 {
			delete(s.vantages, name)
		}
	}
}

// live calls fn, under the read lock, with every vantage's unexpired entries.
func (s *Store) live(fn func(name string, last time.Time, entries map[netip.AddrPort]*Entry)) {
	cut := s.o.Now().Add(-s.o.TTL)
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.vantages))
	for n := range s.vantages {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := s.vantages[n]
		live := make(map[netip.AddrPort]*Entry, len(v.byAddr))
		for ap, e := range v.byAddr {
			if e.ReceivedAt.After(cut) {
				live[ap] = e
			}
		}
		if len(live) > 0 {
			fn(n, v.last, live)
		}
	}
}

// Vantages summarizes the vantages with unexpired measurements, by name.
func (s *Store) Vantages() []Vantage {
	out := []Vantage{}
	s.live(func(name string, last time.Time, es map[netip.AddrPort]*Entry) {
		v := Vantage{Name: name, LastReport: last, Measurements: len(es), Results: map[probe.Result]int{}}
		for _, e := range es {
			v.Results[e.Result]++
		}
		out = append(out, v)
	})
	return out
}

// Entries returns the unexpired measurements of one vantage (all vantages when name is
// empty), sorted by vantage, address and port.
func (s *Store) Entries(name string) []Entry {
	out := []Entry{}
	s.live(func(n string, _ time.Time, es map[netip.AddrPort]*Entry) {
		if name != "" && n != name {
			return
		}
		start := len(out)
		for _, e := range es {
			out = append(out, *e)
		}
		part := out[start:]
		slices.SortFunc(part, func(a, b Entry) int {
			ap, _ := a.Addr()
			bp, _ := b.Addr()
			return ap.Compare(bp)
		})
	})
	return out
}

// lookup is an index of the unexpired entries by address:port, for comparing with findings.
func (s *Store) lookup() (map[netip.AddrPort][]*Entry, []string) {
	idx := map[netip.AddrPort][]*Entry{}
	var names []string
	s.live(func(n string, _ time.Time, es map[netip.AddrPort]*Entry) {
		names = append(names, n)
		for ap, e := range es {
			idx[ap] = append(idx[ap], e)
		}
	})
	return idx, names
}
