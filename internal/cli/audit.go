package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/stdr"
	"github.com/spf13/cobra"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/registry/server"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// auditFindingJSON is one provider or consumer of `audit --once -o json` (DESIGN.md): the
// Finding's own JSON fields, with the missing route in the shape `check -o json` uses.
type auditFindingJSON struct {
	registry.Finding
	MissingRoute *missingRouteJSON `json:"missingRoute,omitempty"`
}

// auditJSON is the document of `audit --once -o json` (DESIGN.md).
type auditJSON struct {
	Complete    bool                   `json:"complete"`
	Missing     []string               `json:"missing"`
	Summary     registry.Summary       `json:"summary"`
	Providers   []auditFindingJSON     `json:"providers"`
	Consumers   []auditFindingJSON     `json:"consumers"`
	Unparseable []registry.Unparseable `json:"unparseable"`
}

func toAuditJSON(r *registry.Result) auditJSON {
	conv := func(fs []registry.Finding) []auditFindingJSON {
		out := make([]auditFindingJSON, len(fs))
		for i, f := range fs {
			out[i] = auditFindingJSON{Finding: f, MissingRoute: newMissingRouteJSON(f.MissingRoute)}
		}
		return out
	}
	return auditJSON{Complete: r.Complete, Missing: r.Missing, Summary: r.Summary, Providers: conv(r.Providers),
		Consumers: conv(r.Consumers), Unparseable: r.Unparseable}
}

type auditFlags struct {
	cf             clusterFlags
	cl             clustersFlag
	zk             string
	zkRoot         string
	servicesRoot   string
	authFile       string
	sessionTimeout time.Duration
	connectTimeout time.Duration
	once           bool
	output         string
	listen         string
	fx             fixFlags
	auth           string
	routeFormat    string
	resync         time.Duration
	leaderElect    bool
	leaderNS       string
	concurrency    int
	probe          auditProbeFlags
}

// zkAuthEnv holds digest credentials when --zk-auth-file is not given.
const zkAuthEnv = "DUBBOREACH_ZK_AUTH"

