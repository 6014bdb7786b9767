// Package render writes pod routes as configuration for the routers of the network team.
//
// Every format prints exactly one line per route (BIRD: one block per address family), with no
// banner, so the output can be pasted into a configuration session or piped into a shell as it
// is. Routes are written in the order given; the caller sorts.
package render

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Format names a router configuration dialect; the names are the CLI's -o values.
type Format string

// The formats, named as the CLI's -o values.
const (
	CiscoIOS  Format = "cisco-ios"
	CiscoNXOS Format = "cisco-nxos"
	Junos     Format = "junos"
	Huawei    Format = "huawei"
	H3C       Format = "h3c"
	Linux     Format = "linux"
	NetTools  Format = "net-tools"
	FRR       Format = "frr"
	BIRD      Format = "bird"
)

// Entry is one route to render. NextHop may be invalid only when removing a route whose next
// hop is not known (a stale route installed on the gateway).
type Entry struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	Node    string
}

// Options change what is rendered.
type Options struct {
	// Remove renders the commands that remove the routes instead of adding them.
	Remove bool
}

// Formats lists the router formats in the order the CLI documents them.
var Formats = []Format{CiscoIOS, CiscoNXOS, Junos, Huawei, H3C, Linux, NetTools, FRR, BIRD}

// Names returns Formats as strings, for flag help, validation and API answers.
func Names() []string {
	out := make([]string, len(Formats))
	for i, f := range Formats {
		out[i] = string(f)
	}
	return out
}

// dialect renders single routes. add and del append one line, newline included; del is called
// with an invalid next hop only when noHopRemove is true.
type dialect struct {
	add, del func(b []byte, e Entry) []byte
	// noHopRemove says the dialect can remove a route by its prefix alone.
	noHopRemove bool
	// noHopFix tells the user how to find the next hop when the dialect needs it to remove a route.
	noHopFix string
	// refuse, when set, rejects routes the dialect cannot express.
	refuse func(e Entry) error
}

var dialects = map[Format]dialect{
	CiscoIOS: {
		add: func(b []byte, e Entry) []byte { return ciscoIOS(b, "", e) },
		del: func(b []byte, e Entry) []byte { return ciscoIOS(b, "no ", e) },
		// IOS removes every route to the prefix with `no ip route PREFIX MASK`.
		noHopRemove: true,
	},
	CiscoNXOS: {
		add: func(b []byte, e Entry) []byte { return slashHop(b, "", "ip route ", "ipv6 route ", e) },
		del: func(b []byte, e Entry) []byte { return slashHop(b, "no ", "ip route ", "ipv6 route ", e) },
		// NX-OS documents the next hop as mandatory in the no form.
		noHopFix: "look it up on the switch with `show running-config | include <prefix>`",
	},
	Junos: {
		add: func(b []byte, e Entry) []byte { return junos(b, "set ", e) },
		del: func(b []byte, e Entry) []byte { return junos(b, "delete ", e) },
		// Without next-hop, delete removes the whole route statement.
		noHopRemove: true,
	},
	Huawei: {
		add: func(b []byte, e Entry) []byte { return routeStatic(b, "", true, e) },
		del: func(b []byte, e Entry) []byte { return routeStatic(b, "undo ", true, e) },
		// VRP removes every static route to the destination when the next hop is left out.
		noHopRemove: true,
	},
	H3C: {
		add: func(b []byte, e Entry) []byte { return routeStatic(b, "", false, e) },
		del: func(b []byte, e Entry) []byte { return routeStatic(b, "undo ", false, e) },
		// Comware likewise.
		noHopRemove: true,
	},
	Linux: {
		// replace, not add: re-running the script is harmless and moves a route to a new next hop.
		add:         func(b []byte, e Entry) []byte { return iproute2(b, "replace", e) },
		del:         func(b []byte, e Entry) []byte { return iproute2(b, "del", e) },
		noHopRemove: true,
	},
	NetTools: {
		add:         func(b []byte, e Entry) []byte { return netTools(b, "add", e) },
		del:         func(b []byte, e Entry) []byte { return netTools(b, "del", e) },
		noHopRemove: true,
		refuse: func(e Entry) error {
			// route(8) flags an IPv6 /128 as a host route (RTF_HOST, 0x4), which Linux reads as
			// RTNH_F_ONLINK and then refuses without a device: "SIOCADDRT: No such device".
			if e.Prefix.Addr().Is6() && e.Prefix.Bits() == 128 {
				return errors.New("net-tools cannot add or remove an IPv6 /128 route through a gateway without naming " +
					"the device (Linux reads route's host flag as onlink); use -o linux for IPv6 host routes")
			}
			return nil
		},
	},
	FRR: {
		add: func(b []byte, e Entry) []byte { return slashHop(b, "", "ip route ", "ipv6 route ", e) },
		del: func(b []byte, e Entry) []byte { return slashHop(b, "no ", "ip route ", "ipv6 route ", e) },
		// staticd rejects `no ip route PREFIX` as an incomplete command (checked with vtysh 8.4).
		noHopFix: "look it up with `vtysh -c 'show running-config staticd'`",
	},
}

