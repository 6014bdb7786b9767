package zk

import (
	"context"
	"errors"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Kind is what a registration znode holds.
type Kind uint8

// Kinds of registration.
const (
	KindProvider Kind = iota + 1 // /<root>/<interface>/providers/<URL>
	KindConsumer                 // /<root>/<interface>/consumers/<URL>
	KindInstance                 // /<services>/<app>/<instance>: Curator ServiceInstance JSON
)

func (k Kind) String() string {
	switch k {
	case KindProvider:
		return "provider"
	case KindConsumer:
		return "consumer"
	case KindInstance:
		return "instance"
	}
	return "unknown"
}

// Entry is one registration znode as read.
type Entry struct {
	Kind Kind
	// Dir is the parent znode (/dubbo/<interface>/providers, /services/<app>), chroot included.
	Dir string
	// Name is the znode's name, raw (URL-encoded for interface-level entries).
	Name string
	// Data is the znode's content for instances; nil for interface-level entries, whose
	// information is all in the name.
	Data []byte
	full string
}

// Path is the entry's full znode path.
func (e Entry) Path() string {
	if e.full != "" {
		return e.full
	}
	return join(e.Dir, e.Name)
}

// Missing is a path whose content the scan could not read.
type Missing struct {
	Path   string
	Kind   string // connection | permission | other
	Reason string
}

// Snapshot is the scanner's current view of the registry.
type Snapshot struct {
	Entries []Entry
	// Missing lists the paths not read (sorted); when it is not empty, Entries is incomplete.
	Missing   []Missing
	Connected bool
	// Scanned is true once a full scan has finished (complete or not).
	Scanned bool
	// Complete is true when a full scan has finished, nothing is missing and the session is up.
	Complete         bool
	LastFullScan     time.Time
	LastCompleteScan time.Time
	// Version grows with every change.
	Version uint64
}

// Observer receives the scanner's measurements (metrics). Methods must not block.
type Observer interface {
	FullScan(d time.Duration, complete bool)
	ReadError(kind string)
	Connected(up bool)
}

// Config is what to scan and how.
type Config struct {
	Options
	// ZKRoot is Dubbo's interface-level root (default /dubbo); ServicesRoot the
	// application-level one (default /services). Both are below the chroot.
	ZKRoot       string
	ServicesRoot string
	// Concurrency is the number of requests in flight on the session (default 64). One
	// session pipelines them; the full scan is bound by round trips, not by the server.
	Concurrency int
	// Watch sets child watches while scanning and follows them (long-running mode).
	Watch bool
	// Resync is the period of full rescans in watch mode (default 10m; <0 disables).
	Resync   time.Duration
	Observer Observer
	// ConnectTimeout bounds Once's wait for a session (default 15s).
	ConnectTimeout time.Duration
}

type dirKind uint8

const (
	dRoot dirKind = iota + 1
	dIface
	dCategory
	dApp
	dInstance // not a directory: an instance's data
)

type dir struct {
	kind     dirKind
	children []string          // full paths, sorted
	data     map[string][]byte // dApp: instance path -> data
}

type state struct {
	mu      sync.Mutex
	dirs    map[string]*dir
	missing map[string]Missing
}

func newState() *state {
	return &state{dirs: map[string]*dir{}, missing: map[string]Missing{}}
}

type task struct {
	path string
	kind dirKind
	// event: the read follows a watch event, whose server-side watch is spent: set a new one.
	event bool
}

// Scanner keeps a copy of the registration tree.
type Scanner struct {
	cfg              Config
	conn             *zk.Conn
	zkRoot, svcRoot  string
	authed           bool
	live             *state
	mu               sync.Mutex
	watched          map[string]bool
	pending          map[string]bool
	scanning         bool
	eventsDuringScan map[string]bool
	connected        bool
	resync           bool
	scanned          bool
	lastFull         time.Time
	lastComplete     time.Time
	version          uint64
	// epoch counts sessions coming up; a scan is complete for the epoch it started in only.
	epoch, completeEpoch uint64
	retry                time.Duration // delay before rescanning after an incomplete scan
	wake                 chan struct{}
	changed              chan struct{}
}

// NewScanner connects (in the background; the client reconnects by itself) and returns a
// scanner. Close it when done.
func NewScanner(cfg Config) (*Scanner, error) {
	if cfg.ZKRoot == "" {
		cfg.ZKRoot = "/dubbo"
	}
	if cfg.ServicesRoot == "" {
		cfg.ServicesRoot = "/services"
	}
	for _, r := range []string{cfg.ZKRoot, cfg.ServicesRoot} {
		if !strings.HasPrefix(r, "/") {
			return nil, errors.New("ZooKeeper roots are absolute paths: got " + r)
		}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Minute
	}
	s := &Scanner{cfg: cfg, live: newState(), watched: map[string]bool{}, pending: map[string]bool{},
		wake: make(chan struct{}, 1), changed: make(chan struct{}, 1), resync: true}
	conn, chroot, err := dial(cfg.Options, s.event)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	s.zkRoot = path.Clean(chroot + cfg.ZKRoot)
	s.svcRoot = path.Clean(chroot + cfg.ServicesRoot)
	return s, nil
}

// Close ends the session.
func (s *Scanner) Close() { s.conn.Close() }

// Changed is signalled (coalesced) after every change of the snapshot.
func (s *Scanner) Changed() <-chan struct{} { return s.changed }

// Roots are the two scanned roots, chroot included.
func (s *Scanner) Roots() []string { return []string{s.zkRoot, s.svcRoot} }

func (s *Scanner) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// event is go-zookeeper's callback: it must not block, so it only records and wakes Run.
func (s *Scanner) event(ev zk.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Type {
	case zk.EventSession:
		up := ev.State == zk.StateHasSession
		if up != s.connected {
			s.connected = up
			if s.cfg.Observer != nil {
				s.cfg.Observer.Connected(up)
			}
			s.version++
			s.signal(s.changed)
		}
		if ev.State == zk.StateExpired {
			// The server dropped every watch with the session.
			s.watched = map[string]bool{}
		}
		if up {
			s.epoch++
			// After any outage read everything again: requests failed while disconnected, and
			// a new session has no watches.
			s.resync = true
			s.signal(s.wake)
		}
	case zk.EventNotWatching:
		delete(s.watched, ev.Path)
		s.resync = true
	case zk.EventNodeChildrenChanged, zk.EventNodeCreated, zk.EventNodeDeleted, zk.EventNodeDataChanged:
		delete(s.watched, ev.Path)
		s.pending[ev.Path] = true
		if s.scanning {
			s.eventsDuringScan[ev.Path] = true
		}
		s.signal(s.wake)
	}
}

func (s *Scanner) classify(p string) (dirKind, bool) {
	if p == s.zkRoot || p == s.svcRoot {
		return dRoot, true
	}
	if rel, ok := under(p, s.zkRoot); ok {
		switch parts := strings.Split(rel, "/"); {
		case len(parts) == 1:
			return dIface, true
		case len(parts) == 2 && (parts[1] == "providers" || parts[1] == "consumers"):
			return dCategory, true
		}
		return 0, false
	}
	if rel, ok := under(p, s.svcRoot); ok {
		switch strings.Count(rel, "/") {
		case 0:
			return dApp, true
		case 1:
			return dInstance, true
		}
	}
	return 0, false
}

func under(p, root string) (string, bool) {
	prefix := root + "/"
	if root == "/" {
		prefix = "/"
	}
	if !strings.HasPrefix(p, prefix) || len(p) == len(prefix) {
		return "", false
	}
	return p[len(prefix):], true
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// Run follows watches and resyncs until ctx ends. It needs Config.Watch.
func (s *Scanner) Run(ctx context.Context) {
	tick := make(<-chan time.Time)
	if s.cfg.Resync > 0 {
		t := time.NewTicker(s.cfg.Resync)
		defer t.Stop()
		tick = t.C
	}
	for {
		s.mu.Lock()
		resync, connected := s.resync, s.connected
		pending := s.pending
		s.pending = map[string]bool{}
		s.mu.Unlock()
		switch {
		case !connected:
		case resync:
			s.FullScan(ctx)
		case len(pending) > 0:
			s.apply(ctx, pending)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-tick:
			s.mu.Lock()
			s.resync = true
			s.mu.Unlock()
		}
	}
}

// WaitConnected waits for a session, up to ctx's deadline.
func (s *Scanner) WaitConnected(ctx context.Context) error {
	for {
		if s.conn.State() == zk.StateHasSession {
			return nil
		}
		select {
		case <-ctx.Done():
			return errNotConnected
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Scanner) ensureAuth() {
	if s.cfg.Auth == "" || s.authed {
		return
	}
	if err := s.conn.AddAuth("digest", []byte(s.cfg.Auth)); err != nil {
		s.cfg.Log.Error(err, "ZooKeeper digest authentication failed (credentials not shown)")
		return
	}
	s.authed = true // go-zookeeper re-sends remembered credentials after a reconnect
}

// FullScan reads the whole tree again and replaces the copy with what it read. Paths that
// could not be read are kept from the previous copy but reported missing.
func (s *Scanner) FullScan(ctx context.Context) {
	start := time.Now()
	s.mu.Lock()
	epoch := s.epoch
	s.resync = false
	s.scanning = true
	s.eventsDuringScan = map[string]bool{}
	s.mu.Unlock()
	s.ensureAuth()

	fresh := newState()
	s.runTasks(ctx, fresh, []task{{path: s.zkRoot, kind: dRoot}, {path: s.svcRoot, kind: dRoot}}, !s.cfg.Watch)

	s.live.mu.Lock()
	// A subtree that could not be read keeps its last known content, so that an outage does
	// not make registrations vanish; it is reported missing all the same.
	for p := range fresh.missing {
		keepTree(s.live, fresh, p)
	}
	s.live.dirs, s.live.missing = fresh.dirs, fresh.missing
	complete := len(fresh.missing) == 0
	s.live.mu.Unlock()

	s.mu.Lock()
	s.scanning = false
	for p := range s.eventsDuringScan {
		s.pending[p] = true // may have been overwritten by an older read of the scan
	}
	if len(s.eventsDuringScan) > 0 {
		s.signal(s.wake)
	}
	complete = complete && s.connected && epoch == s.epoch
	s.scanned = true
	s.lastFull = time.Now()
	if complete {
		s.retry = 0
		s.completeEpoch = epoch
		s.lastComplete = s.lastFull
	} else if s.cfg.Watch {
		// Retry soon rather than at the next period: something is missing now. Back off, so
		// that a path denied by its ACL for good does not cost a full scan every 2 seconds.
		s.retry = min(max(2*time.Second, 2*s.retry), max(s.cfg.Resync, 2*time.Second))
		time.AfterFunc(s.retry, func() {
			s.mu.Lock()
			s.resync = true
			s.mu.Unlock()
			s.signal(s.wake)
		})
	}
	s.version++
	s.mu.Unlock()
	if s.cfg.Observer != nil {
		s.cfg.Observer.FullScan(time.Since(start), complete)
	}
	s.signal(s.changed)
}

// apply re-reads the paths that had watch events.
func (s *Scanner) apply(ctx context.Context, paths map[string]bool) {
	var tasks []task
	for p := range paths {
		k, ok := s.classify(p)
		if !ok {
			continue
		}
		if k == dInstance {
			// Instance data changed (watches on instances are only set by ExistsW of roots,
			// so this is rare): re-read the app directory.
			k, p = dApp, path.Dir(p)
		}
		tasks = append(tasks, task{path: p, kind: k, event: true})
	}
	s.runTasks(ctx, s.live, tasks, false)
	s.mu.Lock()
	s.version++
	s.mu.Unlock()
	s.signal(s.changed)
}

// runTasks reads paths with Concurrency workers on the one session; each read may add reads.
func (s *Scanner) runTasks(ctx context.Context, st *state, tasks []task, once bool) {
	q := &queue{items: tasks, pending: len(tasks)}
	q.cond = sync.NewCond(&q.mu)
	var wg sync.WaitGroup
	for i := 0; i < s.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t, ok := q.pop()
				if !ok {
					return
				}
				q.push(s.read(ctx, st, t, once))
			}
		}()
	}
	wg.Wait()
}

type queue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	items   []task
	pending int
}