func newAuditCommand() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit --zk HOST:PORT[,...][/chroot]",
		Short: "Find Dubbo registrations in ZooKeeper that the network outside the cluster cannot reach, and say why",
		Long: `Scan ZooKeeper's Dubbo registrations (interface level under --zk-root, application level under
--services-root), judge each address with the same route core as 'check', map it to its pod and
node, and explain what to do.

--once scans once and prints the result (-o table|json). Exit status: 0 when every provider is
reachable and the scan is complete, 1 when a provider is unreachable or any path could not be
read, 2 on a usage or configuration error.

Without --once the auditor keeps watching: it serves /metrics, /healthz and /readyz on --listen,
and (with a cluster) writes UnreachableRegistration Events on the pods behind unreachable
registrations, from the elected leader only.

--fix MODE[,MODE...] (disable, undo-disable, prune, evict; default none) corrects what the audit
finds; --dry-run plans without changing anything. With --once the plan (--dry-run) or what was
changed is printed on stdout and the audit's summary on stderr; without --once the leader plans
and applies after each audit. 'audit restore' puts pruned entries back. See docs/fix.md.

--clusters FILE (with --once) audits a registry that several clusters share (docs/clusters.md):
each registration is judged by the cluster that owns its address and names it; one whose
cluster cannot be told is unknown (ambiguous-cluster), names its candidates and is never
corrected, and --fix corrects only what the clusters marked correct own.

Digest credentials for ZooKeeper ("user:password") are read from --zk-auth-file or from $` + zkAuthEnv + `;
they are never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAudit(cmd, &f) },
	}
	cmd.AddCommand(newAuditRestoreCommand())
	fs := cmd.Flags()
	f.cf.register(fs)
	f.cl.register(fs)
	f.cf.registerBGP(fs)
	fs.StringVar(&f.zk, "zk", "", "ZooKeeper connection string: host:port[,host:port...][/chroot] (required)")
	fs.StringVar(&f.zkRoot, "zk-root", "/dubbo", "root of Dubbo's interface-level registrations")
	fs.StringVar(&f.servicesRoot, "services-root", "/services", "root of application-level (Curator service discovery) instances")
	fs.StringVar(&f.authFile, "zk-auth-file", "", "file holding ZooKeeper digest credentials user:password (default: $"+zkAuthEnv+")")
	fs.DurationVar(&f.sessionTimeout, "zk-session-timeout", 15*time.Second, "ZooKeeper session timeout")
	fs.DurationVar(&f.connectTimeout, "zk-connect-timeout", 15*time.Second, "with --once: how long to wait for a ZooKeeper session")
	fs.IntVar(&f.concurrency, "zk-concurrency", 64, "ZooKeeper requests in flight during a full scan")
	fs.BoolVar(&f.once, "once", false, "scan once, print the result and exit")
	fs.StringVarP(&f.output, "output", "o", "table", "output format with --once: table|json")
	fs.StringVar(&f.listen, "listen", "", "address to serve /metrics, /healthz and /readyz on (long-running mode), e.g. :8080")
	f.fx.register(fs)
	f.probe.register(fs)
	fs.StringVar(&f.routeFormat, "route-format", string(render.Linux), "router dialect of the missing routes in explanations: "+strings.Join(render.Names(), "|"))
	fs.DurationVar(&f.resync, "resync", 10*time.Minute, "period of full rescans in long-running mode (watches keep the view current in between)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "with a cluster: elect a leader so that only one replica writes Events")
	fs.StringVar(&f.leaderNS, "leader-election-namespace", "", "namespace of the leader election lease (default: the pod's namespace)")
	return cmd
}

func runAudit(cmd *cobra.Command, f *auditFlags) error {
	if f.zk == "" {
		return usageError(errors.New("--zk is required: the ZooKeeper connection string, e.g. --zk zk-0.zk:2181,zk-1.zk:2181"))
	}
	if _, _, err := zk.ParseServers(f.zk); err != nil {
		return usageError(err)
	}
	modes, err := parseFixModes(f.fx.fix)
	if err != nil {
		return usageError(err)
	}
	if f.output != "table" && f.output != "json" {
		return usageError(fmt.Errorf("-o %q is not a format; use table or json", f.output))
	}
	if !slices.Contains(render.Names(), f.routeFormat) {
		return usageError(fmt.Errorf("--route-format %q is not a router dialect; use one of %s", f.routeFormat, strings.Join(render.Names(), ", ")))
	}
	if f.once && f.listen != "" {
		return usageError(errors.New("--listen serves a long-running auditor; drop it or --once"))
	}
	if err := f.cl.exclusive(&f.cf); err != nil {
		return err
	}
	if f.cl.file != "" && !f.once {
		return usageError(fmt.Errorf("--clusters %s needs --once for now: the long-running auditor watches one cluster (docs/clusters.md, \"What is built\"); "+
			"run audit --once --clusters on a schedule, or one long-running auditor per cluster with --kubeconfig", f.cl.file))
	}
	if err := validateFix(f, modes); err != nil {
		return usageError(err)
	}
	auth, err := zk.AuthFromFile(f.authFile, zkAuthEnv)
	if err != nil {
		return usageError(err)
	}
	f.auth = auth
	log := stdr.New(nil).WithName("audit")
	scan := zk.Config{
		Options:      zk.Options{Servers: f.zk, Auth: auth, SessionTimeout: f.sessionTimeout, Log: logr.Discard()},
		ZKRoot:       f.zkRoot,
		ServicesRoot: f.servicesRoot,
		Concurrency:  f.concurrency, Resync: f.resync, ConnectTimeout: f.connectTimeout,
	}
	for _, r := range []string{f.zkRoot, f.servicesRoot} {
		if !strings.HasPrefix(r, "/") {
			return usageError(fmt.Errorf("%q is not an absolute ZooKeeper path", r))
		}
	}
	if f.once {
		return auditOnce(cmd, f, modes, scan)
	}
	return auditServe(cmd, f, modes, scan, log)
}

func auditOnce(cmd *cobra.Command, f *auditFlags, modes fix.Modes, scan zk.Config) error {
	if f.cl.file != "" {
		return auditOnceClusters(cmd, f, modes, scan)
	}
	t, inv, err := f.cf.table(cmd.Context())
	if err != nil {
		return err
	}
	pods := registry.NewPodIndex()
	if f.cf.inventory != "" {
		pods.Replace(inv)
	} else if err := loadPods(cmd.Context(), &f.cf, inv, pods); err != nil {
		return err
	}
	r, err := registry.Once(cmd.Context(), scan, t, pods, render.Format(f.routeFormat))
	if err != nil {
		return usageError(err)
	}
	if len(modes) > 0 {
		return fixOnce(cmd.Context(), cmd, f, modes, scan, r)
	}
	w := cmd.OutOrStdout()
	if f.output == "json" {
		if err := writeJSON(w, toAuditJSON(r)); err != nil {
			return err
		}
	} else if err := writeAuditTable(w, f.zk, r, nil); err != nil {
		return err
	}
	if !r.Complete || r.Unreachable() {
		return errFindings
	}
	return nil
}

// loadPods reads pods and namespaces once from the cluster, for --once.
func loadPods(ctx context.Context, cf *clusterFlags, inv *routes.Inventory, pods *registry.PodIndex) error {
	cfg, err := cf.restConfig()
	if err != nil {
		return err
	}
	podInv, err := registry.LoadPods(ctx, cfg, scheme())
	if err != nil {
		return usageError(err)
	}
	inv.Pods, inv.Namespaces = podInv.Pods, podInv.Namespaces
	pods.Replace(inv)
	return nil
}

// writeAuditTable prints an audit; names, when several clusters were audited, adds their list
// and a CLUSTER column.
func writeAuditTable(w io.Writer, servers string, r *registry.Result, names []string) error {
	state := "complete"
	if !r.Complete {
		state = fmt.Sprintf("INCOMPLETE: %d path(s) not read; findings below may be missing entries", len(r.Missing))
	}
	fmt.Fprintf(w, "ZooKeeper %s: %s\n", servers, state)
	if names != nil {
		fmt.Fprintf(w, "Clusters: %s\n", strings.Join(names, ", "))
	}
	s := r.Summary
	fmt.Fprintf(w, "Providers: %d (reachable %d, unreachable %d, unknown %d); unparseable entries: %d; consumers: %d\n\n",
		s.Total-s.Unparseable, s.Reachable, s.Unreachable, s.Unknown, s.Unparseable, len(r.Consumers))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	column := map[bool]string{true: "\tCLUSTER"}[names != nil]
	fmt.Fprintln(tw, "SIDE\tKIND\tSERVICE\tADDRESS\tVERDICT\tREASON"+column+"\tNODE\tPOD")
	var explained []registry.Finding
	for _, list := range [][]registry.Finding{r.Providers, r.Consumers} {
		for _, f := range list {
			addr := f.Address
			if f.Port != 0 {
				addr = hostPortString(f.Address, f.Port)
			}
			cell := ""
			if names != nil {
				cell = "\t" + clusterCell(f.Cluster, f.Candidates)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\t%s\t%s\n", f.Side, f.Kind, f.Service, addr, f.Verdict, f.Reason, cell, dash(f.Node), dash(f.Pod))
			if f.Explanation != "" {
				explained = append(explained, f)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(explained) > 0 {
		fmt.Fprintf(w, "\nWhat to do (%d):\n", len(explained))
		for _, f := range explained {
			fmt.Fprintf(w, "  - %s %s at %s\n    %s\n", f.Side, f.Service, hostPortString(f.Address, f.Port), f.Explanation)
		}
	}
	if len(r.Unparseable) > 0 {
		fmt.Fprintf(w, "\nUnparseable (%d):\n", len(r.Unparseable))
		for _, u := range r.Unparseable {
			fmt.Fprintf(w, "  - %s\n    %s\n", u.Znode, u.Error)
		}
	}
	if len(r.MissingDetail) > 0 {
		fmt.Fprintf(w, "\nNot read (%d):\n", len(r.MissingDetail))
		for i, m := range r.MissingDetail {
			fmt.Fprintf(w, "  - %s: %s\n", r.Missing[i], m.Reason)
		}
	}
	return nil
}

func hostPortString(host string, port int) string {
	if port == 0 {
		return host
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// auditServe runs the long-running auditor (registry/server) with the command's flags.
func auditServe(cmd *cobra.Command, f *auditFlags, modes fix.Modes, scan zk.Config, log logr.Logger) error {
	o := server.Options{Scan: scan, Listen: f.listen, RouteFormat: render.Format(f.routeFormat),
		LeaderElect: f.leaderElect, LeaderElectionNamespace: f.leaderNS, BGPStatusNamespace: f.cf.bgpNamespace, Fix: f.fx.options(modes), Log: log}
	if err := f.probe.apply(&o); err != nil {
		return err
	}
	var err error
	if o.Fabric, err = f.cf.loadFabric(); err != nil {
		return err
	}
	if f.cf.inventory != "" {
		if o.Inventory, err = f.cf.loadInventory(cmd.Context()); err != nil {
			return err
		}
		warnIgnored(cmd.ErrOrStderr(), o.Inventory)
	} else if o.RestConfig, err = f.cf.restConfig(); err != nil {
		return err
	}
	if len(modes) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "audit: --fix %s%s: the leader plans and applies corrections after each audit\n", modes,
			map[bool]string{true: " (dry run: nothing is changed)", false: ""}[f.fx.dryRun])
	}
	err = server.Run(cmd.Context(), o)
	if ce := (*server.ConfigError)(nil); errors.As(err, &ce) {
		return usageError(err)
	}
	return err
}
