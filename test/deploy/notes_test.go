package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// notes renders the chart's NOTES.txt for values. helm template skips NOTES and a dry-run
// install needs an API server whose version satisfies the chart's kubeVersion (ours, built from
// the Go modules, says v0.0.0), so a copy of the chart renders them as a ConfigMap's data.
func notes(t *testing.T, values string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dubboreach")
	if err := os.CopyFS(dir, os.DirFS(chartDir(t))); err != nil {
		t.Fatal(err)
	}
	tpl := filepath.Join(dir, "templates")
	body, err := os.ReadFile(filepath.Join(tpl, "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"_notes_test.tpl": `{{- define "notesForTest" -}}` + string(body) + `{{- end }}`,
		"notes-test.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ include \"notesForTest\" . | toJson }}\n",
	} {
		if err := os.WriteFile(filepath.Join(tpl, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(tpl, "NOTES.txt")); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := helm(t, "template", releaseName, dir, "--namespace", releaseNamespace, "--kube-version", kubeVersion,
		"-f", valuesFile(t, values), "--show-only", "templates/notes-test.yaml")
	if err != nil {
		t.Fatalf("helm template (NOTES): %v\n%s", err, stderr)
	}
	objs := splitYAML(t, out)
	n, _, _ := unstructured.NestedString(objs[0].Object, "data", "notes")
	if n == "" {
		t.Fatalf("no NOTES rendered:\n%s", out)
	}
	return n
}

// TestChartNotesPublish: publish: bgp without the speaker is installed, with a warning that
// nothing announces; with the speaker the NOTES say where its status is.
func TestChartNotesPublish(t *testing.T) {
	const warning = "WARNING: fabric.spec.podRoutes.publish is bgp but publish.enabled is false"
	n := notes(t, variantValues(t, "created-secret-with-digest")) // publish: bgp, speaker off
	if !strings.Contains(n, warning) || !strings.Contains(n, "every pod route reads unpublished") {
		t.Errorf("publish: bgp without publish.enabled: the NOTES do not warn:\n%s", n)
	}
	n = notes(t, publishValues)
	if strings.Contains(n, "WARNING") || !strings.Contains(n, "get configmap dubboreach-bgp") {
		t.Errorf("publish.enabled: the NOTES do not show the speaker's status:\n%s", n)
	}
	if n := notes(t, ""); strings.Contains(n, "BGP") {
		t.Errorf("publish: static: the NOTES talk about BGP:\n%s", n)
	}
}
