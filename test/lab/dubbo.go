package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Dubbo versions the lab runs: each is a module of test/lab/java.
const (
	Dubbo336  = "3.3.6"
	Dubbo2723 = "2.7.23"
)

// modules maps a Dubbo version to its Maven module under test/lab/java.
var modules = map[string]string{Dubbo336: "dubbo33", Dubbo2723: "dubbo27"}

// Discovery modes a consumer (Dubbo 3) can be forced to.
const (
	DiscoverInterface   = "interface"
	DiscoverApplication = "application"
)

// DefaultDubboPort is the Dubbo protocol's default port.
const DefaultDubboPort = 20880

// ServiceName is the interface a provider called name exports (a generic service).
func ServiceName(name string) string { return "lab.identity." + name }

// AppName is the Dubbo application of a provider called name.
func AppName(name string) string { return "lab-" + name }

// ProviderSpec is one real Dubbo provider.
type ProviderSpec struct {
	// Name makes the service lab.identity.<Name> of application lab-<Name>; it answers who()
	// with "<Name>@<registered address> dubbo <version>".
	Name    string
	Version string // Dubbo336 or Dubbo2723
	// Port the provider binds; DefaultDubboPort if 0.
	Port int
	// Env is the container's environment with downward-API fields resolved (ResolveEnv).
	Env map[string]string
	// RegisterMode (Dubbo 3): interface, instance or all; empty keeps Dubbo's default (all).
	RegisterMode string
}

// Provider is a running provider JVM.
type Provider struct {
	Spec ProviderSpec
	Host *Host
	// Identity is what who() answers, as the provider printed it when ready.
	Identity string
	// Started is how long the JVM took from exec to exported and registered.
	Started time.Duration
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// javaDir is test/lab/java, found from this file so that tests and `go run` agree.
func javaDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "java")
}

var buildOnce struct {
	sync.Once
	err error
}

// BuildJava builds the Dubbo mains with Maven offline (`make tools` fetched the artifacts) when
// the classes are older than the sources or missing. Safe to call often: it builds once.
func BuildJava() error {
	buildOnce.Do(func() { buildOnce.err = buildJava(javaDir()) })
	return buildOnce.err
}

