package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-logr/logr"
	gozk "github.com/go-zookeeper/zk"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

// The XSS payloads registered in ZooKeeper: each sets window.__xss if it ever runs.
const (
	xssService = `<script>window.__xss=1</script>`
	xssApp     = `"><img src=x onerror=window.__xss=1>`
	xssZnode   = `"><img src=x onerror=window.__xss=2>`
)

// startChromium starts Debian's chromium headless with a fresh profile; a missing browser fails.
func startChromium(t testing.TB) (context.Context, context.CancelFunc) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: apt-get install chromium (%v)", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx, func() { cancelCtx(); cancelAlloc() }
}

func artifacts(t testing.TB) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shoot(t, ctx, name, chromedp.FullScreenshot(100))
}

func shoot(t *testing.T, ctx context.Context, name string, a chromedp.Action[[]byte]) {
	t.Helper()
	png, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifacts(t), "dashboard-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// seed registers the scenario through real clients: Java's URLEncoder for interface-level
// entries and Curator for instances; raw garbage through a plain ZooKeeper client.
func seed(t *testing.T, j *javareg.Client, c *gozk.Conn, bulk int) {
	t.Helper()
	reg := func(persistent bool, iface, u string) {
		t.Helper()
		if _, err := j.URL(persistent, "/dubbo", "providers", iface, u); err != nil {
			t.Fatal(err)
		}
	}
	reg(false, "com.shop.CartService", providerURL("dubbo", "10.244.2.5:20880", "com.shop.CartService", "cart", "anyhost=true"))
	reg(false, "com.shop.BillingService", providerURL("dubbo", "10.244.2.6:20880", "com.shop.BillingService", "billing", ""))
	reg(false, "com.shop.OrderService", providerURL("dubbo", "10.244.1.7:20880", "com.shop.OrderService", "orders", ""))
	reg(false, "com.shop.DockerService", providerURL("dubbo", "172.17.0.3:20880", "com.shop.DockerService", "docker", ""))
	reg(false, "com.shop.ClusterIPService", providerURL("dubbo", "10.96.0.10:20880", "com.shop.ClusterIPService", "clusterip", ""))
	reg(false, "com.shop.LocalService", providerURL("dubbo", "127.0.0.1:20880", "com.shop.LocalService", "local", ""))
	reg(false, "com.shop.EdgeService", providerURL("dubbo", "10.132.2.11:30880", "com.shop.EdgeService", "edge", ""))
	reg(false, "orders", providerURL("rest", "orders.example.svc:8080", "orders", "orders", ""))
	reg(true, "com.shop.OldService", providerURL("dubbo", "10.244.2.77:20880", "com.shop.OldService", "old", "dynamic=false"))
	// Untrusted content in a parseable registration: the interface and application parameters.
	reg(false, "com.evil.Svc", "dubbo://10.244.2.66:20880/com.evil.Svc?application="+xssApp+"&interface="+xssService+"&side=provider")
	for i := range bulk {
		iface := fmt.Sprintf("com.bulk.Service%02d", i)
		reg(false, iface, providerURL("dubbo", fmt.Sprintf("10.244.%d.%d:20880", 1+i%2, 100+i), iface, fmt.Sprintf("bulk%d", i%3), ""))
	}
	if _, err := j.URL(false, "/dubbo", "consumers", "com.shop.OrderService", "consumer://10.244.2.5/com.shop.OrderService?application=cart&category=consumers&interface=com.shop.OrderService&side=consumer"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Instance("/services", "orders", "10.244.1.7", 20880, "dubbo"); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Instance("/services", "cart", "10.244.2.5", 20880, "tri"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dubbo/com.evil.Raw", "/dubbo/com.evil.Raw/providers", "/dubbo/com.evil.Raw/providers/" + xssZnode} {
		if _, err := c.Create(p, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil {
			t.Fatal(p, err)
		}
	}
}

type live struct {
	url    string
	holder *registry.Holder
	j      *javareg.Client
	// token is the bearer token the auditor's measurements API takes (probe reports).
	token string
}

// startLive runs the real auditor (scanner with watches, judge) over a real ZooKeeper and
// serves the dashboard on the auditor's mux.
func startLive(t *testing.T, bulk int) *live {
	t.Helper()
	z := harness.StartZooKeeper(t)
	cp, err := javareg.Compile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j := javareg.Start(t, cp, z.Addr)
	c, err := connectZK(z.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	seed(t, j, c, bulk)

	w := newWorld(t)
	holder := registry.NewHolder()
	metrics := registry.NewMetrics()
	a := &registry.Auditor{
		Scan:   zk.Config{Options: zk.Options{Servers: z.Addr, SessionTimeout: 20 * time.Second}, Resync: time.Hour},
		Routes: w.store, Pods: w.pods, Holder: holder, Metrics: metrics, Log: logr.Discard(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	mux := registry.NewMux(holder, metrics)
	// A correction as `audit --fix` records it, its subject taken from a hostile registration.
	fixes := NewFixLog(10)
	fixes.Add(FixEntry{At: time.Now(), Mode: "disable", Op: "create", Result: "applied", Subject: xssService + " at 10.244.2.5:20880",
		Path: "/dubbo/config/dubbo/com.example.CartService::.configurators", Reason: "unreachable: unpublished-pod-route"})
	// The measurements API of `audit --listen` (registry/measure), as audit_probe.go wires it.
	tokenFile := filepath.Join(t.TempDir(), "probe-token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ms := measure.NewStore(measure.Options{})
	mh, err := measure.NewHandler(measure.HandlerOptions{Store: ms, TokenFile: tokenFile, Latest: holder.Latest, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	for pattern, h := range mh.Routes() {
		mux.Handle(pattern, h)
	}
	Register(mux, Options{Holder: holder, Store: w.store, Pods: w.pods, Context: ctx, EventInterval: 200 * time.Millisecond, Fixes: fixes,
		ReadZnode: func(_ context.Context, p string) ([]byte, error) { b, _, err := c.Get(p); return b, err }, Measurements: ms})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); cancel(); <-done })

	want := 10 + bulk + 2 // interface-level providers and instances
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r := holder.Latest(); r != nil && r.Complete && len(r.Providers) == want && len(r.Unparseable) == 1 && len(r.Consumers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the auditor did not see the %d seeded providers within 60s", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &live{url: srv.URL, holder: holder, j: j, token: "s3cret"}
}

func connectZK(addr string) (*gozk.Conn, error) {
	c, _, err := gozk.Connect([]string{addr}, 10*time.Second, gozk.WithLogInfo(false))
	if err != nil {
		return nil, err
	}
	for i := 0; c.State() != gozk.StateHasSession; i++ {
		if i > 1000 {
			c.Close()
			return nil, fmt.Errorf("no ZooKeeper session with %s", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, nil
}

// browser runs chromedp actions with a deadline and fails the test on error.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// until polls a JavaScript expression until it is true.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	guarded := "(() => { try { return !!(" + expr + "); } catch (e) { return false; } })()"
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](guarded, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.querySelector("main").innerText.slice(0, 2000)`))
		dbg, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(async () => { const c = new AbortController(); setTimeout(() => c.abort(), 3000); try { const r = await fetch("/api/v1/overview", {signal: c.signal}); return "fetch " + r.status; } catch (e) { return "fetch failed: " + e; } })()`, chromedp.EvalAwaitPromise))
		hc := &http.Client{Timeout: 3 * time.Second}
		goSide := "server answers"
		if res, err := hc.Get(b.base + "/api/v1/overview"); err != nil {
			goSide = err.Error()
		} else {
			res.Body.Close()
		}
		b.t.Fatalf("waiting for %s (%s): %v\npage: %s\ndebug: %s; from Go: %s", what, expr, err, state, dbg, goSide)
	}
}

func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatalf("evaluate %s: %v (%s)", expr, err, raw)
	}
}

// rowsJS lists the rows of the results table as arrays of cell texts.
const rowsJS = `[...document.querySelectorAll("main table tbody tr")].filter(r => !r.querySelector(".empty")).map(r => [...r.cells].map(c => c.textContent))`

func TestBrowser(t *testing.T) {
	const bulk = 60
	lv := startLive(t, bulk)
	ctx, stop := startChromium(t)
	defer stop()
	b := &browser{t: t, ctx: ctx, base: lv.url}
	res := lv.holder.Latest()

	t.Run("overview", func(t *testing.T) {
		b.t = t
		b.run("open overview", chromedp.Navigate(lv.url+"/"))
		b.until("the counts", `!!document.querySelector("#h-prov") && !!document.querySelector("#h-chg")`)
		var n string
		b.eval(`document.querySelector(".cards li.unreachable .n").textContent`, &n)
		if n != fmt.Sprint(res.Summary.Unreachable) {
			t.Errorf("unreachable card says %s, the result %d", n, res.Summary.Unreachable)
		}
		var text string
		b.eval(`document.querySelector("main").innerText`, &text)
		for _, s := range []string{"The last scan read the whole registry.", "connected", "unpublished-pod-route", "never-reachable", "loopback", "service-network", "hostname"} {
			if !strings.Contains(text, s) {
				t.Errorf("overview lacks %q", s)
			}
		}
		// The raw znode named with markup is listed as text.
		var cell string
		b.eval(`[...document.querySelectorAll("main td")].map(td => td.textContent).find(s => s.includes("onerror")) || ""`, &cell)
		if !strings.Contains(cell, `<img src=x onerror=window.__xss=2>`) {
			t.Errorf("unparseable znode not shown as text: %q", cell)
		}
		// The corrections of --fix, the hostile subject as text.
		var fix string
		b.eval(`[...document.querySelectorAll("section[aria-labelledby=h-fix] td")].map(td => td.textContent).join("|")`, &fix)
		for _, want := range []string{"disable create", "applied", xssService + " at 10.244.2.5:20880", "com.example.CartService::.configurators"} {
			if !strings.Contains(fix, want) {
				t.Errorf("Corrections section lacks %q: %q", want, fix)
			}
		}
		var fcp float64
		b.eval(`(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime`, &fcp)
		t.Logf("overview first contentful paint: %.0f ms", fcp)
		screenshot(t, ctx, "overview")
		shoot(t, ctx, "overview-viewport", chromedp.CaptureScreenshot()) // docs/dashboard.png
	})

	t.Run("unreachable rows with reasons", func(t *testing.T) {
		b.t = t
		b.run("open providers", chromedp.Navigate(lv.url+"/providers?verdict=unreachable&limit=100"))
		b.until("rows", `document.querySelectorAll("main tbody tr[data-verdict]").length > 0`)
		var rows [][]string
		b.eval(rowsJS, &rows)
		if len(rows) != res.Summary.Unreachable {
			t.Errorf("%d rows, want the %d unreachable providers", len(rows), res.Summary.Unreachable)
		}
		reasons := map[string]string{}
		for _, r := range rows {
			if !strings.HasPrefix(r[4], "unreachable") {
				t.Errorf("row %v is not unreachable", r)
			}
			if r[5] == "" {
				t.Errorf("row %v has no reason", r)
			}
			reasons[r[3]] = r[5]
		}
		for addr, reason := range map[string]string{"10.244.2.5:20880": "unpublished-pod-route", "172.17.0.3:20880": "never-reachable",
			"127.0.0.1:20880": "loopback", "10.96.0.10:20880": "service-network"} {
			if reasons[addr] != reason {
				t.Errorf("%s: reason %q, want %q", addr, reasons[addr], reason)
			}
		}
		var sel string
		b.eval(`document.getElementById("f-verdict").value`, &sel)
		if sel != "unreachable" {
			t.Errorf("verdict filter from the URL shows %q", sel)
		}
		screenshot(t, ctx, "providers")
	})

	t.Run("filter search back and forward", func(t *testing.T) {
		b.t = t
		b.run("open providers", chromedp.Navigate(lv.url+"/providers"))
		b.until("rows", `document.querySelectorAll("main tbody tr[data-verdict]").length > 0`)
		b.until("reason options", `[...document.getElementById("f-reason").options].some(o => o.value === "loopback")`)
		// The user picks a reason (keyboard: focus the select and choose; change event).
		b.run("pick reason", chromedp.Focus(chromedp.CSS("#f-reason")),
			evalVoid(`(e => { e.value = "loopback"; e.dispatchEvent(new Event("change", {bubbles: true})); })(document.getElementById("f-reason"))`))
		b.until("the loopback filter", `location.search === "?reason=loopback" && document.querySelectorAll("main tbody tr[data-verdict]").length === 1`)
		var rows [][]string
		b.eval(rowsJS, &rows)
		if len(rows) != 1 || rows[0][3] != "127.0.0.1:20880" {
			t.Errorf("reason=loopback rows: %v", rows)
		}
		// Clear, then search by typing.
		b.run("clear", chromedp.Click(chromedp.CSS(`button[type="reset"]`)))
		b.until("all rows", `location.search === "" && document.querySelectorAll("main tbody tr[data-verdict]").length === 50`)
		b.run("type a search", chromedp.SendKeys(chromedp.CSS("#f-q"), "cartservice"))
		b.until("the search", `location.search === "?q=cartservice" && document.querySelectorAll("main tbody tr[data-verdict]").length === 1`)
		b.eval(rowsJS, &rows)
		if len(rows) != 1 || rows[0][0] != "com.shop.CartService" {
			t.Errorf("q=cartservice rows: %v", rows)
		}
		// Back: the unfiltered list, then the reason filter, with the form showing it.
		b.run("back", chromedp.NavigateBack())
		b.until("back to all", `location.search === "" && document.querySelectorAll("main tbody tr[data-verdict]").length === 50`)
		b.run("back", chromedp.NavigateBack())
		b.until("back to loopback", `location.search === "?reason=loopback" && document.getElementById("f-reason").value === "loopback" && document.querySelectorAll("main tbody tr[data-verdict]").length === 1`)
		b.run("forward", chromedp.NavigateForward())
		b.until("forward to all", `location.search === "" && document.getElementById("f-reason").value === "" && document.querySelectorAll("main tbody tr[data-verdict]").length === 50`)
	})

	t.Run("sort", func(t *testing.T) {
		b.t = t
		b.run("open providers", chromedp.Navigate(lv.url+"/providers?limit=200"))
		b.until("rows", `document.querySelectorAll("main tbody tr[data-verdict]").length > 0`)
		// Keyboard: focus the column's button and press Enter.
		b.run("sort by address", chromedp.Focus(chromedp.CSS(`th button[data-sort="address"]`)), chromedp.KeyEvent("\r"))
		b.until("ascending", `new URLSearchParams(location.search).get("dir") === "asc" && document.querySelector('th[aria-sort="ascending"] button[data-sort="address"]') !== null`)
		var rows [][]string
		b.eval(rowsJS, &rows)
		if rows[0][3] != "10.96.0.10:20880" || rows[len(rows)-1][3] != "orders.example.svc:8080" {
			t.Errorf("address ascending: first %v last %v", rows[0], rows[len(rows)-1])
		}
		b.run("sort descending", chromedp.Click(chromedp.CSS(`th button[data-sort="address"]`)))
		b.until("descending", `new URLSearchParams(location.search).get("dir") === "desc" && document.querySelector('th[aria-sort="descending"] button[data-sort="address"]') !== null`)
		b.eval(rowsJS, &rows)
		if rows[0][3] != "orders.example.svc:8080" || rows[len(rows)-1][3] != "10.96.0.10:20880" {
			t.Errorf("address descending: first %v last %v", rows[0], rows[len(rows)-1])
		}
		b.run("sort by service", chromedp.Click(chromedp.CSS(`th button[data-sort="service"]`)))
		b.until("by service", `document.querySelector('th[aria-sort="ascending"] button[data-sort="service"]') !== null`)
		b.eval(rowsJS, &rows)
		for i := 1; i < len(rows); i++ {
			if rows[i-1][0] > rows[i][0] {
				t.Errorf("not sorted by service: %q before %q", rows[i-1][0], rows[i][0])
				break
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		b.t = t
		total := len(res.Providers)
		pages := (total + 24) / 25
		b.run("open providers", chromedp.Navigate(lv.url+"/providers?limit=25&sort=service"))
		b.until("page 1", fmt.Sprintf(`document.querySelector("[data-page]").textContent === "Page 1 of %d"`, pages))
		var first, second [][]string
		b.eval(rowsJS, &first)
		b.run("next", chromedp.Click(chromedp.CSS(`nav.pages a[rel="next"]`)))
		b.until("page 2", fmt.Sprintf(`document.querySelector("[data-page]").textContent === "Page 2 of %d" && new URLSearchParams(location.search).get("page") === "2"`, pages))
		b.eval(rowsJS, &second)
		if len(first) != 25 || len(second) != 25 || first[0][0] == second[0][0] || second[0][0] < first[24][0] {
			t.Errorf("pages 1 and 2: %d and %d rows, %q then %q", len(first), len(second), first[0][0], second[0][0])
		}
		b.run("last", chromedp.Click(chromedp.CSS(`nav.pages a:last-child`)))
		b.until("last page", fmt.Sprintf(`document.querySelector("[data-page]").textContent === "Page %d of %d"`, pages, pages))
		var last [][]string
		b.eval(rowsJS, &last)
		if len(last) != total-(pages-1)*25 {
			t.Errorf("last page: %d rows, want %d", len(last), total-(pages-1)*25)
		}
		var disabled string
		b.eval(`document.querySelector('nav.pages a[rel="next"]').getAttribute("aria-disabled")`, &disabled)
		if disabled != "true" {
			t.Errorf("next on the last page is not disabled")
		}
	})

	t.Run("detail shows the fix", func(t *testing.T) {
		b.t = t
		b.run("open providers", chromedp.Navigate(lv.url+"/providers?q=cartservice"))
		b.until("the cart row", `document.querySelectorAll("main tbody tr[data-verdict]").length === 1`)
		b.run("open the detail", chromedp.Click(chromedp.CSS(`main tbody a`)))
		b.until("the detail", `location.pathname === "/registration" && document.querySelector("#h-fix") !== null`)
		var pres []string
		b.eval(`[...document.querySelectorAll("main pre")].map(p => p.textContent)`, &pres)
		all := strings.Join(pres, "\n")
		for _, s := range []string{"ip route replace 10.244.2.0/24 via 10.132.2.12", "kubectl label namespace shop dubboreach.io/inject=enabled",
			"kubectl -n shop delete pod cart-1", "dubbo://10.244.2.5:20880/com.shop.CartService?anyhost=true&application=cart"} {
			if !strings.Contains(all, s) {
				t.Errorf("detail lacks %q in\n%s", s, all)
			}
		}
		var text string
		b.eval(`document.querySelector("main").innerText`, &text)
		for _, s := range []string{"/dubbo/com.shop.CartService/providers", "created before injection was enabled", "shop/cart-1", "node-b", "unpublished-pod-route"} {
			if !strings.Contains(text, s) {
				t.Errorf("detail lacks %q", s)
			}
		}
		// The router the user picks.
		b.run("pick junos", evalVoid(`(e => { e.value = "junos"; e.dispatchEvent(new Event("change", {bubbles: true})); })(document.getElementById("f-format"))`))
		b.until("junos", `[...document.querySelectorAll("main pre")].some(p => p.textContent.includes("set routing-options static route 10.244.2.0/24 next-hop 10.132.2.12"))`)
		b.run("copy", chromedp.Click(chromedp.CSS(`.copy button`)))
		b.until("copied", `document.querySelector(".copy [role=status]").textContent !== ""`)
		screenshot(t, ctx, "detail")
		// An application-level instance shows its instance JSON, read from the znode.
		z := ""
		for _, f := range res.Providers {
			if f.Kind == registry.KindApplication && f.Service == "cart" {
				z = f.Znode
			}
		}
		b.run("open the instance", chromedp.Navigate(lv.url+"/registration?znode="+urlQuery(z)))
		b.until("instance", `[...document.querySelectorAll("main pre")].some(p => p.textContent.includes('"payloadClass": "org.apache.dubbo.registry.zookeeper.ZookeeperInstance"'))`)
	})

	t.Run("registry content is text", func(t *testing.T) {
		b.t = t
		b.run("open providers", chromedp.Navigate(lv.url+"/providers?q=xss"))
		b.until("the row", `document.querySelectorAll("main tbody tr[data-verdict]").length === 1`)
		var rows [][]string
		b.eval(rowsJS, &rows)
		if len(rows) != 1 || rows[0][0] != xssService || !strings.Contains(rows[0][1], `<img src=x onerror=window.__xss=1>`) {
			t.Errorf("payload row: %v", rows)
		}
		b.run("open the detail", chromedp.Click(chromedp.CSS(`main tbody a`)))
		b.until("the detail", `document.querySelector("main h1") !== null && document.querySelector("#h-fix") !== null`)
		var h1 string
		b.eval(`document.querySelector("main h1").textContent`, &h1)
		if h1 != xssService {
			t.Errorf("detail title %q", h1)
		}
		b.run("open overview", chromedp.Navigate(lv.url+"/"))
		b.until("overview", `document.querySelector("#h-bad") !== null`)
		for _, view := range []string{"/", "/providers?q=xss", "/registration?znode=" + urlQuery(findXSS(res))} {
			b.run("open "+view, chromedp.Navigate(lv.url+view))
			b.until(view, `document.querySelector("main h1") !== null && document.querySelector("main [aria-busy]") === null`)
			var state struct {
				XSS     string `json:"xss"`
				Imgs    int    `json:"imgs"`
				Scripts int    `json:"scripts"`
			}
			b.eval(`({xss: typeof window.__xss, imgs: document.querySelectorAll("img").length, scripts: document.querySelectorAll("script:not([src])").length})`, &state)
			if state.XSS != "undefined" || state.Imgs != 0 || state.Scripts != 0 {
				t.Errorf("%s: window.__xss is %s, %d img and %d inline script elements", view, state.XSS, state.Imgs, state.Scripts)
			}
		}
	})

	t.Run("routes", func(t *testing.T) {
		b.t = t
		b.run("open routes", chromedp.Navigate(lv.url+"/routes"))
		b.until("routes", `document.querySelector("#f-format") !== null`)
		var rows [][]string
		b.eval(`[...document.querySelectorAll("main table")[0].tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))`, &rows)
		if len(rows) != 2 || rows[1][0] != "node-b" || rows[1][3] != "1" || rows[0][3] != "0" {
			t.Errorf("nodes: %v", rows)
		}
		var pre string
		b.eval(`document.querySelector("main pre").textContent`, &pre)
		if pre != "ip route replace 10.244.2.0/24 via 10.132.2.12\n" {
			t.Errorf("missing routes (linux): %q", pre)
		}
		b.run("pick cisco-ios", evalVoid(`(e => { e.value = "cisco-ios"; e.dispatchEvent(new Event("change", {bubbles: true})); })(document.getElementById("f-format"))`))
		b.until("cisco", `location.search === "?format=cisco-ios" && document.querySelector("main pre").textContent.includes("ip route 10.244.2.0 255.255.255.0 10.132.2.12")`)
		screenshot(t, ctx, "routes")
	})

	t.Run("updates keep the filters", func(t *testing.T) {
		b.t = t
		b.run("open providers", chromedp.Navigate(lv.url+"/providers?verdict=unreachable&q=newservice"))
		b.until("empty result", `document.querySelector("main caption") !== null && document.querySelector("main caption").textContent.startsWith("No providers")`)
		if _, err := lv.j.URL(false, "/dubbo", "providers", "com.shop.NewService", providerURL("dubbo", "10.244.2.44:20880", "com.shop.NewService", "new", "")); err != nil {
			t.Fatal(err)
		}
		b.until("the new row", `document.querySelectorAll("main tbody tr[data-verdict]").length === 1`)
		var state []string
		b.eval(`[document.getElementById("f-q").value, document.getElementById("f-verdict").value, location.search]`, &state)
		if state[0] != "newservice" || state[1] != "unreachable" || state[2] != "?verdict=unreachable&q=newservice" {
			t.Errorf("filters after the update: %v", state)
		}
	})

	t.Run("measurements beside verdicts", func(t *testing.T) {
		b.t = t
		testMeasurements(t, b, lv)
	})

	t.Run("narrow window", func(t *testing.T) {
		b.t = t
		b.run("narrow", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
		defer b.run("wide", chromedp.EmulateViewport(1280, 900))
		b.run("open providers", chromedp.Navigate(lv.url+"/providers?verdict=unreachable"))
		b.until("rows", `document.querySelectorAll("main tbody tr[data-verdict]").length > 0`)
		var overflow bool
		b.eval(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
		if overflow {
			t.Error("the page scrolls sideways in a 390px window (only the table should)")
		}
		screenshot(t, ctx, "providers-narrow")
	})
}

func urlQuery(s string) string { return url.QueryEscape(s) }

func findXSS(r *registry.Result) string {
	for _, f := range r.Providers {
		if f.Service == xssService {
			return f.Znode
		}
	}
	return ""
}

// evalVoid runs a script for its effect.
func evalVoid(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[json.RawMessage](expr)(ctx, t)
		return err
	})
}

// xssDetail is what a hostile probe reports as a measurement's detail.
const xssDetail = `"><img src=x onerror=window.__xss=3>`

// testMeasurements posts probe reports over HTTP into the auditor's measurements API, as
// `dubboreach probe --report-to` does, while the providers table is open: the page updates by
// itself, shows "measured from NAME: result, N s ago" beside the verdicts, marks the two
// contradictions (orders' published route timed out, cart's unpublished one answered) with
// their hints, filters them, and renders reported text as text.
func testMeasurements(t *testing.T, b *browser, lv *live) {
	u, err := url.Parse(lv.url)
	if err != nil {
		t.Fatal(err)
	}
	// A hostile vantage name is refused by the auditor; it never reaches a page.
	evil := &probe.Reporter{URL: u, Vantage: `"><img src=x onerror=window.__xss=4>`, Token: lv.token}
	if _, err := evil.Send(context.Background(), &probe.Report{Measurements: []probe.Measurement{{Address: "10.244.1.7", Port: 20880, Result: probe.Answered}}}); err == nil {
		t.Error("a report from a vantage named with markup was accepted")
	}

	b.run("open providers", chromedp.Navigate(lv.url+"/providers?limit=200"))
	b.until("rows", `document.querySelectorAll("main tbody tr[data-verdict]").length > 50`)
	var hidden bool
	b.eval(`document.getElementById("c-contradicted").hidden`, &hidden)
	if !hidden {
		t.Error("the contradicted filter is shown before any probe reported")
	}
	r := &probe.Reporter{URL: u, Vantage: "outside-dc1", Token: lv.token}
	ack, err := r.Send(context.Background(), &probe.Report{Measurements: []probe.Measurement{
		{Address: "10.244.1.7", Port: 20880, Protocol: "dubbo", Result: probe.Timeout, Detail: "no answer to the connect within 3s"},
		{Address: "10.244.2.5", Port: 20880, Protocol: "dubbo", Result: probe.Answered, Detail: xssDetail, Millis: 1.2},
		{Address: "10.244.2.77", Port: 20880, Protocol: "dubbo", Result: probe.Refused},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Contradictions != 2 {
		t.Errorf("the auditor counts %d contradictions, want 2", ack.Contradictions)
	}
	// The open page re-fetches on the report's event: the interface- and application-level
	// entries of both addresses are marked.
	b.until("the contradiction marks", `document.querySelectorAll("main tbody tr[data-contradicted=true]").length === 4`)
	var cells map[string]string
	b.eval(`Object.fromEntries([...document.querySelectorAll("main tbody tr[data-verdict]")].map(r => [r.cells[0].textContent + " " + r.cells[3].textContent, r.cells[4].textContent]))`, &cells)
	orders := cells["com.shop.OrderService 10.244.1.7:20880"]
	for _, want := range []string{"reachable", "contradicted", "measured from outside-dc1: timeout, ", " s ago",
		"the pod route of node node-a is taken as published", "10.244.1.7:20880 was timeout from outside-dc1"} {
		if !strings.Contains(orders, want) {
			t.Errorf("orders' verdict cell lacks %q: %q", want, orders)
		}
	}
	cart := cells["com.shop.CartService 10.244.2.5:20880"]
	for _, want := range []string{"unreachable", "contradicted", "measured from outside-dc1: answered, ", "so the route 10.244.2.0/24 via 10.132.2.12 is in place"} {
		if !strings.Contains(cart, want) {
			t.Errorf("cart's verdict cell lacks %q: %q", want, cart)
		}
	}
	old := cells["com.shop.OldService 10.244.2.77:20880"]
	if !strings.Contains(old, "measured from outside-dc1: refused, ") || strings.Contains(old, "contradicted") {
		t.Errorf("old's verdict cell (refused: measured, no contradiction): %q", old)
	}
	if edge := cells["com.shop.EdgeService 10.132.2.11:30880"]; strings.Contains(edge, "measured") {
		t.Errorf("an unmeasured provider shows a measurement: %q", edge)
	}
	screenshot(t, b.ctx, "providers-measured")

	// The filter: shown now, operated by keyboard (space toggles the checkbox).
	b.until("the filter shown", `!document.getElementById("c-contradicted").hidden`)
	b.run("filter contradicted", chromedp.Focus(chromedp.CSS("#f-contradicted")), chromedp.KeyEvent(" "))
	b.until("only contradicted", `new URLSearchParams(location.search).get("contradicted") === "true" && document.querySelectorAll("main tbody tr[data-verdict]").length === 4`)
	var rows [][]string
	b.eval(rowsJS, &rows)
	for _, row := range rows {
		if row[3] != "10.244.1.7:20880" && row[3] != "10.244.2.5:20880" {
			t.Errorf("row %v is not contradicted", row)
		}
	}
	b.run("reload the filtered view", chromedp.Navigate(lv.url+"/providers?contradicted=true"))
	b.until("filter from the URL", `document.getElementById("f-contradicted").checked && document.querySelectorAll("main tbody tr[data-contradicted=true]").length === 4`)

	// The detail: every measurement with its detail text, and the contradiction as an alert.
	b.run("open cart", chromedp.Navigate(lv.url+"/providers?q=cartservice"))
	b.until("the cart row", `document.querySelectorAll("main tbody tr[data-verdict]").length === 1`)
	b.run("open the detail", chromedp.Click(chromedp.CSS(`main tbody a`)))
	b.until("the detail", `document.querySelector("[data-field=contradicted]") !== null && document.querySelector("dd[data-field=measured]") !== null`)
	var banner, measured string
	b.eval(`document.querySelector("[data-field=contradicted]").textContent`, &banner)
	b.eval(`document.querySelector("dd[data-field=measured]").textContent`, &measured)
	if !strings.Contains(banner, "A measurement contradicts this verdict.") || !strings.Contains(banner, "add it to podRoutes.installed in the fabric file") {
		t.Errorf("detail banner: %q", banner)
	}
	if !strings.Contains(measured, "measured from outside-dc1: answered, ") || !strings.Contains(measured, "(dubbo, 1.2 ms)") || !strings.Contains(measured, xssDetail) {
		t.Errorf("detail measurements (the hostile detail as text): %q", measured)
	}
	screenshot(t, b.ctx, "detail-contradicted")

	// The overview counts them and lists the vantage.
	b.run("open overview", chromedp.Navigate(lv.url+"/"))
	b.until("measurements", `document.querySelector("#h-probe") !== null`)
	var card, section string
	b.eval(`document.querySelector("[data-field=contradicted]").textContent`, &card)
	b.eval(`document.querySelector("section[aria-labelledby=h-probe]").textContent`, &section)
	if card != "4contradicted by a measurement" || !strings.Contains(section, "outside-dc1") || !strings.Contains(section, "answered 1, refused 1, timeout 1") {
		t.Errorf("overview card %q, section %q", card, section)
	}

	for _, view := range []string{"/", "/providers?contradicted=true", "/registration?znode=" + urlQuery(findingByPrefix(lv.holder.Latest(), "/dubbo/com.shop.CartService/").Znode)} {
		b.run("open "+view, chromedp.Navigate(lv.url+view))
		b.until(view, `document.querySelector("main h1") !== null && document.querySelector("main [aria-busy]") === null && document.body.innerText.includes("outside-dc1")`)
		var state struct {
			XSS  string `json:"xss"`
			Imgs int    `json:"imgs"`
		}
		b.eval(`({xss: typeof window.__xss, imgs: document.querySelectorAll("img").length})`, &state)
		if state.XSS != "undefined" || state.Imgs != 0 {
			t.Errorf("%s: window.__xss is %s, %d img elements", view, state.XSS, state.Imgs)
		}
	}
}
