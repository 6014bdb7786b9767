package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/registry/server"
	"github.com/dubboreach/dubboreach/registry/zk"
)

// fixFlags are the flags of `audit --fix` (docs/fix.md).
type fixFlags struct {
	fix          string
	dryRun       bool
	staleAfter   time.Duration
	maxEvictions int
	minPodAge    time.Duration
	maxChanges   int
	backupDir    string
	legacy       bool
	configRoot   string
	disableScope string
	lockPath     string
	lockWait     time.Duration
}

// fixModeNames are the values --fix accepts, in the order the help lists them.
var fixModeNames = append([]string{"none"}, fix.ModeNames...)

func (f *fixFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.fix, "fix", "none", "correct registrations: "+strings.Join(fixModeNames, "|")+"; several modes combine as a comma list (disable,evict); see docs/fix.md")
	fs.BoolVar(&f.dryRun, "dry-run", false, "with --fix: plan the corrections and make none (with --once the plan is printed as JSON)")
	fs.DurationVar(&f.staleAfter, "stale-after", 10*time.Minute, "with --fix prune: how long a persistent entry must stay orphaned before it is deleted (with --once: 0, the only value a single scan can honour)")
	fs.IntVar(&f.maxEvictions, "max-evictions-per-minute", 5, "with --fix evict: evictions per sliding minute")
	fs.DurationVar(&f.minPodAge, "min-pod-age", 5*time.Minute, "with --fix evict: pods younger than this are never evicted (a re-created pod gets time to register its new address)")
	fs.IntVar(&f.maxChanges, "max-fix-changes", 20, "with --fix: cap on changes per cycle; a plan above it changes nothing and sets dubboreach_fix_cap_exceeded")
	fs.StringVar(&f.backupDir, "fix-backup-dir", "", "with --fix prune: directory for the backup files written before any delete (required unless --dry-run)")
	fs.BoolVar(&f.legacy, "legacy-override", false, "with --fix disable: also register the 2.6-era override:// URL under <zk-root>/<interface>/configurators")
	fs.StringVar(&f.configRoot, "config-root", "", "with --fix disable: the config-center group node that holds <service>.configurators rules (default <zk-root>/config/dubbo, where Dubbo reads them)")
	fs.StringVar(&f.lockPath, "fix-lock", defaultFixLock, "with --clusters and --fix (not --dry-run): the ZooKeeper lock (Curator InterProcessMutex recipe) under which the audit is scanned, planned and applied, so that auditors sharing the registry correct it one at a time")
	fs.DurationVar(&f.lockWait, "fix-lock-wait", time.Minute, "with --fix-lock: how long to wait for the lock before giving up (exit 1, nothing changed)")
	fs.StringVar(&f.disableScope, "disable-scope", fix.ScopeOutside, "with --fix disable: which consumers the rules address: outside (the registered consumers outside the clusters, by address) or all (0.0.0.0, consumers inside too)")
}

// parseFixModes reads --fix MODE[,MODE...].
func parseFixModes(s string) (fix.Modes, error) {
	allowed := "allowed: " + strings.Join(fixModeNames, ", ") + " (comma separated, e.g. --fix=disable,evict)"
	m := fix.Modes{}
	none := false
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		switch p {
		case "":
			if strings.TrimSpace(s) != "" {
				return nil, fmt.Errorf("--fix %q: empty mode in the list; %s", s, allowed)
			}
			none = true
		case "none":
			none = true
		case fix.ModeDisable, fix.ModeUndoDisable, fix.ModePrune, fix.ModeEvict:
			m[p] = true
		default:
			return nil, fmt.Errorf("--fix %q: unknown mode %q; %s", s, p, allowed)
		}
	}
	if none && len(m) > 0 {
		return nil, fmt.Errorf("--fix %q: none cannot be combined with other modes; %s", s, allowed)
	}
	if m[fix.ModeDisable] && m[fix.ModeUndoDisable] {
		return nil, fmt.Errorf("--fix %q: disable and undo-disable contradict each other (undo-disable removes what disable writes); pick one", s)
	}
	return m, nil
}

