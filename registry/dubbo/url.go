package dubbo

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// MaxURL bounds an encoded znode name. Real provider URLs, with their method lists, run to a
// few KiB; ZooKeeper itself allows far longer names, which we refuse to parse.
const MaxURL = 64 << 10

// URL is a Dubbo URL as the registry stores it: protocol://[user[:password]@]host[:port]/path?k=v&...
// The password, if any, is dropped: it must never be shown.
type URL struct {
	Protocol string
	Username string
	// Host is the address as written: an IPv4 or IPv6 address (without brackets) or a hostname.
	Host string
	// Port is 0 when the URL has none (consumer URLs).
	Port uint16
	// Path is the service path, normally the interface name.
	Path   string
	Params map[string]string
}

// DecodeZnodeName reverses java.net.URLEncoder.encode(url.toFullString(), "UTF-8"): %XX escapes
// and '+' for space.
func DecodeZnodeName(name string) (string, error) {
	if len(name) > MaxURL {
		return "", fmt.Errorf("znode name is %d bytes, more than the %d accepted", len(name), MaxURL)
	}
	s, err := url.QueryUnescape(name)
	if err != nil {
		return "", fmt.Errorf("not URL-encoded as Dubbo names znodes (java.net.URLEncoder): %w", err)
	}
	return s, nil
}

// ParseZnodeName decodes and parses the name of a znode under providers/ or consumers/.
func ParseZnodeName(name string) (URL, error) {
	s, err := DecodeZnodeName(name)
	if err != nil {
		return URL{}, err
	}
	return ParseURL(s)
}

// ParseURL parses a decoded Dubbo URL the way org.apache.dubbo.common.URL.valueOf does, but
// strictly: the protocol, the host and a numeric port (when present) are required to be sane.
func ParseURL(s string) (URL, error) {
	var u URL
	if len(s) > MaxURL {
		return u, fmt.Errorf("URL is %d bytes, more than the %d accepted", len(s), MaxURL)
	}
	if s == "" {
		return u, errors.New("empty URL")
	}
	rest := s
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		params, err := parseParams(rest[i+1:])
		if err != nil {
			return u, err
		}
		u.Params = params
		rest = rest[:i]
	}
	i := strings.Index(rest, "://")
	if i <= 0 {
		return u, errors.New("no protocol: want protocol://host[:port]/service?params")
	}
	u.Protocol = rest[:i]
	if !validToken(u.Protocol) {
		return u, fmt.Errorf("protocol %q is not a word", u.Protocol)
	}
	rest = rest[i+3:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		u.Path = rest[i+1:]
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		u.Username, _, _ = strings.Cut(rest[:i], ":")
		rest = rest[i+1:]
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return u, err
	}
	u.Host, u.Port = host, port
	return u, nil
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' && c != '+' {
			return false
		}
	}
	return s != ""
}

// splitHostPort reads host[:port], [v6][:port] and, as Dubbo writes it, bare v6[:port].
func splitHostPort(s string) (string, uint16, error) {
	if s == "" {
		return "", 0, errors.New("no host")
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("missing ] after bracketed IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		if !isIPv6(host) {
			return "", 0, fmt.Errorf("%q is not an IPv6 address", host)
		}
		if rest == "" {
			return host, 0, nil
		}
		if rest[0] != ':' {
			return "", 0, fmt.Errorf("unexpected %q after ]", rest)
		}
		p, err := parsePort(rest[1:])
		return host, p, err
	}
	if strings.Count(s, ":") > 1 {
		// Bare IPv6: Dubbo splits the port at the last colon. Accept that split when it leaves
		// an address and a port, else the whole string must be an address without a port.
		if i := strings.LastIndexByte(s, ':'); i > 0 {
			if isIPv6(s[:i]) {
				if p, err := parsePort(s[i+1:]); err == nil {
					return s[:i], p, nil
				}
			}
		}
		if !isIPv6(s) {
			return "", 0, fmt.Errorf("%q is neither host:port nor an IPv6 address", s)
		}
		return s, 0, nil
	}
	host, ps, hasPort := strings.Cut(s, ":")
	if !validHost(host) {
		return "", 0, fmt.Errorf("host %q is not an address or a hostname", host)
	}
	if !hasPort {
		return host, 0, nil
	}
	p, err := parsePort(ps)
	return host, p, err
}

