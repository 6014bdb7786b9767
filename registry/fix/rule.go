package fix

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The consumer-side rule that disables a provider address, in the config-center format that
// Dubbo 2.7+ reads (apache/dubbo dubbo-cluster/.../configurator/parser/ConfigParser.java and
// parser/model/ConfiguratorConfig.java, ConfigItem.java):
//
//	configVersion: v2.7
//	scope: service
//	key: <group>/<interface>:<version>
//	enabled: true
//	configs:
//	- {side: consumer, addresses: ["0.0.0.0"], providerAddresses: ["10.1.2.3:20880"], parameters: {disabled: true, dubboreach: managed}}
//
// Why each field is what it is:
//   - key is the service key as URL.buildKey writes it (group/interface:version, each part
//     omitted when empty): ConfigParser.appendService splits it on the first '/' (group) and
//     the first ':' (version), and AbstractConfigurator.isV27ConditionMatchOrUnset compares
//     the resulting URL's getServiceKey() with the provider URL's. Dubbo's own test rule
//     dubbo-cluster/src/test/resources/ServiceGroupVersion.yml uses "testgroup/servicekey:1.0.0".
//     (The colon form interface:version:group names the znode, not the key; see RulePath.)
//   - side: consumer, because AbstractConfigurator.configure applies a v2.7 rule only where
//     the URL's side equals the rule's side: consumers never apply side: provider rules.
//   - addresses are the consumers the rule applies to (configureIfMatch compares them with the
//     consumer's own address; 0.0.0.0 = all), providerAddresses the provider ip:port it concerns
//     (ConfigParser.toParameterString turns them into the "providerAddresses" URL parameter
//     that isV27ConditionMatchOrUnset matches against the provider's host:port).
//   - parameters.disabled=true: RegistryDirectory.toInvokers creates no invoker for a provider
//     URL whose "disabled" parameter is true.
//   - parameters.dubboreach=managed marks the entry as dubboreach's. An unknown top-level key of
//     the item would not do: Dubbo 2.7.0-2.7.x built ConfigItem with SnakeYAML's bean Constructor,
//     which fails on unknown properties and would break the whole rule. Parameters are a free
//     map, every version keeps them, and OverrideConfigurator merely copies "dubboreach=managed"
//     onto a provider URL that is disabled anyway.
//   - enabled: true at the top: ConfigParser.parseEnabled takes the rule-level flag for items
//     without a type, so an existing rule with enabled: false is never merged into.
//
// Each entry is rendered on one line (a YAML flow mapping) so that adding and removing it are
// line insertions and deletions: the rest of the document, foreign entries included, stays
// byte for byte as it was, and undo restores the exact original bytes.

const (
	// MarkerKey and MarkerValue mark the entries (and legacy override URLs) dubboreach wrote.
	MarkerKey   = "dubboreach"
	MarkerValue = "managed"
	// MaxRuleBytes bounds a rule node read from ZooKeeper (ZooKeeper's own jute.maxbuffer default).
	MaxRuleBytes = 1 << 20
	// ruleComment ends each line dubboreach writes, for the person reading the node.
	ruleComment = "  # dubboreach: unreachable provider; --fix=undo-disable removes this line"
	// configuratorsSuffix is DynamicConfiguration's CONFIGURATORS_SUFFIX.
	configuratorsSuffix = ".configurators"
)

// Service is a Dubbo service identity.
type Service struct {
	Interface, Version, Group string
}

// validPart accepts the characters a service key part may hold here: no whitespace, quotes,
// YAML indicators that would need escaping, or the separators ConfigParser splits on.
func validPart(s string, allowEmpty bool, seps string) error {
	if s == "" {
		if allowEmpty {
			return nil
		}
		return errors.New("is empty")
	}
	if len(s) > 512 {
		return fmt.Errorf("is %d bytes long", len(s))
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("._-$*+", r):
		default:
			return fmt.Errorf("holds %q, which the disable rule does not support", r)
		}
		if strings.ContainsRune(seps, r) {
			return fmt.Errorf("holds the separator %q", r)
		}
	}
	return nil
}

