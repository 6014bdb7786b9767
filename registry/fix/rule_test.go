package fix

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/dubboreach/dubboreach/registry/dubbo"
)

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestServiceKeyAndRuleName(t *testing.T) {
	for _, tc := range []struct {
		s          Service
		key, name  string
		parsedBack bool
	}{
		{Service{Interface: "com.foo.BarService"}, "com.foo.BarService", "com.foo.BarService::.configurators", true},
		{Service{Interface: "com.foo.BarService", Version: "1.0.0"}, "com.foo.BarService:1.0.0", "com.foo.BarService:1.0.0:.configurators", true},
		{Service{Interface: "com.foo.BarService", Group: "g1"}, "g1/com.foo.BarService", "com.foo.BarService::g1.configurators", true},
		// Dubbo's own test rule (testdata/dubbo-test-ServiceGroupVersion.yml).
		{Service{Interface: "servicekey", Version: "1.0.0", Group: "testgroup"}, "testgroup/servicekey:1.0.0", "servicekey:1.0.0:testgroup.configurators", true},
	} {
		if got := tc.s.Key(); got != tc.key {
			t.Errorf("%+v: Key() = %q, want %q", tc.s, got, tc.key)
		}
		if got := tc.s.RuleName(); got != tc.name {
			t.Errorf("%+v: RuleName() = %q, want %q", tc.s, got, tc.name)
		}
		back, ok := ParseRuleName(tc.name)
		if ok != tc.parsedBack || back != tc.s {
			t.Errorf("ParseRuleName(%q) = %+v, %v", tc.name, back, ok)
		}
	}
	for _, bad := range []Service{{}, {Interface: "a:b"}, {Interface: "a", Group: "x/y"}, {Interface: "a", Version: "1 0"}, {Interface: "a", Group: `"q"`}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	for _, bad := range []string{"a:b.configurators", "a::.condition-router", "a:b:c:d.configurators", ":1:.configurators"} {
		if _, ok := ParseRuleName(bad); ok {
			t.Errorf("ParseRuleName(%q) accepted", bad)
		}
	}
}

// configuratorConfig mirrors apache/dubbo ConfiguratorConfig and ConfigItem (the fields
// parseFromMap reads). Decoding with KnownFields(true) fails on any other field, as Dubbo
// 2.7's SnakeYAML bean Constructor did.
type configuratorConfig struct {
	ConfigVersion string       `yaml:"configVersion"`
	Scope         string       `yaml:"scope"`
	Key           string       `yaml:"key"`
	Enabled       *bool        `yaml:"enabled"`
	Configs       []configItem `yaml:"configs"`
}

type configItem struct {
	Type              string            `yaml:"type"`
	Enabled           *bool             `yaml:"enabled"`
	Addresses         []string          `yaml:"addresses"`
	ProviderAddresses []string          `yaml:"providerAddresses"`
	Services          []string          `yaml:"services"`
	Applications      []string          `yaml:"applications"`
	Parameters        map[string]string `yaml:"parameters"`
	Side              string            `yaml:"side"`
}

// serviceItemURLs is a port of ConfigParser.serviceItemToUrls + appendService +
// toParameterString + parseEnabled (apache/dubbo dubbo-cluster .../parser/ConfigParser.java),
// with the parameters sorted (Dubbo's order is a HashMap's).
func serviceItemURLs(t *testing.T, doc []byte) []string {
	t.Helper()
	var c configuratorConfig
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("Dubbo's model does not decode the rule: %v\n%s", err, doc)
	}
	if c.Scope != "" && c.Scope != "service" {
		t.Fatalf("scope %q", c.Scope)
	}
	enabled := true
	if c.Enabled != nil {
		enabled = *c.Enabled
	}
	var out []string
	for _, it := range c.Configs {
		params := map[string]string{"category": "dynamicconfigurators", "configVersion": c.ConfigVersion}
		if it.Side != "" {
			params["side"] = it.Side
		}
		if len(it.Parameters) == 0 {
			t.Fatalf("item without parameters: Dubbo throws 'Invalid configurator rule'")
		}
		for k, v := range it.Parameters {
			params[k] = v
		}
		if len(it.ProviderAddresses) > 0 {
			params["providerAddresses"] = strings.Join(it.ProviderAddresses, ",")
		}
		params["enabled"] = map[bool]string{true: "true", false: "false"}[enabled]
		iface := c.Key
		if i := strings.IndexByte(iface, '/'); i > 0 {
			params["group"] = iface[:i]
			iface = iface[i+1:]
		}
		if j := strings.IndexByte(iface, ':'); j > 0 {
			params["version"] = iface[j+1:]
			iface = iface[:j]
		}
		addrs := it.Addresses
		if len(addrs) == 0 {
			addrs = []string{"0.0.0.0"}
		}
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var q []string
		for _, k := range keys {
			q = append(q, k+"="+params[k])
		}
		for _, a := range addrs {
			out = append(out, "override://"+a+"/"+iface+"?"+strings.Join(q, "&"))
		}
	}
	return out
}

