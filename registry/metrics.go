package registry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the auditor's Prometheus metrics; the names are a DESIGN.md contract (the shipped
// alerts and dashboards use them). They live in their own registry, served at /metrics.
type Metrics struct {
	Registry     *prometheus.Registry
	providers    *prometheus.GaugeVec
	consumers    *prometheus.GaugeVec
	unparseable  prometheus.Gauge
	complete     prometheus.Gauge
	lastComplete prometheus.Gauge
	duration     prometheus.Histogram
	errors       *prometheus.CounterVec
	connected    prometheus.Gauge
}

// NewMetrics creates and registers the metrics (with Go and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		providers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dubboreach_registry_providers",
			Help: "Provider registrations (interface- and application-level) by verdict and reason."}, []string{"verdict", "reason"}),
		consumers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dubboreach_registry_consumers",
			Help: "Consumer registrations by verdict and reason."}, []string{"verdict", "reason"}),
		unparseable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dubboreach_registry_unparseable",
			Help: "Registration znodes that could not be parsed."}),
		complete: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dubboreach_registry_scan_complete",
			Help: "1 when the current view of the registry is complete (every path read, session up), else 0."}),
		lastComplete: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dubboreach_registry_last_complete_scan_timestamp_seconds",
			Help: "Unix time of the last full scan that read every path."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dubboreach_registry_scan_duration_seconds",
			Help: "Duration of full scans of the registry.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dubboreach_registry_scan_errors_total",
			Help: "Paths that could not be read, by kind (connection, permission, other)."}, []string{"kind"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dubboreach_zookeeper_connected",
			Help: "1 while a ZooKeeper session is up, else 0."}),
	}
	m.Registry.MustRegister(m.providers, m.consumers, m.unparseable, m.complete, m.lastComplete, m.duration, m.errors, m.connected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, k := range []string{"connection", "permission", "other"} {
		m.errors.WithLabelValues(k) // present at 0, so that rate() works from the start
	}
	return m
}

// Observe publishes a result's counts.
func (m *Metrics) Observe(r *Result) {
	set := func(g *prometheus.GaugeVec, fs []Finding) {
		counts := map[[2]string]int{}
		for i := range fs {
			counts[[2]string{string(fs[i].Verdict), string(fs[i].Reason)}]++
		}
		g.Reset()
		for k, n := range counts {
			g.WithLabelValues(k[0], k[1]).Set(float64(n))
		}
	}
	set(m.providers, r.Providers)
	set(m.consumers, r.Consumers)
	m.unparseable.Set(float64(len(r.Unparseable)))
	m.complete.Set(b2f(r.Complete))
	if !r.LastCompleteScan.IsZero() {
		m.lastComplete.Set(float64(r.LastCompleteScan.UnixMilli()) / 1000)
	}
}

// FullScan implements zk.Observer.
func (m *Metrics) FullScan(d time.Duration, _ bool) { m.duration.Observe(d.Seconds()) }

// ReadError implements zk.Observer.
func (m *Metrics) ReadError(kind string) { m.errors.WithLabelValues(kind).Inc() }

// Connected implements zk.Observer.
func (m *Metrics) Connected(up bool) { m.connected.Set(b2f(up)) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
