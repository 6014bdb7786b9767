package monitoring

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// externalMetrics are the metrics of others that the rules and the dashboard may use: Prometheus'
// own and kube-apiserver's.
var externalMetrics = map[string]bool{
	"up": true,
	"apiserver_admission_webhook_fail_open_count": true,
	"apiserver_admission_webhook_rejection_count": true,
	"apiserver_admission_webhook_request_total":   true,
}

var (
	promqlString   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVar     = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
	promqlNumber   = regexp.MustCompile(`\b[0-9][0-9A-Za-z.]*(?:[eE][+-][0-9]+)?`)
	promqlIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression (possibly with Grafana variables)
// selects: identifiers left once strings, label matchers, ranges, grouping label lists, Grafana
// variables and numbers are gone, that are neither keywords nor functions (followed by "(").
func metricNames(expr string) []string {
	s := promqlString.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRange.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	s = grafanaVar.ReplaceAllString(s, " ")
	s = promqlNumber.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	var names []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if promqlKeywords[strings.ToLower(id)] || strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\r\n"), "(") {
			continue
		}
		if !seen[id] {
			seen[id] = true
			names = append(names, id)
		}
	}
	sort.Strings(names)
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`up{job="dubboreach-audit"} == 0 or absent(up{job="dubboreach-audit"})`, []string{"up"}},
		{`histogram_quantile(0.99, sum by (le) (rate(foo_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))`, []string{"foo_seconds_bucket"}},
		{`sum without (instance, pod) (a_total{x="by (y) rate(z)"}) / on (job) group_left (pod) b`, []string{"a_total", "b"}},
		{`time() - max(last_ts > 0) > 1800`, []string{"last_ts"}},
		{`x unless x offset 10m and on (job, instance) (up offset 10m)`, []string{"up", "x"}},
		{"sum(rate(c_total{le='1e3'}[5m])) * 1e-3 > bool 0.5", []string{"c_total"}},
		{`count_values("value", build_info)`, []string{"build_info"}},
		{`sum by(le)(ns:rule:rate5m)`, []string{"ns:rule:rate5m"}},
	} {
		if got := metricNames(tc.expr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// projectMetrics reads the metrics table of README.md ("| `dubboreach_...` | type | ..."): the
// names series may have (a histogram's _bucket, _sum and _count) mapped to the metric's name.
func projectMetrics(t *testing.T) (series map[string]string, names []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(dubboreach_[a-z0-9_]+)` \\| *([a-z]+) *\\|")
	series = map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, typ := m[1], m[2]
		names = append(names, name)
		switch typ {
		case "histogram":
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				series[name+suffix] = name
			}
		case "summary":
			for _, suffix := range []string{"", "_sum", "_count"} {
				series[name+suffix] = name
			}
		case "counter", "gauge":
			series[name] = name
		default:
			t.Errorf("README.md metrics table: %s has type %q, want counter, gauge, histogram or summary", name, typ)
		}
	}
	if len(names) == 0 {
		t.Fatal("README.md: no metrics table rows starting with \"| `dubboreach_\"")
	}
	return series, names
}

// dashboardQuery is one PromQL expression of the dashboard and where it is.
type dashboardQuery struct{ where, expr string }

type dashboardPanel struct {
	ID         int               `json:"id"`
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Datasource map[string]string `json:"datasource"`
	GridPos    *struct{ H, W int }
	Targets    []struct {
		Expr       string            `json:"expr"`
		RefID      string            `json:"refId"`
		Datasource map[string]string `json:"datasource"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboard struct {
	UID        string           `json:"uid"`
	Title      string           `json:"title"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "config/prometheus/grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("config/prometheus/grafana-dashboard.json: %v", err)
	}
	return d
}

var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// queries returns every PromQL expression of the dashboard: the panels' targets and the query
// variables (label_values(SELECTOR, label)).
func (d dashboard) queries(t *testing.T) []dashboardQuery {
	t.Helper()
	var qs []dashboardQuery
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				qs = append(qs, dashboardQuery{"panel " + p.Title + " target " + tg.RefID, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		var obj struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("dashboard variable %s: query %s: %v", v.Name, v.Query, err)
			}
			q = obj.Query
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("dashboard variable %s: query %q is not label_values(SELECTOR, label)", v.Name, q)
			continue
		}
		qs = append(qs, dashboardQuery{"variable " + v.Name, m[1]})
	}
	return qs
}

// TestQueriesUseKnownMetrics: every metric the alert rules and the dashboard query is one the
// project lists in README.md (which says what is exported), or Prometheus' or kube-apiserver's.
func TestQueriesUseKnownMetrics(t *testing.T) {
	series, _ := projectMetrics(t)
	queries := loadDashboard(t).queries(t)
	for _, r := range loadRules(t).alerts() {
		queries = append(queries, dashboardQuery{"rules.yaml alert " + r.Alert, r.Expr})
	}
	if len(queries) < 10 {
		t.Fatalf("found only %d queries in the dashboard and the rules", len(queries))
	}
	for _, q := range queries {
		names := metricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		for _, n := range names {
			if series[n] == "" && !externalMetrics[n] {
				t.Errorf("%s: metric %s is neither in README.md's metrics table nor one of Prometheus'/kube-apiserver's %v (query %q)",
					q.where, n, sortedKeys(externalMetrics), q.expr)
			}
		}
	}
}

// TestDashboardCoversEveryMetric: the overview shows every metric of the README's table.
func TestDashboardCoversEveryMetric(t *testing.T) {
	series, names := projectMetrics(t)
	used := map[string]bool{}
	for _, q := range loadDashboard(t).queries(t) {
		for _, n := range metricNames(q.expr) {
			used[series[n]] = true
		}
	}
	for _, n := range names {
		if !used[n] {
			t.Errorf("the dashboard has no panel showing %s", n)
		}
	}
}

// TestProjectMetricsExported: each metric of the README's table appears, by its full name, in a
// non-test Go file of the module, so it is really exported and not only documented.
func TestProjectMetricsExported(t *testing.T) {
	root := repoRoot(t)
	_, names := projectMetrics(t)
	found := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// Other modules (hack/tools/*) and build output are not dubboreach's code.
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin" || rel == "hack/tools" || d.Name() == "node_modules" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.Contains(string(data), `"`+n+`"`) {
				found[n] = append(found[n], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, n := range names {
		if len(found[n]) == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Errorf("README.md lists metrics that no non-test Go file names as a string literal (not exported yet?); the shipped alerts and dashboard use them:\n  %s",
			strings.Join(missing, "\n  "))
	}
}

// TestDashboardStructure checks what Grafana needs to import the dashboard and what the sidecar
// and links rely on.
func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID != "dubboreach" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: want uid dubboreach and a title", d.UID, d.Title)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] || !vars["namespace"] {
		t.Errorf("dashboard variables %v: want datasource and namespace", vars)
	}
	ids := map[int]string{}
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("panel %q: id %d (also %q); ids must be unique and non-zero", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("panel %q: no gridPos", p.Title)
			}
			if p.Type != "row" {
				if len(p.Targets) == 0 {
					t.Errorf("panel %q: no query", p.Title)
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
						t.Errorf("panel %q: target %q: want an expr and a unique refId", p.Title, tg.RefID)
					}
					refs[tg.RefID] = true
					if tg.Datasource["uid"] != "${datasource}" {
						t.Errorf("panel %q: target %s: datasource %v, want uid ${datasource}", p.Title, tg.RefID, tg.Datasource)
					}
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
