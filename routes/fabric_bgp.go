package routes

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// BGP is the validated spec.bgp block: how `dubboreach publish` speaks to the fabric's routers
// under podRoutes.publish: bgp. Only the speaker dials the peers; every other component reads
// the block for Within (what can ever be published) and AnnouncedTo.
type BGP struct {
	ASN      uint32
	RouterID netip.Addr
	// Within bounds what the speaker announces: a pod route not inside one of these prefixes is
	// never announced, and so never published. Required, so that a typo in the inventory
	// (or a hostile Node object) cannot make the speaker announce someone else's network.
	Within []netip.Prefix
	Peers  []BGPPeer
	// ListenPort is where the speaker accepts sessions; 0 means it does not listen and only
	// dials its peers (the usual case, and no port 179 privilege needed).
	ListenPort int
	// AnnouncedTo says when a route counts as published: announced to any Established peer
	// (default), or to all configured peers.
	AnnouncedTo AnnouncedTo
	// Communities are standard communities (ASN:value) attached to every announcement.
	Communities []uint32
	// GracefulRestart is the restart time advertised to peers (RFC 4724); 0 leaves it off.
	GracefulRestart time.Duration
}

// BGPPeer is one router the speaker keeps a session with.
type BGPPeer struct {
	Address netip.Addr
	ASN     uint32
	Port    int // default 179
	// PasswordFile holds the TCP-MD5 password (RFC 2385); read by the speaker at start, so that
	// components without the secret mounted can still read the fabric file.
	PasswordFile string
	// Multihop is the eBGP multihop TTL; 0 leaves it off (the peer must share a subnet).
	Multihop int
	// HoldTime is the hold time proposed to the peer; 0 means the BGP default of 90s.
	HoldTime time.Duration
}

// AnnouncedTo is the rule for "published" under publish: bgp.
type AnnouncedTo string

// AnnouncedTo values.
const (
	AnnouncedToAny AnnouncedTo = "any" // announced to at least one Established peer
	AnnouncedToAll AnnouncedTo = "all" // announced to every configured peer, all Established
)

// DefaultBGPPort is the BGP port peers are dialled on unless a peer says otherwise.
const DefaultBGPPort = 179

