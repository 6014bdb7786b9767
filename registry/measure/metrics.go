package measure

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/probe"
)

// Report outcomes, the values of dubboreach_probe_reports_total's label.
var outcomes = []string{"accepted", "invalid", "unauthorized", "refused"}

// Metrics exports the dubboreach_probe_* metrics (a DESIGN.md contract, README). The gauges
// are computed from the store at each scrape, so a vantage that stops reporting disappears
// with its measurements (after the TTL) and the label set stays bounded by MaxVantages.
type Metrics struct {
	store          *Store
	latest         func() *registry.Result
	reports        *prometheus.CounterVec
	measurements   *prometheus.Desc
	contradictions *prometheus.Desc
}

// NewMetrics returns the collector; register it in the auditor's registry.
func NewMetrics(s *Store, latest func() *registry.Result) *Metrics {
	m := &Metrics{store: s, latest: latest,
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dubboreach_probe_reports_total",
			Help: "Probe reports received, by outcome (accepted, invalid, unauthorized, refused)."}, []string{"outcome"}),
		measurements: prometheus.NewDesc("dubboreach_probe_measurements",
			"Live (unexpired) probe measurements of provider addresses, by vantage and result.", []string{"vantage", "result"}, nil),
		contradictions: prometheus.NewDesc("dubboreach_probe_contradictions",
			"Provider addresses whose verdict a vantage's live measurement contradicts (reachable but timeout/unreachable, or unreachable but connected).",
			[]string{"vantage"}, nil),
	}
	if m.latest == nil {
		m.latest = func() *registry.Result { return nil }
	}
	for _, o := range outcomes {
		m.reports.WithLabelValues(o) // present at 0, so that rate() works from the start
	}
	return m
}

func (m *Metrics) report(outcome string) {
	if m != nil {
		m.reports.WithLabelValues(outcome).Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.reports.Describe(ch)
	ch <- m.measurements
	ch <- m.contradictions
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.reports.Collect(ch)
	for _, v := range m.store.Vantages() {
		for _, r := range probe.Results {
			ch <- prometheus.MustNewConstMetric(m.measurements, prometheus.GaugeValue, float64(v.Results[r]), v.Name, string(r))
		}
	}
	for name, n := range m.store.Counts(m.latest()) {
		ch <- prometheus.MustNewConstMetric(m.contradictions, prometheus.GaugeValue, float64(n), name)
	}
}
