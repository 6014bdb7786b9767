package dashboard

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"net/http"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/routes"
)

// Paging bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	maxPage      = 1 << 20
	maxQuery     = 256
)

var verdicts = []string{string(routes.Unreachable), string(routes.Unknown), string(routes.Reachable)}

// knownReasons is the fixed set of reasons (DESIGN.md), plus the registry's own.
var knownReasons = []string{
	string(routes.ReasonExternalNetwork), string(routes.ReasonPublishedPodRoute), string(routes.ReasonUnpublishedPodRoute),
	string(routes.ReasonNoNextHop), string(routes.ReasonServiceNetwork), string(routes.ReasonNeverReachable),
	string(routes.ReasonLoopback), string(routes.ReasonLinkLocal), string(routes.ReasonUnspecified),
	string(routes.ReasonMulticast), string(routes.ReasonNoMatchingNetwork), string(registry.ReasonHostname),
}

// params checks that a request names only known parameters, each once.
func params(r *http.Request, allowed ...string) (url.Values, *apiError) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &apiError{Error: "the query string is not valid: " + err.Error()}
	}
	for k, vals := range v {
		if !slices.Contains(allowed, k) {
			return nil, &apiError{Error: fmt.Sprintf("unknown parameter %q", k), Parameter: k, Allowed: allowed}
		}
		if len(vals) > 1 {
			return nil, &apiError{Error: fmt.Sprintf("parameter %q is given %d times; give it once", k, len(vals)), Parameter: k}
		}
	}
	return v, nil
}

func oneOf(v url.Values, name string, allowed []string, def string) (string, *apiError) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	if !slices.Contains(allowed, s) {
		return "", &apiError{Error: fmt.Sprintf("%s=%q is not allowed", name, s), Parameter: name, Allowed: allowed}
	}
	return s, nil
}

func intParam(v url.Values, name string, def, lo, hi int) (int, *apiError) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, &apiError{Error: fmt.Sprintf("%s=%q must be a whole number from %d to %d", name, s, lo, hi), Parameter: name,
			Allowed: []string{fmt.Sprintf("%d..%d", lo, hi)}}
	}
	return n, nil
}

var listParams = []string{"verdict", "reason", "service", "application", "namespace", "node", "protocol", "kind", "q", "flagged", "contradicted", "sort", "dir", "page", "limit"}

func parseQuery(r *http.Request, consumers bool) (*query, *apiError) {
	v, e := params(r, listParams...)
	if e != nil {
		return nil, e
	}
	qr := &query{consumers: consumers, verdict: -1}
	vd, e := oneOf(v, "verdict", verdicts, "")
	if e != nil {
		return nil, e
	}
	if vd != "" {
		qr.verdict = int(verdictRank(routes.Status(vd)))
	}
	if _, e := oneOf(v, "reason", knownReasons, ""); e != nil {
		return nil, e
	}
	if _, e := oneOf(v, "kind", []string{registry.KindInterface, registry.KindApplication}, ""); e != nil {
		return nil, e
	}
	for f := range nFacets {
		if s, ok := v[facetNames[f]]; ok {
			if len(s[0]) > maxQuery {
				return nil, &apiError{Error: fmt.Sprintf("%s is longer than %d bytes", facetNames[f], maxQuery), Parameter: facetNames[f]}
			}
			// Present but empty selects entries without the field (e.g. namespace= : no pod known).
			qr.facet[f], qr.has[f] = s[0], true
		}
	}
	qr.q = strings.TrimSpace(v.Get("q"))
	if len(qr.q) > maxQuery {
		return nil, &apiError{Error: fmt.Sprintf("q is longer than %d bytes", maxQuery), Parameter: "q"}
	}
	qr.q = strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		return r
	}, qr.q)
	fl, e := oneOf(v, "flagged", []string{"true", "false"}, "false")
	if e != nil {
		return nil, e
	}
	qr.flagged = fl == "true"
	ct, e := oneOf(v, "contradicted", []string{"true", "false"}, "false")
	if e != nil {
		return nil, e
	}
	qr.contradicted = ct == "true"
	if qr.sort, e = oneOf(v, "sort", sortFields, "verdict"); e != nil {
		return nil, e
	}
	dir, e := oneOf(v, "dir", []string{"asc", "desc"}, "asc")
	if e != nil {
		return nil, e
	}
	qr.desc = dir == "desc"
	if qr.page, e = intParam(v, "page", 1, 1, maxPage); e != nil {
		return nil, e
	}
	if qr.limit, e = intParam(v, "limit", DefaultLimit, 1, MaxLimit); e != nil {
		return nil, e
	}
	return qr, nil
}