// Allows reports whether p lies inside spec.bgp.within, i.e. may ever be announced.
func (b *BGP) Allows(p netip.Prefix) bool {
	if b == nil {
		return false
	}
	for _, w := range b.Within {
		if w.Addr().Is4() == p.Addr().Is4() && w.Bits() <= p.Bits() && w.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

type bgpFile struct {
	ASN             uint32        `json:"asn"`
	RouterID        string        `json:"routerID"`
	Within          []string      `json:"within"`
	Peers           []bgpPeerFile `json:"peers"`
	ListenPort      *int          `json:"listenPort,omitempty"`
	AnnouncedTo     string        `json:"announcedTo,omitempty"`
	Communities     []string      `json:"communities,omitempty"`
	HoldTime        *int          `json:"holdTime,omitempty"`
	GracefulRestart *int          `json:"gracefulRestart,omitempty"`
}

type bgpPeerFile struct {
	Address      string `json:"address"`
	ASN          uint32 `json:"asn"`
	Port         *int   `json:"port,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	Multihop     *int   `json:"multihop,omitempty"`
	HoldTime     *int   `json:"holdTime,omitempty"`
}

// asTrans is AS_TRANS (RFC 6793): a placeholder two-octet speakers see, never a real ASN.
const asTrans = 23456

func parseBGP(in *bgpFile, fieldErr func(string, string, ...any) error) (*BGP, error) {
	b := &BGP{AnnouncedTo: AnnouncedToAny}
	if err := checkASN(in.ASN, "spec.bgp.asn", fieldErr); err != nil {
		return nil, err
	}
	b.ASN = in.ASN
	if in.RouterID == "" {
		return nil, fieldErr("spec.bgp.routerID", "is required: the speaker's BGP identifier, an IPv4 address unique among your routers (usually a node subnet address)")
	}
	id, err := netip.ParseAddr(in.RouterID)
	if err != nil || !id.Is4() || id.IsUnspecified() {
		return nil, fieldErr("spec.bgp.routerID", "%q is not an IPv4 address other than 0.0.0.0; a BGP identifier is one, even for an IPv6-only speaker", in.RouterID)
	}
	b.RouterID = id
	if len(in.Within) == 0 {
		return nil, fieldErr("spec.bgp.within", "is required: list the pod networks the speaker may announce (such as the cluster CIDR 10.244.0.0/16); nothing outside them is ever announced")
	}
	if b.Within, err = parsePrefixes(in.Within, "spec.bgp.within", fieldErr); err != nil {
		return nil, err
	}
	for i, p := range b.Within {
		if p.Bits() == 0 {
			return nil, fieldErr(fmt.Sprintf("spec.bgp.within[%d]", i), "%s would let the speaker announce anything; list the pod networks instead", p)
		}
	}
	if in.ListenPort != nil {
		if *in.ListenPort < 0 || *in.ListenPort > 65535 {
			return nil, fieldErr("spec.bgp.listenPort", "%d is not a port; use 1-65535, or leave it out so that the speaker only dials its peers", *in.ListenPort)
		}
		b.ListenPort = *in.ListenPort
	}
	switch AnnouncedTo(in.AnnouncedTo) {
	case "":
	case AnnouncedToAny, AnnouncedToAll:
		b.AnnouncedTo = AnnouncedTo(in.AnnouncedTo)
	default:
		return nil, fieldErr("spec.bgp.announcedTo", "%q is not a rule; use any (published once one Established peer has the route) or all", in.AnnouncedTo)
	}
	for i, c := range in.Communities {
		v, err := parseCommunity(c)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("spec.bgp.communities[%d]", i), "%v", err)
		}
		b.Communities = append(b.Communities, v)
	}
	defaultHold := time.Duration(0)
	if in.HoldTime != nil {
		if defaultHold, err = holdTime(*in.HoldTime, "spec.bgp.holdTime", fieldErr); err != nil {
			return nil, err
		}
	}
	if in.GracefulRestart != nil {
		if *in.GracefulRestart < 0 || *in.GracefulRestart > 4095 {
			return nil, fieldErr("spec.bgp.gracefulRestart", "%d is not a restart time; use 1-4095 seconds (RFC 4724), or 0 or nothing to leave graceful restart off", *in.GracefulRestart)
		}
		b.GracefulRestart = time.Duration(*in.GracefulRestart) * time.Second
	}
	if len(in.Peers) == 0 {
		return nil, fieldErr("spec.bgp.peers", "is required: list the routers to announce to, such as {address: 10.132.2.254, asn: 64513}")
	}
	seen := map[netip.Addr]int{}
	for i, pf := range in.Peers {
		field := fmt.Sprintf("spec.bgp.peers[%d]", i)
		a, err := netip.ParseAddr(pf.Address)
		if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return nil, fieldErr(field+".address", "%q is not a peer address; use the router's IPv4 or IPv6 address", pf.Address)
		}
		a = a.Unmap()
		if j, dup := seen[a]; dup {
			return nil, fieldErr(field+".address", "%s is already spec.bgp.peers[%d]; list each router once", a, j)
		}
		seen[a] = i
		if err := checkASN(pf.ASN, field+".asn", fieldErr); err != nil {
			return nil, err
		}
		p := BGPPeer{Address: a, ASN: pf.ASN, Port: DefaultBGPPort, PasswordFile: pf.PasswordFile, HoldTime: defaultHold}
		if pf.Port != nil {
			if *pf.Port < 1 || *pf.Port > 65535 {
				return nil, fieldErr(field+".port", "%d is not a port; use 1-65535 (BGP's is 179, the default)", *pf.Port)
			}
			p.Port = *pf.Port
		}
		if pf.Multihop != nil {
			if *pf.Multihop < 0 || *pf.Multihop > 255 {
				return nil, fieldErr(field+".multihop", "%d is not a TTL; use 1-255, or leave it out for a directly connected peer", *pf.Multihop)
			}
			if *pf.Multihop > 0 && pf.ASN == in.ASN {
				return nil, fieldErr(field+".multihop", "is for eBGP; this peer has our ASN %d (iBGP), which is multihop already: remove it", in.ASN)
			}
			p.Multihop = *pf.Multihop
		}
		if pf.HoldTime != nil {
			if p.HoldTime, err = holdTime(*pf.HoldTime, field+".holdTime", fieldErr); err != nil {
				return nil, err
			}
		}
		if strings.ContainsRune(pf.PasswordFile, 0) {
			return nil, fieldErr(field+".passwordFile", "is not a file path")
		}
		b.Peers = append(b.Peers, p)
	}
	return b, nil
}

func checkASN(asn uint32, field string, fieldErr func(string, string, ...any) error) error {
	switch asn {
	case 0:
		return fieldErr(field, "is required: a 1-4294967295 AS number (private: 64512-65534, 4200000000-4294967294)")
	case asTrans:
		return fieldErr(field, "23456 is AS_TRANS, a placeholder, not an AS number; use your real (four-octet) ASN")
	}
	return nil
}

// holdTime validates a hold time in seconds: 0 (no keepalives, as RFC 4271 allows) or 3-65535.
func holdTime(sec int, field string, fieldErr func(string, string, ...any) error) (time.Duration, error) {
	if sec != 0 && (sec < 3 || sec > 65535) {
		return 0, fieldErr(field, "%d is not a hold time; use 3-65535 seconds (default 90)", sec)
	}
	return time.Duration(sec) * time.Second, nil
}

// parseCommunity parses a standard community "ASN:value", both 0-65535.
func parseCommunity(s string) (uint32, error) {
	hi, lo, ok := strings.Cut(s, ":")
	if ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 == nil && err2 == nil {
			return uint32(h)<<16 | uint32(l), nil
		}
	}
	return 0, fmt.Errorf("%q is not a standard community; use ASN:value with both 0-65535, such as 64512:100", s)
}

// withinBGP reports whether the speaker may announce r (it lies inside spec.bgp.within), and
// reports the route as a problem when not: it can never be published, whatever the speaker does.
func (t *Table) withinBGP(r *Route) bool {
	if t.Fabric.BGP.Allows(r.Prefix) {
		return true
	}
	t.problem(r.Node, "", fmt.Sprintf("pod route %s lies outside spec.bgp.within: the speaker never announces it; add its network to spec.bgp.within", r.Prefix))
	return false
}
