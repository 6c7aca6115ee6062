{{/* Chart name, shortened to fit Kubernetes' 63-character name limit. */}}
{{- define "veriface.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already holds the chart's. */}}
{{- define "veriface.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "veriface.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "veriface.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: veriface
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "api"). */}}
{{- define "veriface.selectorLabels" -}}
app.kubernetes.io/name: {{ include "veriface.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "veriface.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "veriface.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "veriface.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret both Deployments load: the user's, or the chart's own. */}}
{{- define "veriface.secretName" -}}
{{- default (include "veriface.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "veriface.imagesClaimName" -}}
{{- default (printf "%s-images" (include "veriface.fullname" .)) .Values.worker.imagesVolume.existingClaim }}
{{- end }}

{{/*
Pod-level settings shared by the API and the worker: the image's fixed
unprivileged uid, no service-account token (veriface calls no Kubernetes API),
and a hash of the configuration so that a changed value rolls the pods.
*/}}
{{- define "veriface.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "veriface.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "veriface.envFrom" -}}
- configMapRef:
    name: {{ include "veriface.fullname" . }}
- secretRef:
    name: {{ include "veriface.secretName" . }}
{{- end }}
