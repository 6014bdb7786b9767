package fix

import (
	"errors"
	"fmt"
	"net/netip"
	"unicode/utf8"

	"github.com/go-zookeeper/zk"
	"k8s.io/apimachinery/pkg/types"
)

// Modes, as --fix names them and as the mode label of dubboreach_fixes_total.
const (
	ModeDisable     = "disable"
	ModeUndoDisable = "undo-disable"
	ModePrune       = "prune"
	ModeEvict       = "evict"
)

// Results, as the result label of dubboreach_fixes_total.
const (
	// ResultApplied: the change was made.
	ResultApplied = "applied"
	// ResultDryRun: the change would have been made (--dry-run).
	ResultDryRun = "dry-run"
	// ResultConflict: someone else changed the node since it was read (compare-and-set failed),
	// or the node holds something dubboreach will not edit; nothing was written. The next
	// cycle re-reads and re-plans.
	ResultConflict = "conflict"
	// ResultRefused: the API server refused the eviction (a PodDisruptionBudget); retried later.
	ResultRefused = "refused"
	// ResultDeferred: not attempted this cycle (rate limit, per-workload cap, retry backoff).
	ResultDeferred = "deferred"
	// ResultSkipped: the target does not qualify (bare pod, namespace not labelled, ...).
	ResultSkipped = "skipped"
	// ResultFailed: any other error.
	ResultFailed = "failed"
)

// Ops of a Change.
const (
	OpCreate = "create"
	OpSet    = "set"
	OpDelete = "delete"
	OpEvict  = "evict"
)

var (
	// ErrIncompleteScan: the plan was made from, or is applied after, a scan that did not read
	// every path. Nothing is changed.
	ErrIncompleteScan = errors.New("the ZooKeeper scan is incomplete: no fix is applied until a scan reads every path")
	// ErrTooManyChanges: the plan holds more changes than the per-cycle cap. Nothing is changed;
	// the caller sets an alert-worthy metric (dubboreach_fix_cap_exceeded).
	ErrTooManyChanges = errors.New("the plan holds more changes than --max-fix-changes allows: nothing was changed")
)

// Target is one registration the auditor judged, as the fixes need it. The auditor fills it from
// its findings; absent facts stay zero.
type Target struct {
	// Interface, Version and Group identify the service (interface-level registrations).
	Interface string `json:"interface,omitempty"`
	Version   string `json:"version,omitempty"`
	Group     string `json:"group,omitempty"`
	// Application is the registering application, for messages.
	Application string `json:"application,omitempty"`
	Protocol    string `json:"protocol,omitempty"`
	// Address is the registered ip:port.
	Address netip.AddrPort `json:"address"`
	// Znode is the full path of the registration (prune deletes it).
	Znode string `json:"znode,omitempty"`
	// Dynamic is false for persistent (dynamic=false) entries.
	Dynamic bool `json:"dynamic"`
	// Orphan says the address maps to no live pod and no node (prune's condition).
	Orphan bool `json:"orphan,omitempty"`
	// Pod is the pod the address maps to, if any (evict), and PodUID its UID when known.
	Pod    *types.NamespacedName `json:"pod,omitempty"`
	PodUID types.UID             `json:"podUID,omitempty"`
	// Reason is the verdict reason, carried into results for logs and Events.
	Reason string `json:"reason,omitempty"`
	// Disabled: the URL itself says disabled=true or enabled=false (no consumer calls it).
	Disabled bool `json:"disabled,omitempty"`
	// Path is the URL's path when it differs from Interface (a custom export path).
	Path string `json:"path,omitempty"`
}

// Plan is what a cycle would change. It is what --dry-run prints.
type Plan struct {
	// Complete is true only when the plan was made from a complete scan; Apply refuses others.
	Complete bool     `json:"complete"`
	Changes  []Change `json:"changes"`
	// Skipped are targets (or entries) not acted on, with why; they are reported, not changed.
	Skipped []Change `json:"skipped,omitempty"`
}

// Add appends another plan's changes; the result is complete only if both are.
func (p *Plan) Add(q Plan) {
	p.Complete = p.Complete && q.Complete
	p.Changes = append(p.Changes, q.Changes...)
	p.Skipped = append(p.Skipped, q.Skipped...)
}

// Change is one write: a znode created, replaced or deleted, or a pod evicted.
type Change struct {
	Mode string `json:"mode"`
	Op   string `json:"op"`
	// Path is the znode; Version the version the write is conditional on (-1: it must not exist).
	Path    string `json:"path,omitempty"`
	Version int32  `json:"version"`
	// Parents are missing parent znodes created (empty, persistent) before Path.
	Parents []string `json:"parents,omitempty"`
	// Before and After are the node's data before and after (nil when absent). JSON carries
	// them as base64; BeforeText/AfterText repeat them as text when they are UTF-8.
	Before     []byte   `json:"before,omitempty"`
	After      []byte   `json:"after,omitempty"`
	BeforeText string   `json:"beforeText,omitempty"`
	AfterText  string   `json:"afterText,omitempty"`
	ACL        []zk.ACL `json:"acl,omitempty"`
	// Provider is the provider address concerned (ip:port) and Service its service key.
	Provider string `json:"provider,omitempty"`
	Service  string `json:"service,omitempty"`
	// Consumers are the consumer addresses a disable entry names (0.0.0.0: every consumer),
	// or, on a skipped entry, the consumers left out.
	Consumers []string `json:"consumers,omitempty"`
	// Pod, PodUID and Owner (the controller's UID) for evictions.
	Pod    *types.NamespacedName `json:"pod,omitempty"`
	PodUID types.UID             `json:"podUID,omitempty"`
	Owner  types.UID             `json:"owner,omitempty"`
	// Reason says why the change is planned, or why it was skipped.
	Reason string `json:"reason"`
	// Outcome, on skipped entries only, is the result they are reported with
	// (ResultSkipped, ResultDeferred or ResultConflict; empty means ResultSkipped).
	Outcome string `json:"outcome,omitempty"`
}

func (c *Change) fillText() {
	if c.Before != nil && utf8.Valid(c.Before) {
		c.BeforeText = string(c.Before)
	}
	if c.After != nil && utf8.Valid(c.After) {
		c.AfterText = string(c.After)
	}
}

// Subject names what the change is about, for logs and Events.
func (c Change) Subject() string {
	if c.Pod != nil {
		return "pod " + c.Pod.String()
	}
	if c.Provider != "" {
		return fmt.Sprintf("provider %s of %s", c.Provider, c.Service)
	}
	return c.Path
}

// Result is the outcome of one change (or of one skipped target).
type Result struct {
	Change Change `json:"change"`
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// ZK is the part of *zk.Conn the fixes use (paths are absolute; a chroot is the caller's
// prefix in the roots it passes).
type ZK interface {
	Get(path string) ([]byte, *zk.Stat, error)
	Children(path string) ([]string, *zk.Stat, error)
	Exists(path string) (bool, *zk.Stat, error)
	Create(path string, data []byte, flags int32, acl []zk.ACL) (string, error)
	Set(path string, data []byte, version int32) (*zk.Stat, error)
	Delete(path string, version int32) error
	GetACL(path string) ([]zk.ACL, *zk.Stat, error)
}

var _ ZK = (*zk.Conn)(nil)
