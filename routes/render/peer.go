package render

// The router side of the BGP session with dubboreach's speaker (`dubboreach routes -o FORMAT
// --bgp-peer`): for each router format, what a router needs to peer with `dubboreach publish`
// and to take its routes safely. Validated on the real daemons for BIRD and FRR (peer_tools_test.go
// and routes/bgp's end-to-end tests); the other dialects are pinned by golden files.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dubboreach/dubboreach/routes"
)

// PasswordPlaceholder stands for a peer's TCP-MD5 password in rendered configuration: the secret
// itself is never printed (the fabric file names only its file).
const PasswordPlaceholder = "DUBBOREACH_BGP_PASSWORD"

// Session is one router's side of its BGP session with the speaker, from spec.bgp.
type Session struct {
	// Index is the router's position in spec.bgp.peers, for messages that name the field.
	Index int
	// Router is this router's address (spec.bgp.peers[i].address), RouterASN its AS.
	Router    netip.Addr
	RouterASN uint32
	// Port is where the speaker dials this router (default 179): the router listens there.
	Port int
	// Speakers are the addresses the speaker's sessions may come from: the router's neighbors.
	Speakers   []netip.Addr
	SpeakerASN uint32
	// Multihop is the eBGP multihop TTL; 0: a directly connected eBGP peer (or iBGP).
	Multihop int
	// PasswordFile names the file holding the TCP-MD5 password; empty: no password.
	PasswordFile string
	// HoldTime is the hold time the speaker proposes; 0: the BGP default.
	HoldTime time.Duration
	// GracefulRestart is the restart time the speaker advertises; 0: off.
	GracefulRestart time.Duration
	// Within is spec.bgp.within: the router accepts only prefixes inside these.
	Within []netip.Prefix
}

// IBGP reports whether the session is internal (the router has the speaker's AS).
func (s Session) IBGP() bool { return s.RouterASN == s.SpeakerASN }

// Families lists "ipv4" and/or "ipv6": the address families within has, which the speaker offers.
func (s Session) Families() []string {
	var out []string
	if len(withinOf(s.Within, true)) > 0 {
		out = append(out, "ipv4")
	}
	if len(withinOf(s.Within, false)) > 0 {
		out = append(out, "ipv6")
	}
	return out
}

