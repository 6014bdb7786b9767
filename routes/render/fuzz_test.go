package render

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// FuzzRender feeds arbitrary prefixes and next hops (valid, invalid, mixed families, zones,
// mapped addresses) to every format in both modes. Render must never panic, must write nothing
// when it returns an error, and otherwise writes exactly one line per route (BIRD: one route
// line in a block) naming the destination and, when known, the next hop.
func FuzzRender(f *testing.F) {
	f.Add([]byte{10, 131, 10, 0}, uint8(24), []byte{10, 132, 2, 22}, "", false)
	f.Add([]byte{10, 131, 10, 5}, uint8(32), []byte{10, 132, 2, 22}, "", true)
	f.Add([]byte{0x20, 1, 0xd, 0xb8, 0, 1, 15: 0}, uint8(64), []byte{0x20, 1, 0xd, 0xb8, 15: 0x22}, "", false)
	f.Add([]byte{0x20, 1, 0xd, 0xb8, 0, 1, 15: 5}, uint8(128), []byte{}, "", true)
	f.Add([]byte{10, 131, 10, 5}, uint8(24), []byte{0xfe, 0x80, 15: 1}, "eth0", false)
	f.Add([]byte{15: 0}, uint8(200), []byte{0, 0, 0, 0}, "", false)
	f.Fuzz(func(t *testing.T, prefix []byte, bits uint8, hop []byte, zone string, remove bool) {
		a, _ := netip.AddrFromSlice(prefix)
		e := Entry{Prefix: netip.PrefixFrom(a, int(bits)), Node: "n"}
		e.NextHop, _ = netip.AddrFromSlice(hop)
		if zone != "" && e.NextHop.Is6() {
			e.NextHop = e.NextHop.WithZone(zone)
		}
		for _, f := range Formats {
			var b bytes.Buffer
			err := Render(&b, f, []Entry{e}, Options{Remove: remove})
			out := b.String()
			if err != nil {
				if out != "" {
					t.Fatalf("%s: wrote %q and returned %v", f, out, err)
				}
				continue
			}
			var line string
			if f == BIRD {
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if len(lines) != 4 {
					t.Fatalf("%s: want a 4-line block, got %q", f, out)
				}
				line = lines[2]
			} else {
				if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
					t.Fatalf("%s: want exactly one line, got %q", f, out)
				}
				line = out
			}
			if !strings.Contains(line, e.Prefix.Addr().String()) {
				t.Fatalf("%s: %q does not name the destination %s", f, line, e.Prefix)
			}
			if e.NextHop.IsValid() && !strings.Contains(line, " "+e.NextHop.String()) {
				t.Fatalf("%s: %q does not name the next hop %s", f, line, e.NextHop)
			}
			if !e.NextHop.IsValid() && !remove {
				t.Fatalf("%s: rendered an add without a next hop: %q", f, out)
			}
		}
	})
}

// FuzzRenderPeers feeds arbitrary within prefixes and speaker addresses to the router side of
// every dialect. It must never panic, must write nothing when it refuses, and otherwise names
// every within prefix and every speaker, and prints the password placeholder, never a secret.
func FuzzRenderPeers(f *testing.F) {
	f.Add([]byte{10, 131, 0, 0}, uint8(16), []byte{10, 132, 2, 10}, uint8(0))
	f.Add([]byte{0xfd, 0, 1, 0x31, 15: 0}, uint8(48), []byte{10, 132, 2, 10}, uint8(2))
	f.Add([]byte{10, 131, 0, 1}, uint8(16), []byte{0xfe, 0x80, 15: 1}, uint8(255))
	f.Add([]byte{10, 200, 7, 7}, uint8(32), []byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, prefix []byte, bits uint8, speaker []byte, multihop uint8) {
		a, _ := netip.AddrFromSlice(prefix)
		sp, _ := netip.AddrFromSlice(speaker)
		s := Session{Router: netip.MustParseAddr("10.132.2.254"), RouterASN: 64513, Port: 179, SpeakerASN: 64512,
			Speakers: []netip.Addr{sp}, Multihop: int(multihop), PasswordFile: "/run/secret",
			Within: []netip.Prefix{netip.PrefixFrom(a, int(bits))}}
		for f := range peerDialects {
			var b bytes.Buffer
			if err := RenderPeers(&b, f, []Session{s}); err != nil {
				if b.Len() > 0 {
					t.Fatalf("%s: wrote %q and failed: %v", f, b.String(), err)
				}
				continue
			}
			out := b.String()
			if !strings.Contains(out, sp.String()) || !strings.Contains(out, PasswordPlaceholder) {
				t.Fatalf("%s: output lacks the speaker %s or the password placeholder:\n%s", f, sp, out)
			}
			p := s.Within[0]
			if !strings.Contains(out, p.String()) && !strings.Contains(out, p.Addr().String()+" "+strconv.Itoa(p.Bits())) {
				t.Fatalf("%s: output lacks within %s:\n%s", f, p, out)
			}
		}
	})
}
