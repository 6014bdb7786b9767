package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild builds a kustomization under config/ with the kustomize Go API, the same as
// `kubectl apply -k`.
func kustomizeBuild(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), "config", dir))
	if err != nil {
		t.Fatalf("kustomize build config/%s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return splitYAML(t, string(out))
}

// TestKustomizeDefault builds config/default, dry-run applies it to the API server and checks it
// is the same system as the chart's defaults: the same permissions per component, the same
// webhook configuration, certificate chain and containers.
func TestKustomizeDefault(t *testing.T) {
	raw := kustomizeBuild(t, "default")
	objs := typed(t, raw)
	for _, u := range raw {
		if ns := u.GetNamespace(); ns != "" && ns != releaseNamespace {
			t.Errorf("%s %s in namespace %s, want %s", u.GetKind(), u.GetName(), ns, releaseNamespace)
		}
	}
	chart := typed(t, render(t, `metrics: {prometheusRule: {enabled: true}, grafanaDashboard: {enabled: true}}`))

	t.Run("rbac", func(t *testing.T) {
		for _, comp := range []string{"webhook", "audit"} {
			got := permissions(t, objs, releaseNamespace, "dubboreach-"+comp)
			want := permissions(t, chart, releaseNamespace, "dubboreach-"+comp)
			if extra, missing := diffSets(got, want); len(extra)+len(missing) > 0 {
				t.Errorf("%s: kustomize grants %v more and %v less than the chart", comp, extra, missing)
			}
			if sa := deploymentByComponent(t, objs, comp).Spec.Template.Spec.ServiceAccountName; sa != "dubboreach-"+comp {
				t.Errorf("%s runs as %s", comp, sa)
			}
		}
	})

	t.Run("webhook-configuration", func(t *testing.T) {
		got, want := theWebhookConfig(t, objs), theWebhookConfig(t, chart)
		gw, ww := got.Webhooks[0].DeepCopy(), want.Webhooks[0].DeepCopy()
		svcName := gw.ClientConfig.Service.Name
		gw.ClientConfig.Service.Name, ww.ClientConfig.Service.Name = "", ""
		if !equality.Semantic.DeepEqual(gw, ww) {
			t.Errorf("webhooks differ:\nkustomize %+v\nchart     %+v", gw, ww)
		}
		var svc *corev1.Service
		for _, s := range only[*corev1.Service](objs) {
			if s.Name == svcName {
				svc = s
			}
		}
		if svc == nil || svc.Namespace != gw.ClientConfig.Service.Namespace {
			t.Fatalf("the webhook calls Service %s/%s, which is not built", gw.ClientConfig.Service.Namespace, svcName)
		}
		// The Service reaches the webhook pods' webhook port.
		d := deploymentByComponent(t, objs, "webhook")
		for k, v := range svc.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("webhook Service selector %v does not select the webhook pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
			}
		}
		var servingName string
		for _, c := range only[*certmanagerv1.Certificate](objs) {
			if !c.Spec.IsCA {
				servingName = c.Namespace + "/" + c.Name
				if !slices.Contains(c.Spec.DNSNames, svc.Name+"."+svc.Namespace+".svc") {
					t.Errorf("serving Certificate dnsNames %v do not name the Service %s.%s.svc", c.Spec.DNSNames, svc.Name, svc.Namespace)
				}
				vol := d.Spec.Template.Spec.Volumes[0]
				if vol.Secret == nil || vol.Secret.SecretName != c.Spec.SecretName {
					t.Errorf("webhook mounts %+v, not the serving Secret %s", vol, c.Spec.SecretName)
				}
			}
		}
		if got.Annotations["cert-manager.io/inject-ca-from"] != servingName {
			t.Errorf("inject-ca-from %q, serving Certificate %s", got.Annotations["cert-manager.io/inject-ca-from"], servingName)
		}
	})

	t.Run("certificates", func(t *testing.T) {
		shape := func(objs []runtime.Object) (issuers []string, certs []string) {
			for _, i := range only[*certmanagerv1.Issuer](objs) {
				switch {
				case i.Spec.SelfSigned != nil:
					issuers = append(issuers, "selfSigned")
				case i.Spec.CA != nil:
					issuers = append(issuers, "ca")
				}
			}
			for _, c := range only[*certmanagerv1.Certificate](objs) {
				kind := "serving"
				if c.Spec.IsCA {
					kind = "ca"
				}
				certs = append(certs, kind+" "+c.Spec.Duration.String()+" by "+c.Spec.IssuerRef.Kind)
			}
			slices.Sort(issuers)
			slices.Sort(certs)
			return issuers, certs
		}
		gi, gc := shape(objs)
		wi, wc := shape(chart)
		if !slices.Equal(gi, wi) || !slices.Equal(gc, wc) {
			t.Errorf("certificate chain differs: kustomize %v %v, chart %v %v", gi, gc, wi, wc)
		}
		// Every issuerRef names an Issuer that is built, and the CA Issuer uses the CA's Secret.
		issuers := map[string]*certmanagerv1.Issuer{}
		for _, i := range only[*certmanagerv1.Issuer](objs) {
			issuers[i.Name] = i
		}
		for _, c := range only[*certmanagerv1.Certificate](objs) {
			i := issuers[c.Spec.IssuerRef.Name]
			if i == nil {
				t.Fatalf("Certificate %s refers to Issuer %s, which is not built", c.Name, c.Spec.IssuerRef.Name)
			}
			if c.Spec.IsCA != (i.Spec.SelfSigned != nil) {
				t.Errorf("Certificate %s (isCA %v) issued by %s", c.Name, c.Spec.IsCA, i.Name)
			}
		}
	})

	t.Run("containers", func(t *testing.T) {
		for _, comp := range []string{"webhook", "audit"} {
			g := deploymentByComponent(t, objs, comp)
			w := deploymentByComponent(t, chart, comp)
			if *g.Spec.Replicas != *w.Spec.Replicas {
				t.Errorf("%s replicas %d, chart %d", comp, *g.Spec.Replicas, *w.Spec.Replicas)
			}
			if !equality.Semantic.DeepEqual(g.Spec.Template.Spec.SecurityContext, w.Spec.Template.Spec.SecurityContext) {
				t.Errorf("%s pod securityContext differs", comp)
			}
			// (The webhook's anti-affinity selects its pods by other labels; checkWebhookDeployment checks it.)
			if comp == "audit" && !equality.Semantic.DeepEqual(g.Spec.Template.Spec.Affinity, w.Spec.Template.Spec.Affinity) {
				t.Errorf("%s affinity differs", comp)
			}
			gc, wc := g.Spec.Template.Spec.Containers[0], w.Spec.Template.Spec.Containers[0]
			for _, c := range []struct {
				what      string
				got, want any
			}{
				{"image", gc.Image, wc.Image},
				{"args", gc.Args, wc.Args},
				{"ports", gc.Ports, wc.Ports},
				{"probes", []any{gc.StartupProbe, gc.LivenessProbe, gc.ReadinessProbe}, []any{wc.StartupProbe, wc.LivenessProbe, wc.ReadinessProbe}},
				{"resources", gc.Resources, wc.Resources},
				{"securityContext", gc.SecurityContext, wc.SecurityContext},
				{"volumeMounts", gc.VolumeMounts, wc.VolumeMounts},
			} {
				if !equality.Semantic.DeepEqual(c.got, c.want) {
					t.Errorf("%s container %s differ:\nkustomize %+v\nchart     %+v", comp, c.what, c.got, c.want)
				}
			}
		}
		checkWebhookDeployment(t, objs)
		checkAuditDeployment(t, objs, "")
	})

	t.Run("monitoring", func(t *testing.T) {
		got, want := only[*monitoringv1.PrometheusRule](objs), only[*monitoringv1.PrometheusRule](chart)
		if len(got) != 1 || !equality.Semantic.DeepEqual(got[0].Spec, want[0].Spec) {
			t.Errorf("config/default's PrometheusRule (%d) differs from the chart's", len(got))
		}
		var dashboards int
		for _, cm := range only[*corev1.ConfigMap](objs) {
			if cm.Labels["grafana_dashboard"] == "1" {
				dashboards++
			}
		}
		if dashboards != 1 {
			t.Errorf("%d Grafana dashboard ConfigMaps, want 1", dashboards)
		}
	})

	t.Run("node-label-policy", func(t *testing.T) {
		spec := func(objs []*unstructured.Unstructured, kind string) (string, any) {
			for _, u := range objs {
				if u.GetKind() == kind {
					return u.GetName(), u.Object["spec"]
				}
			}
			t.Fatalf("no %s built", kind)
			return "", nil
		}
		chartRaw := render(t, "")
		for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
			gn, got := spec(raw, kind)
			wn, want := spec(chartRaw, kind)
			if gn != wn || !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("%s differs from the chart's:\nkustomize %s %v\nchart     %s %v", kind, gn, got, wn, want)
			}
		}
	})

	t.Run("dry-run", func(t *testing.T) {
		dryRunCreate(t, apiServer(t).Client, releaseNamespace, raw)
	})
}

