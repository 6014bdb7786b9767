package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// allPeers is --bgp-peer without an address: every peer of spec.bgp, one block each.
const allPeers = "all"

// peerFlags are `routes --bgp-peer[=ADDRESS] [--speaker-address ADDR,...]`.
type peerFlags struct {
	peer     string
	speakers []string
}

func (p *peerFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.peer, "bgp-peer", "", "print the router side of the BGP session with `dubboreach publish` for this router of spec.bgp.peers (--bgp-peer=ADDRESS), or without an address for every peer")
	fs.Lookup("bgp-peer").NoOptDefVal = allPeers
	fs.StringSliceVar(&p.speakers, "speaker-address", nil, "with --bgp-peer: the addresses the speaker's sessions come from, the router's neighbors (default: spec.bgp.routerID)")
}

// args allows `--bgp-peer ADDRESS` with a space: pflag leaves the address as an argument of a
// flag whose value is optional, and routes takes no other.
func (p *peerFlags) args(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.Flags().Changed("bgp-peer") && p.peer == allPeers && len(args) == 1 {
		if _, err := netip.ParseAddr(args[0]); err == nil {
			p.peer = args[0]
			return nil
		}
	}
	return usageError(fmt.Errorf("routes takes no arguments, got %q (to pick a BGP peer: --bgp-peer=ADDRESS)", strings.Join(args, " ")))
}

// peerJSON is one session in `routes --bgp-peer -o json|yaml`.
type peerJSON struct {
	Router          string       `json:"router"`
	RouterASN       uint32       `json:"routerASN"`
	Port            int          `json:"port"`
	Neighbors       []string     `json:"neighbors"`
	SpeakerASN      uint32       `json:"speakerASN"`
	Type            string       `json:"type"`
	Multihop        int          `json:"multihop"`
	HoldTime        int          `json:"holdTime,omitempty"`
	GracefulRestart int          `json:"gracefulRestart,omitempty"`
	PasswordFile    string       `json:"passwordFile,omitempty"`
	Families        []string     `json:"families"`
	Accept          []acceptJSON `json:"accept"`
}

type acceptJSON struct {
	Prefix string `json:"prefix"`
	UpTo   int    `json:"upTo"`
}

func (p *peerFlags) run(cmd *cobra.Command, cf *clusterFlags, output string) error {
	if f := render.Format(output); f == render.Linux || f == render.NetTools {
		return usageError(render.RenderPeers(io.Discard, f, nil)) // refused, whatever the fabric says
	}
	if cf.fabric == "" {
		return usageError(errors.New("--bgp-peer needs --fabric: the session comes from the fabric file's spec.bgp"))
	}
	fab, err := cf.loadFabric()
	if err != nil {
		return err
	}
	if fab.Publish != routes.PublishBGP || fab.BGP == nil {
		return usageError(fmt.Errorf("--bgp-peer: %s has podRoutes.publish: %s and no spec.bgp, so there is no BGP session to configure; "+
			"set podRoutes.publish: bgp and a spec.bgp block with the peers (docs/bgp.md), or drop --bgp-peer", cf.fabric, fab.Publish))
	}
	var router netip.Addr
	if p.peer != allPeers {
		if router, err = netip.ParseAddr(p.peer); err != nil {
			return usageError(fmt.Errorf("--bgp-peer %q is not an address; give the router's address from spec.bgp.peers, or no value for every peer", p.peer))
		}
	}
	var speakers []netip.Addr
	for _, s := range p.speakers {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return usageError(fmt.Errorf("--speaker-address %q is not an IP address; give the addresses the speaker's sessions come from", s))
		}
		speakers = append(speakers, a)
	}
	sessions, err := render.PeerSessions(fab.BGP, router, speakers)
	if err != nil {
		return usageError(fmt.Errorf("--bgp-peer: %w", err))
	}
	if len(speakers) == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: the neighbor is spec.bgp.routerID %s; if the speaker's sessions come from other addresses "+
			"(the node its leader runs on, or publish --local-address), pass them with --speaker-address\n", fab.BGP.RouterID)
	}
	w := cmd.OutOrStdout()
	switch output {
	case "json", "yaml", "table":
		return writePeers(w, output, sessions)
	}
	if err := render.RenderPeers(w, render.Format(output), sessions); err != nil {
		return usageError(err)
	}
	return nil
}

func peerDocs(sessions []render.Session) []peerJSON {
	out := make([]peerJSON, 0, len(sessions))
	for _, s := range sessions {
		d := peerJSON{Router: s.Router.String(), RouterASN: s.RouterASN, Port: s.Port, SpeakerASN: s.SpeakerASN, Type: "ebgp",
			Multihop: s.Multihop, HoldTime: int(s.HoldTime / time.Second), GracefulRestart: int(s.GracefulRestart / time.Second),
			PasswordFile: s.PasswordFile, Families: s.Families()}
		if s.IBGP() {
			d.Type = "ibgp"
		}
		for _, a := range s.Speakers {
			d.Neighbors = append(d.Neighbors, a.String())
		}
		for _, w := range s.Within {
			d.Accept = append(d.Accept, acceptJSON{Prefix: w.String(), UpTo: w.Addr().BitLen()})
		}
		out = append(out, d)
	}
	return out
}

func writePeers(w io.Writer, format string, sessions []render.Session) error {
	doc := struct {
		Sessions []peerJSON `json:"sessions"`
	}{peerDocs(sessions)}
	switch format {
	case "json":
		return writeJSON(w, doc)
	case "yaml":
		out, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTER\tAS\tPORT\tNEIGHBOR\tREMOTE AS\tTYPE\tMULTIHOP\tHOLD\tGRACEFUL RESTART\tPASSWORD FILE\tACCEPTS")
	for _, d := range doc.Sessions {
		accept := make([]string, len(d.Accept))
		for i, a := range d.Accept {
			accept[i] = a.Prefix + " up to /" + strconv.Itoa(a.UpTo)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Router, d.RouterASN, d.Port, strings.Join(d.Neighbors, ","),
			d.SpeakerASN, d.Type, zeroDash(d.Multihop, ""), zeroDash(d.HoldTime, "s"), zeroDash(d.GracefulRestart, "s"),
			dash(d.PasswordFile), strings.Join(accept, ", "))
	}
	return tw.Flush()
}

func zeroDash(v int, unit string) string {
	if v == 0 {
		return "-"
	}
	return strconv.Itoa(v) + unit
}
