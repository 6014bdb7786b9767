package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` puts the namespace handles.
const netnsDir = "/var/run/netns"

// inNetns runs fn on an OS thread switched into the named namespace. Sockets fn opens stay in
// that namespace after the thread switches back; fn must not start goroutines that expect to
// run inside it.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: opening this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(netnsDir + "/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: entering namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		// A thread that cannot switch back stays locked, so Go retires it with this goroutine.
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// run runs a command in the host namespace (ip, iptables) and returns its error with output.
func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: %s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Host is one namespace of the lab: a machine with one address on its main network.
type Host struct {
	// Name is the lab-wide name (outside, registry, gateway, node-1, a pod's name).
	Name string
	// NS is the network namespace (drl-<run id>-<name>): `ip netns exec NS sh` enters it.
	NS string
	// IP is the host's address: on the data-center network, or the pod IP for a pod.
	IP net.IP
}

// Exec runs argv inside the host's namespace and returns its combined output.
func (h *Host) Exec(argv ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.NS}, argv...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: in %s: %s: %w: %s", h.Name, strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Command prepares argv to run inside the host's namespace (ip netns exec execs it, so the
// process is argv itself, killed if the test process dies).
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS}, argv...)...)
	cmd.SysProcAttr = procAttr()
	return cmd
}

// Dial opens a TCP connection from inside the host's namespace.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(h.NS, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// Reach reports whether a TCP connection from this host to addr is accepted within timeout:
// the measured fact, with the dial error when it is not.
func (h *Host) Reach(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.Dial(ctx, addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// Listen opens a TCP listener inside the host's namespace (addr like ":8080").
func (h *Host) Listen(addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(h.NS, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// DialTimeout dials from inside the host's namespace with the signature of go-zookeeper's
// Dialer, so that an in-process ZooKeeper client (the auditor's) connects from this host.
func (h *Host) DialTimeout(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(h.NS, func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}