func TestRenderedRuleAsDubboReadsIt(t *testing.T) {
	s := Service{Interface: "com.foo.BarService", Version: "1.0.0", Group: "g1"}
	doc := RenderRule(s, []Entry{{Provider: ap("10.1.2.3:20880"), Consumers: []string{"0.0.0.0"}}})
	want := "configVersion: v2.7\nscope: service\nkey: \"g1/com.foo.BarService:1.0.0\"\nenabled: true\nconfigs:\n" +
		`- {side: consumer, addresses: ["0.0.0.0"], providerAddresses: ["10.1.2.3:20880"], parameters: {disabled: true, dubboreach: managed}}` +
		ruleComment + "\n"
	if string(doc) != want {
		t.Fatalf("rule:\n%s\nwant:\n%s", doc, want)
	}
	urls := serviceItemURLs(t, doc)
	wantURL := "override://0.0.0.0/com.foo.BarService?category=dynamicconfigurators&configVersion=v2.7&disabled=true&dubboreach=managed&enabled=true&group=g1&providerAddresses=10.1.2.3:20880&side=consumer&version=1.0.0"
	if len(urls) != 1 || urls[0] != wantURL {
		t.Fatalf("Dubbo would read %q, want %q", urls, wantURL)
	}
	// The URL's service key (URL.getServiceKey = buildKey(path, group, version)) must equal the
	// provider's, or AbstractConfigurator.isV27ConditionMatchOrUnset ignores the rule.
	u, err := dubbo.ParseURL(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := (Service{Interface: u.Path, Version: u.Params["version"], Group: u.Params["group"]}).Key(); got != s.Key() {
		t.Fatalf("service key of the override %q, want %q", got, s.Key())
	}
	r, err := ParseRule(s, doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Ours) != 1 || r.Ours[0].Modified || r.Ours[0].Provider != ap("10.1.2.3:20880") {
		t.Fatalf("own entry not recognised: %+v", r.Ours)
	}
}

// TestMergeIntoDocumentedRules adds entries to rules published in Dubbo's documentation and
// removes them again: the foreign entries are kept byte for byte and the undo gives back the
// exact original.
func TestMergeIntoDocumentedRules(t *testing.T) {
	for _, tc := range []struct {
		file string
		s    Service
	}{
		{"dubbo-docs-service-rule.yaml", Service{Interface: "org.apache.dubbo.samples.governance.api.DemoService"}},
		{"dubbo-docs-template-rule.yaml", Service{Interface: "org.apache.dubbo.samples.governance.api.DemoService", Version: "1.0.0", Group: "governance"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			orig := mustRead(t, tc.file)
			origURLs := serviceItemURLs(t, orig)
			r, err := ParseRule(tc.s, orig)
			if err != nil {
				t.Fatal(err)
			}
			add := []Entry{{Provider: ap("10.244.1.7:20880"), Consumers: []string{"0.0.0.0"}}, {Provider: ap("10.244.2.9:20880"), Consumers: []string{"10.0.0.5"}}}
			merged, del, err := r.Edit(tc.s, add, nil)
			if err != nil || del {
				t.Fatalf("Edit: %v %v", err, del)
			}
			// Only whole lines were added.
			if got := removeLines(string(merged), "dubboreach: managed"); got != string(orig) {
				t.Fatalf("foreign text changed:\n%s", merged)
			}
			urls := serviceItemURLs(t, merged)
			if len(urls) != len(origURLs)+2 {
				t.Fatalf("Dubbo reads %d URLs, want %d", len(urls), len(origURLs)+2)
			}
			for _, u := range origURLs {
				if !contains(urls, u) {
					t.Errorf("foreign rule %s lost", u)
				}
			}
			r2, err := ParseRule(tc.s, merged)
			if err != nil {
				t.Fatal(err)
			}
			if len(r2.Ours) != 2 || !r2.Has(add[0]) || !r2.Has(add[1]) {
				t.Fatalf("own entries: %+v", r2.Ours)
			}
			back, del, err := r2.Edit(tc.s, nil, []int{0, 1})
			if err != nil || del {
				t.Fatalf("undo: %v %v", err, del)
			}
			if !bytes.Equal(back, orig) {
				t.Fatalf("undo did not restore the original:\n%s", back)
			}
		})
	}
}

func removeLines(s, marker string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(l, marker) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRulesNotEdited(t *testing.T) {
	s := Service{Interface: "com.foo.BarService"}
	for name, doc := range map[string]string{
		"Dubbo's own test rule (apiVersion)": string(mustRead(t, "dubbo-test-ServiceGroupVersion.yml")),
		"flow configs":                       "configVersion: v2.7\nscope: service\nkey: com.foo.BarService\nconfigs: [{side: consumer, parameters: {timeout: 1}}]\n",
		"JSON":                               `{"configVersion":"v2.7","scope":"service","key":"com.foo.BarService","configs":[{"side":"consumer","parameters":{"timeout":"1"}}]}`,
		"disabled rule":                      "configVersion: v2.7\nscope: service\nkey: com.foo.BarService\nenabled: false\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\n",
		"other key":                          "configVersion: v2.7\nscope: service\nkey: com.foo.Other\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\n",
		"application scope":                  "configVersion: v2.7\nscope: application\nkey: com.foo.BarService\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\n",
		"CRLF":                               "configVersion: v2.7\r\nscope: service\r\nkey: com.foo.BarService\r\nconfigs:\r\n- side: consumer\r\n  parameters: {timeout: 1}\r\n",
		"two documents":                      "configVersion: v2.7\nscope: service\nkey: com.foo.BarService\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\n---\na: 1\n",
		"not YAML":                           "configVersion: [\n",
		"duplicate key":                      "configVersion: v2.7\nscope: service\nkey: com.foo.BarService\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\nconfigs:\n- side: consumer\n",
	} {
		if _, err := ParseRule(s, []byte(doc)); err == nil {
			t.Errorf("%s: ParseRule accepted a rule it must not edit", name)
		}
	}
}

func TestEditedEntryIsLeftAlone(t *testing.T) {
	s := Service{Interface: "com.foo.BarService"}
	doc := string(RenderRule(s, []Entry{{Provider: ap("10.1.2.3:20880"), Consumers: []string{"0.0.0.0"}}}))
	edited := strings.Replace(doc, `disabled: true`, `disabled: true, timeout: 5`, 1)
	r, err := ParseRule(s, []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Ours) != 1 || !r.Ours[0].Modified {
		t.Fatalf("edited entry not flagged: %+v", r.Ours)
	}
	if _, _, err := r.Edit(s, nil, []int{0}); err == nil {
		t.Fatal("Edit removed an entry someone edited")
	}
	// Removing the last entry of a rule dubboreach created deletes the node.
	r, _ = ParseRule(s, []byte(doc))
	out, del, err := r.Edit(s, nil, []int{0})
	if err != nil || !del || string(out) != renderHeader(s) {
		t.Fatalf("Edit = %q, %v, %v", out, del, err)
	}
}

func TestLegacyOverride(t *testing.T) {
	// The documented disable example names no port; dubboreach's must (configureDeprecated
	// applies a port-less override to consumers only). Both parse as Dubbo URLs.
	for _, line := range strings.Split(string(mustRead(t, "dubbo-docs-legacy-override.txt")), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := dubbo.ParseURL(line)
		if err != nil || u.Protocol != "override" || u.Params["category"] != "configurators" {
			t.Fatalf("documented override %q: %+v %v", line, u, err)
		}
		if _, _, ok := ParseLegacyName(JavaURLEncode(line)); ok {
			t.Errorf("a foreign override was taken for dubboreach's: %s", line)
		}
	}
	s := Service{Interface: "com.foo.BarService", Version: "1.0.0", Group: "g1"}
	p := ap("10.20.153.10:20880")
	got := LegacyOverride(s, p)
	want := "override://10.20.153.10:20880/com.foo.BarService?category=configurators&disabled=true&dubboreach=managed&dynamic=false&group=g1&version=1.0.0"
	if got != want {
		t.Fatalf("LegacyOverride = %s\nwant            %s", got, want)
	}
	u, err := dubbo.ParseURL(got)
	if err != nil || u.String() != got || u.Port != 20880 {
		t.Fatalf("not a sorted Dubbo URL with a port: %v %+v", err, u)
	}
	name := JavaURLEncode(got)
	if name != "override%3A%2F%2F10.20.153.10%3A20880%2Fcom.foo.BarService%3Fcategory%3Dconfigurators%26disabled%3Dtrue%26dubboreach%3Dmanaged%26dynamic%3Dfalse%26group%3Dg1%26version%3D1.0.0" {
		t.Fatalf("encoded name %s", name)
	}
	s2, p2, ok := ParseLegacyName(name)
	if !ok || s2 != s || p2 != p {
		t.Fatalf("ParseLegacyName = %+v %v %v", s2, p2, ok)
	}
	if LegacyPath("/dubbo", s, p) != "/dubbo/com.foo.BarService/configurators/"+name {
		t.Fatalf("LegacyPath = %s", LegacyPath("/dubbo", s, p))
	}
	if JavaURLEncode("a b~é*") != "a+b%7E%C3%A9*" {
		t.Fatalf("JavaURLEncode = %s", JavaURLEncode("a b~é*"))
	}
}

// FuzzRuleEdit: whatever the rule text, ParseRule does not panic, and when it accepts the text,
// adding entries and removing them again gives back the exact bytes.
func FuzzRuleEdit(f *testing.F) {
	s := Service{Interface: "com.foo.BarService"}
	for _, name := range []string{"dubbo-docs-service-rule.yaml", "dubbo-test-ServiceGroupVersion.yml"} {
		f.Add(mustRead(f, name))
	}
	f.Add(RenderRule(s, []Entry{{Provider: ap("10.1.2.3:20880"), Consumers: []string{"0.0.0.0"}}}))
	f.Add([]byte("configVersion: v2.7\nkey: com.foo.BarService\nconfigs: # c\n  # x\n  - side: consumer\n    parameters:\n      timeout: 1\nother: 1\n"))
	f.Add([]byte("configVersion: v2.7\nkey: com.foo.BarService\nconfigs:\n- &a {side: consumer, parameters: {x: 1}}\n- *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRule(s, data)
		if err != nil {
			return
		}
		add := []Entry{{Provider: ap("10.9.9.9:20880"), Consumers: []string{"0.0.0.0"}}}
		out, _, err := r.Edit(s, add, nil)
		if err != nil {
			return
		}
		r2, err := ParseRule(s, out)
		if err != nil {
			t.Fatalf("edited rule does not parse: %v\n%s", err, out)
		}
		var idx []int
		for i, o := range r2.Ours {
			if o.Provider == add[0].Provider && !o.Modified {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			t.Fatalf("added entry not found in\n%s", out)
		}
		back, _, err := r2.Edit(s, nil, idx[len(idx)-1:])
		if err != nil {
			t.Fatalf("removing the added entry: %v\n%s", err, out)
		}
		if !bytes.Equal(back, data) {
			t.Fatalf("add+remove changed the rule:\n%q\n%q", data, back)
		}
	})
}

// FuzzParseLegacyName: no panic, and an accepted name is exactly what dubboreach renders.
func FuzzParseLegacyName(f *testing.F) {
	f.Add(JavaURLEncode(LegacyOverride(Service{Interface: "com.foo.BarService", Group: "g"}, ap("10.0.0.1:20880"))))
	f.Add("override%3A%2F%2F10.20.153.10%2Fcom.foo.BarService%3Fcategory%3Dconfigurators%26dynamic%3Dfalse%26disbaled%3Dtrue")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, name string) {
		s, p, ok := ParseLegacyName(name)
		if ok && JavaURLEncode(LegacyOverride(s, p)) != name {
			t.Fatalf("accepted %q, which renders differently", name)
		}
	})
}
