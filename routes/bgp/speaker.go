// Package bgp is dubboreach's BGP speaker for podRoutes.publish: bgp: an in-process gobgp
// server that announces the routes core's pod routes (prefix -> node next hop) to the fabric's
// routers, never anything outside spec.bgp.within, and withdraws them as nodes go or change.
// It also reports which routes its Established peers were sent, the only sense in which a
// route is "published" under publish: bgp.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/dubboreach/dubboreach/routes"
)

// Options tune a Speaker beyond the fabric file.
type Options struct {
	// LocalAddress binds the speaker's outgoing sessions (and its listener) to one address;
	// empty: the kernel picks. Tests use it to run several speakers on loopback.
	LocalAddress netip.Addr
	// ConnectRetry is how soon a failed or dropped session is dialled again (default 5s; gobgp's
	// own default, 120s, is far longer than a route may stay unpublished).
	ConnectRetry time.Duration
	Log          logr.Logger
}

// Speaker announces pod routes over BGP. Create it with Start; Sync it with the desired routes.
type Speaker struct {
	cfg  *routes.BGP
	srv  *server.BgpServer
	log  logr.Logger
	stop context.CancelFunc

	stopOnce  sync.Once
	mu        sync.Mutex
	announced map[netip.Prefix]netip.Addr // what is in our RIB: prefix -> next hop
	peers     map[netip.Addr]*peerState
}

type peerState struct {
	conf  routes.BGPPeer
	state gobgp.FSMState
	since time.Time
	flaps int
}

// Start starts the speaker and its sessions. Passwords are read from the peers' password files
// now: a missing or empty file is an error naming the peer and the file.
func Start(ctx context.Context, cfg *routes.BGP, opt Options) (*Speaker, error) {
	if cfg == nil {
		return nil, errors.New("no spec.bgp in the fabric file: publish needs podRoutes.publish: bgp and a spec.bgp block (docs/bgp.md)")
	}
	if opt.ConnectRetry <= 0 {
		opt.ConnectRetry = 5 * time.Second
	}
	passwords := make([]string, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if p.PasswordFile == "" {
			continue
		}
		pw, err := readPassword(p.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("spec.bgp.peers[%d] (%s): passwordFile: %w", i, p.Address, err)
		}
		passwords[i] = pw
	}
	// gobgp logs every FSM step at info; we log session changes ourselves and keep its warnings.
	lvl := new(slog.LevelVar)
	lvl.Set(slog.LevelWarn)
	logger := slog.New(levelHandler{lvl, logr.ToSlogHandler(opt.Log.WithName("gobgp"))})
	srv := server.NewBgpServer(server.LoggerOption(logger, lvl))
	go srv.Serve()
	s := &Speaker{cfg: cfg, srv: srv, log: opt.Log, announced: map[netip.Prefix]netip.Addr{}, peers: map[netip.Addr]*peerState{}}
	global := &api.Global{Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: -1}
	if cfg.ListenPort > 0 {
		global.ListenPort = int32(cfg.ListenPort)
		if opt.LocalAddress.IsValid() {
			global.ListenAddresses = []string{opt.LocalAddress.String()}
		}
	}
	if cfg.GracefulRestart > 0 {
		global.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(cfg.GracefulRestart / time.Second)}
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("starting the BGP speaker (AS %d, router ID %s): %w", cfg.ASN, cfg.RouterID, err)
	}
	// The session table is complete before the watch starts: onPeer only updates entries.
	for _, p := range cfg.Peers {
		s.peers[p.Address] = &peerState{conf: p, state: gobgp.BGP_FSM_IDLE, since: time.Now()}
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	// WatchEvent needs an explicit watch option; without one it watches nothing.
	if err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.onPeer}, server.WatchPeer()); err != nil {
		s.Stop()
		return nil, fmt.Errorf("watching BGP sessions: %w", err)
	}
	for i, p := range cfg.Peers {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(cfg, p, passwords[i], opt)}); err != nil {
			s.Stop()
			return nil, fmt.Errorf("spec.bgp.peers[%d] (%s): %w", i, p.Address, err)
		}
	}
	return s, nil
}

func readPassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s is empty; write the TCP-MD5 password into it, or remove passwordFile", path)
	}
	if len(pw) > 80 {
		return "", fmt.Errorf("%s holds %d bytes; a TCP-MD5 key is at most 80 (RFC 2385, Linux TCP_MD5SIG_MAXKEYLEN)", path, len(pw))
	}
	return pw, nil
}

func peerConfig(cfg *routes.BGP, p routes.BGPPeer, password string, opt Options) *api.Peer {
	peer := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: password},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           uint64(opt.ConnectRetry / time.Second),
			IdleHoldTimeAfterReset: uint64(opt.ConnectRetry / time.Second),
		}},
	}
	if opt.LocalAddress.IsValid() && opt.LocalAddress.Is4() == p.Address.Is4() {
		peer.Transport.LocalAddress = opt.LocalAddress.String()
	}
	if p.HoldTime > 0 {
		peer.Timers.Config.HoldTime = uint64(p.HoldTime / time.Second)
		peer.Timers.Config.KeepaliveInterval = max(1, uint64(p.HoldTime/time.Second/3))
	}
	if p.Multihop > 0 {
		peer.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	if cfg.GracefulRestart > 0 {
		peer.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(cfg.GracefulRestart / time.Second)}
	}
	// Only the families within names: a v4-only router is never offered IPv6 unicast.
	for _, fam := range families(cfg) {
		peer.AfiSafis = append(peer.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}})
	}
	return peer
}

