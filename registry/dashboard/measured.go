package dashboard

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
)

// Measurements hands the dashboard what `dubboreach probe` measured from other places
// (vantages); registry/measure.Store implements it. The dashboard shows the latest measurement
// per vantage beside each provider's verdict and marks those that contradict it.
type Measurements interface {
	// Snapshot returns the live measurements (the same pointer while they do not change).
	Snapshot() *measure.Snapshot
	// Updated returns a channel closed at the next accepted report.
	Updated() <-chan struct{}
}

// Measured is one vantage's latest measurement of a provider's address:port, beside the
// verdict (docs/dashboard.md, docs/probe.md). Vantage names are validated by the auditor;
// Detail is reported text, escaped and bounded.
type Measured struct {
	Vantage  string       `json:"vantage"`
	Result   probe.Result `json:"result"`
	Protocol string       `json:"protocol,omitempty"`
	Detail   string       `json:"detail,omitempty"`
	Millis   float64      `json:"ms"`
	// MeasuredAt is the probe's clock; ReceivedAt and AgeSeconds (since receipt) the auditor's.
	MeasuredAt time.Time `json:"measuredAt"`
	ReceivedAt time.Time `json:"receivedAt"`
	AgeSeconds int64     `json:"ageSeconds"`
	// Contradicts: the measurement disagrees with the verdict; Hint names the fabric fact
	// that is probably wrong.
	Contradicts bool   `json:"contradicts,omitempty"`
	Hint        string `json:"hint,omitempty"`
}

// MeasuredSummary is the overview's account of the measurements (absent without live ones).
type MeasuredSummary struct {
	Vantages []measure.Vantage `json:"vantages"`
	// Measured counts providers whose address:port some vantage measured; Contradicted those
	// whose verdict a measurement contradicts.
	Measured     int `json:"measured"`
	Contradicted int `json:"contradicted"`
}

// maxMeasuredRow bounds the measurements a table row carries (the worst first); the detail
// view has them all (at most the store's vantage bound).
const maxMeasuredRow = 3

// Marks per provider row of an index.
const (
	markNone uint8 = iota
	markMeasured
	markContradicted
)

// marks is which providers of one index are measured and contradicted, for one snapshot.
type marks struct {
	x            *index
	snap         *measure.Snapshot
	byRow        []uint8
	measured     int
	contradicted int
}

func findingAddrPort(f *registry.Finding) (netip.AddrPort, bool) {
	if f.Port <= 0 || f.Port > 65535 {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(strings.Trim(f.Address, "[]"))
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(f.Port)), true
}

// snapshot is the live measurements, nil without any.
func (d *Dashboard) snapshot() *measure.Snapshot {
	if d.opts.Measurements == nil {
		return nil
	}
	sn := d.opts.Measurements.Snapshot()
	if sn == nil || sn.Len() == 0 {
		return nil
	}
	return sn
}

// marks returns the providers' marks of x against the live measurements (nil without any),
// computed once per index and snapshot.
func (d *Dashboard) marks(x *index) *marks {
	sn := d.snapshot()
	if sn == nil {
		return nil
	}
	d.mu.Lock()
	m := d.mk
	d.mu.Unlock()
	if m != nil && m.x == x && m.snap == sn {
		return m
	}
	m = &marks{x: x, snap: sn, byRow: make([]uint8, len(x.res.Providers))}
	for i := range x.res.Providers {
		f := &x.res.Providers[i]
		ap, ok := findingAddrPort(f)
		if !ok {
			continue
		}
		es := sn.For(ap)
		if len(es) == 0 {
			continue
		}
		m.byRow[i] = markMeasured
		m.measured++
		for k := range es {
			if measure.Contradicts(f.Verdict, es[k].Result) {
				m.byRow[i] = markContradicted
				m.contradicted++
				break
			}
		}
	}
	d.mu.Lock()
	d.mk = m
	d.mu.Unlock()
	return m
}

// measured is what the vantages measured at f's address:port, worst first: at most limit
// (0: all), and how many more there are. Consumers are not probed.
func (d *Dashboard) measured(sn *measure.Snapshot, f *registry.Finding, limit int) (out []Measured, more int, contradicted bool) {
	if sn == nil || side(f) != "provider" {
		return nil, 0, false
	}
	ap, ok := findingAddrPort(f)
	if !ok {
		return nil, 0, false
	}
	es := slices.Clone(sn.For(ap))
	if len(es) == 0 {
		return nil, 0, false
	}
	measure.SortWorstFirst(es, f.Verdict)
	now := d.opts.Now()
	for k := range es {
		e := &es[k]
		c := measure.Check(f, e)
		if c != nil {
			contradicted = true
		}
		if limit > 0 && len(out) == limit {
			more++
			continue
		}
		m := Measured{Vantage: e.Vantage, Result: e.Result, Protocol: e.Protocol, Detail: e.Detail, Millis: e.Millis,
			MeasuredAt: e.MeasuredAt, ReceivedAt: e.ReceivedAt, AgeSeconds: max(0, int64(now.Sub(e.ReceivedAt)/time.Second))}
		if c != nil {
			m.Contradicts, m.Hint = true, c.Hint
		}
		out = append(out, m)
	}
	return out, more, contradicted
}

// withMeasured adds the measurements to a row.
func (d *Dashboard) withMeasured(sn *measure.Snapshot, r *Row, f *registry.Finding, limit int) {
	r.Measured, r.MeasuredMore, r.Contradicted = d.measured(sn, f, limit)
}
