package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/clusters"
	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/registry/lock"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// clustersFlag is --clusters FILE (docs/clusters.md): several clusters, each with its own
// source of state and pod-route facts, and the shared data-center facts. It replaces
// --kubeconfig, --inventory and --fabric.
type clustersFlag struct{ file string }

func (c *clustersFlag) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.file, "clusters", "", "clusters file (kind: Clusters): judge against several clusters sharing the registry, each address by the cluster that owns it (docs/clusters.md); replaces --kubeconfig, --inventory and --fabric")
}

// exclusive says, as a usage error, which single-cluster flag was given with --clusters.
func (c *clustersFlag) exclusive(cf *clusterFlags) error {
	if c.file == "" {
		return nil
	}
	for _, x := range []struct{ name, value, why string }{
		{"--kubeconfig", cf.kubeconfig, "give each cluster its kubeconfig (and context) in the clusters file"},
		{"--inventory", cf.inventory, "give the cluster an inventory: entry in the clusters file"},
		{"--fabric", cf.fabric, "put the shared facts (reachable, unreachable) in the clusters file's spec and each cluster's podRoutes, serviceCIDR and bgp under it"},
	} {
		if x.value != "" {
			return usageError(fmt.Errorf("--clusters and %s cannot be combined: the clusters file %s names every cluster and its facts; drop %s (%s)",
				x.name, c.file, x.name, x.why))
		}
	}
	return nil
}

// load reads the clusters file and every cluster's state once (Nodes, Calico blocks, Pods,
// Namespaces). Every error is a usage error (exit 2), as --inventory's and --kubeconfig's are.
func (c *clustersFlag) load(ctx context.Context, stderr io.Writer) (*clusters.File, []clusters.View, error) {
	f, err := clusters.Load(c.file)
	if err != nil {
		return nil, nil, usageError(err)
	}
	views := make([]clusters.View, 0, len(f.Clusters))
	for i := range f.Clusters {
		cl := &f.Clusters[i]
		v, inv, err := cl.LoadView(ctx)
		if err != nil {
			return nil, nil, usageError(fmt.Errorf("%s: %w", c.file, err))
		}
		if len(inv.Ignored) > 0 {
			fmt.Fprintf(stderr, "note: cluster %s: the inventory's %d objects of other kinds were not used (first: %s)\n", cl.Name, len(inv.Ignored), inv.Ignored[0])
		}
		views = append(views, v)
	}
	return f, views, nil
}

// clusterCell is a registration's cluster in a table: the owner, the candidates of an
// ambiguous one ("east|west"), or "-" for none (a VM, the data center).
func clusterCell(cluster string, candidates []string) string {
	if cluster == "" && len(candidates) > 0 {
		return strings.Join(candidates, "|")
	}
	return dash(cluster)
}

// setVerdict fills a check entry from a route table's verdict.
func setVerdict(a *checkJSON, v routes.Verdict) {
	a.Verdict, a.Reason = v.Status, v.Reason
	a.Node, a.Prefix = v.Node(), prefixString(v.Prefix)
	a.MissingRoute = newMissingRouteJSON(v.MissingRoute())
}