// Render writes entries in the given format, in the order given.
//
// Every entry is checked before anything is written, so a bad entry never leaves half a
// configuration behind. An entry needs a valid, canonical prefix and, to be added, a next hop of
// the prefix's family; a removal without a next hop is rendered where the dialect allows it.
func Render(w io.Writer, f Format, entries []Entry, opts Options) error {
	if f == BIRD {
		if opts.Remove {
			return errors.New("render bird: --remove is not available for BIRD, whose configuration is declarative: " +
				"render the routes that should remain without --remove, replace the dubboreach_v4 and dubboreach_v6 " +
				"protocols in bird.conf with it and run `birdc configure`")
		}
		if err := check(f, entries, false, ""); err != nil {
			return err
		}
		out := newChunker(w, f)
		bird(out, entries)
		return out.close()
	}
	d, ok := dialects[f]
	if !ok {
		return fmt.Errorf("render: unknown format %q; use one of %s", f, formatList())
	}
	if err := check(f, entries, opts.Remove && d.noHopRemove, d.noHopFix); err != nil {
		return err
	}
	if d.refuse != nil {
		for i, e := range entries {
			if err := d.refuse(e); err != nil {
				return fmt.Errorf("render %s: entry %d: route %s%s: %w", f, i, e.Prefix, nodeText(e.Node), err)
			}
		}
	}
	line := d.add
	if opts.Remove {
		line = d.del
	}
	out := newChunker(w, f)
	for _, e := range entries {
		out.b = line(out.b, e)
		out.maybeFlush()
	}
	return out.close()
}

// chunker collects output and writes it in chunks: one write per route would dominate on a
// pipe or a file, and one buffer for all routes would hold megabytes for a large cluster.
type chunker struct {
	w   io.Writer
	f   Format
	b   []byte
	err error
}

const chunkSize = 32 << 10

func newChunker(w io.Writer, f Format) *chunker {
	return &chunker{w: w, f: f, b: make([]byte, 0, chunkSize+512)}
}

func (c *chunker) maybeFlush() {
	if len(c.b) >= chunkSize {
		c.flush()
	}
}

func (c *chunker) flush() {
	if c.err == nil && len(c.b) > 0 {
		if _, err := c.w.Write(c.b); err != nil {
			c.err = fmt.Errorf("render %s: writing the output: %w", c.f, err)
		}
	}
	c.b = c.b[:0]
}

func (c *chunker) close() error {
	c.flush()
	return c.err
}

func formatList() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// check validates every entry. noHopOK allows a missing next hop (a removal the dialect can do
// by prefix alone); otherwise a missing next hop is an error that says fix.
func check(f Format, entries []Entry, noHopOK bool, fix string) error {
	for i, e := range entries {
		if err := checkEntry(e, noHopOK, fix); err != nil {
			return fmt.Errorf("render %s: entry %d: %w", f, i, err)
		}
	}
	return nil
}

