package lab_test

import (
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dubboreach/dubboreach/test/lab"
)

var update = flag.Bool("update", false, "rewrite the golden znode captures in testdata/")

// Znode is one captured node: what real Dubbo wrote, byte for byte.
type Znode struct {
	Path string `json:"path"`
	// Kind is persistent, container or ephemeral (from the node's ephemeralOwner).
	Kind string `json:"kind"`
	Data string `json:"data"`
}

// ZooKeeper's ephemeralOwner marker for container nodes (ZooKeeper 3.6+: CreateMode.CONTAINER).
const containerOwner = int64(-0x8000000000000000)

func kindOf(st *gozk.Stat) string {
	switch st.EphemeralOwner {
	case 0:
		return "persistent"
	case containerOwner:
		return "container"
	default:
		return "ephemeral"
	}
}

// dump reads every znode whose unescaped path mentions one of keep, with their ancestors.
func dump(t *testing.T, c *gozk.Conn, keep ...string) []Znode {
	t.Helper()
	var out []Znode
	var walk func(p string) bool
	walk = func(p string) bool {
		data, st, err := c.Get(p)
		if err != nil {
			t.Fatalf("get %s: %v", p, err)
		}
		children, _, err := c.Children(p)
		if err != nil {
			t.Fatalf("children %s: %v", p, err)
		}
		sort.Strings(children)
		self := Znode{Path: p, Kind: kindOf(st), Data: string(data)}
		at := len(out)
		out = append(out, self)
		kept := false
		if un, err := url.PathUnescape(p); err == nil {
			for _, k := range keep {
				kept = kept || strings.Contains(un, k)
			}
		}
		for _, ch := range children {
			next := p + "/" + ch
			if p == "/" {
				next = "/" + ch
			}
			if next == "/zookeeper" {
				continue
			}
			if walk(next) {
				kept = true
			}
		}
		if !kept {
			out = out[:at]
		}
		return kept
	}
	walk("/")
	return out
}

// TestCaptureZnodes records what real Dubbo writes in ZooKeeper, per version: a provider in a
// pod (default register mode) and a consumer on the outside host, captured while both run.
// `go test ./test/lab -run TestCaptureZnodes -update` (as root) rewrites testdata/znodes-*.json;
// without -update it checks the facts dubboreach relies on.
func TestCaptureZnodes(t *testing.T) {
	l := shared(t)
	conn, _, err := gozk.Connect([]string{lab.ZooKeeperAt}, 10*time.Second, gozk.WithDialer(l.Outside.DialTimeout), gozk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	for _, c := range []struct{ version, name string }{{lab.Dubbo336, "cap33"}, {lab.Dubbo2723, "cap27"}} {
		t.Run(c.version, func(t *testing.T) {
			pod, err := l.AddPod(l.Node("node-1"), c.name)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.RemovePod(pod) })
			p, err := l.StartProvider(&pod.Host, lab.ProviderSpec{Name: c.name, Version: c.version})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Kill)
			cons, err := l.Consume(l.Outside, lab.ConsumerSpec{Version: c.version, Hold: true}, c.name)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cons.Release() }()
			if !cons.Calls[c.name].OK {
				t.Fatalf("consumer could not call %s: %s", c.name, cons.Calls[c.name].Error)
			}
			nodes := dump(t, conn, c.name)
			golden := filepath.Join("testdata", "znodes-"+c.version+".json")
			if *update {
				b, _ := json.MarshalIndent(nodes, "", "  ")
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			kinds := map[string]string{}
			data := map[string]string{}
			for _, n := range nodes {
				t.Logf("%-10s %s  %.160s", n.Kind, n.Path, n.Data)
				un, _ := url.PathUnescape(n.Path)
				kinds[un], data[un] = n.Kind, n.Data
			}
			// The facts the auditor and the corrections rely on, as this Dubbo wrote them.
			svc := "/dubbo/" + lab.ServiceName(c.name)
			want := map[string]string{"/dubbo": "persistent", svc: "persistent", svc + "/providers": "persistent",
				svc + "/consumers": "persistent", svc + "/configurators": "persistent", svc + "/routers": "persistent"}
			if c.version != lab.Dubbo2723 {
				want["/services/"+lab.AppName(c.name)] = "persistent"
				want["/services/"+lab.AppName(c.name)+"/"+pod.IP.String()+":20880"] = "ephemeral"
				want["/dubbo/mapping/"+lab.ServiceName(c.name)] = "persistent"
				if got := data["/dubbo/mapping/"+lab.ServiceName(c.name)]; got != lab.AppName(c.name) {
					t.Errorf("mapping of %s holds %q; want the application %q", lab.ServiceName(c.name), got, lab.AppName(c.name))
				}
			}
			for path, kind := range want {
				if kinds[path] != kind {
					t.Errorf("%s: kind %q; want %q", path, kinds[path], kind)
				}
			}
			var providers, consumers int
			for path, kind := range kinds {
				if strings.HasPrefix(path, svc+"/providers/dubbo://"+pod.IP.String()+":20880/") && kind == "ephemeral" {
					providers++
				}
				if strings.HasPrefix(path, svc+"/consumers/consumer://"+lab.OutsideIP+"/") && kind == "ephemeral" {
					consumers++
				}
			}
			if providers != 1 || consumers != 1 {
				t.Errorf("want one ephemeral provider URL with the pod IP and one consumer URL from the outside host; got %d and %d", providers, consumers)
			}
		})
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
