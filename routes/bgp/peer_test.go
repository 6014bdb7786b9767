package bgp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp/bgptest"
	"github.com/dubboreach/dubboreach/routes/render"
)

// birdHarness is what a test BIRD needs around the rendered router side: an identity, the
// device protocol, and routes to the node addresses (via lo) so that third-party next hops
// resolve, as the router's connected subnets or IGP would resolve them in a real fabric.
const birdHarness = `router id 10.132.2.254;
log stderr all;
protocol device { scan time 1; }
protocol static nodes4 { ipv4; route 10.132.0.0/16 via "lo"; }
protocol static nodes6 { ipv6; route fd00:132::/48 via "lo"; }
`

// TestBGPRouterSideBIRD proves the rendered router side (`routes -o bird --bgp-peer`) on a real
// BIRD 2: configured with nothing but the rendered block and the harness lines above, BIRD
// takes a real session from the speaker (eBGP multihop with TCP-MD5 on a non-default port, and
// iBGP), accepts the routes inside within, IPv4 and IPv6 (MP-BGP) with the node as next hop,
// and rejects the ones outside it. The speaker under test is given a wider within than the
// router, as a misconfigured one would be, so that the outside routes really reach the router:
// the filter, not the speaker, keeps them out.
func TestBGPRouterSideBIRD(t *testing.T) {
	for _, tc := range []struct {
		name      string
		router    netip.Addr
		routerASN uint32
		multihop  int
		password  string
	}{
		{"ebgp multihop md5", netip.MustParseAddr("127.0.0.21"), 64513, 2, "s3cret-md5"},
		{"ibgp", netip.MustParseAddr("127.0.0.22"), 64512, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t, tc.router)
			peer := routes.BGPPeer{Address: tc.router, ASN: tc.routerASN, Port: port, Multihop: tc.multihop, HoldTime: 9 * time.Second}
			if tc.password != "" {
				peer.PasswordFile = filepath.Join(t.TempDir(), "password")
				require.NoError(t, os.WriteFile(peer.PasswordFile, []byte(tc.password+"\n"), 0o600))
			}
			fabric := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), GracefulRestart: 30 * time.Second,
				Within: []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16"), netip.MustParsePrefix("fd00:131::/48")},
				Peers:  []routes.BGPPeer{peer}}

			ss, err := render.PeerSessions(fabric, tc.router, []netip.Addr{speakerAddr})
			require.NoError(t, err)
			var out bytes.Buffer
			require.NoError(t, render.RenderPeers(&out, render.BIRD, ss))
			conf := out.String()
			if tc.password != "" {
				require.NotContains(t, conf, tc.password, "the secret is never rendered")
				require.Contains(t, conf, render.PasswordPlaceholder)
				conf = strings.ReplaceAll(conf, render.PasswordPlaceholder, tc.password) // what the operator does
			}
			b := bgptest.StartBirdConfig(t, tc.router, port, birdHarness+conf)

			wide := *fabric
			wide.Within = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/16")}
			s := startSpeaker(t, &wide)
			eventually(t, 30*time.Second, "the session with the rendered BIRD to be Established", func() bool {
				return b.ProtocolEstablished("dubboreach_bgp1")
			})
			in := []routes.Route{
				route("10.131.10.0/24", "10.132.2.11", "node-a"),
				route("10.131.9.7/32", "10.132.2.12", "node-b"), // a Calico borrowed address: up to /32
				route("fd00:131:0:a::/64", "fd00:132::11", "node-a"),
			}
			out4, out6 := route("10.200.0.0/24", "10.132.2.13", "node-c"), route("fd00:200::/64", "fd00:132::13", "node-c")
			_, err = s.Sync(append(append([]routes.Route(nil), in...), out4, out6))
			require.NoError(t, err)
			want := map[netip.Prefix]netip.Addr{}
			for _, r := range in {
				want[r.Prefix] = r.NextHop
			}
			eventually(t, 15*time.Second, "BIRD to hold exactly the routes inside within, via their nodes", func() bool {
				return maps.Equal(b.ProtocolRoutes("dubboreach_bgp1"), want)
			})
			// The outside routes were sent (they sit in the Adj-RIB-Out of the Established session):
			// BIRD's import filter is what rejected them.
			eventually(t, 15*time.Second, "the speaker's status to show the outside routes sent", func() bool {
				st, err := s.Status()
				require.NoError(t, err)
				return st.Published(out4) && st.Published(out6)
			})
			assert.Equal(t, want, b.ProtocolRoutes("dubboreach_bgp1"), "an outside route got past the rendered filter")
			// And the accepted routes are usable: resolved, not unreachable.
			table, err := b.Birdc("show", "route", "protocol", "dubboreach_bgp1")
			require.NoError(t, err)
			assert.NotContains(t, table, "unreachable", table)
			assert.Equal(t, 3, strings.Count(table, "unicast"), table)
		})
	}
}

