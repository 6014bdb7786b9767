package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestNodeLabelPolicy installs the chart's webhook RBAC and its ValidatingAdmissionPolicy in a
// real kube-apiserver and acts as the webhook's ServiceAccount: RBAC's nodes/patch would let it
// change anything on any node, the policy lets it change only the dubboreach.io/pod-route
// label, to published or missing. Other users are not affected.
func TestNodeLabelPolicy(t *testing.T) {
	env := apiServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := env.Client

	const sa = "system:serviceaccount:" + releaseNamespace + ":dubboreach-webhook"
	var installed []client.Object
	for _, u := range render(t, "") {
		switch u.GetKind() {
		case "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterRole", "ClusterRoleBinding":
		default:
			continue
		}
		if u.GetLabels()["app.kubernetes.io/component"] != "webhook" {
			continue
		}
		obj := u.DeepCopy()
		if err := admin.Create(ctx, obj); err != nil {
			t.Fatalf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		installed = append(installed, obj)
	}
	if len(installed) < 4 {
		t.Fatalf("the chart rendered %d of the policy, its binding, the webhook ClusterRole and ClusterRoleBinding", len(installed))
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "policy-node", Labels: map[string]string{"zone": "a"},
		Annotations: map[string]string{"team": "net"}}}
	if err := admin.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, o := range append(installed, node) {
			if err := admin.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s: %v", o.GetName(), err)
			}
		}
	})

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: sa, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	webhook, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(c client.Client, p string) error {
		return c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node.Name}}, client.RawPatch(types.MergePatchType, []byte(p)))
	}

	// The API server compiles a new policy and starts enforcing it a little later.
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := patch(webhook, `{"metadata":{"labels":{"zone":"b"}}}`)
		if err != nil && strings.Contains(err.Error(), "may only change the dubboreach.io/pod-route label") {
			break
		}
		if err == nil {
			// Enforcement has not started: put the label back and try again.
			if err := patch(admin, `{"metadata":{"labels":{"zone":"a"}}}`); err != nil {
				t.Fatal(err)
			}
		} else if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Fatalf("patch as the webhook: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy was not enforced within 90s (last: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, c := range []struct {
		name, patch, deny string
	}{
		{"set the pod-route label", `{"metadata":{"labels":{"dubboreach.io/pod-route":"published"}}}`, ""},
		{"flip the pod-route label", `{"metadata":{"labels":{"dubboreach.io/pod-route":"missing"}}}`, ""},
		{"another label", `{"metadata":{"labels":{"evil":"yes"}}}`, "may only change the dubboreach.io/pod-route label"},
		{"remove a label", `{"metadata":{"labels":{"zone":null}}}`, "may not remove a node's labels"},
		{"a bad pod-route value", `{"metadata":{"labels":{"dubboreach.io/pod-route":"yes"}}}`, "published or missing"},
		{"an annotation", `{"metadata":{"annotations":{"team":"evil"}}}`, "may not change a node's annotations"},
		{"a taint", `{"spec":{"taints":[{"key":"evil","effect":"NoSchedule"}]}}`, "may not change a node's spec"},
		{"cordon", `{"spec":{"unschedulable":true}}`, "may not change a node's spec"},
		{"remove the pod-route label", `{"metadata":{"labels":{"dubboreach.io/pod-route":null}}}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := patch(webhook, c.patch)
			switch {
			case c.deny == "" && err != nil:
				t.Errorf("the webhook may %s, but: %v", c.name, err)
			case c.deny != "" && err == nil:
				t.Errorf("the webhook could %s: the policy let it through", c.name)
			case c.deny != "" && !strings.Contains(err.Error(), c.deny):
				t.Errorf("%s refused, but not by the policy's message %q: %v", c.name, c.deny, err)
			}
		})
	}
	t.Run("other users are not bound by it", func(t *testing.T) {
		if err := patch(admin, `{"metadata":{"labels":{"zone":"c"},"annotations":{"team":"ops"}},"spec":{"unschedulable":true}}`); err != nil {
			t.Errorf("an administrator's node edit was refused: %v", err)
		}
	})
	var got corev1.Node
	if err := admin.Get(ctx, client.ObjectKey{Name: node.Name}, &got); err != nil {
		t.Fatal(err)
	}
	evilTaint := slices.ContainsFunc(got.Spec.Taints, func(t corev1.Taint) bool { return t.Key == "evil" })
	if got.Labels["evil"] != "" || got.Annotations["team"] == "evil" || evilTaint {
		t.Errorf("a refused change reached the node: %s", fmt.Sprint(got.Labels, got.Annotations, got.Spec.Taints))
	}
}
