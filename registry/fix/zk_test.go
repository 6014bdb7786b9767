package fix

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

// One real ZooKeeper for the package; each test works under its own root.
var (
	zkServer *harness.ZooKeeper
	zkDir    string
)

func TestMain(m *testing.M) {
	var err error
	zkDir, err = os.MkdirTemp("", "fix-zk")
	if err != nil {
		panic(err)
	}
	zkServer, err = harness.StartZooKeeperIn(zkDir)
	if err != nil {
		os.RemoveAll(zkDir)
		panic(err)
	}
	code := m.Run()
	zkServer.Stop()
	os.RemoveAll(zkDir)
	os.Exit(code)
}

type discard struct{}

func (discard) Printf(string, ...any) {}

func conn(t *testing.T) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{zkServer.Addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(discard{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.Now().Add(30 * time.Second)
	for c.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatal("no ZooKeeper session within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// mkdirs creates p and its parents (empty, persistent) and then p's data.
func put(t *testing.T, c *zk.Conn, p string, data string, flags int32) {
	t.Helper()
	for _, d := range parentsOf(path.Dir(p)) {
		if _, err := c.Create(d, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	if _, err := c.Create(p, []byte(data), flags, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("creating %s: %v", p, err)
	}
}

// snapshot reads the whole tree under root: path -> data.
func snapshot(t *testing.T, c *zk.Conn, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		data, _, err := c.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		out[p] = string(data)
		kids, _, err := c.Children(p)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Fatal(err)
		}
		for _, k := range kids {
			walk(p + "/" + k)
		}
	}
	walk(root)
	return out
}

// expect applies a plan's changes to a snapshot, as the tree should look after Apply.
func expect(before map[string]string, changes []Change) map[string]string {
	out := map[string]string{}
	for k, v := range before {
		out[k] = v
	}
	for _, c := range changes {
		switch c.Op {
		case OpCreate:
			for _, p := range c.Parents {
				out[p] = ""
			}
			out[c.Path] = string(c.After)
		case OpSet:
			out[c.Path] = string(c.After)
		case OpDelete:
			delete(out, c.Path)
		}
	}
	return out
}

func diff(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	var lines []string
	for k, v := range got {
		if w, ok := want[k]; !ok {
			lines = append(lines, "unexpected "+k)
		} else if w != v {
			lines = append(lines, fmt.Sprintf("changed %s:\n got %q\nwant %q", k, v, w))
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			lines = append(lines, "missing "+k)
		}
	}
	sort.Strings(lines)
	t.Fatalf("%s: tree differs from the expected one:\n%s", what, strings.Join(lines, "\n"))
}

func results(r Report) map[string]int {
	out := map[string]int{}
	for _, x := range r.Results {
		out[x.Change.Mode+"/"+x.Result]++
	}
	return out
}

const providerName = "dubbo%3A%2F%2F10.244.1.7%3A20880%2Fcom.foo.BarService%3Fanyhost%3Dtrue%26application%3Dbar%26dynamic%3Dfalse%26interface%3Dcom.foo.BarService%26side%3Dprovider"

func TestDisableMergeUndoAndRestart(t *testing.T) {
	c := conn(t)
	root := "/disable"
	o := DisableOptions{ConfigRoot: root + "/dubbo/config/dubbo", RegistryRoot: root + "/dubbo", Legacy: true}
	demo := Service{Interface: "org.apache.dubbo.samples.governance.api.DemoService", Version: "1.0.0", Group: "governance"}
	bar := Service{Interface: "com.foo.BarService"}
	foreign := string(mustRead(t, "dubbo-docs-template-rule.yaml"))
	demoRule := o.ConfigRoot + "/" + demo.RuleName()
	// Foreign state: a rule for demo, a provider, a foreign legacy override and another rule.
	put(t, c, demoRule, foreign, 0)
	put(t, c, o.ConfigRoot+"/com.other.Svc::.configurators", "configVersion: v2.7\nkey: com.other.Svc\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\n", 0)
	put(t, c, o.RegistryRoot+"/com.foo.BarService/providers/"+providerName, "", 0)
	put(t, c, o.RegistryRoot+"/com.foo.BarService/configurators/"+JavaURLEncode("override://0.0.0.0/com.foo.BarService?category=configurators&dynamic=false&application=foo&timeout=1000"), "", 0)
	orig := snapshot(t, c, root)

	targets := []Target{
		{Interface: demo.Interface, Version: "1.0.0", Group: "governance", Address: ap("10.244.1.7:20880")},
		{Interface: bar.Interface, Address: ap("10.244.2.9:20880")},
		{Interface: bar.Interface, Address: ap("10.244.2.10:20880")},
		{Interface: bar.Interface, Address: netip6()},
	}
	plan, err := PlanDisable(c, true, targets, o)
	if err != nil {
		t.Fatal(err)
	}
	var createdParents []string
	for _, ch := range plan.Changes {
		createdParents = append(createdParents, ch.Parents...)
	}
	// demo: one set (merge), bar: one create (new node, empty version and group), 3 legacy creates.
	if len(plan.Changes) != 5 || len(plan.Skipped) != 1 {
		t.Fatalf("plan: %d changes, %d skipped: %+v", len(plan.Changes), len(plan.Skipped), plan)
	}
	barRule := o.ConfigRoot + "/com.foo.BarService::.configurators"
	byPath := map[string]Change{}
	for _, ch := range plan.Changes {
		byPath[ch.Path] = ch
	}
	if ch := byPath[barRule]; ch.Op != OpCreate || ch.Version != -1 || len(ch.Parents) != 0 {
		t.Fatalf("bar rule change: %+v", ch)
	}
	if ch := byPath[demoRule]; ch.Op != OpSet || ch.Version != 0 || removeLines(ch.AfterText, "dubboreach: managed") != foreign {
		t.Fatalf("demo rule change: %+v", ch)
	}

	// Dry run: the same plan, nothing written.
	dry := &Executor{ZK: c, DryRun: true}
	rep, err := dry.Apply(context.Background(), plan)
	if err != nil || rep.Count(ResultDryRun) != 5 || rep.Count(ResultSkipped) != 1 {
		t.Fatalf("dry run: %v %v", err, results(rep))
	}
	diff(t, "after dry run", snapshot(t, c, root), orig)

	var seen []Result
	var mu sync.Mutex
	ex := &Executor{ZK: c, OnResult: func(r Result) { mu.Lock(); seen = append(seen, r); mu.Unlock() }}
	rep, err = ex.Apply(context.Background(), plan)
	if err != nil || rep.Count(ResultApplied) != 5 {
		t.Fatalf("apply: %v %v", err, results(rep))
	}
	if len(seen) != 6 {
		t.Fatalf("OnResult saw %d results, want 6", len(seen))
	}
	afterDisable := snapshot(t, c, root)
	diff(t, "after disable", afterDisable, expect(orig, plan.Changes))
	// What Dubbo reads from the merged node: the foreign entries and ours.
	urls := serviceItemURLs(t, []byte(afterDisable[demoRule]))
	if len(urls) != 3 || !strings.Contains(urls[0], "providerAddresses=10.244.1.7:20880") {
		t.Fatalf("Dubbo reads %q", urls)
	}

	// A restart (a new planner with nothing in memory) plans nothing more.
	again, err := PlanDisable(c, true, targets, o)
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("second plan: %v %+v", err, again.Changes)
	}

	// bar's providers become reachable: their entries go, demo's stays.
	plan, err = PlanDisable(c, true, targets[:1], o)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = ex.Apply(context.Background(), plan)
	if err != nil || rep.Count(ResultApplied) != 3 || len(plan.Changes) != 3 {
		t.Fatalf("partial undo: %v %v %+v", err, results(rep), plan.Changes)
	}
	diff(t, "after partial undo", snapshot(t, c, root), expect(afterDisable, plan.Changes))
	if _, ok := snapshot(t, c, root)[barRule]; ok {
		t.Fatal("the rule node dubboreach created was not removed")
	}

	// undo-disable removes everything dubboreach wrote: the tree is the original again, byte for
	// byte, except for the (empty) parent nodes created for the rules.
	plan, err = PlanUndoDisable(c, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Apply(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	final := snapshot(t, c, root)
	if final[demoRule] != foreign {
		t.Fatalf("foreign rule not restored exactly:\n%s", final[demoRule])
	}
	want := map[string]string{}
	for k, v := range orig {
		want[k] = v
	}
	for _, p := range createdParents {
		want[p] = "" // empty parents created for the rules and legacy overrides stay
	}
	diff(t, "after undo-disable", final, want)
}

func netip6() netip.AddrPort { return ap("[fd00::1]:20880") }

func gaugeValue(t *testing.T, m *Metrics) float64 {
	t.Helper()
	return testutil.ToFloat64(m.CapExceeded)
}

func TestDisableConcurrentEditFailsCleanly(t *testing.T) {
	c := conn(t)
	root := "/concurrent"
	o := DisableOptions{ConfigRoot: root + "/dubbo/config/dubbo", RegistryRoot: root + "/dubbo"}
	s := Service{Interface: "org.apache.dubbo.samples.governance.api.DemoService"}
	node := o.ConfigRoot + "/" + s.RuleName()
	put(t, c, node, string(mustRead(t, "dubbo-docs-service-rule.yaml")), 0)
	targets := []Target{{Interface: s.Interface, Address: ap("10.244.1.7:20880")}}
	plan, err := PlanDisable(c, true, targets, o)
	if err != nil || len(plan.Changes) != 1 {
		t.Fatalf("%v %+v", err, plan)
	}
	// Someone edits the rule between the read and the write.
	theirs := strings.Replace(string(mustRead(t, "dubbo-docs-service-rule.yaml")), "6000", "7000", 1)
	if _, err := c.Set(node, []byte(theirs), 0); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c, root)
	rep, err := (&Executor{ZK: c}).Apply(context.Background(), plan)
	if err != nil || rep.Count(ResultConflict) != 1 {
		t.Fatalf("apply: %v %v", err, results(rep))
	}
	diff(t, "after the conflict", snapshot(t, c, root), before)
	// The next cycle merges into their version.
	plan, err = PlanDisable(c, true, targets, o)
	if err != nil || len(plan.Changes) != 1 || removeLines(plan.Changes[0].AfterText, "dubboreach: managed") != theirs {
		t.Fatalf("re-plan: %v %+v", err, plan)
	}
	// A node created by someone else between plan and create is not overwritten either.
	s2 := Service{Interface: "com.foo.New"}
	plan, err = PlanDisable(c, true, []Target{{Interface: s2.Interface, Address: ap("10.244.1.8:20880")}}, o)
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, o.ConfigRoot+"/"+s2.RuleName(), "theirs", 0)
	before = snapshot(t, c, root)
	rep, _ = (&Executor{ZK: c}).Apply(context.Background(), plan)
	if rep.Count(ResultConflict) != 1 {
		t.Fatalf("create over someone's node: %v", results(rep))
	}
	diff(t, "after the create conflict", snapshot(t, c, root), before)
}

func TestIncompleteScanAndCapChangeNothing(t *testing.T) {
	c := conn(t)
	root := "/safety"
	o := DisableOptions{ConfigRoot: root + "/dubbo/config/dubbo", RegistryRoot: root + "/dubbo", Legacy: true}
	put(t, c, root+"/marker", "x", 0)
	before := snapshot(t, c, root)
	targets := []Target{{Interface: "com.foo.A", Address: ap("10.0.0.1:20880")}, {Interface: "com.foo.B", Address: ap("10.0.0.2:20880")}}
	if _, err := PlanDisable(c, false, targets, o); !errors.Is(err, ErrIncompleteScan) {
		t.Fatalf("PlanDisable on an incomplete scan: %v", err)
	}
	if _, err := PlanPrune(c, false, targets, NewStaleness(0), time.Now()); !errors.Is(err, ErrIncompleteScan) {
		t.Fatalf("PlanPrune on an incomplete scan: %v", err)
	}
	plan, err := PlanDisable(c, true, targets, o)
	if err != nil || len(plan.Changes) != 4 {
		t.Fatalf("%v %+v", err, plan)
	}
	incomplete := plan
	incomplete.Complete = false
	if _, err := (&Executor{ZK: c}).Apply(context.Background(), incomplete); !errors.Is(err, ErrIncompleteScan) {
		t.Fatalf("Apply of an incomplete plan: %v", err)
	}
	rep, err := (&Executor{ZK: c, MaxChanges: 3}).Apply(context.Background(), plan)
	if !errors.Is(err, ErrTooManyChanges) || !rep.CapExceeded || len(rep.Results) != 0 {
		t.Fatalf("Apply above the cap: %v %+v", err, rep)
	}
	m := NewMetrics()
	m.Cycle(rep)
	if v := gaugeValue(t, m); v != 1 {
		t.Fatalf("%s = %v, want 1", MetricCapExceeded, v)
	}
	diff(t, "after refused applies", snapshot(t, c, root), before)
}

// TestLegacyNameAsJavaWritesIt registers dubboreach's override URL with Java's URLEncoder (as
// Dubbo's ZookeeperRegistry does) and checks it lands on the path dubboreach computes and is
// recognised as dubboreach's.
func TestLegacyNameAsJavaWritesIt(t *testing.T) {
	dir := t.TempDir()
	cp, err := javareg.Compile(dir)
	if err != nil {
		t.Fatal(err)
	}
	j := javareg.Start(t, cp, zkServer.Addr)
	s := Service{Interface: "com.foo.Bar$Inner_Svc", Version: "2.0.0-SNAPSHOT", Group: "g*1"}
	p := ap("10.244.3.4:20881")
	got, err := j.URL(true, "/java/dubbo", "configurators", s.Interface, LegacyOverride(s, p))
	if err != nil {
		t.Fatal(err)
	}
	if want := LegacyPath("/java/dubbo", s, p); got != want {
		t.Fatalf("Java wrote %s\ndubboreach computes %s", got, want)
	}
	s2, p2, ok := ParseLegacyName(path.Base(got))
	if !ok || s2 != s || p2 != p {
		t.Fatalf("ParseLegacyName(%s) = %+v %v %v", path.Base(got), s2, p2, ok)
	}
	// And undo finds and removes it.
	c := conn(t)
	plan, err := PlanUndoDisable(c, DisableOptions{ConfigRoot: "/java/dubbo/config/dubbo", RegistryRoot: "/java/dubbo"})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Path != got {
		t.Fatalf("undo plan: %v %+v", err, plan)
	}
}
