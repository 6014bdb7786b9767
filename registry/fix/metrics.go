package fix

import "github.com/prometheus/client_golang/prometheus"

// Metric names (contract: DESIGN.md "Metrics"; alerts and dashboards use them).
const (
	MetricFixes       = "dubboreach_fixes_total"
	MetricCapExceeded = "dubboreach_fix_cap_exceeded"
)

// Metrics are the fix metrics; the caller registers Collectors().
type Metrics struct {
	// Fixes counts results by mode and result.
	Fixes *prometheus.CounterVec
	// CapExceeded is 1 while the last cycle's plan was above the per-cycle cap (nothing was
	// changed), else 0: alert on it.
	CapExceeded prometheus.Gauge
}

// NewMetrics creates (does not register) the fix metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		Fixes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFixes,
			Help: "Fix changes by mode (disable, undo-disable, prune, evict) and result (applied, dry-run, conflict, refused, deferred, skipped, failed).",
		}, []string{"mode", "result"}),
		CapExceeded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricCapExceeded,
			Help: "1 when the last fix cycle planned more changes than the per-cycle cap and changed nothing.",
		}),
	}
}

// Collectors lists the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Fixes, m.CapExceeded}
}

// Observe records one result; use it as Executor.OnResult.
func (m *Metrics) Observe(r Result) {
	m.Fixes.WithLabelValues(r.Change.Mode, r.Result).Inc()
}

// Cycle records whether a cycle hit the cap.
func (m *Metrics) Cycle(r Report) {
	if r.CapExceeded {
		m.CapExceeded.Set(1)
	} else {
		m.CapExceeded.Set(0)
	}
}