// TestKustomizeEvictionAndSamples: config/rbac/eviction.yaml grants exactly what the chart
// grants with audit.fix=[evict]; config/samples builds and is accepted by the API server.
func TestKustomizeEvictionAndSamples(t *testing.T) {
	evict := typed(t, splitYAMLFile(t, filepath.Join(repoRoot(t), "config", "rbac", "eviction.yaml")))
	base := typed(t, kustomizeBuild(t, "rbac"))
	got := permissions(t, append(base, evict...), "system", "audit")
	chart := typed(t, render(t, variantValues(t, "fix-evict")))
	want := permissions(t, chart, releaseNamespace, "dubboreach-audit")
	if extra, missing := diffSets(got, want); len(extra)+len(missing) > 0 {
		t.Errorf("config/rbac + eviction.yaml grant %v more and %v less than the chart with fix evict", extra, missing)
	}

	samples := kustomizeBuild(t, "samples")
	var ns *corev1.Namespace
	for _, o := range typed(t, samples) {
		if n, ok := o.(*corev1.Namespace); ok {
			ns = n
		}
	}
	if ns == nil || ns.Labels["dubboreach.io/inject"] != "enabled" {
		t.Fatalf("the sample namespace is not labelled for injection: %+v", ns)
	}
	dryRunCreate(t, apiServer(t).Client, ns.Name, samples)
}

