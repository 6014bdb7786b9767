package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/dashboard"
	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
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
}

// fixModeNames are the values --fix accepts, in the order the help lists them.
var fixModeNames = []string{"none", fix.ModeDisable, fix.ModeUndoDisable, fix.ModePrune, fix.ModeEvict}

func (f *fixFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.fix, "fix", "none", "correct registrations: "+strings.Join(fixModeNames, "|")+"; several modes combine as a comma list (disable,evict); see docs/fix.md")
	fs.BoolVar(&f.dryRun, "dry-run", false, "with --fix: plan the corrections and make none (with --once the plan is printed as JSON)")
	fs.DurationVar(&f.staleAfter, "stale-after", 10*time.Minute, "with --fix prune: how long a persistent entry must stay orphaned before it is deleted (with --once: 0, the only value a single scan can honour)")
	fs.IntVar(&f.maxEvictions, "max-evictions-per-minute", 5, "with --fix evict: evictions per sliding minute")
	fs.DurationVar(&f.minPodAge, "min-pod-age", 5*time.Minute, "with --fix evict: pods younger than this are never evicted (a re-created pod gets time to register its new address)")
	fs.IntVar(&f.maxChanges, "max-fix-changes", 20, "with --fix: cap on changes per cycle; a plan above it changes nothing and sets dubboreach_fix_cap_exceeded")
	fs.StringVar(&f.backupDir, "fix-backup-dir", "", "with --fix prune: directory for the backup files written before any delete (required unless --dry-run)")
	fs.BoolVar(&f.legacy, "legacy-override", false, "with --fix disable: also register the 2.6-era override:// URL under <zk-root>/<interface>/configurators")
	fs.StringVar(&f.configRoot, "config-root", "/dubbo/config/dubbo", "with --fix disable: the config-center group node that holds <service>.configurators rules")
}

// fixModes is the set of modes --fix asked for; empty means none.
type fixModes map[string]bool

// needsScan says whether a mode acts on the scan's findings (all but undo-disable).
func (m fixModes) needsScan() bool { return m[fix.ModeDisable] || m[fix.ModePrune] || m[fix.ModeEvict] }

