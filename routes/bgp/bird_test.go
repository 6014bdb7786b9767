package bgp

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
	"testing"
	"time"
)

// bird is a real BIRD 2 daemon (Debian's bird2) on loopback, peering passively with a speaker.
type bird struct {
	t    testing.TB
	sock string
	addr netip.Addr
	port int
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

type birdConfig struct {
	addr       netip.Addr // BIRD's own address (127.0.0.x), where it listens
	asn        uint32
	peer       netip.Addr // the speaker's address
	peerASN    uint32
	password   string
	nextHopNet netip.Prefix // where announced next hops lie (resolved via lo)
}

// startBird runs `bird -f` with a configuration accepting everything from the speaker into
// its table (so that the test sees what was announced, filtered or not).
func startBird(t testing.TB, c birdConfig) *bird {
	t.Helper()
	for _, tool := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/install-tools.sh (Debian package bird2)", tool)
		}
	}
	dir := t.TempDir()
	b := &bird{t: t, sock: filepath.Join(dir, "bird.ctl"), addr: c.addr, port: freePort(t, c.addr), log: &bytes.Buffer{}}
	pw := ""
	if c.password != "" {
		pw = fmt.Sprintf("  password %q;\n", c.password)
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
`, c.addr, c.nextHopNet, c.addr, b.port, c.asn, c.peer, c.peerASN, pw)
	path := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command("bird", "-c", path, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"), "-f")
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("starting bird: %v", err)
	}
	t.Cleanup(b.stop)
	eventually(t, 10*time.Second, "BIRD's control socket", func() bool {
		_, err := b.birdc("show status")
		return err == nil
	})
	return b
}

func (b *bird) stop() {
	if b.cmd.Process == nil || b.cmd.ProcessState != nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	if b.t.Failed() {
		b.t.Logf("bird log:\n%s", b.log.String())
	}
}

func (b *bird) birdc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// established reports whether BIRD's session with the speaker is up.
func (b *bird) established() bool {
	out, err := b.birdc("show", "protocols", "speaker")
	return err == nil && strings.Contains(out, "Established")
}

var (
	birdRoute   = regexp.MustCompile(`^([0-9a-fA-F.:]+/\d+)\s+\S+\s+\[speaker\b`)
	birdNextHop = regexp.MustCompile(`^\s+BGP\.next_hop:\s+(\S+)`)
)

// routes reads what BIRD learned from the speaker: prefix -> the BGP NEXT_HOP it was sent.
func (b *bird) routes() map[netip.Prefix]netip.Addr {
	b.t.Helper()
	out, err := b.birdc("show", "route", "all", "protocol", "speaker")
	if err != nil {
		b.t.Fatal(err)
	}
	got := map[netip.Prefix]netip.Addr{}
	var cur netip.Prefix
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := birdRoute.FindStringSubmatch(line); m != nil {
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

func freePort(t testing.TB, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
