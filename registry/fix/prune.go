package fix

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Staleness remembers since when each persistent entry has been stale (its address mapping to
// no live pod or node). It lives in memory only: a restart starts every clock again, which
// delays a prune and never hastens one.
type Staleness struct {
	After time.Duration
	mu    sync.Mutex
	first map[string]time.Time
}

// NewStaleness returns a clock with grace period after (--stale-after; 0 means 10m).
func NewStaleness(after time.Duration) *Staleness {
	if after <= 0 {
		after = 10 * time.Minute
	}
	return &Staleness{After: after, first: map[string]time.Time{}}
}

// Observe records the entries stale now (by znode path), forgets those no longer stale, and
// returns the ones that have been stale for at least After, sorted by znode.
func (s *Staleness) Observe(now time.Time, stale []Target) []Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var due []Target
	for _, t := range stale {
		if seen[t.Znode] {
			continue
		}
		seen[t.Znode] = true
		f, ok := s.first[t.Znode]
		if !ok {
			s.first[t.Znode] = now
			f = now
		}
		if now.Sub(f) >= s.After {
			due = append(due, t)
		}
	}
	for z := range s.first {
		if !seen[z] {
			delete(s.first, z)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Znode < due[j].Znode })
	return due
}

// Since says when the entry was first seen stale.
func (s *Staleness) Since(znode string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.first[znode]
	return t, ok
}

// PlanPrune plans the deletion of persistent (dynamic=false) provider entries whose address maps
// to no live pod or node (Target.Orphan) and has done so for longer than the grace period.
// Targets that do not qualify are ignored. An incomplete scan plans nothing and leaves the
// clocks as they are.
func PlanPrune(z ZK, complete bool, targets []Target, clock *Staleness, now time.Time) (Plan, error) {
	if !complete {
		return Plan{}, ErrIncompleteScan
	}
	var stale []Target
	for _, t := range targets {
		if !t.Dynamic && t.Orphan && t.Znode != "" {
			stale = append(stale, t)
		}
	}
	plan := Plan{Complete: true, Changes: []Change{}}
	for _, t := range clock.Observe(now, stale) {
		skip := func(why string) {
			plan.Skipped = append(plan.Skipped, Change{Mode: ModePrune, Path: t.Znode, Provider: t.Address.String(), Service: t.Interface, Reason: why})
		}
		if path.Base(path.Dir(t.Znode)) != "providers" || path.Clean(t.Znode) != t.Znode || !strings.HasPrefix(t.Znode, "/") {
			skip("not a providers/ entry; prune deletes provider registrations only")
			continue
		}
		data, st, err := z.Get(t.Znode)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return Plan{}, fmt.Errorf("reading %s: %w", t.Znode, err)
		}
		if st.EphemeralOwner != 0 {
			skip("the entry is ephemeral: a live session owns it")
			continue
		}
		if st.NumChildren != 0 {
			skip("the entry has children; prune never deletes a subtree")
			continue
		}
		if len(data) > MaxRuleBytes {
			skip("the entry's data is larger than the backup accepts")
			continue
		}
		acl, _, err := z.GetACL(t.Znode)
		if err != nil {
			return Plan{}, fmt.Errorf("reading the ACL of %s: %w", t.Znode, err)
		}
		since, _ := clock.Since(t.Znode)
		c := Change{Mode: ModePrune, Op: OpDelete, Path: t.Znode, Version: st.Version, Before: data, ACL: acl,
			Provider: t.Address.String(), Service: t.Interface,
			Reason: fmt.Sprintf("persistent entry whose address maps to no live pod or node since %s (longer than %s)",
				since.UTC().Format(time.RFC3339), clock.After)}
		if data == nil {
			c.Before = []byte{}
		}
		c.fillText()
		plan.Changes = append(plan.Changes, c)
	}
	return plan, nil
}

// BackupKind identifies a prune backup file.
const BackupKind = "dubboreach.io/zookeeper-backup"

// Backup is the file written before prune deletes anything: enough to put every entry back
// exactly (path, data, ACL).
type Backup struct {
	Kind    string        `json:"kind"`
	Version int           `json:"version"`
	Created time.Time     `json:"created"`
	Entries []BackupEntry `json:"entries"`
}

