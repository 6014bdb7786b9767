// Package lock is a ZooKeeper mutex compatible with Apache Curator's InterProcessMutex, so that
// several auditors sharing one registry (and any Curator-based tool locking the same path)
// correct it one at a time.
//
// The recipe is Curator's (LockInternals, StandardLockInternalsDriver): each contender creates
// an ephemeral-sequential node "_c_<uuid>-lock-<seq>" under the lock path (the "_c_<uuid>-"
// protection lets a contender find its node after a connection loss during the create); the
// lowest sequence holds the lock; every other contender watches only its predecessor.
package lock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"
)

// lockName is Curator's LOCK_NAME; sequences are read after it, whatever comes before.
const lockName = "lock-"

// ErrLost says the lock was held and is no longer: the session expired or the node was deleted.
var ErrLost = errors.New("the ZooKeeper lock was lost (session expired or lock node deleted)")

// Conn is the part of *zk.Conn the mutex uses.
type Conn interface {
	Create(path string, data []byte, flags int32, acl []zk.ACL) (string, error)
	Children(path string) ([]string, *zk.Stat, error)
	ExistsW(path string) (bool, *zk.Stat, <-chan zk.Event, error)
	Delete(path string, version int32) error
}

var _ Conn = (*zk.Conn)(nil)

// Mutex is one contender for the lock at Path. Not reentrant; one Lock at a time.
type Mutex struct {
	conn Conn
	path string
	acl  []zk.ACL
	node string // our node, while contending or holding
	stop chan struct{}
}

// New returns a contender for the lock at lockPath (created, with its parents, if absent).
func New(conn Conn, lockPath string, acl []zk.ACL) (*Mutex, error) {
	if !strings.HasPrefix(lockPath, "/") || path.Clean(lockPath) != lockPath || lockPath == "/" {
		return nil, fmt.Errorf("lock path %q: want a clean absolute ZooKeeper path such as /dubboreach/locks/fix", lockPath)
	}
	if acl == nil {
		acl = zk.WorldACL(zk.PermAll)
	}
	return &Mutex{conn: conn, path: lockPath, acl: acl}, nil
}

// uuid is a random (version 4) UUID as Java's UUID.toString writes it.
func uuid() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

func (m *Mutex) ensurePath() error {
	p := ""
	for _, part := range strings.Split(m.path[1:], "/") {
		p += "/" + part
		if _, err := m.conn.Create(p, nil, 0, m.acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("creating lock path %s: %w", p, err)
		}
	}
	return nil
}

// create makes our protected ephemeral-sequential node, finding it again after a connection
// loss (the create may have happened).
func (m *Mutex) create() (string, error) {
	id, err := uuid()
	if err != nil {
		return "", err
	}
	prefix := "_c_" + id + "-"
	for try := 0; try < 3; try++ {
		p, err := m.conn.Create(m.path+"/"+prefix+lockName, nil, zk.FlagEphemeral|zk.FlagSequence, m.acl)
		switch {
		case err == nil:
			return p, nil
		case errors.Is(err, zk.ErrNoNode):
			if err := m.ensurePath(); err != nil {
				return "", err
			}
		case errors.Is(err, zk.ErrConnectionClosed):
			kids, _, cerr := m.conn.Children(m.path)
			if cerr != nil {
				return "", cerr
			}
			for _, k := range kids {
				if strings.HasPrefix(k, prefix) {
					return m.path + "/" + k, nil
				}
			}
		case errors.Is(err, zk.ErrSessionExpired):
			// The node cannot exist: try again on the new session.
		default:
			return "", fmt.Errorf("creating the lock node under %s: %w", m.path, err)
		}
	}
	return "", fmt.Errorf("creating the lock node under %s: gave up after 3 attempts", m.path)
}

// seq is the sequence part of a lock node's name (Curator's fixForSorting); nodes without
// lockName sort by their whole name.
func seq(name string) string {
	if i := strings.LastIndex(name, lockName); i >= 0 {
		return name[i+len(lockName):]
	}
	return name
}

// Lock waits until this contender holds the lock, or ctx ends (then it withdraws). The
// returned channel is closed when the lock is lost while held (session expired, node deleted):
// the holder must stop acting at once.
func (m *Mutex) Lock(ctx context.Context) (<-chan struct{}, error) {
	if m.node != "" {
		return nil, errors.New("lock: Lock called twice without Unlock")
	}
	if err := m.ensurePath(); err != nil {
		return nil, err
	}
	node, err := m.create()
	if err != nil {
		return nil, err
	}
	m.node = node
	own := path.Base(node)
	for {
		kids, _, err := m.conn.Children(m.path)
		if err != nil {
			m.withdraw()
			return nil, fmt.Errorf("listing %s: %w", m.path, err)
		}
		sort.Slice(kids, func(i, j int) bool { return seq(kids[i]) < seq(kids[j]) })
		idx := -1
		for i, k := range kids {
			if k == own {
				idx = i
			}
		}
		switch {
		case idx < 0:
			m.node = ""
			return nil, fmt.Errorf("%w: %s vanished while waiting", ErrLost, node)
		case idx == 0:
			return m.watchOwn()
		}
		ok, _, ch, err := m.conn.ExistsW(m.path + "/" + kids[idx-1])
		if err != nil {
			m.withdraw()
			return nil, fmt.Errorf("watching %s: %w", kids[idx-1], err)
		}
		if !ok {
			continue
		}
		select {
		case <-ctx.Done():
			m.withdraw()
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

// watchOwn closes lost when our node goes (deleted, or the session expired: ZooKeeper then
// tells every watcher it is no longer watching).
func (m *Mutex) watchOwn() (<-chan struct{}, error) {
	lost := make(chan struct{})
	node := m.node
	stop := make(chan struct{})
	m.stop = stop
	ok, _, ch, err := m.conn.ExistsW(node)
	if err != nil {
		m.withdraw()
		return nil, fmt.Errorf("watching %s: %w", node, err)
	}
	if !ok {
		m.withdraw()
		return nil, fmt.Errorf("%w: %s is gone", ErrLost, node)
	}
	go func() {
		for {
			select {
			case <-stop:
				return
			case ev := <-ch:
				if ev.Type == zk.EventNodeDeleted || ev.Type == zk.EventNotWatching || ev.Err != nil {
					close(lost)
					return
				}
				ok, _, next, err := m.conn.ExistsW(node)
				if err != nil || !ok {
					close(lost)
					return
				}
				ch = next
			}
		}
	}()
	return lost, nil
}

func (m *Mutex) withdraw() {
	if m.node != "" {
		_ = m.conn.Delete(m.node, -1)
		m.node = ""
	}
}

// Unlock releases the lock (deletes our node). Releasing a lost lock is not an error.
func (m *Mutex) Unlock() error {
	node := m.node
	m.node = ""
	if m.stop != nil {
		close(m.stop)
		m.stop = nil
	}
	if node == "" {
		return nil
	}
	if err := m.conn.Delete(node, -1); err != nil && !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrSessionExpired) {
		return fmt.Errorf("releasing %s: %w", node, err)
	}
	return nil
}
