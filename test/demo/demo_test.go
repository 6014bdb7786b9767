// Package demo runs `make demo` (hack/demo) non-interactively, as a user's machine would: it
// checks what the running auditor reports about the demo's registrations, that SIGINT and SIGTERM
// stop it cleanly, that it leaves no process and no file behind, and that a second run works
// the same.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/internal/cli"
	"github.com/dubboreach/dubboreach/test/harness"
)

// ready is the demo's READY line.
type ready struct {
	URL        string `json:"url"`
	ZooKeeper  string `json:"zookeeper"`
	Kubeconfig string `json:"kubeconfig"`
	Fabric     string `json:"fabric"`
	Dir        string `json:"dir"`
}

// TestDemo builds hack/demo, runs it twice with --exit-after-ready (stopped with SIGINT, then
// SIGTERM) and checks each run.
func TestDemo(t *testing.T) {
	root, err := harness.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "demo")
	build := exec.Command("go", "build", "-o", bin, "./hack/demo")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./hack/demo:\n%s", out)

	port, err := harness.FreePort()
	require.NoError(t, err)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	var urls []string
	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(fmt.Sprintf("run %d stopped with %s", i+1, sig), func(t *testing.T) {
			urls = append(urls, runDemo(t, root, bin, listen, sig))
		})
	}
	// The second run got the same address: the first released it.
	if assert.Len(t, urls, 2) {
		assert.Equal(t, "http://"+listen+"/", urls[0])
		assert.Equal(t, urls[0], urls[1], "the second run listens where the first did")
	}
}

