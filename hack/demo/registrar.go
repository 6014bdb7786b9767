package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dubboreach/dubboreach/test/harness"
)

// The registrations are written by real Java code, the same program the registry's tests use
// (registry/internal/javareg/testdata): interface-level znodes named with java.net.URLEncoder as
// Dubbo's ZookeeperRegistry names them, and application-level instances through Apache Curator's
// ServiceDiscovery, as Dubbo 3 registers them. Go's internal rule keeps the javareg package to
// registry/, so the demo compiles and runs the same sources from their path.

// javaSources are the registrar's sources, relative to the repository root.
var javaSources = []string{
	"registry/internal/javareg/testdata/Registrar.java",
	"registry/internal/javareg/testdata/org/apache/dubbo/registry/zookeeper/ZookeeperInstance.java",
}

// registrar is a running Registrar JVM: one ZooKeeper session holding the ephemeral entries.
type registrar struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	done chan struct{}
}

// startRegistrar compiles the registrar into dir and starts it against zkAddr.
func startRegistrar(root, dir, zkAddr string, log io.Writer) (*registrar, error) {
	if _, err := exec.LookPath("javac"); err != nil {
		return nil, fmt.Errorf("javac is not installed: run `make tools` (it installs a JDK with zookeeper and libcurator-discovery-java)")
	}
	classes := filepath.Join(dir, "classes")
	if err := os.MkdirAll(classes, 0o755); err != nil {
		return nil, err
	}
	args := []string{"-nowarn", "-cp", harness.ZooKeeperClasspath, "-d", classes}
	for _, s := range javaSources {
		args = append(args, filepath.Join(root, s))
	}
	if out, err := exec.Command("javac", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compiling the Java registrar: javac: %w\n%s", err, out)
	}
	cmd := exec.Command("java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-XX:-UsePerfData", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-cp", classes+string(os.PathListSeparator)+harness.ZooKeeperClasspath, "Registrar", zkAddr)
	cmd.Stderr = log
	// Its own process group, killed with the demo if the demo dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the Java registrar: %w", err)
	}
	r := &registrar{cmd: cmd, in: in, out: bufio.NewScanner(out), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	ready := make(chan bool, 1)
	go func() { ready <- r.out.Scan() && r.out.Text() == "ready" }()
	select {
	case ok := <-ready:
		if !ok {
			r.close()
			return nil, fmt.Errorf("the Java registrar did not start (see the log)")
		}
	case <-time.After(90 * time.Second):
		r.close()
		return nil, fmt.Errorf("the Java registrar did not connect to ZooKeeper %s within 90s", zkAddr)
	}
	return r, nil
}

func (r *registrar) do(args ...string) (string, error) {
	if _, err := io.WriteString(r.in, strings.Join(args, "\t")+"\n"); err != nil {
		return "", err
	}
	if !r.out.Scan() {
		return "", fmt.Errorf("the Java registrar exited")
	}
	line := r.out.Text()
	if res, ok := strings.CutPrefix(line, "ok "); ok {
		return res, nil
	}
	return "", fmt.Errorf("registrar %s: %s", args[0], line)
}

// url writes an interface-level entry under /dubbo/<interface>/<category>/<URL-encoded URL>.
func (r *registrar) url(persistent bool, category, iface, url string) (string, error) {
	mode := "ephemeral"
	if persistent {
		mode = "persistent"
	}
	return r.do("url", mode, "/dubbo", category, iface, url)
}

// instance registers an application-level instance under /services/<app>/<address:port>.
func (r *registrar) instance(app, address string, port int) (string, error) {
	return r.do("instance", "/services", app, address, strconv.Itoa(port), "dubbo")
}

// close ends the JVM: its session closes and ZooKeeper drops the ephemeral entries.
func (r *registrar) close() {
	_ = r.in.Close()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}
