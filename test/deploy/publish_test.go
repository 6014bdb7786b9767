package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/bgp"
)

// bgpBlock is a minimal valid fabric spec.bgp, as YAML flow.
const bgpBlock = `{asn: 64512, routerID: 10.132.2.10, within: [10.131.0.0/16], peers: [{address: 10.132.2.254, asn: 64513}]}`

// statusReader is what the webhook and the auditor need to follow the speaker's status objects
// (bgp.Reader: both watched by name, in the release namespace).
var statusReader = []string{
	"namespace /configmaps@" + bgp.ObjectName + " get,list,watch",
	"namespace coordination.k8s.io/leases@" + bgp.ObjectName + " get,list,watch",
}

// publishGrants is what `dubboreach publish` needs: the route table's informers (routes/cluster),
// leader election (controller-runtime: the Lease and its Events), and the status Writer and the
// leader's retirement (routes/bgp: get/create/update the ConfigMap, get/create/update/delete the Lease).
var publishGrants = []string{
	"cluster /nodes list,watch",
	"cluster crd.projectcalico.org/ipamblocks list,watch",
	"namespace /configmaps create",
	"namespace coordination.k8s.io/leases create",
	"namespace coordination.k8s.io/leases@" + bgp.LeaderElectionID + " get,update",
	"namespace /configmaps@" + bgp.ObjectName + " get,update",
	"namespace coordination.k8s.io/leases@" + bgp.ObjectName + " get,update,delete",
	"namespace /events create,patch",
}

// checkPublishDeployment checks the BGP speaker's Deployment of a variant: `dubboreach publish`
// with leader election tuned for fast takeover, its namespace and identity from the downward
// API, the fabric the chart renders (which must be one publish accepts), the password Secret
// where the fabric's passwordFiles point, replicas on different nodes and a PDB.
func checkPublishDeployment(t *testing.T, objs []runtime.Object, vals string) {
	t.Helper()
	var v values
	if err := yaml.Unmarshal([]byte(vals), &v); err != nil {
		t.Fatal(err)
	}
	d := deploymentByComponent(t, objs, "publish")
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName != "dubboreach-publish" {
		t.Errorf("publish runs as %s", spec.ServiceAccountName)
	}
	if spec.HostNetwork {
		if spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("hostNetwork speaker with dnsPolicy %q, want ClusterFirstWithHostNet", spec.DNSPolicy)
		}
		spec.HostNetwork = false
	}
	checkRestricted(t, "publish", spec)
	wantReplicas := 2
	if v.Publish.Replicas != nil {
		wantReplicas = *v.Publish.Replicas
	}
	if d.Spec.Replicas == nil || int(*d.Spec.Replicas) != wantReplicas {
		t.Errorf("publish replicas %v, want %d", d.Spec.Replicas, wantReplicas)
	}

	c := spec.Containers[0]
	args := c.Args
	for _, want := range []string{"publish", "--fabric=/etc/dubboreach/fabric/fabric.yaml", "--leader-elect=true",
		"--namespace=$(POD_NAMESPACE)", "--identity=$(POD_NAME)"} {
		if !slices.Contains(args, want) {
			t.Errorf("publish args %v lack %s", args, want)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_NAMESPACE"] != "metadata.namespace" || env["POD_NAME"] != "metadata.name" {
		t.Errorf("POD_NAMESPACE and POD_NAME do not come from the downward API: %v", env)
	}
	// Leader election: faster than controller-runtime's 15s/10s/2s, and valid for client-go
	// (leaseDuration > renewDeadline > 1.2 x retryPeriod).
	dur := func(flag string) time.Duration {
		for _, a := range args {
			if s, ok := strings.CutPrefix(a, flag+"="); ok {
				d, err := time.ParseDuration(s)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				return d
			}
		}
		t.Fatalf("publish args %v lack %s", args, flag)
		return 0
	}
	lease, renew, retry := dur("--leader-elect-lease-duration"), dur("--leader-elect-renew-deadline"), dur("--leader-elect-retry-period")
	if !(lease > renew && float64(renew) > 1.2*float64(retry)) {
		t.Errorf("leader election %v/%v/%v: client-go refuses it (want lease > renew > 1.2 x retry)", lease, renew, retry)
	}
	if lease >= 15*time.Second || retry >= 2*time.Second {
		t.Errorf("leader election %v/%v/%v is no faster than the defaults (15s/10s/2s)", lease, renew, retry)
	}
	if st, si := dur("--status-lease"), dur("--status-interval"); si >= st {
		t.Errorf("--status-interval %v not shorter than --status-lease %v: publish refuses it", si, st)
	}
	for _, port := range []string{"metrics", "health"} {
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == port }) {
			t.Errorf("publish container lacks port %s: %+v", port, c.Ports)
		}
	}
	if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.String() != "health" {
		t.Errorf("publish readiness probe is not /readyz on the health port: %+v", c.ReadinessProbe)
	}

	// The fabric it reads is the one the chart renders, and publish accepts it.
	var fabricCM string
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
		if !m.ReadOnly && m.Name != "tmp" {
			t.Errorf("publish mounts %s writable", m.Name)
		}
	}
	var secret *corev1.SecretVolumeSource
	for _, vol := range spec.Volumes {
		switch {
		case vol.ConfigMap != nil && mounts[vol.Name] == "/etc/dubboreach/fabric":
			fabricCM = vol.ConfigMap.Name
		case vol.Secret != nil && mounts[vol.Name] == "/etc/dubboreach/bgp":
			secret = vol.Secret
		}
	}
	var fab *routes.Fabric
	for _, cm := range only[*corev1.ConfigMap](objs) {
		if cm.Name == fabricCM {
			f, err := routes.ParseFabric("fabric.yaml", []byte(cm.Data["fabric.yaml"]))
			if err != nil {
				t.Fatalf("the fabric the speaker reads is refused: %v", err)
			}
			fab = f
		}
	}
	if fab == nil {
		t.Fatalf("publish reads ConfigMap %q, which the chart does not render", fabricCM)
	}
	if fab.Publish != routes.PublishBGP || fab.BGP == nil {
		t.Errorf("the speaker's fabric has publish %q and spec.bgp %v: publish exits on it", fab.Publish, fab.BGP)
	}
	for _, p := range fab.BGP.Peers {
		if p.PasswordFile == "" {
			continue
		}
		if secret == nil || !strings.HasPrefix(p.PasswordFile, "/etc/dubboreach/bgp/") {
			t.Errorf("peer %s's password file %s is not in a mounted Secret (%+v)", p.Address, p.PasswordFile, secret)
		} else if secret.SecretName != "bgp-passwords" || secret.DefaultMode == nil || *secret.DefaultMode != 0o400 {
			t.Errorf("password Secret volume %+v, want publish.passwords.existingSecret bgp-passwords readable by the owner only", secret)
		}
	}
	if fab.BGP.ListenPort != 0 && !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == "bgp" && int(p.ContainerPort) == fab.BGP.ListenPort
	}) {
		t.Errorf("spec.bgp.listenPort %d is not a container port named bgp: %+v", fab.BGP.ListenPort, c.Ports)
	}

	// Two replicas never share a node (a standby on the leader's node dies with it), and a drain
	// evicts one at a time.
	aff := spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Fatalf("publish has no required pod anti-affinity: %+v", aff)
	}
	term := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || term.TopologyKey != corev1.LabelHostname {
		t.Errorf("publish anti-affinity does not keep its own pods on different hosts: %+v", term)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 {
		t.Errorf("publish rolls with a surge pod, which required anti-affinity may leave unschedulable: %+v", d.Spec.Strategy)
	}
	var pdb *policyv1.PodDisruptionBudget
	for _, p := range only[*policyv1.PodDisruptionBudget](objs) {
		if p.Labels["app.kubernetes.io/component"] == "publish" {
			pdb = p
		}
	}
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget for publish")
	}
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !psel.Matches(labels.Set(d.Spec.Template.Labels)) || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("publish PDB %+v: want minAvailable 1 over the speaker pods", pdb.Spec)
	}
	// Its metrics are scraped from every replica when ServiceMonitors are on.
	for _, s := range only[*corev1.Service](objs) {
		if s.Labels["app.kubernetes.io/component"] == "publish" {
			if s.Spec.ClusterIP != corev1.ClusterIPNone || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("publish Service %s: want a headless Service over the speaker pods, got %+v", s.Name, s.Spec)
			}
			return
		}
	}
	t.Error("no metrics Service for publish")
}

