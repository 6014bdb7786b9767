package registry

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
)

// Kinds of registration, as the JSON contract names them.
const (
	KindInterface   = "interface"   // /dubbo/<interface>/providers|consumers/<URL>
	KindApplication = "application" // /services/<app>/<instance>
)

// Finding is one judged registration. The JSON tags are the `audit -o json` contract for the
// fields it shares; fields tagged "-" are for programs (dashboard, Events, metrics).
//
// Cluster is the cluster that owns the address when several are audited (registry/clusters,
// `audit --clusters`); empty for one cluster, a VM, or an address whose cluster cannot be told,
// and then Candidates names the clusters it could belong to. Both are omitted when empty, so
// that one cluster's output does not change.
type Finding struct {
	Service     string        `json:"service"`
	Protocol    string        `json:"protocol,omitempty"`
	Address     string        `json:"address"`
	Port        int           `json:"port,omitempty"`
	Application string        `json:"application,omitempty"`
	Kind        string        `json:"kind"`
	Znode       string        `json:"znode"`
	Verdict     routes.Status `json:"verdict"`
	Reason      routes.Reason `json:"reason"`
	Cluster     string        `json:"cluster,omitempty"`
	Candidates  []string      `json:"candidates,omitempty"`
	Node        string        `json:"node,omitempty"`
	Pod         string        `json:"pod,omitempty"`
	Explanation string        `json:"explanation,omitempty"`

	// MissingRoute is the pod route the fabric lacks for the address (see routes.Verdict).
	MissingRoute *routes.Route `json:"-"`
	// Path is the znode path unescaped (Znode is escaped for display), for code that acts on it.
	Path string `json:"-"`
	// Version and Group are the interface-level URL's version and group parameters (service key).
	Version string `json:"-"`
	Group   string `json:"-"`
	// Side is "provider" or "consumer".
	Side         string    `json:"-"`
	PodNamespace string    `json:"-"`
	PodName      string    `json:"-"`
	PodUID       types.UID `json:"-"`
	// Persistent: registered with dynamic=false, the znode outlives its provider.
	Persistent bool `json:"-"`
	// Stale: a pod-network address that no pod holds any more.
	Stale bool `json:"-"`
	// NoListener: a node address and port on which no pod publishes a hostPort.
	NoListener bool `json:"-"`
	// DubboGo: an interface-level entry written by dubbo-go.
	DubboGo bool `json:"-"`
	// Disabled: the interface-level URL itself tells consumers not to call it (disabled=true or
	// enabled=false, as RegistryDirectory.toInvokers reads them; dubbo.URL.Disabled).
	Disabled bool `json:"-"`
	// Release is the URL's release parameter (the Dubbo version that registered it), and
	// URLPath its path, which Dubbo 3.2+ matches rules against (it can differ from Service,
	// the interface parameter).
	Release string `json:"-"`
	URLPath string `json:"-"`
}

// Flagged says the registration needs someone's attention: not reachable, or stale, or
// pointing at a port where nothing listens.
func (f *Finding) Flagged() bool {
	return f.Verdict != routes.Reachable || f.Stale || f.NoListener
}

// Unparseable is a registration znode that could not be read as one.
type Unparseable struct {
	Znode string `json:"znode"`
	Error string `json:"error"`
}

// Summary counts providers (interface- and application-level) and unparseable entries:
// total = reachable + unreachable + unknown + unparseable. Consumers are counted apart.
type Summary struct {
	Total       int `json:"total"`
	Reachable   int `json:"reachable"`
	Unreachable int `json:"unreachable"`
	Unknown     int `json:"unknown"`
	Unparseable int `json:"unparseable"`
}

// Result is one audit of the registry: the `audit --once -o json` document, plus what a
// dashboard needs to say how fresh and how complete it is.
type Result struct {
	Complete bool `json:"complete"`
	// Missing lists the paths not read (escaped); never reported clean while not empty.
	Missing     []string      `json:"missing"`
	Summary     Summary       `json:"summary"`
	Providers   []Finding     `json:"providers"`
	Consumers   []Finding     `json:"consumers"`
	Unparseable []Unparseable `json:"unparseable"`

	// MissingDetail says why each missing path was not read.
	MissingDetail []zk.Missing `json:"-"`
	// ConsumerSummary counts consumers like Summary counts providers (unparseable: 0).
	ConsumerSummary  Summary   `json:"-"`
	Connected        bool      `json:"-"`
	Scanned          bool      `json:"-"`
	LastFullScan     time.Time `json:"-"`
	LastCompleteScan time.Time `json:"-"`
	JudgedAt         time.Time `json:"-"`
	// PodsKnown is false when no pod information was available to map addresses.
	PodsKnown bool `json:"-"`
}

// Unreachable says whether any provider is not reachable (the CLI's exit 1, with !Complete).
func (r *Result) Unreachable() bool { return r.Summary.Unreachable > 0 }

// Holder keeps the latest Result for concurrent readers (HTTP handlers, metrics, Events).
type Holder struct {
	mu      sync.RWMutex
	latest  *Result
	updated chan struct{}
}

// NewHolder returns an empty holder.
func NewHolder() *Holder { return &Holder{updated: make(chan struct{})} }

// Latest returns the latest result, or nil before the first. It must not be modified.
func (h *Holder) Latest() *Result {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.latest
}

// Set publishes a new result and wakes the waiters of Updated.
func (h *Holder) Set(r *Result) {
	h.mu.Lock()
	h.latest = r
	close(h.updated)
	h.updated = make(chan struct{})
	h.mu.Unlock()
}

// Updated returns a channel closed at the next Set (for long polls and server-sent events).
func (h *Holder) Updated() <-chan struct{} {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.updated
}
