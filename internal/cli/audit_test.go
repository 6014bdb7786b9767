package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry/fix"
	"github.com/dubboreach/dubboreach/test/harness"
)

const (
	auditInventory = "../../registry/testdata/inventory.yaml"
	auditFabric    = "../../registry/testdata/fabric.yaml"
	cartRule       = "/dubbo/config/dubbo/com.shop.CartService::.configurators"
	oldRule        = "/dubbo/config/dubbo/com.shop.OldService::.configurators"
)

func TestAuditFixUsageErrors(t *testing.T) {
	base := []string{"audit", "--zk", "127.0.0.1:1", "--inventory", auditInventory, "--fabric", auditFabric}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--once", "--fix", "bogus"}, `--fix "bogus": unknown mode "bogus"; allowed: none, disable, undo-disable, prune, evict`},
		{[]string{"--once", "--fix", "disable,bogus"}, `unknown mode "bogus"; allowed: none, disable, undo-disable, prune, evict`},
		{[]string{"--once", "--fix", "disable,"}, "empty mode in the list"},
		{[]string{"--once", "--fix", "none,disable"}, "none cannot be combined"},
		{[]string{"--once", "--fix", "disable,undo-disable"}, "disable and undo-disable contradict each other"},
		{[]string{"--once", "--fix", "evict"}, "--fix evict needs a cluster"},
		{[]string{"--once", "--fix", "prune", "--fix-backup-dir", "/tmp"}, "cannot honour --stale-after 10m0s"},
		{[]string{"--once", "--fix", "prune", "--stale-after", "0"}, "--fix prune needs --fix-backup-dir"},
		{[]string{"--fix", "prune", "--stale-after", "0", "--fix-backup-dir", "/tmp"}, "--stale-after=0 is for --once only"},
		{[]string{"--once", "--fix", "disable", "--max-fix-changes", "0"}, "--max-fix-changes 0: want at least 1"},
		{[]string{"--once", "--fix", "disable", "--config-root", "dubbo/config"}, `--config-root "dubbo/config" is not a clean absolute`},
		{[]string{"--once", "--fix", "disable", "--disable-scope", "inside"}, `--disable-scope "inside": want outside (the consumers outside the clusters) or all`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, append(append([]string{}, base...), tc.args...)...)
			assert.Equal(t, ExitUsage, code, errOut)
			assert.Contains(t, errOut, tc.want)
			assert.Empty(t, out)
		})
	}
}

// zkTree is every znode (but /zookeeper) with its data.
func zkTree(t *testing.T, c *zk.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		data, _, err := c.Get(p)
		if errors.Is(err, zk.ErrNoAuth) {
			out[p] = "(not readable)"
			return
		}
		require.NoError(t, err, p)
		out[p] = string(data)
		kids, _, err := c.Children(p)
		require.NoError(t, err, p)
		for _, k := range kids {
			if p == "/" && k == "zookeeper" {
				continue
			}
			walk(path.Join(p, k))
		}
	}
	walk("/")
	return out
}

func connect(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.Eventually(t, func() bool { return c.State() == zk.StateHasSession }, 30*time.Second, 20*time.Millisecond, "no ZooKeeper session")
	return c
}

