package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/webhook"
)

// noopHandler is the baseline: it reads and decodes the AdmissionReview like the webhook
// does, then allows the pod unchanged. The difference to the real handler is the cost of
// deciding and patching.
type noopHandler struct{}

func (noopHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, status, err := webhook.DecodeReview(r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true},
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

const noopPath = "/noop"

// loadServer starts Run from an inventory (no cluster) on 127.0.0.1 with a fresh self-signed
// certificate, and returns its address and a client trusting it.
func loadServer(tb testing.TB) (string, *x509.CertPool) {
	addr, pool, _ := startStatic(tb)
	return addr, pool
}

// startStatic is loadServer that also returns the certificate directory.
func startStatic(tb testing.TB) (string, *x509.CertPool, string) {
	tb.Helper()
	addr, pool, dir, _ := startStaticWith(tb, nil)
	return addr, pool, dir
}

// startStaticWith starts Run from an inventory with the options mutate changes, waits for its
// TLS port, and returns stop: cancel Run's context and wait for Run to return (also done at
// cleanup; later calls return the first result).
func startStaticWith(tb testing.TB, mutate func(*Options)) (string, *x509.CertPool, string, func() error) {
	tb.Helper()
	dir := tb.TempDir()
	pool := writeCert(tb, dir)
	port := freePort(tb)
	inv := &routes.Inventory{Namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{webhook.LabelInject: webhook.InjectEnabled}}}}}
	fab := routes.DefaultFabric()
	for i := range 3 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
		inv.Nodes = append(inv.Nodes, routes.Node{Name: fmt.Sprintf("node-%d", i), UID: fmt.Sprintf("uid-%d", i), PodCIDRs: []netip.Prefix{p},
			InternalIPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 168, 0, byte(10 + i)})}})
		fab.Installed = append(fab.Installed, p)
	}
	o := Options{
		Inventory: inv, Fabric: fab, Host: "127.0.0.1", Port: port, CertDir: dir,
		MetricsBindAddress: "0", HealthProbeBindAddress: "0", Namespace: ownNamespace,
		Log: logr.Discard(), Registry: prometheus.NewRegistry(),
		extraHandlers: map[string]http.Handler{noopPath: noopHandler{}},
	}
	if mutate != nil {
		mutate(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err == nil {
			_ = c.Close()
			return addr, pool, dir, stop
		}
		if time.Now().After(deadline) {
			tb.Fatalf("webhook server on %s did not come up: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeCert(tb testing.TB, dir string) *x509.CertPool {
	tb.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(writeCertSerial(tb, dir, 1))
	return pool
}

// writeCertSerial writes a self-signed certificate for 127.0.0.1 with the given serial number.
func writeCertSerial(tb testing.TB, dir string, serial int64) *x509.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "dubboreach-webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// typicalReview is an AdmissionReview for a 3-container provider pod (app with a Dubbo port,
// log shipper, native sidecar), as the API server sends it.
func typicalReview(tb testing.TB) []byte {
	tb.Helper()
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "order-provider-7c9d8f6b5-", Namespace: "shop", Labels: map[string]string{"app": "order-provider"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "mesh", Image: "mesh:1.4", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways)}},
			Containers: []corev1.Container{
				{Name: "app", Image: "order-provider:2.7.23", Ports: []corev1.ContainerPort{{Name: "dubbo", ContainerPort: 20880}},
					Env: []corev1.EnvVar{{Name: "JAVA_OPTS", Value: "-Xmx768m"}, {Name: "ZK_ADDRESS", Value: "zookeeper://10.132.2.10:2181"}}},
				{Name: "logs", Image: "fluent-bit:3.0"},
			},
		},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "0a1b2c3d-0000-4000-8000-000000000001", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "shop", Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func ptrTo[T any](v T) *T { return &v }

// loadClients is the number of concurrent keep-alive connections, like an API server with
// several requests in flight.
const loadClients = 8

// load sends n admissions to url over loadClients keep-alive HTTPS connections and returns
// each one's latency. Every answer is checked: allowed, and patched when wantPatch.
func load(tb testing.TB, client *http.Client, url string, body []byte, n int, wantPatch bool) []time.Duration {
	tb.Helper()
	lat := make([]time.Duration, n)
	var next, failed sync.Mutex
	i := 0
	var firstErr error
	var wg sync.WaitGroup
	for range loadClients {
		wg.Go(func() {
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				start := time.Now()
				err := admitOnce(client, url, body, wantPatch)
				lat[k] = time.Since(start)
				if err != nil {
					failed.Lock()
					if firstErr == nil {
						firstErr = err
					}
					failed.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	return lat
}

func admitOnce(client *http.Client, url string, body []byte, wantPatch bool) error {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &review); err != nil {
		return err
	}
	if review.Response == nil || !review.Response.Allowed || (wantPatch && len(review.Response.Patch) == 0) {
		return fmt.Errorf("%s: unexpected answer %s", url, b)
	}
	return nil
}

func newLoadClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: loadClients, MaxConnsPerHost: loadClients, IdleConnTimeout: time.Minute,
	}}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// BenchmarkLoad is the HTTPS load test: the real webhook server (Run, from an inventory, on
// 127.0.0.1) answers a typical 3-container pod admission over keep-alive TLS connections,
// side by side with a no-op handler on the same server. b.N admissions per handler; it
// reports admissions/s and p50/p99 latency. Bound it with -benchtime=Nx.
func BenchmarkLoad(b *testing.B) {
	addr, pool := loadServer(b)
	body := typicalReview(b)
	for _, bc := range []struct {
		name, path string
		patch      bool
	}{{"noop", noopPath, false}, {"webhook", webhook.Path, true}} {
		b.Run(bc.name, func(b *testing.B) {
			client := newLoadClient(pool)
			url := "https://" + addr + bc.path
			load(b, client, url, body, 2*loadClients, bc.patch) // open the connections
			b.ResetTimer()
			start := time.Now()
			lat := load(b, client, url, body, b.N, bc.patch)
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "admissions/s")
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			client.CloseIdleConnections()
		})
	}
}

// TestLoadServerAnswers runs a short load through both handlers as a normal test, so the load
// path (static server, TLS, keep-alive, answers) is exercised on every test run.
func TestLoadServerAnswers(t *testing.T) {
	addr, pool := loadServer(t)
	body := typicalReview(t)
	client := newLoadClient(pool)
	defer client.CloseIdleConnections()
	for _, path := range []string{noopPath, webhook.Path} {
		lat := load(t, client, "https://"+addr+path, body, 200, path == webhook.Path)
		if len(lat) != 200 {
			t.Fatalf("%s: %d answers", path, len(lat))
		}
	}
}

// TestCertificateRotation: a renewed certificate in --cert-dir is served without a restart.
func TestCertificateRotation(t *testing.T) {
	addr, pool, dir := startStatic(t)
	serial := func() (int64, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			return 0, err
		}
		defer func() { _ = c.Close() }()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
	}
	s, err := serial()
	if err != nil || s != 1 {
		t.Fatalf("serial %d, %v: want the first certificate", s, err)
	}
	pool.AddCert(writeCertSerial(t, dir, 2))
	deadline := time.Now().Add(90 * time.Second)
	for {
		if s, err = serial(); err == nil && s == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %d (%v) 90s after the certificate was renewed", s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
