{{/* The chart's name, short enough for a DNS label. */}}
{{- define "migrate-bot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects: RELEASE-CHART, or RELEASE when they are the same. */}}
{{- define "migrate-bot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if eq .Release.Name $name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "migrate-bot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "migrate-bot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "migrate-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "migrate-bot.labels" -}}
helm.sh/chart: {{ include "migrate-bot.chart" . }}
{{ include "migrate-bot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "migrate-bot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "migrate-bot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Secrets: the one you manage (existingSecret) or the one this chart creates. */}}
{{- define "migrate-bot.slackSecretName" -}}
{{- default (include "migrate-bot.fullname" .) .Values.slack.existingSecret -}}
{{- end -}}

{{- define "migrate-bot.redisSecretName" -}}
{{- default (include "migrate-bot.fullname" .) .Values.redis.existingSecret -}}
{{- end -}}

{{- define "migrate-bot.redisSecretKey" -}}
{{- if .Values.redis.existingSecret -}}
{{- .Values.redis.existingSecretKey -}}
{{- else -}}
REDIS_URL
{{- end -}}
{{- end -}}

{{- define "migrate-bot.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Spread fields only where the API server honours them by default (beta): nodeTaintsPolicy from
1.26, matchLabelKeys from 1.27. Older servers drop them (alpha, gated off), so they are left out. */}}
{{- define "migrate-bot.spreadByVersion" -}}
{{- $kube := .Capabilities.KubeVersion.Version -}}
{{- if semverCompare ">=1.26.0-0" $kube }}
nodeTaintsPolicy: Honor
{{- end }}
{{- if semverCompare ">=1.27.0-0" $kube }}
matchLabelKeys: ["pod-template-hash"]
{{- end }}
{{- end -}}

{{/* The bot's config file: .Values.config plus the controller ConfigMap the RBAC lets it read. */}}
{{- define "migrate-bot.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- with .Values.rbac.controllerConfigMap -}}
{{- $_ := set $config "controller_configmap" (printf "%s/%s" $.Values.rbac.nginxNamespace .) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
