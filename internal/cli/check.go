package cli

import (
	"fmt"
	"net/netip"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dubboreach/dubboreach/routes"
)

// checkJSON is one element of `check -o json`, a contract of DESIGN.md.
type checkJSON struct {
	Address      string            `json:"address"`
	Verdict      routes.Status     `json:"verdict"`
	Reason       routes.Reason     `json:"reason"`
	Cluster      string            `json:"cluster,omitempty"`    // --clusters: the owner (docs/clusters.md)
	Candidates   []string          `json:"candidates,omitempty"` // --clusters: who an ambiguous-cluster one could be
	Node         string            `json:"node,omitempty"`
	Prefix       string            `json:"prefix,omitempty"`
	MissingRoute *missingRouteJSON `json:"missingRoute,omitempty"`
}

// missingRouteJSON is the route the fabric lacks for an address.
type missingRouteJSON struct {
	Prefix  string `json:"prefix"`
	NextHop string `json:"nextHop,omitempty"`
	Node    string `json:"node,omitempty"`
}

func newMissingRouteJSON(r *routes.Route) *missingRouteJSON {
	if r == nil {
		return nil
	}
	m := &missingRouteJSON{Prefix: r.Prefix.String(), Node: r.Node}
	if r.NextHop.IsValid() {
		m.NextHop = r.NextHop.String()
	}
	return m
}

func newCheckCommand() *cobra.Command {
	var (
		cf     clusterFlags
		cl     clustersFlag
		output string
	)
	cmd := &cobra.Command{
		Use:   "check ADDRESS[:PORT]...",
		Short: "Say for each address whether the network outside the cluster reaches it, and why",
		Long: `Say for each address whether the network outside the cluster reaches it, and why.
Addresses may be IPv4, IPv6, bracketed IPv6, with or without a port. Exit status: 0 when all
are reachable, 1 when any is not, 2 on a usage or configuration error.

--clusters FILE judges each address by the cluster that owns it (docs/clusters.md): one whose
cluster cannot be told is unknown (ambiguous-cluster) and names its candidates.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError(fmt.Errorf("-o %q is not a format; use table or json", output))
			}
			if err := cl.exclusive(&cf); err != nil {
				return err
			}
			// Parse every argument before touching the cluster: a typo is a usage error.
			addrs := make([]checkJSON, len(args))
			ips := make([]netip.Addr, len(args))
			for i, a := range args {
				ip, _, err := routes.ParseAddress(a)
				if err != nil {
					return usageError(err)
				}
				addrs[i].Address, ips[i] = a, ip
			}
			var explained []string
			if cl.file != "" {
				var err error
				if explained, err = checkClusters(cmd, &cl, addrs, ips); err != nil {
					return err
				}
			} else {
				t, inv, err := cf.table(cmd.Context())
				if err != nil {
					return err
				}
				warnIgnored(cmd.ErrOrStderr(), inv)
				for i := range addrs {
					setVerdict(&addrs[i], t.Check(ips[i]))
				}
			}
			allReachable := true
			for _, a := range addrs {
				if a.Verdict != routes.Reachable {
					allReachable = false
				}
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				if err := writeJSON(w, addrs); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				column := map[bool]string{true: "\tCLUSTER"}[cl.file != ""]
				fmt.Fprintln(tw, "ADDRESS\tVERDICT\tREASON"+column+"\tNODE\tPREFIX\tMISSING ROUTE")
				for _, a := range addrs {
					missing := ""
					if a.MissingRoute != nil {
						missing = a.MissingRoute.Prefix + " via " + dash(a.MissingRoute.NextHop)
					}
					cell := ""
					if cl.file != "" {
						cell = "\t" + clusterCell(a.Cluster, a.Candidates)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\t%s\t%s\n", a.Address, a.Verdict, a.Reason, cell, dash(a.Node), dash(a.Prefix), dash(missing))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				writeAmbiguous(w, addrs, explained)
			}
			if !allReachable {
				return errFindings
			}
			return nil
		},
	}
	cf.register(cmd.Flags())
	cl.register(cmd.Flags())
	cf.registerBGP(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table|json")
	return cmd
}
