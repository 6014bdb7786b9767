package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// routeJSON is one route in `routes -o json|yaml`.
type routeJSON struct {
	Prefix    string `json:"prefix"`
	NextHop   string `json:"nextHop,omitempty"`
	Node      string `json:"node,omitempty"`
	Source    string `json:"source,omitempty"`
	Published bool   `json:"published"`
	// Action is "remove" for --remove output.
	Action string `json:"action,omitempty"`
}

type routesJSON struct {
	Publish  string           `json:"publish"`
	Routes   []routeJSON      `json:"routes"`
	Problems []routes.Problem `json:"problems"`
}

func newRoutesCommand() *cobra.Command {
	var (
		cf      clusterFlags
		output  string
		missing bool
		stale   bool
		remove  bool
		peer    peerFlags
	)
	structured := []string{"table", "json", "yaml"}
	formats := append(slices.Clone(structured), render.Names()...)
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Print the pod routes the external fabric needs, for people or for routers",
		Long: `Print the pod routes (pod prefix -> node address) the network outside the cluster needs.

-o table|json|yaml show every route with its published state and the problems found;
-o ` + strings.Join(render.Names(), "|") + ` print router configuration.
--missing keeps only the routes not yet published; --stale selects routes installed on the
gateway (podRoutes.installed) that no node needs any more; --remove prints the commands that
remove the selected routes.

--bgp-peer[=ADDRESS] prints instead the router side of the BGP session with ` + "`dubboreach publish`" + `
(podRoutes.publish: bgp) for the router ADDRESS of spec.bgp.peers, or one block per peer: the
speaker as a passive neighbor, remote AS, multihop, hold time, graceful restart, a password
placeholder, and an import filter that accepts only prefixes within spec.bgp.within. The neighbor
is spec.bgp.routerID unless --speaker-address lists the addresses the speaker's sessions come
from. Only --fabric is read (docs/bgp.md, "The router side").`,
		Args: peer.args,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(formats, output) {
				return usageError(fmt.Errorf("-o %q is not a format; use one of %s", output, strings.Join(formats, ", ")))
			}
			if cmd.Flags().Changed("bgp-peer") {
				if missing || stale || remove {
					return usageError(errors.New("--bgp-peer prints the BGP session, not routes: drop --missing, --stale and --remove"))
				}
				return peer.run(cmd, &cf, output)
			}
			if cmd.Flags().Changed("speaker-address") {
				return usageError(errors.New("--speaker-address is the neighbor of the router side: use it with --bgp-peer"))
			}
			if missing && stale {
				return usageError(fmt.Errorf("--missing and --stale select different routes; use one"))
			}
			t, inv, err := cf.table(cmd.Context())
			if err != nil {
				return err
			}
			warnIgnored(cmd.ErrOrStderr(), inv)
			sel := selectRoutes(t, missing, stale)
			if slices.Contains(structured, output) {
				return writeStructured(cmd.OutOrStdout(), output, t, sel, remove)
			}
			// Router output must paste cleanly: problems go to stderr.
			for _, p := range t.Problems {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", p)
			}
			entries := make([]render.Entry, 0, len(sel))
			for _, r := range sel {
				if !r.NextHop.IsValid() && !remove {
					continue // reported as a problem above
				}
				entries = append(entries, render.Entry{Prefix: r.Prefix, NextHop: r.NextHop, Node: r.Node})
			}
			if err := render.Render(cmd.OutOrStdout(), render.Format(output), entries, render.Options{Remove: remove}); err != nil {
				return usageError(err)
			}
			return nil
		},
	}
	cf.register(cmd.Flags())
	cf.registerBGP(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(formats, "|"))
	cmd.Flags().BoolVar(&missing, "missing", false, "only routes that are desired but not published")
	cmd.Flags().BoolVar(&stale, "stale", false, "only routes installed on the gateway that no node needs (publish: static)")
	cmd.Flags().BoolVar(&remove, "remove", false, "print the commands that remove the selected routes")
	peer.register(cmd.Flags())
	return cmd
}

func selectRoutes(t *routes.Table, missing, stale bool) []routes.Route {
	switch {
	case stale:
		out := make([]routes.Route, len(t.Stale))
		for i, p := range t.Stale {
			out[i] = routes.Route{Prefix: p, Published: true}
		}
		return out
	case missing:
		return t.Missing()
	}
	return t.Routes
}

func writeStructured(w io.Writer, format string, t *routes.Table, sel []routes.Route, remove bool) error {
	doc := routesJSON{Publish: string(t.Fabric.Publish), Routes: make([]routeJSON, 0, len(sel)), Problems: t.Problems}
	if doc.Problems == nil {
		doc.Problems = []routes.Problem{}
	}
	for _, r := range sel {
		rj := routeJSON{Prefix: r.Prefix.String(), Node: r.Node, Source: string(r.Source), Published: r.Published}
		if r.NextHop.IsValid() {
			rj.NextHop = r.NextHop.String()
		}
		if remove {
			rj.Action = "remove"
		}
		doc.Routes = append(doc.Routes, rj)
	}
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
	header := "NODE\tPREFIX\tNEXT HOP\tSOURCE\tPUBLISHED"
	if remove {
		header += "\tACTION"
	}
	fmt.Fprintln(tw, header)
	for _, r := range doc.Routes {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", dash(r.Node), r.Prefix, dash(r.NextHop), dash(r.Source), yesNo(r.Published))
		if remove {
			line += "\tremove"
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(t.Problems) > 0 {
		fmt.Fprintf(w, "\nProblems (%d):\n", len(t.Problems))
		for _, p := range t.Problems {
			fmt.Fprintln(w, "  -", p)
		}
	}
	return nil
}

func warnIgnored(w io.Writer, inv *routes.Inventory) {
	if inv != nil && len(inv.Ignored) > 0 {
		fmt.Fprintf(w, "note: the inventory's %d objects of other kinds were not used (first: %s)\n", len(inv.Ignored), inv.Ignored[0])
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// prefixString renders an optional prefix.
func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
