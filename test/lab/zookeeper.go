package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ZooKeeper is Debian's ZooKeeper server running on the registry host at ZooKeeperAt.
type ZooKeeper struct {
	Host    *Host
	Addr    string
	dir     string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// JVMFlags keep each JVM small and quick to start on a 2-core machine: C1 only, serial GC,
// small stacks and heap, class-data sharing when the JDK has its archive.
var JVMFlags = []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k", "-Xmx96m", "-Xshare:auto"}

func startZooKeeper(h *Host, dir string) (*ZooKeeper, error) {
	if _, err := os.Stat("/usr/share/java/zookeeper.jar"); err != nil {
		return nil, fmt.Errorf("lab: ZooKeeper is not installed (/usr/share/java/zookeeper.jar): run `make tools` (apt-get install zookeeper)")
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	// tickTime 500 bounds sessions to 1..10 s (2..20 ticks): Dubbo asks for 60 s and gets 10 s,
	// so a killed provider's ephemeral registrations go within seconds, not a minute.
	cfg := fmt.Sprintf("tickTime=500\ndataDir=%s\nclientPort=2181\nclientPortAddress=%s\nadmin.enableServer=false\n"+
		"4lw.commands.whitelist=ruok,srvr,mntr,cons,stat\nmaxClientCnxns=0\n", filepath.Join(dir, "data"), RegistryIP)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	z := &ZooKeeper{Host: h, Addr: ZooKeeperAt, dir: dir, LogPath: filepath.Join(dir, "zookeeper.log")}
	return z, z.Start()
}

// Start (re)starts the server with its data and waits until it answers ruok.
func (z *ZooKeeper) Start() error {
	log, err := os.OpenFile(z.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	argv := append([]string{"java"}, JVMFlags...)
	argv = append(argv, "-Dzookeeper.admin.enableServer=false", "-cp", "/usr/share/java/*",
		"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(z.dir, "zoo.cfg"))
	cmd := z.Host.Command(context.Background(), argv...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("lab: starting ZooKeeper: %w", err)
	}
	z.cmd, z.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(z.done) }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-z.done:
			z.cmd = nil
			return fmt.Errorf("lab: ZooKeeper exited at start; log %s:\n%s", z.LogPath, tailFile(z.LogPath))
		default:
		}
		if z.FourLetter("ruok") == "imok" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	z.Stop()
	return fmt.Errorf("lab: ZooKeeper on %s did not answer within 90s; log:\n%s", z.Addr, tailFile(z.LogPath))
}

// Stop kills the server as a crash would; its data stays for Start.
func (z *ZooKeeper) Stop() {
	if z.cmd == nil {
		return
	}
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	<-z.done
	z.cmd = nil
}

// FourLetter sends a four-letter command from the registry host itself and returns the answer.
func (z *ZooKeeper) FourLetter(cmd string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := z.Host.Dial(ctx, z.Addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return ""
	}
	b, _ := io.ReadAll(c)
	return strings.TrimSpace(string(b))
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}
