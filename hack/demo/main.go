// Command demo (`make demo`) shows the whole of dubboreach working on one machine, for real, and
// keeps it running until Ctrl-C: a kube-apiserver with etcd and a ZooKeeper on loopback, a small
// cluster with one node whose pod route the fabric lacks, the admission webhook registered with
// the API server mutating the pods it creates, Dubbo registrations written by real Java clients,
// and the auditor with its dashboard. On SIGINT or SIGTERM it stops everything it started and
// removes everything it created. docs/demo.md walks through it.
//
// With --exit-after-ready (for test/demo) it prints one line
//
//	READY {"url":"http://127.0.0.1:PORT/","zookeeper":"127.0.0.1:PORT","kubeconfig":"...","fabric":"...","dir":"..."}
//
// once the auditor serves, then cleans up and exits when stdin closes, on a signal, or after
// --ready-timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/internal/cli"
	"github.com/dubboreach/dubboreach/test/harness"
)

type options struct {
	listen         string
	exitAfterReady bool
	readyTimeout   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the auditor's dashboard, API and metrics (a free port on the same host if busy)")
	flag.BoolVar(&o.exitAfterReady, "exit-after-ready", false, "print a READY line with the URL, then clean up and exit when stdin closes (or on a signal, or after --ready-timeout)")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", 10*time.Minute, "with --exit-after-ready: the longest time to stay up after READY")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./hack/demo [flags]   (make demo)\n\n"+
			"Starts kube-apiserver, etcd and ZooKeeper on loopback, creates a small cluster, runs the\n"+
			"webhook and the auditor, and keeps them running until Ctrl-C. Flags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err) // os.Stderr is the terminal again
		os.Exit(1)
	}
}

// demo holds what run started, for the cleanup.
type demo struct {
	out     io.Writer
	dir     string
	logPath string
	logFile *os.File
	stderr  io.Writer // the terminal's stderr
	step    int
}

const steps = 7

func (d *demo) stepf(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d/%d] %s\n", d.step, steps, fmt.Sprintf(format, args...))
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, "      "+format+"\n", args...) }

