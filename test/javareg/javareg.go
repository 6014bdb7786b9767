// Package javareg runs registrations written by real Java code for the registry's tests: a
// small program (testdata/Registrar.java) compiled with javac at test time, that names
// interface-level znodes with java.net.URLEncoder as Dubbo does and registers application-level
// instances with Apache Curator's ServiceDiscovery (Debian's libcurator-discovery-java).
package javareg

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/test/harness"
)

// Compile compiles the Java sources into dir and returns the classpath to run them with.
func Compile(dir string) (string, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "test", "javareg", "testdata")
	files := []string{filepath.Join(src, "Registrar.java"), filepath.Join(src, "org", "apache", "dubbo", "registry", "zookeeper", "ZookeeperInstance.java")}
	if _, err := exec.LookPath("javac"); err != nil {
		return "", fmt.Errorf("javareg: javac is not installed: run `make tools` (apt-get install default-jdk-headless)")
	}
	args := append([]string{"-nowarn", "-cp", harness.ZooKeeperClasspath, "-d", dir}, files...)
	out, err := exec.Command("javac", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("javareg: javac: %w\n%s", err, out)
	}
	return dir + string(os.PathListSeparator) + harness.ZooKeeperClasspath, nil
}

// Client is a running Registrar JVM connected to one ZooKeeper.
type Client struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	mu   sync.Mutex
	done chan struct{}
}

// Start runs a registrar against zkAddr. It is stopped (its session closed) by Close or at the
// end of the test.
func Start(t testing.TB, classpath, zkAddr string) *Client {
	t.Helper()
	c, err := StartProcess(classpath, zkAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartProcess is Start for benchmarks' and TestMain's own lifecycle management.
func StartProcess(classpath, zkAddr string) (*Client, error) {
	return StartProcessLog(classpath, zkAddr, io.Discard)
}

// StartProcessLog is StartProcess with the JVM's stderr written to log (the demo keeps it).
// No perf data file: a registrar leaves nothing behind in /tmp.
func StartProcessLog(classpath, zkAddr string, log io.Writer) (*Client, error) {
	cmd := exec.Command("java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", classpath, "Registrar", zkAddr)
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("javareg: starting java: %w", err)
	}
	c := &Client{cmd: cmd, in: in, out: bufio.NewScanner(outPipe), done: make(chan struct{})}
	c.out.Buffer(make([]byte, 64<<10), 1<<20)
	go func() { _ = cmd.Wait(); close(c.done) }()
	ready := make(chan bool, 1)
	go func() { ready <- c.out.Scan() && c.out.Text() == "ready" }()
	select {
	case ok := <-ready:
		if !ok {
			c.Close()
			return nil, fmt.Errorf("javareg: registrar did not start (no ready line)")
		}
	case <-time.After(90 * time.Second):
		c.Close()
		return nil, fmt.Errorf("javareg: registrar did not connect to %s within 90s", zkAddr)
	}
	return c, nil
}

// Do sends one command and returns its result.
func (c *Client) Do(args ...string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range args {
		if strings.ContainsAny(a, "\t\n") {
			return "", fmt.Errorf("javareg: argument %q contains a tab or newline", a)
		}
	}
	if _, err := io.WriteString(c.in, strings.Join(args, "\t")+"\n"); err != nil {
		return "", err
	}
	if !c.out.Scan() {
		return "", fmt.Errorf("javareg: registrar exited")
	}
	line := c.out.Text()
	if res, ok := strings.CutPrefix(line, "ok "); ok {
		return res, nil
	}
	return "", fmt.Errorf("javareg: %s: %s", args[0], line)
}

// URL registers a full Dubbo URL under root/<interface>/<category> and returns the znode path.
func (c *Client) URL(persistent bool, root, category, iface, url string) (string, error) {
	mode := "ephemeral"
	if persistent {
		mode = "persistent"
	}
	return c.Do("url", mode, root, category, iface, url)
}

// Instance registers an application-level instance through Curator ServiceDiscovery.
func (c *Client) Instance(base, app, addr string, port int, protocol string) (string, error) {
	return c.Do("instance", base, app, addr, strconv.Itoa(port), protocol)
}

// Close ends the JVM, and with it its session and ephemeral nodes.
func (c *Client) Close() {
	_ = c.in.Close()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}
