package registry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/internal/cli"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

// TestAuditServe runs `dubboreach audit --listen` as the binary would and reads its endpoints.
func TestAuditServe(t *testing.T) {
	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.CartService", providerURL("dubbo", "10.244.2.5:20880", "com.shop.CartService", "")); err != nil {
		t.Fatal(err)
	}
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- cli.Run(ctx, []string{"audit", "--zk", z.Addr, "--listen", addr, "--inventory", testdata("inventory.yaml"), "--fabric", testdata("fabric.yaml")}, &out, &errb)
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := get("/readyz"); code == 200 {
			break
		}
		select {
		case c := <-exit:
			t.Fatalf("audit exited %d: %s", c, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 60s; stderr: %s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var body string
	for time.Now().Before(deadline) {
		_, body = get("/metrics")
		if strings.Contains(body, `dubboreach_registry_providers{reason="unpublished-pod-route",verdict="unreachable"} 1`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{`dubboreach_registry_providers{reason="unpublished-pod-route",verdict="unreachable"} 1`, "dubboreach_zookeeper_connected 1", "dubboreach_registry_scan_complete 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	cancel()
	select {
	case c := <-exit:
		if c != 0 {
			t.Errorf("exit %d after cancel; stderr: %s", c, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("audit did not stop after its context ended")
	}
}
