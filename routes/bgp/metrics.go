package bgp

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dubboreach/dubboreach/routes"
)

// Metrics are the dubboreach_bgp_* metrics of `dubboreach publish`, read from the same status
// the speaker writes for the other components: what the metrics say is what "published" means.
// Session and route series exist only on the replica that speaks; the leader gauge on every one.
type Metrics struct {
	mu          sync.Mutex
	leader      bool
	status      *Status
	unannounced int

	leaderDesc, establishedDesc, flapsDesc, announcedDesc, unannouncedDesc *prometheus.Desc
}

// NewMetrics returns the collector; register it once per process.
func NewMetrics() *Metrics {
	return &Metrics{
		leaderDesc: prometheus.NewDesc("dubboreach_bgp_speaker_leader",
			"1 while this publish replica is the elected speaker, 0 on a standby.", nil, nil),
		establishedDesc: prometheus.NewDesc("dubboreach_bgp_session_established",
			"1 while the BGP session to the peer is Established (speaker only).", []string{"peer"}, nil),
		flapsDesc: prometheus.NewDesc("dubboreach_bgp_session_flaps_total",
			"Times the BGP session to the peer went down after being Established, since this replica began to speak.", []string{"peer"}, nil),
		announcedDesc: prometheus.NewDesc("dubboreach_bgp_routes_announced",
			"Pod routes in the peer's Adj-RIB-Out: sent to it (speaker only).", []string{"peer"}, nil),
		unannouncedDesc: prometheus.NewDesc("dubboreach_bgp_routes_unannounced",
			"Pod routes the speaker should announce (inside within, with a next hop) that do not count as published: not sent to an Established peer, or with announcedTo: all not to every peer (speaker only).", nil, nil),
	}
}

// setLeader records whether this replica speaks; a replica that stops speaking drops its
// session and route series.
func (m *Metrics) setLeader(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leader = on
	if !on {
		m.status, m.unannounced = nil, 0
	}
}

// observe records a status and counts the eligible routes of rs it does not publish.
func (m *Metrics) observe(st *Status, rs []routes.Route, eligible func(routes.Route) bool) {
	n := 0
	for _, r := range rs {
		if eligible(r) && !st.Published(r) {
			n++
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status, m.unannounced = st, n
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.leaderDesc, m.establishedDesc, m.flapsDesc, m.announcedDesc, m.unannouncedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	leader := 0.0
	if m.leader {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(m.leaderDesc, prometheus.GaugeValue, leader)
	if !m.leader || m.status == nil {
		return
	}
	for _, p := range m.status.Peers {
		up := 0.0
		if p.Established() {
			up = 1
		}
		peer := p.Address.String()
		ch <- prometheus.MustNewConstMetric(m.establishedDesc, prometheus.GaugeValue, up, peer)
		ch <- prometheus.MustNewConstMetric(m.flapsDesc, prometheus.CounterValue, float64(p.Flaps), peer)
		ch <- prometheus.MustNewConstMetric(m.announcedDesc, prometheus.GaugeValue, float64(p.Announced), peer)
	}
	ch <- prometheus.MustNewConstMetric(m.unannouncedDesc, prometheus.GaugeValue, float64(m.unannounced))
}