// Row is one registration of the providers and consumers tables.
type Row struct {
	Service     string        `json:"service"`
	Application string        `json:"application,omitempty"`
	Protocol    string        `json:"protocol,omitempty"`
	Address     string        `json:"address"`
	Port        int           `json:"port,omitempty"`
	HostPort    string        `json:"hostPort"`
	Kind        string        `json:"kind"`
	Side        string        `json:"side"`
	Znode       string        `json:"znode"`
	Verdict     routes.Status `json:"verdict"`
	Reason      routes.Reason `json:"reason"`
	Node        string        `json:"node,omitempty"`
	Pod         string        `json:"pod,omitempty"`
	Namespace   string        `json:"namespace,omitempty"`
	Flagged     bool          `json:"flagged"`
	Stale       bool          `json:"stale,omitempty"`
	NoListener  bool          `json:"noListener,omitempty"`
	Persistent  bool          `json:"persistent,omitempty"`
	DubboGo     bool          `json:"dubboGo,omitempty"`
	// MissingRoute is the pod route the fabric lacks, if that is the problem.
	MissingRoute *RouteJSON `json:"missingRoute,omitempty"`
	// Measured is what probes measured at this provider's address:port, one entry per vantage,
	// those contradicting the verdict first, then the worst result (a table row carries at most
	// 3, MeasuredMore counts the rest; the detail carries all). Absent without measurements.
	Measured     []Measured `json:"measured,omitempty"`
	MeasuredMore int        `json:"measuredMore,omitempty"`
	// Contradicted: a vantage's measurement contradicts the verdict (docs/probe.md).
	Contradicted bool `json:"contradicted,omitempty"`
}

// RouteJSON is a pod route.
type RouteJSON struct {
	Prefix    string `json:"prefix"`
	NextHop   string `json:"nextHop,omitempty"`
	Node      string `json:"node"`
	Source    string `json:"source,omitempty"`
	Published bool   `json:"published"`
}

func routeJSON(r *routes.Route) *RouteJSON {
	if r == nil {
		return nil
	}
	j := &RouteJSON{Prefix: r.Prefix.String(), Node: r.Node, Source: string(r.Source), Published: r.Published}
	if r.NextHop.IsValid() {
		j.NextHop = r.NextHop.String()
	}
	return j
}

func toRow(f *registry.Finding) Row {
	return Row{Service: f.Service, Application: f.Application, Protocol: f.Protocol, Address: f.Address, Port: f.Port,
		HostPort: hostPort(f.Address, f.Port), Kind: f.Kind, Side: side(f), Znode: f.Znode, Verdict: f.Verdict, Reason: f.Reason,
		Node: f.Node, Pod: f.Pod, Namespace: f.PodNamespace, Flagged: f.Flagged(), Stale: f.Stale, NoListener: f.NoListener,
		Persistent: f.Persistent, DubboGo: f.DubboGo, MissingRoute: routeJSON(f.MissingRoute)}
}

// Page is the answer of /api/v1/providers and /api/v1/consumers.
type Page struct {
	Generation uint64    `json:"generation"`
	JudgedAt   time.Time `json:"judgedAt"`
	Total      int       `json:"total"`
	Page       int       `json:"page"`
	Pages      int       `json:"pages"`
	Limit      int       `json:"limit"`
	Sort       string    `json:"sort"`
	Dir        string    `json:"dir"`
	Items      []Row     `json:"items"`
	ids        []int32
}

func (d *Dashboard) list(consumers bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		qr, e := parseQuery(r, consumers)
		if e != nil {
			writeError(w, http.StatusBadRequest, *e)
			return
		}
		x := d.latest(w)
		if x == nil {
			return
		}
		sn := d.snapshot()
		if qr.contradicted && !consumers {
			if m := d.marks(x); m != nil {
				qr.marks = m.byRow
			}
		}
		p := x.page(qr)
		if !consumers {
			s := x.side(false)
			for k := range p.Items {
				d.withMeasured(sn, &p.Items[k], &s.findings[p.ids[k]], maxMeasuredRow)
			}
		}
		writeJSON(w, http.StatusOK, p)
	}
}

