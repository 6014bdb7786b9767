package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dubboreach/dubboreach/test/harness"
)

// kubeVersion is what `helm template` renders for: the version of ./bin/kube-apiserver (built
// from k8s.io 0.36), not the default of a helm binary built without its version ldflags.
const kubeVersion = "1.36.0"

// The modules whose CRDs the API server gets: cert-manager's ship in deploy/crds; the
// prometheus-operator CRDs live in the main module, at the version of the API types we import.
const (
	certManagerModule = "github.com/cert-manager/cert-manager"
	monitoringModule  = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring"
	promOperatorRoot  = "github.com/prometheus-operator/prometheus-operator"
)

func TestMain(m *testing.M) {
	code := m.Run()
	envMu.Lock()
	if sharedEnv != nil {
		if err := sharedEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	if crdTmp != "" {
		_ = os.RemoveAll(crdTmp)
	}
	envMu.Unlock()
	os.Exit(code)
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "charts", "dubboreach") }

// helmBin is ./bin/helm; the tests never fall back to another helm.
func helmBin(t testing.TB) string {
	t.Helper()
	p := filepath.Join(harness.BinDir(), "helm")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing (%v): run `make tools` (or: cd hack/tools/helm && go build -o ../../../bin/helm helm.sh/helm/v3/cmd/helm)", p, err)
	}
	return p
}

// helm runs ./bin/helm with its caches and config in a temporary directory.
func helm(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// valuesFile writes values (YAML) for -f.
func valuesFile(t testing.TB, values string) string {
	t.Helper()
	// Not t.TempDir: its path holds the test name, and helm splits -f at commas.
	f, err := os.CreateTemp("", "dubboreach-values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	if _, err := f.WriteString(values); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

const (
	releaseName      = "dubboreach"
	releaseNamespace = "dubboreach-system"
)

// templateArgs are the arguments of `helm template` for one set of values.
func templateArgs(t testing.TB, values string) []string {
	return []string{"template", releaseName, chartDir(t), "--namespace", releaseNamespace,
		"--kube-version", kubeVersion, "-f", valuesFile(t, values)}
}

// render runs `helm template` and fails the test on any error.
func render(t testing.TB, values string) []*unstructured.Unstructured {
	t.Helper()
	out, stderr, err := helm(t, templateArgs(t, values)...)
	if err != nil {
		t.Fatalf("helm template with values\n%s\nfailed: %v\n%s", values, err, stderr)
	}
	return splitYAML(t, out)
}

// splitYAML decodes a multi-document YAML stream into objects, skipping empty documents.
func splitYAML(t testing.TB, stream string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding rendered YAML: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) == 0 {
		t.Fatal("nothing rendered")
	}
	return objs
}

var (
	schemeOnce sync.Once
	scheme     *runtime.Scheme
	strictDec  runtime.Decoder
)

// testScheme knows the built-in types and the cert-manager and prometheus-operator API types.
func testScheme(t testing.TB) (*runtime.Scheme, runtime.Decoder) {
	t.Helper()
	schemeOnce.Do(func() {
		s := runtime.NewScheme()
		for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, certmanagerv1.AddToScheme, monitoringv1.AddToScheme} {
			if err := add(s); err != nil {
				panic(err)
			}
		}
		scheme = s
		strictDec = serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
	})
	return scheme, strictDec
}

// typed decodes every object into its Go type, strictly: an unknown or misspelt field fails.
func typed(t testing.TB, objs []*unstructured.Unstructured) []runtime.Object {
	t.Helper()
	_, dec := testScheme(t)
	out := make([]runtime.Object, 0, len(objs))
	for _, u := range objs {
		data, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := dec.Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s %s does not decode strictly into its Go type: %v", u.GetKind(), u.GetName(), err)
		}
		out = append(out, obj)
	}
	return out
}

// only returns the objects of one Go type.
func only[T runtime.Object](objs []runtime.Object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.GetKind()]++
	}
	return m
}

// ---- the API server ----------------------------------------------------------------------------

var (
	envMu     sync.Mutex
	sharedEnv *harness.Env
	crdTmp    string
)

// apiServer starts one kube-apiserver for the package (the first test that needs it pays), with
// the cert-manager CRDs and prometheus-operator's ServiceMonitor and PrometheusRule CRDs.
func apiServer(t testing.TB) *harness.Env {
	t.Helper()
	envMu.Lock()
	defer envMu.Unlock()
	if sharedEnv != nil {
		return sharedEnv
	}
	cmDir := filepath.Join(moduleDir(t, certManagerModule, ""), "deploy", "crds")
	promVersion := moduleVersion(t, monitoringModule)
	promDir := filepath.Join(moduleDir(t, promOperatorRoot, promVersion), "example", "prometheus-operator-crd")
	tmp, err := os.MkdirTemp("", "dubboreach-deploy-crds-")
	if err != nil {
		t.Fatal(err)
	}
	crdTmp = tmp
	// Only the two kinds the chart uses: the Prometheus CRD alone is megabytes of schema.
	for _, f := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		data, err := os.ReadFile(filepath.Join(promDir, f))
		if err != nil {
			t.Fatalf("prometheus-operator CRD %s: %v", f, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(cmDir, "cert-manager.io_certificates.yaml")); err != nil {
		t.Fatalf("cert-manager CRDs not found in the module: %v", err)
	}
	env, err := harness.StartEnv(harness.EnvOptions{CRDDirs: []string{cmDir, tmp}})
	if err != nil {
		t.Fatal(err)
	}
	sharedEnv = env
	return env
}

// moduleVersion is the version of a module in dubboreach's build list (go.mod).
func moduleVersion(t testing.TB, module string) string {
	t.Helper()
	out := goCmd(t, "list", "-m", "-f", "{{.Version}}", module)
	v := strings.TrimSpace(out)
	if v == "" {
		t.Fatalf("go list -m %s: no version; is it in go.mod?", module)
	}
	return v
}

// moduleDir downloads (if needed) a module and returns its directory in the module cache;
// version "" means the version in go.mod.
func moduleDir(t testing.TB, module, version string) string {
	t.Helper()
	if version == "" {
		version = moduleVersion(t, module)
	}
	out := goCmd(t, "mod", "download", "-json", module+"@"+version)
	var info struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("go mod download -json %s@%s: %v\n%s", module, version, err, out)
	}
	if info.Error != "" || info.Dir == "" {
		t.Fatalf("go mod download %s@%s: %s", module, version, info.Error)
	}
	return info.Dir
}

