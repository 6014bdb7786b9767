package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dubboreach/dubboreach/webhook/server"
)

// variants are the values the chart is rendered, linted and dry-run applied with.
var variants = []struct {
	name   string
	values string
}{
	{"default", ``},
	{"existing-issuer", `
certManager:
  issuerRef: {name: corp-ca, kind: ClusterIssuer}
`},
	{"prometheus", `
metrics:
  serviceMonitor: {enabled: true, labels: {release: kube-prometheus-stack}, interval: 15s}
  prometheusRule:
    enabled: true
    labels: {release: kube-prometheus-stack}
    additionalRuleLabels: {team: platform, severity: ignored}
    alerts:
      webhookDown: {enabled: false}
      unreachableProviders: {enabled: true, for: 5m, severity: warning}
  grafanaDashboard: {enabled: true}
`},
	{"networkpolicy", `
networkPolicy:
  enabled: true
  from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: monitoring}
  webhookFrom:
    - ipBlock: {cidr: 10.0.0.0/24}
`},
	{"fix-evict", `
audit:
  fix: [evict, disable]
  dryRun: true
`},
	{"fix-prune", `
audit:
  fix: [prune, disable]
  fixBackup: {existingClaim: dubboreach-backups}
`},
	{"no-cert-manager", `
certManager: {enabled: false}
webhook:
  failurePolicy: Fail
  tls: {existingSecret: my-webhook-tls, caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==}
`},
	{"existing-config-and-secret", `
calico: {enabled: false}
fabric: {existingConfigMap: my-fabric}
audit:
  zookeeper: {existingSecret: my-zk, serversKey: connect, digestKey: auth}
webhook:
  replicas: 3
  requireRoutableNode: true
  enableHTTP2: true
  podDisruptionBudget: {minAvailable: 2}
`},
	{"created-secret-with-digest", `
fabric:
  spec:
    reachable: [10.132.2.0/24]
    serviceCIDR: 10.96.0.0/12
    podRoutes: {source: calico, nextHop: InternalIP, publish: bgp, installed: []}
    bgp: {asn: 64512, routerID: 10.132.2.10, within: [10.131.0.0/16], peers: [{address: 10.132.2.254, asn: 64513}]}
audit:
  zookeeper: {servers: "zk-0.zk:2181,zk-1.zk:2181/prod", digest: "dubbo:s3cret"}
`},
	{"host-network", `
webhook: {hostNetwork: true, port: 10260, metricsPort: 10261, healthPort: 10262}
`},
	{"webhook-only", `
audit: {enabled: false}
`},
	{"audit-only", `
webhook: {enabled: false}
`},
	{"publish", publishValues},
	{"publish-host-network", `
fabric:
  spec:
    podRoutes: {publish: bgp}
    bgp: {asn: 64512, routerID: 10.132.2.10, within: [10.131.0.0/16], listenPort: 1790, peers: [{address: 10.132.2.254, asn: 64512}]}
publish:
  enabled: true
  hostNetwork: true
  replicas: 3
  metricsPort: 10263
  healthPort: 10264
  nodeSelector: {dubboreach.io/bgp-speaker: "true"}
networkPolicy:
  enabled: true
  from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: monitoring}
  webhookFrom:
    - ipBlock: {cidr: 10.0.0.0/24}
`},
}

// publishValues turn the BGP speaker on, with one peer's TCP-MD5 password from a Secret.
const publishValues = `
fabric:
  spec:
    reachable: [10.132.2.0/24]
    podRoutes: {source: nodes, nextHop: InternalIP, publish: bgp}
    bgp:
      asn: 64512
      routerID: 10.132.2.10
      within: [10.131.0.0/16]
      gracefulRestart: 120
      peers:
        - {address: 10.132.2.254, asn: 64513, passwordFile: /etc/dubboreach/bgp/tor-a}
        - {address: 10.132.2.253, asn: 64513, multihop: 2}
publish:
  enabled: true
  passwords: {existingSecret: bgp-passwords}
metrics:
  serviceMonitor: {enabled: true}
`

func TestChartLint(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			out, stderr, err := helm(t, "lint", "--strict", chartDir(t), "--namespace", releaseNamespace,
				"--kube-version", kubeVersion, "-f", valuesFile(t, v.values))
			if err != nil || !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint: %v\n%s%s", err, out, stderr)
			}
		})
	}
}

