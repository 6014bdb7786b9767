package fix

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
)

// Executor applies plans. The caller runs it only on the leader.
type Executor struct {
	ZK ZK
	// Evictor performs evictions; required only for plans that hold some.
	Evictor *Evictor
	// MaxChanges is the cap on changes per cycle (default 20). A plan above it changes nothing
	// and Apply returns ErrTooManyChanges with Report.CapExceeded set.
	MaxChanges int
	// DryRun reports every change as ResultDryRun and writes nothing.
	DryRun bool
	// BackupDir receives prune backups (required for plans that prune).
	BackupDir string
	// ACL for the znodes dubboreach creates (default world:anyone, all permissions, as Dubbo's
	// own clients create them).
	ACL []zk.ACL
	// OnResult is called for every result (logs, Events, metrics).
	OnResult func(Result)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// RestoreCommand renders the command that restores a backup file; default
	// "dubboreach audit restore --backup FILE".
	RestoreCommand func(file string) string
}

// Report is what one Apply did.
type Report struct {
	Results []Result `json:"results"`
	// CapExceeded: the plan was above MaxChanges and nothing was changed.
	CapExceeded bool `json:"capExceeded,omitempty"`
	// Backup is the prune backup file written, and RestoreCommand how to put its entries back.
	Backup         string `json:"backup,omitempty"`
	RestoreCommand string `json:"restoreCommand,omitempty"`
}

// Count returns how many results had the given result.
func (r Report) Count(result string) int {
	n := 0
	for _, x := range r.Results {
		if x.Result == result {
			n++
		}
	}
	return n
}

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Executor) acl() []zk.ACL {
	if len(e.ACL) > 0 {
		return e.ACL
	}
	return zk.WorldACL(zk.PermAll)
}

func (e *Executor) report(r *Report, res Result) {
	r.Results = append(r.Results, res)
	if e.OnResult != nil {
		e.OnResult(res)
	}
}

// Apply applies a plan: nothing if the plan is incomplete (ErrIncompleteScan) or above the cap
// (ErrTooManyChanges); otherwise every change in order, each with its own compare-and-set, so a
// conflict on one node fails that change only. Skipped entries of the plan are reported too.
func (e *Executor) Apply(ctx context.Context, p Plan) (Report, error) {
	var r Report
	if !p.Complete {
		return r, ErrIncompleteScan
	}
	limit := e.MaxChanges
	if limit == 0 {
		limit = 20
	}
	if len(p.Changes) > limit {
		r.CapExceeded = true
		return r, fmt.Errorf("%w (%d planned, cap %d)", ErrTooManyChanges, len(p.Changes), limit)
	}
	for _, s := range p.Skipped {
		outcome := s.Outcome
		if outcome == "" {
			outcome = ResultSkipped
		}
		e.report(&r, Result{Change: s, Result: outcome, Error: s.Reason})
	}
	if e.DryRun {
		for _, c := range p.Changes {
			e.report(&r, Result{Change: c, Result: ResultDryRun})
		}
		return r, nil
	}

	// Prune: the backup is on disk before anything is deleted.
	pruneOK := true
	var pruneErr string
	for _, c := range p.Changes {
		if c.Mode != ModePrune {
			continue
		}
		if e.BackupDir == "" {
			pruneOK, pruneErr = false, "no backup directory configured: prune refuses to delete without a backup"
			break
		}
		file, err := WriteBackup(e.BackupDir, e.now(), p.Changes)
		if err != nil {
			pruneOK, pruneErr = false, err.Error()
		} else {
			r.Backup = file
			r.RestoreCommand = "dubboreach audit restore --backup " + file
			if e.RestoreCommand != nil {
				r.RestoreCommand = e.RestoreCommand(file)
			}
		}
		break
	}

	for _, c := range p.Changes {
		if err := ctx.Err(); err != nil {
			e.report(&r, Result{Change: c, Result: ResultFailed, Error: err.Error()})
			continue
		}
		if c.Mode == ModePrune && !pruneOK {
			e.report(&r, Result{Change: c, Result: ResultFailed, Error: pruneErr})
			continue
		}
		if c.Op == OpEvict {
			if e.Evictor == nil {
				e.report(&r, Result{Change: c, Result: ResultFailed, Error: "no evictor configured"})
				continue
			}
			e.report(&r, e.Evictor.evict(ctx, c, e.now()))
			continue
		}
		e.report(&r, e.write(c))
	}
	return r, nil
}

// write performs one znode change with compare-and-set semantics.
func (e *Executor) write(c Change) Result {
	res := Result{Change: c}
	var err error
	switch c.Op {
	case OpCreate:
		if err = createParents(e.ZK, c.Parents, e.acl()); err == nil {
			_, err = e.ZK.Create(c.Path, c.After, 0, e.acl())
		}
	case OpSet:
		_, err = e.ZK.Set(c.Path, c.After, c.Version)
	case OpDelete:
		err = e.ZK.Delete(c.Path, c.Version)
	default:
		err = fmt.Errorf("unknown op %q", c.Op)
	}
	switch {
	case err == nil:
		res.Result = ResultApplied
	case errors.Is(err, zk.ErrBadVersion), errors.Is(err, zk.ErrNodeExists), errors.Is(err, zk.ErrNoNode), errors.Is(err, zk.ErrNotEmpty):
		// Someone changed the node after it was read: nothing of theirs is overwritten; the
		// next cycle reads it again and plans anew.
		res.Result = ResultConflict
		res.Error = fmt.Sprintf("%s changed since it was read (%v); left as it is, re-planned next cycle", c.Path, err)
	default:
		res.Result, res.Error = ResultFailed, err.Error()
	}
	return res
}
