package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/dubboreach/dubboreach/routes"
)

// kustomizeDefaultWithPublish builds config/default with config/publish added as its comment
// says (uncommenting `components`), from a copy of config/.
func kustomizeDefaultWithPublish(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot(t), "config"))); err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(dir, "default", "kustomization.yaml")
	data, err := os.ReadFile(k)
	if err != nil {
		t.Fatal(err)
	}
	on := strings.Replace(string(data), "# components:\n#   - ../publish\n", "components:\n  - ../publish\n", 1)
	if on == string(data) {
		t.Fatal("config/default/kustomization.yaml lacks the commented-out `components: [../publish]`")
	}
	if err := os.WriteFile(k, []byte(on), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default with components [../publish]: %v", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return splitYAML(t, string(out))
}

// TestKustomizePublish: config/publish is not in config/default's build; added as a Component,
// it is the chart's publish.enabled=true: the same Deployment, PDB, Service and permissions,
// the webhook and auditor unchanged, one fabric (publish: bgp, which publish accepts) for all,
// and the API server accepts it.
func TestKustomizePublish(t *testing.T) {
	for _, u := range kustomizeBuild(t, "default") {
		if u.GetLabels()["app.kubernetes.io/component"] == "publish" {
			t.Errorf("config/default builds %s %s of the BGP speaker without config/publish", u.GetKind(), u.GetName())
		}
	}
	raw := kustomizeDefaultWithPublish(t)
	objs := typed(t, raw)
	chart := typed(t, render(t, publishValues))
	base := typed(t, kustomizeBuild(t, "default"))

	checkPublishDeployment(t, objs, "")
	for _, comp := range []string{"webhook", "audit", "publish"} {
		got := permissions(t, objs, releaseNamespace, "dubboreach-"+comp)
		want := permissions(t, chart, releaseNamespace, "dubboreach-"+comp)
		if extra, missing := diffSets(got, want); len(extra)+len(missing) > 0 {
			t.Errorf("%s: kustomize with config/publish grants %v more and %v less than the chart with publish.enabled", comp, extra, missing)
		}
	}
	for _, comp := range []string{"webhook", "audit"} {
		got, want := deploymentByComponent(t, objs, comp), deploymentByComponent(t, base, comp)
		if !equality.Semantic.DeepEqual(got.Spec.Template.Spec.Containers, want.Spec.Template.Spec.Containers) {
			t.Errorf("config/publish changes the %s containers", comp)
		}
	}

	g, w := deploymentByComponent(t, objs, "publish"), deploymentByComponent(t, chart, "publish")
	if *g.Spec.Replicas != *w.Spec.Replicas || !equality.Semantic.DeepEqual(g.Spec.Strategy, w.Spec.Strategy) ||
		!equality.Semantic.DeepEqual(g.Spec.Template.Spec.SecurityContext, w.Spec.Template.Spec.SecurityContext) ||
		!equality.Semantic.DeepEqual(g.Spec.Template.Spec.TerminationGracePeriodSeconds, w.Spec.Template.Spec.TerminationGracePeriodSeconds) {
		t.Errorf("publish Deployment spec differs from the chart's")
	}
	gc, wc := g.Spec.Template.Spec.Containers[0], w.Spec.Template.Spec.Containers[0]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"image", gc.Image, wc.Image},
		{"args", gc.Args, wc.Args},
		{"env", gc.Env, wc.Env},
		{"ports", gc.Ports, wc.Ports},
		{"probes", []any{gc.StartupProbe, gc.LivenessProbe, gc.ReadinessProbe}, []any{wc.StartupProbe, wc.LivenessProbe, wc.ReadinessProbe}},
		{"resources", gc.Resources, wc.Resources},
		{"securityContext", gc.SecurityContext, wc.SecurityContext},
		{"volumeMounts", gc.VolumeMounts, wc.VolumeMounts},
	} {
		if !equality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("publish container %s differ:\nkustomize %+v\nchart     %+v", c.what, c.got, c.want)
		}
	}

	// One fabric for every component, and the speaker accepts it.
	fabricOf := func(comp string) string {
		for _, v := range deploymentByComponent(t, objs, comp).Spec.Template.Spec.Volumes {
			if v.Name == "fabric" && v.ConfigMap != nil {
				return v.ConfigMap.Name
			}
		}
		t.Fatalf("%s mounts no fabric ConfigMap", comp)
		return ""
	}
	if p := fabricOf("publish"); p != fabricOf("webhook") || p != fabricOf("audit") {
		t.Errorf("the components read different fabrics: publish %s, webhook %s, audit %s", p, fabricOf("webhook"), fabricOf("audit"))
	}
	baseFabric := ""
	for _, v := range deploymentByComponent(t, base, "webhook").Spec.Template.Spec.Volumes {
		if v.Name == "fabric" && v.ConfigMap != nil {
			baseFabric = v.ConfigMap.Name
		}
	}
	for _, c := range []struct {
		objs []runtime.Object
		name string
		want routes.Publish
	}{{base, baseFabric, routes.PublishStatic}, {objs, fabricOf("publish"), routes.PublishBGP}} {
		var found bool
		for _, cm := range only[*corev1.ConfigMap](c.objs) {
			if cm.Name != c.name {
				continue
			}
			found = true
			f, err := routes.ParseFabric(cm.Name, []byte(cm.Data["fabric.yaml"]))
			if err != nil || f.Publish != c.want || (c.want == routes.PublishBGP) != (f.BGP != nil) {
				t.Errorf("fabric %s: want publish %s (%v)", cm.Name, c.want, err)
			}
		}
		if !found {
			t.Errorf("fabric ConfigMap %q not built", c.name)
		}
	}

	// The speaker's create policy is the chart's.
	policy := func(objs []*unstructured.Unstructured, kind string) (string, any) {
		for _, u := range objs {
			if u.GetKind() == kind && u.GetLabels()["app.kubernetes.io/component"] == "publish" {
				return u.GetName(), u.Object["spec"]
			}
		}
		t.Fatalf("no %s of publish built", kind)
		return "", nil
	}
	chartRaw := render(t, publishValues)
	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		gn, got := policy(raw, kind)
		wn, want := policy(chartRaw, kind)
		if gn != wn || !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("%s differs from the chart's:\nkustomize %s %v\nchart     %s %v", kind, gn, got, wn, want)
		}
	}

	t.Run("dry-run", func(t *testing.T) {
		dryRunCreate(t, apiServer(t).Client, releaseNamespace, raw)
	})
}
