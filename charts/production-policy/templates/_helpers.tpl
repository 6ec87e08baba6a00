{{/* Names, labels and the pieces both Deployments share. */}}

{{- define "production-policy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; components append "-webhook", "-controller" (so at most 52 characters). */}}
{{- define "production-policy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "production-policy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "production-policy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "production-policy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "production-policy.labels" -}}
helm.sh/chart: {{ include "production-policy.chart" . }}
{{ include "production-policy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: production-policy
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one component: (dict "root" $ "component" "webhook") */}}
{{- define "production-policy.componentLabels" -}}
{{ include "production-policy.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "production-policy.componentSelectorLabels" -}}
{{ include "production-policy.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "production-policy.webhookName" -}}
{{ include "production-policy.fullname" . }}-webhook
{{- end }}

{{- define "production-policy.controllerName" -}}
{{ include "production-policy.fullname" . }}-controller
{{- end }}

{{- define "production-policy.cleanupName" -}}
{{ include "production-policy.fullname" . }}-cleanup
{{- end }}

{{- define "production-policy.webhookServiceName" -}}
{{ include "production-policy.webhookName" . }}
{{- end }}

{{- define "production-policy.tlsSecretName" -}}
{{ include "production-policy.webhookName" . }}-tls
{{- end }}

{{/* The DNS names the serving certificate must carry: every way the API server may name the Service. */}}
{{- define "production-policy.webhookDNSNames" -}}
{{- $svc := include "production-policy.webhookServiceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson -}}
{{- end }}

{{- define "production-policy.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* Arguments both processes take: their namespace (never enforced) and the other excluded ones. */}}
{{- define "production-policy.commonArgs" -}}
- --namespace={{ .Release.Namespace }}
{{- range .Values.excludeNamespaces }}
- --exclude-namespace={{ . }}
{{- end }}
- --log-format={{ .Values.logFormat }}
- --log-level={{ .Values.logLevel }}
{{- end }}

{{- define "production-policy.commonEnv" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}

{{/* /tmp is the only writable path: the root filesystem is read-only. */}}
{{- define "production-policy.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "production-policy.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Who enforces at admission (values: admission.engine): webhook, apiserver or both. Empty: both where
the API server serves MutatingAdmissionPolicy v1 (Kubernetes 1.36+), else webhook.
*/}}
{{- define "production-policy.admissionEngine" -}}
{{- if .Values.admission.engine -}}
{{- .Values.admission.engine -}}
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" -}}
both
{{- else -}}
webhook
{{- end -}}
{{- end }}
