package render

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func entry(prefix, hop string) Entry {
	e := Entry{Prefix: netip.MustParsePrefix(prefix), Node: "node-1"}
	if hop != "" {
		e.NextHop = netip.MustParseAddr(hop)
	}
	return e
}

// The four shapes of route every format is checked with.
var (
	v4     = entry("10.131.10.0/24", "10.132.2.22")
	v4Host = entry("10.131.10.5/32", "10.132.2.22")
	v6     = entry("2001:db8:1::/64", "2001:db8::22")
	v6Host = entry("2001:db8:1::5/128", "2001:db8::22")
)

func noHop(e Entry) Entry {
	e.NextHop = netip.Addr{}
	return e
}

func render(t *testing.T, f Format, entries []Entry, opts Options) (string, error) {
	t.Helper()
	var b bytes.Buffer
	err := Render(&b, f, entries, opts)
	return b.String(), err
}

// TestRenderExact pins the exact text of every format for IPv4 and IPv6 networks and hosts, when
// adding, removing, and removing without a known next hop. An empty want with wantErr set means
// the dialect cannot do it and must say so.
func TestRenderExact(t *testing.T) {
	type mode struct {
		name   string
		remove bool
		noHop  bool
	}
	add := mode{"add", false, false}
	del := mode{"remove", true, false}
	delNoHop := mode{"remove-without-next-hop", true, true}
	tests := []struct {
		format  Format
		mode    mode
		entry   Entry
		want    string
		wantErr string
	}{
		{CiscoIOS, add, v4, "ip route 10.131.10.0 255.255.255.0 10.132.2.22\n", ""},
		{CiscoIOS, add, v4Host, "ip route 10.131.10.5 255.255.255.255 10.132.2.22\n", ""},
		{CiscoIOS, add, v6, "ipv6 route 2001:db8:1::/64 2001:db8::22\n", ""},
		{CiscoIOS, add, v6Host, "ipv6 route 2001:db8:1::5/128 2001:db8::22\n", ""},
		{CiscoIOS, del, v4, "no ip route 10.131.10.0 255.255.255.0 10.132.2.22\n", ""},
		{CiscoIOS, del, v4Host, "no ip route 10.131.10.5 255.255.255.255 10.132.2.22\n", ""},
		{CiscoIOS, del, v6, "no ipv6 route 2001:db8:1::/64 2001:db8::22\n", ""},
		{CiscoIOS, del, v6Host, "no ipv6 route 2001:db8:1::5/128 2001:db8::22\n", ""},
		{CiscoIOS, delNoHop, v4, "no ip route 10.131.10.0 255.255.255.0\n", ""},
		{CiscoIOS, delNoHop, v4Host, "no ip route 10.131.10.5 255.255.255.255\n", ""},
		{CiscoIOS, delNoHop, v6, "no ipv6 route 2001:db8:1::/64\n", ""},
		{CiscoIOS, delNoHop, v6Host, "no ipv6 route 2001:db8:1::5/128\n", ""},

		{CiscoNXOS, add, v4, "ip route 10.131.10.0/24 10.132.2.22\n", ""},
		{CiscoNXOS, add, v4Host, "ip route 10.131.10.5/32 10.132.2.22\n", ""},
		{CiscoNXOS, add, v6, "ipv6 route 2001:db8:1::/64 2001:db8::22\n", ""},
		{CiscoNXOS, add, v6Host, "ipv6 route 2001:db8:1::5/128 2001:db8::22\n", ""},
		{CiscoNXOS, del, v4, "no ip route 10.131.10.0/24 10.132.2.22\n", ""},
		{CiscoNXOS, del, v4Host, "no ip route 10.131.10.5/32 10.132.2.22\n", ""},
		{CiscoNXOS, del, v6, "no ipv6 route 2001:db8:1::/64 2001:db8::22\n", ""},
		{CiscoNXOS, del, v6Host, "no ipv6 route 2001:db8:1::5/128 2001:db8::22\n", ""},
		{CiscoNXOS, delNoHop, v4, "", `render cisco-nxos: entry 0: route 10.131.10.0/24 (node "node-1"): next hop is missing and this dialect cannot remove a route without it; look it up on the switch with ` + "`show running-config | include <prefix>`"},
		{CiscoNXOS, delNoHop, v6Host, "", `route 2001:db8:1::5/128 (node "node-1"): next hop is missing and this dialect cannot remove`},

		{Junos, add, v4, "set routing-options static route 10.131.10.0/24 next-hop 10.132.2.22\n", ""},
		{Junos, add, v4Host, "set routing-options static route 10.131.10.5/32 next-hop 10.132.2.22\n", ""},
		{Junos, add, v6, "set routing-options rib inet6.0 static route 2001:db8:1::/64 next-hop 2001:db8::22\n", ""},
		{Junos, add, v6Host, "set routing-options rib inet6.0 static route 2001:db8:1::5/128 next-hop 2001:db8::22\n", ""},
		{Junos, del, v4, "delete routing-options static route 10.131.10.0/24 next-hop 10.132.2.22\n", ""},
		{Junos, del, v4Host, "delete routing-options static route 10.131.10.5/32 next-hop 10.132.2.22\n", ""},
		{Junos, del, v6, "delete routing-options rib inet6.0 static route 2001:db8:1::/64 next-hop 2001:db8::22\n", ""},
		{Junos, del, v6Host, "delete routing-options rib inet6.0 static route 2001:db8:1::5/128 next-hop 2001:db8::22\n", ""},
		{Junos, delNoHop, v4, "delete routing-options static route 10.131.10.0/24\n", ""},
		{Junos, delNoHop, v4Host, "delete routing-options static route 10.131.10.5/32\n", ""},
		{Junos, delNoHop, v6, "delete routing-options rib inet6.0 static route 2001:db8:1::/64\n", ""},
		{Junos, delNoHop, v6Host, "delete routing-options rib inet6.0 static route 2001:db8:1::5/128\n", ""},

		{Huawei, add, v4, "ip route-static 10.131.10.0 255.255.255.0 10.132.2.22\n", ""},
		{Huawei, add, v4Host, "ip route-static 10.131.10.5 255.255.255.255 10.132.2.22\n", ""},
		{Huawei, add, v6, "ipv6 route-static 2001:db8:1:: 64 2001:db8::22\n", ""},
		{Huawei, add, v6Host, "ipv6 route-static 2001:db8:1::5 128 2001:db8::22\n", ""},
		{Huawei, del, v4, "undo ip route-static 10.131.10.0 255.255.255.0 10.132.2.22\n", ""},
		{Huawei, del, v4Host, "undo ip route-static 10.131.10.5 255.255.255.255 10.132.2.22\n", ""},
		{Huawei, del, v6, "undo ipv6 route-static 2001:db8:1:: 64 2001:db8::22\n", ""},
		{Huawei, del, v6Host, "undo ipv6 route-static 2001:db8:1::5 128 2001:db8::22\n", ""},
		{Huawei, delNoHop, v4, "undo ip route-static 10.131.10.0 255.255.255.0\n", ""},
		{Huawei, delNoHop, v4Host, "undo ip route-static 10.131.10.5 255.255.255.255\n", ""},
		{Huawei, delNoHop, v6, "undo ipv6 route-static 2001:db8:1:: 64\n", ""},
		{Huawei, delNoHop, v6Host, "undo ipv6 route-static 2001:db8:1::5 128\n", ""},

		{H3C, add, v4, "ip route-static 10.131.10.0 24 10.132.2.22\n", ""},
		{H3C, add, v4Host, "ip route-static 10.131.10.5 32 10.132.2.22\n", ""},
		{H3C, add, v6, "ipv6 route-static 2001:db8:1:: 64 2001:db8::22\n", ""},
		{H3C, add, v6Host, "ipv6 route-static 2001:db8:1::5 128 2001:db8::22\n", ""},
		{H3C, del, v4, "undo ip route-static 10.131.10.0 24 10.132.2.22\n", ""},
		{H3C, del, v4Host, "undo ip route-static 10.131.10.5 32 10.132.2.22\n", ""},
		{H3C, del, v6, "undo ipv6 route-static 2001:db8:1:: 64 2001:db8::22\n", ""},
		{H3C, del, v6Host, "undo ipv6 route-static 2001:db8:1::5 128 2001:db8::22\n", ""},
		{H3C, delNoHop, v4, "undo ip route-static 10.131.10.0 24\n", ""},
		{H3C, delNoHop, v4Host, "undo ip route-static 10.131.10.5 32\n", ""},
		{H3C, delNoHop, v6, "undo ipv6 route-static 2001:db8:1:: 64\n", ""},
		{H3C, delNoHop, v6Host, "undo ipv6 route-static 2001:db8:1::5 128\n", ""},

		{Linux, add, v4, "ip route replace 10.131.10.0/24 via 10.132.2.22\n", ""},
		{Linux, add, v4Host, "ip route replace 10.131.10.5/32 via 10.132.2.22\n", ""},
		{Linux, add, v6, "ip -6 route replace 2001:db8:1::/64 via 2001:db8::22\n", ""},
		{Linux, add, v6Host, "ip -6 route replace 2001:db8:1::5/128 via 2001:db8::22\n", ""},
		{Linux, del, v4, "ip route del 10.131.10.0/24 via 10.132.2.22\n", ""},
		{Linux, del, v4Host, "ip route del 10.131.10.5/32 via 10.132.2.22\n", ""},
		{Linux, del, v6, "ip -6 route del 2001:db8:1::/64 via 2001:db8::22\n", ""},
		{Linux, del, v6Host, "ip -6 route del 2001:db8:1::5/128 via 2001:db8::22\n", ""},
		{Linux, delNoHop, v4, "ip route del 10.131.10.0/24\n", ""},
		{Linux, delNoHop, v4Host, "ip route del 10.131.10.5/32\n", ""},
		{Linux, delNoHop, v6, "ip -6 route del 2001:db8:1::/64\n", ""},
		{Linux, delNoHop, v6Host, "ip -6 route del 2001:db8:1::5/128\n", ""},

		{NetTools, add, v4, "route add -net 10.131.10.0 netmask 255.255.255.0 gw 10.132.2.22\n", ""},
		{NetTools, add, v4Host, "route add -host 10.131.10.5 gw 10.132.2.22\n", ""},
		{NetTools, add, v6, "route -A inet6 add 2001:db8:1::/64 gw 2001:db8::22\n", ""},
		{NetTools, add, v6Host, "", `render net-tools: entry 0: route 2001:db8:1::5/128 (node "node-1"): net-tools cannot add or remove an IPv6 /128 route through a gateway without naming the device (Linux reads route's host flag as onlink); use -o linux for IPv6 host routes`},
		{NetTools, del, v4, "route del -net 10.131.10.0 netmask 255.255.255.0 gw 10.132.2.22\n", ""},
		{NetTools, del, v4Host, "route del -host 10.131.10.5 gw 10.132.2.22\n", ""},
		{NetTools, del, v6, "route -A inet6 del 2001:db8:1::/64 gw 2001:db8::22\n", ""},
		{NetTools, del, v6Host, "", "net-tools cannot add or remove an IPv6 /128 route"},
		{NetTools, delNoHop, v4, "route del -net 10.131.10.0 netmask 255.255.255.0\n", ""},
		{NetTools, delNoHop, v4Host, "route del -host 10.131.10.5\n", ""},
		{NetTools, delNoHop, v6, "route -A inet6 del 2001:db8:1::/64\n", ""},
		{NetTools, delNoHop, v6Host, "", "net-tools cannot add or remove an IPv6 /128 route"},

		{FRR, add, v4, "ip route 10.131.10.0/24 10.132.2.22\n", ""},
		{FRR, add, v4Host, "ip route 10.131.10.5/32 10.132.2.22\n", ""},
		{FRR, add, v6, "ipv6 route 2001:db8:1::/64 2001:db8::22\n", ""},
		{FRR, add, v6Host, "ipv6 route 2001:db8:1::5/128 2001:db8::22\n", ""},
		{FRR, del, v4, "no ip route 10.131.10.0/24 10.132.2.22\n", ""},
		{FRR, del, v4Host, "no ip route 10.131.10.5/32 10.132.2.22\n", ""},
		{FRR, del, v6, "no ipv6 route 2001:db8:1::/64 2001:db8::22\n", ""},
		{FRR, del, v6Host, "no ipv6 route 2001:db8:1::5/128 2001:db8::22\n", ""},
		{FRR, delNoHop, v4, "", `render frr: entry 0: route 10.131.10.0/24 (node "node-1"): next hop is missing and this dialect cannot remove a route without it; look it up with ` + "`vtysh -c 'show running-config staticd'`"},
		{FRR, delNoHop, v6, "", `route 2001:db8:1::/64 (node "node-1"): next hop is missing and this dialect cannot remove`},

		{BIRD, add, v4, "protocol static dubboreach_v4 {\n\tipv4;\n\troute 10.131.10.0/24 via 10.132.2.22;\n}\n", ""},
		{BIRD, add, v4Host, "protocol static dubboreach_v4 {\n\tipv4;\n\troute 10.131.10.5/32 via 10.132.2.22;\n}\n", ""},
		{BIRD, add, v6, "protocol static dubboreach_v6 {\n\tipv6;\n\troute 2001:db8:1::/64 via 2001:db8::22;\n}\n", ""},
		{BIRD, add, v6Host, "protocol static dubboreach_v6 {\n\tipv6;\n\troute 2001:db8:1::5/128 via 2001:db8::22;\n}\n", ""},
		{BIRD, del, v4, "", "render bird: --remove is not available for BIRD, whose configuration is declarative: render the routes that should remain without --remove, replace the dubboreach_v4 and dubboreach_v6 protocols in bird.conf with it and run `birdc configure`"},
		{BIRD, delNoHop, v6, "", "render bird: --remove is not available for BIRD"},
	}
	seen := map[Format]bool{}
	for _, tt := range tests {
		seen[tt.format] = true
		e := tt.entry
		if tt.mode.noHop {
			e = noHop(e)
		}
		t.Run(string(tt.format)+"/"+tt.mode.name+"/"+tt.entry.Prefix.String(), func(t *testing.T) {
			got, err := render(t, tt.format, []Entry{e}, Options{Remove: tt.mode.remove})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if got != "" {
					t.Fatalf("wrote %q alongside the error; want nothing", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	for _, f := range Formats {
		if !seen[f] {
			t.Errorf("format %s has no exact-text case", f)
		}
	}
}

// TestRenderAcceptance is the case of issue 2: the gateway of the flannel cluster.
func TestRenderAcceptance(t *testing.T) {
	got, err := render(t, CiscoIOS, []Entry{v4}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "ip route 10.131.10.0 255.255.255.0 10.132.2.22\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestRenderKeepsOrder checks that routes come out in the order given, families mixed, and that
// BIRD groups them per family keeping the order inside each block.
func TestRenderKeepsOrder(t *testing.T) {
	in := []Entry{v6, entry("10.131.73.0/24", "10.132.2.23"), v6Host, v4}
	tests := []struct {
		format Format
		want   string
	}{
		{CiscoIOS, "ipv6 route 2001:db8:1::/64 2001:db8::22\n" +
			"ip route 10.131.73.0 255.255.255.0 10.132.2.23\n" +
			"ipv6 route 2001:db8:1::5/128 2001:db8::22\n" +
			"ip route 10.131.10.0 255.255.255.0 10.132.2.22\n"},
		{Linux, "ip -6 route replace 2001:db8:1::/64 via 2001:db8::22\n" +
			"ip route replace 10.131.73.0/24 via 10.132.2.23\n" +
			"ip -6 route replace 2001:db8:1::5/128 via 2001:db8::22\n" +
			"ip route replace 10.131.10.0/24 via 10.132.2.22\n"},
		{BIRD, "protocol static dubboreach_v4 {\n" +
			"\tipv4;\n" +
			"\troute 10.131.73.0/24 via 10.132.2.23;\n" +
			"\troute 10.131.10.0/24 via 10.132.2.22;\n" +
			"}\n" +
			"protocol static dubboreach_v6 {\n" +
			"\tipv6;\n" +
			"\troute 2001:db8:1::/64 via 2001:db8::22;\n" +
			"\troute 2001:db8:1::5/128 via 2001:db8::22;\n" +
			"}\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			got, err := render(t, tt.format, in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestRenderEmpty checks that no routes print nothing at all, in every format.
func TestRenderEmpty(t *testing.T) {
	for _, f := range Formats {
		got, err := render(t, f, nil, Options{})
		if err != nil || got != "" {
			t.Errorf("%s: got %q, %v; want no output and no error", f, got, err)
		}
	}
}

// TestRenderRejects checks that bad input is an error naming the route, the field and the fix,
// and that nothing is written when any entry is bad, even after good ones.
func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name    string
		format  Format
		entries []Entry
		remove  bool
		wantErr string
	}{
		{"unknown format", "cisco", []Entry{v4}, false,
			`render: unknown format "cisco"; use one of cisco-ios, cisco-nxos, junos, huawei, h3c, linux, net-tools, frr, bird`},
		{"add without next hop", CiscoIOS, []Entry{v4, noHop(v6)}, false,
			`render cisco-ios: entry 1: route 2001:db8:1::/64 (node "node-1"): next hop is missing; a route can be added only with a next hop: give the node an address of the prefix's family`},
		{"bird without next hop", BIRD, []Entry{noHop(v4)}, false,
			`render bird: entry 0: route 10.131.10.0/24 (node "node-1"): next hop is missing`},
		{"invalid prefix", Linux, []Entry{{NextHop: netip.MustParseAddr("10.132.2.22"), Node: "n2"}}, false,
			`render linux: entry 0: route with next hop 10.132.2.22 (node "n2"): prefix is missing or invalid; every route needs a destination prefix such as 10.131.10.0/24`},
		{"invalid prefix on remove", Junos, []Entry{{}}, true,
			`render junos: entry 0: route with next hop none: prefix is missing or invalid`},
		{"host bits", Huawei, []Entry{entry("10.131.10.5/24", "10.132.2.22")}, false,
			`render huawei: entry 0: route 10.131.10.5/24 (node "node-1"): prefix has host bits set; use 10.131.10.0/24`},
		{"host bits on remove", H3C, []Entry{noHop(entry("2001:db8:1::1/64", ""))}, true,
			`route 2001:db8:1::1/64 (node "node-1"): prefix has host bits set; use 2001:db8:1::/64`},
		{"IPv4 prefix, IPv6 next hop", FRR, []Entry{entry("10.131.10.0/24", "2001:db8::22")}, false,
			`render frr: entry 0: route 10.131.10.0/24 (node "node-1"): next hop 2001:db8::22 is not an IPv4 address; use the node's IPv4 address`},
		{"IPv6 prefix, IPv4 next hop", CiscoNXOS, []Entry{entry("2001:db8:1::/64", "10.132.2.22")}, true,
			`route 2001:db8:1::/64 (node "node-1"): next hop 10.132.2.22 is not an IPv6 address; use the node's IPv6 address`},
		{"mapped next hop", NetTools, []Entry{entry("10.131.10.0/24", "::ffff:10.132.2.22")}, false,
			`next hop ::ffff:10.132.2.22 is not an IPv4 address`},
		{"mapped prefix", CiscoIOS, []Entry{entry("::ffff:10.131.10.0/120", "2001:db8::22")}, false,
			`prefix is an IPv4-mapped IPv6 prefix; use the IPv4 prefix 10.131.10.0/24`},
		{"zoned next hop", Linux, []Entry{entry("2001:db8:1::/64", "fe80::1%eth0")}, false,
			`next hop fe80::1%eth0 has a zone; these formats take a global next-hop address`},
		{"unspecified next hop", Junos, []Entry{entry("10.131.10.0/24", "0.0.0.0")}, false,
			`next hop 0.0.0.0 cannot forward traffic; use the node's address`},
		{"loopback next hop", BIRD, []Entry{entry("2001:db8:1::/64", "::1")}, false,
			`next hop ::1 cannot forward traffic`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(t, tt.format, tt.entries, Options{Remove: tt.remove})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if got != "" {
				t.Fatalf("wrote %q before failing; want nothing", got)
			}
		})
	}
}

// TestRenderLarge checks that output larger than one write chunk is complete and in order.
func TestRenderLarge(t *testing.T) {
	entries := manyEntries(5000)
	var want strings.Builder
	for _, e := range entries {
		one, err := render(t, NetTools, []Entry{e}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want.WriteString(one)
	}
	var w countingWriter
	if err := Render(&w, NetTools, entries, Options{}); err != nil {
		t.Fatal(err)
	}
	if w.buf.String() != want.String() {
		t.Fatalf("large output differs from route-by-route output (%d vs %d bytes)", w.buf.Len(), want.Len())
	}
	if w.writes < 2 {
		t.Fatalf("%d bytes written in %d writes; want them chunked", w.buf.Len(), w.writes)
	}
}

// TestRenderLargeBIRD checks that a BIRD configuration larger than one write chunk keeps its two
// blocks whole: every route inside its family's block.
func TestRenderLargeBIRD(t *testing.T) {
	entries := manyEntries(5000)
	var w countingWriter
	if err := Render(&w, BIRD, entries, Options{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if want := len(entries) + 6; len(lines) != want {
		t.Fatalf("%d lines, want %d", len(lines), want)
	}
	v4 := 5000 - 5000/4
	for i, l := range lines {
		switch {
		case i == 0:
			if l != "protocol static dubboreach_v4 {" {
				t.Fatalf("line %d = %q", i, l)
			}
		case i == v4+2:
			if l != "}" {
				t.Fatalf("line %d = %q, want the end of the IPv4 block", i, l)
			}
		case i == v4+3:
			if l != "protocol static dubboreach_v6 {" {
				t.Fatalf("line %d = %q", i, l)
			}
		case i == len(lines)-1:
			if l != "}" {
				t.Fatalf("last line = %q", l)
			}
		case i == 1 || i == v4+4:
			continue
		default:
			if !strings.HasPrefix(l, "\troute ") || strings.Contains(l, ":") != (i > v4+3) {
				t.Fatalf("line %d = %q is not a route of its block's family", i, l)
			}
		}
	}
	if w.writes < 2 {
		t.Fatalf("%d bytes written in %d writes; want them chunked", w.buf.Len(), w.writes)
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestRenderWriteError checks that a failing writer is reported, not swallowed.
func TestRenderWriteError(t *testing.T) {
	for _, f := range Formats {
		err := Render(failingWriter{}, f, []Entry{v4}, Options{})
		if err == nil || !strings.Contains(err.Error(), "render "+string(f)+": writing the output: disk full") {
			t.Errorf("%s: error = %v, want the write error", f, err)
		}
	}
}

// manyEntries returns n distinct routes, a quarter of them IPv6, as a large cluster has.
func manyEntries(n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		if i%4 == 3 {
			out[i] = Entry{
				Prefix:  netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, byte(i >> 8), byte(i)}), 64),
				NextHop: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i%250 + 2)}),
				Node:    "node",
			}
			continue
		}
		out[i] = Entry{
			Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(128 + i>>10), byte(i >> 2), byte(i%4) << 6}), 26),
			NextHop: netip.AddrFrom4([4]byte{10, 132, byte(i >> 8 % 4), byte(i%250 + 2)}),
			Node:    "node",
		}
	}
	return out
}

func BenchmarkRender(b *testing.B) {
	entries := manyEntries(25000)
	for _, f := range []Format{CiscoIOS, BIRD} {
		b.Run(string(f), func(b *testing.B) {
			var w countingWriter
			b.ReportAllocs()
			for b.Loop() {
				w.buf.Reset()
				if err := Render(&w, f, entries, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(w.buf.Len()))
		})
	}
}
