package render

// These tests feed the rendered text to the real programs that consume it: BIRD's and FRR's
// configuration parsers, and iproute2 and net-tools inside a network namespace of the test's own.
// They need root (for the namespace) and the Debian packages bird2, frr, iproute2 and net-tools,
// which `make tools` installs; a missing one fails the test with the package to install.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tool finds a program, also in the sbin directories a non-login PATH may leave out, and fails
// the test naming the Debian package that provides it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/lib/frr"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s not found: install the Debian package %s (`make tools` or `apt-get install -y %s`)", name, pkg, pkg)
	return ""
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func mustRender(t *testing.T, f Format, entries []Entry, opts Options) string {
	t.Helper()
	out, err := render(t, f, entries, opts)
	if err != nil {
		t.Fatalf("render %s: %v", f, err)
	}
	return out
}

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var all = []Entry{v4, v4Host, v6, v6Host}

// TestBIRDParsesOutput checks the bird output with BIRD's own parser (bird -p), and that the
// parser does reject a broken route, so the check has teeth.
func TestBIRDParsesOutput(t *testing.T) {
	bird := tool(t, "bird", "bird2")
	const preamble = "router id 192.0.2.1;\nprotocol device {}\n"
	for _, tc := range []struct {
		name    string
		entries []Entry
	}{{"v4 and v6", all}, {"v4 only", []Entry{v4}}, {"v6 only", []Entry{v6Host}}} {
		t.Run(tc.name, func(t *testing.T) {
			conf := writeTemp(t, "bird.conf", preamble+mustRender(t, BIRD, tc.entries, Options{}))
			mustRun(t, bird, "-p", "-c", conf)
		})
	}
	t.Run("broken config is rejected", func(t *testing.T) {
		text := strings.Replace(mustRender(t, BIRD, all, Options{}), " via 10.132.2.22;", " via;", 1)
		conf := writeTemp(t, "bird.conf", preamble+text)
		if out, err := run(t, bird, "-p", "-c", conf); err == nil {
			t.Fatalf("bird -p accepted a route without a next hop:\n%s", out)
		}
	})
}

// TestFRRParsesOutput checks the frr output with FRR's own command parser: vtysh --dryrun reads
// a configuration file without a running daemon and fails on a line it cannot parse.
func TestFRRParsesOutput(t *testing.T) {
	vtysh := tool(t, "vtysh", "frr")
	for _, remove := range []bool{false, true} {
		text := mustRender(t, FRR, all, Options{Remove: remove})
		conf := writeTemp(t, "frr.conf", text)
		if out, err := run(t, vtysh, "--dryrun", "-f", conf); err != nil || strings.Contains(out, "%") {
			t.Fatalf("vtysh --dryrun rejected the remove=%v output: %v\n%s\n--- config ---\n%s", remove, err, out, text)
		}
	}
	// What the renderer refuses to write is indeed rejected, so the check has teeth.
	conf := writeTemp(t, "frr.conf", "no ip route 10.131.10.0/24\n")
	if out, err := run(t, vtysh, "--dryrun", "-f", conf); err == nil {
		t.Fatalf("vtysh --dryrun accepted `no ip route` without a next hop:\n%s", out)
	}
}

// netns is a network namespace of the test's own with one link, d0, holding 10.132.2.1/24 and
// 2001:db8::1/64, so that 10.132.2.22 and 2001:db8::22 are valid next hops.
type netns struct {
	t    *testing.T
	ip   string
	name string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test creates a network namespace and needs root (uid %d); run it as root", os.Geteuid())
	}
	ip := tool(t, "ip", "iproute2")
	var r [4]byte
	_, _ = rand.Read(r[:])
	ns := &netns{t: t, ip: ip, name: "dubboreach-render-" + hex.EncodeToString(r[:])}
	mustRun(t, ip, "netns", "add", ns.name)
	t.Cleanup(func() {
		if out, err := run(t, ip, "netns", "del", ns.name); err != nil {
			t.Errorf("deleting network namespace %s: %v\n%s", ns.name, err, out)
		}
	})
	mustRun(t, ip, "-n", ns.name, "link", "set", "lo", "up")
	// A dummy link is the natural choice; some kernels are built without it, and a veth pair
	// whose both ends live in the namespace serves as well.
	if _, err := run(t, ip, "-n", ns.name, "link", "add", "d0", "type", "dummy"); err != nil {
		mustRun(t, ip, "-n", ns.name, "link", "add", "d0", "type", "veth", "peer", "name", "d0peer")
		mustRun(t, ip, "-n", ns.name, "link", "set", "d0peer", "up")
	}
	mustRun(t, ip, "-n", ns.name, "link", "set", "d0", "up")
	mustRun(t, ip, "-n", ns.name, "addr", "add", "10.132.2.1/24", "dev", "d0")
	mustRun(t, ip, "-n", ns.name, "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad")
	return ns
}

