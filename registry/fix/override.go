package fix

import (
	"net/netip"
	"strings"

	"github.com/dubboreach/dubboreach/registry/dubbo"
)

// The legacy (pre-2.7) way to disable a provider: an override URL registered under
// /dubbo/<interface>/configurators, read by every consumer's RegistryDirectory (2.6 and later
// still subscribe to the configurators category):
//
//	override://10.20.153.10:20880/com.foo.BarService?category=configurators&disabled=true&dubboreach=managed&dynamic=false
//
// It must carry the provider's port: AbstractConfigurator.configureDeprecated applies an
// override URL with a port only to the provider URL with that port ("If override url has port,
// means it is a provider address"), and one without a port only to consumers' own addresses.
// group and version are added when the service has them so that Dubbo 3's
// isV27ConditionMatchOrUnset, which compares service keys, matches it too; they are condition
// keys (AbstractConfigurator.genConditionKeys) and never copied onto the provider URL.
// The znode name is java.net.URLEncoder.encode(url.toFullString(), "UTF-8")
// (ZookeeperRegistry.toUrlPath and URL.encode), and toFullString writes the parameters sorted
// (URL.buildParameters iterates a TreeMap), so a given override has exactly one name.

// LegacyOverride is the override URL (decoded) that disables provider p of service s.
func LegacyOverride(s Service, p netip.AddrPort) string {
	params := map[string]string{
		"category": "configurators",
		"disabled": "true",
		"dynamic":  "false",
		MarkerKey:  MarkerValue,
	}
	// An empty group or version is left out, as Dubbo leaves out empty parameters.
	if s.Group != "" {
		params["group"] = s.Group
	}
	if s.Version != "" {
		params["version"] = s.Version
	}
	// dubbo.URL renders like Dubbo's toFullString: parameters sorted, IPv6 bracketed.
	return dubbo.URL{Protocol: "override", Host: p.Addr().String(), Port: p.Port(), Path: s.Interface, Params: params}.String()
}

// JavaURLEncode is java.net.URLEncoder.encode(s, "UTF-8"): letters, digits and ".-*_" stay,
// space becomes '+', every other byte of the UTF-8 encoding becomes %XX (upper case).
func JavaURLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// LegacyDir is the configurators directory of a service under the registry root
// (ZookeeperRegistry.toCategoryPath: root/URL.encode(interface)/configurators).
func LegacyDir(registryRoot string, s Service) string {
	return strings.TrimSuffix(registryRoot, "/") + "/" + JavaURLEncode(s.Interface) + "/configurators"
}

// LegacyPath is the znode that holds the legacy override for provider p of service s.
func LegacyPath(registryRoot string, s Service, p netip.AddrPort) string {
	return LegacyDir(registryRoot, s) + "/" + JavaURLEncode(LegacyOverride(s, p))
}

// ParseLegacyName says whether a znode name under configurators/ is exactly an override that
// dubboreach writes, and for which service and provider.
func ParseLegacyName(name string) (Service, netip.AddrPort, bool) {
	u, err := dubbo.ParseZnodeName(name)
	if err != nil || u.Protocol != "override" || u.Params[MarkerKey] != MarkerValue {
		return Service{}, netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(u.Host)
	if err != nil || u.Port == 0 {
		return Service{}, netip.AddrPort{}, false
	}
	s := Service{Interface: u.Path, Version: u.Params["version"], Group: u.Params["group"]}
	p := netip.AddrPortFrom(a, u.Port)
	// Only a name dubboreach would write, exactly, is ours.
	if s.Validate() != nil || JavaURLEncode(LegacyOverride(s, p)) != name {
		return Service{}, netip.AddrPort{}, false
	}
	return s, p, true
}