// TestChartTemplate renders every variant and checks what each one is for.
func TestChartTemplate(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			raw := render(t, v.values)
			objs := typed(t, raw)
			var vals values
			if err := yaml.Unmarshal([]byte(v.values), &vals); err != nil {
				t.Fatal(err)
			}
			k := kinds(raw)
			for _, u := range raw {
				if ns := u.GetNamespace(); ns != "" && ns != releaseNamespace {
					t.Errorf("%s %s is in namespace %s, not the release namespace", u.GetKind(), u.GetName(), ns)
				}
				if u.GetLabels()["app.kubernetes.io/instance"] != releaseName {
					t.Errorf("%s %s lacks the app.kubernetes.io/instance label", u.GetKind(), u.GetName())
				}
			}
			webhookOn := vals.Webhook.Enabled == nil || *vals.Webhook.Enabled
			auditOn := vals.Audit.Enabled == nil || *vals.Audit.Enabled
			publishOn := vals.Publish.Enabled != nil && *vals.Publish.Enabled
			components := b2i(webhookOn) + b2i(auditOn) + b2i(publishOn)
			wantCount := func(kind string, n int) {
				t.Helper()
				if k[kind] != n {
					t.Errorf("%d %s rendered, want %d", k[kind], kind, n)
				}
			}
			wantCount("Deployment", components)
			wantCount("ServiceAccount", components)
			wantCount("MutatingWebhookConfiguration", b2i(webhookOn))
			wantCount("PodDisruptionBudget", b2i(webhookOn)+b2i(publishOn))
			wantCount("NetworkPolicy", components*b2i(strings.Contains(v.values, "networkPolicy")))
			wantCount("ServiceMonitor", components*b2i(strings.Contains(v.values, "serviceMonitor")))
			// The speaker exists only when asked for, whatever the fabric says.
			for _, u := range raw {
				if u.GetLabels()["app.kubernetes.io/component"] == "publish" && !publishOn {
					t.Errorf("%s %s of the BGP speaker rendered with publish.enabled unset", u.GetKind(), u.GetName())
				}
			}
			if publishOn {
				checkPublishDeployment(t, objs, v.values)
			}
			wantCount("PrometheusRule", b2i(strings.Contains(v.values, "prometheusRule")))
			if webhookOn {
				checkWebhookDeployment(t, objs)
			}
			if auditOn {
				checkAuditDeployment(t, objs, v.values)
			}
			switch v.name {
			case "prometheus":
				checkMonitoring(t, objs)
			case "networkpolicy", "publish-host-network":
				checkNetworkPolicies(t, objs)
			case "existing-config-and-secret":
				if k["ConfigMap"] != 0 || k["Secret"] != 0 {
					t.Errorf("existing ConfigMap and Secret given, yet the chart renders its own: %v", k)
				}
				a := deploymentByComponent(t, objs, "audit").Spec.Template.Spec
				if !slices.Contains(a.Containers[0].Args, "--zk-auth-file=/etc/dubboreach/zookeeper/digest") {
					t.Errorf("digestKey set on an existing Secret, but no --zk-auth-file: %v", a.Containers[0].Args)
				}
				if a.Volumes[1].Secret == nil || a.Volumes[1].Secret.SecretName != "my-zk" || a.Volumes[1].Secret.Items[0].Key != "auth" {
					t.Errorf("digest volume not from my-zk key auth: %+v", a.Volumes)
				}
			case "created-secret-with-digest":
				checkCreatedConfig(t, objs)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// values is the part of the chart values the tests read back from a variant.
type values struct {
	Webhook struct {
		Enabled *bool `json:"enabled"`
	} `json:"webhook"`
	Audit struct {
		Enabled *bool `json:"enabled"`
	} `json:"audit"`
	Publish struct {
		Enabled  *bool `json:"enabled"`
		Replicas *int  `json:"replicas"`
	} `json:"publish"`
}

func checkRestricted(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext is not restricted: %+v", name, psc)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: host namespaces used", name)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
			(sc.Privileged != nil && *sc.Privileged) {
			t.Errorf("%s/%s: container securityContext is not restricted: %+v", name, c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: resources incomplete: %+v", name, c.Name, c.Resources)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.StartupProbe == nil {
			t.Errorf("%s/%s: liveness, readiness and startup probes are all needed", name, c.Name)
		}
	}
}

func checkWebhookDeployment(t *testing.T, objs []runtime.Object) {
	t.Helper()
	d := deploymentByComponent(t, objs, "webhook")
	spec := d.Spec.Template.Spec
	if spec.HostNetwork {
		// webhook.hostNetwork: the one host namespace allowed, with DNS that still resolves
		// Services, and ports that are the node's.
		if spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			t.Errorf("hostNetwork webhook with dnsPolicy %q, want ClusterFirstWithHostNet", spec.DNSPolicy)
		}
		if !slices.Contains(spec.Containers[0].Args, "--port=10260") {
			t.Errorf("hostNetwork webhook args %v lack the chosen node port", spec.Containers[0].Args)
		}
		spec.HostNetwork = false
	}
	checkRestricted(t, "webhook", spec)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("webhook replicas %v, want at least 2", d.Spec.Replicas)
	}
	aff := spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Fatalf("webhook has no pod anti-affinity: %+v", aff)
	}
	term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || term.TopologyKey != corev1.LabelHostname {
		t.Errorf("webhook anti-affinity does not spread its own pods over hosts: %+v", term)
	}
	pdbs := slices.DeleteFunc(only[*policyv1.PodDisruptionBudget](objs), func(p *policyv1.PodDisruptionBudget) bool {
		return p.Labels["app.kubernetes.io/component"] != "webhook"
	})
	if len(pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget of the webhook, got %d", len(pdbs))
	}
	psel, err := metav1.LabelSelectorAsSelector(pdbs[0].Spec.Selector)
	if err != nil || !psel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the PodDisruptionBudget does not select the webhook pods")
	}
	if pdbs[0].Spec.MinAvailable == nil || pdbs[0].Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PDB minAvailable %v leaves no pod evictable of %d", pdbs[0].Spec.MinAvailable, *d.Spec.Replicas)
	}
	args := spec.Containers[0].Args
	wantArgs := []string{"webhook", "--port=9443", "--cert-dir=/etc/dubboreach/tls", "--fabric=/etc/dubboreach/fabric/fabric.yaml",
		"--leader-elect=true", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"}
	if slices.Contains(args, "--port=10260") {
		wantArgs = []string{"webhook", "--port=10260", "--metrics-bind-address=:10261", "--health-probe-bind-address=:10262"}
	}
	for _, want := range wantArgs {
		if !slices.Contains(args, want) {
			t.Errorf("webhook args %v lack %s", args, want)
		}
	}
	// The drain: readiness fails first, admissions are answered for the delay, and the kubelet
	// waits longer than the delay plus the server's 20 s graceful shutdown.
	delay := 0
	for _, a := range args {
		if _, err := fmt.Sscanf(a, "--shutdown-delay=%ds", &delay); err == nil {
			break
		}
	}
	if delay <= 0 {
		t.Errorf("webhook args %v: no positive --shutdown-delay, so every rollout opens a fail-open window", args)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= int64(delay)+20 {
		t.Errorf("terminationGracePeriodSeconds %v is not above --shutdown-delay %ds plus the 20 s graceful shutdown", g, delay)
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--max-in-flight=") }) {
		t.Errorf("webhook args %v lack --max-in-flight", args)
	}
	if !slices.ContainsFunc(spec.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		return err == nil && c.TopologyKey == corev1.LabelTopologyZone && sel.Matches(labels.Set(d.Spec.Template.Labels)) &&
			c.WhenUnsatisfiable == corev1.ScheduleAnyway
	}) {
		t.Errorf("webhook replicas are not spread over zones by default: %+v", spec.TopologySpreadConstraints)
	}
	if spec.Containers[0].Env[0].Name != "POD_NAMESPACE" || spec.Containers[0].Env[0].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("webhook does not get POD_NAMESPACE from the downward API")
	}
}

