package cli

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/test/harness"
)

// probeListen opens a TCP listener on 127.0.0.1 (port 0), closed when the test ends.
func probeListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func probePort(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// probeH2C is Go's HTTP/2 server accepting unencrypted HTTP/2 with prior knowledge, as triple does.
func probeH2C(t *testing.T) net.Listener {
	ln := probeListen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln
}

// probeRegister writes an interface-level provider URL as Dubbo does (URL-encoded znode name).
func probeRegister(t *testing.T, c *zk.Conn, iface, rawURL string) {
	t.Helper()
	dir := "/dubbo/" + iface + "/providers"
	cur := ""
	for _, part := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		cur += "/" + part
		if _, err := c.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(cur, err)
		}
	}
	_, err := c.Create(dir+"/"+url.QueryEscape(rawURL), nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, rawURL)
}

func probeURL(proto, host string, port int, iface string) string {
	return proto + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/" + iface + "?application=demo&interface=" + iface + "&side=provider"
}

func probeCLI(t *testing.T, z *harness.ZooKeeper, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return run(t, append([]string{"probe", "--zk", z.Addr, "--zk-connect-timeout", "60s", "--timeout", "5s"}, args...)...)
}

func probeJSON(t *testing.T, out string) probe.Report {
	t.Helper()
	var r probe.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r
}

// TestProbeCommand runs `dubboreach probe` against a real ZooKeeper and real servers on
// loopback: exit 0 while every provider answers, 1 once one is refused, and what --only,
// host names and -o json show.
func TestProbeCommand(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	tri := probeH2C(t)
	plain := probeListen(t) // the kernel accepts; rest:// has no handshake the probe knows
	probeRegister(t, c, "com.a.Tri", probeURL("tri", "127.0.0.1", probePort(tri), "com.a.Tri"))
	probeRegister(t, c, "com.a.Rest", probeURL("rest", "127.0.0.1", probePort(plain), "com.a.Rest"))
	probeRegister(t, c, "com.a.Named", probeURL("dubbo", "provider.example.com", 20880, "com.a.Named"))
	// TEST-NET-1: outside --only below, so never contacted.
	probeRegister(t, c, "com.a.Far", probeURL("dubbo", "192.0.2.1", 20880, "com.a.Far"))

	out, errOut, code := probeCLI(t, z, "--only", "127.0.0.0/8")
	require.Equal(t, ExitOK, code, "every probed provider answered: exit 0\n%s%s", out, errOut)
	assert.Empty(t, errOut)
	assert.Contains(t, out, "ZooKeeper "+z.Addr+": complete\n")
	assert.Contains(t, out, "Addresses probed: 2 (answered 1, connected 1); not probed: 1 host name(s), 0 without port, 0 unparseable, 1 outside --only\n")
	assert.Contains(t, out, "ADDRESS  ")
	assert.Regexp(t, `127\.0\.0\.1:`+strconv.Itoa(probePort(tri))+` +tri +answered +[0-9.]+ +1 +com\.a\.Tri +HTTP/2 preface answered with SETTINGS`, out)
	assert.Regexp(t, `127\.0\.0\.1:`+strconv.Itoa(probePort(plain))+` +rest +connected `, out)
	assert.NotContains(t, out, "192.0.2.1")

	out, errOut, code = probeCLI(t, z, "--only", "127.0.0.0/8", "-o", "json")
	require.Equal(t, ExitOK, code, errOut)
	rep := probeJSON(t, out)
	assert.True(t, rep.Complete)
	assert.Empty(t, rep.Missing)
	assert.Equal(t, probe.Summary{Addresses: 2, Results: map[probe.Result]int{probe.Answered: 1, probe.Connected: 1}, Hostnames: 1, Excluded: 1}, rep.Summary)
	require.Len(t, rep.Measurements, 2)
	for _, m := range rep.Measurements {
		assert.Equal(t, "127.0.0.1", m.Address)
		assert.True(t, m.Result.OK(), "%+v", m)
	}
	assert.False(t, rep.MeasuredAt.IsZero())

	// A provider whose port nothing listens on any more: refused, exit 1, nothing on stderr.
	gone := probeListen(t)
	gonePort := probePort(gone)
	require.NoError(t, gone.Close())
	probeRegister(t, c, "com.a.Gone", probeURL("dubbo", "127.0.0.1", gonePort, "com.a.Gone"))
	out, errOut, code = probeCLI(t, z, "--only", "127.0.0.1", "-o", "json")
	assert.Equal(t, ExitFindings, code, "a refused provider: exit 1\n%s", out)
	assert.Empty(t, errOut)
	rep = probeJSON(t, out)
	assert.True(t, rep.Complete)
	assert.Equal(t, 1, rep.Summary.Results[probe.Refused], out)
	var found bool
	for _, m := range rep.Measurements {
		if m.Port == gonePort {
			found = true
			assert.Equal(t, probe.Refused, m.Result)
			assert.Equal(t, "dubbo", m.Protocol)
			assert.Equal(t, []string{"com.a.Gone"}, m.Services)
		}
	}
	assert.True(t, found, out)
}

