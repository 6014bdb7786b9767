package bgp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gobgpd is a real gobgpd (Debian's gobgpd, an older gobgp than the one we embed) on loopback,
// as a second kind of router: read through its own CLI.
type gobgpd struct {
	t       *testing.T
	addr    netip.Addr
	port    int
	apiPort int
	cmd     *exec.Cmd
	log     *bytes.Buffer
}

func startGobgpd(t *testing.T, addr netip.Addr, asn uint32, peer netip.Addr, peerASN uint32) *gobgpd {
	t.Helper()
	for _, tool := range []string{"gobgpd", "gobgp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/install-tools.sh (Debian package gobgpd)", tool)
		}
	}
	g := &gobgpd{t: t, addr: addr, port: freePort(t, addr), apiPort: freePort(t, addr), log: &bytes.Buffer{}}
	conf := fmt.Sprintf(`[global.config]
  as = %d
  router-id = "%s"
  port = %d
  local-address-list = ["%s"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = %d
  [neighbors.transport.config]
    passive-mode = true
`, asn, addr, g.port, addr, peer, peerASN)
	path := filepath.Join(t.TempDir(), "gobgpd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command("gobgpd", "-f", path, "-t", "toml", "--api-hosts", netip.AddrPortFrom(addr, uint16(g.apiPort)).String(), "--pprof-disable", "-p")
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("starting gobgpd: %v", err)
	}
	t.Cleanup(func() {
		_ = g.cmd.Process.Kill()
		_ = g.cmd.Wait()
		if t.Failed() {
			t.Logf("gobgpd log:\n%s", g.log.String())
		}
	})
	eventually(t, 15*time.Second, "gobgpd's API", func() bool {
		_, err := g.cli("global")
		return err == nil
	})
	return g
}

func (g *gobgpd) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "gobgp", append([]string{"-u", g.addr.String(), "-p", fmt.Sprint(g.apiPort)}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("gobgp %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (g *gobgpd) established() bool {
	out, err := g.cli("neighbor")
	return err == nil && strings.Contains(out, "Establ")
}

// routes reads gobgpd's global RIB: prefix -> next hop.
func (g *gobgpd) routes() map[netip.Prefix]netip.Addr {
	g.t.Helper()
	out, err := g.cli("-j", "global", "rib", "-a", "ipv4")
	if err != nil {
		g.t.Fatal(err)
	}
	var rib map[string][]struct {
		Nlri struct {
			Prefix string `json:"prefix"`
		} `json:"nlri"`
		Attrs []struct {
			Type    int    `json:"type"`
			Nexthop string `json:"nexthop"`
		} `json:"attrs"`
	}
	if err := json.Unmarshal([]byte(out), &rib); err != nil {
		g.t.Fatalf("gobgp global rib -j: %v: %s", err, out)
	}
	got := map[netip.Prefix]netip.Addr{}
	for _, paths := range rib {
		for _, p := range paths {
			pfx := netip.MustParsePrefix(p.Nlri.Prefix)
			got[pfx] = netip.Addr{}
			for _, a := range p.Attrs {
				if a.Type == 3 { // NEXT_HOP
					got[pfx] = netip.MustParseAddr(a.Nexthop)
				}
			}
		}
	}
	return got
}
