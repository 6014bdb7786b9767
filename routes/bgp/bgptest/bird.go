// Package bgptest runs real BGP routers for tests: BIRD 2 (Debian's bird2) on a loopback
// address, peering passively with the speaker under test, read back through birdc. It is used by
// routes/bgp's own tests and by the end-to-end test of `dubboreach publish` (internal/cli).
package bgptest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bird is a real BIRD 2 daemon on loopback.
type Bird struct {
	Addr netip.Addr // where it listens
	Port int

	t    testing.TB
	sock string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	once sync.Once
	// netns is the network namespace BIRD runs in; empty: the test's own.
	netns string
}

// BirdConfig says whom BIRD peers with.
type BirdConfig struct {
	Addr       netip.Addr // BIRD's own address (127.0.0.x), where it listens
	ASN        uint32
	Peer       netip.Addr // the speaker's address
	PeerASN    uint32
	Password   string       // TCP-MD5, empty: none
	NextHopNet netip.Prefix // where announced next hops lie (resolved via lo)
}

// StartBird runs `bird -f` with a configuration accepting everything from the speaker into its
// table (so that the test sees what was announced, filtered or not), on a free port of Addr.
// It is killed when the test ends.
func StartBird(t testing.TB, c BirdConfig) *Bird {
	t.Helper()
	for _, tool := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/install-tools.sh (Debian package bird2)", tool)
		}
	}
	dir := t.TempDir()
	b := &Bird{t: t, sock: filepath.Join(dir, "bird.ctl"), Addr: c.Addr, Port: FreePort(t, c.Addr), log: &bytes.Buffer{}}
	pw := ""
	if c.Password != "" {
		pw = fmt.Sprintf("  password %q;\n", c.Password)
	}
	conf := fmt.Sprintf(`router id %s;
log stderr all;
protocol device { scan time 1; }
ipv4 table nh4;
protocol static nexthops { ipv4 { table nh4; }; route %s via "lo"; }
protocol bgp speaker {
  local %s port %d as %d;
  neighbor %s as %d;
  passive on;
  multihop;
  hold time 9;
%s  ipv4 { import all; export none; igp table nh4; };
}
`, c.Addr, c.NextHopNet, c.Addr, b.Port, c.ASN, c.Peer, c.PeerASN, pw)
	b.start(dir, conf)
	return b
}

// StartBirdConfig runs `bird -f` with a whole configuration of the caller's, such as a rendered
// router side plus the lines a test needs around it; addr and port are where that configuration
// makes BIRD listen. It is killed when the test ends.
func StartBirdConfig(t testing.TB, addr netip.Addr, port int, conf string) *Bird {
	t.Helper()
	for _, tool := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/install-tools.sh (Debian package bird2)", tool)
		}
	}
	dir := t.TempDir()
	b := &Bird{t: t, sock: filepath.Join(dir, "bird.ctl"), Addr: addr, Port: port, log: &bytes.Buffer{}}
	b.start(dir, conf)
	return b
}

// StartBirdConfigNetns is StartBirdConfig with BIRD inside the network namespace netns (ip netns),
// for a router on a link of its own; birdc still reaches it through its socket file.
func StartBirdConfigNetns(t testing.TB, netns string, addr netip.Addr, port int, conf string) *Bird {
	t.Helper()
	for _, tool := range []string{"bird", "birdc", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/install-tools.sh (Debian packages bird2, iproute2)", tool)
		}
	}
	dir := t.TempDir()
	b := &Bird{t: t, sock: filepath.Join(dir, "bird.ctl"), Addr: addr, Port: port, log: &bytes.Buffer{}, netns: netns}
	b.start(dir, conf)
	return b
}

func (b *Bird) start(dir, conf string) {
	t := b.t
	t.Helper()
	path := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"bird", "-c", path, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"), "-f"}
	if b.netns != "" {
		args = append([]string{"ip", "netns", "exec", b.netns}, args...)
	}
	b.cmd = exec.Command(args[0], args[1:]...)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting bird: %v", err)
	}
	t.Cleanup(b.Stop)
	Eventually(t, 10*time.Second, "BIRD's control socket", func() bool {
		_, err := b.Birdc("show status")
		return err == nil
	})
}

// Stop kills BIRD (idempotent); its log is printed if the test failed.
func (b *Bird) Stop() {
	b.once.Do(func() {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
		if b.t.Failed() {
			b.t.Logf("bird log:\n%s", b.log.String())
		}
	})
}

// Birdc runs birdc against this BIRD.
func (b *Bird) Birdc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Established reports whether BIRD's session with the speaker is up.
func (b *Bird) Established() bool { return b.ProtocolEstablished("speaker") }

// ProtocolEstablished reports whether the BGP protocol name of BIRD's configuration is up.
func (b *Bird) ProtocolEstablished(name string) bool {
	out, err := b.Birdc("show", "protocols", name)
	return err == nil && strings.Contains(out, "Established")
}

var (
	birdRoute   = regexp.MustCompile(`^([0-9a-fA-F.:]+/\d+)\s+\S+\s+\[(\w+)\b`)
	birdNextHop = regexp.MustCompile(`^\s+BGP\.next_hop:\s+(\S+)`)
)

// Routes reads what BIRD learned from the speaker: prefix -> the BGP NEXT_HOP it was sent.
func (b *Bird) Routes() map[netip.Prefix]netip.Addr { return b.ProtocolRoutes("speaker") }

// ProtocolRoutes reads what BIRD's protocol name imported (after its import filter): prefix ->
// the BGP NEXT_HOP it came with. IPv4 and IPv6 alike.
func (b *Bird) ProtocolRoutes(name string) map[netip.Prefix]netip.Addr {
	b.t.Helper()
	out, err := b.Birdc("show", "route", "all", "protocol", name)
	if err != nil {
		b.t.Fatal(err)
	}
	got := map[netip.Prefix]netip.Addr{}
	var cur netip.Prefix
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := birdRoute.FindStringSubmatch(line); m != nil && m[2] == name {
			cur = netip.MustParsePrefix(m[1])
			got[cur] = netip.Addr{}
			continue
		}
		if m := birdNextHop.FindStringSubmatch(line); m != nil && cur.IsValid() {
			got[cur] = netip.MustParseAddr(m[1])
		}
	}
	return got
}

// FreePort returns a TCP port free on addr.
func FreePort(t testing.TB, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every 50ms until it holds, failing the test after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var birdInstalled = regexp.MustCompile(`^([0-9a-fA-F.:]+/\d+)\s+unicast\s+\[(\w+)\b`)

// Installed reads the routes of protocol name that BIRD can forward (unicast, not unreachable):
// prefix -> "via ADDRESS" as BIRD resolved it.
func (b *Bird) Installed(name string) map[netip.Prefix]string {
	b.t.Helper()
	out, err := b.Birdc("show", "route", "protocol", name)
	if err != nil {
		b.t.Fatal(err)
	}
	got := map[netip.Prefix]string{}
	var cur netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		if m := birdInstalled.FindStringSubmatch(line); m != nil && m[2] == name {
			cur = netip.MustParsePrefix(m[1])
			got[cur] = ""
			continue
		}
		if f := strings.Fields(line); cur.IsValid() && got[cur] == "" && len(f) >= 2 && f[0] == "via" {
			got[cur] = "via " + f[1]
		}
	}
	return got
}
