package webhook

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names: part of the contract (DESIGN.md), used by the shipped alerts and dashboards.
const (
	MetricInjections = "dubboreach_webhook_injections_total"
	MetricDuration   = "dubboreach_webhook_admission_duration_seconds"
	// MetricNamespaceDisagreements counts namespaces the cache had missing or unlabelled
	// while the API server had them labelled for injection (the pod was decided from the latter).
	MetricNamespaceDisagreements = "dubboreach_webhook_namespace_cache_disagreements_total"
	// MetricRejected counts requests answered 429 because --max-in-flight were in flight.
	MetricRejected = "dubboreach_webhook_rejected_total"
)

// Metrics are the webhook's own metrics; controller-runtime adds its generic
// controller_runtime_webhook_* ones around the handler.
type Metrics struct {
	injections      *prometheus.CounterVec
	duration        prometheus.Histogram
	nsDisagreements prometheus.Counter
	rejected        prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (controller-runtime's
// metrics.Registry in the binary; a fresh registry in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		injections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricInjections,
			Help: "Pod admissions by address mode (pod, host, none) and result (injected, skipped, error).",
		}, []string{"mode", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: MetricDuration,
			Help: "Time to answer one AdmissionReview, from reading the request to writing the answer.",
			// Answers take well under a millisecond; the API server gives up at timeoutSeconds (3 s).
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3},
		}),
		nsDisagreements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricNamespaceDisagreements,
			Help: "Namespaces the webhook's cache had missing or unlabelled while the API server had them labelled for injection.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricRejected,
			Help: "Admission requests answered 429 because --max-in-flight requests were already being answered.",
		}),
	}
	var err error
	if m.injections, err = register(reg, m.injections); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.nsDisagreements, err = register(reg, m.nsDisagreements); err != nil {
		return nil, err
	}
	if m.rejected, err = register(reg, m.rejected); err != nil {
		return nil, err
	}
	// Create the series an alert looks at, so they read 0 instead of being absent.
	for _, l := range [][2]string{
		{string(ModePod), string(OutcomeInjected)}, {string(ModeHost), string(OutcomeInjected)},
		{string(ModePod), string(OutcomeSkipped)}, {string(ModeHost), string(OutcomeSkipped)},
		{string(ModeNone), string(OutcomeSkipped)}, {string(ModeNone), string(OutcomeError)},
	} {
		m.injections.WithLabelValues(l[0], l[1])
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name: a
// process that builds the webhook twice (tests) shares one set of series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering webhook metrics: %w", err)
	}
	return c, nil
}

// observe records one answer. Dry runs (kubectl --dry-run=server, admission previews) are
// timed but not counted: nothing was created, and counting them would inflate injections and
// errors on dashboards and alerts.
func (m *Metrics) observe(mode Mode, out Outcome, dryRun bool, seconds float64) {
	if m == nil {
		return
	}
	if !dryRun {
		m.injections.WithLabelValues(string(mode), string(out)).Inc()
	}
	m.duration.Observe(seconds)
}

// NamespaceDisagreed counts a namespace the cache called unlabelled that the API server
// called labelled (see RereadNamespaces).
func (m *Metrics) NamespaceDisagreed() {
	if m != nil {
		m.nsDisagreements.Inc()
	}
}

// Rejected counts a request refused before it was read because MaxInFlight requests were
// already being answered.
func (m *Metrics) Rejected() {
	if m != nil {
		m.rejected.Inc()
	}
}