func checkEntry(e Entry, noHopOK bool, fix string) error {
	if !e.Prefix.IsValid() {
		return fmt.Errorf("route with next hop %s%s: prefix is missing or invalid; every route needs a destination prefix such as 10.131.10.0/24",
			hopText(e.NextHop), nodeText(e.Node))
	}
	// The route is named in errors only: building the name for every good route would cost
	// more than rendering it.
	name := func() string { return "route " + e.Prefix.String() + nodeText(e.Node) }
	if e.Prefix.Addr().Zone() != "" {
		return fmt.Errorf("%s: prefix has the zone %q; routers take no zone in a destination: drop it", name(), e.Prefix.Addr().Zone())
	}
	if m := e.Prefix.Masked(); m != e.Prefix {
		// Routers reject host bits in a destination (IOS: "Inconsistent address and mask").
		return fmt.Errorf("%s: prefix has host bits set; use %s", name(), m)
	}
	if e.Prefix.Addr().Is4In6() {
		return fmt.Errorf("%s: prefix is an IPv4-mapped IPv6 prefix; use the IPv4 prefix %s", name(),
			netip.PrefixFrom(e.Prefix.Addr().Unmap(), max(e.Prefix.Bits()-96, 0)).Masked())
	}
	h := e.NextHop
	if !h.IsValid() {
		if noHopOK {
			return nil
		}
		if fix != "" {
			return fmt.Errorf("%s: next hop is missing and this dialect cannot remove a route without it; %s", name(), fix)
		}
		return fmt.Errorf("%s: next hop is missing; a route can be added only with a next hop: give the node an address of the prefix's family", name())
	}
	if h.Zone() != "" {
		return fmt.Errorf("%s: next hop %s has a zone; these formats take a global next-hop address: use the node's global address", name(), h)
	}
	if h.Is4() != e.Prefix.Addr().Is4() || h.Is4In6() {
		fam := "IPv6"
		if e.Prefix.Addr().Is4() {
			fam = "IPv4"
		}
		return fmt.Errorf("%s: next hop %s is not an %s address; use the node's %s address", name(), h, fam, fam)
	}
	if h.IsUnspecified() || h.IsMulticast() || h.IsLoopback() {
		return fmt.Errorf("%s: next hop %s cannot forward traffic; use the node's address", name(), h)
	}
	return nil
}

func nodeText(node string) string {
	if node == "" {
		return ""
	}
	return fmt.Sprintf(" (node %q)", node)
}

func hopText(h netip.Addr) string {
	if !h.IsValid() {
		return "none"
	}
	return h.String()
}