func families(cfg *routes.BGP) []*api.Family {
	var v4, v6 bool
	for _, w := range cfg.Within {
		if w.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	var out []*api.Family
	if v4 {
		out = append(out, &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST})
	}
	if v6 {
		out = append(out, &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST})
	}
	return out
}

func (s *Speaker) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	addr := ev.Peer.State.NeighborAddress.Unmap()
	state := ev.Peer.State.SessionState
	s.mu.Lock()
	p := s.peers[addr]
	if p == nil || p.state == state {
		s.mu.Unlock()
		return
	}
	if p.state == gobgp.BGP_FSM_ESTABLISHED {
		p.flaps++
	}
	p.state, p.since = state, time.Now()
	s.mu.Unlock()
	if state == gobgp.BGP_FSM_ESTABLISHED {
		s.log.Info("BGP session established", "peer", addr, "asn", p.conf.ASN)
	} else {
		s.log.Info("BGP session state", "peer", addr, "state", stateName(state), "reason", ev.Peer.State.DisconnectMessage)
	}
}

// Stop withdraws nothing explicitly: closing the sessions withdraws every route at the peers
// (or, with graceful restart, keeps them as stale for the restart time). gobgp's Stop already
// stops BGP; calling StopBgp again would block.
func (s *Speaker) Stop() {
	s.stopOnce.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		s.srv.Stop()
	})
}

// levelHandler drops records below a level: logr's slog handler passes everything on.
type levelHandler struct {
	min slog.Leveler
	slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{h.min, h.Handler.WithAttrs(a)}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{h.min, h.Handler.WithGroup(name)}
}

// Eligible reports whether the speaker would announce r: it has a next hop of its own family
// and lies inside spec.bgp.within.
func (s *Speaker) Eligible(r routes.Route) bool {
	return r.NextHop.IsValid() && r.NextHop.Is4() == r.Prefix.Addr().Is4() && s.cfg.Allows(r.Prefix)
}

// SyncResult counts what one Sync changed.
type SyncResult struct {
	Announced, Withdrawn, Kept, Skipped int
}

// Sync makes the announced set equal to the eligible routes of rs: new prefixes and changed
// next hops are announced, prefixes no longer wanted are withdrawn. Routes outside within or
// without a next hop are skipped (the route table reports them as problems).
func (s *Speaker) Sync(rs []routes.Route) (SyncResult, error) {
	var res SyncResult
	want := make(map[netip.Prefix]netip.Addr, len(rs))
	for _, r := range rs {
		if !s.Eligible(r) {
			res.Skipped++
			continue
		}
		want[r.Prefix] = r.NextHop
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var add, del []*apiutil.Path
	for p, nh := range s.announced {
		if _, ok := want[p]; !ok {
			del = append(del, s.path(p, nh))
		}
	}
	for p, nh := range want {
		if old, ok := s.announced[p]; ok && old == nh {
			res.Kept++
			continue
		}
		// A changed next hop is an implicit withdraw of the old path: adding is enough.
		add = append(add, s.path(p, nh))
	}
	var errs []error
	if len(del) > 0 {
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: del}); err != nil {
			errs = append(errs, fmt.Errorf("withdrawing %d routes: %w", len(del), err))
		} else {
			for _, p := range del {
				delete(s.announced, prefixOf(p))
			}
			res.Withdrawn = len(del)
		}
	}
	if len(add) > 0 {
		resp, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: add})
		for i, p := range add {
			if err == nil || (i < len(resp) && resp[i].Error == nil) {
				s.announced[prefixOf(p)] = want[prefixOf(p)]
				res.Announced++
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announcing %d routes: %w", len(add), err))
		}
	}
	return res, errors.Join(errs...)
}

func prefixOf(p *apiutil.Path) netip.Prefix {
	if n, ok := p.Nlri.(*gobgp.IPAddrPrefix); ok {
		return n.Prefix
	}
	return netip.Prefix{}
}

// path builds the gobgp path for prefix via next hop: NEXT_HOP for IPv4, MP_REACH for IPv6
// (RFC 4760), origin IGP, and the configured communities. The next hop is the node's own
// address, not ours: gobgp keeps a locally originated path's next hop on eBGP too.
func (s *Speaker) path(p netip.Prefix, nh netip.Addr) *apiutil.Path {
	nlri, _ := gobgp.NewIPAddrPrefix(p)
	fam := gobgp.RF_IPv4_UC
	attrs := []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if p.Addr().Is4() {
		a, _ := gobgp.NewPathAttributeNextHop(nh)
		attrs = append(attrs, a)
	} else {
		fam = gobgp.RF_IPv6_UC
		a, _ := gobgp.NewPathAttributeMpReachNLRI(fam, []gobgp.PathNLRI{{NLRI: nlri}}, nh)
		attrs = append(attrs, a)
	}
	if len(s.cfg.Communities) > 0 {
		attrs = append(attrs, gobgp.NewPathAttributeCommunities(slices.Clone(s.cfg.Communities)))
	}
	// AddPath and DeletePath need the family set on the path itself.
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs, Age: time.Now().Unix()}
}

func stateName(s gobgp.FSMState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BGP_FSM_"))
}
