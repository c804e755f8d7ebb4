{{/* Release-wide name, used by the ServiceAccount and the ConfigMap. */}}
{{- define "casem.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Refuse to render without generated per-datacenter values. */}}
{{- define "casem.requireDatacenter" -}}
{{- if not (and .Values.datacenter .Values.datacenter.name) -}}
{{- fail "no datacenter values: generate them with `casem infra helm-values --datacenter NAME` and pass -f <file>" -}}
{{- end -}}
{{- if not .Values.workloads -}}
{{- fail "no workloads in the values: regenerate them with `casem infra helm-values`" -}}
{{- end -}}
{{- end -}}

{{- define "casem.serviceAccountName" -}}
{{- default (include "casem.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "casem.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
casem.dev/datacenter: {{ .Values.datacenter.name }}
casem.dev/environment: {{ .Values.datacenter.environment }}
{{- end -}}

{{/* Labels of release-wide objects (ServiceAccount, ConfigMap). */}}
{{- define "casem.releaseLabels" -}}
{{ include "casem.commonLabels" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one workload; call with (dict "root" $ "w" $workload). */}}
{{- define "casem.selectorLabels" -}}
app.kubernetes.io/name: {{ .w.name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "casem.labels" -}}
{{ include "casem.commonLabels" .root }}
{{ include "casem.selectorLabels" . }}
app.kubernetes.io/component: {{ .w.service }}
casem.dev/service: {{ .w.service }}
{{- if .w.flavor }}
casem.dev/flavor: {{ .w.flavor }}
{{- end }}
{{- end -}}

{{/* A workload's settings: chart defaults, then its entry in workloadOverrides. Returns YAML. */}}
{{- define "casem.settings" -}}
{{- $override := get .root.Values.workloadOverrides .w.name | default dict -}}
{{- toYaml (merge (deepCopy $override) (deepCopy .root.Values.defaults)) -}}
{{- end -}}

{{- define "casem.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Comma-separated names of the tenants deployed in this datacenter. */}}
{{- define "casem.tenantNames" -}}
{{- $names := list -}}
{{- range .Values.tenants }}{{ $names = append $names .name }}{{ end -}}
{{- join "," $names -}}
{{- end -}}

{{/* Readiness: gRPC services answer the standard grpc.health.v1 service; workers serve /readyz beside /metrics
     on their ops port. Call with (dict "root" $ "w" $w "path" "/readyz"). */}}
{{- define "casem.probe" -}}
{{- if .w.grpc -}}
grpc:
  port: {{ .root.Values.ports.grpc }}
{{- else -}}
httpGet:
  path: {{ .path }}
  port: metrics
{{- end -}}
{{- end -}}

{{/* Liveness (and start-up): /healthz, which answers as long as the process runs, never readiness. A service
     waiting at start-up for an engine (ensure_topics_waiting) is alive but not ready: case-intake's gRPC server is
     not even up then, so a gRPC liveness probe would restart it in a loop. Workloads with an ops port (`ops`) serve
     /healthz there from the start; case-api serves it on its HTTP port. Call with (dict "root" $ "w" $w). */}}
{{- define "casem.healthProbe" -}}
{{- if .w.ops -}}
httpGet:
  path: /healthz
  port: metrics
{{- else if .w.http -}}
httpGet:
  path: /healthz
  port: http
{{- else -}}
grpc:
  port: {{ .root.Values.ports.grpc }}
{{- end -}}
{{- end -}}

{{/* topic(group),topic(group) of a workload's consumed topics. */}}
{{- define "casem.consumes" -}}
{{- $items := list -}}
{{- range .consumes }}{{ $items = append $items (printf "%s(%s)" .topic .group) }}{{ end -}}
{{- join "," $items -}}
{{- end -}}