// --report-to sends the run to a real measurements API (registry/measure on an HTTP server).
func TestProbeCommandReportsToTheAuditor(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	tri := probeH2C(t)
	probeRegister(t, c, "com.a.Tri", probeURL("tri", "127.0.0.1", probePort(tri), "com.a.Tri"))
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("t0ken\n"), 0o600))
	store := measure.NewStore(measure.Options{})
	h, err := measure.NewHandler(measure.HandlerOptions{Store: store, TokenFile: tok})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	out, errOut, code := probeCLI(t, z, "-o", "json", "--report-to", srv.URL, "--vantage", "outside-dc1", "--token-file", tok)
	require.Equal(t, ExitOK, code, errOut)
	assert.Equal(t, 1, probeJSON(t, out).Summary.Addresses, "stdout is the report, the notice goes to stderr")
	assert.Equal(t, "reported 1 measurement(s) to "+srv.URL+" as outside-dc1: 0 contradict the auditor's verdicts (no verdicts yet: its first scan has not finished)\n", errOut)
	es := store.Entries("outside-dc1")
	require.Len(t, es, 1)
	assert.Equal(t, probe.Answered, es[0].Result)
	assert.Equal(t, probePort(tri), es[0].Port)

	// The auditor refuses (wrong token): the results are printed, the refusal is exit 2.
	require.NoError(t, os.WriteFile(tok, []byte("other\n"), 0o600))
	bad := filepath.Join(t.TempDir(), "bad")
	require.NoError(t, os.WriteFile(bad, []byte("t0ken\n"), 0o600))
	out, errOut, code = probeCLI(t, z, "--report-to", srv.URL, "--vantage", "outside-dc1", "--token-file", bad)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, out, "answered")
	assert.Contains(t, errOut, "401 Unauthorized: missing or wrong bearer token")
}