func goCmd(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// dryRunCreate sends every object to the API server as a create with dryRun=All and strict
// field validation, after creating the namespace they go into for real (a dry-run create into a
// namespace that does not exist is refused). Namespace objects in objs are created for real too.
func dryRunCreate(t *testing.T, c client.Client, namespace string, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", namespace, err)
	}
	var failed []string
	for _, o := range objs {
		obj := o.DeepCopy()
		if obj.GetKind() == "Namespace" {
			if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				failed = append(failed, fmt.Sprintf("Namespace %s: %v", obj.GetName(), err))
			}
			continue
		}
		if err := c.Create(ctx, obj, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			failed = append(failed, fmt.Sprintf("%s %s/%s: %v", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err))
		}
	}
	if len(failed) > 0 {
		t.Fatalf("the API server refused %d of %d objects:\n%s", len(failed), len(objs), strings.Join(failed, "\n"))
	}
}

// ---- RBAC ------------------------------------------------------------------------------------

// permissions is the set of grants of one ServiceAccount, one string per (scope, API group,
// resource, verb): "cluster /nodes patch", "namespace coordination.k8s.io/leases get".
// A rule narrowed by resourceNames gives "group/resource@name1,name2".
func permissions(t testing.TB, objs []runtime.Object, saNamespace, saName string) map[string]bool {
	t.Helper()
	clusterRoles := map[string]*rbacv1.ClusterRole{}
	for _, r := range only[*rbacv1.ClusterRole](objs) {
		clusterRoles[r.Name] = r
	}
	roles := map[string]*rbacv1.Role{}
	for _, r := range only[*rbacv1.Role](objs) {
		roles[r.Namespace+"/"+r.Name] = r
	}
	bound := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == "ServiceAccount" && s.Name == saName && s.Namespace == saNamespace {
				return true
			}
		}
		return false
	}
	perms := map[string]bool{}
	add := func(scope string, rules []rbacv1.PolicyRule) {
		for _, r := range rules {
			if len(r.NonResourceURLs) > 0 {
				t.Errorf("non-resource URLs granted to %s/%s: %v", saNamespace, saName, r.NonResourceURLs)
			}
			names := ""
			if len(r.ResourceNames) > 0 {
				names = "@" + strings.Join(r.ResourceNames, ",")
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						perms[fmt.Sprintf("%s %s/%s%s %s", scope, g, res, names, v)] = true
					}
				}
			}
		}
	}
	for _, b := range only[*rbacv1.ClusterRoleBinding](objs) {
		if !bound(b.Subjects) {
			continue
		}
		r, ok := clusterRoles[b.RoleRef.Name]
		if b.RoleRef.Kind != "ClusterRole" || !ok {
			t.Fatalf("ClusterRoleBinding %s refers to %s %s, which is not rendered", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		add("cluster", r.Rules)
	}
	for _, b := range only[*rbacv1.RoleBinding](objs) {
		if !bound(b.Subjects) {
			continue
		}
		if b.RoleRef.Kind == "ClusterRole" {
			add("namespace", clusterRoles[b.RoleRef.Name].Rules)
			continue
		}
		r, ok := roles[b.Namespace+"/"+b.RoleRef.Name]
		if !ok {
			t.Fatalf("RoleBinding %s/%s refers to Role %s, which is not rendered", b.Namespace, b.Name, b.RoleRef.Name)
		}
		if b.Namespace != saNamespace {
			t.Errorf("RoleBinding %s/%s grants %s/%s rights outside its own namespace", b.Namespace, b.Name, saNamespace, saName)
		}
		add("namespace", r.Rules)
	}
	return perms
}

// grants expands "scope group/resource verb,verb" lines into the set permissions returns.
func grants(lines ...string) map[string]bool {
	out := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		for _, v := range strings.Split(f[2], ",") {
			out[f[0]+" "+f[1]+" "+v] = true
		}
	}
	return out
}

// diffSets lists what is only in a and only in b, sorted.
func diffSets(a, b map[string]bool) (onlyA, onlyB []string) {
	for k := range a {
		if !b[k] {
			onlyA = append(onlyA, k)
		}
	}
	for k := range b {
		if !a[k] {
			onlyB = append(onlyB, k)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}

func deploymentByComponent(t testing.TB, objs []runtime.Object, component string) *appsv1.Deployment {
	t.Helper()
	for _, d := range only[*appsv1.Deployment](objs) {
		if d.Labels["app.kubernetes.io/component"] == component {
			return d
		}
	}
	t.Fatalf("no Deployment of component %s rendered", component)
	return nil
}

func theWebhookConfig(t testing.TB, objs []runtime.Object) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	m := only[*admissionregistrationv1.MutatingWebhookConfiguration](objs)
	if len(m) != 1 {
		t.Fatalf("want one MutatingWebhookConfiguration, got %d", len(m))
	}
	return m[0]
}

func readFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}