// validateFix checks the fix flags against the rest of the command line.
func validateFix(f *auditFlags, m fix.Modes) error {
	x := &f.fx
	if len(m) == 0 {
		return nil
	}
	if x.maxChanges < 1 {
		return fmt.Errorf("--max-fix-changes %d: want at least 1", x.maxChanges)
	}
	if x.configRoot != "" && (!strings.HasPrefix(x.configRoot, "/") || path.Clean(x.configRoot) != x.configRoot) {
		return fmt.Errorf("--config-root %q is not a clean absolute ZooKeeper path", x.configRoot)
	}
	if f.cl.file != "" && !x.dryRun {
		if !strings.HasPrefix(x.lockPath, "/") || path.Clean(x.lockPath) != x.lockPath || x.lockPath == "/" {
			return fmt.Errorf("--fix-lock %q is not a clean absolute ZooKeeper path (default %s)", x.lockPath, defaultFixLock)
		}
		if x.lockWait <= 0 {
			return fmt.Errorf("--fix-lock-wait %s: want a positive duration (default 1m)", x.lockWait)
		}
	}
	if x.disableScope != fix.ScopeOutside && x.disableScope != fix.ScopeAll {
		return fmt.Errorf("--disable-scope %q: want %s (the consumers outside the clusters) or %s (every consumer, 0.0.0.0)", x.disableScope, fix.ScopeOutside, fix.ScopeAll)
	}
	if m[fix.ModeEvict] {
		if f.cl.file != "" {
			return fmt.Errorf("--fix evict with --clusters is not supported yet: an eviction goes to the API server of the pod's own cluster, which --clusters does not wire; " +
				"run --fix evict per cluster (--kubeconfig), or drop evict")
		}
		if f.cf.inventory != "" {
			return errors.New("--fix evict needs a cluster (it evicts pods through the Eviction API): drop --inventory and use --kubeconfig or in-cluster config, or drop evict")
		}
		if x.maxEvictions < 1 {
			return fmt.Errorf("--max-evictions-per-minute %d: want at least 1", x.maxEvictions)
		}
		if x.minPodAge <= 0 {
			return fmt.Errorf("--min-pod-age %s: want a positive duration (default 5m), or pods re-created by an eviction are evicted again", x.minPodAge)
		}
	}
	if m[fix.ModePrune] {
		switch {
		case x.staleAfter < 0:
			return fmt.Errorf("--stale-after %s: want a duration of 0 or more", x.staleAfter)
		case f.once && x.staleAfter != 0:
			return fmt.Errorf("--fix prune with --once: a single scan cannot see how long an entry has been orphaned, so it cannot honour --stale-after %s; "+
				"pass --stale-after=0 to prune what is orphaned now, or run the long-running auditor (without --once)", x.staleAfter)
		case !f.once && x.staleAfter == 0:
			return errors.New("--stale-after=0 is for --once only; the long-running auditor needs a grace period (default 10m)")
		case x.backupDir == "" && !x.dryRun:
			return errors.New("--fix prune needs --fix-backup-dir DIR: every deleted entry is written there first, for `dubboreach audit restore`")
		}
	}
	return nil
}

// options binds the fix flags to the server's fix policy.
func (f *fixFlags) options(m fix.Modes) server.Fix {
	return server.Fix{Modes: m, DryRun: f.dryRun, StaleAfter: f.staleAfter, MaxEvictions: f.maxEvictions, MinPodAge: f.minPodAge,
		MaxChanges: f.maxChanges, BackupDir: f.backupDir, Legacy: f.legacy, ConfigRoot: f.configRoot, DisableScope: f.disableScope}
}