// create makes p and its missing parents (empty, persistent).
func create(t *testing.T, c *zk.Conn, p string, data []byte) {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i := 1; i < len(parts); i++ {
		_, err := c.Create("/"+strings.Join(parts[:i], "/"), nil, 0, zk.WorldACL(zk.PermAll))
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	_, err := c.Create(p, data, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err, p)
}

func providerZnode(iface, hostPort, extra string) string {
	u := "dubbo://" + hostPort + "/" + iface + "?" + extra + "application=x&interface=" + iface + "&side=provider"
	return "/dubbo/" + iface + "/providers/" + url.QueryEscape(u)
}

// seed registers an unreachable provider (cart-1's pod IP; node-b's pod route is not
// installed), a reachable one (orders-1) and a persistent entry no pod holds any more. Cart and
// Old also have a provider on node-b's host network (reachable), and a consumer outside the
// cluster: without them a disable would do nothing (Dubbo keeps its last invokers; docs/fix.md).
func seed(t *testing.T, c *zk.Conn) (stale string) {
	create(t, c, providerZnode("com.shop.CartService", "10.244.2.5:20880", ""), nil)
	create(t, c, providerZnode("com.shop.OrderService", "10.244.1.7:20880", ""), nil)
	stale = providerZnode("com.shop.OldService", "10.244.2.77:20880", "dynamic=false&")
	create(t, c, stale, []byte("written by hand\x00\xff"))
	for _, iface := range []string{"com.shop.CartService", "com.shop.OldService"} {
		create(t, c, providerZnode(iface, "10.132.2.12:20881", ""), nil)
		create(t, c, "/dubbo/"+iface+"/consumers/"+url.QueryEscape("consumer://10.132.2.50/"+iface+
			"?application=web&category=consumers&interface="+iface+"&release=3.3.6&side=consumer"), nil)
	}
	return stale
}

func audit(t *testing.T, z *harness.ZooKeeper, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return run(t, append([]string{"audit", "--once", "--zk", z.Addr, "--zk-connect-timeout", "60s",
		"--inventory", auditInventory, "--fabric", auditFabric}, args...)...)
}

func TestAuditFixDisableDryRunApplyUndo(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	seed(t, c)
	before := zkTree(t, c)

	// --dry-run: the plan on stdout, nothing changed.
	out, errOut, code := audit(t, z, "--fix", "disable", "--dry-run", "-o", "json")
	require.Equal(t, ExitOK, code, errOut)
	var plan fix.Plan
	require.NoError(t, json.Unmarshal([]byte(out), &plan), out)
	assert.True(t, plan.Complete)
	// cart-1 (unpublished pod route) and the persistent entry no pod holds; not orders-1.
	require.Len(t, plan.Changes, 2, out)
	ch, old := plan.Changes[0], plan.Changes[1]
	assert.Equal(t, fix.ModeDisable, ch.Mode)
	assert.Equal(t, fix.OpCreate, ch.Op)
	assert.Equal(t, cartRule, ch.Path)
	assert.Equal(t, "10.244.2.5:20880", ch.Provider)
	assert.Contains(t, ch.AfterText, `addresses: ["10.132.2.50"], providerAddresses: ["10.244.2.5:20880"]`)
	assert.Equal(t, []string{"10.132.2.50"}, ch.Consumers, "the rule names the consumer outside the cluster")
	assert.Equal(t, oldRule, old.Path)
	assert.Equal(t, "10.244.2.77:20880", old.Provider)
	assert.NotContains(t, out, "10.244.1.7", "the reachable provider is not disabled")
	assert.Contains(t, errOut, "dry run: 2 change(s) planned")
	assert.Equal(t, before, zkTree(t, c), "--dry-run changed ZooKeeper")

	// Applied: exactly the rule node and its parents appear, holding our entry.
	out, errOut, code = audit(t, z, "--fix", "disable", "-o", "json")
	require.Equal(t, ExitOK, code, errOut)
	var rep fix.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Len(t, rep.Results, 2)
	assert.Equal(t, 2, rep.Count(fix.ResultApplied))
	after := zkTree(t, c)
	want := map[string]string{}
	for k, v := range before {
		want[k] = v
	}
	want["/dubbo/config"], want["/dubbo/config/dubbo"] = "", ""
	want[cartRule], want[oldRule] = ch.AfterText, old.AfterText
	assert.Equal(t, want, after)
	assert.Contains(t, after[cartRule], "side: consumer")
	assert.Contains(t, after[cartRule], "dubboreach: managed")

	// Again: idempotent, nothing to change.
	out, errOut, code = audit(t, z, "--fix", "disable")
	require.Equal(t, ExitOK, code, errOut)
	assert.Equal(t, "Nothing to change.\n", out)
	assert.Equal(t, want, zkTree(t, c))

	// undo-disable removes the node dubboreach created; the empty parents stay.
	out, errOut, code = audit(t, z, "--fix", "undo-disable")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "applied")
	assert.Contains(t, out, cartRule)
	assert.Contains(t, out, oldRule)
	delete(want, cartRule)
	delete(want, oldRule)
	assert.Equal(t, want, zkTree(t, c))
}

