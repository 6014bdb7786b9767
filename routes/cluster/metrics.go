package cluster

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dubboreach/dubboreach/routes"
)

// Collector exports the state of the route table at scrape time, so the numbers are never
// older than the table itself. Metric names are part of the contract (README, alerts).
type Collector struct {
	store    *routes.Store
	routes   *prometheus.Desc
	nodes    *prometheus.Desc
	problems *prometheus.Desc
}

// NewCollector returns the routes collector for a store; register it once per process.
func NewCollector(store *routes.Store) *Collector {
	return &Collector{
		store: store,
		routes: prometheus.NewDesc("dubboreach_pod_routes",
			"Desired pod routes by state: published (the fabric carries them) or missing.", []string{"state"}, nil),
		nodes: prometheus.NewDesc("dubboreach_pod_route_nodes",
			"Nodes with pod routes, by state: published when every one of the node's pod routes is published, else missing.", []string{"state"}, nil),
		problems: prometheus.NewDesc("dubboreach_route_problems",
			"Problems found while deriving pod routes (overlaps, nodes without pod CIDR or address, blocks without affinity).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.routes
	ch <- c.nodes
	ch <- c.problems
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	t := c.store.Table()
	var published, missing int
	for _, r := range t.Routes {
		if r.Published {
			published++
		} else {
			missing++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(published), "published")
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(missing), "missing")
	pubNodes, total := t.Coverage()
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(pubNodes), "published")
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(total-pubNodes), "missing")
	ch <- prometheus.MustNewConstMetric(c.problems, prometheus.GaugeValue, float64(len(t.Problems)))
}