// bgpd is a real FRR bgpd, alone (no zebra: it installs nothing, and takes next hops as
// resolved), read back through vtysh on its own vty socket.
type bgpd struct {
	t   *testing.T
	dir string
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startBgpd(t *testing.T, addr netip.Addr, port int, conf string) *bgpd {
	t.Helper()
	bin := "/usr/lib/frr/bgpd"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found: install the Debian package frr (hack/install-tools.sh)", bin)
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Fatal("vtysh not found: install the Debian package frr (hack/install-tools.sh)")
	}
	d := &bgpd{t: t, dir: t.TempDir(), log: &bytes.Buffer{}}
	path := filepath.Join(d.dir, "bgpd.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	// -Z: no zebra; -S: no privilege drop (the test runs as root); -P 0: no TCP vty.
	d.cmd = exec.Command(bin, "-f", path, "-i", filepath.Join(d.dir, "bgpd.pid"), "--vty_socket", d.dir,
		"-Z", "-S", "-P", "0", "-p", strconv.Itoa(port), "-l", addr.String(), "--log", "stdout")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	require.NoError(t, d.cmd.Start())
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
		if t.Failed() {
			t.Logf("bgpd log:\n%s", d.log.String())
		}
	})
	eventually(t, 10*time.Second, "bgpd's vty socket", func() bool {
		_, err := d.vtysh("show bgp summary json")
		return err == nil
	})
	return d
}

func (d *bgpd) vtysh(cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", d.dir, "-c", cmd).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vtysh -c %q: %w: %s", cmd, err, out)
	}
	return out, nil
}

func (d *bgpd) established(neighbor netip.Addr) bool {
	out, err := d.vtysh("show bgp neighbors " + neighbor.String() + " json")
	if err != nil {
		return false
	}
	var doc map[string]struct {
		State string `json:"bgpState"`
	}
	return json.Unmarshal(out, &doc) == nil && doc[neighbor.String()].State == "Established"
}

// routes reads bgpd's valid BGP routes of both families: prefix -> next hop.
func (d *bgpd) routes() map[netip.Prefix]netip.Addr {
	d.t.Helper()
	got := map[netip.Prefix]netip.Addr{}
	for _, fam := range []string{"ipv4", "ipv6"} {
		out, err := d.vtysh("show bgp " + fam + " unicast json")
		require.NoError(d.t, err)
		var doc struct {
			Routes map[string][]struct {
				Valid    bool `json:"valid"`
				Nexthops []struct {
					IP    string `json:"ip"`
					Scope string `json:"scope"`
				} `json:"nexthops"`
			} `json:"routes"`
		}
		require.NoError(d.t, json.Unmarshal(out, &doc), "%s", out)
		for p, paths := range doc.Routes {
			for _, path := range paths {
				if !path.Valid {
					continue
				}
				for _, nh := range path.Nexthops {
					if nh.Scope == "" || nh.Scope == "global" {
						got[netip.MustParsePrefix(p)] = netip.MustParseAddr(nh.IP)
					}
				}
			}
		}
	}
	return got
}

// TestBGPRouterSideFRR does for FRR what TestBGPRouterSideBIRD does for BIRD: bgpd configured with the
// rendered `routes -o frr --bgp-peer` block (plus its router ID) takes the speaker's session,
// with TCP-MD5 and eBGP multihop, keeps the routes inside within via their nodes and rejects the
// ones outside, which a wider speaker did send.
func TestBGPRouterSideFRR(t *testing.T) {
	router := netip.MustParseAddr("127.0.0.23")
	port := freePort(t, router)
	const password = "s3cret-md5"
	pw := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pw, []byte(password+"\n"), 0o600))
	fabric := &routes.BGP{ASN: 64512, RouterID: netip.MustParseAddr("10.132.2.10"), GracefulRestart: 30 * time.Second,
		Within: []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16"), netip.MustParsePrefix("fd00:131::/48")},
		Peers:  []routes.BGPPeer{{Address: router, ASN: 64513, Port: port, Multihop: 2, HoldTime: 9 * time.Second, PasswordFile: pw}}}
	ss, err := render.PeerSessions(fabric, router, []netip.Addr{speakerAddr})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, render.RenderPeers(&out, render.FRR, ss))
	require.NotContains(t, out.String(), password)
	conf := "router bgp 64513\n bgp router-id 10.132.2.254\nexit\n" +
		strings.ReplaceAll(out.String(), render.PasswordPlaceholder, password)
	d := startBgpd(t, router, port, conf)

	wide := *fabric
	wide.Within = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/16")}
	s := startSpeaker(t, &wide)
	eventually(t, 30*time.Second, "the session with the rendered bgpd to be Established", func() bool { return d.established(speakerAddr) })
	in := []routes.Route{
		route("10.131.10.0/24", "10.132.2.11", "node-a"),
		route("10.131.9.7/32", "10.132.2.12", "node-b"),
		route("fd00:131:0:a::/64", "fd00:132::11", "node-a"),
	}
	out4, out6 := route("10.200.0.0/24", "10.132.2.13", "node-c"), route("fd00:200::/64", "fd00:132::13", "node-c")
	_, err = s.Sync(append(append([]routes.Route(nil), in...), out4, out6))
	require.NoError(t, err)
	want := map[netip.Prefix]netip.Addr{}
	for _, r := range in {
		want[r.Prefix] = r.NextHop
	}
	eventually(t, 15*time.Second, "bgpd to hold exactly the routes inside within, via their nodes", func() bool {
		return maps.Equal(d.routes(), want)
	})
	eventually(t, 15*time.Second, "the speaker's status to show the outside routes sent", func() bool {
		st, err := s.Status()
		require.NoError(t, err)
		return st.Published(out4) && st.Published(out6)
	})
	assert.Equal(t, want, d.routes(), "an outside route got past the rendered prefix lists")
}