func TestAuditFixIncompleteScanChangesNothing(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	seed(t, c)
	// A service dubboreach may not read: the scan cannot be complete.
	create(t, c, "/dubbo/com.secret.Svc", nil)
	_, err := c.Create("/dubbo/com.secret.Svc/providers", nil, 0, zk.DigestACL(zk.PermAll, "someone", "secret"))
	require.NoError(t, err)
	before := zkTree(t, c)

	out, errOut, code := audit(t, z, "--fix", "disable", "--dry-run")
	assert.Equal(t, ExitFindings, code, errOut)
	assert.Contains(t, errOut, "the scan is incomplete: no fix is planned or applied")
	assert.JSONEq(t, `{"complete": false, "changes": []}`, out)

	_, errOut, code = audit(t, z, "--fix", "disable")
	assert.Equal(t, ExitFindings, code, errOut)
	assert.Contains(t, errOut, "the scan is incomplete")
	assert.Equal(t, before, zkTree(t, c), "an incomplete scan changed ZooKeeper")
}

func TestAuditFixPruneAndRestore(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	stale := seed(t, c)
	before := zkTree(t, c)
	dir := t.TempDir()

	out, errOut, code := audit(t, z, "--fix", "prune", "--stale-after", "0", "--fix-backup-dir", dir, "-o", "json")
	require.Equal(t, ExitOK, code, errOut)
	var rep fix.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Len(t, rep.Results, 1, out)
	assert.Equal(t, fix.ResultApplied, rep.Results[0].Result)
	assert.Equal(t, stale, rep.Results[0].Change.Path)
	require.NotEmpty(t, rep.Backup)
	assert.Equal(t, dir, filepath.Dir(rep.Backup))
	assert.Equal(t, "dubboreach audit restore --zk "+z.Addr+" --backup "+rep.Backup, rep.RestoreCommand)
	want := map[string]string{}
	for k, v := range before {
		if k != stale {
			want[k] = v
		}
	}
	assert.Equal(t, want, zkTree(t, c), "prune deleted exactly the stale persistent entry")

	// Restore through the CLI: byte for byte, same ACL.
	out, errOut, code = run(t, "audit", "restore", "--zk", z.Addr, "--backup", rep.Backup)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "applied")
	assert.Equal(t, before, zkTree(t, c))
	data, _, err := c.Get(stale)
	require.NoError(t, err)
	assert.Equal(t, []byte("written by hand\x00\xff"), data)
	acl, _, err := c.GetACL(stale)
	require.NoError(t, err)
	assert.Equal(t, zk.WorldACL(zk.PermAll), acl)

	// Twice: nothing changes.
	out, errOut, code = run(t, "audit", "restore", "--zk", z.Addr, "--backup", rep.Backup)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "already present with the same data")
	assert.Equal(t, before, zkTree(t, c))

	// A file that is not a backup: usage error, nothing done.
	bogus := filepath.Join(dir, "bogus.json")
	require.NoError(t, os.WriteFile(bogus, []byte(`{"kind":"x"}`), 0o600))
	_, errOut, code = run(t, "audit", "restore", "--zk", z.Addr, "--backup", bogus)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, "not a dubboreach backup")
}

// The long-running auditor (no cluster: it is the leader) applies disable after its audit and
// counts it in dubboreach_fixes_total on /metrics.
func TestAuditFixLongRunning(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	seed(t, c)
	port, err := harness.FreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- Run(ctx, []string{"audit", "--zk", z.Addr, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--inventory", auditInventory, "--fabric", auditFabric, "--fix", "disable"}, &out, &errOut)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, ExitOK, code, errOut.String())
		case <-time.After(30 * time.Second):
			t.Error("audit did not stop")
		}
	}()

	var data []byte
	require.Eventually(t, func() bool {
		data, _, err = c.Get(cartRule)
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "the rule node never appeared")
	assert.Contains(t, string(data), `providerAddresses: ["10.244.2.5:20880"]`)

	var metrics string
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return strings.Contains(metrics, `dubboreach_fixes_total{mode="disable",result="applied"} 2`)
	}, 30*time.Second, 100*time.Millisecond)
	assert.Contains(t, metrics, "dubboreach_fix_cap_exceeded 0")

	// The same corrections are on the dashboard (its Corrections section reads this).
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/fixes", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	var fixes struct {
		Enabled bool `json:"enabled"`
		Fixes   []struct {
			Mode, Result, Provider, Path string
		} `json:"fixes"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&fixes))
	assert.True(t, fixes.Enabled)
	var applied []string
	for _, f := range fixes.Fixes {
		if f.Mode == "disable" && f.Result == "applied" {
			applied = append(applied, f.Provider)
		}
	}
	assert.Len(t, applied, 2, "both disable rules shown: %+v", fixes.Fixes)
}