// PeerSessions selects the sessions to render from spec.bgp: the peer whose address is router,
// or every peer when router is the zero Addr. speakers are the addresses the speaker's sessions
// come from; none given, spec.bgp.routerID stands in for the IPv4 peers (usual when the speaker
// binds it with --local-address). A peer with no speaker address of its family is an error.
func PeerSessions(b *routes.BGP, router netip.Addr, speakers []netip.Addr) ([]Session, error) {
	if b == nil {
		return nil, errors.New("the fabric file has no spec.bgp: the router side of a session needs podRoutes.publish: bgp and a spec.bgp block (docs/bgp.md)")
	}
	for _, a := range speakers {
		if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() {
			return nil, fmt.Errorf("speaker address %s: want the IPv4 or IPv6 address the speaker's sessions come from", a)
		}
	}
	var out []Session
	for i, p := range b.Peers {
		if router.IsValid() && p.Address != router.Unmap() {
			continue
		}
		s := Session{Index: i, Router: p.Address, RouterASN: p.ASN, Port: p.Port, SpeakerASN: b.ASN, Multihop: p.Multihop,
			PasswordFile: p.PasswordFile, HoldTime: p.HoldTime, GracefulRestart: b.GracefulRestart, Within: slices.Clone(b.Within)}
		if s.Port == 0 {
			s.Port = routes.DefaultBGPPort
		}
		for _, a := range speakers {
			if a.Is4() == p.Address.Is4() && !slices.Contains(s.Speakers, a) {
				s.Speakers = append(s.Speakers, a)
			}
		}
		if len(s.Speakers) == 0 {
			if len(speakers) > 0 || !p.Address.Is4() {
				fam := "IPv4"
				if !p.Address.Is4() {
					fam = "IPv6"
				}
				return nil, fmt.Errorf("spec.bgp.peers[%d] (%s) is an %s peer: the router needs the speaker's %s session address as its neighbor; pass it with --speaker-address", i, p.Address, fam, fam)
			}
			s.Speakers = []netip.Addr{b.RouterID}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		addrs := make([]string, len(b.Peers))
		for i, p := range b.Peers {
			addrs[i] = p.Address.String()
		}
		return nil, fmt.Errorf("%s is not a router of spec.bgp.peers; the configured peers are %s", router, strings.Join(addrs, ", "))
	}
	return out, nil
}

// peerDialects are the formats that render a session; linux and net-tools are hosts, not routers.
var peerDialects = map[Format]func(b *bytes.Buffer, s Session){
	CiscoIOS:  peerCiscoIOS,
	CiscoNXOS: peerCiscoNXOS,
	Junos:     peerJunos,
	Huawei:    func(b *bytes.Buffer, s Session) { peerVRP(b, s, huaweiWords) },
	H3C:       func(b *bytes.Buffer, s Session) { peerVRP(b, s, h3cWords) },
	FRR:       peerFRR,
	BIRD:      peerBIRD,
}

// RenderPeers writes the router side of each session in the given format; with several
// sessions (several routers), one block each, each complete for its own router.
func RenderPeers(w io.Writer, f Format, sessions []Session) error {
	if f == Linux || f == NetTools {
		return fmt.Errorf("render %s: a Linux host peers with the speaker through a routing daemon, not with ip or route commands: use -o frr or -o bird", f)
	}
	d, ok := peerDialects[f]
	if !ok {
		return fmt.Errorf("render: unknown format %q; use one of %s", f, formatList())
	}
	var b bytes.Buffer
	for i, s := range sessions {
		if err := checkSession(s); err != nil {
			return fmt.Errorf("render %s: spec.bgp.peers[%d] (%s): %w", f, s.Index, s.Router, err)
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		d(&b, s)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("render %s: writing the output: %w", f, err)
	}
	return nil
}

func checkSession(s Session) error {
	switch {
	case !s.Router.IsValid():
		return errors.New("no router address")
	case len(s.Speakers) == 0:
		return errors.New("no speaker address")
	case len(s.Within) == 0:
		return errors.New("spec.bgp.within is empty: the import filter would accept nothing")
	case s.RouterASN == 0 || s.SpeakerASN == 0:
		return errors.New("an AS number is missing")
	}
	for _, a := range s.Speakers {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			return fmt.Errorf("speaker address %s cannot be a neighbor", a)
		}
		if a.Is4() != s.Router.Is4() {
			return fmt.Errorf("speaker address %s is not of the router's family", a)
		}
	}
	for _, p := range s.Within {
		if !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return fmt.Errorf("spec.bgp.within prefix %s is not a canonical network prefix", p)
		}
	}
	return nil
}

// withinOf returns the within prefixes of one family.
func withinOf(within []netip.Prefix, v4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range within {
		if p.Addr().Is4() == v4 {
			out = append(out, p)
		}
	}
	return out
}

// maxBits is the longest prefix of p's family: /32 or /128.
func maxBits(p netip.Prefix) int { return p.Addr().BitLen() }

func keepalive(hold time.Duration) int { return max(1, int(hold/time.Second)/3) }