// mask returns the dotted-quad netmask of an IPv4 prefix length.
func mask(bits int) netip.Addr {
	m := ^uint32(0) << (32 - bits) // a shift by 32 gives 0 in Go: the /0 mask
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

// hop appends " "+sep+next hop when the next hop is known.
func hop(b []byte, sep string, h netip.Addr) []byte {
	if !h.IsValid() {
		return b
	}
	b = append(b, ' ')
	b = append(b, sep...)
	return h.AppendTo(b)
}

// ciscoIOS: ip route 10.131.10.0 255.255.255.0 10.132.2.22 / ipv6 route 2001:db8:1::/64 2001:db8::22.
func ciscoIOS(b []byte, no string, e Entry) []byte {
	b = append(b, no...)
	if e.Prefix.Addr().Is4() {
		b = append(b, "ip route "...)
		b = e.Prefix.Addr().AppendTo(b)
		b = append(b, ' ')
		b = mask(e.Prefix.Bits()).AppendTo(b)
	} else {
		b = append(b, "ipv6 route "...)
		b = e.Prefix.AppendTo(b)
	}
	return append(hop(b, "", e.NextHop), '\n')
}

// slashHop: [no ]ip route 10.131.10.0/24 10.132.2.22 (NX-OS and FRR).
func slashHop(b []byte, no, v4, v6 string, e Entry) []byte {
	b = append(b, no...)
	if e.Prefix.Addr().Is4() {
		b = append(b, v4...)
	} else {
		b = append(b, v6...)
	}
	b = e.Prefix.AppendTo(b)
	return append(hop(b, "", e.NextHop), '\n')
}

// junos: set routing-options static route 10.131.10.0/24 next-hop 10.132.2.22; IPv6 static
// routes live in the inet6.0 table.
func junos(b []byte, verb string, e Entry) []byte {
	b = append(b, verb...)
	if e.Prefix.Addr().Is4() {
		b = append(b, "routing-options static route "...)
	} else {
		b = append(b, "routing-options rib inet6.0 static route "...)
	}
	b = e.Prefix.AppendTo(b)
	return append(hop(b, "next-hop ", e.NextHop), '\n')
}

// routeStatic: Huawei VRP (dotted mask) and H3C Comware (mask length) ip route-static; both
// write IPv6 as address and prefix length.
func routeStatic(b []byte, undo string, dottedMask bool, e Entry) []byte {
	b = append(b, undo...)
	a := e.Prefix.Addr()
	if a.Is4() {
		b = append(b, "ip route-static "...)
	} else {
		b = append(b, "ipv6 route-static "...)
	}
	b = a.AppendTo(b)
	b = append(b, ' ')
	if a.Is4() && dottedMask {
		b = mask(e.Prefix.Bits()).AppendTo(b)
	} else {
		b = strconv.AppendInt(b, int64(e.Prefix.Bits()), 10)
	}
	return append(hop(b, "", e.NextHop), '\n')
}

// iproute2: ip route replace 10.131.10.0/24 via 10.132.2.22 / ip -6 route del 2001:db8:1::/64.
func iproute2(b []byte, verb string, e Entry) []byte {
	if e.Prefix.Addr().Is4() {
		b = append(b, "ip route "...)
	} else {
		b = append(b, "ip -6 route "...)
	}
	b = append(b, verb...)
	b = append(b, ' ')
	b = e.Prefix.AppendTo(b)
	return append(hop(b, "via ", e.NextHop), '\n')
}

// netTools: route add -net 10.131.10.0 netmask 255.255.255.0 gw 10.132.2.22; a /32 is a -host
// route; IPv6 takes the prefix in CIDR form.
func netTools(b []byte, verb string, e Entry) []byte {
	a := e.Prefix.Addr()
	if a.Is4() {
		b = append(b, "route "...)
		b = append(b, verb...)
		if e.Prefix.Bits() == 32 {
			b = append(b, " -host "...)
			b = a.AppendTo(b)
		} else {
			b = append(b, " -net "...)
			b = a.AppendTo(b)
			b = append(b, " netmask "...)
			b = mask(e.Prefix.Bits()).AppendTo(b)
		}
	} else {
		b = append(b, "route -A inet6 "...)
		b = append(b, verb...)
		b = append(b, ' ')
		b = e.Prefix.AppendTo(b)
	}
	return append(hop(b, "gw ", e.NextHop), '\n')
}

// bird writes one BIRD 2 static protocol per address family that has routes, IPv4 first.
func bird(out *chunker, entries []Entry) {
	for _, v4 := range []bool{true, false} {
		name, channel := "dubboreach_v4", "ipv4"
		if !v4 {
			name, channel = "dubboreach_v6", "ipv6"
		}
		open := false
		for _, e := range entries {
			if e.Prefix.Addr().Is4() != v4 {
				continue
			}
			b := out.b
			if !open {
				b = append(b, "protocol static "...)
				b = append(b, name...)
				b = append(b, " {\n\t"...)
				b = append(b, channel...)
				b = append(b, ";\n"...)
				open = true
			}
			b = append(b, "\troute "...)
			b = e.Prefix.AppendTo(b)
			b = append(b, " via "...)
			b = e.NextHop.AppendTo(b)
			out.b = append(b, ";\n"...)
			out.maybeFlush()
		}
		if open {
			out.b = append(out.b, "}\n"...)
		}
	}
}