// checkClusters judges each address by the cluster that owns it (`check --clusters`) and
// returns, per address, the explanation of an ambiguous one (empty for the others).
func checkClusters(cmd *cobra.Command, cl *clustersFlag, addrs []checkJSON, ips []netip.Addr) ([]string, error) {
	_, views, err := cl.load(cmd.Context(), cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	explained := make([]string, len(addrs))
	for i := range addrs {
		o, why := clusters.Check(ips[i], views)
		setVerdict(&addrs[i], o.Verdict)
		if o.Owner >= 0 {
			addrs[i].Cluster = views[o.Owner].Name
		}
		if o.Ambiguous() {
			addrs[i].Candidates = clusters.Names(o.Candidates, views)
			explained[i] = why
		}
	}
	return explained, nil
}

// writeAmbiguous says, under check's table, why each ambiguous-cluster address is unknown.
func writeAmbiguous(w io.Writer, addrs []checkJSON, explained []string) {
	n := 0
	for _, e := range explained {
		if e != "" {
			n++
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nCluster cannot be told (%d):\n", n)
	for i, e := range explained {
		if e != "" {
			fmt.Fprintf(w, "  - %s\n    %s\n", addrs[i].Address, e)
		}
	}
}

// auditOnceClusters is `audit --once --clusters FILE`: one scan judged against every cluster
// (registry/clusters.Judge); --fix acts only on what clusters.ForCorrection keeps, and (unless
// --dry-run) scans, plans and applies under the fix lock.
func auditOnceClusters(cmd *cobra.Command, f *auditFlags, modes fix.Modes, scan zk.Config) error {
	ctx, stderr := cmd.Context(), cmd.ErrOrStderr()
	file, views, err := f.cl.load(ctx, stderr)
	if err != nil {
		return err
	}
	if len(modes) > 0 && !f.fx.dryRun {
		locked, release, err := takeFixLock(ctx, f, stderr)
		if err != nil {
			return err
		}
		defer release()
		ctx = locked
	}
	snap, err := zk.Once(ctx, scan)
	if err != nil {
		return usageError(err)
	}
	r := (&clusters.Judge{Format: render.Format(f.routeFormat)}).Judge(snap, views)
	if len(modes) > 0 {
		fr := clusters.ForCorrection(r, file.Corrects())
		writeLeftAlone(stderr, file, r, fr)
		return fixOnce(ctx, cmd, f, modes, scan, fr)
	}
	w := cmd.OutOrStdout()
	if f.output == "json" {
		if err := writeJSON(w, toAuditJSON(r)); err != nil {
			return err
		}
	} else if err := writeAuditTable(w, f.zk, r, file.Names()); err != nil {
		return err
	}
	if !r.Complete || r.Unreachable() {
		return errFindings
	}
	return nil
}

// writeLeftAlone says on stderr which registrations no correction may touch: those whose
// cluster cannot be told and those of clusters marked correct: false.
func writeLeftAlone(w io.Writer, file *clusters.File, all, kept *registry.Result) {
	ambiguous, others := 0, map[string]int{}
	for _, list := range [][]registry.Finding{all.Providers, all.Consumers} {
		for _, f := range list {
			switch {
			case f.Cluster == "" && len(f.Candidates) > 0:
				ambiguous++
			case f.Cluster != "" && !file.Corrects()(f.Cluster):
				others[f.Cluster]++
			}
		}
	}
	var parts []string
	if ambiguous > 0 {
		parts = append(parts, fmt.Sprintf("%d whose cluster cannot be told (ambiguous-cluster)", ambiguous))
	}
	for _, name := range file.Names() {
		if n := others[name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d of cluster %s (correct: false)", n, name))
		}
	}
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(w, "audit: --clusters: corrections consider %d of %d registrations; left alone: %s\n",
		len(kept.Providers)+len(kept.Consumers), len(all.Providers)+len(all.Consumers), strings.Join(parts, ", "))
}

// defaultFixLock is --fix-lock's default: one lock for every auditor of the registry.
const defaultFixLock = "/dubboreach/locks/fix"

// takeFixLock waits (up to --fix-lock-wait) for the ZooKeeper lock --fix-lock (under the
// connection's chroot) on a session of its own. The returned context ends when the lock is
// lost, so that no change is made after that; release unlocks and closes the session.
func takeFixLock(ctx context.Context, f *auditFlags, stderr io.Writer) (context.Context, func(), error) {
	c, err := zk.NewClient(zk.Options{Servers: f.zk, Auth: f.auth, SessionTimeout: f.sessionTimeout, Log: logr.Discard()})
	if err != nil {
		return nil, nil, usageError(err)
	}
	rctx, cancel := context.WithTimeout(ctx, f.connectTimeout)
	defer cancel()
	if err := c.Ready(rctx); err != nil {
		c.Close()
		return nil, nil, &exitError{code: ExitFindings, err: fmt.Errorf("ZooKeeper %s for the fix lock: %w; nothing was changed", f.zk, err)}
	}
	at := path.Clean(c.Chroot + f.fx.lockPath)
	m, err := lock.New(c.Conn, at, nil)
	if err != nil {
		c.Close()
		return nil, nil, usageError(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, f.fx.lockWait)
	defer wcancel()
	lost, err := m.Lock(wctx)
	if err != nil {
		c.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("another auditor has held the fix lock %s for more than --fix-lock-wait %s; nothing was changed (try again later, or raise --fix-lock-wait)", at, f.fx.lockWait)
		} else {
			err = fmt.Errorf("taking the fix lock %s: %w; nothing was changed", at, err)
		}
		return nil, nil, &exitError{code: ExitFindings, err: err}
	}
	fmt.Fprintf(stderr, "audit: holding the fix lock %s\n", at)
	locked, stop := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-lost:
			stop(fmt.Errorf("%w: %s", lock.ErrLost, at))
		case <-done:
		}
	}()
	release := func() {
		close(done)
		if context.Cause(locked) != nil && errors.Is(context.Cause(locked), lock.ErrLost) {
			fmt.Fprintf(stderr, "audit: %v: the corrections stopped there; what was not yet applied is reported failed\n", context.Cause(locked))
		}
		stop(nil)
		if err := m.Unlock(); err != nil {
			fmt.Fprintf(stderr, "audit: %v (ZooKeeper removes it when this session closes)\n", err)
		}
		c.Close()
	}
	return locked, release, nil
}
