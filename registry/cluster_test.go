package registry_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dubboreach/dubboreach/internal/cli"
	"github.com/dubboreach/dubboreach/test/harness"
	"github.com/dubboreach/dubboreach/test/javareg"
)

// TestAuditAgainstCluster runs `audit --once` and `audit --listen` with --kubeconfig: nodes,
// pods and namespaces come from a real API server, Events go to it.
func TestAuditAgainstCluster(t *testing.T) {
	env := harness.Envtest(t, harness.EnvOptions{})
	user, err := env.Environment.AddUser(envtest.User{Name: "audit", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := harness.Context(t)
	c := env.Client
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}}))
	harness.CreateNode(t, c, "node-b", "10.244.2.0/24", "10.132.2.12")
	harness.RunPod(t, c, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "billing-1", Namespace: "legacy"},
		Spec: corev1.PodSpec{NodeName: "node-b", Containers: []corev1.Container{{Name: "app", Image: "billing"}}}}, "10.132.2.12", "10.244.2.6")

	z := harness.StartZooKeeper(t)
	j := javareg.Start(t, classpath, z.Addr)
	if _, err := j.URL(false, "/dubbo", "providers", "com.shop.BillingService", providerURL("dubbo", "10.244.2.6:20880", "com.shop.BillingService", "")); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := runCLI(t, "audit", "--once", "-o", "json", "--zk-connect-timeout", "60s", "--zk", z.Addr, "--kubeconfig", kubeconfig, "--fabric", testdata("fabric.yaml"))
	var doc auditDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out, stderr)
	}
	if code != 1 || len(doc.Providers) != 1 {
		t.Fatalf("exit %d, %+v", code, doc)
	}
	checkFinding(t, "cluster --once", doc.Providers[0], want{verdict: "unreachable", reason: "unpublished-pod-route", node: "node-b", pod: "legacy/billing-1",
		missingRoute: "10.244.2.0/24", explain: []string{"Namespace legacy is not labelled"}})

	// Long-running, with leader election in "default" and Events on the pod.
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		var o, e strings.Builder
		exit <- cli.Run(rctx, []string{"audit", "--zk", z.Addr, "--kubeconfig", kubeconfig, "--fabric", testdata("fabric.yaml"),
			"--listen", "127.0.0.1:" + strconv.Itoa(port), "--leader-election-namespace", "default"}, &o, &e)
	}()
	defer func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(30 * time.Second):
			t.Error("audit did not stop")
		}
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var list eventsv1.EventList
		must(c.List(ctx, &list, client.InNamespace("legacy")))
		found := false
		for _, e := range list.Items {
			if e.Reason == "UnreachableRegistration" && e.Regarding.Name == "billing-1" {
				found = true
			}
		}
		if found {
			break
		}
		select {
		case code := <-exit:
			t.Fatalf("audit exited %d", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no UnreachableRegistration Event from audit --listen within 90s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