// fixOnce plans (and, without --dry-run, applies) the corrections for one audit result.
// stdout carries the plan (--dry-run) or the report as JSON (-o json) or lines (-o table); the
// audit's summary goes to stderr.
// ctx ends the corrections (with --clusters: when the fix lock is lost).
func fixOnce(ctx context.Context, cmd *cobra.Command, f *auditFlags, m fix.Modes, scan zk.Config, r *registry.Result) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	s := r.Summary
	fmt.Fprintf(stderr, "audit: %s; providers %d (reachable %d, unreachable %d, unknown %d); --fix %s%s\n",
		map[bool]string{true: "complete scan", false: fmt.Sprintf("INCOMPLETE scan (%d path(s) not read)", len(r.Missing))}[r.Complete],
		s.Total-s.Unparseable, s.Reachable, s.Unreachable, s.Unknown, m, map[bool]string{true: " (dry run)", false: ""}[f.fx.dryRun])
	if m.NeedsScan() && !r.Complete {
		fmt.Fprintf(stderr, "audit: the scan is incomplete: no fix is planned or applied (not read: %s)\n", strings.Join(r.Missing, ", "))
		if f.fx.dryRun {
			_ = writeJSON(stdout, fix.Plan{Complete: false, Changes: []fix.Change{}})
		}
		return errFindings
	}
	c, err := zk.NewClient(zk.Options{Servers: f.zk, Auth: f.auth, SessionTimeout: f.sessionTimeout, Log: logr.Discard()})
	if err != nil {
		return usageError(err)
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, f.connectTimeout)
	defer cancel()
	if err := c.Ready(rctx); err != nil {
		return &exitError{code: ExitFindings, err: fmt.Errorf("ZooKeeper %s for the fixes: %w; nothing was changed", f.zk, err)}
	}
	var ev *fix.Evictor
	if m[fix.ModeEvict] {
		cfg, err := f.cf.restConfig()
		if err != nil {
			return err
		}
		cl, err := client.New(cfg, client.Options{Scheme: scheme()})
		if err != nil {
			return usageError(fmt.Errorf("connecting to the cluster: %w", err))
		}
		ev = f.fx.options(m).Evictor(cl)
	}
	fc := f.fx.options(m).Controller(scan, c, ev)
	plan, err := fc.Plan(ctx, r, time.Now())
	if err != nil {
		return &exitError{code: ExitFindings, err: fmt.Errorf("%w; nothing was changed", err)}
	}
	if f.fx.dryRun {
		if err := writeJSON(stdout, plan); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "audit: dry run: %d change(s) planned, %d skipped; nothing was changed\n", len(plan.Changes), len(plan.Skipped))
		return nil
	}
	rep, err := fc.Apply(ctx, plan)
	if f.output == "json" {
		if werr := writeJSON(stdout, rep); werr != nil {
			return werr
		}
	} else {
		writeFixReport(stdout, rep)
	}
	if err != nil {
		return &exitError{code: ExitFindings, err: err}
	}
	if n := rep.Count(fix.ResultConflict) + rep.Count(fix.ResultFailed) + rep.Count(fix.ResultRefused); n > 0 {
		fmt.Fprintf(stderr, "audit: %d change(s) did not go through (conflict, refused or failed); see above\n", n)
		return errFindings
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFixReport prints one line per result, then the backup and how to restore it.
func writeFixReport(w io.Writer, rep fix.Report) {
	if len(rep.Results) == 0 {
		fmt.Fprintln(w, "Nothing to change.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tMODE\tOP\tPATH\tSUBJECT\tDETAIL")
	for _, res := range rep.Results {
		c := res.Change
		detail := res.Error
		if detail == "" {
			detail = c.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", res.Result, c.Mode, dash(c.Op), dash(c.Path), c.Subject(), detail)
	}
	_ = tw.Flush()
	if rep.Backup != "" {
		fmt.Fprintf(w, "\nBackup of the pruned entries: %s\nRestore with: %s\n", rep.Backup, rep.RestoreCommand)
	}
}

// newAuditRestoreCommand is `dubboreach audit restore`: put a prune backup back.
func newAuditRestoreCommand() *cobra.Command {
	var (
		servers, authFile, file, output string
		sessionTimeout, connectTimeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "restore --zk HOST:PORT[,...] --backup FILE",
		Short: "Create again, byte for byte, the ZooKeeper entries that `audit --fix prune` deleted",
		Long: `Read a backup file written by 'audit --fix prune' and create each entry again (persistent, with
its data and ACL; missing parents are created empty). An entry that already exists with the same
data is left as it is; one that exists with other data is not touched and reported as a conflict.
Restoring twice changes nothing.

The paths in the backup are absolute from the server's root (a chroot is part of them), so a
chroot in --zk is ignored. Exit status: 0 when every entry is in place, 1 when one could not be
restored, 2 on a usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if servers == "" || file == "" {
				return usageError(errors.New("--zk and --backup are required: dubboreach audit restore --zk HOST:PORT --backup FILE"))
			}
			if output != "table" && output != "json" {
				return usageError(fmt.Errorf("-o %q is not a format; use table or json", output))
			}
			hosts, _, err := zk.ParseServers(servers)
			if err != nil {
				return usageError(err)
			}
			b, err := fix.ReadBackup(file)
			if err != nil {
				return usageError(err)
			}
			auth, err := zk.AuthFromFile(authFile, zkAuthEnv)
			if err != nil {
				return usageError(err)
			}
			c, err := zk.NewClient(zk.Options{Servers: strings.Join(hosts, ","), Auth: auth, SessionTimeout: sessionTimeout, Log: logr.Discard()})
			if err != nil {
				return usageError(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), connectTimeout)
			defer cancel()
			if err := c.Ready(ctx); err != nil {
				return &exitError{code: ExitFindings, err: fmt.Errorf("ZooKeeper %s: %w; nothing was restored", servers, err)}
			}
			results := fix.Restore(c, b)
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), results); err != nil {
					return err
				}
			} else {
				writeFixReport(cmd.OutOrStdout(), fix.Report{Results: results})
			}
			bad := 0
			for _, r := range results {
				if r.Result == fix.ResultConflict || r.Result == fix.ResultFailed {
					bad++
				}
			}
			if bad > 0 {
				return &exitError{code: ExitFindings, err: fmt.Errorf("%d of %d entries not restored", bad, len(results))}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&servers, "zk", "", "ZooKeeper connection string: host:port[,host:port...] (required)")
	fs.StringVar(&file, "backup", "", "backup file written by audit --fix prune (required)")
	fs.StringVar(&authFile, "zk-auth-file", "", "file holding ZooKeeper digest credentials user:password (default: $"+zkAuthEnv+")")
	fs.DurationVar(&sessionTimeout, "zk-session-timeout", 15*time.Second, "ZooKeeper session timeout")
	fs.DurationVar(&connectTimeout, "zk-connect-timeout", 15*time.Second, "how long to wait for a ZooKeeper session")
	fs.StringVarP(&output, "output", "o", "table", "output format: table|json")
	return cmd
}