// notes are the comment lines that head every block: what the session is and what the router
// must know that the configuration cannot say. listenNote says how this dialect listens on a
// port other than 179 ("" when it cannot).
func notes(s Session, listenNote string) []string {
	kind := "eBGP"
	if s.IBGP() {
		kind = "iBGP"
	}
	speakers := make([]string, len(s.Speakers))
	for i, a := range s.Speakers {
		speakers[i] = a.String()
	}
	within := make([]string, len(s.Within))
	for i, p := range s.Within {
		within[i] = p.String()
	}
	out := []string{
		fmt.Sprintf("dubboreach: router %s (AS %d, spec.bgp.peers[%d]) peering with the dubboreach publish speaker (AS %d, %s)", s.Router, s.RouterASN, s.Index, s.SpeakerASN, kind),
		fmt.Sprintf("neighbor: %s, the address(es) the speaker's sessions come from; the speaker dials this router, which only listens (passive)", strings.Join(speakers, ", ")),
	}
	if s.Port != routes.DefaultBGPPort {
		if listenNote != "" {
			out = append(out, fmt.Sprintf("port: the speaker dials port %d (spec.bgp.peers[%d].port): %s", s.Port, s.Index, listenNote))
		} else {
			out = append(out, fmt.Sprintf("port: the speaker dials port %d (spec.bgp.peers[%d].port) but this router listens on 179: set the port to 179 in the fabric file", s.Port, s.Index))
		}
	}
	bounds := map[string]string{"ipv4": "/32", "ipv6": "/128"}
	var upTo []string
	for _, f := range s.Families() {
		upTo = append(upTo, bounds[f])
	}
	out = append(out, fmt.Sprintf("import: only prefixes within %s (spec.bgp.within), up to %s; everything else is rejected, and nothing is sent to the speaker", strings.Join(within, ", "), strings.Join(upTo, " and ")))
	if s.Multihop == 0 && !s.IBGP() {
		out = append(out, "next hop: each route's is its node's address, not the speaker's (a third-party next hop): accepted while the nodes share a subnet with this router; if they do not, set multihop for this peer in spec.bgp and render again")
	} else {
		out = append(out, "next hop: each route's is its node's address, not the speaker's (a third-party next hop), resolved recursively: this router needs a route to every node address")
	}
	if s.PasswordFile != "" {
		out = append(out, fmt.Sprintf("password: replace %s with the content of %s (spec.bgp.peers[%d].passwordFile); dubboreach never prints it", PasswordPlaceholder, s.PasswordFile, s.Index))
	}
	if s.GracefulRestart > 0 {
		out = append(out, fmt.Sprintf("graceful restart: the speaker asks for %d s; as a helper this router keeps its routes that long when the speaker restarts or fails over", int(s.GracefulRestart/time.Second)))
	}
	return out
}

// v6OverV4 is the note for dialects whose releases differ on IPv6 unicast over an IPv4 session.
func v6OverV4(s Session, n []string) []string {
	if s.Router.Is4() && slices.Contains(s.Families(), "ipv6") {
		n = append(n, "IPv6: carried over this IPv4 session (MP-BGP); a release that refuses an IPv4 peer in the IPv6 family needs this router's IPv6 address as a peer of its own in spec.bgp")
	}
	return n
}

func comments(b *bytes.Buffer, prefix string, lines []string) {
	for _, l := range lines {
		b.WriteString(prefix)
		b.WriteString(l)
		b.WriteByte('\n')
	}
}

// lf writes one formatted line.
func lf(b *bytes.Buffer, format string, args ...any) {
	fmt.Fprintf(b, format, args...)
	b.WriteByte('\n')
}

// ciscoPrefixLists writes IOS/NX-OS/FRR prefix lists: the within list of each family (le /32 or
// /128; a host prefix exactly) and a deny-all list for what the router sends.
func ciscoPrefixLists(b *bytes.Buffer, s Session) {
	for _, v4 := range []bool{true, false} {
		in := withinOf(s.Within, v4)
		if len(in) == 0 {
			continue
		}
		kw, name, none, all := "ip", "DUBBOREACH-IN", "DUBBOREACH-NONE", "0.0.0.0/0 le 32"
		if !v4 {
			kw, name, none, all = "ipv6", "DUBBOREACH-IN6", "DUBBOREACH-NONE6", "::/0 le 128"
		}
		for i, p := range in {
			le := ""
			if p.Bits() < maxBits(p) {
				le = " le " + strconv.Itoa(maxBits(p))
			}
			lf(b, "%s prefix-list %s seq %d permit %s%s", kw, name, 10*(i+1), p, le)
		}
		lf(b, "%s prefix-list %s seq 10 deny %s", kw, none, all)
	}
}

func inOut(v4 bool) (in, out string) {
	if v4 {
		return "DUBBOREACH-IN", "DUBBOREACH-NONE"
	}
	return "DUBBOREACH-IN6", "DUBBOREACH-NONE6"
}

