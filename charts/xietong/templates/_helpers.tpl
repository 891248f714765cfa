{{- define "xietong.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "xietong.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "xietong.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xietong.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "xietong.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "xietong.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* xietong.yaml: the values' settings over what the chart must set. */}}
{{- define "xietong.settings" -}}
{{- $redis := dict "url" "env:XIETONG_REDIS_URL" "cluster" .Values.redis.cluster "prefix" .Values.redis.prefix -}}
{{- if .Values.redis.password.secretName -}}
{{- $_ := set $redis "password" "env:XIETONG_REDIS_PASSWORD" -}}
{{- end -}}
{{- if .Values.redis.ca.secretName -}}
{{- $_ := set $redis "ca" "/etc/xietong-redis-ca/ca.pem" -}}
{{- end -}}
{{- if .Values.redis.wait -}}
{{- $_ := set $redis "wait" .Values.redis.wait -}}
{{- end -}}
{{- $fixed := dict "listen" "0.0.0.0:8080" "data_dir" "/var/lib/xietong" "store" (dict "backend" "redis" "redis" $redis) -}}
{{- toYaml (mergeOverwrite (deepCopy .Values.settings) $fixed) -}}
{{- end -}}

{{/* A ConfigMap key for a path under config/ (ConfigMaps are flat). */}}
{{- define "xietong.configKey" -}}
{{- . | replace "/" "__" -}}
{{- end -}}