func (x *index) page(qr *query) Page {
	s := x.side(qr.consumers)
	ids, total := s.run(qr)
	p := Page{Generation: x.gen, JudgedAt: x.res.JudgedAt, Total: total, Page: qr.page, Limit: qr.limit, Sort: qr.sort,
		Dir: "asc", Items: make([]Row, len(ids)), Pages: (total + qr.limit - 1) / qr.limit}
	if qr.desc {
		p.Dir = "desc"
	}
	for k, i := range ids {
		p.Items[k] = toRow(&s.findings[i])
	}
	p.ids = ids
	return p
}

// Count is one value of a facet and how many entries have it.
type Count struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// maxFacet bounds the values listed per facet (the most frequent first).
const maxFacet = 1000

func (s *sideIndex) counts(f int) (out []Count, truncated bool) {
	d := s.dicts[f]
	out = make([]Count, len(d.values))
	for i, v := range d.values {
		out[i] = Count{v, d.counts[i]}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	if len(out) > maxFacet {
		return out[:maxFacet], true
	}
	return out, false
}

// Facets lists the values of every filter of one side, with counts.
type Facets struct {
	Generation uint64             `json:"generation"`
	Verdict    []Count            `json:"verdict"`
	Values     map[string][]Count `json:"values"`
	// Truncated names the facets listed only in part (their most frequent values).
	Truncated []string `json:"truncated,omitempty"`
	// Contradicted counts the providers whose verdict a probe's measurement contradicts
	// (side=providers, present only while there are live measurements).
	Contradicted *int `json:"contradicted,omitempty"`
}

func (x *index) facets(consumers bool) Facets {
	s := x.side(consumers)
	fc := Facets{Generation: x.gen, Values: map[string][]Count{}, Truncated: []string{}}
	for i, v := range verdicts {
		fc.Verdict = append(fc.Verdict, Count{v, s.byV[i]})
	}
	for f := range nFacets {
		c, tr := s.counts(f)
		fc.Values[facetNames[f]] = c
		if tr {
			fc.Truncated = append(fc.Truncated, facetNames[f])
		}
	}
	return fc
}

func (d *Dashboard) facets(w http.ResponseWriter, r *http.Request) {
	v, e := params(r, "side")
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	sd, e := oneOf(v, "side", []string{"providers", "consumers"}, "providers")
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	x := d.latest(w)
	if x == nil {
		return
	}
	fc := x.facets(sd == "consumers")
	if m := d.marks(x); m != nil && sd == "providers" {
		fc.Contradicted = &m.contradicted
	}
	writeJSON(w, http.StatusOK, fc)
}

// SideSummary counts one side of the registry.
type SideSummary struct {
	Total      int            `json:"total"`
	ByVerdict  map[string]int `json:"byVerdict"`
	ByReason   []ReasonCount  `json:"byReason"`
	Flagged    int            `json:"flagged"`
	Stale      int            `json:"stale"`
	NoListener int            `json:"noListener"`
}

// ReasonCount is how many entries got one verdict for one reason.
type ReasonCount struct {
	Verdict routes.Status `json:"verdict"`
	Reason  routes.Reason `json:"reason"`
	Count   int           `json:"count"`
}

// summary is computed once per result.
func (s *sideIndex) summary() SideSummary {
	s.summaryOnce.Do(func() { s.sum = s.computeSummary() })
	return s.sum
}

func (s *sideIndex) computeSummary() SideSummary {
	out := SideSummary{Total: len(s.rows), ByVerdict: map[string]int{}, ByReason: []ReasonCount{}, Flagged: s.flagged,
		Stale: s.stale, NoListener: s.noListen}
	for i, v := range verdicts {
		out.ByVerdict[v] = s.byV[i]
	}
	type key struct {
		v uint8
		r int32
	}
	n := map[key]int{}
	for i := range s.rows {
		n[key{s.rows[i].verdict, s.rows[i].facet[fReason]}]++
	}
	for k, c := range n {
		out.ByReason = append(out.ByReason, ReasonCount{Verdict: routes.Status(verdicts[k.v]), Reason: routes.Reason(s.dicts[fReason].values[k.r]), Count: c})
	}
	sort.Slice(out.ByReason, func(i, j int) bool {
		a, b := out.ByReason[i], out.ByReason[j]
		if a.Verdict != b.Verdict {
			return verdictRank(a.Verdict) < verdictRank(b.Verdict)
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Reason < b.Reason
	})
	return out
}

// MissingPath is a path the scan could not read.
type MissingPath struct {
	Path   string `json:"path"`
	Kind   string `json:"kind,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Overview is the answer of /api/v1/overview.
type Overview struct {
	Generation uint64 `json:"generation"`
	// Freshness.
	JudgedAt         time.Time     `json:"judgedAt"`
	Complete         bool          `json:"complete"`
	Connected        bool          `json:"connected"`
	Scanned          bool          `json:"scanned"`
	LastFullScan     *time.Time    `json:"lastFullScan"`
	LastCompleteScan *time.Time    `json:"lastCompleteScan"`
	Missing          []MissingPath `json:"missing"`
	PodsKnown        bool          `json:"podsKnown"`
	// Summary is the audit's own count (DESIGN.md's contract).
	Summary     registry.Summary       `json:"summary"`
	Providers   SideSummary            `json:"providers"`
	Consumers   SideSummary            `json:"consumers"`
	Unparseable []registry.Unparseable `json:"unparseable"`
	// UnparseableTotal counts every unparseable entry; the list holds the first 100.
	UnparseableTotal int `json:"unparseableTotal"`
	// Changes are the latest differences between successive results, newest first.
	Changes        []Change `json:"changes"`
	ChangesDropped int      `json:"changesDropped"`
	// Routes counts pod routes (when the dashboard has the route store).
	Routes *RouteCounts `json:"routes,omitempty"`
	// Measurements sums up what probes measured (present only while there are live ones).
	Measurements *MeasuredSummary `json:"measurements,omitempty"`
}

// RouteCounts sums up the route table.
type RouteCounts struct {
	Nodes     int `json:"nodes"`
	Desired   int `json:"desired"`
	Published int `json:"published"`
	Missing   int `json:"missing"`
	Problems  int `json:"problems"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	v, e := params(r, "changes")
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	nc, e := intParam(v, "changes", 50, 0, d.opts.Changes)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	x := d.latest(w)
	if x == nil {
		return
	}
	res := x.res
	o := Overview{Generation: x.gen, JudgedAt: res.JudgedAt, Complete: res.Complete, Connected: res.Connected, Scanned: res.Scanned,
		LastFullScan: timePtr(res.LastFullScan), LastCompleteScan: timePtr(res.LastCompleteScan), Missing: []MissingPath{},
		PodsKnown: res.PodsKnown, Summary: res.Summary, Providers: x.providers.summary(), Consumers: x.consumers.summary(),
		UnparseableTotal: len(res.Unparseable)}
	for i, p := range res.Missing {
		m := MissingPath{Path: p}
		if i < len(res.MissingDetail) {
			m.Kind, m.Reason = res.MissingDetail[i].Kind, res.MissingDetail[i].Reason
		}
		o.Missing = append(o.Missing, m)
	}
	o.Unparseable = res.Unparseable[:min(100, len(res.Unparseable))]
	if o.Unparseable == nil {
		o.Unparseable = []registry.Unparseable{}
	}
	d.mu.Lock()
	o.Changes, o.ChangesDropped = d.changes.newest(nc), d.changes.dropped
	d.mu.Unlock()
	if d.opts.Store != nil {
		t := d.opts.Store.Table()
		rc := &RouteCounts{Nodes: len(t.Nodes), Desired: len(t.Routes), Problems: len(t.Problems)}
		for _, rt := range t.Routes {
			if rt.Published {
				rc.Published++
			} else {
				rc.Missing++
			}
		}
		o.Routes = rc
	}
	if m := d.marks(x); m != nil {
		o.Measurements = &MeasuredSummary{Vantages: m.snap.Vantages(), Measured: m.measured, Contradicted: m.contradicted}
	}
	writeJSON(w, http.StatusOK, o)
}