func run(ctx context.Context, o options, out io.Writer) (err error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return fmt.Errorf("%w: run the demo from the repository (make demo)", err)
	}
	listen, busy, err := pickListen(o.listen)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "dubboreach-demo-")
	if err != nil {
		return err
	}
	d := &demo{out: out, dir: dir, logPath: filepath.Join(dir, "demo.log"), stderr: os.Stderr}
	defer func() {
		if err != nil {
			d.showLog()
		}
		if d.logFile != nil {
			_ = d.logFile.Close()
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("removing %s: %w", dir, rmErr))
		} else {
			fmt.Fprintf(out, "removed %s\n", dir)
		}
	}()
	if d.logFile, err = os.Create(d.logPath); err != nil {
		return err
	}
	// The components log to the demo's log file; the terminal shows what the demo does. Some
	// take os.Stderr when they start (the auditor's logger), so it points at the log meanwhile.
	log.SetOutput(d.logFile)
	realStderr := os.Stderr
	os.Stderr = d.logFile
	defer func() { os.Stderr = realStderr }()
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(d.logFile, nil)))

	fmt.Fprintf(out, "dubboreach demo: the whole system on this machine, for real. Ctrl-C stops it and removes what it created.\n")
	fmt.Fprintf(out, "working directory %s (logs: %s)\n", dir, d.logPath)
	if busy {
		fmt.Fprintf(out, "%s is busy: the dashboard will listen on %s\n", o.listen, listen)
	}

	// 1. kube-apiserver and etcd, with the webhook configuration shipped in config/webhook.
	d.stepf("Starting etcd and kube-apiserver (envtest, from ./bin) on 127.0.0.1")
	start := time.Now()
	wio := &envtest.WebhookInstallOptions{Paths: []string{filepath.Join(root, "config", "webhook")}, LocalServingHost: "127.0.0.1"}
	env, err := harness.StartEnv(harness.EnvOptions{Webhooks: wio})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := env.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping kube-apiserver and etcd: %w", stopErr))
		} else {
			fmt.Fprintln(out, "stopped kube-apiserver and etcd")
		}
	}()
	wio = &env.Environment.WebhookInstallOptions
	d.printf("kube-apiserver %s (%.1fs)", env.Config.Host, time.Since(start).Seconds())
	kubeconfig, err := writeKubeconfig(env, dir)
	if err != nil {
		return err
	}
	d.printf("kubeconfig     %s", kubeconfig)

	// 2. ZooKeeper.
	d.stepf("Starting ZooKeeper (Debian's package) on 127.0.0.1")
	zkDir := filepath.Join(dir, "zookeeper")
	if err := os.Mkdir(zkDir, 0o755); err != nil {
		return err
	}
	zk, err := harness.StartZooKeeperIn(zkDir)
	if err != nil {
		return err
	}
	defer func() { zk.Stop(); fmt.Fprintln(out, "stopped ZooKeeper") }()
	d.printf("ZooKeeper %s", zk.Addr)

	// 3. The cluster and the fabric.
	d.stepf("Creating the cluster: 3 nodes, the fabric file, a namespace labelled for injection and one not")
	fabric := filepath.Join(dir, "fabric.yaml")
	if err := os.WriteFile(fabric, []byte(fabricYAML()), 0o644); err != nil {
		return err
	}
	c := env.Client
	if err := createNodes(ctx, c); err != nil {
		return err
	}
	if err := createNamespaces(ctx, c); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, n := range nodes {
		state := "pod route installed on the gateway"
		if !n.Installed {
			state = "pod route MISSING on the gateway"
		}
		fmt.Fprintf(tw, "      node %s\tpod CIDR %s\tInternalIP %s\t%s\n", n.Name, n.PodCIDR, n.IP, state)
	}
	_ = tw.Flush()
	d.printf("namespace %s: labelled dubboreach.io/inject=enabled; namespace %s: not labelled", nsInjected, nsPlain)
	d.printf("fabric file %s:", fabric)
	for _, l := range strings.Split(strings.TrimSpace(fabricYAML()), "\n") {
		d.printf("  %s", l)
	}

	// Long-running components run until the demo ends, not until a setup call is interrupted.
	svcCtx, svcStop := context.WithCancel(context.Background())
	var services []*service
	defer func() {
		svcStop()
		for _, s := range services {
			if waitErr := s.wait(time.Minute); waitErr != nil {
				err = errors.Join(err, waitErr)
			}
		}
	}()

	// 4. The webhook, as `dubboreach webhook` runs it.
	d.stepf("Running the webhook (dubboreach webhook), registered with the API server, TLS on %s:%d", wio.LocalServingHost, wio.LocalServingPort)
	probePort, err := harness.FreePort()
	if err != nil {
		return err
	}
	wh := startService(svcCtx, "webhook", d.logFile, "webhook", "--kubeconfig", kubeconfig, "--fabric", fabric,
		"--host", wio.LocalServingHost, "--port", strconv.Itoa(wio.LocalServingPort), "--cert-dir", wio.LocalServingCertDir,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(probePort),
		"--namespace", ownNamespace, "--log-level", "warn")
	services = append(services, wh)
	if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), 2*time.Minute, wh); err != nil {
		return err
	}
	labels, err := waitNodeLabels(ctx, c)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		d.printf("node %s labelled dubboreach.io/pod-route=%s", n.Name, labels[n.Name])
	}

	// 5. Pods, created through the API server and so through the webhook.
	d.stepf("Creating pods through the API server (the webhook mutates them), then setting their status as a kubelet would")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	type registration struct {
		a        app
		pod      string
		address  string
		port     int
		injected bool
	}
	var regs []registration
	for _, a := range apps {
		pod, err := createPod(ctx, c, a)
		if err != nil {
			return err
		}
		addr, port := registeredAddress(pod)
		regs = append(regs, registration{a: a, pod: a.Namespace + "/" + a.Name, address: addr, port: port, injected: len(pod.Spec.Containers[0].Env) > 0})
		fmt.Fprintf(tw, "      %s/%s\t%s\tpodIP %s\thostIP %s\t%s\n", a.Namespace, a.Name, a.Node, pod.Status.PodIP, pod.Status.HostIP, describeEnv(pod))
		fmt.Fprintf(tw, "      \t\t\t\t  why: %s\n", injectionReason(pod))
	}
	_ = tw.Flush()

	// 6. Registrations, written by real Java clients.
	d.stepf("Registering Dubbo providers and consumers in ZooKeeper (Java: URLEncoder names as Dubbo does, Curator ServiceDiscovery)")
	reg, err := startRegistrar(filepath.Join(dir, "registrar"), zk.Addr, d.logFile)
	if err != nil {
		return err
	}
	defer func() {
		reg.close()
		fmt.Fprintln(out, "stopped the Java registrar (its session and ephemeral entries are gone)")
	}()
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "      SIDE\tKIND\tSERVICE\tADDRESS\tFROM")
	pid := 4100
	for _, r := range regs {
		pid++
		hp := net.JoinHostPort(r.address, strconv.Itoa(r.port))
		from := r.pod
		if !r.injected {
			from += " (not injected: its pod IP)"
		}
		for _, iface := range r.a.Provides {
			if _, err := reg.url(false, "providers", iface, providerURL(iface, r.a.Application, r.address, r.port, false, pid)); err != nil {
				return err
			}
			fmt.Fprintf(tw, "      provider\tinterface\t%s\t%s\t%s\n", iface, hp, from)
		}
		if r.a.AppLevel {
			if _, err := reg.instance(r.a.Application, r.address, r.port); err != nil {
				return err
			}
			fmt.Fprintf(tw, "      provider\tapplication\t%s\t%s\t%s\n", r.a.Application, hp, from)
		}
		for _, iface := range r.a.Consumes {
			if _, err := reg.url(false, "consumers", iface, consumerURL(iface, r.a.Application, r.address, pid)); err != nil {
				return err
			}
			fmt.Fprintf(tw, "      consumer\tinterface\t%s\t%s\t%s\n", iface, r.address, from)
		}
	}
	for _, x := range outsiders {
		pid++
		if _, err := reg.url(x.Persistent, "providers", x.Iface, providerURL(x.Iface, x.Application, x.Address, x.Port, x.Persistent, pid)); err != nil {
			return err
		}
		fmt.Fprintf(tw, "      provider\tinterface\t%s\t%s\t%s\n", x.Iface, net.JoinHostPort(x.Address, strconv.Itoa(x.Port)), x.Why)
	}
	_ = tw.Flush()
	providers := countProviders()

	// 7. The auditor, as `dubboreach audit --listen` runs it, and what it found.
	d.stepf("Auditing: dubboreach audit --zk %s --listen %s", zk.Addr, listen)
	aud := startService(svcCtx, "audit", d.logFile, "audit", "--zk", zk.Addr, "--kubeconfig", kubeconfig, "--fabric", fabric,
		"--listen", listen, "--leader-elect=false", "--resync", "1m")
	services = append(services, aud)
	base := "http://" + urlHost(listen) + "/"
	if err := waitHTTP(ctx, base+"readyz", 2*time.Minute, aud); err != nil {
		return err
	}
	if err := waitProviders(ctx, base+"metrics", providers, time.Minute, aud); err != nil {
		return err
	}
	d.printf("the auditor sees all %d provider registrations; here is one scan of them (dubboreach audit --once):", providers)
	fmt.Fprintln(out)
	if code := cli.Run(ctx, []string{"audit", "--once", "--zk", zk.Addr, "--kubeconfig", kubeconfig, "--fabric", fabric}, out, d.logFile); code != cli.ExitOK && code != cli.ExitFindings {
		return fmt.Errorf("dubboreach audit --once exited %d (see the log)", code)
	}

	fmt.Fprintf(out, "\nFor the network team: dubboreach routes --missing\n\n")
	if code := cli.Run(ctx, []string{"routes", "--missing", "--kubeconfig", kubeconfig, "--fabric", fabric}, out, d.logFile); code != cli.ExitOK {
		return fmt.Errorf("dubboreach routes --missing exited %d (see the log)", code)
	}
	fmt.Fprintf(out, "\n$ dubboreach routes --missing -o linux\n")
	if code := cli.Run(ctx, []string{"routes", "--missing", "-o", "linux", "--kubeconfig", kubeconfig, "--fabric", fabric}, out, d.logFile); code != cli.ExitOK {
		return fmt.Errorf("dubboreach routes --missing -o linux exited %d (see the log)", code)
	}

	fmt.Fprintf(out, "\nDashboard:  %s\nAPI:        %sapi/v1/overview   Metrics: %smetrics\n", base, base, base)
	fmt.Fprintf(out, "Try:        go run ./cmd/dubboreach check 10.244.3.21 172.17.0.3 192.168.10.13:20880 --kubeconfig %s --fabric %s\n", kubeconfig, fabric)
	fmt.Fprintf(out, "            go run ./cmd/dubboreach audit --once --zk %s --kubeconfig %s --fabric %s\n", zk.Addr, kubeconfig, fabric)
	fmt.Fprintf(out, "            kubectl --kubeconfig %s get pods -A -o wide   (if kubectl is installed)\n", kubeconfig)

	if o.exitAfterReady {
		ready, _ := json.Marshal(map[string]string{"url": base, "zookeeper": zk.Addr, "kubeconfig": kubeconfig, "fabric": fabric, "dir": dir})
		fmt.Fprintf(out, "READY %s\n", ready)
		stdin := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdin) }()
		select {
		case <-ctx.Done():
		case <-stdin:
		case <-time.After(o.readyTimeout):
			fmt.Fprintf(out, "--ready-timeout %s passed\n", o.readyTimeout)
		case <-wh.done:
			return wh.err()
		case <-aud.done:
			return aud.err()
		}
	} else {
		fmt.Fprintf(out, "\nRunning. Press Ctrl-C to stop everything and remove %s.\n", dir)
		select {
		case <-ctx.Done():
		case <-wh.done:
			return wh.err()
		case <-aud.done:
			return aud.err()
		}
	}
	fmt.Fprintln(out, "\nstopping...")
	return nil
}