// BackupEntry is one deleted znode.
type BackupEntry struct {
	Path string `json:"path"`
	// Name is the znode's name (the URL-encoded registration).
	Name string `json:"name"`
	// Data is the node's data, base64 in JSON; Text the same when it is UTF-8.
	Data []byte   `json:"data"`
	Text string   `json:"text,omitempty"`
	ACL  []zk.ACL `json:"acl,omitempty"`
	// Version is the znode version that was deleted.
	Version  int32  `json:"version"`
	Provider string `json:"provider,omitempty"`
	Service  string `json:"service,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// MaxBackupBytes bounds a backup file read by ReadBackup.
const MaxBackupBytes = 256 << 20

// WriteBackup writes the prune deletions of changes to a new file in dir (created 0700 if
// missing; the file 0600: it holds registration data) and returns its path. The file is
// synced before it is renamed into place, so a crash never leaves a torn backup.
func WriteBackup(dir string, now time.Time, changes []Change) (string, error) {
	b := Backup{Kind: BackupKind, Version: 1, Created: now.UTC()}
	for _, c := range changes {
		if c.Mode != ModePrune || c.Op != OpDelete {
			continue
		}
		e := BackupEntry{Path: c.Path, Name: path.Base(c.Path), Data: c.Before, Text: c.BeforeText, ACL: c.ACL,
			Version: c.Version, Provider: c.Provider, Service: c.Service, Reason: c.Reason}
		if e.Data == nil {
			e.Data = []byte{}
		}
		b.Entries = append(b.Entries, e)
	}
	if len(b.Entries) == 0 {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the backup directory: %w", err)
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return "", err
	}
	name := filepath.Join(dir, "prune-"+now.UTC().Format("20060102T150405.000000000Z")+".json")
	tmp, err := os.CreateTemp(dir, ".prune-*.tmp")
	if err != nil {
		return "", fmt.Errorf("writing the prune backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the prune backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("syncing the prune backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return "", fmt.Errorf("writing the prune backup: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return name, nil
}

// ParseBackup reads a backup file's content, refusing anything that is not one.
func ParseBackup(data []byte) (Backup, error) {
	var b Backup
	if len(data) > MaxBackupBytes {
		return b, fmt.Errorf("backup is %d bytes, more than %d", len(data), MaxBackupBytes)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Backup{}, fmt.Errorf("not a dubboreach backup: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Backup{}, errors.New("not a dubboreach backup: trailing data after the JSON object")
	}
	if b.Kind != BackupKind || b.Version != 1 {
		return Backup{}, fmt.Errorf("not a dubboreach backup: kind %q version %d, want %q version 1", b.Kind, b.Version, BackupKind)
	}
	for i, e := range b.Entries {
		if !strings.HasPrefix(e.Path, "/") || path.Clean(e.Path) != e.Path || e.Path == "/" || path.Base(e.Path) != e.Name {
			return Backup{}, fmt.Errorf("backup entry %d: path %q and name %q do not fit", i, e.Path, e.Name)
		}
		if len(e.Data) > MaxRuleBytes {
			return Backup{}, fmt.Errorf("backup entry %d (%s): %d bytes of data, more than %d", i, e.Path, len(e.Data), MaxRuleBytes)
		}
	}
	return b, nil
}

// ReadBackup reads and checks a backup file.
func ReadBackup(file string) (Backup, error) {
	f, err := os.Open(file)
	if err != nil {
		return Backup{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBackupBytes+1))
	if err != nil {
		return Backup{}, err
	}
	b, err := ParseBackup(data)
	if err != nil {
		return Backup{}, fmt.Errorf("%s: %w", file, err)
	}
	return b, nil
}

// Restore puts the entries of a backup back: each znode created (persistent) with its data and
// ACL, missing parents created empty. An entry that already exists with the same data is left
// (ResultSkipped); one that exists with other data is not touched (ResultConflict).
func Restore(z ZK, b Backup) []Result {
	var out []Result
	for _, e := range b.Entries {
		c := Change{Mode: "restore", Op: OpCreate, Path: e.Path, Version: -1, After: e.Data, ACL: e.ACL,
			Provider: e.Provider, Service: e.Service, Reason: "restored from backup"}
		res := Result{Change: c}
		data, _, err := z.Get(e.Path)
		switch {
		case err == nil && string(data) == string(e.Data):
			res.Result, res.Error = ResultSkipped, "already present with the same data"
		case err == nil:
			res.Result, res.Error = ResultConflict, "exists with other data; not overwritten"
		case !errors.Is(err, zk.ErrNoNode):
			res.Result, res.Error = ResultFailed, err.Error()
		default:
			acl := e.ACL
			if len(acl) == 0 {
				acl = zk.WorldACL(zk.PermAll)
			}
			if err := createParents(z, parentsOf(path.Dir(e.Path)), zk.WorldACL(zk.PermAll)); err != nil {
				res.Result, res.Error = ResultFailed, err.Error()
			} else if _, err := z.Create(e.Path, e.Data, 0, acl); errors.Is(err, zk.ErrNodeExists) {
				res.Result, res.Error = ResultConflict, "created by someone else meanwhile"
			} else if err != nil {
				res.Result, res.Error = ResultFailed, err.Error()
			} else {
				res.Result = ResultApplied
			}
		}
		out = append(out, res)
	}
	return out
}

// createParents creates the listed nodes that are missing, empty and persistent.
func createParents(z ZK, parents []string, acl []zk.ACL) error {
	for _, p := range parents {
		// Exists first: creating an existing node needs the CREATE permission on its parent.
		if ok, _, err := z.Exists(p); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		} else if ok {
			continue
		}
		if _, err := z.Create(p, []byte{}, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("creating %s: %w", p, err)
		}
	}
	return nil
}