// peerCiscoIOS: IOS and IOS XE.
func peerCiscoIOS(b *bytes.Buffer, s Session) {
	comments(b, "! ", notes(s, ""))
	ciscoPrefixLists(b, s)
	lf(b, "router bgp %d", s.RouterASN)
	if s.GracefulRestart > 0 {
		lf(b, " bgp graceful-restart")
	}
	for _, n := range s.Speakers {
		lf(b, " neighbor %s remote-as %d", n, s.SpeakerASN)
		lf(b, " neighbor %s description dubboreach publish", n)
		lf(b, " neighbor %s transport connection-mode passive", n)
		if s.Multihop > 0 {
			lf(b, " neighbor %s ebgp-multihop %d", n, s.Multihop)
		}
		if s.HoldTime > 0 {
			lf(b, " neighbor %s timers %d %d", n, keepalive(s.HoldTime), int(s.HoldTime/time.Second))
		}
		if s.PasswordFile != "" {
			lf(b, " neighbor %s password %s", n, PasswordPlaceholder)
		}
	}
	for _, v4 := range []bool{true, false} {
		if len(withinOf(s.Within, v4)) == 0 {
			continue
		}
		in, out := inOut(v4)
		lf(b, " address-family %s unicast", map[bool]string{true: "ipv4", false: "ipv6"}[v4])
		for _, n := range s.Speakers {
			lf(b, "  neighbor %s activate", n)
			lf(b, "  neighbor %s prefix-list %s in", n, in)
			lf(b, "  neighbor %s prefix-list %s out", n, out)
		}
		lf(b, " exit-address-family")
	}
}

// peerCiscoNXOS: NX-OS, neighbor submode.
func peerCiscoNXOS(b *bytes.Buffer, s Session) {
	comments(b, "! ", v6OverV4(s, notes(s, "")))
	lf(b, "feature bgp")
	ciscoPrefixLists(b, s)
	lf(b, "router bgp %d", s.RouterASN)
	if s.GracefulRestart > 0 {
		lf(b, "  graceful-restart-helper")
	}
	for _, n := range s.Speakers {
		lf(b, "  neighbor %s", n)
		lf(b, "    remote-as %d", s.SpeakerASN)
		lf(b, "    description dubboreach publish")
		lf(b, "    transport connection-mode passive")
		if s.Multihop > 0 {
			lf(b, "    ebgp-multihop %d", s.Multihop)
		}
		if s.HoldTime > 0 {
			lf(b, "    timers %d %d", keepalive(s.HoldTime), int(s.HoldTime/time.Second))
		}
		if s.PasswordFile != "" {
			lf(b, "    password 0 %s", PasswordPlaceholder)
		}
		for _, v4 := range []bool{true, false} {
			if len(withinOf(s.Within, v4)) == 0 {
				continue
			}
			in, out := inOut(v4)
			lf(b, "    address-family %s unicast", map[bool]string{true: "ipv4", false: "ipv6"}[v4])
			lf(b, "      prefix-list %s in", in)
			lf(b, "      prefix-list %s out", out)
		}
	}
}

// peerFRR: FRR's integrated configuration (vtysh, frr.conf). FRR requires an inbound and an
// outbound policy on eBGP sessions (RFC 8212, bgp ebgp-requires-policy): both are given.
func peerFRR(b *bytes.Buffer, s Session) {
	comments(b, "! ", notes(s, fmt.Sprintf("bgpd must listen there: add -p %d to bgpd_options in /etc/frr/daemons", s.Port)))
	ciscoPrefixLists(b, s)
	lf(b, "router bgp %d", s.RouterASN)
	for _, n := range s.Speakers {
		lf(b, " neighbor %s remote-as %d", n, s.SpeakerASN)
		lf(b, " neighbor %s description dubboreach publish", n)
		lf(b, " neighbor %s passive", n)
		if s.Multihop > 0 {
			lf(b, " neighbor %s ebgp-multihop %d", n, s.Multihop)
		}
		if s.HoldTime > 0 {
			lf(b, " neighbor %s timers %d %d", n, keepalive(s.HoldTime), int(s.HoldTime/time.Second))
		}
		if s.PasswordFile != "" {
			lf(b, " neighbor %s password %s", n, PasswordPlaceholder)
		}
		if s.GracefulRestart > 0 {
			lf(b, " neighbor %s graceful-restart-helper", n)
		}
	}
	for _, v4 := range []bool{true, false} {
		if len(withinOf(s.Within, v4)) == 0 {
			continue
		}
		in, out := inOut(v4)
		lf(b, " address-family %s unicast", map[bool]string{true: "ipv4", false: "ipv6"}[v4])
		for _, n := range s.Speakers {
			lf(b, "  neighbor %s activate", n)
			lf(b, "  neighbor %s prefix-list %s in", n, in)
			lf(b, "  neighbor %s prefix-list %s out", n, out)
		}
		lf(b, " exit-address-family")
	}
	lf(b, "exit")
}