// countProviders is the number of provider registrations the demo writes.
func countProviders() int {
	n := len(outsiders)
	for _, a := range apps {
		n += len(a.Provides)
		if a.AppLevel {
			n++
		}
	}
	return n
}

// service is a dubboreach command running in this process (the same code as the binary's).
type service struct {
	name string
	done chan struct{}
	code int
}

func startService(ctx context.Context, name string, logw io.Writer, args ...string) *service {
	s := &service{name: name, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.code = cli.Run(ctx, args, logw, logw)
	}()
	return s
}

func (s *service) err() error {
	select {
	case <-s.done:
		if s.code != cli.ExitOK {
			return fmt.Errorf("dubboreach %s exited %d (see the log)", s.name, s.code)
		}
		return fmt.Errorf("dubboreach %s stopped", s.name)
	default:
		return nil
	}
}

// wait waits for a stopped service to return.
func (s *service) wait(timeout time.Duration) error {
	select {
	case <-s.done:
		if s.code != cli.ExitOK {
			return fmt.Errorf("dubboreach %s exited %d while stopping (see the log)", s.name, s.code)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("dubboreach %s did not stop within %s", s.name, timeout)
	}
}

// poll calls try every 200ms until it says done, the timeout passes (an error with try's last
// word), ctx ends, or the service s (if any) exits.
func poll(ctx context.Context, timeout time.Duration, s *service, try func() (done bool, last string)) error {
	deadline := time.Now().Add(timeout)
	var exited <-chan struct{} // nil: wait on ctx and the clock only
	if s != nil {
		exited = s.done
	}
	for {
		done, last := try()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return s.err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitHTTP waits until url answers 200, failing early if the service behind it exits.
func waitHTTP(ctx context.Context, url string, timeout time.Duration, s *service) error {
	return poll(ctx, timeout, s, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, fmt.Sprintf("%s did not answer 200 within %s (last: %s)", url, timeout, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK,
			fmt.Sprintf("%s did not answer 200 within %s (last: %s: %s)", url, timeout, resp.Status, strings.TrimSpace(string(body)))
	})
}

// waitProviders waits until the auditor's metrics count want provider registrations.
func waitProviders(ctx context.Context, url string, want int, timeout time.Duration, s *service) error {
	got := -1
	return poll(ctx, timeout, s, func() (bool, string) {
		if n, err := metricSum(url, "dubboreach_registry_providers"); err == nil {
			got = int(n)
		}
		return got == want, fmt.Sprintf("the auditor counts %d provider registrations after %s, want %d", got, timeout, want)
	})
}

// metricSum adds up the samples of one metric in a Prometheus text exposition.
func metricSum(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// pickListen returns addr if it is free, else a free port on the same host.
func pickListen(addr string) (string, bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, fmt.Errorf("--listen %q: %w (want HOST:PORT, e.g. 127.0.0.1:8080)", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		free := ln.Addr().String() // port 0 resolved
		_ = ln.Close()
		return free, false, nil
	}
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return "", false, fmt.Errorf("--listen %s: %w; and no free port on %s: %w", addr, err, host, err2)
	}
	free := ln.Addr().String()
	_ = ln.Close()
	return free, true, nil
}

// urlHost is the host:port to put in a URL for a listen address (loopback for "all interfaces").
func urlHost(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// writeKubeconfig writes a kubeconfig of an admin user of the API server, for the commands the
// demo runs and for the user's kubectl.
func writeKubeconfig(env *harness.Env, dir string) (string, error) {
	user, err := env.Environment.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("adding the demo's API user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// showLog prints the end of the demo's log after a failure, before it is removed.
func (d *demo) showLog() {
	data, err := os.ReadFile(d.logPath)
	if err != nil || len(data) == 0 {
		return
	}
	if len(data) > 8192 {
		data = data[len(data)-8192:]
	}
	fmt.Fprintf(d.stderr, "demo: the end of %s:\n%s\n", d.logPath, data)
}