func checkAuditDeployment(t *testing.T, objs []runtime.Object, vals string) {
	t.Helper()
	d := deploymentByComponent(t, objs, "audit")
	spec := d.Spec.Template.Spec
	checkRestricted(t, "audit", spec)
	args := spec.Containers[0].Args
	for _, want := range []string{"audit", "--zk=$(DUBBOREACH_ZK_SERVERS)", "--zk-root=/dubbo", "--services-root=/services",
		"--listen=:8080", "--leader-elect=true", "--fabric=/etc/dubboreach/fabric/fabric.yaml"} {
		if !slices.Contains(args, want) {
			t.Errorf("audit args %v lack %s", args, want)
		}
	}
	hasFix := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--fix") })
	if strings.Contains(vals, "evict") {
		if !slices.Contains(args, "--fix=evict,disable") || !slices.Contains(args, "--dry-run") {
			t.Errorf("audit.fix [evict, disable] with dryRun not passed on: %v", args)
		}
	} else if strings.Contains(vals, "prune") {
		// prune must be told where to write its backups, on the volume the values name.
		if !slices.Contains(args, "--fix=prune,disable") || !slices.Contains(args, "--fix-backup-dir=/var/lib/dubboreach/backups") {
			t.Errorf("audit.fix [prune, disable] not passed on with a backup dir: %v", args)
		}
		var claim string
		for _, v := range spec.Volumes {
			if v.Name == "backups" && v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		mounted := slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == "backups" && m.MountPath == "/var/lib/dubboreach/backups" && !m.ReadOnly
		})
		if claim != "dubboreach-backups" || !mounted {
			t.Errorf("prune backups: claim %q, mounted %v; want the existing claim dubboreach-backups mounted writable", claim, mounted)
		}
	} else if hasFix {
		t.Errorf("--fix passed although audit.fix is none: %v", args)
	}
	var servers *corev1.EnvVar
	for i, e := range spec.Containers[0].Env {
		if e.Name == "DUBBOREACH_ZK_SERVERS" {
			servers = &spec.Containers[0].Env[i]
		}
	}
	if servers == nil || servers.ValueFrom == nil || servers.ValueFrom.SecretKeyRef == nil {
		t.Fatalf("the ZooKeeper connection string does not come from a Secret")
	}
}

