package zk

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-zookeeper/zk"

	"github.com/dubboreach/dubboreach/registry/internal/zkseed"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

var classpath string

var zkEventHasSession = zk.Event{Type: zk.EventSession, State: zk.StateHasSession}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "javareg")
	if err != nil {
		panic(err)
	}
	classpath, err = javareg.Compile(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	stopBenchServer()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const provider = "dubbo://10.244.1.5:20880/com.foo.DemoService?anyhost=true&application=demo&dynamic=true&interface=com.foo.DemoService&methods=hi&side=provider"

func goClient(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 5*time.Second, zk.WithLogInfo(false), zk.WithLogger(logAdapter{logr.Discard()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	waitFor(t, "test client session", 30*time.Second, func() bool { return c.State() == zk.StateHasSession })
	return c
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func paths(s Snapshot) map[string]Kind {
	m := map[string]Kind{}
	for _, e := range s.Entries {
		m[e.Path()] = e.Kind
	}
	return m
}

func TestOnceReadsJavaRegistrations(t *testing.T) {
	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	p, err := j.URL(false, "/dubbo", "providers", "com.foo.DemoService", provider)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := j.URL(false, "/dubbo", "consumers", "com.foo.DemoService", "consumer://10.9.0.1/com.foo.DemoService?application=client&side=consumer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Instance("/services", "demo", "10.244.1.5", 20880, "dubbo"); err != nil {
		t.Fatal(err)
	}
	snap, err := Once(harness.Context(t), Config{Options: Options{Servers: z.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Complete || len(snap.Missing) != 0 {
		t.Fatalf("complete=%v missing=%v", snap.Complete, snap.Missing)
	}
	got := paths(snap)
	if got[p] != KindProvider || got[cons] != KindConsumer || got["/services/demo/10.244.1.5:20880"] != KindInstance || len(got) != 3 {
		t.Fatalf("entries %v, want provider %s, consumer %s and one instance", got, p, cons)
	}
	for _, e := range snap.Entries {
		if e.Kind == KindInstance && !strings.Contains(string(e.Data), `"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance"`) {
			t.Errorf("instance data %s is not Curator's JSON with Dubbo's payload class", e.Data)
		}
	}
}

func TestChrootAndPermissionDenied(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := goClient(t, z.Addr)
	for _, p := range []string{"/env", "/env/dubbo", "/env/dubbo/com.a.Open", "/env/dubbo/com.a.Open/providers", "/env/dubbo/com.b.Secret"} {
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(p, err)
		}
	}
	if _, err := c.Create("/env/dubbo/com.a.Open/providers/dubbo%3A%2F%2F10.0.0.1%3A1%2Fcom.a.Open", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("/env/dubbo/com.b.Secret/providers", nil, 0, zk.DigestACL(zk.PermAll, "owner", "pw")); err != nil {
		t.Fatal(err)
	}
	snap, err := Once(harness.Context(t), Config{Options: Options{Servers: z.Addr + "/env"}})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Complete {
		t.Fatal("scan with an unreadable path reported complete")
	}
	if len(snap.Missing) != 1 || snap.Missing[0].Path != "/env/dubbo/com.b.Secret/providers" || snap.Missing[0].Kind != "permission" {
		t.Fatalf("missing = %+v, want the ACL-protected providers directory, kind permission", snap.Missing)
	}
	if len(snap.Entries) != 1 || snap.Entries[0].Dir != "/env/dubbo/com.a.Open/providers" {
		t.Fatalf("entries = %+v", snap.Entries)
	}
	// With the owner's credentials the same path is read.
	snap, err = Once(harness.Context(t), Config{Options: Options{Servers: z.Addr + "/env", Auth: "owner:pw"}})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Complete {
		t.Fatalf("with credentials: missing %+v", snap.Missing)
	}
}

func TestOnceWithoutServerIsIncomplete(t *testing.T) {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Once(context.Background(), Config{Options: Options{Servers: "127.0.0.1:" + itoa(port)}, ConnectTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Complete || len(snap.Missing) != 2 || snap.Missing[0].Kind != "connection" {
		t.Fatalf("no server: complete=%v missing=%+v", snap.Complete, snap.Missing)
	}
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for i > 0 {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
	}
	return string(b)
}

func startWatching(t *testing.T, cfg Config) *Scanner {
	t.Helper()
	cfg.Watch = true
	cfg.Log = logr.Discard()
	s, err := NewScanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	return s
}

func TestWatchFollowsChanges(t *testing.T) {
	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	s := startWatching(t, Config{Options: Options{Servers: z.Addr}})
	waitFor(t, "first complete scan", 30*time.Second, func() bool { return s.Snapshot().Complete })
	if n := len(s.Snapshot().Entries); n != 0 {
		t.Fatalf("empty registry has %d entries", n)
	}
	// A new interface (root and interface directory created by the registration itself).
	p, err := j.URL(false, "/dubbo", "providers", "com.foo.DemoService", provider)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new provider", 10*time.Second, func() bool { return paths(s.Snapshot())[p] == KindProvider })
	id, err := j.Instance("/services", "demo", "10.244.1.5", 20880, "dubbo")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new instance", 10*time.Second, func() bool { return paths(s.Snapshot())["/services/demo/"+id] == KindInstance })
	// A second provider in an existing directory, then removal.
	p2, err := j.URL(true, "/dubbo", "providers", "com.foo.DemoService", strings.Replace(provider, "10.244.1.5", "10.244.1.6", 1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second provider", 10*time.Second, func() bool { return paths(s.Snapshot())[p2] == KindProvider })
	if _, err := j.Do("delete", p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted provider gone", 10*time.Second, func() bool { _, ok := paths(s.Snapshot())[p]; return !ok })
	if !s.Snapshot().Complete {
		t.Fatalf("missing %+v", s.Snapshot().Missing)
	}
}

func TestServerStoppedAndRestarted(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := goClient(t, z.Addr)
	mustCreateProviders(t, c, 50)
	s := startWatching(t, Config{Options: Options{Servers: z.Addr, SessionTimeout: 20 * time.Second}})
	waitFor(t, "first complete scan", 30*time.Second, func() bool { return s.Snapshot().Complete })
	c.Close()
	z.Stop()
	waitFor(t, "incomplete after the server stopped", 20*time.Second, func() bool {
		sn := s.Snapshot()
		return !sn.Complete && !sn.Connected && len(sn.Missing) > 0
	})
	// The last known entries are kept (marked incomplete), not dropped.
	if n := len(s.Snapshot().Entries); n != 50 {
		t.Fatalf("entries while down = %d, want the 50 last known", n)
	}
	// A scan that runs while the server is down must not claim completeness.
	s.FullScan(context.Background())
	if sn := s.Snapshot(); sn.Complete {
		t.Fatal("a scan while the server is down reported complete")
	}
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "complete again after restart", 60*time.Second, func() bool { return s.Snapshot().Complete })
	c2 := goClient(t, z.Addr)
	if _, err := c2.Create("/dubbo/svc0/providers/dubbo%3A%2F%2F10.0.9.9%3A1%2Fsvc0", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "watch re-established after restart", 10*time.Second, func() bool { return len(s.Snapshot().Entries) == 51 })
}

func mustCreateProviders(t testing.TB, c *zk.Conn, n int) {
	t.Helper()
	for _, p := range []string{"/dubbo"} {
		_, _ = c.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
	}
	for i := 0; i < n; i++ {
		svc := "/dubbo/svc" + fmtInt(i)
		_, _ = c.Create(svc, nil, 0, zk.WorldACL(zk.PermAll))
		_, _ = c.Create(svc+"/providers", nil, 0, zk.WorldACL(zk.PermAll))
		if _, err := c.Create(svc+"/providers/dubbo%3A%2F%2F10.0.0.1%3A"+fmtInt(i+1)+"%2Fsvc", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
}

// cutter is a TCP proxy in front of ZooKeeper that can cut the client off: the one fault a
// running server cannot show on demand is the network between it and one client.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); c.setCut(true) })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			if c.cut {
				c.mu.Unlock()
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				c.mu.Unlock()
				in.Close()
				continue
			}
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { _, _ = copyConn(out, in); out.Close(); in.Close() }()
			go func() { _, _ = copyConn(in, out); out.Close(); in.Close() }()
		}
	}()
	return c
}

func copyConn(dst, src net.Conn) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err != nil {
			return n, err
		}
	}
}

func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, x := range c.conns {
			x.Close()
		}
		c.conns = nil
	}
}

func TestSessionExpiryReestablishesWatches(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := goClient(t, z.Addr)
	mustCreateProviders(t, c, 5)
	proxy := newCutter(t, z.Addr)
	// The server grants at least 2 ticks (500ms); ask for 1s.
	s := startWatching(t, Config{Options: Options{Servers: proxy.ln.Addr().String(), SessionTimeout: time.Second}})
	waitFor(t, "first complete scan", 30*time.Second, func() bool { return s.Snapshot().Complete })
	before := s.conn.SessionID()
	proxy.setCut(true)
	waitFor(t, "disconnected", 10*time.Second, func() bool { return !s.Snapshot().Connected })
	// While the scanner is cut off, its session expires on the server and a registration appears.
	time.Sleep(2 * time.Second)
	if _, err := c.Create("/dubbo/svc1/providers/dubbo%3A%2F%2F10.0.7.7%3A7%2Fsvc1", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	proxy.setCut(false)
	waitFor(t, "reconnected with a new session", 30*time.Second, func() bool {
		return s.Snapshot().Complete && s.conn.SessionID() != before && s.conn.SessionID() != 0
	})
	if n := len(s.Snapshot().Entries); n != 6 {
		t.Fatalf("after expiry: %d entries, want 6 (the registration made while cut off included)", n)
	}
	// Watches were set again on the new session: a change is followed without a resync.
	if _, err := c.Create("/dubbo/svc2/providers/dubbo%3A%2F%2F10.0.8.8%3A8%2Fsvc2", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "change followed on the new session", 10*time.Second, func() bool { return len(s.Snapshot().Entries) == 7 })
}

func TestServerStoppedDuringScan(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := goClient(t, z.Addr)
	if err := zkseed.Seed(c, "/dubbo", 3000, 3); err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(Config{Options: Options{Servers: z.Addr, Log: logr.Discard()}, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitConnected(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.event(zkEventHasSession)
	done := make(chan struct{})
	go func() { s.FullScan(context.Background()); close(done) }()
	time.Sleep(150 * time.Millisecond)
	z.Stop()
	<-done
	snap := s.Snapshot()
	if snap.Complete {
		t.Fatal("a scan cut by the server's death reported complete")
	}
	if len(snap.Entries) >= 9000 {
		t.Fatalf("the scan read everything (%d entries) before the server stopped; the test did not cut it", len(snap.Entries))
	}
	conn := 0
	for _, m := range snap.Missing {
		if m.Kind == "connection" {
			conn++
		}
	}
	if conn == 0 {
		t.Fatalf("no path reported missing for the lost connection: %+v", snap.Missing)
	}
}