// peerJunos: set commands for `load set terminal`; the router's own AS is routing-options
// autonomous-system, which the block checks in a comment rather than changes.
func peerJunos(b *bytes.Buffer, s Session) {
	n := notes(s, "")
	n = append(n, fmt.Sprintf("this router's AS must be %d (routing-options autonomous-system)", s.RouterASN))
	comments(b, "# ", n)
	const pol = "set policy-options policy-statement "
	for _, v4 := range []bool{true, false} {
		in := withinOf(s.Within, v4)
		if len(in) == 0 {
			continue
		}
		term, fam := "within-v4", "inet"
		if !v4 {
			term, fam = "within-v6", "inet6"
		}
		lf(b, "%sDUBBOREACH-IN term %s from family %s", pol, term, fam)
		for _, p := range in {
			lf(b, "%sDUBBOREACH-IN term %s from route-filter %s orlonger", pol, term, p)
		}
		lf(b, "%sDUBBOREACH-IN term %s then accept", pol, term)
	}
	lf(b, "%sDUBBOREACH-IN term reject then reject", pol)
	lf(b, "%sDUBBOREACH-OUT then reject", pol)
	const g = "set protocols bgp group DUBBOREACH "
	if s.IBGP() {
		lf(b, "%stype internal", g)
	} else {
		lf(b, "%stype external", g)
		lf(b, "%speer-as %d", g, s.SpeakerASN)
	}
	lf(b, "%slocal-address %s", g, s.Router)
	lf(b, "%spassive", g)
	if s.Multihop > 0 {
		lf(b, "%smultihop ttl %d", g, s.Multihop)
	}
	if s.HoldTime > 0 {
		lf(b, "%shold-time %d", g, int(s.HoldTime/time.Second))
	}
	if s.PasswordFile != "" {
		lf(b, "%sauthentication-key \"%s\"", g, PasswordPlaceholder)
	}
	if s.GracefulRestart > 0 {
		lf(b, "%sgraceful-restart", g)
	}
	for _, fam := range s.Families() {
		lf(b, "%sfamily %s unicast", g, map[string]string{"ipv4": "inet", "ipv6": "inet6"}[fam])
	}
	lf(b, "%simport DUBBOREACH-IN", g)
	lf(b, "%sexport DUBBOREACH-OUT", g)
	for _, a := range s.Speakers {
		lf(b, "%sneighbor %s description \"dubboreach publish\"", g, a)
	}
}

// vrpWords are where Huawei VRP and H3C Comware differ.
type vrpWords struct {
	prefixList4, prefixList6 string // ip ip-prefix / ip prefix-list
	peerList4, peerList6     string // peer X ip-prefix / prefix-list
	family4, family6         string // ipv4-family unicast / address-family ipv4 unicast
	password                 string // cipher / simple
}

var (
	huaweiWords = vrpWords{"ip ip-prefix", "ip ipv6-prefix", "ip-prefix", "ipv6-prefix", "ipv4-family unicast", "ipv6-family unicast", "cipher"}
	h3cWords    = vrpWords{"ip prefix-list", "ipv6 prefix-list", "prefix-list", "prefix-list", "address-family ipv4 unicast", "address-family ipv6 unicast", "simple"}
)

