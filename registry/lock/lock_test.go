package lock

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dubboreach/dubboreach/test/harness"
)

const lockPath = "/dubboreach/locks/fix"

// curatorName is the name Curator's protected ephemeral-sequential create gives a lock node.
var curatorName = regexp.MustCompile(`^_c_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-lock-[0-9]{10}$`)

func connect(t *testing.T, addr string, timeout time.Duration) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, timeout, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				go func() {
					for range ev {
					}
				}()
				return c
			}
		case <-deadline:
			t.Fatalf("no ZooKeeper session on %s within 60s", addr)
		}
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func mutex(t *testing.T, c *zk.Conn) *Mutex {
	t.Helper()
	m, err := New(c, lockPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type acquired struct {
	lost <-chan struct{}
	err  error
}

func lockAsync(ctx context.Context, m *Mutex) chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		lost, err := m.Lock(ctx)
		ch <- acquired{lost, err}
	}()
	return ch
}

func contenders(t *testing.T, c *zk.Conn) []string {
	t.Helper()
	kids, _, err := c.Children(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	return kids
}

func TestNewRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"", "locks", "/", "/a//b", "/a/"} {
		if _, err := New(nil, p, nil); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
}

func TestSeq(t *testing.T) {
	if seq("_c_1b4e28ba-2fa1-41d2-883f-0016d3cca427-lock-0000000007") != "0000000007" || seq("x") != "x" {
		t.Fatal("seq")
	}
}

// TestTwoContenders: the second waits while the first holds, and gets the lock when it is
// released; both nodes are named as Curator names them.
func TestTwoContenders(t *testing.T) {
	z := harness.StartZooKeeper(t)
	ctx := harness.Context(t)
	ca, cb := connect(t, z.Addr, 5*time.Second), connect(t, z.Addr, 5*time.Second)
	a, b := mutex(t, ca), mutex(t, cb)
	if _, err := a.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got := lockAsync(ctx, b)
	eventually(t, "b's node", func() bool { return len(contenders(t, ca)) == 2 })
	for _, k := range contenders(t, ca) {
		if !curatorName.MatchString(k) {
			t.Errorf("lock node %q is not named as Curator's InterProcessMutex names it", k)
		}
	}
	select {
	case r := <-got:
		t.Fatalf("b got the lock while a holds it: %+v", r)
	default:
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if kids := contenders(t, ca); len(kids) != 1 {
		t.Fatalf("contenders after a released: %v", kids)
	}
	// A withdrawn contender leaves no node behind.
	wctx, cancel := context.WithCancel(ctx)
	w := lockAsync(wctx, a)
	eventually(t, "a's second node", func() bool { return len(contenders(t, ca)) == 2 })
	cancel()
	if r := <-w; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("withdrawn contender: %v", r.err)
	}
	eventually(t, "a's node gone", func() bool { return len(contenders(t, ca)) == 1 })
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestMutualExclusion: several contenders on their own sessions never hold the lock together.
func TestMutualExclusion(t *testing.T) {
	z := harness.StartZooKeeper(t)
	ctx := harness.Context(t)
	var mu sync.Mutex
	holders, rounds := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		m := mutex(t, connect(t, z.Addr, 5*time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 5; r++ {
				if _, err := m.Lock(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				holders++
				if holders != 1 {
					t.Errorf("%d holders at once", holders)
				}
				rounds++
				mu.Unlock()
				time.Sleep(time.Millisecond) // hold it a little, so that others queue
				mu.Lock()
				holders--
				mu.Unlock()
				if err := m.Unlock(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if rounds != 20 {
		t.Fatalf("%d rounds, want 20", rounds)
	}
}

// proxy forwards TCP to ZooKeeper; Cut drops every connection and refuses new ones, as a
// network partition would, so that the server expires the session behind it.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// TestSessionExpiry: the holder is partitioned away until ZooKeeper expires its session; the
// waiting contender then gets the lock, and the old holder learns it lost it once it reaches
// ZooKeeper again.
func TestSessionExpiry(t *testing.T) {
	z := harness.StartZooKeeper(t)
	ctx := harness.Context(t)
	px := newProxy(t, z.Addr)
	ca := connect(t, px.ln.Addr().String(), 2*time.Second)
	cb := connect(t, z.Addr, 5*time.Second)
	a, b := mutex(t, ca), mutex(t, cb)
	lostA, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := lockAsync(ctx, b)
	eventually(t, "b's node", func() bool { return len(contenders(t, cb)) == 2 })
	px.Cut()
	r := <-got // only after the server expired a's session and deleted its node
	if r.err != nil {
		t.Fatal(r.err)
	}
	px.Heal()
	select {
	case <-lostA:
	case <-time.After(60 * time.Second):
		t.Fatal("a was not told it lost the lock after its session expired")
	}
	if err := a.Unlock(); err != nil {
		t.Fatalf("releasing a lost lock: %v", err)
	}
	if kids := contenders(t, cb); len(kids) != 1 {
		t.Fatalf("contenders: %v", kids)
	}
	_ = b.Unlock()
}

// TestZooKeeperRestart: ZooKeeper crashes and comes back with its data; at no time do two
// contenders hold the lock, and the lock keeps working.
func TestZooKeeperRestart(t *testing.T) {
	z := harness.StartZooKeeper(t)
	ctx := harness.Context(t)
	ca, cb := connect(t, z.Addr, 5*time.Second), connect(t, z.Addr, 5*time.Second)
	a, b := mutex(t, ca), mutex(t, cb)
	lostA, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := lockAsync(ctx, b)
	eventually(t, "b's node", func() bool { return len(contenders(t, ca)) == 2 })
	if err := z.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		// Only if a's session ended: then a must have been told.
		select {
		case <-lostA:
		case <-time.After(60 * time.Second):
			t.Fatalf("b got the lock (%v) while a was not told it lost it", r.err)
		}
	case <-lostA:
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(3 * time.Second):
		// The sessions survived the restart: a still holds; releasing hands the lock on.
		if err := a.Unlock(); err != nil {
			t.Fatal(err)
		}
		if r := <-got; r.err != nil {
			t.Fatal(r.err)
		}
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lock(ctx); err != nil {
		t.Fatalf("locking again after the restart: %v", err)
	}
	_ = a.Unlock()
}