// exec runs a rendered script inside the namespace, stopping at the first failing line.
func (ns *netns) exec(script string) (string, error) {
	ns.t.Helper()
	return run(ns.t, ns.ip, "netns", "exec", ns.name, "sh", "-e", "-c", script)
}

func (ns *netns) mustExec(script string) {
	ns.t.Helper()
	if out, err := ns.exec(script); err != nil {
		ns.t.Fatalf("running in %s:\n%s\nfailed: %v\n%s", ns.name, script, err, out)
	}
}

// routes lists the routes of both families as "destination via next-hop" (iproute2 writes a
// host route without its /32 or /128).
func (ns *netns) routes() map[string]bool {
	ns.t.Helper()
	got := map[string]bool{}
	for _, fam := range []string{"-4", "-6"} {
		out := mustRun(ns.t, ns.ip, "-n", ns.name, fam, "route", "show")
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[1] == "via" {
				got[f[0]+" via "+f[2]] = true
			}
		}
	}
	return got
}

var wantKernelRoutes = []string{
	"10.131.10.0/24 via 10.132.2.22",
	"10.131.10.5 via 10.132.2.22",
	"2001:db8:1::/64 via 2001:db8::22",
	"2001:db8:1::5 via 2001:db8::22",
}

func (ns *netns) expectRoutes(want []string, present bool, after string) {
	ns.t.Helper()
	got := ns.routes()
	for _, r := range want {
		if got[r] != present {
			ns.t.Errorf("after %s: route %q present = %v, want %v; routes: %v", after, r, got[r], present, got)
		}
	}
}

// TestLinuxAppliesOutput runs the linux output in a namespace: the routes appear, running it
// again changes nothing, and the remove output, with and without next hops, takes them away.
func TestLinuxAppliesOutput(t *testing.T) {
	ns := newNetns(t)
	add := mustRender(t, Linux, all, Options{})
	ns.mustExec(add)
	ns.expectRoutes(wantKernelRoutes, true, "add")
	ns.mustExec(add) // replace is idempotent
	ns.expectRoutes(wantKernelRoutes, true, "adding again")

	ns.mustExec(mustRender(t, Linux, all, Options{Remove: true}))
	ns.expectRoutes(wantKernelRoutes, false, "remove")

	ns.mustExec(add)
	var hopless []Entry
	for _, e := range all {
		hopless = append(hopless, noHop(e))
	}
	ns.mustExec(mustRender(t, Linux, hopless, Options{Remove: true}))
	ns.expectRoutes(wantKernelRoutes, false, "remove without next hops")
}

// TestNetToolsAppliesOutput does the same with net-tools' route, for the routes it can express
// (not IPv6 /128, see below). Unlike `ip route replace`, `route add` fails on a route that
// exists, so adding twice is expected to fail.
func TestNetToolsAppliesOutput(t *testing.T) {
	route := tool(t, "route", "net-tools")
	ns := newNetns(t)
	entries := []Entry{v4, v4Host, v6}
	want := wantKernelRoutes[:3]
	add := mustRender(t, NetTools, entries, Options{})
	ns.mustExec(add)
	ns.expectRoutes(want, true, "add")
	if out, err := ns.exec(add); err == nil {
		t.Fatalf("route add of existing routes succeeded; docs/render.md says it fails:\n%s", out)
	}

	ns.mustExec(mustRender(t, NetTools, entries, Options{Remove: true}))
	ns.expectRoutes(want, false, "remove")

	ns.mustExec(add)
	var hopless []Entry
	for _, e := range entries {
		hopless = append(hopless, noHop(e))
	}
	ns.mustExec(mustRender(t, NetTools, hopless, Options{Remove: true}))
	ns.expectRoutes(want, false, "remove without next hops")

	// The reason the renderer refuses IPv6 /128 for net-tools: the kernel rejects the line.
	if out, err := ns.exec(route + " -A inet6 add 2001:db8:1::5/128 gw 2001:db8::22"); err == nil ||
		!strings.Contains(out, "No such device") {
		t.Fatalf("route -A inet6 add of a /128 via a gateway: %v\n%s\nwant it refused with \"No such device\"; "+
			"if this kernel accepts it, net-tools may render IPv6 host routes again", err, out)
	}
}

// TestNetnsSanity checks that the namespace starts without the routes, so the checks above
// prove that the rendered commands installed them.
func TestNetnsSanity(t *testing.T) {
	ns := newNetns(t)
	ns.expectRoutes(wantKernelRoutes, false, "creating the namespace")
	var b bytes.Buffer
	b.WriteString(mustRun(t, ns.ip, "-n", ns.name, "addr", "show", "d0"))
	if !strings.Contains(b.String(), "10.132.2.1/24") || !strings.Contains(b.String(), "2001:db8::1/64") {
		t.Fatalf("d0 lacks its addresses:\n%s", b.String())
	}
}
