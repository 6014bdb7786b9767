// Package monitoring tests what dubboreach ships for Prometheus users (config/prometheus): the
// alert rules with promtool, the PrometheusRule against the rule file it is made from, the
// runbooks in docs/alerts.md, and the Grafana dashboard's queries against the metrics the project
// exports (README's metrics table).
package monitoring

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite config/prometheus/prometheusrule.yaml from rules.yaml")

// repoRoot walks up from the test's directory to dubboreach's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/dubboreach/dubboreach\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no dubboreach go.mod above the working directory")
		}
		dir = parent
	}
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (%v): install Debian's package with `sudo apt-get install prometheus`, or run `make tools`", err)
	}
	return p
}

// runPromtool runs promtool in the repository root and fails the test with its output.
func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s (in %s): %v\n%s", strings.Join(args, " "), root, err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := runPromtool(t, "check", "rules", "config/prometheus/rules.yaml")
	// promtool counts the rules; an empty file would pass the check with 0.
	n := len(loadRules(t).alerts())
	if want := fmt.Sprintf("SUCCESS: %d rules found", n); n == 0 || !strings.Contains(out, want) {
		t.Fatalf("promtool check rules: want %q in its output:\n%s", want, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "config/prometheus/tests/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in config/prometheus/tests (%v)", err)
	}
	args := []string{"test", "rules"}
	for _, f := range files {
		rel, _ := filepath.Rel(repoRoot(t), f)
		args = append(args, rel)
	}
	out := runPromtool(t, args...)
	if got := strings.Count(out, "SUCCESS"); got != len(files) {
		t.Fatalf("promtool test rules: %d of %d files succeeded:\n%s", got, len(files), out)
	}
}

// ruleFile is a Prometheus rule file; fields dubboreach does not use are kept by the generic
// comparison in TestPrometheusRuleMatchesRules, not here.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func (f ruleFile) alerts() []rule {
	var rs []rule
	for _, g := range f.Groups {
		rs = append(rs, g.Rules...)
	}
	return rs
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var f ruleFile
	readYAML(t, "config/prometheus/rules.yaml", &f)
	return f
}

const prometheusRuleHeader = `# Generated from rules.yaml by ` + "`go test ./test/monitoring -run TestPrometheusRuleMatchesRules -update`" + `:
# edit rules.yaml, not this file. The same alert rules as a prometheus-operator PrometheusRule.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: dubboreach
  labels:
    app.kubernetes.io/name: dubboreach
    app.kubernetes.io/component: monitoring
spec:
`

