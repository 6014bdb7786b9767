package probe_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// listen opens a TCP listener on host (port 0), closed when the test ends.
func listen(t testing.TB, host string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// serve accepts on ln and runs handle for each connection until the listener closes; it
// counts accepted connections.
func serve(ln net.Listener, handle func(net.Conn)) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return &n
}

// realDubboHeartbeatAnswer is the fixture of a real provider's answer, until the lab test
// (test/lab/probe_test.go) probes a running Apache Dubbo provider: the bytes that
// ExchangeCodec.encodeResponse (Apache Dubbo 3.2.16, read in the source, and 2.7's
// encodeHeartbeatData alike) writes for HeartbeatHandler's answer to a heartbeat request under
// hessian2: magic da bb, flag 0x22 (event | hessian2), status 20 (OK), the request's id, body
// length 1 and hessian2's null 'N'. It is derived from the source, not captured.
func realDubboHeartbeatAnswer(id []byte) []byte {
	b := []byte{0xda, 0xbb, 0x22, 0x14}
	b = append(b, id...)
	return append(b, 0, 0, 0, 1, 0x4e)
}

// dubboFixture answers heartbeat requests as a Dubbo provider's exchange layer does. It
// fails the test on any request that is not exactly a heartbeat request.
func dubboFixture(t testing.TB, host string) (net.Listener, *atomic.Int64) {
	ln := listen(t, host)
	n := serve(ln, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		req := make([]byte, 17)
		if _, err := io.ReadFull(c, req); err != nil {
			t.Errorf("dubbo fixture: reading the request: %v", err)
			return
		}
		if !bytes.Equal(req[:4], []byte{0xda, 0xbb, 0xe2, 0x00}) || !bytes.Equal(req[12:], []byte{0, 0, 0, 1, 0x4e}) {
			t.Errorf("dubbo fixture: request % x is not a heartbeat request", req)
			return
		}
		_, _ = c.Write(realDubboHeartbeatAnswer(req[4:12]))
	})
	return ln, n
}

// h2cServer is Go's net/http HTTP/2 server (the same code as golang.org/x/net/http2) accepting
// unencrypted HTTP/2 with prior knowledge, as Dubbo 3.2's triple does.
func h2cServer(t *testing.T, host string) net.Listener {
	ln := listen(t, host)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln
}

// refusedPort is a port on host where nothing listens (it did a moment ago).
func refusedPort(t *testing.T, host string) int {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := port(ln)
	_ = ln.Close()
	return p
}

// zkWriter writes registrations the way Dubbo does: interface-level providers as URL-encoded
// znode names, application-level instances as Curator ServiceInstance JSON.
type zkWriter struct {
	t *testing.T
	c *zk.Conn
}

func newZKWriter(t *testing.T, addr string) *zkWriter {
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for deadline := time.Now().Add(30 * time.Second); c.State() != zk.StateHasSession; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no ZooKeeper session for the test's writer within 30s")
		}
	}
	return &zkWriter{t: t, c: c}
}

func (w *zkWriter) mkdirs(p string) {
	cur := ""
	for _, part := range splitPath(p) {
		cur += "/" + part
		if _, err := w.c.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			w.t.Fatal(cur, err)
		}
	}
}

func splitPath(p string) []string {
	var out []string
	for _, s := range bytes.Split([]byte(p), []byte("/")) {
		if len(s) > 0 {
			out = append(out, string(s))
		}
	}
	return out
}

// provider registers an interface-level provider URL.
func (w *zkWriter) provider(iface, rawURL string) {
	dir := "/dubbo/" + iface + "/providers"
	w.mkdirs(dir)
	if _, err := w.c.Create(dir+"/"+url.QueryEscape(rawURL), nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		w.t.Fatal(rawURL, err)
	}
}

// instance registers an application-level instance serving protocol on host:port.
func (w *zkWriter) instance(app, host string, p int, protocol string) {
	dir := "/services/" + app
	w.mkdirs(dir)
	eps := `[{\"port\":` + strconv.Itoa(p) + `,\"protocol\":\"` + protocol + `\"}]`
	data := `{"name":"` + app + `","id":"` + host + `:` + strconv.Itoa(p) + `","address":"` + host + `","port":` + strconv.Itoa(p) +
		`,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","metadata":{"dubbo.endpoints":"` + eps + `"}}}`
	if _, err := w.c.Create(dir+"/"+host+":"+strconv.Itoa(p), []byte(data), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		w.t.Fatal(err)
	}
}

func dubboURL(proto, host string, p int, iface string) string {
	return proto + "://" + net.JoinHostPort(host, strconv.Itoa(p)) + "/" + iface + "?application=demo&interface=" + iface + "&side=provider"
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// be64 is an 8-byte big-endian id.
func be64(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

type quiet struct{}

func (quiet) Printf(string, ...any) {}