func (m fixModes) String() string {
	var out []string
	for _, n := range fixModeNames {
		if m[n] {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// parseFixModes reads --fix MODE[,MODE...].
func parseFixModes(s string) (fixModes, error) {
	allowed := "allowed: " + strings.Join(fixModeNames, ", ") + " (comma separated, e.g. --fix=disable,evict)"
	m := fixModes{}
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
func validateFix(f *auditFlags, m fixModes) error {
	x := &f.fx
	if len(m) == 0 {
		return nil
	}
	if x.maxChanges < 1 {
		return fmt.Errorf("--max-fix-changes %d: want at least 1", x.maxChanges)
	}
	if !strings.HasPrefix(x.configRoot, "/") || path.Clean(x.configRoot) != x.configRoot {
		return fmt.Errorf("--config-root %q is not a clean absolute ZooKeeper path", x.configRoot)
	}
	if m[fix.ModeEvict] {
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

// fixer plans and applies the corrections of one process.
type fixer struct {
	modes   fixModes
	zk      fix.ZK
	disable fix.DisableOptions
	stale   *fix.Staleness // nil with --once: prune what is orphaned now
	evictor *fix.Evictor
	exec    *fix.Executor
}

func newFixer(f *auditFlags, m fixModes, c *zk.Client, ev *fix.Evictor) *fixer {
	x := &fixer{modes: m, zk: c, evictor: ev,
		disable: fix.DisableOptions{
			ConfigRoot:   path.Clean(c.Chroot + f.fx.configRoot),
			RegistryRoot: path.Clean(c.Chroot + f.zkRoot),
			Legacy:       f.fx.legacy,
		},
		exec: &fix.Executor{ZK: c, Evictor: ev, MaxChanges: f.fx.maxChanges, DryRun: f.fx.dryRun, BackupDir: f.fx.backupDir,
			RestoreCommand: func(file string) string {
				return "dubboreach audit restore --zk " + shellQuote(f.zk) + " --backup " + shellQuote(file)
			}},
	}
	if !f.once {
		x.stale = fix.NewStaleness(f.fx.staleAfter)
	}
	return x
}

func shellQuote(s string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/.,:_-=@+", r)
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fixTargets turns the auditor's provider findings into the targets of each mode.
func fixTargets(r *registry.Result) (disable, prune, evict []fix.Target) {
	for i := range r.Providers {
		f := &r.Providers[i]
		t := fix.Target{Interface: f.Service, Version: f.Version, Group: f.Group, Application: f.Application,
			Protocol: f.Protocol, Znode: f.Path, Dynamic: !f.Persistent, Reason: string(f.Reason),
			// Stale: a pod-network address that no pod holds (a node address is never stale).
			Orphan: f.Stale && f.PodName == ""}
		if a, err := netip.ParseAddr(strings.Trim(f.Address, "[]")); err == nil && f.Port > 0 && f.Port <= 65535 {
			t.Address = netip.AddrPortFrom(a.Unmap(), uint16(f.Port))
		}
		if f.PodName != "" {
			t.Pod = &types.NamespacedName{Namespace: f.PodNamespace, Name: f.PodName}
			t.PodUID = f.PodUID
		}
		unreachable := f.Verdict == routes.Unreachable
		if f.Kind == registry.KindInterface {
			// Unknown verdicts are never acted on: dubboreach does not know they are broken.
			if unreachable || f.Stale {
				disable = append(disable, t)
			}
			prune = append(prune, t)
		}
		if unreachable && t.Pod != nil {
			evict = append(evict, t)
		}
	}
	return disable, prune, evict
}

// plan makes the plan of one cycle from a result. With an incomplete scan and a mode that
// needs one, it returns ErrIncompleteScan and plans nothing.
func (x *fixer) plan(ctx context.Context, r *registry.Result, now time.Time) (fix.Plan, error) {
	plan := fix.Plan{Complete: true, Changes: []fix.Change{}}
	if x.modes.needsScan() && !r.Complete {
		return fix.Plan{Changes: []fix.Change{}}, fix.ErrIncompleteScan
	}
	dis, prn, ev := fixTargets(r)
	if x.modes[fix.ModeUndoDisable] {
		p, err := fix.PlanUndoDisable(x.zk, x.disable)
		if err != nil {
			return fix.Plan{}, fmt.Errorf("planning undo-disable: %w", err)
		}
		plan.Add(p)
	}
	if x.modes[fix.ModeDisable] {
		p, err := fix.PlanDisable(x.zk, r.Complete, dis, x.disable)
		if err != nil {
			return fix.Plan{}, fmt.Errorf("planning disable: %w", err)
		}
		plan.Add(p)
	}
	if x.modes[fix.ModePrune] {
		clock := x.stale
		if clock == nil { // --once --stale-after=0: orphaned now is due now
			clock = fix.NewStaleness(time.Minute)
			clock.After = 0
		}
		p, err := fix.PlanPrune(x.zk, r.Complete, prn, clock, now)
		if err != nil {
			return fix.Plan{}, fmt.Errorf("planning prune: %w", err)
		}
		plan.Add(p)
	}
	if x.modes[fix.ModeEvict] {
		p, err := x.evictor.Plan(ctx, r.Complete, ev, now)
		if err != nil {
			return fix.Plan{}, fmt.Errorf("planning evict: %w", err)
		}
		plan.Add(p)
	}
	return plan, nil
}

// fixOnce plans (and, without --dry-run, applies) the corrections for one audit result.
// stdout carries the plan (--dry-run) or the report as JSON (-o json) or lines (-o table); the
// audit's summary goes to stderr.
func fixOnce(cmd *cobra.Command, f *auditFlags, m fixModes, r *registry.Result) error {
	ctx := cmd.Context()
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	s := r.Summary
	fmt.Fprintf(stderr, "audit: %s; providers %d (reachable %d, unreachable %d, unknown %d); --fix %s%s\n",
		map[bool]string{true: "complete scan", false: fmt.Sprintf("INCOMPLETE scan (%d path(s) not read)", len(r.Missing))}[r.Complete],
		s.Total-s.Unparseable, s.Reachable, s.Unreachable, s.Unknown, m, map[bool]string{true: " (dry run)", false: ""}[f.fx.dryRun])
	if m.needsScan() && !r.Complete {
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
		ev = fix.NewEvictor(cl, fix.EvictOptions{MaxPerMinute: f.fx.maxEvictions, MinPodAge: f.fx.minPodAge})
	}
	x := newFixer(f, m, c, ev)
	plan, err := x.plan(ctx, r, time.Now())
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
	rep, err := x.exec.Apply(ctx, plan)
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

// fixHook returns the Auditor hook of the long-running auditor: on the leader, each published
// result is planned and applied; results are logged, counted and (with a cluster) recorded as
// Events on the pod concerned.
func (x *fixer) hook(c *zk.Client, leading func() bool, m *fix.Metrics, rec events.EventRecorder, fixLog *dashboard.FixLog, log logr.Logger) func(context.Context, *registry.Result) {
	var mu sync.Mutex
	var pods map[string]*corev1.ObjectReference // provider ip:port -> its pod, for Events
	seen := map[string]bool{}                   // results logged last cycle: the rest is news
	next := map[string]bool{}
	lastErr := ""
	logErr := func(msg string, err error) {
		if s := msg + err.Error(); s != lastErr {
			lastErr = s
			log.Error(err, msg)
		}
	}
	x.exec.OnResult = func(res fix.Result) {
		m.Observe(res)
		ch := res.Change
		key := strings.Join([]string{res.Result, ch.Mode, ch.Op, ch.Path, ch.Provider, ch.Service, res.Error}, "\x00")
		next[key] = true
		if !seen[key] || res.Result == fix.ResultApplied {
			kv := []any{"result", res.Result, "mode", ch.Mode, "op", ch.Op, "path", ch.Path, "subject", ch.Subject(), "reason", ch.Reason}
			if res.Error != "" {
				kv = append(kv, "error", res.Error)
			}
			log.Info("fix", kv...)
			if fixLog != nil { // the dashboard's Corrections: the same first sightings as the log
				fixLog.Add(dashboard.FixEntry{At: time.Now(), Mode: ch.Mode, Op: ch.Op, Result: res.Result, Subject: ch.Subject(),
					Service: ch.Service, Provider: ch.Provider, Path: ch.Path, Reason: ch.Reason, Error: res.Error})
			}
		}
		switch res.Result {
		case fix.ResultApplied, fix.ResultConflict, fix.ResultRefused, fix.ResultFailed:
		default:
			return // planned, skipped or deferred: logged and counted, no Event every cycle
		}
		if rec == nil {
			return
		}
		ref := pods[ch.Provider]
		if ch.Pod != nil {
			ref = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ch.Pod.Namespace, Name: ch.Pod.Name, UID: ch.PodUID}
		}
		if ref == nil {
			return // nothing in the cluster to attach it to (an orphaned entry): the log line stands
		}
		typ, reason := corev1.EventTypeNormal, "RegistrationFixed"
		if res.Result != fix.ResultApplied {
			typ, reason = corev1.EventTypeWarning, "RegistrationFixFailed"
		}
		note := fmt.Sprintf("%s %s %s (%s): %s %s", ch.Mode, dash(ch.Op), ch.Subject(), res.Result, ch.Reason, res.Error)
		if ch.Path != "" {
			note += " [" + ch.Path + "]"
		}
		if len(note) > 1000 {
			note = note[:1000]
		}
		rec.Eventf(ref, nil, typ, reason, "Fix", "%s", note)
	}
	return func(ctx context.Context, r *registry.Result) {
		if !leading() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if x.modes.needsScan() && !r.Complete {
			logErr("no fix this cycle", fix.ErrIncompleteScan)
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Ready(rctx)
		cancel()
		if err != nil {
			logErr("no fix this cycle: ZooKeeper for the fixes", err)
			return
		}
		plan, err := x.plan(ctx, r, time.Now())
		if err != nil {
			logErr("no fix this cycle", err)
			return
		}
		pods = map[string]*corev1.ObjectReference{}
		for i := range r.Providers {
			f := &r.Providers[i]
			if f.PodName != "" && f.Port != 0 {
				pods[hostPortString(f.Address, f.Port)] = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod",
					Namespace: f.PodNamespace, Name: f.PodName, UID: f.PodUID}
			}
		}
		next = map[string]bool{}
		rep, err := x.exec.Apply(ctx, plan)
		seen = next
		m.Cycle(rep)
		if err != nil {
			logErr("no fix this cycle", err)
			return
		}
		lastErr = ""
		if rep.Backup != "" {
			log.Info("pruned entries backed up", "file", rep.Backup, "restore", rep.RestoreCommand)
		}
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