// TestBGPRouterSideBIRDDirect proves the single-hop eBGP case on a link of its own: BIRD in a
// network namespace, a veth pair to the test's namespace (198.18.77.0/24 and fd00:1877::/64,
// benchmark and ULA ranges no other test uses), the speaker dialling across it with TTL 1.
// With the rendered block (gateway direct), BIRD takes the third-party next hops that lie on the
// shared subnet, IPv4 and IPv6, and does not install one that lies off it: the docs' "accepted
// while the nodes share a subnet with this router".
func TestBGPRouterSideBIRDDirect(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test creates a network namespace and a veth pair and needs root (uid %d)", os.Geteuid())
	}
	ns, hostIf := newLink(t)
	router, speaker := netip.MustParseAddr("198.18.77.254"), netip.MustParseAddr("198.18.77.10")
	fabric := &routes.BGP{ASN: 64512, RouterID: speaker,
		Within: []netip.Prefix{netip.MustParsePrefix("10.131.0.0/16"), netip.MustParsePrefix("fd00:131::/48")},
		Peers:  []routes.BGPPeer{{Address: router, ASN: 64513, Port: routes.DefaultBGPPort, HoldTime: 9 * time.Second}}}
	ss, err := render.PeerSessions(fabric, router, nil) // the router ID is the session address here
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, render.RenderPeers(&out, render.BIRD, ss))
	require.Contains(t, out.String(), "gateway direct;")
	b := bgptest.StartBirdConfigNetns(t, ns, router, routes.DefaultBGPPort,
		"router id 198.18.77.254;\nlog stderr all;\nprotocol device { scan time 1; }\n"+out.String())

	wide := *fabric
	wide.Within = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/16")}
	s, err := Start(context.Background(), &wide, Options{LocalAddress: speaker, ConnectRetry: time.Second, Log: testr.NewWithInterface(t, testr.Options{})})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	eventually(t, 30*time.Second, "the single-hop session across "+hostIf+" to be Established", func() bool {
		return b.ProtocolEstablished("dubboreach_bgp1")
	})
	onLink := []routes.Route{
		route("10.131.10.0/24", "198.18.77.11", "node-a"),
		route("10.131.9.7/32", "198.18.77.12", "node-b"),
		route("fd00:131:0:a::/64", "fd00:1877::11", "node-a"),
	}
	offLink := route("10.131.20.0/24", "198.51.100.7", "node-far") // inside within, next hop off the subnet
	outside := route("10.200.0.0/24", "198.18.77.13", "node-c")
	_, err = s.Sync(append(append([]routes.Route(nil), onLink...), offLink, outside))
	require.NoError(t, err)
	eventually(t, 15*time.Second, "the speaker's status to show every route sent", func() bool {
		st, err := s.Status()
		require.NoError(t, err)
		return st.Published(offLink) && st.Published(outside) && st.Published(onLink[2])
	})
	want := map[netip.Prefix]string{}
	for _, r := range onLink {
		want[r.Prefix] = "via " + r.NextHop.String()
	}
	eventually(t, 15*time.Second, "BIRD to install exactly the on-link routes inside within, via their nodes", func() bool {
		return maps.Equal(b.Installed("dubboreach_bgp1"), want)
	})
	assert.NotContains(t, b.Installed("dubboreach_bgp1"), outside.Prefix, "outside within")
	assert.NotContains(t, b.Installed("dubboreach_bgp1"), offLink.Prefix, "a next hop off the shared subnet was installed")
}

// newLink makes a network namespace joined to the test's own by a veth pair: this side holds
// 198.18.77.10/24 and fd00:1877::10/64, the namespace's side .254 and ::fe. Both go at cleanup.
func newLink(t *testing.T) (ns, hostIf string) {
	t.Helper()
	var r [3]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	ns, hostIf, nsIf := "dubboreach-peer-"+id, "drp"+id, "drr"+id
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	ip("link", "set", nsIf, "netns", ns)
	ip("addr", "add", "198.18.77.10/24", "dev", hostIf)
	ip("-6", "addr", "add", "fd00:1877::10/64", "dev", hostIf, "nodad")
	ip("link", "set", hostIf, "up")
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "addr", "add", "198.18.77.254/24", "dev", nsIf)
	ip("-n", ns, "-6", "addr", "add", "fd00:1877::fe/64", "dev", nsIf, "nodad")
	ip("-n", ns, "link", "set", nsIf, "up")
	return ns, hostIf
}