func runDemo(t *testing.T, root, bin, listen string, stop syscall.Signal) string {
	// Every temporary file and directory the demo and the servers it starts create lives under
	// TMPDIR: the processes can be found by it, and it must be empty at the end.
	tmp := filepath.Join(t.TempDir(), "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o755))

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--exit-after-ready", "--listen", listen)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdin, err := cmd.StdinPipe() // held open: the demo stays up until the signal
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	require.NoError(t, cmd.Start())

	var (
		mu     sync.Mutex
		output strings.Builder
	)
	readyc := make(chan string, 1)
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			output.WriteString(line + "\n")
			mu.Unlock()
			if r, ok := strings.CutPrefix(line, "READY "); ok {
				readyc <- r
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { <-scanDone; exited <- cmd.Wait() }()
	dump := func() {
		mu.Lock()
		defer mu.Unlock()
		t.Logf("demo stdout:\n%s\ndemo stderr:\n%s", output.String(), stderr.String())
	}
	defer func() {
		if t.Failed() {
			dump()
		}
	}()

	var r ready
	select {
	case line := <-readyc:
		require.NoError(t, json.Unmarshal([]byte(line), &r), "READY line %q", line)
	case err := <-exited:
		t.Fatalf("the demo exited before READY: %v", err)
	case <-time.After(10 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("no READY line within 10 minutes")
	}
	t.Logf("READY after %s: %+v", time.Since(start).Round(time.Second), r)
	assert.True(t, strings.HasPrefix(r.Dir, tmp+string(filepath.Separator)), "the demo's directory %s is under TMPDIR", r.Dir)
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+/$`, r.URL)

	// While it runs: the servers it started, each found by its files under TMPDIR.
	procs := processesUnder(t, tmp)
	for _, want := range []string{"kube-apiserver", "etcd", "org.apache.zookeeper.server.ZooKeeperServerMain", "Registrar"} {
		assert.True(t, anyContains(procs, want), "no running %s with files under %s; processes: %v", want, tmp, procs)
	}

	t.Run("terminal output", func(t *testing.T) {
		mu.Lock()
		text := output.String()
		mu.Unlock()
		for _, want := range []string{
			// The webhook's decisions, as the pods were created through the API server.
			"shop/order-provider-1", "DUBBO_IP_TO_REGISTRY=<status.hostIP> DUBBO_PORT_TO_REGISTRY=20880",
			"DUBBO_IP_TO_REGISTRY=<status.podIP>", "why: pod mode: pod annotation dubboreach.io/address=pod",
			"why: namespace legacy is not labelled dubboreach.io/inject=enabled",
			"node node-3 labelled dubboreach.io/pod-route=missing",
			// The audit summary and the routes for the network team.
			"Providers: 8 (reachable 5, unreachable 3, unknown 0); unparseable entries: 0; consumers: 2",
			"ip route replace 10.244.3.0/24 via 192.168.10.13",
			"Dashboard:  " + r.URL + "\n",
		} {
			assert.Contains(t, text, want)
		}
		assert.Regexp(t, `(?m)^node-3\s+10\.244\.3\.0/24\s+192\.168\.10\.13\s+node\s+no$`, text, "routes --missing lists node-3's route")
		assert.NotRegexp(t, `(?m)^node-[12]\s`, text, "routes --missing lists only node-3")
	})

	t.Run("the running auditor", func(t *testing.T) {
		checkAuditor(t, r)
	})
	t.Run("the auditor's JSON", func(t *testing.T) {
		checkAuditJSON(t, r)
	})

	// Ctrl-C (or a TERM): everything stops and everything is removed.
	require.NoError(t, cmd.Process.Signal(stop))
	select {
	case err := <-exited:
		assert.NoError(t, err, "the demo exits 0 after %s", stop)
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the demo did not exit within 3 minutes of %s", stop)
	}
	mu.Lock()
	text := output.String()
	mu.Unlock()
	for _, want := range []string{"stopped the Java registrar", "stopped ZooKeeper", "stopped kube-apiserver and etcd", "removed " + r.Dir} {
		assert.Contains(t, text, want)
	}
	assert.Empty(t, processesUnder(t, tmp), "processes left running")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "files left in TMPDIR %s", tmp)
	for _, addr := range []string{listen, r.ZooKeeper} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		assert.Error(t, err, "%s still accepts connections", addr)
	}
	return r.URL
}

// expected is what the auditor must say about one registration of the demo.
type expected struct {
	verdict, reason, node, pod string
	missingRoute               string // "prefix via nextHop"
	stale                      bool
}

// The demo's registrations (hack/demo/scenario.go), by side, kind, service and address.
var wantFindings = map[string]expected{
	"interface com.example.order.OrderService 192.168.10.11:20880":        {verdict: "reachable", reason: "external-network", node: "node-1", pod: "shop/order-provider-1"},
	"interface com.example.order.OrderService 192.168.10.13:20880":        {verdict: "reachable", reason: "external-network", node: "node-3", pod: "shop/order-provider-2"},
	"application cart 10.244.2.11:20880":                                  {verdict: "reachable", reason: "published-pod-route", node: "node-2", pod: "shop/cart-provider"},
	"interface com.example.payment.PaymentService 10.244.1.21:20880":      {verdict: "reachable", reason: "published-pod-route", node: "node-1", pod: "legacy/payment-provider-1"},
	"interface com.example.payment.PaymentService 10.244.3.21:20880":      {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-3", pod: "legacy/payment-provider-2", missingRoute: "10.244.3.0/24 via 192.168.10.13"},
	"application inventory 10.244.3.22:20880":                             {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-3", pod: "legacy/inventory-provider", missingRoute: "10.244.3.0/24 via 192.168.10.13"},
	"interface com.example.ledger.LedgerService 172.17.0.3:20880":         {verdict: "unreachable", reason: "never-reachable"},
	"interface com.example.payment.PaymentService 10.244.2.99:20880":      {verdict: "reachable", reason: "published-pod-route", node: "node-2", stale: true},
	"consumer interface com.example.payment.PaymentService 10.244.3.23":   {verdict: "unreachable", reason: "unpublished-pod-route", node: "node-3", pod: "legacy/report-consumer", missingRoute: "10.244.3.0/24 via 192.168.10.13"},
	"consumer interface com.example.payment.PaymentService 192.168.10.11": {verdict: "reachable", reason: "external-network"},
}

// finding is a registration as the API and the JSON report it (the fields both have).
type finding struct {
	Service      string `json:"service"`
	Address      string `json:"address"`
	Port         int    `json:"port"`
	Kind         string `json:"kind"`
	Verdict      string `json:"verdict"`
	Reason       string `json:"reason"`
	Node         string `json:"node"`
	Pod          string `json:"pod"`
	Explanation  string `json:"explanation"`
	Stale        bool   `json:"stale"` // dashboard API only
	MissingRoute *struct {
		Prefix  string `json:"prefix"`
		NextHop string `json:"nextHop"`
	} `json:"missingRoute"`
}

func (f finding) key(consumer bool) string {
	k := f.Kind + " " + f.Service + " " + f.Address
	if f.Port != 0 {
		k = f.Kind + " " + f.Service + " " + net.JoinHostPort(f.Address, strconv.Itoa(f.Port))
	}
	if consumer {
		k = "consumer " + k
	}
	return k
}

// compare checks the findings against wantFindings; staleFlag says whether the source reports
// staleness as a field (the API) or only in the explanation (the JSON report).
func compare(t *testing.T, providers, consumers []finding, staleFlag bool) {
	t.Helper()
	got := map[string]finding{}
	for _, f := range providers {
		got[f.key(false)] = f
	}
	for _, f := range consumers {
		got[f.key(true)] = f
	}
	assert.Len(t, got, len(wantFindings), "registrations: %v", keys(got))
	for k, w := range wantFindings {
		f, ok := got[k]
		if !assert.True(t, ok, "no finding for %s; have %v", k, keys(got)) {
			continue
		}
		assert.Equal(t, w.verdict, f.Verdict, "%s: verdict", k)
		assert.Equal(t, w.reason, f.Reason, "%s: reason", k)
		assert.Equal(t, w.node, f.Node, "%s: node", k)
		assert.Equal(t, w.pod, f.Pod, "%s: pod", k)
		if w.missingRoute != "" {
			if assert.NotNil(t, f.MissingRoute, "%s: missingRoute", k) {
				assert.Equal(t, w.missingRoute, f.MissingRoute.Prefix+" via "+f.MissingRoute.NextHop, "%s: missingRoute", k)
			}
		} else {
			assert.Nil(t, f.MissingRoute, "%s: missingRoute", k)
		}
		if staleFlag {
			assert.Equal(t, w.stale, f.Stale, "%s: stale", k)
			continue // the API's rows carry no explanation (its detail view does)
		}
		if w.stale {
			assert.Contains(t, f.Explanation, "No pod has IP 10.244.2.99: this persistent entry (dynamic=false) outlived its provider; it is stale, delete the znode.", k)
		}
		if w.reason == "never-reachable" {
			assert.Contains(t, f.Explanation, "a network the fabric never reaches (such as a docker bridge)", k)
		}
	}
}

func keys(m map[string]finding) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkAuditor queries the auditor the demo runs (the code of `dubboreach audit --listen`):
// /readyz, the verdict counts in /metrics, the dashboard's page and overview, and every
// registration through /api/v1/.
func checkAuditor(t *testing.T, r ready) {
	body, code := get(t, r.URL+"readyz")
	assert.Equal(t, http.StatusOK, code, "readyz: %s", body)

	wantProv := map[string]float64{
		`reason="external-network",verdict="reachable"`:        2,
		`reason="published-pod-route",verdict="reachable"`:     3,
		`reason="unpublished-pod-route",verdict="unreachable"`: 2,
		`reason="never-reachable",verdict="unreachable"`:       1,
	}
	wantCons := map[string]float64{
		`reason="external-network",verdict="reachable"`:        1,
		`reason="unpublished-pod-route",verdict="unreachable"`: 1,
	}
	var lastProv, lastCons map[string]float64
	ok := eventually(func() bool {
		body, _ := get(t, r.URL+"metrics")
		lastProv, lastCons = series(body, "dubboreach_registry_providers"), series(body, "dubboreach_registry_consumers")
		return equalCounts(lastProv, wantProv) && equalCounts(lastCons, wantCons)
	})
	assert.True(t, ok, "providers by verdict and reason: got %v, want %v; consumers: got %v, want %v", lastProv, wantProv, lastCons, wantCons)
	body, _ = get(t, r.URL+"metrics")
	assert.Contains(t, body, "dubboreach_registry_scan_complete 1")
	assert.Contains(t, body, "dubboreach_zookeeper_connected 1")

	// The dashboard: its page, and the overview's counts.
	body, code = get(t, r.URL)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "<html", "the dashboard page")
	var ov struct {
		Complete  bool `json:"complete"`
		PodsKnown bool `json:"podsKnown"`
		Summary   struct {
			Total, Reachable, Unreachable, Unknown, Unparseable int
		} `json:"summary"`
		Providers, Consumers struct {
			Total     int            `json:"total"`
			ByVerdict map[string]int `json:"byVerdict"`
			Flagged   int            `json:"flagged"`
			Stale     int            `json:"stale"`
		}
	}
	body, code = get(t, r.URL+"api/v1/overview")
	require.Equal(t, http.StatusOK, code, "the auditor serves the dashboard's API: %s", body)
	require.NoError(t, json.Unmarshal([]byte(body), &ov), body)
	assert.True(t, ov.Complete)
	assert.True(t, ov.PodsKnown)
	assert.Equal(t, 8, ov.Summary.Total)
	assert.Equal(t, 5, ov.Summary.Reachable)
	assert.Equal(t, 3, ov.Summary.Unreachable)
	assert.Equal(t, map[string]int{"reachable": 5, "unreachable": 3, "unknown": 0}, ov.Providers.ByVerdict)
	assert.Equal(t, 1, ov.Providers.Stale, "the persistent entry of a gone pod")
	assert.Equal(t, 4, ov.Providers.Flagged, "3 unreachable and 1 stale")
	assert.Equal(t, map[string]int{"reachable": 1, "unreachable": 1, "unknown": 0}, ov.Consumers.ByVerdict)

	checkAPI(t, r.URL)
}

// checkAPI checks every registration through the dashboard's API (/api/v1/providers and
// /api/v1/consumers), with the pod mapping (stale) once pods are known.
func checkAPI(t *testing.T, base string) {
	var prov, cons struct {
		Items []finding `json:"items"`
	}
	var lastErr string
	ok := eventually(func() bool {
		for _, x := range []struct {
			path string
			v    any
		}{{"api/v1/providers?limit=500", &prov}, {"api/v1/consumers?limit=500", &cons}} {
			body, code := get(t, base+x.path)
			if code != http.StatusOK {
				lastErr = fmt.Sprintf("%s: %d %s", x.path, code, body)
				return false
			}
			if err := json.Unmarshal([]byte(body), x.v); err != nil {
				lastErr = err.Error()
				return false
			}
		}
		for _, f := range prov.Items {
			if f.Stale {
				return true
			}
		}
		lastErr = "no provider is stale yet (pods not mapped)"
		return false
	})
	require.True(t, ok, lastErr)
	compare(t, prov.Items, cons.Items, true)
}

// checkAuditJSON runs `dubboreach audit --once -o json` against the demo's ZooKeeper and API
// server and checks every registration.
func checkAuditJSON(t *testing.T, r ready) {
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cli.Run(ctx, []string{"audit", "--once", "-o", "json", "--zk", r.ZooKeeper, "--kubeconfig", r.Kubeconfig, "--fabric", r.Fabric}, &stdout, &stderr)
	assert.Equal(t, cli.ExitFindings, code, "audit exits 1: providers are unreachable; stderr: %s", stderr.String())
	var doc struct {
		Complete bool `json:"complete"`
		Summary  struct {
			Total, Reachable, Unreachable, Unknown, Unparseable int
		} `json:"summary"`
		Providers []finding `json:"providers"`
		Consumers []finding `json:"consumers"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &doc), "%s", stdout.String())
	assert.True(t, doc.Complete)
	assert.Equal(t, 8, doc.Summary.Total)
	assert.Equal(t, 5, doc.Summary.Reachable)
	assert.Equal(t, 3, doc.Summary.Unreachable)
	compare(t, doc.Providers, doc.Consumers, false)
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

var sampleRe = regexp.MustCompile(`^(\w+)\{([^}]*)\} (\S+)$`)

// series maps the labels of one metric's samples to their values.
func series(body, name string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		m := sampleRe.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		if v, err := strconv.ParseFloat(m[3], 64); err == nil && v != 0 {
			out[m[2]] = v
		}
	}
	return out
}

func equalCounts(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func eventually(f func() bool) bool {
	deadline := time.Now().Add(90 * time.Second)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// processesUnder lists the command lines of running processes that name a path under dir.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie
		}
		cmdline := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		if strings.Contains(cmdline, dir) {
			out = append(out, fmt.Sprintf("%d: %s", pid, cmdline))
		}
	}
	return out
}

func anyContains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}
