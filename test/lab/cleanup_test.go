package lab_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/test/lab"
)

// TestCleanupRemovesLeftovers plays a killed run: a lab namespace with a process still inside,
// which Cleanup must remove (process killed) while the running lab stays whole.
func TestCleanupRemovesLeftovers(t *testing.T) {
	l := shared(t)
	const ns = "drl-dead00-left"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run(); _ = os.RemoveAll("/etc/netns/" + ns) })
	if err := os.MkdirAll("/etc/netns/"+ns, 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("ip", "netns", "exec", ns, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()

	if err := lab.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/var/run/netns/" + ns); !os.IsNotExist(err) {
		t.Fatalf("namespace %s still there after Cleanup (stat: %v)", ns, err)
	}
	if _, err := os.Stat("/etc/netns/" + ns); !os.IsNotExist(err) {
		t.Fatalf("/etc/netns/%s still there after Cleanup (stat: %v)", ns, err)
	}
	select {
	case err := <-exited:
		if ws, ok := sleeper.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("leftover process ended with %v; want killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover's process still runs 10s after Cleanup")
	}
	if _, err := os.Stat("/var/run/netns/" + l.Outside.NS); err != nil {
		t.Fatalf("Cleanup removed the running lab's namespace %s: %v", l.Outside.NS, err)
	}
	if got := l.ZooKeeper.FourLetter("ruok"); got != "imok" {
		t.Fatalf("the running lab's ZooKeeper answers ruok with %q after Cleanup", got)
	}
}

// TestZooKeeperFromTestProcess checks the path in-process code takes to the lab's registry.
func TestZooKeeperFromTestProcess(t *testing.T) {
	l := shared(t)
	addr, err := l.Forward(l.Outside, lab.ZooKeeperAt)
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&netDialer).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil || string(buf) != "imok" {
		t.Fatalf("ZooKeeper through the forward from the outside host: %q, %v", buf, err)
	}
}