func splitYAMLFile(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return splitYAML(t, data)
}

// TestKustomizeNamespaceFollows: changing the namespace in config/default (as users do) moves
// the strings that must name it too: the webhook's own namespace stays excluded from mutation,
// and the node-label policy binds the webhook's ServiceAccount in the new namespace.
func TestKustomizeNamespaceFollows(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot(t), "config"))); err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(dir, "default", "kustomization.yaml")
	data, err := os.ReadFile(k)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(data), "namespace: dubboreach-system", "namespace: shop-infra", 1)
	if moved == string(data) {
		t.Fatal("config/default/kustomization.yaml sets no namespace: dubboreach-system")
	}
	if err := os.WriteFile(k, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "default"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs := splitYAML(t, string(out))
	for _, u := range objs {
		switch u.GetKind() {
		case "MutatingWebhookConfiguration":
			sel, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			b, _ := json.Marshal(sel)
			if !strings.Contains(string(b), `"shop-infra"`) || strings.Contains(string(b), "dubboreach-system") {
				t.Errorf("the webhook's namespace selector does not exclude the new namespace: %s", b)
			}
		case "ValidatingAdmissionPolicy":
			b, _ := json.Marshal(u.Object["spec"])
			if !strings.Contains(string(b), "system:serviceaccount:shop-infra:dubboreach-webhook") || strings.Contains(string(b), "dubboreach-system") {
				t.Errorf("the node-label policy does not name the webhook's ServiceAccount in the new namespace: %s", b)
			}
		}
	}
}
