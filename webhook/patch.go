package webhook

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// PatchOp is one RFC 6902 operation. The webhook writes its own operations instead of diffing
// the whole pod: they touch only what it changes (so fields this binary's API types do not
// know survive), and they cost nothing to compute.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// pointerEscape escapes a JSON pointer token (RFC 6901).
func pointerEscape(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// appendEnvPatch adds vars to a container's env. An absent, null or empty env is set whole
// ("add" replaces an existing member); otherwise each variable is appended at the end, after
// the pod's own variables, so $(VAR) references in them keep working.
func appendEnvPatch(patch []PatchOp, t target, vars []corev1.EnvVar) []PatchOp {
	if len(vars) == 0 {
		return patch
	}
	if len(t.c.Env) == 0 {
		return append(patch, PatchOp{Op: "add", Path: t.path + "/env", Value: vars})
	}
	for _, v := range vars {
		patch = append(patch, PatchOp{Op: "add", Path: t.path + "/env/-", Value: v})
	}
	return patch
}

// appendAnnotationPatch sets one annotation, creating the map if the pod has none. Nothing is
// added when the value is already there, so that a second pass produces an empty patch.
func appendAnnotationPatch(patch []PatchOp, pod *corev1.Pod, key, value string) []PatchOp {
	if old, ok := pod.Annotations[key]; ok && old == value {
		return patch
	}
	if len(pod.Annotations) == 0 {
		return append(patch, PatchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]string{key: value}})
	}
	return append(patch, PatchOp{Op: "add", Path: "/metadata/annotations/" + pointerEscape(key), Value: value})
}

// routableRequirement pins a pod to nodes whose pod routes the fabric carries.
var routableRequirement = corev1.NodeSelectorRequirement{Key: LabelPodRoute, Operator: corev1.NodeSelectorOpIn, Values: []string{PodRoutePublished}}

const requiredPath = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"

// appendAffinityPatch adds the routable-node requirement to the pod's required node affinity
// without disturbing what is there. Node selector terms are ORed, so the requirement goes into
// every term (ANDed with the term's own expressions); terms that have it already are left alone.
// The merged node selector replaces the old one as a whole: it holds only terms of plain
// expressions and fields, and replacing it stays correct even for odd input (null terms).
func appendAffinityPatch(patch []PatchOp, pod *corev1.Pod) []PatchOp {
	term := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{routableRequirement}}
	required := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}}
	a := pod.Spec.Affinity
	switch {
	case a == nil:
		return append(patch, PatchOp{Op: "add", Path: "/spec/affinity", Value: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}}})
	case a.NodeAffinity == nil:
		return append(patch, PatchOp{Op: "add", Path: "/spec/affinity/nodeAffinity", Value: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}})
	case a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
		len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 0:
		return append(patch, PatchOp{Op: "add", Path: requiredPath, Value: required})
	}
	merged := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.DeepCopy()
	changed := false
	for i := range merged.NodeSelectorTerms {
		t := &merged.NodeSelectorTerms[i]
		// An empty term matches no node; with the requirement it would match every published
		// node and widen the pod's placement.
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			continue
		}
		if !hasRequirement(t.MatchExpressions) {
			t.MatchExpressions = append(t.MatchExpressions, routableRequirement)
			changed = true
		}
	}
	if !changed {
		return patch
	}
	return append(patch, PatchOp{Op: "add", Path: requiredPath, Value: merged})
}

func hasRequirement(exprs []corev1.NodeSelectorRequirement) bool {
	for _, e := range exprs {
		if e.Key == LabelPodRoute && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 && e.Values[0] == PodRoutePublished {
			return true
		}
	}
	return false
}
