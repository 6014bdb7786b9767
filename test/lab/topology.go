package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Addresses of the lab's data-center network. Fixed, since the namespaces are private to the lab.
const (
	DCNet       = "10.132.2.0/24"
	GatewayIP   = "10.132.2.254"
	RegistryIP  = "10.132.2.10"
	OutsideIP   = "10.132.2.100"
	ClusterNet  = "10.131.0.0/16" // every pod subnet lies inside: the masquerade exemption
	ZooKeeperAt = RegistryIP + ":2181"
	nsPrefix    = "drl-"
	lockPath    = "/run/dubboreach-lab.lock"
	etcNetns    = "/etc/netns"
)

// NodeSpec describes one node: its data-center address and pod subnet, and whether the gateway
// starts with a route to that subnet.
type NodeSpec struct {
	Name    string
	IP      string
	PodCIDR string
	Routed  bool
}

// DefaultNodes is the field case: three nodes; the gateway lacks the route to node-2's pods.
var DefaultNodes = []NodeSpec{
	{Name: "node-1", IP: "10.132.2.11", PodCIDR: "10.131.10.0/24", Routed: true},
	{Name: "node-2", IP: "10.132.2.12", PodCIDR: "10.131.73.0/24", Routed: false},
	{Name: "node-3", IP: "10.132.2.13", PodCIDR: "10.131.88.0/24", Routed: true},
}

// Options configure Start. The zero value builds DefaultNodes and starts ZooKeeper.
type Options struct {
	Nodes []NodeSpec
	// NoZooKeeper leaves the registry host without ZooKeeper (network-only tests).
	NoZooKeeper bool
	// Dir holds logs and data; default a new directory under os.TempDir(), removed by Close
	// unless KeepDir is set.
	Dir     string
	KeepDir bool
}

// Node is a lab node: a host on the data-center network with a pod bridge (cni0).
type Node struct {
	Host
	PodCIDR netip.Prefix
	mu      sync.Mutex
	pods    int
}

// Pod is a namespace on a veth pair to its node's bridge.
type Pod struct {
	Host
	Node *Node
	// dnat holds the iptables rule specs HostPort added on the node, for RemovePod.
	dnat [][]string
}

// Lab is a running topology. Close removes all of it.
type Lab struct {
	RunID    string
	Dir      string
	DC       Host // the data-center switch (bridge br0); no address
	Outside  *Host
	Registry *Host
	Gateway  *Host
	Nodes    []*Node
	// ZooKeeper runs on the registry host at ZooKeeperAt (nil with Options.NoZooKeeper).
	ZooKeeper *ZooKeeper

	lock     *os.File
	ownDir   bool
	mu       sync.Mutex
	names    []string // namespaces created, in order
	closers  []func()
	podNames map[string]*Pod
}

// Start builds the lab: it takes the machine-wide lab lock (waiting for another lab to end),
// removes leftovers of killed runs, and builds the topology. On error nothing is left behind.
func Start(opts Options) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: network namespaces need root: run the lab tests as root (CI does)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := lookPath(tool); err != nil {
			return nil, fmt.Errorf("lab: %s is not installed: run `make tools` (apt-get install iproute2 iptables)", tool)
		}
	}
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: lock %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lab: lock %s: %w", lockPath, err)
	}
	if err := Cleanup(); err != nil {
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		lock.Close()
		return nil, err
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	l = &Lab{RunID: hex.EncodeToString(id), lock: lock, podNames: map[string]*Pod{}}
	running.Store(l.RunID)
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	l.Dir = opts.Dir
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "dubboreach-lab-"+l.RunID+"-"); err != nil {
			return l, err
		}
		l.ownDir = !opts.KeepDir
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = DefaultNodes
	}
	if err := l.build(opts.Nodes); err != nil {
		return l, err
	}
	if !opts.NoZooKeeper {
		if l.ZooKeeper, err = startZooKeeper(l.Registry, filepath.Join(l.Dir, "zookeeper")); err != nil {
			return l, err
		}
		l.closers = append(l.closers, l.ZooKeeper.Stop)
	}
	return l, nil
}