// isIPv6 accepts an IPv6 address, with a zone only of the characters interface names use
// (a zone holding ']' or ':' would not survive being written back in brackets).
func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return false
	}
	return a.Zone() == "" || validToken(a.Zone())
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// maxParams bounds the parameters of one URL (real ones have a few dozen).
const maxParams = 1024

// parseParams reads the query as Dubbo's URLStrParser.parseDecodedParams does (2.7.x and 3.x;
// 2.7's URL.valueOf too): '&' and ';' both end a parameter, the first '=' splits name from
// value, a part without '=' is a name with an empty value, and a leading '=' is skipped (so
// "=v" is the name "v"). The last of repeated names wins, as HashMap.put decides.
func parseParams(q string) (map[string]string, error) {
	m := map[string]string{}
	for q != "" {
		var kv string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, ""
		}
		kv = strings.TrimLeft(kv, "=")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := m[k]; !seen && len(m) >= maxParams {
			return nil, fmt.Errorf("more than %d parameters", maxParams)
		}
		m[k] = v
	}
	return m, nil
}

// DefaultPrefix is the prefix Dubbo 2.6 gave provider-wide parameters ("default.version");
// Dubbo's parsers add each one under its plain name unless the plain name is present
// (URLStrParser.addParam: putIfAbsent), and 2.6's getParameter falls back to it.
const DefaultPrefix = "default."

// Param returns a parameter as Dubbo reads it: the parameter, else its "default." form, else "".
func (u URL) Param(k string) string {
	if v, ok := u.Params[k]; ok {
		return v
	}
	return u.Params[DefaultPrefix+k]
}

// boolParam is URL.getParameter(key, def): def when the value is empty, else
// Boolean.parseBoolean (true only for "true", in any case).
func (u URL) boolParam(k string, def bool) bool {
	v := u.Param(k)
	if v == "" {
		return def
	}
	return strings.EqualFold(v, "true")
}

// Interface is the service interface: the interface parameter, else the path.
func (u URL) Interface() string {
	if s := u.Param("interface"); s != "" {
		return s
	}
	return u.Path
}

// Application is the application that registered the URL, if it said.
func (u URL) Application() string { return u.Param("application") }

// Dynamic is false for persistent entries, which outlive the provider that wrote them.
// ZookeeperRegistry.doRegister creates the znode ephemeral when url.getParameter("dynamic", true)
// holds: an absent or empty value is dynamic, and anything but "true" (any case) is persistent.
func (u URL) Dynamic() bool { return u.boolParam("dynamic", true) }

// Disabled says consumers create no invoker for this provider URL, as RegistryDirectory.toInvokers
// (2.6 to 3.3, and the application-level directory) decides: a non-empty "disabled" parameter
// rules (disabled when it parses true), else a non-empty "enabled" that does not parse true.
func (u URL) Disabled() bool {
	if u.Param("disabled") != "" {
		return u.boolParam("disabled", false)
	}
	return !u.boolParam("enabled", true)
}

// Version and Group are the service's version and group (the service key's parts), "" when absent.
func (u URL) Version() string { return u.Param("version") }

// Group is the service group, "" when absent.
func (u URL) Group() string { return u.Param("group") }

// Release is the Dubbo release that registered the URL ("2.7.23", "3.2.16", "dubbo-golang-3.1.0"),
// or "" (2.6 and older do not say).
func (u URL) Release() string { return u.Param("release") }

// DubboGo says the entry was written by dubbo-go, whose interface-level registration ignores
// DUBBO_IP_TO_REGISTRY.
func (u URL) DubboGo() bool { return strings.HasPrefix(u.Release(), "dubbo-golang") }

// Addr is the host as an IP address; ok is false for hostnames.
func (u URL) Addr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(u.Host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Address is host[:port] with IPv6 bracketed when a port follows.
func (u URL) Address() string {
	h := u.Host
	if u.Port == 0 {
		return h
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(u.Port))
}

// String renders the URL as Dubbo's toFullString does (parameters sorted), without a password.
func (u URL) String() string {
	var b strings.Builder
	b.WriteString(u.Protocol)
	b.WriteString("://")
	if u.Username != "" {
		b.WriteString(u.Username)
		b.WriteByte('@')
	}
	b.WriteString(u.Address())
	b.WriteByte('/')
	b.WriteString(u.Path)
	keys := make([]string, 0, len(u.Params))
	for k := range u.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(u.Params[k])
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