func checkCreatedConfig(t *testing.T, objs []runtime.Object) {
	t.Helper()
	secrets := only[*corev1.Secret](objs)
	if len(secrets) != 1 || secrets[0].StringData["servers"] != "zk-0.zk:2181,zk-1.zk:2181/prod" || secrets[0].StringData["digest"] != "dubbo:s3cret" {
		t.Fatalf("ZooKeeper Secret: %+v", secrets)
	}
	a := deploymentByComponent(t, objs, "audit").Spec.Template.Spec
	if !slices.Contains(a.Containers[0].Args, "--zk-auth-file=/etc/dubboreach/zookeeper/digest") {
		t.Errorf("digest set but no --zk-auth-file: %v", a.Containers[0].Args)
	}
	for _, e := range a.Containers[0].Env {
		if e.Value != "" && strings.Contains(e.Value, "s3cret") {
			t.Errorf("the digest password is in the pod spec: %s", e.Name)
		}
	}
	cms := only[*corev1.ConfigMap](objs)
	if len(cms) != 1 {
		t.Fatalf("want the fabric ConfigMap, got %d ConfigMaps", len(cms))
	}
	var fab struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Reachable   []string `json:"reachable"`
			ServiceCIDR string   `json:"serviceCIDR"`
			PodRoutes   struct {
				Source, Publish string
			} `json:"podRoutes"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(cms[0].Data["fabric.yaml"]), &fab); err != nil {
		t.Fatalf("fabric.yaml: %v", err)
	}
	if fab.APIVersion != "dubboreach.io/v1alpha1" || fab.Kind != "Fabric" || !slices.Equal(fab.Spec.Reachable, []string{"10.132.2.0/24"}) ||
		fab.Spec.ServiceCIDR != "10.96.0.0/12" || fab.Spec.PodRoutes.Source != "calico" || fab.Spec.PodRoutes.Publish != "bgp" {
		t.Errorf("fabric.yaml does not carry the values: %+v\n%s", fab, cms[0].Data["fabric.yaml"])
	}
}

func checkMonitoring(t *testing.T, objs []runtime.Object) {
	t.Helper()
	jobs := map[string]bool{}
	for _, sm := range only[*monitoringv1.ServiceMonitor](objs) {
		if sm.Labels["release"] != "kube-prometheus-stack" {
			t.Errorf("ServiceMonitor %s lacks the extra labels", sm.Name)
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var matched []*corev1.Service
		for _, s := range only[*corev1.Service](objs) {
			if sel.Matches(labels.Set(s.Labels)) {
				matched = append(matched, s)
			}
		}
		if len(matched) != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services, want 1", sm.Name, len(matched))
			continue
		}
		ep := sm.Spec.Endpoints[0]
		if !slices.ContainsFunc(matched[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
			t.Errorf("ServiceMonitor %s scrapes port %q, which Service %s lacks", sm.Name, ep.Port, matched[0].Name)
		}
		for _, r := range ep.RelabelConfigs {
			if r.TargetLabel == "job" && r.Replacement != nil {
				jobs[*r.Replacement] = true
			}
		}
	}
	if !jobs["dubboreach-webhook"] || !jobs["dubboreach-audit"] || len(jobs) != 2 {
		t.Errorf("scrape jobs %v, want dubboreach-webhook and dubboreach-audit", jobs)
	}
	rules := only[*monitoringv1.PrometheusRule](objs)
	var alerts []string
	for _, g := range rules[0].Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Labels["team"] != "platform" || r.Labels["severity"] == "ignored" {
				t.Errorf("%s: additionalRuleLabels not added under the shipped labels: %v", r.Alert, r.Labels)
			}
			if r.Alert == "DubboreachUnreachableProviders" {
				if r.For == nil || *r.For != "5m" || r.Labels["severity"] != "warning" {
					t.Errorf("for/severity overrides not applied: for %v labels %v", r.For, r.Labels)
				}
			}
		}
	}
	if slices.Contains(alerts, "DubboreachWebhookDown") {
		t.Errorf("DubboreachWebhookDown is switched off but rendered")
	}
	if !slices.Contains(alerts, "DubboreachAuditorDown") {
		t.Errorf("DubboreachAuditorDown missing: %v", alerts)
	}
	var dash *corev1.ConfigMap
	for _, cm := range only[*corev1.ConfigMap](objs) {
		if cm.Labels["grafana_dashboard"] == "1" {
			dash = cm
		}
	}
	if dash == nil {
		t.Fatal("no Grafana dashboard ConfigMap labelled grafana_dashboard=1")
	}
	want, err := os.ReadFile(filepath.Join(repoRoot(t), "config", "prometheus", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(dash.Data["dubboreach.json"]) != strings.TrimSpace(string(want)) {
		t.Errorf("the dashboard ConfigMap does not hold config/prometheus/grafana-dashboard.json")
	}
}

func checkNetworkPolicies(t *testing.T, objs []runtime.Object) {
	t.Helper()
	for _, np := range only[*networkingv1.NetworkPolicy](objs) {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		component := np.Labels["app.kubernetes.io/component"]
		d := deploymentByComponent(t, objs, component)
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("NetworkPolicy %s does not select the %s pods", np.Name, component)
		}
		ports := map[string]bool{}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				ports[p.Port.String()] = true
				if p.Port.String() == "bgp" {
					// spec.bgp.listenPort: the routers are outside the cluster.
					if len(rule.From) != 0 {
						t.Errorf("NetworkPolicy %s opens the BGP port only to %+v, want the routers (any source)", np.Name, rule.From)
					}
				} else if p.Port.String() == "webhook" {
					if len(rule.From) != 1 || rule.From[0].IPBlock == nil || rule.From[0].IPBlock.CIDR != "10.0.0.0/24" {
						t.Errorf("NetworkPolicy %s opens the webhook port to %+v, want networkPolicy.webhookFrom (the API servers)", np.Name, rule.From)
					}
				} else {
					if len(rule.From) != 1 || rule.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
						t.Errorf("NetworkPolicy %s opens %s to %+v, want networkPolicy.from", np.Name, p.Port.String(), rule.From)
					}
				}
			}
		}
		for port := range ports {
			if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == port }) {
				t.Errorf("NetworkPolicy %s opens port %s, which the %s container does not name", np.Name, port, component)
			}
		}
		if component == "webhook" && !ports["webhook"] {
			t.Errorf("the webhook NetworkPolicy shuts out the API server (port webhook)")
		}
	}
}

// TestChartZookeeperChecksum: the audit pods roll when the connection or the credentials'
// revision changes, while the annotation never carries a hash of the digest password (which
// anyone who reads Deployments could test guesses against).
func TestChartZookeeperChecksum(t *testing.T) {
	sum := func(values string) string {
		t.Helper()
		d := deploymentByComponent(t, typed(t, render(t, values)), "audit")
		v := d.Spec.Template.Annotations["checksum/zookeeper"]
		if v == "" {
			t.Fatalf("values %s: no checksum/zookeeper annotation", values)
		}
		return v
	}
	base := sum(`audit: {zookeeper: {servers: "zk:2181", digest: "dubbo:first"}}`)
	if got := sum(`audit: {zookeeper: {servers: "zk:2181", digest: "dubbo:second"}}`); got != base {
		t.Errorf("the annotation changed with the password alone: it is derived from the secret")
	}
	for _, changed := range []string{
		`audit: {zookeeper: {servers: "zk-0:2181", digest: "dubbo:first"}}`,
		`audit: {zookeeper: {servers: "zk:2181", digest: "ops:first"}}`,
		`audit: {zookeeper: {servers: "zk:2181", digest: "dubbo:first", credentialsRevision: "2"}}`,
		`audit: {zookeeper: {servers: "zk:2181"}}`,
	} {
		if sum(changed) == base {
			t.Errorf("values %s: the audit pods would not roll", changed)
		}
	}
}

// TestChartWebhookConfiguration decodes the MutatingWebhookConfiguration and checks every field
// the contract fixes.
func TestChartWebhookConfiguration(t *testing.T) {
	objs := typed(t, render(t, ""))
	m := theWebhookConfig(t, objs)
	if len(m.Webhooks) != 1 {
		t.Fatalf("want 1 webhook, got %d", len(m.Webhooks))
	}
	w := m.Webhooks[0]
	if w.Name != "inject.dubboreach.io" {
		t.Errorf("webhook name %q", w.Name)
	}
	if got := m.Annotations["cert-manager.io/inject-ca-from"]; got != releaseNamespace+"/dubboreach-webhook-serving" {
		t.Errorf("cert-manager.io/inject-ca-from = %q", got)
	}
	if len(w.ClientConfig.CABundle) != 0 {
		t.Errorf("caBundle templated although cert-manager injects it")
	}
	if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("sideEffects %v", w.SideEffects)
	}
	if w.TimeoutSeconds == nil || *w.TimeoutSeconds != 3 {
		t.Errorf("timeoutSeconds %v", w.TimeoutSeconds)
	}
	if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("reinvocationPolicy %v", w.ReinvocationPolicy)
	}
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Ignore {
		t.Errorf("failurePolicy %v", w.FailurePolicy)
	}
	wantRules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
			Scope: ptr(admissionregistrationv1.NamespacedScope)},
	}}
	if !equality.Semantic.DeepEqual(w.Rules, wantRules) {
		t.Errorf("rules %+v, want CREATE pods only", w.Rules)
	}
	wantNS := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "dubboreach.io/inject", Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled"}},
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "kube-public", "kube-node-lease", releaseNamespace}},
	}}
	if !equality.Semantic.DeepEqual(w.NamespaceSelector, wantNS) {
		t.Errorf("namespaceSelector %+v\nwant %+v", w.NamespaceSelector, wantNS)
	}
	wantObj := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "dubboreach.io/inject", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"disabled"}},
	}}
	if !equality.Semantic.DeepEqual(w.ObjectSelector, wantObj) {
		t.Errorf("objectSelector %+v", w.ObjectSelector)
	}
	// The selectors in action: which namespaces and pods are sent to the webhook.
	nsSel, _ := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
	objSel, _ := metav1.LabelSelectorAsSelector(w.ObjectSelector)
	for _, c := range []struct {
		ns   labels.Set
		want bool
	}{
		{labels.Set{"dubboreach.io/inject": "enabled", "kubernetes.io/metadata.name": "shop"}, true},
		{labels.Set{"kubernetes.io/metadata.name": "shop"}, false},
		{labels.Set{"dubboreach.io/inject": "disabled", "kubernetes.io/metadata.name": "shop"}, false},
		{labels.Set{"dubboreach.io/inject": "enabled", "kubernetes.io/metadata.name": "kube-system"}, false},
		{labels.Set{"dubboreach.io/inject": "enabled", "kubernetes.io/metadata.name": releaseNamespace}, false},
	} {
		if got := nsSel.Matches(c.ns); got != c.want {
			t.Errorf("namespace %v: selected %v, want %v", c.ns, got, c.want)
		}
	}
	if !objSel.Matches(labels.Set{"app": "x"}) || objSel.Matches(labels.Set{"dubboreach.io/inject": "disabled"}) {
		t.Errorf("objectSelector does not opt out exactly the pods labelled dubboreach.io/inject=disabled")
	}
	// The service it calls exists, on 443, in front of the webhook port.
	svc := w.ClientConfig.Service
	if svc == nil || svc.Namespace != releaseNamespace || svc.Path == nil || *svc.Path != "/mutate-v1-pod" || svc.Port == nil || *svc.Port != 443 {
		t.Fatalf("clientConfig.service %+v", svc)
	}
	var found bool
	for _, s := range only[*corev1.Service](objs) {
		if s.Name == svc.Name {
			found = slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 443 && p.TargetPort.String() == "webhook" })
		}
	}
	if !found {
		t.Errorf("no Service %s with port 443 -> webhook", svc.Name)
	}

	// Without cert-manager: the given caBundle, no annotation; Fail when asked.
	objs = typed(t, render(t, variantValues(t, "no-cert-manager")))
	m = theWebhookConfig(t, objs)
	if _, ok := m.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Errorf("inject-ca-from annotation without cert-manager")
	}
	if !bytes.HasPrefix(m.Webhooks[0].ClientConfig.CABundle, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("caBundle not from webhook.tls.caBundle: %q", m.Webhooks[0].ClientConfig.CABundle)
	}
	if *m.Webhooks[0].FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy Fail not applied")
	}
	if len(only[*certmanagerv1.Certificate](objs))+len(only[*certmanagerv1.Issuer](objs)) != 0 {
		t.Errorf("cert-manager objects rendered with certManager.enabled=false")
	}
	if v := deploymentByComponent(t, objs, "webhook").Spec.Template.Spec.Volumes[0]; v.Secret == nil || v.Secret.SecretName != "my-webhook-tls" {
		t.Errorf("webhook does not mount webhook.tls.existingSecret: %+v", v)
	}
}

func ptr[T any](v T) *T { return &v }

func variantValues(t *testing.T, name string) string {
	t.Helper()
	for _, v := range variants {
		if v.name == name {
			return v.values
		}
	}
	t.Fatalf("no variant %s", name)
	return ""
}

// TestChartCertificates checks the cert-manager chain: self-signed Issuer -> CA Certificate ->
// CA Issuer -> serving Certificate for the webhook Service, whose Secret the webhook mounts and
// whose CA cainjector injects; and an existing issuer replacing the chain.
func TestChartCertificates(t *testing.T) {
	objs := typed(t, render(t, ""))
	issuers := map[string]*certmanagerv1.Issuer{}
	for _, i := range only[*certmanagerv1.Issuer](objs) {
		issuers[i.Name] = i
	}
	certs := map[string]*certmanagerv1.Certificate{}
	for _, c := range only[*certmanagerv1.Certificate](objs) {
		certs[c.Name] = c
	}
	if len(issuers) != 2 || len(certs) != 2 {
		t.Fatalf("want 2 Issuers and 2 Certificates, got %d and %d", len(issuers), len(certs))
	}
	serving := certs["dubboreach-webhook-serving"]
	if serving == nil {
		t.Fatalf("no serving Certificate: %v", certs)
	}
	caIssuer := issuers[serving.Spec.IssuerRef.Name]
	if serving.Spec.IssuerRef.Kind != "Issuer" || caIssuer == nil || caIssuer.Spec.CA == nil {
		t.Fatalf("serving Certificate is not signed by a CA Issuer: %+v", serving.Spec.IssuerRef)
	}
	var ca *certmanagerv1.Certificate
	for _, c := range certs {
		if c.Spec.SecretName == caIssuer.Spec.CA.SecretName {
			ca = c
		}
	}
	if ca == nil || !ca.Spec.IsCA {
		t.Fatalf("the CA Issuer's Secret %s does not come from a CA Certificate", caIssuer.Spec.CA.SecretName)
	}
	self := issuers[ca.Spec.IssuerRef.Name]
	if ca.Spec.IssuerRef.Kind != "Issuer" || self == nil || self.Spec.SelfSigned == nil {
		t.Fatalf("the CA Certificate is not issued by a self-signed Issuer: %+v", ca.Spec.IssuerRef)
	}
	if serving.Spec.IsCA {
		t.Errorf("the serving certificate is a CA")
	}
	svc := theWebhookConfig(t, objs).Webhooks[0].ClientConfig.Service
	wantDNS := svc.Name + "." + svc.Namespace + ".svc"
	if !slices.Contains(serving.Spec.DNSNames, wantDNS) {
		t.Errorf("serving dnsNames %v lack %s (the name the API server verifies)", serving.Spec.DNSNames, wantDNS)
	}
	if !slices.Contains(serving.Spec.Usages, certmanagerv1.UsageServerAuth) {
		t.Errorf("serving usages %v lack server auth", serving.Spec.Usages)
	}
	vol := deploymentByComponent(t, objs, "webhook").Spec.Template.Spec.Volumes[0]
	if vol.Secret == nil || vol.Secret.SecretName != serving.Spec.SecretName {
		t.Errorf("webhook mounts %+v, not the serving Secret %s", vol, serving.Spec.SecretName)
	}
	if got := theWebhookConfig(t, objs).Annotations["cert-manager.io/inject-ca-from"]; got != serving.Namespace+"/"+serving.Name {
		t.Errorf("inject-ca-from %q does not name the serving Certificate", got)
	}
	if serving.Spec.Duration == nil || serving.Spec.RenewBefore == nil || serving.Spec.RenewBefore.Duration >= serving.Spec.Duration.Duration {
		t.Errorf("renewBefore %v not shorter than duration %v", serving.Spec.RenewBefore, serving.Spec.Duration)
	}

	objs = typed(t, render(t, variantValues(t, "existing-issuer")))
	if n := len(only[*certmanagerv1.Issuer](objs)); n != 0 {
		t.Errorf("%d Issuers rendered with an existing issuer", n)
	}
	cs := only[*certmanagerv1.Certificate](objs)
	if len(cs) != 1 || cs[0].Spec.IssuerRef.Name != "corp-ca" || cs[0].Spec.IssuerRef.Kind != "ClusterIssuer" || cs[0].Spec.IssuerRef.Group != "cert-manager.io" {
		t.Fatalf("existing ClusterIssuer not used: %+v", cs)
	}
}

// TestChartRBAC compares each ServiceAccount's granted permissions, as the union of the rules of
// every role bound to it, with the explicit list of what the component needs.
func TestChartRBAC(t *testing.T) {
	webhook := []string{
		"cluster /nodes get,list,watch,patch",
		"cluster /namespaces get,list,watch",
		"cluster crd.projectcalico.org/ipamblocks get,list,watch",
		"namespace coordination.k8s.io/leases create",
		"namespace coordination.k8s.io/leases@" + server.LeaderElectionID + " get,update",
		"namespace /events create,patch",
		"namespace events.k8s.io/events create,patch",
	}
	webhook = append(webhook, statusReader...)
	audit := []string{
		"cluster /pods get,list,watch",
		"cluster /nodes get,list,watch",
		"cluster /namespaces get,list,watch",
		"cluster crd.projectcalico.org/ipamblocks get,list,watch",
		"cluster /events create,patch",
		"cluster events.k8s.io/events create,patch",
		"namespace coordination.k8s.io/leases create",
		// internal/cli/audit.go's LeaderElectionID (not exported).
		"namespace coordination.k8s.io/leases@dubboreach-audit get,update",
	}
	audit = append(audit, statusReader...)
	without := func(lines []string, drop string) []string {
		return slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return strings.Contains(l, drop) })
	}
	for _, c := range []struct {
		variant         string
		webhook, audit  []string
		publish         []string
		noWebhook, noAu bool
	}{
		{variant: "default", webhook: webhook, audit: audit},
		{variant: "fix-evict", webhook: webhook, audit: append(slices.Clone(audit), "cluster /pods/eviction create")},
		{variant: "existing-config-and-secret", webhook: without(webhook, "ipamblocks"), audit: without(audit, "ipamblocks")},
		{variant: "prometheus", webhook: webhook, audit: audit},
		{variant: "webhook-only", webhook: webhook, noAu: true},
		{variant: "audit-only", audit: audit, noWebhook: true},
		{variant: "publish", webhook: webhook, audit: audit, publish: publishGrants},
	} {
		t.Run(c.variant, func(t *testing.T) {
			objs := typed(t, render(t, variantValues(t, c.variant)))
			check := func(component string, want []string) {
				got := permissions(t, objs, releaseNamespace, "dubboreach-"+component)
				extra, missing := diffSets(got, grants(want...))
				if len(extra) > 0 {
					t.Errorf("%s is granted more than it needs: %v", component, extra)
				}
				if len(missing) > 0 {
					t.Errorf("%s lacks: %v", component, missing)
				}
				if len(want) == 0 && len(got) != 0 {
					t.Errorf("%s disabled but granted %v", component, got)
				}
			}
			check("webhook", c.webhook)
			check("audit", c.audit)
			check("publish", c.publish)
			// Every Deployment runs as the ServiceAccount its roles are bound to.
			for _, comp := range []string{"webhook", "audit", "publish"} {
				if (comp == "webhook" && c.noWebhook) || (comp == "audit" && c.noAu) || (comp == "publish" && c.publish == nil) {
					continue
				}
				if sa := deploymentByComponent(t, objs, comp).Spec.Template.Spec.ServiceAccountName; sa != "dubboreach-"+comp {
					t.Errorf("%s runs as %s", comp, sa)
				}
			}
		})
	}
}

// TestChartSchemaRejectsBadValues: bad values fail `helm template` with a message that names
// the value and what is wrong with it.
func TestChartSchemaRejectsBadValues(t *testing.T) {
	for _, c := range []struct {
		name, values string
		want         []string
	}{
		{"failurePolicy", `webhook: {failurePolicy: Maybe}`, []string{"/webhook/failurePolicy", "'Ignore', 'Fail'"}},
		{"timeout above the API server's maximum", `webhook: {timeoutSeconds: 60}`, []string{"/webhook/timeoutSeconds", "maximum"}},
		{"reinvocationPolicy", `webhook: {reinvocationPolicy: Always}`, []string{"/webhook/reinvocationPolicy", "'Never', 'IfNeeded'"}},
		{"unknown key", `webhook: {replica: 3}`, []string{"/webhook", "additional properties 'replica' not allowed"}},
		{"fix mode", `audit: {fix: [delete]}`, []string{"/audit/fix/0", "'evict'"}},
		{"fix as a string", `audit: {fix: evict}`, []string{"/audit/fix", "want array"}},
		{"fabric network", `fabric: {spec: {reachable: [10.0.0.0]}}`, []string{"/fabric/spec/reachable/0", "'10.0.0.0' does not match"}},
		{"pod route source", `fabric: {spec: {podRoutes: {source: bgp}}}`, []string{"/fabric/spec/podRoutes/source", "'auto', 'nodes', 'calico', 'flannel'"}},
		{"issuer kind", `certManager: {issuerRef: {name: x, kind: Vault}}`, []string{"/certManager/issuerRef/kind", "'Issuer', 'ClusterIssuer'"}},
		{"issuer without name", `certManager: {issuerRef: {kind: ClusterIssuer}}`, []string{"/certManager/issuerRef", "missing property 'name'"}},
		{"digest without password", `audit: {zookeeper: {digest: dubbo}}`, []string{"/audit/zookeeper/digest", "does not match"}},
		{"zk root", `audit: {zookeeper: {root: dubbo}}`, []string{"/audit/zookeeper/root", "does not match"}},
		{"certificate duration", `certManager: {duration: 1year}`, []string{"/certManager/duration", "does not match"}},
		{"alert switch typo", `metrics: {prometheusRule: {alerts: {webhookDwn: {enabled: false}}}}`, []string{"/metrics/prometheusRule/alerts", "'webhookDwn' not allowed"}},
		{"alert severity", `metrics: {prometheusRule: {alerts: {webhookDown: {enabled: true, severity: page}}}}`, []string{"/metrics/prometheusRule/alerts/webhookDown/severity", "'critical'"}},
		{"image digest", `image: {digest: latest}`, []string{"/image/digest", "does not match"}},
		// Cross-field checks, made in the templates with their own messages.
		{"no ZooKeeper", `audit: {zookeeper: {servers: ""}}`, []string{"audit.zookeeper.servers is required"}},
		{"no cert-manager, no TLS secret", `certManager: {enabled: false}`, []string{"webhook.tls.existingSecret is required when certManager.enabled=false"}},
		{"no cert-manager, no CA bundle", `{certManager: {enabled: false}, webhook: {tls: {existingSecret: s}}}`, []string{"webhook.tls.caBundle is required"}},
		{"none with a mode", `audit: {fix: [none, evict]}`, []string{`audit.fix: "none" cannot be combined`}},
		{"disable and undo", `audit: {fix: [disable, undo-disable]}`, []string{`"disable" and "undo-disable" contradict`}},
		{"Fail with one replica", `webhook: {failurePolicy: Fail, replicas: 1, podDisruptionBudget: {enabled: false}}`, []string{"webhook.failurePolicy Fail with webhook.replicas 1", "set webhook.replicas to 2 or more"}},
		{"audit replicas without leader election", `audit: {replicas: 2, leaderElection: false}`, []string{"audit.replicas 2 without audit.leaderElection", "enable audit.leaderElection"}},
		{"negative shutdown delay", `webhook: {shutdownDelaySeconds: -1}`, []string{"/webhook/shutdownDelaySeconds", "minimum"}},
		{"PDB blocks every eviction", `webhook: {replicas: 2, podDisruptionBudget: {minAvailable: 2}}`, []string{"minAvailable (2) must be less than webhook.replicas (2)"}},
		// The BGP speaker and the fabric must agree.
		{"publish without publish: bgp", `publish: {enabled: true}`, []string{`publish.enabled=true with fabric.spec.podRoutes.publish "static"`, "set fabric.spec.podRoutes.publish: bgp"}},
		{"publish with publish: cni", `{publish: {enabled: true}, fabric: {spec: {podRoutes: {publish: cni}}}}`, []string{`fabric.spec.podRoutes.publish "cni"`}},
		{"publish without spec.bgp", `{publish: {enabled: true}, fabric: {spec: {podRoutes: {publish: bgp}}}}`, []string{"publish.enabled=true without fabric.spec.bgp", "asn, routerID, within and peers"}},
		{"spec.bgp under publish: static", `fabric: {spec: {bgp: ` + bgpBlock + `}}`, []string{`fabric.spec.bgp is set but fabric.spec.podRoutes.publish is "static"`}},
		{"password file outside the mount", `{publish: {enabled: true, passwords: {existingSecret: pw}}, fabric: {spec: {podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.132.2.10, within: [10.131.0.0/16], peers: [{address: 10.132.2.254, asn: 64513}, {address: 10.132.2.253, asn: 64513, passwordFile: /etc/bgp/pw}]}}}}`,
			[]string{`fabric.spec.bgp.peers[1].passwordFile "/etc/bgp/pw" is not under /etc/dubboreach/bgp/`}},
		{"password file without its Secret", `{publish: {enabled: true}, fabric: {spec: {podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.132.2.10, within: [10.131.0.0/16], peers: [{address: 10.132.2.254, asn: 64513, passwordFile: /etc/dubboreach/bgp/tor-a}]}}}}`,
			[]string{`fabric.spec.bgp.peers[0].passwordFile "/etc/dubboreach/bgp/tor-a" needs publish.passwords.existingSecret`, `key "tor-a"`}},
		{"publish PDB blocks every eviction", `{publish: {enabled: true, replicas: 1}, fabric: {spec: {podRoutes: {publish: bgp}, bgp: ` + bgpBlock + `}}}`, []string{"publish.podDisruptionBudget.minAvailable (1) must be less than publish.replicas (1)"}},
		{"publish typo", `publish: {replica: 3}`, []string{"/publish", "additional properties 'replica' not allowed"}},
		{"lease duration without unit", `publish: {leaderElection: {leaseDuration: "8"}}`, []string{"/publish/leaderElection/leaseDuration", "does not match"}},
		{"spec.bgp peer typo", `fabric: {spec: {podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.132.2.10, within: [10.131.0.0/16], peers: [{address: 10.132.2.254, asn: 64513, passwdFile: /x}]}}}`, []string{"/fabric/spec/bgp/peers/0", "'passwdFile' not allowed"}},
		{"spec.bgp without within", `fabric: {spec: {podRoutes: {publish: bgp}, bgp: {asn: 64512, routerID: 10.132.2.10, peers: [{address: 10.132.2.254, asn: 64513}]}}}`, []string{"/fabric/spec/bgp", "missing property 'within'"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := helm(t, templateArgs(t, c.values)...)
			if err == nil {
				t.Fatalf("values %s were accepted:\n%.400s", c.values, out)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error does not say %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestChartDryRunApply sends every rendered object of every variant to a real kube-apiserver
// with the cert-manager and prometheus-operator CRDs, as a server-side dry-run create.
func TestChartDryRunApply(t *testing.T) {
	env := apiServer(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			objs := render(t, v.values)
			dryRunCreate(t, env.Client, releaseNamespace, objs)
		})
	}
	// The dry run is a real check: a misspelt field or a bad value in a rendered object is refused.
	t.Run("refuses-broken-objects", func(t *testing.T) {
		for _, u := range render(t, "") {
			var err error
			switch u.GetKind() {
			case "Certificate":
				u.Object["spec"].(map[string]any)["dnsName"] = []any{"x"}
			case "MutatingWebhookConfiguration":
				u.Object["webhooks"].([]any)[0].(map[string]any)["timeoutSeconds"] = int64(60)
			default:
				continue
			}
			err = env.Client.Create(t.Context(), u, client.DryRunAll, client.FieldValidation("Strict"))
			if err == nil {
				t.Errorf("the API server accepted a broken %s", u.GetKind())
			}
		}
	})
}

// TestChartFilesMatchConfigPrometheus: Helm cannot read outside the chart, so the chart carries
// copies of the alert rules and the dashboard; they must stay the same as config/prometheus.
func TestChartFilesMatchConfigPrometheus(t *testing.T) {
	root := repoRoot(t)
	for _, f := range []string{"rules.yaml", "grafana-dashboard.json"} {
		want, err := os.ReadFile(filepath.Join(root, "config", "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "charts", "dubboreach", "files", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/dubboreach/files/%s differs from config/prometheus/%s: cp config/prometheus/%s charts/dubboreach/files/", f, f, f)
		}
	}
}

// TestChartAlertSwitches: every alert of rules.yaml has its switch; all on, the PrometheusRule
// carries exactly the shipped rules; each one can be switched off alone.
func TestChartAlertSwitches(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "config", "prometheus", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var shipped monitoringv1.PrometheusRuleSpec
	if err := yaml.Unmarshal(data, &shipped); err != nil {
		t.Fatal(err)
	}
	objs := typed(t, render(t, `metrics: {prometheusRule: {enabled: true}}`))
	rules := only[*monitoringv1.PrometheusRule](objs)
	if len(rules) != 1 {
		t.Fatalf("want 1 PrometheusRule, got %d", len(rules))
	}
	if !equality.Semantic.DeepEqual(rules[0].Spec, shipped) {
		t.Errorf("PrometheusRule with every alert on differs from config/prometheus/rules.yaml")
	}
	for _, g := range shipped.Groups {
		for _, r := range g.Rules {
			key := strings.TrimPrefix(r.Alert, "Dubboreach")
			key = strings.ToLower(key[:1]) + key[1:]
			key = strings.Replace(key, "zooKeeper", "zookeeper", 1) // docs/alerts.md's spelling
			key = strings.Replace(key, "bGP", "bgp", 1)             // DubboreachBGPNoSpeaker -> bgpNoSpeaker
			t.Run(key, func(t *testing.T) {
				objs := typed(t, render(t, fmt.Sprintf("metrics: {prometheusRule: {enabled: true, alerts: {%s: {enabled: false}}}}", key)))
				for _, pr := range only[*monitoringv1.PrometheusRule](objs) {
					for _, g := range pr.Spec.Groups {
						for _, rr := range g.Rules {
							if rr.Alert == r.Alert {
								t.Errorf("%s rendered with alerts.%s.enabled=false", r.Alert, key)
							}
						}
					}
				}
			})
		}
	}
}