func buildJava(dir string) error {
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("lab: %s is not installed: run `make tools` (apt-get install openjdk-17-jdk-headless maven)", tool)
		}
	}
	newest := time.Time{}
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || (d.IsDir() && d.Name() == "target") {
			return filepath.SkipDir
		}
		if info, err := d.Info(); err == nil && !d.IsDir() && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		return nil
	})
	fresh := true
	for _, m := range modules {
		info, err := os.Stat(filepath.Join(dir, m, "target", "lib", ".built"))
		if err != nil || info.ModTime().Before(newest) {
			fresh = false
		}
	}
	if fresh {
		return nil
	}
	cmd := exec.Command("mvn", "-B", "-q", "-o", "-f", filepath.Join(dir, "pom.xml"), "-DskipTests", "clean", "package")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: building the Dubbo mains (%s) failed: %w\n%s\nrun `make tools` to fetch the Maven artifacts (Maven Central), then retry", strings.Join(cmd.Args, " "), err, tailString(string(out), 3000))
	}
	for _, m := range modules {
		if err := os.WriteFile(filepath.Join(dir, m, "target", "lib", ".built"), nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// javaArgs is the JVM command line for the lab's main of a Dubbo version.
func javaArgs(version string, props ...string) ([]string, error) {
	m, ok := modules[version]
	if !ok {
		return nil, fmt.Errorf("lab: Dubbo version %q is not built by test/lab/java (have %s, %s)", version, Dubbo336, Dubbo2723)
	}
	if err := BuildJava(); err != nil {
		return nil, err
	}
	dir := javaDir()
	argv := append([]string{"java"}, JVMFlags...)
	argv = append(argv,
		"-Ddubbo.application.qos-enable=false",
		"-Ddubbo.registry.address=zookeeper://"+ZooKeeperAt,
		"-Dlogback.configurationFile="+filepath.Join(dir, "log", "logback.xml"),
		"-Dlog4j.configuration=file:"+filepath.Join(dir, "log", "log4j.properties"),
	)
	if version == Dubbo2723 {
		// Dubbo 2.7 predates the module system: its javassist proxies need java.lang open on
		// Java 17, as every 2.7 deployment on a current JDK configures.
		argv = append(argv, "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.util=ALL-UNNAMED",
			"--add-opens", "java.base/java.math=ALL-UNNAMED")
	}
	argv = append(argv, props...)
	return append(argv, "-cp", filepath.Join(dir, m, "target", "classes")+":"+filepath.Join(dir, m, "target", "lib", "*"), "lab.Main"), nil
}

// processEnv is a pod's environment: what the container sets, and nothing from the test process
// (a stray DUBBO_IP_TO_REGISTRY there would decide the registration).
func processEnv(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=/root"}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// StartProvider starts a provider on h (usually a pod) and waits until it has exported and
// registered its service. Safe to call concurrently; the provider stops with the lab.
func (l *Lab) StartProvider(h *Host, spec ProviderSpec) (*Provider, error) {
	if spec.Port == 0 {
		spec.Port = DefaultDubboPort
	}
	if spec.Name == "" || strings.ContainsAny(spec.Name, " /") {
		return nil, fmt.Errorf("lab: provider name %q: want a non-empty word", spec.Name)
	}
	var props []string
	if spec.RegisterMode != "" {
		props = append(props, "-Ddubbo.application.register-mode="+spec.RegisterMode)
	}
	argv, err := javaArgs(spec.Version, props...)
	if err != nil {
		return nil, err
	}
	argv = append(argv, "provider", spec.Name, strconv.Itoa(spec.Port))
	p := &Provider{Spec: spec, Host: h, LogPath: filepath.Join(l.Dir, "provider-"+spec.Name+".log")}
	return p, p.start(argv)
}

func (p *Provider) start(argv []string) error {
	log, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := p.Host.Command(context.Background(), argv...)
	cmd.Env = processEnv(p.Spec.Env)
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("lab: starting provider %s: %w", p.Spec.Name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if id, ok := strings.CutPrefix(line, "READY "); ok {
				select {
				case ready <- id:
				default:
				}
			}
		}
		_ = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	select {
	case id := <-ready:
		p.Identity, p.Started = id, time.Since(t0)
		return nil
	case <-p.done:
		return fmt.Errorf("lab: provider %s exited before it was ready; log %s:\n%s", p.Spec.Name, p.LogPath, tailFile(p.LogPath))
	case <-time.After(3 * time.Minute):
		p.Kill()
		return fmt.Errorf("lab: provider %s not ready within 3 minutes; log %s:\n%s", p.Spec.Name, p.LogPath, tailFile(p.LogPath))
	}
}

// Kill ends the JVM at once (SIGKILL), as a crash would: its ZooKeeper session lingers until
// it expires. Safe to call more than once.
func (p *Provider) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// PeakRSS is the JVM's peak resident set (VmHWM) in KiB, 0 once it has exited.
func (p *Provider) PeakRSS() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return vmHWM(p.cmd.Process.Pid)
}

func vmHWM(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// ConsumerSpec is one run of a real Dubbo consumer.
type ConsumerSpec struct {
	Version string
	// Discovery forces interface- or application-level discovery (Dubbo 3); empty keeps
	// Dubbo's default (3.x: application first, falling back to interface).
	Discovery string
	// Wait is how long each call is retried before it counts as failed; default 8 s.
	Wait time.Duration
	// Hold keeps the consumer running (registered) after its calls until Consumer.Release.
	Hold bool
}

// Call is one service's measured outcome.
type Call struct {
	Name string
	OK   bool
	// Answer is what the provider said (its identity) when OK; Error Dubbo's exception otherwise.
	Answer  string
	Error   string
	Latency time.Duration // of the successful call, or the time spent failing
}

// Consumer is the outcome of one consumer run.
type Consumer struct {
	Calls map[string]Call
	// Started is the JVM's wall time from exec to its last answer; PeakRSS its VmHWM in KiB.
	Elapsed time.Duration
	PeakRSS int
	release func() error
}

// Release ends a consumer started with Hold; a no-op otherwise.
func (c *Consumer) Release() error {
	if c.release == nil {
		return nil
	}
	r := c.release
	c.release = nil
	return r()
}

// Consume runs a consumer JVM on h that calls who() on the services of the named providers
// (each retried until it answers or spec.Wait passes) and returns what each call measured.
func (l *Lab) Consume(h *Host, spec ConsumerSpec, names ...string) (*Consumer, error) {
	if len(names) == 0 {
		return nil, errors.New("lab: Consume needs at least one provider name")
	}
	if spec.Wait == 0 {
		spec.Wait = 8 * time.Second
	}
	var props []string
	switch spec.Discovery {
	case "":
	case DiscoverInterface:
		props = append(props, "-Ddubbo.application.service-discovery.migration=FORCE_INTERFACE")
	case DiscoverApplication:
		if spec.Version == Dubbo2723 {
			return nil, errors.New("lab: the lab's Dubbo 2.7 consumer discovers interfaces only")
		}
		props = append(props, "-Ddubbo.application.service-discovery.migration=FORCE_APPLICATION")
	default:
		return nil, fmt.Errorf("lab: discovery %q: want %q or %q", spec.Discovery, DiscoverInterface, DiscoverApplication)
	}
	argv, err := javaArgs(spec.Version, props...)
	if err != nil {
		return nil, err
	}
	argv = append(argv, "consumer", strconv.FormatInt(spec.Wait.Milliseconds(), 10))
	argv = append(argv, names...)
	// A run is bounded; a held consumer lives until Release (or the test process) ends it.
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if !spec.Hold {
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute+time.Duration(len(names))*spec.Wait)
	}
	defer cancel()
	cmd := h.Command(ctx, argv...)
	env := map[string]string{}
	if spec.Hold {
		env["LAB_HOLD"] = "1"
	}
	cmd.Env = processEnv(env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: starting consumer on %s: %w", h.Name, err)
	}
	res := &Consumer{Calls: map[string]Call{}}
	// Sample the peak RSS just before the JVM exits: /proc goes with the process.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rss := vmHWM(cmd.Process.Pid); rss > res.PeakRSS {
			res.PeakRSS = rss
		}
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "CALL" {
			continue
		}
		ms, _ := strconv.Atoi(f[4])
		c := Call{Name: f[1], OK: f[2] == "OK", Latency: time.Duration(ms) * time.Millisecond}
		if c.OK {
			c.Answer = strings.ReplaceAll(f[3], "_", " ")
		} else {
			c.Error = strings.ReplaceAll(f[3], "_", " ")
		}
		res.Calls[c.Name] = c
		if len(res.Calls) == len(names) {
			break
		}
	}
	res.Elapsed = time.Since(t0)
	if spec.Hold && len(res.Calls) == len(names) {
		res.release = func() error {
			stdin.Close()
			_, _ = io.Copy(io.Discard, stdout)
			return cmd.Wait()
		}
		return res, nil
	}
	stdin.Close()
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if err != nil {
		return res, fmt.Errorf("lab: consumer on %s: %w; stderr:\n%s", h.Name, err, tailString(stderr.String(), 3000))
	}
	if len(res.Calls) != len(names) {
		return res, fmt.Errorf("lab: consumer on %s answered %d of %d calls; stderr:\n%s", h.Name, len(res.Calls), len(names), tailString(stderr.String(), 3000))
	}
	return res, nil
}

// ResolveEnv resolves a container's env as kubelet would on the lab pod p: literal values, and
// the downward-API fields the webhook injects (status.podIP, status.hostIP).
func ResolveEnv(env []corev1.EnvVar, p *Pod) (map[string]string, error) {
	out := map[string]string{}
	for _, e := range env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			out[e.Name] = p.IP.String()
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.hostIP":
			out[e.Name] = p.Node.IP.String()
		default:
			return nil, fmt.Errorf("lab: env %s: only values and fieldRef status.podIP/status.hostIP are resolved", e.Name)
		}
	}
	return out, nil
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