func (q *queue) pop() (task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && q.pending > 0 {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return task{}, false
	}
	t := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return t, true
}

// push adds the subtasks of a finished task and marks it done.
func (q *queue) push(ts []task) {
	q.mu.Lock()
	q.items = append(q.items, ts...)
	q.pending += len(ts) - 1
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (s *Scanner) fail(st *state, p string, err error) {
	kind := ErrorKind(err)
	st.mu.Lock()
	st.missing[p] = Missing{Path: p, Kind: kind, Reason: describe(err)}
	st.mu.Unlock()
	if s.cfg.Observer != nil {
		s.cfg.Observer.ReadError(kind)
	}
}

// read performs one task against ZooKeeper and records it in st. once: no watches, and
// categories are read without listing the interface directory first.
func (s *Scanner) read(ctx context.Context, st *state, t task, once bool) []task {
	if ctx.Err() != nil {
		s.fail(st, t.path, errNotConnected)
		return nil
	}
	if s.conn.State() != zk.StateHasSession {
		// Fail fast: the client would hold the request until it reconnects.
		s.fail(st, t.path, errNotConnected)
		return nil
	}
	if t.kind == dInstance {
		return s.readInstance(st, t)
	}
	watch := !once && (t.event || !s.isWatched(t.path))
	var (
		children []string
		err      error
	)
	if watch {
		children, _, _, err = s.conn.ChildrenW(t.path)
	} else {
		children, _, err = s.conn.Children(t.path)
	}
	if errors.Is(err, zk.ErrNoNode) {
		if watch && t.kind == dRoot {
			// Learn when the root is created. The returned channel is not needed: events
			// reach the scanner through the connection's callback.
			if ok, _, _, err := s.conn.ExistsW(t.path); err == nil && !ok {
				s.setWatched(t.path)
			}
		}
		st.mu.Lock()
		s.dropLocked(st, t.path)
		delete(st.missing, t.path)
		st.mu.Unlock()
		return nil
	}
	if err != nil {
		s.fail(st, t.path, err)
		return nil
	}
	if watch {
		s.setWatched(t.path)
	}
	sort.Strings(children)
	// Children are kept as full paths: the entry's path is then the string the scanner holds,
	// not a second copy per entry (names of interface-level entries run to hundreds of bytes).
	for i, c := range children {
		children[i] = join(t.path, c)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.missing, t.path)
	old := st.dirs[t.path]
	d := &dir{kind: t.kind, children: children}
	if old != nil {
		// Subtrees of children that went away go with them.
		gone := difference(old.children, children)
		for _, c := range gone {
			s.dropLocked(st, c)
		}
	}
	st.dirs[t.path] = d
	var next []task
	switch t.kind {
	case dRoot:
		isZK := t.path == s.zkRoot
		for _, p := range children {
			switch {
			case !isZK:
				if st != s.live || st.dirs[p] == nil || !s.isWatched(p) {
					next = append(next, task{path: p, kind: dApp})
				}
			case once:
				next = append(next, task{path: p + "/providers", kind: dCategory}, task{path: p + "/consumers", kind: dCategory})
			default:
				if st != s.live || st.dirs[p] == nil || !s.isWatched(p) {
					next = append(next, task{path: p, kind: dIface})
				}
			}
		}
	case dIface:
		for _, p := range children {
			if c := path.Base(p); (c == "providers" || c == "consumers") && (st != s.live || st.dirs[p] == nil || !s.isWatched(p)) {
				next = append(next, task{path: p, kind: dCategory})
			}
		}
	case dApp:
		d.data = make(map[string][]byte, len(children))
		for _, c := range children {
			if old != nil && old.data != nil {
				if b, ok := old.data[c]; ok && st == s.live {
					d.data[c] = b
					continue
				}
			}
			next = append(next, task{path: c, kind: dInstance})
		}
	}
	return next
}

func (s *Scanner) readInstance(st *state, t task) []task {
	data, _, err := s.conn.Get(t.path)
	parent := path.Dir(t.path)
	st.mu.Lock()
	defer st.mu.Unlock()
	d := st.dirs[parent]
	switch {
	case errors.Is(err, zk.ErrNoNode):
		// Gone between the listing and the read; the parent's watch reports it.
		if d != nil {
			delete(d.data, t.path)
			d.children = remove(d.children, t.path)
		}
		return nil
	case err != nil:
		st.mu.Unlock()
		s.fail(st, t.path, err)
		st.mu.Lock()
		return nil
	}
	delete(st.missing, t.path)
	if d != nil {
		if data == nil {
			data = []byte{}
		}
		d.data[t.path] = data
	}
	return nil
}

// dropLocked forgets a path and everything below it. It walks the tree through the children
// lists rather than the whole map: a missing consumers directory (most services have none)
// must cost nothing on a registry of 100,000 entries.
func (s *Scanner) dropLocked(st *state, p string) {
	s.dropTree(st, p)
	if len(st.missing) == 0 {
		return
	}
	prefix := p + "/"
	for q := range st.missing {
		if q == p || strings.HasPrefix(q, prefix) {
			delete(st.missing, q)
		}
	}
}

// keepTree copies the subtree at p from the old state into the new one where the new one has
// nothing, walking children lists (not the whole map).
func keepTree(old, fresh *state, p string) {
	d, ok := old.dirs[p]
	if !ok {
		return
	}
	if _, ok := fresh.dirs[p]; !ok {
		fresh.dirs[p] = d
	}
	if d.kind == dApp {
		return
	}
	for _, c := range d.children {
		keepTree(old, fresh, c)
	}
}

func (s *Scanner) dropTree(st *state, p string) {
	d, ok := st.dirs[p]
	if !ok {
		return
	}
	delete(st.dirs, p)
	if d.kind == dApp {
		return // children are instances, not directories
	}
	for _, c := range d.children {
		s.dropTree(st, c)
	}
}

func (s *Scanner) isWatched(p string) bool {
	if !s.cfg.Watch {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watched[p]
}

func (s *Scanner) setWatched(p string) {
	s.mu.Lock()
	s.watched[p] = true
	s.mu.Unlock()
}

func difference(old, cur []string) []string {
	set := make(map[string]bool, len(cur))
	for _, c := range cur {
		set[c] = true
	}
	var out []string
	for _, o := range old {
		if !set[o] {
			out = append(out, o)
		}
	}
	return out
}

func remove(list []string, x string) []string {
	out := list[:0:0]
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// Snapshot returns the current view. Entries are sorted by path.
func (s *Scanner) Snapshot() Snapshot {
	s.mu.Lock()
	snap := Snapshot{Connected: s.connected, Scanned: s.scanned, LastFullScan: s.lastFull, LastCompleteScan: s.lastComplete, Version: s.version}
	current := s.completeEpoch == s.epoch && s.lastComplete.Equal(s.lastFull)
	s.mu.Unlock()
	s.live.mu.Lock()
	// Sorting the 20,000 directories, not the 100,000 entries: children lists are sorted.
	dirs := make([]string, 0, len(s.live.dirs))
	n := 0
	for p, d := range s.live.dirs {
		if d.kind == dCategory || d.kind == dApp {
			dirs = append(dirs, p)
			n += len(d.children)
		}
	}
	sort.Strings(dirs)
	snap.Entries = make([]Entry, 0, n)
	for _, p := range dirs {
		d := s.live.dirs[p]
		switch d.kind {
		case dCategory:
			k := KindProvider
			if strings.HasSuffix(p, "/consumers") {
				k = KindConsumer
			}
			for _, c := range d.children {
				snap.Entries = append(snap.Entries, Entry{Kind: k, Dir: p, Name: path.Base(c), full: c})
			}
		case dApp:
			for _, c := range d.children {
				e := Entry{Kind: KindInstance, Dir: p, Name: path.Base(c), full: c, Data: d.data[c]}
				if e.Data == nil {
					continue // listed but its data not read: reported missing
				}
				snap.Entries = append(snap.Entries, e)
			}
		}
	}
	for _, m := range s.live.missing {
		snap.Missing = append(snap.Missing, m)
	}
	s.live.mu.Unlock()
	if !snap.Connected {
		// Whatever we hold may be out of date: say so, root by root.
		for _, r := range s.Roots() {
			snap.Missing = append(snap.Missing, Missing{Path: r, Kind: "connection", Reason: "not connected to ZooKeeper: content may be out of date"})
		}
	}
	sort.Slice(snap.Missing, func(i, j int) bool { return snap.Missing[i].Path < snap.Missing[j].Path })
	// Complete only when the latest full scan, in the current session, read everything; events
	// since then have been applied, and a failed incremental read is in Missing.
	snap.Complete = snap.Scanned && snap.Connected && current && len(snap.Missing) == 0
	return snap
}

// Once connects, scans everything once without watches and returns the result. If no session
// comes up before ctx ends, the snapshot is incomplete with the roots missing.
func Once(ctx context.Context, cfg Config) (Snapshot, error) {
	cfg.Watch = false
	s, err := NewScanner(cfg)
	if err != nil {
		return Snapshot{}, err
	}
	defer s.Close()
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.WaitConnected(wctx); err != nil {
		snap := s.Snapshot()
		snap.Complete = false
		return snap, nil
	}
	s.mu.Lock()
	if !s.connected { // the callback may not have run yet
		s.connected = true
		s.epoch++
	}
	s.mu.Unlock()
	s.FullScan(ctx)
	return s.Snapshot(), nil
}
