{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "dubboreach.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; components append -webhook / -audit, so keep room for them. */}}
{{- define "dubboreach.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dubboreach.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "dubboreach.labels" -}}
helm.sh/chart: {{ include "dubboreach.chart" . }}
app.kubernetes.io/name: {{ include "dubboreach.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dubboreach
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "webhook"). */}}
{{- define "dubboreach.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dubboreach.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "dubboreach.componentLabels" -}}
{{ include "dubboreach.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "dubboreach.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}
{{- end }}

{{- define "dubboreach.serviceAccountName" -}}
{{ include "dubboreach.fullname" .ctx }}-{{ .component }}
{{- end }}

{{- define "dubboreach.webhookServiceName" -}}
{{ include "dubboreach.fullname" . }}-webhook
{{- end }}

{{- define "dubboreach.servingCertName" -}}
{{ include "dubboreach.fullname" . }}-webhook-serving
{{- end }}

{{- define "dubboreach.servingSecretName" -}}
{{- if .Values.certManager.enabled -}}
{{ include "dubboreach.fullname" . }}-webhook-tls
{{- else -}}
{{ .Values.webhook.tls.existingSecret }}
{{- end }}
{{- end }}

{{- define "dubboreach.fabricConfigMap" -}}
{{- default (printf "%s-fabric" (include "dubboreach.fullname" .)) .Values.fabric.existingConfigMap }}
{{- end }}

{{- define "dubboreach.zookeeperSecret" -}}
{{- default (printf "%s-zookeeper" (include "dubboreach.fullname" .)) .Values.audit.zookeeper.existingSecret }}
{{- end }}

{{/* The fix modes as a set: "evict" is in it when eviction is enabled. */}}
{{- define "dubboreach.fixEvict" -}}
{{- if and .Values.audit.enabled (has "evict" .Values.audit.fix) }}true{{ end }}
{{- end }}

{{/* Restricted pod security: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp. */}}
{{- define "dubboreach.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "dubboreach.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Checks that JSON Schema cannot express with a readable message. */}}
{{- define "dubboreach.validate" -}}
{{- if and .Values.webhook.enabled (not .Values.certManager.enabled) }}
{{- if not .Values.webhook.tls.existingSecret }}
{{- fail "webhook.tls.existingSecret is required when certManager.enabled=false: name a kubernetes.io/tls Secret with the webhook's serving certificate, or enable cert-manager" }}
{{- end }}
{{- if not .Values.webhook.tls.caBundle }}
{{- fail "webhook.tls.caBundle is required when certManager.enabled=false: the base64 PEM of the CA that signed webhook.tls.existingSecret, or enable cert-manager" }}
{{- end }}
{{- end }}
{{- if and .Values.audit.enabled (not .Values.audit.zookeeper.existingSecret) (not .Values.audit.zookeeper.servers) }}
{{- fail "audit.zookeeper.servers is required (e.g. zk-0.zk:2181,zk-1.zk:2181), or set audit.zookeeper.existingSecret" }}
{{- end }}
{{- if and (has "none" .Values.audit.fix) (gt (len .Values.audit.fix) 1) }}
{{- fail (printf "audit.fix: \"none\" cannot be combined with other modes, got %v" .Values.audit.fix) }}
{{- end }}
{{- if and (has "disable" .Values.audit.fix) (has "undo-disable" .Values.audit.fix) }}
{{- fail "audit.fix: \"disable\" and \"undo-disable\" contradict each other; pick one" }}
{{- end }}
{{- if and .Values.webhook.enabled (eq .Values.webhook.failurePolicy "Fail") (lt (int .Values.webhook.replicas) 2) }}
{{- fail (printf "webhook.failurePolicy Fail with webhook.replicas %d: every rollout, drain or crash of that one pod rejects every pod created in the injected namespaces; set webhook.replicas to 2 or more, or failurePolicy Ignore" (int .Values.webhook.replicas)) }}
{{- end }}
{{- if and .Values.audit.enabled (gt (int .Values.audit.replicas) 1) (not .Values.audit.leaderElection) }}
{{- fail (printf "audit.replicas %d without audit.leaderElection: every replica would write Events and apply corrections (evictions, disables, prunes) on its own; enable audit.leaderElection or run one replica" (int .Values.audit.replicas)) }}
{{- end }}
{{- if and .Values.webhook.podDisruptionBudget.enabled (ge (int .Values.webhook.podDisruptionBudget.minAvailable) (int .Values.webhook.replicas)) (gt (int .Values.webhook.replicas) 0) }}
{{- fail (printf "webhook.podDisruptionBudget.minAvailable (%d) must be less than webhook.replicas (%d), or no webhook pod can ever be evicted to drain a node" (int .Values.webhook.podDisruptionBudget.minAvailable) (int .Values.webhook.replicas)) }}
{{- end }}
{{- include "dubboreach.validatePublish" . }}
{{- end }}

{{/* The fabric and the BGP speaker (publish) must agree. Only the fabric of fabric.spec can be
checked: an existing ConfigMap is read by the processes, which refuse a bad one (exit 2). */}}
{{- define "dubboreach.validatePublish" -}}
{{- $p := .Values.publish }}
{{- if not .Values.fabric.existingConfigMap }}
{{- $spec := .Values.fabric.spec | default dict }}
{{- $mode := (($spec.podRoutes | default dict).publish) | default "static" }}
{{- if and $spec.bgp (ne $mode "bgp") }}
{{- fail (printf "fabric.spec.bgp is set but fabric.spec.podRoutes.publish is %q: dubboreach refuses spec.bgp unless publish: bgp (every component would exit on the fabric file); set podRoutes.publish: bgp, or remove fabric.spec.bgp" $mode) }}
{{- end }}
{{- if $p.enabled }}
{{- if ne $mode "bgp" }}
{{- fail (printf "publish.enabled=true with fabric.spec.podRoutes.publish %q: the BGP speaker runs only under publish: bgp (docs/bgp.md); set fabric.spec.podRoutes.publish: bgp and a fabric.spec.bgp block, or publish.enabled=false" $mode) }}
{{- end }}
{{- if not $spec.bgp }}
{{- fail "publish.enabled=true without fabric.spec.bgp: the speaker needs asn, routerID, within and peers there (docs/bgp.md)" }}
{{- end }}
{{- range $i, $peer := $spec.bgp.peers | default list }}
{{- with $peer.passwordFile }}
{{- if not (hasPrefix "/etc/dubboreach/bgp/" .) }}
{{- fail (printf "fabric.spec.bgp.peers[%d].passwordFile %q is not under /etc/dubboreach/bgp/, where the chart mounts publish.passwords.existingSecret: use /etc/dubboreach/bgp/<key of that Secret>" $i .) }}
{{- end }}
{{- if not $p.passwords.existingSecret }}
{{- fail (printf "fabric.spec.bgp.peers[%d].passwordFile %q needs publish.passwords.existingSecret: the Secret whose key %q the chart mounts at /etc/dubboreach/bgp" $i . (base .)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if $p.enabled }}
{{- if and $p.podDisruptionBudget.enabled (ge (int $p.podDisruptionBudget.minAvailable) (int $p.replicas)) (gt (int $p.replicas) 0) }}
{{- fail (printf "publish.podDisruptionBudget.minAvailable (%d) must be less than publish.replicas (%d), or no speaker pod can ever be evicted to drain a node" (int $p.podDisruptionBudget.minAvailable) (int $p.replicas)) }}
{{- end }}
{{- end }}

{{- end }}