// Validate says whether the service can be named in a rule key.
func (s Service) Validate() error {
	if err := validPart(s.Interface, false, "/:"); err != nil {
		return fmt.Errorf("interface %q %w", s.Interface, err)
	}
	if err := validPart(s.Version, true, "/:"); err != nil {
		return fmt.Errorf("version %q %w", s.Version, err)
	}
	if err := validPart(s.Group, true, "/:"); err != nil {
		return fmt.Errorf("group %q %w", s.Group, err)
	}
	return nil
}

// Key is the service key as org.apache.dubbo.common.URL.buildKey writes it and
// ConfigParser.appendService reads it: [group/]interface[:version].
func (s Service) Key() string {
	k := s.Interface
	if s.Group != "" {
		k = s.Group + "/" + k
	}
	if s.Version != "" {
		k += ":" + s.Version
	}
	return k
}

// RuleName is the config-center node name: URL.getColonSeparatedKey() (interface:version:group,
// empty parts kept as empty, e.g. "com.foo.BarService::") plus ".configurators", as
// RegistryDirectory's ReferenceConfigurationListener subscribes to
// DynamicConfiguration.getRuleKey(url) + CONFIGURATORS_SUFFIX.
func (s Service) RuleName() string {
	return s.Interface + ":" + s.Version + ":" + s.Group + configuratorsSuffix
}

// ParseRuleName reverses RuleName; ok is false for names that are not service rules.
func ParseRuleName(name string) (Service, bool) {
	base, ok := strings.CutSuffix(name, configuratorsSuffix)
	if !ok {
		return Service{}, false
	}
	parts := strings.Split(base, ":")
	if len(parts) != 3 {
		return Service{}, false
	}
	s := Service{Interface: parts[0], Version: parts[1], Group: parts[2]}
	if s.Validate() != nil {
		return Service{}, false
	}
	return s, true
}

// Entry is one dubboreach entry of a rule: consumers (addresses) told to skip a provider.
type Entry struct {
	Provider  netip.AddrPort
	Consumers []string
}

// consumerList validates and defaults the consumer addresses ("0.0.0.0" = every consumer).
func consumerList(cs []string) ([]string, error) {
	if len(cs) == 0 {
		return []string{"0.0.0.0"}, nil
	}
	for _, c := range cs {
		a, err := netip.ParseAddr(c)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("consumer address %q is not an IPv4 address (Dubbo compares it with the consumer's own address)", c)
		}
	}
	return cs, nil
}