// prometheusRule renders the PrometheusRule from rules.yaml's text: its groups, indented under
// spec, with its comments.
func prometheusRule(rules []byte) []byte {
	var b bytes.Buffer
	b.WriteString(prometheusRuleHeader)
	body := rules[bytes.Index(rules, []byte("\ngroups:"))+1:]
	for _, line := range strings.SplitAfter(string(body), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

// TestPrometheusRuleMatchesRules keeps the one source: the PrometheusRule's spec.groups must
// equal rules.yaml's groups, value for value.
func TestPrometheusRuleMatchesRules(t *testing.T) {
	root := repoRoot(t)
	rulesText, err := os.ReadFile(filepath.Join(root, "config/prometheus/rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rulesText, []byte("\ngroups:")) {
		t.Fatal("config/prometheus/rules.yaml: no top-level groups:")
	}
	if *update {
		if err := os.WriteFile(filepath.Join(root, "config/prometheus/prometheusrule.yaml"), prometheusRule(rulesText), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var rules map[string]any
	readYAML(t, "config/prometheus/rules.yaml", &rules)
	var pr struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       map[string]any `json:"spec"`
	}
	readYAML(t, "config/prometheus/prometheusrule.yaml", &pr)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("prometheusrule.yaml is %s %s, want monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind)
	}
	if len(rules) != 1 || len(pr.Spec) != 1 {
		t.Errorf("rules.yaml keys %v, PrometheusRule spec keys %v: want groups only", keys(rules), keys(pr.Spec))
	}
	if rules["groups"] == nil || !reflect.DeepEqual(rules["groups"], pr.Spec["groups"]) {
		t.Fatal("config/prometheus/prometheusrule.yaml's spec.groups differ from rules.yaml's groups: " +
			"regenerate it with `go test ./test/monitoring -run TestPrometheusRuleMatchesRules -update`")
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// alertToggles are the chart values keys (alerts.<key>.enabled) documented in docs/alerts.md,
// one per alert.
var alertToggles = map[string]string{
	"DubboreachUnreachableProviders":   "unreachableProviders",
	"DubboreachRegistryScanIncomplete": "registryScanIncomplete",
	"DubboreachRegistryScanStale":      "registryScanStale",
	"DubboreachZooKeeperDisconnected":  "zookeeperDisconnected",
	"DubboreachAuditorDown":            "auditorDown",
	"DubboreachFixCapExceeded":         "fixCapExceeded",
	"DubboreachVerdictContradicted":    "verdictContradicted",
	"DubboreachBGPSessionDown":         "bgpSessionDown",
	"DubboreachBGPRoutesUnannounced":   "bgpRoutesUnannounced",
	"DubboreachBGPNoSpeaker":           "bgpNoSpeaker",
	"DubboreachPodRoutesMissing":       "podRoutesMissing",
	"DubboreachWebhookErrors":          "webhookErrors",
	"DubboreachWebhookFailOpen":        "webhookFailOpen",
	"DubboreachWebhookFailClosed":      "webhookFailClosed",
	"DubboreachWebhookDown":            "webhookDown",
}

const runbookBase = "https://github.com/dubboreach/dubboreach/blob/main/docs/alerts.md#"

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

var templateLabel = regexp.MustCompile(`\{\{[^}]*\$labels\.[a-z_]+`)

// TestAlertConventions checks what on-call people and the chart rely on: every rule is an alert
// with a stable name and a toggle, a severity, a summary, a description that carries labels, and
// a runbook link to a section of docs/alerts.md that exists.
func TestAlertConventions(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join(repoRoot(t), "docs/alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(docs), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			anchors[githubAnchor(h)] = true
		}
	}
	seen := map[string]bool{}
	for _, r := range loadRules(t).alerts() {
		name := r.Alert
		if name == "" {
			t.Errorf("rule %q is not an alert: rules.yaml holds alerts only", r.Record)
			continue
		}
		if seen[name] {
			t.Errorf("%s: defined twice; one rule per alert, so the chart can switch each off", name)
		}
		seen[name] = true
		key, ok := alertToggles[name]
		if !ok {
			t.Errorf("%s: no chart toggle; add it to alertToggles and to docs/alerts.md", name)
		} else if !strings.Contains(string(docs), "alerts."+key+".enabled") {
			t.Errorf("%s: docs/alerts.md does not document alerts.%s.enabled", name, key)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
			t.Errorf("%s: severity %q, want critical, warning or info", name, s)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("%s: no summary", name)
		}
		if !templateLabel.MatchString(r.Annotations["description"]) {
			t.Errorf("%s: description %q carries no {{ $labels.* }}", name, r.Annotations["description"])
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
		if !ok || anchor != strings.ToLower(name) || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q: want %s%s and a heading \"## %s\" in docs/alerts.md",
				name, r.Annotations["runbook_url"], runbookBase, strings.ToLower(name), name)
		}
	}
	for name := range alertToggles {
		if !seen[name] {
			t.Errorf("%s has a toggle but no rule", name)
		}
	}
}

// TestEveryAlertTestedBothWays requires, for every alert, a promtool case where it fires and one
// where it does not.
func TestEveryAlertTestedBothWays(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "config/prometheus/tests/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in config/prometheus/tests (%v)", err)
	}
	fired, quiet := map[string]int{}, map[string]int{}
	for _, f := range files {
		rel, _ := filepath.Rel(repoRoot(t), f)
		var tf struct {
			RuleFiles []string `json:"rule_files"`
			Tests     []struct {
				AlertRuleTests []struct {
					Alertname string `json:"alertname"`
					ExpAlerts []any  `json:"exp_alerts"`
				} `json:"alert_rule_test"`
			} `json:"tests"`
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Not strict: promtool's format has more fields than this test looks at.
		if err := yaml.Unmarshal(data, &tf); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if !reflect.DeepEqual(tf.RuleFiles, []string{"../rules.yaml"}) {
			t.Errorf("%s: rule_files %v, want [../rules.yaml] (the single source)", rel, tf.RuleFiles)
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTests {
				if len(a.ExpAlerts) > 0 {
					fired[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	for _, r := range loadRules(t).alerts() {
		if fired[r.Alert] == 0 || quiet[r.Alert] == 0 {
			t.Errorf("%s: %d promtool cases where it fires, %d where it does not; want both", r.Alert, fired[r.Alert], quiet[r.Alert])
		}
	}
}

func TestKustomization(t *testing.T) {
	var k struct {
		APIVersion         string   `json:"apiVersion"`
		Kind               string   `json:"kind"`
		Resources          []string `json:"resources"`
		ConfigMapGenerator []struct {
			Name    string   `json:"name"`
			Files   []string `json:"files"`
			Options struct {
				Labels                map[string]string `json:"labels"`
				DisableNameSuffixHash bool              `json:"disableNameSuffixHash"`
			} `json:"options"`
		} `json:"configMapGenerator"`
	}
	readYAML(t, "config/prometheus/kustomization.yaml", &k)
	if k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: kind %q", k.Kind)
	}
	files := append([]string(nil), k.Resources...)
	for _, g := range k.ConfigMapGenerator {
		files = append(files, g.Files...)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(repoRoot(t), "config/prometheus", f)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", f, err)
		}
	}
	if !contains(k.Resources, "prometheusrule.yaml") {
		t.Errorf("kustomization.yaml resources %v: want prometheusrule.yaml", k.Resources)
	}
	dashboard := false
	for _, g := range k.ConfigMapGenerator {
		if contains(g.Files, "grafana-dashboard.json") {
			dashboard = g.Options.Labels["grafana_dashboard"] == "1"
		}
	}
	if !dashboard {
		t.Error("kustomization.yaml: want a configMapGenerator for grafana-dashboard.json labelled grafana_dashboard: \"1\" (Grafana's sidecar)")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