func (l *Lab) newNS(name string) (*Host, error) {
	h := &Host{Name: name, NS: nsPrefix + l.RunID + "-" + name}
	if err := run("ip", "netns", "add", h.NS); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.names = append(l.names, h.NS)
	l.mu.Unlock()
	// Every namespace is a router or an end host of its own: loopback up.
	if _, err := h.Exec("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return h, writeEtc(h)
}

// writeEtc gives the namespace its own /etc/hosts and /etc/resolv.conf (`ip netns exec`
// bind-mounts /etc/netns/<ns>/*): the machine's name resolves to the host's lab address, as
// kubelet's /etc/hosts maps a pod's name to its pod IP (Dubbo asks InetAddress.getLocalHost()
// first), and there is no DNS server to wait for, since the machine's own is out of reach.
func writeEtc(h *Host) error {
	dir := filepath.Join(etcNetns, h.NS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	hosts := "127.0.0.1 localhost\n"
	if h.IP != nil {
		name, _ := os.Hostname()
		hosts += h.IP.String() + " " + name + " " + h.Name + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("# dubboreach lab: no DNS\noptions timeout:1 attempts:1\n"), 0o644)
}

// execAll runs each command in h and stops at the first error.
func execAll(h *Host, cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := h.Exec(c...); err != nil {
			return err
		}
	}
	return nil
}

// attachDC plugs h into the data-center switch with address ip.
func (l *Lab) attachDC(h *Host, ip string) error {
	port := "p-" + h.Name
	if len(port) > 15 {
		return fmt.Errorf("lab: host name %q is too long for an interface name", h.Name)
	}
	h.IP = net.ParseIP(ip)
	if err := execAll(&l.DC,
		[]string{"ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		[]string{"ip", "link", "set", port, "master", "br0", "up"},
	); err != nil {
		return err
	}
	if err := execAll(h,
		[]string{"ip", "addr", "add", ip + "/24", "dev", "eth0"},
		[]string{"ip", "link", "set", "eth0", "up"},
	); err != nil {
		return err
	}
	return writeEtc(h)
}

func (l *Lab) build(nodes []NodeSpec) error {
	dc, err := l.newNS("dc")
	if err != nil {
		return err
	}
	l.DC = *dc
	if err := execAll(dc,
		[]string{"ip", "link", "add", "br0", "type", "bridge"},
		[]string{"ip", "link", "set", "br0", "up"},
	); err != nil {
		return err
	}
	for _, spec := range []struct {
		dst      **Host
		name, ip string
	}{{&l.Gateway, "gateway", GatewayIP}, {&l.Registry, "registry", RegistryIP}, {&l.Outside, "outside", OutsideIP}} {
		h, err := l.newNS(spec.name)
		if err != nil {
			return err
		}
		if err := l.attachDC(h, spec.ip); err != nil {
			return err
		}
		*spec.dst = h
	}
	// The gateway routes; it must not tell outside hosts to bypass it (ICMP redirects), or the
	// route it lacks would not matter after the first packet.
	if err := execAll(l.Gateway,
		[]string{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		[]string{"sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"},
		[]string{"sysctl", "-qw", "net.ipv4.conf.eth0.send_redirects=0"},
	); err != nil {
		return err
	}
	for _, h := range []*Host{l.Registry, l.Outside} {
		if _, err := h.Exec("ip", "route", "add", "default", "via", GatewayIP); err != nil {
			return err
		}
	}
	for _, spec := range nodes {
		cidr, err := netip.ParsePrefix(spec.PodCIDR)
		if err != nil {
			return fmt.Errorf("lab: node %s: pod CIDR %q: %w", spec.Name, spec.PodCIDR, err)
		}
		h, err := l.newNS(spec.Name)
		if err != nil {
			return err
		}
		if err := l.attachDC(h, spec.IP); err != nil {
			return err
		}
		n := &Node{Host: *h, PodCIDR: cidr.Masked()}
		bridgeIP := n.PodCIDR.Addr().Next().String()
		if err := execAll(h,
			[]string{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
			[]string{"ip", "link", "add", "cni0", "type", "bridge"},
			[]string{"ip", "addr", "add", bridgeIP + "/" + strconv.Itoa(n.PodCIDR.Bits()), "dev", "cni0"},
			[]string{"ip", "link", "set", "cni0", "up"},
			[]string{"ip", "route", "add", "default", "via", GatewayIP},
			// flannel's masquerade: pod traffic leaving the cluster carries the node's address,
			// traffic towards pods keeps the pod's.
			[]string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", n.PodCIDR.String(), "!", "-d", ClusterNet, "-j", "MASQUERADE"},
		); err != nil {
			return err
		}
		l.Nodes = append(l.Nodes, n)
	}
	// flannel host-gw: every node routes every other node's pod subnet to that node.
	for i, n := range l.Nodes {
		for j, m := range l.Nodes {
			if i == j {
				continue
			}
			if _, err := n.Exec("ip", "route", "add", m.PodCIDR.String(), "via", m.IP.String()); err != nil {
				return err
			}
		}
	}
	for i, spec := range nodes {
		if spec.Routed {
			if err := l.AddGatewayRoute(l.Nodes[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Node returns the node called name, or nil.
func (l *Lab) Node(name string) *Node {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// AddGatewayRoute installs on the gateway the static route to n's pod subnet (what the network
// team does by hand).
func (l *Lab) AddGatewayRoute(n *Node) error {
	_, err := l.Gateway.Exec("ip", "route", "replace", n.PodCIDR.String(), "via", n.IP.String())
	return err
}

// DeleteGatewayRoute removes the gateway's route to n's pod subnet, if it has one.
func (l *Lab) DeleteGatewayRoute(n *Node) {
	_, _ = l.Gateway.Exec("ip", "route", "del", n.PodCIDR.String())
}

// GatewayRoutes lists the gateway's routing table (`ip route show`).
func (l *Lab) GatewayRoutes() (string, error) { return l.Gateway.Exec("ip", "route", "show") }

// AddPod creates a pod on node n: a namespace named name with the next free address of the
// node's pod subnet on a veth pair to the node's bridge, default route via the bridge.
func (l *Lab) AddPod(n *Node, name string) (*Pod, error) {
	l.mu.Lock()
	if _, dup := l.podNames[name]; dup {
		l.mu.Unlock()
		return nil, fmt.Errorf("lab: pod %s exists already", name)
	}
	l.podNames[name] = nil
	l.mu.Unlock()
	n.mu.Lock()
	n.pods++
	idx := n.pods
	n.mu.Unlock()
	ip := n.PodCIDR.Addr()
	for range 10 + idx {
		ip = ip.Next()
	}
	if !n.PodCIDR.Contains(ip) {
		return nil, fmt.Errorf("lab: node %s has no free pod address for %s", n.Name, name)
	}
	h, err := l.newNS(name)
	if err != nil {
		return nil, err
	}
	h.IP = net.IP(ip.AsSlice())
	if err := writeEtc(h); err != nil {
		return nil, err
	}
	veth := "veth" + strconv.Itoa(idx)
	gw := n.PodCIDR.Addr().Next().String()
	if err := execAll(&n.Host,
		[]string{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		[]string{"ip", "link", "set", veth, "master", "cni0", "up"},
	); err != nil {
		return nil, err
	}
	if err := execAll(h,
		[]string{"ip", "addr", "add", ip.String() + "/" + strconv.Itoa(n.PodCIDR.Bits()), "dev", "eth0"},
		[]string{"ip", "link", "set", "eth0", "up"},
		[]string{"ip", "route", "add", "default", "via", gw},
	); err != nil {
		return nil, err
	}
	p := &Pod{Host: *h, Node: n}
	l.mu.Lock()
	l.podNames[name] = p
	l.mu.Unlock()
	return p, nil
}

// HostPort publishes the pod's containerPort on its node's address as hostPort, as the
// portmap CNI plugin does for a container's hostPort: DNAT on the node.
func (p *Pod) HostPort(hostPort, containerPort int) error {
	rule := []string{"PREROUTING", "-p", "tcp", "-d", p.Node.IP.String(),
		"--dport", strconv.Itoa(hostPort), "-j", "DNAT", "--to-destination", p.IP.String() + ":" + strconv.Itoa(containerPort)}
	if _, err := p.Node.Exec(append([]string{"iptables", "-t", "nat", "-A"}, rule...)...); err != nil {
		return err
	}
	p.dnat = append(p.dnat, rule)
	return nil
}

// RemovePod deletes a pod as kubelet would: its processes, namespace and hostPort rules go, and
// its name can be used again.
func (l *Lab) RemovePod(p *Pod) {
	for _, rule := range p.dnat {
		_, _ = p.Node.Exec(append([]string{"iptables", "-t", "nat", "-D"}, rule...)...)
	}
	p.dnat = nil
	removeNS(p.NS)
	l.mu.Lock()
	delete(l.podNames, p.Name)
	l.names = slices.DeleteFunc(l.names, func(n string) bool { return n == p.NS })
	l.mu.Unlock()
}

// Forward listens on 127.0.0.1 in the test process's namespace and relays every connection to
// addr as dialled from h: how in-process code (the auditor's ZooKeeper client) reaches the lab
// without an interface in the host's namespace. It returns the local address; Close stops it.
func (l *Lab) Forward(h *Host, addr string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	var wg sync.WaitGroup
	conns := map[net.Conn]struct{}{}
	var mu sync.Mutex
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer in.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				out, err := h.Dial(ctx, addr)
				cancel()
				if err != nil {
					return
				}
				defer out.Close()
				track(in, true)
				track(out, true)
				defer track(in, false)
				defer track(out, false)
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	l.mu.Lock()
	l.closers = append(l.closers, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	l.mu.Unlock()
	return ln.Addr().String(), nil
}

// OnClose registers fn to run when the lab closes, before its namespaces go (processes first).
func (l *Lab) OnClose(fn func()) {
	l.mu.Lock()
	l.closers = append(l.closers, fn)
	l.mu.Unlock()
}

// Close stops the lab's processes, removes its namespaces and releases the lock. Safe to call
// more than once.
func (l *Lab) Close() {
	l.mu.Lock()
	closers, names := l.closers, l.names
	l.closers, l.names = nil, nil
	l.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	for i := len(names) - 1; i >= 0; i-- {
		removeNS(names[i])
	}
	if l.ownDir {
		_ = os.RemoveAll(l.Dir)
		l.ownDir = false
	}
	running.Store("")
	if l.lock != nil {
		_ = syscall.Flock(int(l.lock.Fd()), syscall.LOCK_UN)
		l.lock.Close()
		l.lock = nil
	}
}

// removeNS kills what still runs in a namespace and deletes it (its veths go with it).
func removeNS(name string) {
	if out, err := output("ip", "netns", "pids", name); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_ = run("ip", "netns", "delete", name)
	_ = os.RemoveAll(filepath.Join(etcNetns, name))
}

// running is the run id of the lab this process runs, whose namespaces Cleanup keeps.
var running atomic.Value

// Cleanup removes every lab namespace on the machine (drl-*) but those of the lab this process
// runs, with the processes inside: the leftovers of runs killed before their Close (the lab lock
// means no other lab is running). Start calls it under the lock; `go run ./test/lab down` too.
func Cleanup() error {
	keep, _ := running.Load().(string)
	out, err := output("ip", "netns", "list")
	if err != nil {
		return err
	}
	var left []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], nsPrefix) && (keep == "" || !strings.HasPrefix(f[0], nsPrefix+keep+"-")) {
			removeNS(f[0])
			if _, err := os.Stat(netnsDir + "/" + f[0]); err == nil {
				left = append(left, f[0])
			}
		}
	}
	// /etc/netns entries whose namespace is already gone.
	if dirs, err := filepath.Glob(filepath.Join(etcNetns, nsPrefix+"*")); err == nil {
		for _, d := range dirs {
			name := filepath.Base(d)
			if _, err := os.Stat(netnsDir + "/" + name); os.IsNotExist(err) && (keep == "" || !strings.HasPrefix(name, nsPrefix+keep+"-")) {
				_ = os.RemoveAll(d)
			}
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("lab: could not remove namespaces of earlier runs: %s (try `ip netns delete NAME`)", strings.Join(left, " "))
	}
	return nil
}

// Describe lists the hosts with their addresses and the command that enters each.
func (l *Lab) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s (logs and data in %s)\n", l.RunID, l.Dir)
	line := func(h *Host, what string) {
		fmt.Fprintf(&b, "  %-10s %-15s %-22s ip netns exec %s bash\n", h.Name, h.IP, what, h.NS)
	}
	line(l.Outside, "consumers' VM")
	line(l.Registry, "ZooKeeper :2181")
	line(l.Gateway, "router")
	routes, _ := l.GatewayRoutes()
	for _, n := range l.Nodes {
		what := "pods " + n.PodCIDR.String()
		if !strings.Contains(routes, n.PodCIDR.String()) {
			what += " (no gateway route)"
		}
		line(&n.Host, what)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.podNames {
		if p != nil {
			line(&p.Host, "pod on "+p.Node.Name)
		}
	}
	return b.String()
}

// Down removes a lab left behind by a killed run. It refuses while a lab is running (the lock
// is held): stop that one with Ctrl-C instead.
func Down() error {
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("lab: lock %s: %w", lockPath, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("lab: a lab is running (lock %s is held): stop it (Ctrl-C on `lab up`, or let its test end)", lockPath)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	return Cleanup()
}