// renderEntry is the one line (without indentation) that holds an entry.
func renderEntry(e Entry) string {
	var b strings.Builder
	b.WriteString(`- {side: consumer, addresses: [`)
	for i, c := range e.Consumers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"` + c + `"`)
	}
	b.WriteString(`], providerAddresses: ["` + e.Provider.String() + `"], parameters: {disabled: true, ` +
		MarkerKey + `: ` + MarkerValue + `}}` + ruleComment)
	return b.String()
}

// renderHeader is the start of a rule document that dubboreach creates.
func renderHeader(s Service) string {
	return "configVersion: v2.7\nscope: service\nkey: \"" + s.Key() + "\"\nenabled: true\nconfigs:\n"
}

// RenderRule is the whole document dubboreach writes when the node does not exist.
func RenderRule(s Service, entries []Entry) []byte {
	var b strings.Builder
	b.WriteString(renderHeader(s))
	for _, e := range entries {
		b.WriteString(renderEntry(e))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Rule is a parsed rule document, kept with its text so that edits are line edits.
type Rule struct {
	text  []byte
	lines []string // text split after each '\n'
	root  *yaml.Node
	// configs is the configs sequence node; keyLine its key's line (1-based).
	configs *yaml.Node
	keyLine int
	// Ours are the dubboreach entries found, with the line each is on (0-based).
	Ours []OurEntry
}

// OurEntry is a dubboreach entry of a rule and where it is.
type OurEntry struct {
	Entry
	line int
	// Modified: the marked entry is not the exact line dubboreach wrote (someone edited it).
	Modified bool
}

// errUnsupported marks documents dubboreach will not edit.
type errUnsupported struct{ msg string }

func (e errUnsupported) Error() string { return e.msg }

func unsupported(format string, args ...any) error {
	return errUnsupported{fmt.Sprintf(format, args...)}
}

// ParseRule parses a rule node's data for service s. It returns an error for anything
// dubboreach will not edit: not a v2.7/v3.0 service rule for s, disabled, flow-style configs,
// too large, CRLF, or not UTF-8 YAML.
func ParseRule(s Service, data []byte) (*Rule, error) {
	if len(data) > MaxRuleBytes {
		return nil, unsupported("rule is %d bytes, more than the %d dubboreach edits", len(data), MaxRuleBytes)
	}
	if bytes.IndexByte(data, '\r') >= 0 || bytes.IndexByte(data, '\t') >= 0 {
		return nil, unsupported("rule holds carriage returns or tabs; dubboreach edits only plain block YAML")
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, unsupported("rule is not YAML: %v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, unsupported("rule holds more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, unsupported("rule is not a YAML mapping")
	}
	root := doc.Content[0]
	if hasAlias(root, 0) {
		// Aliases can make decoding explode (and an entry inserted by lines could be aliased).
		return nil, unsupported("rule uses YAML anchors/aliases or nests too deep; dubboreach does not edit it")
	}
	if root.Style&yaml.FlowStyle != 0 {
		return nil, unsupported("rule is written in flow style (JSON); dubboreach edits only block YAML")
	}
	r := &Rule{text: data, root: root}
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Kind != yaml.ScalarNode {
			return nil, unsupported("rule has a non-scalar key")
		}
		if _, dup := fields[k.Value]; dup {
			return nil, unsupported("rule repeats the key %q", k.Value)
		}
		fields[k.Value] = root.Content[i+1]
		if k.Value == "configs" {
			r.keyLine = k.Line
		}
	}
	scalar := func(name string) (string, bool) {
		n, ok := fields[name]
		if !ok {
			return "", false
		}
		if n.Kind != yaml.ScalarNode {
			return "\x00", true
		}
		return n.Value, true
	}
	if v, _ := scalar("configVersion"); v != "v2.7" && v != "v3.0" {
		return nil, unsupported("rule has configVersion %q; dubboreach merges only into v2.7 and v3.0 rules", v)
	}
	if v, ok := scalar("scope"); ok && v != "service" {
		return nil, unsupported("rule has scope %q, not service", v)
	}
	if v, _ := scalar("key"); v != s.Key() {
		return nil, unsupported("rule has key %q, not the service key %q", v, s.Key())
	}
	if v, ok := scalar("enabled"); ok && v != "true" {
		return nil, unsupported("rule has enabled: %s; dubboreach does not add to a disabled rule", v)
	}
	cfg, ok := fields["configs"]
	if !ok || cfg.Kind != yaml.SequenceNode || cfg.Style&yaml.FlowStyle != 0 || len(cfg.Content) == 0 {
		return nil, unsupported("rule has no block-style configs list")
	}
	if cfg.Line <= r.keyLine {
		return nil, unsupported("rule's configs list starts on its key's line")
	}
	r.configs = cfg
	r.lines = strings.SplitAfter(string(data), "\n")
	indent := strings.Repeat(" ", cfg.Column-1)
	for _, item := range cfg.Content {
		e, ours := markedEntry(item)
		if !ours {
			continue
		}
		line := item.Line - 1
		oe := OurEntry{Entry: e, line: line, Modified: true}
		if e.Provider.IsValid() && line < len(r.lines) {
			want := indent + renderEntry(e)
			got := strings.TrimSuffix(r.lines[line], "\n")
			// The item's mapping starts after "- " on its line; the whole line must be ours.
			oe.Modified = got != want || item.Column != cfg.Column+2
		}
		r.Ours = append(r.Ours, oe)
	}
	return r, nil
}

// hasAlias reports anchors, aliases, or nesting deeper than any real rule has.
func hasAlias(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || depth > 32 {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

// markedEntry says whether a configs item carries dubboreach's marker and decodes it.
func markedEntry(item *yaml.Node) (Entry, bool) {
	var v struct {
		Side              string            `yaml:"side"`
		Addresses         []string          `yaml:"addresses"`
		ProviderAddresses []string          `yaml:"providerAddresses"`
		Parameters        map[string]string `yaml:"parameters"`
	}
	if item.Kind != yaml.MappingNode || item.Decode(&v) != nil {
		return Entry{}, false
	}
	if v.Parameters[MarkerKey] != MarkerValue {
		return Entry{}, false
	}
	var e Entry
	if len(v.ProviderAddresses) == 1 {
		if ap, err := netip.ParseAddrPort(v.ProviderAddresses[0]); err == nil {
			e.Provider = ap
		}
	}
	e.Consumers = v.Addresses
	return e, true
}

// Has says whether the rule holds our exact entry for provider with these consumers.
func (r *Rule) Has(e Entry) bool {
	for _, o := range r.Ours {
		if !o.Modified && o.Provider == e.Provider && reflect.DeepEqual(o.Consumers, e.Consumers) {
			return true
		}
	}
	return false
}

// decodeAll decodes a document to plain values for comparisons.
func decodeAll(data []byte) (map[string]any, error) {
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Edit returns the document with the entries in add inserted and the (unmodified) entries of
// ours at the indexes in remove deleted, and whether the result is empty of entries altogether
// and exactly the header dubboreach writes (then the node is to be deleted). It verifies the
// result: the foreign part of the document must decode exactly as before.
func (r *Rule) Edit(s Service, add []Entry, remove []int) (out []byte, deleteNode bool, err error) {
	drop := map[int]bool{}
	for _, i := range remove {
		o := r.Ours[i]
		if o.Modified {
			return nil, false, unsupported("dubboreach's entry for %s was edited by someone; remove it by hand", o.Provider)
		}
		drop[o.line] = true
	}
	indent := strings.Repeat(" ", r.configs.Column-1)
	var b strings.Builder
	for i, l := range r.lines {
		if drop[i] {
			continue
		}
		b.WriteString(l)
		if i == r.keyLine-1 {
			if !strings.HasSuffix(l, "\n") {
				return nil, false, unsupported("rule ends on its configs key")
			}
			for _, e := range add {
				b.WriteString(indent + renderEntry(e) + "\n")
			}
		}
	}
	out = []byte(b.String())

	// Verify: the result decodes as the original with the configs list changed exactly so.
	before, err := decodeAll(r.text)
	if err != nil {
		return nil, false, unsupported("rule does not decode: %v", err)
	}
	after, err := decodeAll(out)
	if err != nil {
		return nil, false, unsupported("edited rule does not decode (%v); the original layout is not supported", err)
	}
	oldItems, _ := before["configs"].([]any)
	var want []any
	for _, e := range add {
		want = append(want, entryValue(e))
	}
	for i, it := range oldItems {
		if drop[r.configs.Content[i].Line-1] {
			continue
		}
		want = append(want, it)
	}
	before["configs"] = want
	if len(want) == 0 {
		before["configs"] = nil
	}
	if !reflect.DeepEqual(before, after) {
		return nil, false, unsupported("editing the rule by lines would change more than dubboreach's entries; the layout is not supported")
	}
	if len(want) == 0 {
		if string(out) == renderHeader(s) {
			return out, true, nil
		}
		return nil, false, unsupported("removing dubboreach's entries would leave a rule with no configs, which Dubbo cannot parse; delete the node by hand")
	}
	return out, false, nil
}

// entryValue is an entry as yaml.Unmarshal decodes its line.
func entryValue(e Entry) any {
	var v []any
	if err := yaml.Unmarshal([]byte(renderEntry(e)), &v); err != nil || len(v) != 1 {
		panic(fmt.Sprintf("fix: rendered entry does not decode: %v", err))
	}
	return v[0]
}
