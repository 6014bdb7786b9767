package harness

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ZooKeeper is a real ZooKeeper server (Debian's package) on a loopback port, with its own
// data directory. Stop and Start let fault tests take it away and bring it back on the same
// address with the same data.
type ZooKeeper struct {
	// Addr is host:port for clients, always on 127.0.0.1.
	Addr    string
	Port    int
	dir     string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

// ZooKeeperClasspath is where Debian's zookeeper package (and its dependencies) put their jars.
const ZooKeeperClasspath = "/usr/share/java/*"

// StartZooKeeperIn starts a server whose data lives in dir. Use it from TestMain; tests use
// StartZooKeeper.
func StartZooKeeperIn(dir string) (*ZooKeeper, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("harness: java is not installed: run `make tools` (apt-get install zookeeper pulls in a JRE)")
	}
	if err := requireFile("/usr/share/java/zookeeper.jar", "run `make tools` (apt-get install zookeeper)"); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	z := &ZooKeeper{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, dir: dir, logPath: filepath.Join(dir, "zookeeper.log")}
	// A short tick lets session-expiry tests run in seconds (minimum session = 2 ticks).
	cfg := fmt.Sprintf(`tickTime=250
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr,cons,stat
maxClientCnxns=0
`, filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return z, z.Start()
}

// StartZooKeeper starts a server for one test, stopped (and its data removed) when the test ends.
func StartZooKeeper(t testing.TB) *ZooKeeper {
	t.Helper()
	z, err := StartZooKeeperIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		z.Stop()
		if t.Failed() {
			if log, err := os.ReadFile(z.logPath); err == nil {
				t.Logf("zookeeper log (last 4 KiB):\n%s", tail(log, 4096))
			}
		}
	})
	return z
}

// Start (re)starts the server on its address and waits until it answers.
func (z *ZooKeeper) Start() error {
	if z.cmd != nil {
		return fmt.Errorf("harness: zookeeper on %s is already running", z.Addr)
	}
	log, err := os.OpenFile(z.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dzookeeper.admin.enableServer=false",
		"-cp", ZooKeeperClasspath, "org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(z.dir, "zoo.cfg"))
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, killed with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("harness: starting zookeeper: %w", err)
	}
	z.cmd, z.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(z.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-z.done:
			z.cmd = nil
			return fmt.Errorf("harness: zookeeper exited at start; log %s:\n%s", z.logPath, z.log())
		default:
		}
		if z.FourLetter("ruok") == "imok" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	z.Stop()
	return fmt.Errorf("harness: zookeeper on %s did not answer within 60s; log:\n%s", z.Addr, z.log())
}

// Stop kills the server (as a crash would) and waits for it to exit. Its data stays.
func (z *ZooKeeper) Stop() {
	if z.cmd == nil {
		return
	}
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	<-z.done
	z.cmd = nil
}

// Restart stops and starts the server on the same address with the same data.
func (z *ZooKeeper) Restart() error {
	z.Stop()
	return z.Start()
}

// FourLetter sends a four-letter command (ruok, srvr, mntr, cons) and returns the answer.
func (z *ZooKeeper) FourLetter(cmd string) string {
	conn, err := net.DialTimeout("tcp", z.Addr, time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return ""
	}
	var b strings.Builder
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(sc.Text())
	}
	return b.String()
}

func (z *ZooKeeper) log() string {
	data, _ := os.ReadFile(z.logPath)
	return tail(data, 4096)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