// TestChartPublishFabricModes: publish.enabled renders the speaker for publish: bgp only; the
// refusals are in TestChartSchemaRejectsBadValues. With an existing fabric ConfigMap the chart
// cannot read the mode, so it renders the speaker and leaves the check to the process.
func TestChartPublishFabricModes(t *testing.T) {
	objs := typed(t, render(t, `{publish: {enabled: true}, fabric: {existingConfigMap: my-fabric}}`))
	d := deploymentByComponent(t, objs, "publish")
	if v := d.Spec.Template.Spec.Volumes[0]; v.ConfigMap == nil || v.ConfigMap.Name != "my-fabric" {
		t.Errorf("publish does not read fabric.existingConfigMap: %+v", v)
	}
	for _, vol := range d.Spec.Template.Spec.Volumes {
		if vol.Secret != nil {
			t.Errorf("a password Secret is mounted without publish.passwords.existingSecret: %+v", vol)
		}
	}
	for _, c := range []string{"webhook", "audit"} {
		got := permissions(t, objs, releaseNamespace, "dubboreach-"+c)
		for _, l := range statusReader {
			for k := range grants(l) {
				if !got[k] {
					t.Errorf("%s cannot read the speaker's status (%s)", c, k)
				}
			}
		}
	}
}

// TestChartPublishCreatePolicy: with publish.enabled the speaker's create policy and its binding
// are rendered (TestPublishRBAC enforces them), and publish.createPolicy=false drops both.
func TestChartPublishCreatePolicy(t *testing.T) {
	count := func(values string) (policies, bindings int, bound string) {
		for _, u := range render(t, values) {
			if u.GetLabels()["app.kubernetes.io/component"] != "publish" {
				continue
			}
			switch u.GetKind() {
			case "ValidatingAdmissionPolicy":
				policies++
				bound = u.GetName()
			case "ValidatingAdmissionPolicyBinding":
				bindings++
				if name, _, _ := unstructured.NestedString(u.Object, "spec", "policyName"); name != bound && bound != "" {
					t.Errorf("binding %s binds %s, not the policy %s", u.GetName(), name, bound)
				}
			}
		}
		return policies, bindings, bound
	}
	if p, b, name := count(publishValues); p != 1 || b != 1 || name != "dubboreach-publish-creates" {
		t.Errorf("publish.enabled: %d policies, %d bindings (%s), want the policy dubboreach-publish-creates and its binding", p, b, name)
	}
	if p, b, _ := count(strings.Replace(publishValues, "passwords: {existingSecret: bgp-passwords}", "passwords: {existingSecret: bgp-passwords}\n  createPolicy: false", 1)); p+b != 0 {
		t.Errorf("publish.createPolicy=false: %d policies and %d bindings rendered", p, b)
	}
}
