package lab_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/test/lab"
)

// serve accepts connections on h:port and answers each with the peer address it saw, so a test
// can measure both reachability and the source address (masquerade or not).
func serve(t *testing.T, h *lab.Host, port string) {
	t.Helper()
	ln, err := h.Listen(":" + port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = c.Write([]byte(host + "\n"))
			c.Close()
		}
	}()
}

// seenAs dials addr from h and returns the source address the server saw, or the dial error.
func seenAs(t *testing.T, h *lab.Host, addr string) (string, error) {
	c, err := h.Dial(ctxTimeout(t, 3*time.Second), addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestNetwork measures the topology the field case needs, path by path.
func TestNetwork(t *testing.T) {
	l := shared(t)
	n1, n2, n3 := l.Node("node-1"), l.Node("node-2"), l.Node("node-3")
	p1, err := l.AddPod(n1, "net-p1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := l.AddPod(n2, "net-p2")
	if err != nil {
		t.Fatal(err)
	}
	p3, err := l.AddPod(n3, "net-p3")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*lab.Pod{p1, p2, p3} {
		serve(t, &p.Host, "7000")
		t.Cleanup(func() { l.RemovePod(p) })
	}
	serve(t, l.Registry, "7001")
	serve(t, l.Outside, "7002")

	at := func(p *lab.Pod) string { return net.JoinHostPort(p.IP.String(), "7000") }
	cases := []struct {
		name     string
		from     *lab.Host
		to       string
		wantFrom string // source address the server must see; "" means the call must fail
	}{
		{"outside to pod on routed node-1", l.Outside, at(p1), lab.OutsideIP},
		{"outside to pod on routed node-3", l.Outside, at(p3), lab.OutsideIP},
		{"outside to pod on node-2, whose route the gateway lacks", l.Outside, at(p2), ""},
		{"pod to pod across nodes (host-gw), no masquerade", &p1.Host, at(p2), p1.IP.String()},
		{"pod on node-2 to pod on node-3", &p2.Host, at(p3), p2.IP.String()},
		{"pod to registry, masqueraded to its node", &p2.Host, lab.RegistryIP + ":7001", n2.IP.String()},
		{"pod to outside host, masqueraded to its node", &p1.Host, lab.OutsideIP + ":7002", n1.IP.String()},
		{"node to pod on another node", &n3.Host, at(p2), n3.IP.String()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := seenAs(t, c.from, c.to)
			switch {
			case c.wantFrom == "" && err == nil:
				t.Fatalf("%s reached %s (seen as %s); want no path", c.from.Name, c.to, got)
			case c.wantFrom != "" && err != nil:
				t.Fatalf("%s cannot reach %s: %v", c.from.Name, c.to, err)
			case c.wantFrom != "" && got != c.wantFrom:
				t.Fatalf("%s reached %s seen as %s; want %s", c.from.Name, c.to, got, c.wantFrom)
			}
		})
	}

	t.Run("hostPort DNAT on the unrouted node", func(t *testing.T) {
		if err := p2.HostPort(31000, 7000); err != nil {
			t.Fatal(err)
		}
		got, err := seenAs(t, l.Outside, n2.IP.String()+":31000")
		if err != nil || got != lab.OutsideIP {
			t.Fatalf("outside to node-2 hostPort: seen as %q, %v; want %s", got, err, lab.OutsideIP)
		}
	})
}
