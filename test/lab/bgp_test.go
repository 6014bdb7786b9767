package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
	"github.com/dubboreach/dubboreach/routes/render"
	"github.com/dubboreach/dubboreach/test/lab"
	"github.com/dubboreach/dubboreach/webhook"
)

// speakerEnv names the configuration file of a test binary re-executed as the BGP speaker.
const speakerEnv = "DUBBOREACH_LAB_SPEAKER"

// speakerConfig is what the re-executed speaker runs: the routes core's speaker (routes/bgp, as
// `dubboreach publish` runs it on the elected replica) over a fixed set of nodes.
type speakerConfig struct {
	BGP    routes.BGP
	Nodes  []routes.Node
	Local  netip.Addr // the node address the sessions come from
	Status string     // the file the status.json document is written to on every tick
}

const (
	speakerASN = 64512
	gatewayASN = 64513
)

// speakerMain runs the speaker until SIGTERM or SIGKILL; it writes status.json as the speaker
// would into its ConfigMap.
func speakerMain(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var cfg speakerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fab := routes.DefaultFabric()
	fab.Source, fab.Publish, fab.BGP = routes.SourceNodes, routes.PublishBGP, &cfg.BGP
	store := routes.NewStore(fab, nil)
	for _, n := range cfg.Nodes {
		store.UpsertNode(n)
	}
	sp, err := bgp.Start(ctx, &cfg.BGP, bgp.Options{LocalAddress: cfg.Local, ConnectRetry: time.Second, Log: logr.Discard()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sp.Stop()
	sp.Run(ctx, store, bgp.RunOptions{StatusInterval: 500 * time.Millisecond, Report: func(st *bgp.Status) {
		b, err := json.Marshal(st)
		if err != nil {
			return
		}
		tmp := cfg.Status + ".tmp"
		if os.WriteFile(tmp, b, 0o600) == nil {
			_ = os.Rename(tmp, cfg.Status)
		}
	}})
	return 0
}

// TestBGPPublishesPodRoutes: dubboreach's BGP speaker, on node-1 of the lab, peers with BIRD 2
// on the gateway configured with what `dubboreach routes -o bird --bgp-peer 10.132.2.254` prints
// (plus BIRD's device and kernel protocols): node-2's pod route, which the gateway lacks, lands
// in the gateway's kernel table with node-2 as next hop; a real Dubbo 3.3.6 provider on node-2
// registered with its pod IP is then called from the outside host with no hand-written route,
// and the auditor, judging by the speaker's status, says reachable. When the speaker dies the
// route is withdrawn and the call fails again.
func TestBGPPublishesPodRoutes(t *testing.T) {
	l := shared(t)
	pods := startPlacements(t, l, []placement{
		{name: "bgp33", ns: "legacy", node: "node-2", version: lab.Dubbo336, containerPort: 20880, wantMode: webhook.ModeNone},
	})
	spec := lab.ConsumerSpec{Version: lab.Dubbo336, Discovery: lab.DiscoverInterface}
	gw := netip.MustParseAddr(lab.GatewayIP)
	node1 := netip.MustParseAddr(l.Node("node-1").IP.String())
	cfg := routes.BGP{ASN: speakerASN, RouterID: node1, Within: []netip.Prefix{netip.MustParsePrefix(lab.ClusterNet)},
		AnnouncedTo: routes.AnnouncedToAny, Peers: []routes.BGPPeer{{Address: gw, ASN: gatewayASN, HoldTime: 9 * time.Second}}}
	fab := routes.DefaultFabric()
	fab.Reachable = []netip.Prefix{netip.MustParsePrefix(lab.DCNet)}
	fab.Source, fab.Publish, fab.BGP = routes.SourceNodes, routes.PublishBGP, &cfg
	inv := &routes.Inventory{Nodes: l.RoutesNodes()}
	const pod2Route = "10.131.73.0/24 via 10.132.2.12"

	// Before any speaker: unpublished by verdict, and the outside call fails.
	res := auditWith(t, l, pods, routes.Build(inv, fab, nil))
	measured := measure(t, l, spec, pods)
	if measured["bgp33"] {
		t.Fatal("bgp33 on node-2 answered from outside before its route was announced: the lab's gateway should lack it")
	}
	agree(t, res, pods, measured)

	// The gateway's BIRD, configured with the rendered router side.
	sessions, err := render.PeerSessions(&cfg, gw, []netip.Addr{node1})
	if err != nil {
		t.Fatal(err)
	}
	var peerConf bytes.Buffer
	if err := render.RenderPeers(&peerConf, render.BIRD, sessions); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	full := fmt.Sprintf("router id %s;\nprotocol device { scan time 1; }\nprotocol kernel { ipv4 { export all; }; }\n%s", gw, peerConf.String())
	if err := os.WriteFile(conf, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("the gateway's BIRD configuration:\n%s", full)
	birdCtx, stopBird := context.WithCancel(context.Background())
	birdLog := &bytes.Buffer{}
	bird := l.Gateway.Command(birdCtx, "bird", "-f", "-c", conf, "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid"))
	bird.Stdout, bird.Stderr = birdLog, birdLog
	bird.Cancel = func() error { return bird.Process.Signal(syscall.SIGTERM) } // BIRD removes its kernel routes on SIGTERM
	bird.WaitDelay = 10 * time.Second
	if err := bird.Start(); err != nil {
		t.Fatalf("starting bird on the gateway: %v", err)
	}
	t.Cleanup(func() {
		stopBird()
		_ = bird.Wait()
		// Leave the shared lab's gateway as DefaultNodes built it, whatever BIRD did on the way out.
		_, _ = l.Gateway.Exec("ip", "route", "flush", "proto", "bird")
		if t.Failed() {
			t.Logf("bird log:\n%s", birdLog)
		}
	})
	birdRoutes := func() string {
		out, _ := l.Gateway.Exec("ip", "route", "show", "proto", "bird")
		return out
	}

	// The speaker on node-1, as `dubboreach publish` with hostNetwork would run there.
	status := filepath.Join(dir, "status.json")
	sc, err := json.Marshal(speakerConfig{BGP: cfg, Nodes: l.RoutesNodes(), Local: node1, Status: status})
	if err != nil {
		t.Fatal(err)
	}
	scPath := filepath.Join(dir, "speaker.json")
	if err := os.WriteFile(scPath, sc, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	speaker := l.Node("node-1").Command(context.Background(), exe, "-test.run=^$")
	speaker.Env = append(os.Environ(), speakerEnv+"="+scPath)
	speakerLog := &bytes.Buffer{}
	speaker.Stdout, speaker.Stderr = speakerLog, speakerLog
	if err := speaker.Start(); err != nil {
		t.Fatalf("starting the speaker on node-1: %v", err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = speaker.Process.Kill()
			_ = speaker.Wait()
		}
		if t.Failed() {
			t.Logf("speaker log:\n%s", speakerLog)
		}
	})
	if !poll(60*time.Second, func() bool { return strings.Contains(birdRoutes(), pod2Route) }) {
		t.Fatalf("node-2's pod route never reached the gateway's kernel table; BIRD's routes:\n%s", birdRoutes())
	}
	t.Logf("speaker start to %s in the gateway's kernel table: %s; BIRD's kernel routes:\n%s", pod2Route, time.Since(started).Round(time.Millisecond), birdRoutes())

	// Published means announced: the auditor judges by the speaker's status.
	var st *bgp.Status
	if !poll(30*time.Second, func() bool {
		data, err := os.ReadFile(status)
		if err != nil {
			return false
		}
		st, err = bgp.ParseStatus(data)
		return err == nil && st.Published(routes.Route{Prefix: netip.MustParsePrefix("10.131.73.0/24"), NextHop: netip.MustParseAddr("10.132.2.12")})
	}) {
		t.Fatalf("the speaker's status never said node-2's route was published")
	}
	res = auditWith(t, l, pods, routes.Build(inv, fab, st))
	measured = measure(t, l, spec, pods)
	if !measured["bgp33"] {
		t.Errorf("bgp33 on node-2 does not answer from outside with its route announced")
	}
	agree(t, res, pods, measured)
	probeFromOutside(t, l, res, pods, measured)

	// The speaker dies: BIRD drops the session and withdraws the route from the kernel.
	_ = speaker.Process.Kill()
	_ = speaker.Wait()
	killed = true
	killedAt := time.Now()
	if !poll(30*time.Second, func() bool { return !strings.Contains(birdRoutes(), pod2Route) }) {
		t.Fatalf("node-2's pod route outlived the speaker in the gateway's kernel table:\n%s", birdRoutes())
	}
	t.Logf("speaker killed to route withdrawn from the gateway's kernel table: %s", time.Since(killedAt).Round(time.Millisecond))
	if measure(t, l, spec, pods)["bgp33"] {
		t.Errorf("bgp33 still answers from outside after its route was withdrawn")
	}
}

// poll reports whether cond became true within d.
func poll(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