// peerVRP: Huawei VRP and H3C Comware 7, system view. Prefix lists take address and length.
func peerVRP(b *bytes.Buffer, s Session, w vrpWords) {
	comments(b, "# ", v6OverV4(s, notes(s, "")))
	for _, v4 := range []bool{true, false} {
		in := withinOf(s.Within, v4)
		if len(in) == 0 {
			continue
		}
		kw, none := w.prefixList4, "0.0.0.0 0 less-equal 32"
		if !v4 {
			kw, none = w.prefixList6, ":: 0 less-equal 128"
		}
		inName, outName := inOut(v4)
		for i, p := range in {
			le := ""
			if p.Bits() < maxBits(p) {
				le = " less-equal " + strconv.Itoa(maxBits(p))
			}
			lf(b, "%s %s index %d permit %s %d%s", kw, inName, 10*(i+1), p.Addr(), p.Bits(), le)
		}
		lf(b, "%s %s index 10 deny %s", kw, outName, none)
	}
	lf(b, "bgp %d", s.RouterASN)
	if s.GracefulRestart > 0 {
		lf(b, " graceful-restart")
	}
	for _, n := range s.Speakers {
		lf(b, " peer %s as-number %d", n, s.SpeakerASN)
		lf(b, " peer %s description dubboreach-publish", n)
		if s.Multihop > 0 {
			lf(b, " peer %s ebgp-max-hop %d", n, s.Multihop)
		}
		if s.HoldTime > 0 {
			lf(b, " peer %s timer keepalive %d hold %d", n, keepalive(s.HoldTime), int(s.HoldTime/time.Second))
		}
		if s.PasswordFile != "" {
			lf(b, " peer %s password %s %s", n, w.password, PasswordPlaceholder)
		}
	}
	for _, v4 := range []bool{true, false} {
		if len(withinOf(s.Within, v4)) == 0 {
			continue
		}
		fam, list := w.family4, w.peerList4
		if !v4 {
			fam, list = w.family6, w.peerList6
		}
		in, out := inOut(v4)
		lf(b, " %s", fam)
		for _, n := range s.Speakers {
			lf(b, "  peer %s enable", n)
			lf(b, "  peer %s %s %s import", n, list, in)
			lf(b, "  peer %s %s %s export", n, list, out)
		}
	}
}

// peerBIRD: BIRD 2, one bgp protocol per speaker address, import filters by family.
func peerBIRD(b *bytes.Buffer, s Session) {
	comments(b, "# ", notes(s, "BIRD listens there (local ... port)"))
	for _, v4 := range []bool{true, false} {
		in := withinOf(s.Within, v4)
		if len(in) == 0 {
			continue
		}
		set := make([]string, len(in))
		for i, p := range in {
			set[i] = p.String()
			if p.Bits() < maxBits(p) {
				set[i] += fmt.Sprintf("{%d,%d}", p.Bits(), maxBits(p))
			}
		}
		lf(b, "filter dubboreach_import_%s {", map[bool]string{true: "v4", false: "v6"}[v4])
		lf(b, "\tif net ~ [ %s ] then accept;", strings.Join(set, ", "))
		lf(b, "\treject;")
		lf(b, "}")
	}
	gateway := "recursive"
	if s.Multihop == 0 && !s.IBGP() {
		gateway = "direct"
	}
	for i, n := range s.Speakers {
		lf(b, "protocol bgp dubboreach_bgp%d {", i+1)
		lf(b, "\tdescription \"dubboreach publish %s\";", n)
		if s.Port != routes.DefaultBGPPort {
			lf(b, "\tlocal %s port %d as %d;", s.Router, s.Port, s.RouterASN)
		} else {
			lf(b, "\tlocal %s as %d;", s.Router, s.RouterASN)
		}
		lf(b, "\tneighbor %s as %d;", n, s.SpeakerASN)
		lf(b, "\tpassive on;")
		if s.Multihop > 0 {
			lf(b, "\tmultihop %d;", s.Multihop)
		}
		if s.HoldTime > 0 {
			lf(b, "\thold time %d;", int(s.HoldTime/time.Second))
		}
		if s.PasswordFile != "" {
			lf(b, "\tpassword \"%s\";", PasswordPlaceholder)
		}
		if s.GracefulRestart > 0 {
			lf(b, "\tgraceful restart aware;")
		}
		for _, v4 := range []bool{true, false} {
			if len(withinOf(s.Within, v4)) == 0 {
				continue
			}
			fam := map[bool]string{true: "v4", false: "v6"}[v4]
			lf(b, "\tip%s {", fam)
			lf(b, "\t\timport filter dubboreach_import_%s;", fam)
			lf(b, "\t\texport none;")
			lf(b, "\t\tgateway %s;", gateway)
			lf(b, "\t};")
		}
		lf(b, "}")
	}
}