// An incomplete read of the registry is exit 1 even when every probed provider answered.
func TestProbeCommandIncompleteRegistry(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	tri := probeH2C(t)
	probeRegister(t, c, "com.a.Tri", probeURL("tri", "127.0.0.1", probePort(tri), "com.a.Tri"))
	_, err := c.Create("/dubbo/com.secret.Svc", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = c.Create("/dubbo/com.secret.Svc/providers", nil, 0, zk.DigestACL(zk.PermAll, "someone", "secret"))
	require.NoError(t, err)

	out, errOut, code := probeCLI(t, z)
	assert.Equal(t, ExitFindings, code, out+errOut)
	assert.Contains(t, out, "INCOMPLETE: 1 path(s) not read, 0 address(es) beyond --max-addresses")
	assert.Contains(t, out, "answered")

	out, _, code = probeCLI(t, z, "-o", "json")
	assert.Equal(t, ExitFindings, code)
	rep := probeJSON(t, out)
	assert.False(t, rep.Complete)
	assert.Equal(t, []string{"/dubbo/com.secret.Svc/providers"}, rep.Missing)
	assert.Equal(t, 1, rep.Summary.Results[probe.Answered])

	// More addresses than --max-addresses: the rest is not probed and the run is incomplete.
	plain := probeListen(t)
	probeRegister(t, c, "com.a.Rest", probeURL("rest", "127.0.0.1", probePort(plain), "com.a.Rest"))
	out, _, code = probeCLI(t, z, "--max-addresses", "1", "-o", "json")
	assert.Equal(t, ExitFindings, code)
	rep = probeJSON(t, out)
	assert.Equal(t, 1, rep.Summary.Addresses)
	assert.Equal(t, 1, rep.Summary.Truncated)
}

func TestProbeCommandUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "--zk is required"},
		{[]string{"--zk", ""}, "--zk is required"},
		{[]string{"--zk", "127.0.0.1:1", "-o", "yaml"}, `-o "yaml" is not a format; use table or json`},
		{[]string{"--zk", "127.0.0.1:1", "--concurrency", "0"}, "--concurrency 0: want 1..4096"},
		{[]string{"--zk", "127.0.0.1:1", "--concurrency", "5000"}, "--concurrency 5000: want 1..4096"},
		{[]string{"--zk", "127.0.0.1:1", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{[]string{"--zk", "127.0.0.1:1", "--rate", "-1"}, "--rate -1: want 0 (no bound) or a positive number"},
		{[]string{"--zk", "127.0.0.1:1", "--max-addresses", "0"}, "--max-addresses 0: want at least 1"},
		{[]string{"--zk", "127.0.0.1:1", "--zk-root", "dubbo"}, `"dubbo" is not an absolute ZooKeeper path`},
		{[]string{"--zk", "127.0.0.1:1", "--only", "10.0.0.0/33"}, "--only 10.0.0.0/33 is not a CIDR or an IP address: want e.g. 10.131.0.0/16"},
		{[]string{"--zk", "127.0.0.1:1", "--only", "pods.example.com"}, "--only pods.example.com is not a CIDR"},
		{[]string{"--zk", "127.0.0.1:1", "--zk-auth-file", "/nonexistent/zk-auth"}, "/nonexistent/zk-auth"},
		{[]string{"--zk", "127.0.0.1:1", "--timeout", "soon"}, `invalid argument "soon" for "--timeout"`},
		{[]string{"--zk", "127.0.0.1:1", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--zk", "127.0.0.1:1", "--vantage", "a"}, "--vantage and --token-file go with --report-to URL"},
		{[]string{"--zk", "127.0.0.1:1", "--report-to", "auditor:8080"}, `--report-to "auditor:8080" is not the auditor's base URL`},
		{[]string{"--zk", "127.0.0.1:1", "--report-to", "http://a:8080"}, "--report-to needs --vantage NAME"},
		{[]string{"--zk", "127.0.0.1:1", "--report-to", "http://a:8080", "--vantage", "DC 1"}, "--vantage: vantage DC 1 is not a valid name"},
		{[]string{"--zk", "127.0.0.1:1", "--report-to", "http://a:8080", "--vantage", "dc1"}, "--report-to needs --token-file FILE"},
		{[]string{"--zk", "127.0.0.1:1", "--report-to", "http://a:8080", "--vantage", "dc1", "--token-file", "/nonexistent/t"}, "--token-file: open /nonexistent/t"},
		{[]string{"--zk", "127.0.0.1:1", "extra-arg"}, `unknown command "extra-arg"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"probe"}, tc.args...)...)
			assert.Equal(t, ExitUsage, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.Empty(t, out)
		})
	}
}

// No ZooKeeper: nothing can be probed and the run says so (incomplete, exit 1), it does not hang.
func TestProbeCommandNoZooKeeper(t *testing.T) {
	ln := probeListen(t)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	out, errOut, code := run(t, "probe", "--zk", addr, "--zk-connect-timeout", "1s", "-o", "json")
	assert.Equal(t, ExitFindings, code, out+errOut)
	rep := probeJSON(t, out)
	assert.False(t, rep.Complete)
	assert.Equal(t, []string{"/dubbo", "/services"}, rep.Missing, "both roots unread")
	assert.Equal(t, 0, rep.Summary.Addresses)
	assert.Empty(t, rep.Measurements)
}
